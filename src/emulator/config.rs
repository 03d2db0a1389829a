//! What the emulator trusts and authorises: trust anchors, profiles, region, TLS, and the
//! test-only switches (short sessions, a fixed clock).
//!
//! The TOML file mirrors the Roles Anywhere resources with their API member names:
//!
//! ```toml
//! region = "us-east-1"
//! crls = ["revoked.crl.pem"]            # optional, apply to every anchor
//!
//! [[trustAnchors]]
//! arn = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/dev"   # omit: any ARN
//! certificates = "root-ca.pem"          # PEM bundle, relative to this file
//! enabled = true                        # default true
//!
//! [[profiles]]                          # no profiles at all: any profile ARN is accepted
//! arn = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/dev"
//! roleArns = ["arn:aws:iam::111122223333:role/dev"]
//! durationSeconds = 3600                # default 3600, as CreateProfile
//! acceptRoleSessionName = false         # default false
//! enabled = true                        # default true
//!
//! [[roles]]                             # STS AssumeRole trust; no roles at all: any
//!                                       # session may assume any role
//! arn = "arn:aws:iam::444455556666:role/workload"
//! trustedRoleArns = ["arn:aws:iam::111122223333:role/dev"]   # whose sessions may assume it
//! externalId = "shared-secret"          # optional: AssumeRole must carry it
//! durationSeconds = 60                  # optional, test switch (needs allowShortSessions):
//!                                       # issue sessions this short whatever was asked
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::errors::EmulatorError;

/// The durationSeconds range of the API.
pub const MIN_DURATION: u32 = 900;
pub const MAX_DURATION: u32 = 43_200;

/// How the emulator serves its listener.
#[derive(Clone, Debug, Default)]
pub enum TlsMode {
    /// HTTPS with a certificate from a CA the emulator makes at start ([`super::Emulator::ca_pem`]).
    #[default]
    SelfMade,
    /// HTTPS with a given certificate chain and key (PEM).
    Given { cert_pem: String, key_pem: String },
    /// Plain HTTP (for clients that cannot be told to trust a CA; not for anything real).
    Http,
}

/// A trust anchor: CA certificates a leaf must chain to.
#[derive(Clone, Debug)]
pub struct TrustAnchorConfig {
    /// The trust anchor ARN; `None` accepts any trust-anchor ARN of the region.
    pub arn: Option<String>,
    /// The CA certificates (DER).
    pub certificates_der: Vec<Vec<u8>>,
    /// A disabled anchor refuses every request (403).
    pub enabled: bool,
}

/// A profile: which roles may be assumed, for how long.
#[derive(Clone, Debug)]
pub struct ProfileConfig {
    pub arn: String,
    pub role_arns: Vec<String>,
    pub duration_seconds: u32,
    pub accept_role_session_name: bool,
    pub enabled: bool,
}

/// An IAM role as STS AssumeRole sees it: who may assume it (its trust policy, reduced to
/// the roles whose sessions it trusts) and the external ID it asks for.
#[derive(Clone, Debug)]
pub struct RoleTrustConfig {
    pub arn: String,
    /// Roles whose sessions may assume this one.
    pub trusted_role_arns: Vec<String>,
    /// When set, AssumeRole must carry this `ExternalId`.
    pub external_id: Option<String>,
    /// Test switch: sessions of this role last this long, whatever was asked (real STS
    /// issues what was asked). Needs `min_duration_seconds` at or below it.
    pub duration_seconds: Option<u32>,
}

/// Everything the emulator needs to start.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The region of the endpoint: the credential scope and the ARNs must name it.
    pub region: String,
    /// Trust anchors; exact ARNs are matched first, then an anchor without ARN.
    pub trust_anchors: Vec<TrustAnchorConfig>,
    /// Profiles; when empty, any profile ARN of the region is accepted for any role, with
    /// the maximum duration (so the request's `durationSeconds` is what the client gets).
    pub profiles: Vec<ProfileConfig>,
    /// Roles for STS AssumeRole; when empty, any session may assume any role.
    pub roles: Vec<RoleTrustConfig>,
    /// Imported CRLs (DER); each applies to the certificates its issuer signed.
    pub crls_der: Vec<Vec<u8>>,
    /// HTTPS or HTTP.
    pub tls: TlsMode,
    /// The listening address; loopback unless deliberately changed.
    pub bind: IpAddr,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// The smallest `durationSeconds` accepted. 900 as the real service; tests lower it to
    /// get sessions that expire in seconds.
    pub min_duration_seconds: u32,
    /// A fixed "now" for requests and certificate validity (known-answer tests). Issued
    /// credentials still expire relative to this clock.
    pub clock: Option<OffsetDateTime>,
    /// The largest accepted distance between `X-Amz-Date` and now.
    pub max_skew_seconds: i64,
    /// The CreateSession quota per account, requests per second (`None`: unlimited); above
    /// it requests are answered 429 `ThrottlingException`.
    pub max_tps: Option<u32>,
    /// The `Retry-After` seconds of a throttled answer (`None`: no header).
    pub throttle_retry_after: Option<u32>,
    /// Seconds added to the expiration of every issued credential set (negative: credentials
    /// that expire early or are expired on arrival), as a misbehaving service would answer.
    pub expiry_skew_seconds: i64,
}

impl EmulatorConfig {
    /// One trust anchor (a PEM bundle of CA certificates) accepting any trust-anchor,
    /// profile and role ARN of `region`: the `emulate --trust-anchor FILE` setup.
    pub fn single_anchor(anchor_pem: &str, region: &str) -> Result<Self, EmulatorError> {
        let certs = pem_certificates(anchor_pem.as_bytes())
            .map_err(|e| EmulatorError::Config(format!("trust anchor PEM: {e}")))?;
        let config = Self {
            region: region.to_owned(),
            trust_anchors: vec![TrustAnchorConfig {
                arn: None,
                certificates_der: certs,
                enabled: true,
            }],
            profiles: Vec::new(),
            roles: Vec::new(),
            crls_der: Vec::new(),
            tls: TlsMode::SelfMade,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            min_duration_seconds: MIN_DURATION,
            clock: None,
            max_skew_seconds: 300,
            max_tps: None,
            throttle_retry_after: None,
            expiry_skew_seconds: 0,
        };
        config.check_region()?;
        Ok(config)
    }

    /// Reads a TOML configuration (see the module documentation). Relative certificate
    /// and CRL paths are resolved against the file's directory.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, EmulatorError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::File {
            what: "cannot read the emulator configuration",
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml_str(&text, &base)
            .map_err(|e| EmulatorError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text; relative paths are resolved against `base`.
    pub fn from_toml_str(text: &str, base: &Path) -> Result<Self, String> {
        let file: toml_format::File = toml::from_str(text).map_err(|e| e.to_string())?;
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut trust_anchors = Vec::new();
        for anchor in file.trust_anchors {
            let path = resolve(&anchor.certificates);
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read trust anchor {}: {e}", path.display()))?;
            let certificates_der = pem_certificates(&pem)
                .map_err(|e| format!("trust anchor {}: {e}", path.display()))?;
            trust_anchors.push(TrustAnchorConfig {
                arn: anchor.arn,
                certificates_der,
                enabled: anchor.enabled,
            });
        }
        let mut crls_der = Vec::new();
        for crl in &file.crls {
            let path = resolve(crl);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read CRL {}: {e}", path.display()))?;
            crls_der.extend(
                pem_or_der_crls(&bytes).map_err(|e| format!("CRL {}: {e}", path.display()))?,
            );
        }
        let profiles = file
            .profiles
            .into_iter()
            .map(|p| ProfileConfig {
                arn: p.arn,
                role_arns: p.role_arns,
                duration_seconds: p.duration_seconds,
                accept_role_session_name: p.accept_role_session_name,
                enabled: p.enabled,
            })
            .collect();
        let roles = file
            .roles
            .into_iter()
            .map(|r| RoleTrustConfig {
                arn: r.arn,
                trusted_role_arns: r.trusted_role_arns,
                external_id: r.external_id,
                duration_seconds: r.duration_seconds,
            })
            .collect();
        let config = Self {
            region: file.region,
            trust_anchors,
            profiles,
            roles,
            crls_der,
            tls: TlsMode::SelfMade,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            min_duration_seconds: if file.allow_short_sessions {
                1
            } else {
                MIN_DURATION
            },
            clock: None,
            max_skew_seconds: 300,
            max_tps: None,
            throttle_retry_after: None,
            expiry_skew_seconds: 0,
        };
        config.check_region().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Adds a CRL file (PEM or DER).
    pub fn add_crl(&mut self, bytes: &[u8]) -> Result<(), EmulatorError> {
        let crls =
            pem_or_der_crls(bytes).map_err(|e| EmulatorError::Config(format!("CRL: {e}")))?;
        self.crls_der.extend(crls);
        Ok(())
    }

    fn check_region(&self) -> Result<(), EmulatorError> {
        let ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(EmulatorError::Config(format!(
                "region {:?} is not a region name such as us-east-1",
                self.region
            )))
        }
    }
}

/// The DER of every CERTIFICATE block of a PEM text.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("invalid PEM ({e})"))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err("holds no CERTIFICATE block".into());
    }
    Ok(out)
}

/// The DER of every X509 CRL block of a PEM text, or the bytes themselves if DER.
pub fn pem_or_der_crls(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|e| format!("invalid PEM ({e})"))?;
        if block.label == "X509 CRL" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err("holds no X509 CRL block".into());
    }
    Ok(out)
}

/// The TOML shape, kept apart from the runtime config so that file names stay file names.
mod toml_format {
    use serde::Deserialize;

    /// The profile duration CreateProfile applies when none is given.
    const DEFAULT_PROFILE_DURATION: u32 = 3600;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct File {
        pub region: String,
        #[serde(default)]
        pub crls: Vec<String>,
        #[serde(default)]
        pub allow_short_sessions: bool,
        #[serde(default)]
        pub trust_anchors: Vec<Anchor>,
        #[serde(default)]
        pub profiles: Vec<Profile>,
        #[serde(default)]
        pub roles: Vec<Role>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Role {
        pub arn: String,
        #[serde(default)]
        pub trusted_role_arns: Vec<String>,
        pub external_id: Option<String>,
        pub duration_seconds: Option<u32>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Anchor {
        pub arn: Option<String>,
        pub certificates: String,
        #[serde(default = "yes")]
        pub enabled: bool,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Profile {
        pub arn: String,
        #[serde(default)]
        pub role_arns: Vec<String>,
        #[serde(default = "default_duration")]
        pub duration_seconds: u32,
        #[serde(default)]
        pub accept_role_session_name: bool,
        #[serde(default = "yes")]
        pub enabled: bool,
    }

    fn yes() -> bool {
        true
    }

    fn default_duration() -> u32 {
        DEFAULT_PROFILE_DURATION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_defaults_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        let text = r#"
            region = "eu-west-1"
            [[trustAnchors]]
            certificates = "ca.pem"
            [[profiles]]
            arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p"
            roleArns = ["arn:aws:iam::111122223333:role/r"]
            [[roles]]
            arn = "arn:aws:iam::444455556666:role/w"
            trustedRoleArns = ["arn:aws:iam::111122223333:role/r"]
            externalId = "x-1"
        "#;
        let c = EmulatorConfig::from_toml_str(text, dir.path()).unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.trust_anchors.len(), 1);
        assert!(c.trust_anchors[0].enabled);
        assert_eq!(c.profiles[0].duration_seconds, 3600);
        assert!(!c.profiles[0].accept_role_session_name);
        assert_eq!(c.min_duration_seconds, 900);
        assert_eq!(c.roles[0].arn, "arn:aws:iam::444455556666:role/w");
        assert_eq!(
            c.roles[0].trusted_role_arns,
            ["arn:aws:iam::111122223333:role/r"]
        );
        assert_eq!(c.roles[0].external_id.as_deref(), Some("x-1"));
        assert_eq!(c.roles[0].duration_seconds, None);

        let err =
            EmulatorConfig::from_toml_str("region = \"x\"\nbogus = 1", dir.path()).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
        let err = EmulatorConfig::from_toml_str("region = \"US East\"", dir.path()).unwrap_err();
        assert!(err.contains("region"), "{err}");
        assert!(pem_certificates(b"nothing").is_err());
    }
}
