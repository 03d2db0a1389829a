//! X.509 certificates as the client needs them: the DER to send, the decimal serial for
//! the credential scope, the public key to match against the private key, and the few
//! facts (validity, CA flag, key usage) worth checking before any network call.

use std::fmt;

use spki::DecodePublicKey;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::key::{Digest, PublicKey};
use super::mldsa::{self, MlDsaLevel};
use super::oid;

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

    /// True when `issuer` issued this certificate: its subject is this certificate's
    /// issuer and its key verifies this certificate's signature (RSA PKCS#1 v1.5 or
    /// ECDSA, with SHA-256, SHA-384 or SHA-512).
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        if self.issuer != issuer.subject {
            return false;
        }
        let Ok((_, cert)) = X509Certificate::from_der(&self.der) else {
            return false;
        };
        let digest = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.11" | "1.2.840.10045.4.3.2" => Digest::Sha256,
            "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Digest::Sha384,
            "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Digest::Sha512,
            _ => return false,
        };
        issuer
            .public_key
            .verify(
                cert.tbs_certificate.as_ref(),
                digest,
                &cert.signature_value.data,
            )
            .is_ok()
    }

    /// True when the certificate names itself as issuer and its own key verifies it: a
    /// root, which the trust anchor already holds.
    pub fn is_self_signed(&self) -> bool {
        self.is_issued_by(self)
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
        other => match MlDsaLevel::from_oid(other) {
            // Parameters absent, and the key the length of its parameter set.
            Some(level)
                if spki.algorithm.parameters.is_none()
                    && mldsa::public_key_fits(level, &spki.subject_public_key.data) =>
            {
                Ok(PublicKey::MlDsa(
                    level,
                    spki.subject_public_key.data.to_vec(),
                ))
            }
            Some(level) => Err(CertificateError::BadKey(level.as_str())),
            None => Err(CertificateError::UnsupportedKey(
                oid::algorithm_name(other).to_owned(),
            )),
        },
    }
}

/// What `read-certificate-data` prints about a certificate found on a token, in the
/// official helper's renderings.
pub struct ListingFacts {
    /// SHA-1 of the DER, lower-case hex.
    pub sha1_hex: String,
    /// The subject as Go's `pkix.Name.String()` prints it.
    pub subject: String,
    pub issuer: String,
    /// The serial in upper-case hex without leading zeros.
    pub serial_upper_hex: String,
}

/// The listing facts of a DER certificate (of any key type), or `None` if it does not
/// parse.
pub fn listing_facts(der: &[u8]) -> Option<ListingFacts> {
    use sha1::Digest as _;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    Some(ListingFacts {
        sha1_hex: hex::encode(sha1::Sha1::digest(der)),
        subject: go_name(&tbs.subject),
        issuer: go_name(&tbs.issuer),
        serial_upper_hex: tbs.serial.to_str_radix(16).to_uppercase(),
    })
}

/// A distinguished name as Go's `pkix.Name.String()` renders it, which users of the
/// official helper's listings and selectors compare against: attributes it does not
/// name first in certificate order as `OID=#hex`, then C, ST, L, STREET, POSTALCODE, O,
/// OU (several values of one type joined with `+`), the last CN and the last
/// SERIALNUMBER; the whole sequence printed in reverse, separated by commas.
pub fn go_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    // (OID suffix under 2.5.4, Go's name) in Go's order.
    const NAMED: [(u64, &str); 9] = [
        (6, "C"),
        (8, "ST"),
        (7, "L"),
        (9, "STREET"),
        (17, "POSTALCODE"),
        (10, "O"),
        (11, "OU"),
        (3, "CN"),
        (5, "SERIALNUMBER"),
    ];
    let mut values: Vec<(String, String)> = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let Ok(value) = atv.as_str() else {
                continue;
            };
            values.push((atv.attr_type().to_id_string(), value.to_owned()));
        }
    }
    let short = |oid: &str| {
        oid.strip_prefix("2.5.4.")
            .and_then(|s| s.parse::<u64>().ok())
            .and_then(|n| NAMED.iter().find(|(k, _)| *k == n).map(|(_, name)| *name))
    };
    // Each RDN is a list of (type text, value text) already rendered.
    let mut rdns: Vec<Vec<String>> = Vec::new();
    for (oid, value) in &values {
        if short(oid).is_none() {
            rdns.push(vec![format!(
                "{oid}=#{}",
                hex::encode(go_marshal_string(value))
            )]);
        }
    }
    for (suffix, label) in NAMED {
        let oid = format!("2.5.4.{suffix}");
        let all: Vec<&String> = values
            .iter()
            .filter(|(o, _)| *o == oid)
            .map(|(_, v)| v)
            .collect();
        let chosen: Vec<&String> = match label {
            "CN" | "SERIALNUMBER" => all.last().copied().into_iter().collect(),
            _ => all,
        };
        if chosen.iter().all(|v| v.is_empty()) && matches!(label, "CN" | "SERIALNUMBER") {
            continue;
        }
        if !chosen.is_empty() {
            rdns.push(
                chosen
                    .iter()
                    .map(|v| format!("{label}={}", go_escape(v)))
                    .collect(),
            );
        }
    }
    rdns.iter()
        .rev()
        .map(|rdn| rdn.join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's escaping of an attribute value: `,+"\<>;` always, `#` first, space first or last.
fn go_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (i, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i == last,
            '#' => i == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The DER Go's `asn1.Marshal` gives a string: PrintableString when every byte is in its
/// set, UTF8String otherwise.
fn go_marshal_string(value: &str) -> Vec<u8> {
    let printable = value.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || (b'\''..=b')').contains(&b)
            || (b'+'..=b'/').contains(&b)
            || b" :=?".contains(&b)
    });
    let mut out = vec![if printable { 0x13 } else { 0x0c }];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(der: &[u8]) -> String {
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        go_name(&cert.tbs_certificate.subject)
    }

    #[test]
    fn go_renders_names_in_its_own_order() {
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "host, one");
        dn.push(rcgen::DnType::OrganizationName, "Org");
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "a@b.example",
        );
        dn.push(rcgen::DnType::OrganizationalUnitName, " lead");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            name_of(cert.der()),
            "CN=host\\, one,OU=\\ lead,O=Org,C=DE,1.2.840.113549.1.9.1=#0c0b6140622e6578616d706c65"
        );
    }

    #[test]
    fn go_escapes() {
        assert_eq!(go_escape("#a b "), "\\#a b\\ ");
        assert_eq!(go_escape("a+b;c"), "a\\+b\\;c");
        assert_eq!(
            go_marshal_string("Ab 1"),
            vec![0x13, 4, b'A', b'b', b' ', b'1']
        );
        assert_eq!(go_marshal_string("a@b")[0], 0x0c);
    }
}
