//! `read-certificate-data`: the certificate facts the signing protocol uses, as the
//! official helper prints them.

use std::path::Path;

use serde::Serialize;

use crate::cli::ReadCertificateDataArgs;
use crate::config;
use crate::error::{Error, Result};
use crate::identity::Certificate;
use crate::identity::file::{self, Role};

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
    pub fn of(cert: &Certificate) -> Self {
        let name = cert.public_key().key_type().as_str();
        Self {
            key_type: name,
            certificate_data: crate::sigv4x509::certificate_header(cert.der()),
            serial_number: cert.serial_decimal().to_owned(),
            supported_algorithms: ["SHA256", "SHA384", "SHA512"]
                .iter()
                .map(|d| format!("{name}{d}"))
                .collect(),
        }
    }
}

pub fn run(args: &ReadCertificateDataArgs) -> Result<()> {
    if args.cert_selector.is_some() || args.system_store_name.is_some() {
        return Err(config::store_unavailable());
    }
    let Some(path) = &args.certificate else {
        return Err(Error::Usage(
            "give --certificate FILE; operating-system certificate stores are not available on Linux".into(),
        ));
    };
    if path.starts_with("pkcs11:") {
        return Err(Error::Usage(format!(
            "{path}: PKCS#11 URIs are not available in this version; use a certificate file"
        )));
    }
    let path = Path::new(path);
    let bytes = file::read(Role::Certificate, path)?;
    let Some(certs) = file::certificates(Role::Certificate, path, &bytes)? else {
        return Err(crate::identity::file::file_error(
            Role::Certificate,
            path,
            "holds no certificate",
            "give a PEM or DER X.509 certificate (PKCS#12 files are not read by this command)",
        )
        .into());
    };
    let data = CertificateData::of(&certs[0]);
    let json = serde_json::to_vec(&data).map_err(|e| Error::Other(e.to_string()))?;
    super::print(&json)
}
