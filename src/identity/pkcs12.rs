//! PKCS#12 (`.p12`, `.pfx`) files: one private key and the certificates exported with it.

use std::path::Path;

use super::certificates::parse_certificate;
use super::key_der::pkcs8_key;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Role, file_error};
use crate::secret::Secret;
use crate::x509::{Certificate, PrivateKey};

/// A private key from PKCS#12 (PFX): the key, and every certificate in the file.
pub fn pkcs12(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<(PrivateKey, Vec<Certificate>), IdentityError> {
    let role = Role::Certificate;
    let given = password.map(Secret::expose).unwrap_or("");
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, given)
        .map_err(|e| archive_error(path, e, password.is_some()))?;
    let key = match archive.keys.as_slice() {
        [] => {
            return Err(file_error(
                role,
                path,
                "is a PKCS#12 file with no private key",
                "export the key together with the certificate",
            ));
        }
        [one] => pkcs8_key(one.key.as_der()).map_err(|e| e.into_error(role, path))?,
        _ => {
            return Err(file_error(
                role,
                path,
                "is a PKCS#12 file with more than one private key",
                "export a file with only the key for this host",
            ));
        }
    };
    let certs = archive
        .certs
        .iter()
        .map(|bag| parse_certificate(role, path, bag.cert.as_der()))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(file_error(
            role,
            path,
            "is a PKCS#12 file with no certificate",
            "export the certificate together with the key",
        ));
    }
    Ok((key, certs))
}

/// Why the archive could not be opened: a password missing or wrong, not PKCS#12 at all,
/// or a PKCS#12 file protected in a way the reader does not support.
fn archive_error(
    path: &Path,
    error: p12_keystore::error::Error,
    password_given: bool,
) -> IdentityError {
    use p12_keystore::error::Error;
    let role = Role::Certificate;
    match error {
        Error::MacError(_) if !password_given => role.error(
            ErrorKind::Password,
            path,
            "is a PKCS#12 file protected by a password",
            "give it with --pkcs8-password-file, $ROLESANYWHERE_PKCS8_PASSWORD or --pkcs8-password",
        ),
        Error::MacError(_) => role.error(
            ErrorKind::Password,
            path,
            "is a PKCS#12 file and the password is wrong",
            "check the password",
        ),
        Error::DerError(_) => file_error(
            role,
            path,
            "holds neither a PEM or DER certificate nor a PKCS#12 file",
            "give a PEM or DER certificate, or a .p12/.pfx file",
        ),
        other => role.error(
            ErrorKind::Unsupported,
            path,
            format!("is a PKCS#12 file that cannot be read ({other})"),
            "re-export it with AES-256 and PBKDF2 (openssl pkcs12 -export defaults)",
        ),
    }
}
