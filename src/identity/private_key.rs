//! The private key of a key file (or of a combined key+certificate PEM): PEM or DER, in
//! PKCS#8 (plain or encrypted), PKCS#1 or SEC1 form.

use std::path::Path;

use pkcs8::PrivateKeyInfoRef;
use pkcs8::der::Decode as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;

use super::key_der::{pkcs1_key, pkcs8_key, sec1_key};
use super::key_encryption::encrypted_pkcs8_key;
use super::key_problem::KeyProblem;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Readable, Role, file_error, guard_secret, read};
use crate::secret::Secret;
use crate::x509::key::PrivateKey;
use crate::x509::pem;

/// The private key in a file: the first key block of a PEM file (certificates and
/// `EC PARAMETERS` blocks are skipped), or a DER key in any of the supported encodings.
pub fn private_key(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<PrivateKey, IdentityError> {
    let role = Role::PrivateKey;
    let err = |problem: String, fix: &str| file_error(role, path, problem, fix);
    if !pem::is_pem(bytes) {
        return der_key(bytes, password).map_err(|e| e.into_error(role, path));
    }
    let blocks =
        pem::blocks(bytes).map_err(|e| err(e.to_string(), "replace it with a complete copy"))?;
    let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
        let found: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
        let found = if found.is_empty() {
            "no PEM blocks".to_owned()
        } else {
            found.join(", ")
        };
        return Err(err(
            format!("holds no private key (found {found})"),
            "give the file that holds the PRIVATE KEY block",
        ));
    };
    if block.legacy_encrypted {
        return Err(role.error(
            ErrorKind::Unsupported,
            path,
            "is encrypted with OpenSSL's legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which is not supported",
            "convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW",
        ));
    }
    let parsed = match block.label.as_str() {
        "PRIVATE KEY" => refuse_password(password).and_then(|()| pkcs8_key(&block.der)),
        "ENCRYPTED PRIVATE KEY" => encrypted_pkcs8_key(&block.der, password),
        "RSA PRIVATE KEY" => refuse_password(password).and_then(|()| pkcs1_key(&block.der)),
        "EC PRIVATE KEY" => refuse_password(password).and_then(|()| sec1_key(&block.der)),
        other => Err(KeyProblem::Unsupported(format!("a \"{other}\" block"))),
    };
    parsed.map_err(|e| e.into_error(role, path))
}

/// Refuses a password given for a key that is not encrypted.
fn refuse_password(password: Option<&Secret>) -> Result<(), KeyProblem> {
    match password {
        Some(_) => Err(KeyProblem::PasswordNotNeeded),
        None => Ok(()),
    }
}

/// A DER key file: plain PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1, told apart by trying
/// each structure (they differ from their first elements on, so at most one parses).
fn der_key(der: &[u8], password: Option<&Secret>) -> Result<PrivateKey, KeyProblem> {
    if PrivateKeyInfoRef::from_der(der).is_ok() {
        refuse_password(password)?;
        return pkcs8_key(der);
    }
    if pkcs8::EncryptedPrivateKeyInfoRef::from_der(der).is_ok() {
        return encrypted_pkcs8_key(der, password);
    }
    if rsa::RsaPrivateKey::from_pkcs1_der(der).is_ok() {
        refuse_password(password)?;
        return pkcs1_key(der);
    }
    if sec1::EcPrivateKey::from_der(der).is_ok() {
        refuse_password(password)?;
        return sec1_key(der);
    }
    Err(KeyProblem::Malformed(
        "neither PEM nor a DER PKCS#8, PKCS#1 or SEC1 key".into(),
    ))
}

/// The key of the key file at `path`: refused if others can read it (unless `readable`
/// allows it), read within limits, then parsed.
pub fn read_private_key(
    path: &Path,
    password: Option<&Secret>,
    readable: Readable,
) -> Result<PrivateKey, IdentityError> {
    guard_secret(Role::PrivateKey, path, readable)?;
    let bytes = read(Role::PrivateKey, path)?;
    private_key(path, &bytes, password)
}
