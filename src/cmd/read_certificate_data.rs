//! `read-certificate-data`: the certificate facts the signing protocol uses, as the
//! official helper prints them.

use serde::Serialize;

use crate::cli::ReadCertificateDataArgs;
use crate::config::identity::CertificateSource;
use crate::config::{self, Inputs};
use crate::error::{Error, Result};
use crate::identity::file::{self, Role};
use crate::identity::{Certificate, KeyType};
use crate::pkcs11::TokenSpec;

/// The official helper's `CertificateData`, field order included.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateData {
    pub key_type: &'static str,
    pub certificate_data: String,
    pub serial_number: String,
    pub supported_algorithms: Vec<String>,
}

impl CertificateData {
    /// RSA and EC list one algorithm per digest (`RSASHA256`, …); ML-DSA, which hashes
    /// nothing, lists its own name only (`ML-DSA-65`), as the official helper does.
    pub fn of(cert: &Certificate) -> Self {
        let key_type = cert.public_key().key_type();
        let name = key_type.as_str();
        let supported_algorithms = match key_type {
            KeyType::MlDsa(_) => vec![name.to_owned()],
            KeyType::Rsa | KeyType::Ec => ["SHA256", "SHA384", "SHA512"]
                .iter()
                .map(|d| format!("{name}{d}"))
                .collect(),
        };
        Self {
            key_type: name,
            certificate_data: crate::sigv4x509::certificate_header(cert.der()),
            serial_number: cert.serial_decimal().to_owned(),
            supported_algorithms,
        }
    }
}

pub fn run(args: &ReadCertificateDataArgs, inputs: &Inputs) -> Result<()> {
    let path = match config::identity::certificate_source(args, inputs)? {
        CertificateSource::Token(token) => return list_token_certificates(&token),
        CertificateSource::File(path) => path,
    };
    let bytes = file::read(Role::Certificate, &path)?;
    let Some(certs) = file::certificates(Role::Certificate, &path, &bytes)? else {
        return Err(crate::identity::file::file_error(
            Role::Certificate,
            &path,
            "holds no certificate",
            "give a PEM or DER X.509 certificate (PKCS#12 files are not read by this command)",
        )
        .into());
    };
    let data = CertificateData::of(&certs[0]);
    let json = serde_json::to_vec(&data).map_err(Error::failed("cannot render the JSON"))?;
    super::print(&json)
}

/// The official helper's listing of the certificates a `pkcs11:` URI matches: a
/// `Matching identities` header, then per certificate its SHA-1 fingerprint, subject and
/// issuer as Go prints them, serial in upper-case hex and a URI that names it, each block
/// ended by a blank line; or `No matching identities`.
fn list_token_certificates(token: &TokenSpec) -> Result<()> {
    let listed = crate::pkcs11::token::list(token)?;
    let mut out = String::new();
    if listed.is_empty() {
        out.push_str("No matching identities\n");
    } else {
        out.push_str("Matching identities\n");
        for (index, item) in listed.iter().enumerate() {
            let Some(facts) = crate::identity::certificate::listing_facts(&item.der) else {
                continue;
            };
            out.push_str(&format!(
                "{}) Hex Fingerprint: {}\nSubject: {}\nIssuer: {}\nSerial Number: {}\nURI: {}\n\n",
                index + 1,
                facts.sha1_hex,
                facts.subject,
                facts.issuer,
                facts.serial_upper_hex,
                item.uri
            ));
        }
    }
    super::print(out.as_bytes())
}
