//! The key and the certificates of an identity given as files, following the official
//! helper's rules: no `--private-key` means the certificate file also holds the key
//! (combined PEM, with a TPM key or a key in memory, or PKCS#12); `handle:0x81...` is a
//! persistent TPM key. The leaf is the certificate whose public key is the key's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::certificates::{certificates, holds_private_key};
use super::pkcs12::pkcs12;
use super::signer::Signer;
use super::spec::IdentitySpec;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Role, file_error, guard_secret, read};
use crate::tpm::TpmKey;
use crate::x509::{Certificate, KeyType, PrivateKey, pem};

/// Reads the key and every certificate offered for the leaf, and the certificate file's
/// path for messages.
pub fn key_and_certificates(
    spec: &IdentitySpec,
) -> Result<(Signer, Vec<Certificate>, PathBuf), IdentityError> {
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
        if spec.private_key.is_none() && spec.tpm.handle.is_none() && !pem::is_pem(&cert_bytes) {
            let (key, certs) = pkcs12_file(spec, &cert_path, &cert_bytes)?;
            return Ok((Signer::File(Arc::new(key)), certs, cert_path));
        }
        return Err(no_certificate(&cert_path, &cert_bytes));
    };
    let key = match (spec.tpm.handle, spec.private_key.as_deref()) {
        (Some(handle), _) => Signer::Tpm(Arc::new(TpmKey::persistent(handle, &spec.tpm)?)),
        (None, Some(key_path)) => Signer::from_key_file(spec, key_path)?,
        (None, None) => combined_key(spec, &cert_path, &cert_bytes)?,
    };
    Ok((key, certs, cert_path))
}

/// The key of a PEM file that also holds the certificates.
fn combined_key(
    spec: &IdentitySpec,
    cert_path: &Path,
    cert_bytes: &[u8],
) -> Result<Signer, IdentityError> {
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
    Signer::from_key_bytes(spec, cert_path, cert_bytes)
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
    key: &Signer,
    mut certs: Vec<Certificate>,
    cert_path: &Path,
) -> Result<(Certificate, Vec<Certificate>), IdentityError> {
    let public = key.public_key();
    let Some(leaf_index) = certs.iter().position(|c| *c.public_key() == public) else {
        if let Signer::Tpm(tpm) = key
            && let Some(KeyType::MlDsa(level)) = certs.first().map(|c| c.public_key().key_type())
        {
            return Err(IdentityError::new(
                ErrorKind::Unsupported,
                tpm.describe(),
                format!(
                    "is given for an {level} certificate, and ML-DSA keys in a TPM are not supported"
                ),
                "give the ML-DSA key as a file with --private-key",
            ));
        }
        let key_name = match key {
            Signer::Tpm(tpm) => tpm.describe(),
            _ => format!(
                "private key {}",
                spec.private_key.as_deref().unwrap_or(cert_path).display()
            ),
        };
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
            format!("{key_name} ({})", public.describe()),
            what,
            "give the key and the certificate that were issued together",
        ));
    };
    let leaf = certs.remove(leaf_index);
    Ok((leaf, certs))
}
