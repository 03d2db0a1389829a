//! ML-DSA (FIPS 204) keys and certificates for the development PKI.
//!
//! rcgen issues ML-DSA certificates only on aws-lc-rs, so these are built with the `x509-cert`
//! builder and signed with RustCrypto's `ml-dsa` (deterministic, empty context, RFC 9881:
//! the `id-ml-dsa-*` OID with absent parameters names both the key and the signature). The
//! emulator verifies them with another implementation (`fips204`).
//!
//! Private keys are written as PKCS#8 with the "both" private key form
//! `SEQUENCE { seed OCTET STRING (32), expandedKey OCTET STRING }`: OpenSSL 3.5's default and
//! the only form the official helper reads.

use std::time::{Duration, SystemTime};

use der::asn1::{Any, OctetString};
use der::oid::ObjectIdentifier;
use der::{Decode as _, Encode as _, Tag};
use ml_dsa::{MlDsa44, MlDsa65, MlDsa87, SigningKey};
use sha2::{Digest as _, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder as _, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroizing;

/// The three ML-DSA parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

impl Level {
    /// `id-ml-dsa-44/65/87`, 2.16.840.1.101.3.4.3.17/18/19.
    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::MlDsa44 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17"),
            Self::MlDsa65 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18"),
            Self::MlDsa87 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19"),
        }
    }
}

/// An ML-DSA signing key of one parameter set.
enum Inner {
    L44(Box<SigningKey<MlDsa44>>),
    L65(Box<SigningKey<MlDsa65>>),
    L87(Box<SigningKey<MlDsa87>>),
}

/// Runs `$body` with `$k` bound to the typed signing key.
macro_rules! with_key {
    ($key:expr, $k:ident => $body:expr) => {
        match &$key.inner {
            Inner::L44($k) => $body,
            Inner::L65($k) => $body,
            Inner::L87($k) => $body,
        }
    };
}

/// An ML-DSA key pair, kept as its 32-byte seed (FIPS 204 `ξ`) and the key expanded from it.
pub struct MlDsaKey {
    level: Level,
    seed: Zeroizing<[u8; 32]>,
    inner: Inner,
}

impl MlDsaKey {
    /// A fresh key from a random seed.
    pub fn generate(level: Level) -> Result<Self, String> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| e.to_string())?;
        Ok(Self::from_seed(level, seed))
    }

    fn from_seed(level: Level, seed: Zeroizing<[u8; 32]>) -> Self {
        // The array the key is derived from is a copy of the seed: zeroized too.
        let xi = Zeroizing::new(ml_dsa::Seed::from(*seed));
        let inner = match level {
            Level::MlDsa44 => Inner::L44(Box::new(SigningKey::from_seed(&xi))),
            Level::MlDsa65 => Inner::L65(Box::new(SigningKey::from_seed(&xi))),
            Level::MlDsa87 => Inner::L87(Box::new(SigningKey::from_seed(&xi))),
        };
        Self { level, seed, inner }
    }

    /// The encoded public key (FIPS 204 `pkEncode`).
    fn public_key(&self) -> Vec<u8> {
        with_key!(self, k => k.expanded_key().verifying_key().encode().to_vec())
    }

    /// The expanded private key (FIPS 204 `skEncode`), for the "both" PKCS#8 form. `ml-dsa`
    /// marks it deprecated because the seed alone is enough; OpenSSL 3.5 and the official
    /// helper expect both.
    #[allow(deprecated)]
    fn expanded(&self) -> Zeroizing<Vec<u8>> {
        with_key!(self, k => {
            let expanded = Zeroizing::new(k.expanded_key().to_expanded());
            Zeroizing::new(expanded.to_vec())
        })
    }

    /// The SubjectPublicKeyInfo: the algorithm OID without parameters and the encoded key.
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned, String> {
        Ok(SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: self.level.oid(),
                parameters: None,
            },
            subject_public_key: der::asn1::BitString::from_bytes(&self.public_key())
                .map_err(|e| e.to_string())?,
        })
    }

    /// PKCS#8 `PRIVATE KEY` PEM with the "both" private key form.
    pub fn pkcs8_pem(&self) -> Result<Zeroizing<String>, String> {
        let err = |e: der::Error| e.to_string();
        // Borrowed octet strings: the only copies of secret bytes are zeroized buffers.
        let expanded = self.expanded();
        let both = [
            der::asn1::OctetStringRef::new(self.seed.as_slice()).map_err(err)?,
            der::asn1::OctetStringRef::new(&expanded).map_err(err)?,
        ];
        let both_der = Zeroizing::new(both.to_der().map_err(err)?);
        let private_key = der::asn1::OctetStringRef::new(&both_der).map_err(err)?;
        let info = pkcs8::PrivateKeyInfoRef::new(
            spki::AlgorithmIdentifierRef {
                oid: self.level.oid(),
                parameters: None,
            },
            private_key,
        );
        let info_der = Zeroizing::new(info.to_der().map_err(err)?);
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &info_der)
            .map(Zeroizing::new)
            .map_err(|e| e.to_string())
    }

    /// Issues a certificate for `subject` as described by `spec`, signed by this key.
    /// `issuer` is the issuing CA's certificate, or `None` for a self-signed root.
    pub fn issue(
        &self,
        spec: &CertSpec<'_>,
        subject: &SubjectPublicKeyInfoOwned,
        issuer: Option<&Certificate>,
    ) -> Result<Certificate, String> {
        let err = |e: x509_cert::builder::Error| e.to_string();
        let profile = Profile {
            subject: dev_name(spec.common_name).map_err(|e| e.to_string())?,
            issuer: issuer.map(|c| c.tbs_certificate().subject().clone()),
            role: spec.role,
        };
        let validity = Validity::new(
            Time::try_from(spec.not_before).map_err(|e| e.to_string())?,
            Time::try_from(spec.not_after).map_err(|e| e.to_string())?,
        );
        let builder =
            CertificateBuilder::new(profile, serial()?, validity, subject.clone()).map_err(err)?;
        with_key!(self, k => builder.build::<_, ml_dsa::Signature<_>>(k.as_ref()).map_err(err))
    }
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// A CA: basicConstraints CA:TRUE (with a path length when given), keyCertSign, cRLSign.
    Ca { path_len: Option<u8> },
    /// A Roles Anywhere client: CA:FALSE, digitalSignature, clientAuth.
    Client,
}

/// A certificate to issue.
#[derive(Clone, Debug)]
pub struct CertSpec<'a> {
    pub common_name: &'a str,
    pub role: Role,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl<'a> CertSpec<'a> {
    /// Valid from an hour ago (clock skew) for `days` days, like the rcgen certificates.
    pub fn new(common_name: &'a str, role: Role, days: u32) -> Self {
        let now = SystemTime::now();
        Self {
            common_name,
            role,
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }
}

/// `O=rolesanywhere-helper development PKI, CN=<cn>`, as UTF8Strings, in the order rcgen
/// writes them. Built attribute by attribute so that a common name with commas stays one value.
fn dev_name(common_name: &str) -> der::Result<Name> {
    let mut rdns = RdnSequence::default();
    for (oid, value) in [
        (
            ObjectIdentifier::new_unwrap("2.5.4.10"),
            "rolesanywhere-helper development PKI",
        ),
        (ObjectIdentifier::new_unwrap("2.5.4.3"), common_name),
    ] {
        let atv = AttributeTypeAndValue {
            oid,
            value: Any::new(Tag::Utf8String, value.as_bytes())?,
        };
        rdns.push(RelativeDistinguishedName::try_from(vec![atv])?);
    }
    Name::from_der(&rdns.to_der()?)
}

/// A random positive 16-byte serial.
fn serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    SerialNumber::new(&bytes).map_err(|e| e.to_string())
}

/// A key identifier: the first 20 bytes of the SHA-256 of the public key bits (RFC 7093 §2).
fn key_id(spki: &SubjectPublicKeyInfoRef<'_>) -> der::Result<OctetString> {
    OctetString::new(&Sha256::digest(spki.subject_public_key.raw_bytes())[..20])
}

fn extension<T: der::Encode + der::oid::AssociatedOid>(
    value: &T,
    critical: bool,
) -> der::Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// The certificate profile of the development PKI: the extensions signing-spec §4 requires.
struct Profile {
    subject: Name,
    issuer: Option<Name>,
    role: Role,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let (ca, path_len, usage) = match self.role {
            Role::Ca { path_len } => (true, path_len, KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            Role::Client => (false, None, KeyUsages::DigitalSignature.into()),
        };
        let mut out = vec![
            extension(
                &BasicConstraints {
                    ca,
                    path_len_constraint: path_len,
                },
                true,
            )?,
            extension(&KeyUsage(usage), true)?,
            extension(&SubjectKeyIdentifier(key_id(&spk)?), false)?,
        ];
        if self.issuer.is_some() {
            out.push(extension(
                &AuthorityKeyIdentifier {
                    key_identifier: Some(key_id(&issuer_spk)?),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
                false,
            )?);
        }
        if matches!(self.role, Role::Client) {
            let client_auth = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
            out.push(extension(&ExtendedKeyUsage(vec![client_auth]), false)?);
        }
        Ok(out)
    }
}

/// The PEM of a certificate.
pub fn cert_pem(cert: &Certificate) -> Result<String, String> {
    let der = cert.to_der().map_err(|e| e.to_string())?;
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der)
        .map_err(|e| e.to_string())
}
