//! The private key that signs: in memory from a file, on a token, or in the TPM.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use super::private_key::private_key;
use super::spec::IdentitySpec;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Role, guard_secret, read};
use crate::pkcs11::token::key::TokenKey;
use crate::pkcs11::token::search;
use crate::tpm::TpmKey;
use crate::tpm::key_file::PEM_LABEL as TPM_KEY_LABEL;
use crate::x509::{Digest, PrivateKey, PublicKey, SignatureError, pem};

/// The private key that signs: in memory from a file, on a token, or in the TPM.
/// Cloning shares the key (no second copy of the secret in memory), so that a signature
/// can be made on another thread.
#[derive(Clone, Debug)]
pub enum Signer {
    File(Arc<PrivateKey>),
    Token(Arc<TokenKey>),
    Tpm(Arc<TpmKey>),
}

impl Signer {
    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::File(key) => key.public_key(),
            Self::Token(key) => key.public_key().clone(),
            Self::Tpm(key) => key.public_key().clone(),
        }
    }

    /// Signs `message` hashed with `digest`: PKCS#1 v1.5 for RSA, DER ECDSA for EC.
    pub fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignatureError> {
        match self {
            Self::File(key) => key.sign(message, digest),
            Self::Token(key) => key.sign(message, digest),
            Self::Tpm(key) => key.sign(message, digest),
        }
    }

    /// The key alone, without a certificate, as `sign-string --private-key` allows.
    pub fn load_key_only(spec: &IdentitySpec, now: OffsetDateTime) -> Result<Self, IdentityError> {
        if let Some(token) = &spec.token {
            let found = search::find(token, None, false, now)?;
            return Ok(Self::Token(Arc::new(found.key)));
        }
        if let Some(handle) = spec.tpm.handle {
            return Ok(Self::Tpm(Arc::new(TpmKey::persistent(handle, &spec.tpm)?)));
        }
        let Some(key_path) = &spec.private_key else {
            return Err(IdentityError::new(
                ErrorKind::Usage,
                "no --private-key",
                "was given",
                "give --private-key FILE, or --certificate for a file that holds the key",
            ));
        };
        Self::from_key_file(spec, key_path)
    }

    /// The key of the key file at `path`: refused if others can read it (unless the spec
    /// allows it), then read and parsed.
    pub(super) fn from_key_file(spec: &IdentitySpec, path: &Path) -> Result<Self, IdentityError> {
        guard_secret(Role::PrivateKey, path, spec.readable_key_files)?;
        let bytes = read(Role::PrivateKey, path)?;
        Self::from_key_bytes(spec, path, &bytes)
    }

    /// The key in `bytes`, read from `path`: a TPM key when a `TSS2 PRIVATE KEY` block is
    /// there (as the official helper decides), else a key in memory.
    pub(super) fn from_key_bytes(
        spec: &IdentitySpec,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Self, IdentityError> {
        if pem::is_pem(bytes)
            && let Ok(blocks) = pem::blocks(bytes)
            && let Some(block) = blocks.iter().find(|b| b.label == TPM_KEY_LABEL)
        {
            return Ok(Self::Tpm(Arc::new(TpmKey::from_file(
                path, &block.der, &spec.tpm,
            )?)));
        }
        if let Some(flag) = &spec.tpm.explicit {
            return Err(IdentityError::new(
                ErrorKind::Usage,
                format!("private key {}", path.display()),
                format!("is not a TPM key, and {flag} is for TPM keys"),
                format!("drop {flag}"),
            ));
        }
        let key = private_key(path, bytes, spec.password.as_ref())?;
        Ok(Self::File(Arc::new(key)))
    }
}
