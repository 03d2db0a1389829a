//! The key and the certificates of an identity given as files, following the official
//! helper's rules: no `--private-key` means the certificate file also holds the key
//! (combined PEM or PKCS#12). The leaf is the certificate whose public key is the key's.

use std::path::{Path, PathBuf};

use super::certificates::{certificates, holds_private_key};
use super::pkcs12::pkcs12;
use super::private_key::{private_key, read_private_key};
use super::spec::IdentitySpec;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Role, file_error, guard_secret, read};
use crate::x509::{Certificate, PrivateKey, pem};

/// Reads the key and every certificate offered for the leaf, and the certificate file's
/// path for messages.
pub fn key_and_certificates(
    spec: &IdentitySpec,
) -> Result<(PrivateKey, Vec<Certificate>, PathBuf), IdentityError> {
    let Some(cert_path) = spec.certificate.clone() else {
        return Err(IdentityError::new(
            ErrorKind::Usage,
            "no --certificate",
            "was given",
            "give --certificate FILE (and --private-key FILE unless the certificate file holds the key); operating-system certificate stores are not available on Linux",
        ));
    };
    let cert_bytes = read(Role::Certificate, &cert_path)?;
    let Some(certs) = certificates(Role::Certificate, &cert_path, &cert_bytes)? else {
        if spec.private_key.is_none() && !pem::is_pem(&cert_bytes) {
            let (key, certs) = pkcs12_file(spec, &cert_path, &cert_bytes)?;
            return Ok((key, certs, cert_path));
        }
        return Err(no_certificate(&cert_path, &cert_bytes));
    };
    let key = match spec.private_key.as_deref() {
        Some(key_path) => {
            read_private_key(key_path, spec.password.as_ref(), spec.readable_key_files)?
        }
        None => combined_key(spec, &cert_path, &cert_bytes)?,
    };
    Ok((key, certs, cert_path))
}

/// The key of a PEM file that also holds the certificates.
fn combined_key(
    spec: &IdentitySpec,
    cert_path: &Path,
    cert_bytes: &[u8],
) -> Result<PrivateKey, IdentityError> {
    if !holds_private_key(cert_bytes) {
        return Err(Role::Certificate.error(
            ErrorKind::Usage,
            cert_path,
            "holds a certificate but no private key",
            "give the key with --private-key FILE",
        ));
    }
    // A combined file does hold a key: its own error (wrong or missing password, weak
    // key, unsupported curve) is the one the user can act on.
    guard_secret(Role::Certificate, cert_path, spec.readable_key_files)?;
    private_key(cert_path, cert_bytes, spec.password.as_ref())
}

/// The key and certificates of a PKCS#12 file given as `--certificate`.
fn pkcs12_file(
    spec: &IdentitySpec,
    cert_path: &Path,
    cert_bytes: &[u8],
) -> Result<(PrivateKey, Vec<Certificate>), IdentityError> {
    if spec.intermediates.is_some() {
        return Err(Role::Certificate.error(
            ErrorKind::Usage,
            cert_path,
            "is PKCS#12 and --intermediates was given",
            "put the whole chain in the PKCS#12 file and drop --intermediates",
        ));
    }
    guard_secret(Role::Certificate, cert_path, spec.readable_key_files)?;
    pkcs12(cert_path, cert_bytes, spec.password.as_ref())
}

/// A certificate file with no certificate in it (and no PKCS#12 to fall back on).
fn no_certificate(cert_path: &Path, cert_bytes: &[u8]) -> IdentityError {
    file_error(
        Role::Certificate,
        cert_path,
        if pem::is_pem(cert_bytes) {
            "holds no CERTIFICATE block"
        } else {
            "is neither a PEM nor a DER certificate"
        },
        "give the X.509 certificate file (PEM or DER), or a PKCS#12 file without --private-key",
    )
}

/// Splits `certs` into the leaf, the one whose public key is `key`'s, and the others.
pub fn leaf_for_key(
    spec: &IdentitySpec,
    key: &PrivateKey,
    mut certs: Vec<Certificate>,
    cert_path: &Path,
) -> Result<(Certificate, Vec<Certificate>), IdentityError> {
    let public = key.public_key();
    let Some(leaf_index) = certs.iter().position(|c| *c.public_key() == public) else {
        let key_path = spec.private_key.as_deref().unwrap_or(cert_path);
        let what = if certs.len() == 1 {
            format!(
                "does not match the certificate {} in {}",
                certs[0].describe(),
                cert_path.display()
            )
        } else {
            format!(
                "matches none of the {} certificates in {}",
                certs.len(),
                cert_path.display()
            )
        };
        return Err(IdentityError::new(
            ErrorKind::Mismatch,
            format!("private key {} ({})", key_path.display(), public.describe()),
            what,
            "give the key and the certificate that were issued together",
        ));
    };
    let leaf = certs.remove(leaf_index);
    Ok((leaf, certs))
}
