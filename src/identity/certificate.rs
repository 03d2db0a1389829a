//! X.509 certificates as the client needs them: the DER to send, the decimal serial for
//! the credential scope, the public key to match against the private key, and the few
//! facts (validity, CA flag, key usage) worth checking before any network call.

use std::fmt;

use spki::DecodePublicKey;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::key::PublicKey;

/// Object identifiers of the key algorithms and curves this crate meets.
pub(crate) mod oid {
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const RSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ED25519: &str = "1.3.101.112";
    pub const P256: &str = "1.2.840.10045.3.1.7";
    pub const P384: &str = "1.3.132.0.34";
    pub const P521: &str = "1.3.132.0.35";
    pub const SECP256K1: &str = "1.3.132.0.10";
    pub const P224: &str = "1.3.132.0.33";

    /// The common name of a curve OID, for error messages.
    pub fn curve_name(oid: &str) -> &str {
        match oid {
            P256 => "P-256",
            P384 => "P-384",
            P521 => "P-521",
            SECP256K1 => "secp256k1",
            P224 => "P-224",
            "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
            "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
            "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
            other => other,
        }
    }

    /// The common name of a key algorithm OID, for error messages.
    pub fn algorithm_name(oid: &str) -> &str {
        match oid {
            RSA_ENCRYPTION => "RSA",
            RSA_PSS => "RSA-PSS",
            EC_PUBLIC_KEY => "EC",
            ED25519 => "Ed25519",
            "1.3.101.113" => "Ed448",
            "1.3.101.110" => "X25519",
            "1.2.840.10040.4.1" => "DSA",
            "2.16.840.1.101.3.4.3.17" => "ML-DSA-44",
            "2.16.840.1.101.3.4.3.18" => "ML-DSA-65",
            "2.16.840.1.101.3.4.3.19" => "ML-DSA-87",
            other => other,
        }
    }
}

/// Why bytes could not be read as a certificate this crate can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a valid X.509 certificate ({0})")]
    Parse(String),
    #[error("bytes follow the certificate's DER encoding")]
    TrailingData,
    #[error("its {0} public key is not supported (use RSA or EC P-256, P-384, P-521)")]
    UnsupportedKey(String),
    #[error("its public key is not a valid {0} key")]
    BadKey(&'static str),
}

/// A parsed certificate. Holds owned copies of the facts the helper uses, so it can be
/// kept across refreshes and sent between threads.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    serial_decimal: String,
    serial_hex: String,
    subject: String,
    issuer: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: bool,
    digital_signature: Option<bool>,
    public_key: PublicKey,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("serial", &self.serial_decimal)
            .field("key", &self.public_key.describe())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses one DER certificate. Trailing bytes are refused: a file holding two
    /// concatenated DER certificates is ambiguous, and PEM is the format for bundles.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertificateError::Parse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError::TrailingData);
        }
        let der = der.to_vec();
        let tbs = &cert.tbs_certificate;
        let basic = cert.basic_constraints().ok().flatten();
        let usage = cert.key_usage().ok().flatten();
        Ok(Self {
            serial_decimal: tbs.serial.to_string(),
            serial_hex: tbs.serial.to_str_radix(16),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            not_before: tbs.validity.not_before.to_datetime(),
            not_after: tbs.validity.not_after.to_datetime(),
            is_ca: basic.is_some_and(|b| b.value.ca),
            digital_signature: usage.map(|u| u.value.digital_signature()),
            public_key: public_key_from_spki(tbs.subject_pki.raw)?,
            der,
        })
    }

    /// The DER encoding, as sent in `X-Amz-X509`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The serial in base 10 with no leading zeros, as the credential scope carries it.
    pub fn serial_decimal(&self) -> &str {
        &self.serial_decimal
    }

    /// The serial in lowercase hex with no leading zeros.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }

    /// The subject distinguished name, RFC 4514 style.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer distinguished name, RFC 4514 style.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// True when basicConstraints says `CA:TRUE`.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// Whether keyUsage allows digitalSignature; `None` when the extension is absent.
    pub fn allows_digital_signature(&self) -> Option<bool> {
        self.digital_signature
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// A short description for messages: subject, serial and key.
    pub fn describe(&self) -> String {
        format!(
            "\"{}\" (serial {}, {})",
            self.subject,
            self.serial_decimal,
            self.public_key.describe()
        )
    }
}

/// Reads a SubjectPublicKeyInfo into a key this crate can verify with.
pub fn public_key_from_spki(spki_der: &[u8]) -> Result<PublicKey, CertificateError> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| CertificateError::Parse(e.to_string()))?;
    let algorithm = spki.algorithm.algorithm.to_id_string();
    match algorithm.as_str() {
        oid::RSA_ENCRYPTION => rsa::RsaPublicKey::from_public_key_der(spki_der)
            .map(PublicKey::Rsa)
            .map_err(|_| CertificateError::BadKey("RSA")),
        oid::EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let bad = |_| CertificateError::BadKey("EC");
            match curve.as_str() {
                oid::P256 => p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                    .map(PublicKey::P256)
                    .map_err(bad),
                oid::P384 => p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                    .map(PublicKey::P384)
                    .map_err(bad),
                oid::P521 => p521::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                    .map(PublicKey::P521)
                    .map_err(bad),
                "" => Err(CertificateError::UnsupportedKey(
                    "EC key without a named curve".into(),
                )),
                other => Err(CertificateError::UnsupportedKey(format!(
                    "EC {}",
                    oid::curve_name(other)
                ))),
            }
        }
        other => Err(CertificateError::UnsupportedKey(
            oid::algorithm_name(other).to_owned(),
        )),
    }
}
