//! Turns flags (and, later, the config file and environment) into validated settings, once,
//! with errors that say which flag is wrong and what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::arn::Arn;
use crate::cli::{CredentialArgs, KeyArgs};
use crate::endpoint;
use crate::error::{Error, Result};
use crate::identity::IdentitySpec;
use crate::identity::file::{self, Readable, Role};
use crate::rolesanywhere::{ClientConfig, SessionParams};
use crate::secret::Secret;

/// The environment variable that may hold the key or PKCS#12 password.
pub const PASSWORD_ENV: &str = "ROLESANYWHERE_PKCS8_PASSWORD";
/// The systemd credential (in `$CREDENTIALS_DIRECTORY`) that may hold it, used when
/// neither a flag nor the variable gives it.
pub const PASSWORD_CREDENTIAL: &str = "pkcs8-password";

/// The identity flags as an [`IdentitySpec`], after refusing the official helper's flags
/// for key stores this build does not have (rather than silently ignoring them).
pub fn identity_spec(args: &KeyArgs) -> Result<IdentitySpec> {
    refuse_unavailable(args)?;
    for value in [&args.certificate, &args.private_key].into_iter().flatten() {
        refuse_store_uri(value)?;
    }
    let readable = if args.allow_readable_key_files {
        Readable::Warn
    } else {
        Readable::Refuse
    };
    // The flags (mutually exclusive) win over the environment variable, which only fills
    // in when neither is given: an exported variable must not block a flag.
    let password = match (&args.pkcs8_password, &args.pkcs8_password_file) {
        (Some(p), _) => Some(Secret::from(p.clone())),
        (None, Some(path)) => {
            file::guard_secret(Role::PasswordFile, path, readable)?;
            Some(Secret::from_file(path).map_err(|e| {
                Error::Usage(format!(
                    "password file {} cannot be read ({e}); check the --pkcs8-password-file path",
                    path.display()
                ))
            })?)
        }
        (None, None) => match std::env::var(PASSWORD_ENV) {
            Ok(value) => Some(Secret::from(value)),
            // Under systemd, `LoadCredential=pkcs8-password:FILE` passes it privately.
            Err(_) => match crate::systemd::credential(PASSWORD_CREDENTIAL) {
                Some(path) => Some(Secret::from_file(&path).map_err(|e| {
                    Error::Usage(format!(
                        "the systemd credential {} cannot be read: {e}",
                        path.display()
                    ))
                })?),
                None => None,
            },
        },
    };
    // An empty password means "no password", as upstream documents, from every source:
    // an empty file must behave like `--pkcs8-password ""`.
    let password = password.filter(|p| !p.expose().is_empty());
    Ok(IdentitySpec {
        certificate: args.certificate.as_ref().map(PathBuf::from),
        private_key: args.private_key.as_ref().map(PathBuf::from),
        intermediates: None,
        password,
        readable_key_files: readable,
    })
}

fn refuse_unavailable(args: &KeyArgs) -> Result<()> {
    if args.cert_selector.is_some()
        || args.system_store_name.is_some()
        || args.use_latest_expiring_certificate
    {
        return Err(store_unavailable());
    }
    if args.pkcs11_lib.is_some() || args.reuse_pin {
        return Err(Error::Usage(
            "PKCS#11 tokens are not available in this version; use certificate and key files"
                .into(),
        ));
    }
    if args.tpm_key_password.is_some() || args.no_tpm_key_password {
        return Err(Error::Usage(
            "TPM keys are not available in this version; use certificate and key files".into(),
        ));
    }
    Ok(())
}

/// The answer to the official helper's `--cert-selector`, `--system-store-name` and
/// `--use-latest-expiring-certificate` on Linux.
pub fn store_unavailable() -> Error {
    Error::Usage(
        "operating-system certificate stores (--cert-selector, --system-store-name, --use-latest-expiring-certificate) are not available on Linux; give --certificate and --private-key files".into(),
    )
}

fn refuse_store_uri(value: &str) -> Result<()> {
    if value.starts_with("pkcs11:") {
        return Err(Error::Usage(format!(
            "{value}: PKCS#11 URIs are not available in this version; use certificate and key files"
        )));
    }
    if value.starts_with("handle:") {
        return Err(Error::Usage(format!(
            "{value}: TPM key handles are not available in this version; use certificate and key files"
        )));
    }
    Ok(())
}

/// Everything a CreateSession call needs, validated.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub identity: IdentitySpec,
    pub params: SessionParams,
    pub client: ClientConfig,
    /// Where the endpoint came from, for `--debug`.
    pub endpoint_source: endpoint::Source,
}

/// The service's bounds on `durationSeconds`.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 900..=43200;

/// Validates the CreateSession flags: the ARNs and their regions, the duration, the
/// endpoint. Every check here runs before any key is read or any request is sent.
pub fn session_settings(
    args: &CredentialArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SessionSettings> {
    let trust_anchor = required_arn(
        &args.trust_anchor_arn,
        "--trust-anchor-arn",
        "rolesanywhere",
        "trust-anchor/",
    )?;
    let profile = required_arn(
        &args.profile_arn,
        "--profile-arn",
        "rolesanywhere",
        "profile/",
    )?;
    let role = required_arn(&args.role_arn, "--role-arn", "iam", "role/")?;
    if trust_anchor.region != profile.region {
        return Err(Error::Usage(format!(
            "trust anchor and profile regions don't match ({} and {}); use the profile of the trust anchor's region",
            trust_anchor.region, profile.region
        )));
    }
    let region = args
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| trust_anchor.region.clone());
    if region.is_empty() {
        return Err(Error::Usage(
            "the trust anchor ARN names no region; give --region".into(),
        ));
    }
    if !DURATION_RANGE.contains(&args.session_duration) {
        return Err(Error::Usage(format!(
            "--session-duration {} is out of range; the service accepts 900 to 43200 seconds (15 minutes to 12 hours)",
            args.session_duration
        )));
    }
    if let Some(name) = &args.role_session_name {
        let valid = (2..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
        if !valid {
            return Err(Error::Usage(format!(
                "--role-session-name {name:?} is not a valid session name; use 2 to 64 characters from letters, digits and _+=,.@-"
            )));
        }
    }
    let fips = args.use_fips_endpoint
        || env("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let (url, endpoint_source) = endpoint::resolve(args.endpoint.as_deref(), &env, &region, fips);

    let mut identity = identity_spec(&args.key)?;
    identity.intermediates = args.intermediates.as_ref().map(PathBuf::from);

    let mut client = ClientConfig::new(url);
    client.ca_bundle = args.ca_bundle.clone().filter(|p| !p.as_os_str().is_empty());
    client.insecure_skip_verify = args.no_verify_ssl;
    client.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    client.attempt_timeout = Duration::from_secs(args.timeout.max(1));
    Ok(SessionSettings {
        identity,
        params: SessionParams {
            trust_anchor_arn: trust_anchor.to_string(),
            profile_arn: profile.to_string(),
            role_arn: role.to_string(),
            duration_seconds: u32::try_from(args.session_duration).unwrap_or(3600),
            role_session_name: args.role_session_name.clone(),
            region,
        },
        client,
        endpoint_source,
    })
}

fn required_arn(
    value: &Option<String>,
    flag: &str,
    service: &str,
    resource_prefix: &str,
) -> Result<Arn> {
    let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
        return Err(Error::Usage(format!("{flag} is required; give the ARN")));
    };
    let arn: Arn = value
        .parse()
        .map_err(|e| Error::Usage(format!("{flag} {value:?} is not an ARN: {e}")))?;
    if arn.service != service
        || !arn.resource.starts_with(resource_prefix)
        || arn.resource.len() == resource_prefix.len()
    {
        return Err(Error::Usage(format!(
            "{flag} {value:?} is not a {service} {} ARN (arn:PARTITION:{service}:REGION:ACCOUNT:{resource_prefix}ID)",
            resource_prefix.trim_end_matches('/')
        )));
    }
    Ok(arn)
}
