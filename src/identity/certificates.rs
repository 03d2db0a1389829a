//! Certificates from files: every certificate of a PEM file or the one of a DER file, and
//! intermediates bundles, which must hold certificates only.

use std::path::Path;

use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Role, file_error, read};
use crate::x509::{Certificate, pem};

/// Every certificate of a PEM file (other blocks skipped) or the one certificate of a DER
/// file. `Ok(None)` means the file holds no certificate at all (it may be PKCS#12).
pub fn certificates(
    role: Role,
    path: &Path,
    bytes: &[u8],
) -> Result<Option<Vec<Certificate>>, IdentityError> {
    if pem::is_pem(bytes) {
        let blocks = pem::blocks(bytes).map_err(|e| {
            file_error(role, path, e.to_string(), "replace it with a complete copy")
        })?;
        let mut certs = Vec::new();
        for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
            certs.push(parse_certificate(role, path, &block.der)?);
        }
        return Ok(if certs.is_empty() { None } else { Some(certs) });
    }
    match Certificate::from_der(bytes) {
        Ok(cert) => Ok(Some(vec![cert])),
        Err(_) => Ok(None),
    }
}

/// One DER certificate of the file at `path`; a certificate that does not parse, or has
/// a key the service does not take, is an error about the file.
pub fn parse_certificate(
    role: Role,
    path: &Path,
    der: &[u8],
) -> Result<Certificate, IdentityError> {
    Certificate::from_der(der).map_err(|e| {
        role.error(
            ErrorKind::from(&e),
            path,
            format!("holds a certificate that cannot be used: {e}"),
            "give an X.509 certificate with an RSA, EC P-256/P-384/P-521 or ML-DSA key",
        )
    })
}

/// An intermediates bundle: every PEM block must be a certificate (text between blocks
/// is fine), or the file is a single DER certificate.
pub fn bundle(path: &Path) -> Result<Vec<Certificate>, IdentityError> {
    let bytes = read(Role::Intermediates, path)?;
    parse_bundle(path, &bytes)
}

/// [`bundle`] for bytes already read from `path`.
pub fn parse_bundle(path: &Path, bytes: &[u8]) -> Result<Vec<Certificate>, IdentityError> {
    let role = Role::Intermediates;
    if !pem::is_pem(bytes) {
        return Certificate::from_der(bytes).map(|c| vec![c]).map_err(|_| {
            file_error(
                role,
                path,
                "is neither PEM nor a DER certificate",
                "give a PEM file of CERTIFICATE blocks",
            )
        });
    }
    let blocks = pem::blocks(bytes)
        .map_err(|e| file_error(role, path, e.to_string(), "replace it with a complete copy"))?;
    if let Some(other) = blocks.iter().find(|b| b.label != "CERTIFICATE") {
        return Err(file_error(
            role,
            path,
            format!(
                "holds a \"{}\" block; every block must be a CERTIFICATE",
                other.label
            ),
            "remove keys and other blocks from the bundle",
        ));
    }
    blocks
        .iter()
        .map(|b| parse_certificate(role, path, &b.der))
        .collect()
}

/// True when `bytes` are PEM with a private key block (of any kind, encrypted or not),
/// as a combined key+certificate file has.
pub fn holds_private_key(bytes: &[u8]) -> bool {
    pem::is_pem(bytes)
        && pem::blocks(bytes)
            .is_ok_and(|blocks| blocks.iter().any(|b| b.label.ends_with("PRIVATE KEY")))
}
