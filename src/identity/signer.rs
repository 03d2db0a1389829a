//! The private key that signs, in memory from a file or on a token.

use std::sync::Arc;

use time::OffsetDateTime;

use super::private_key::read_private_key;
use super::spec::IdentitySpec;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::token::key::TokenKey;
use crate::pkcs11::token::search;
use crate::x509::{Digest, PrivateKey, PublicKey, SignatureError};

/// The private key that signs: in memory from a file, or on a token. Cloning shares the
/// key (no second copy of the secret in memory), so that a signature can be made on
/// another thread.
#[derive(Clone, Debug)]
pub enum Signer {
    File(Arc<PrivateKey>),
    Token(Arc<TokenKey>),
}

impl Signer {
    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::File(key) => key.public_key(),
            Self::Token(key) => key.public_key().clone(),
        }
    }

    /// Signs `message` hashed with `digest`: PKCS#1 v1.5 for RSA, DER ECDSA for EC.
    pub fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignatureError> {
        match self {
            Self::File(key) => key.sign(message, digest),
            Self::Token(key) => key.sign(message, digest),
        }
    }

    /// The key alone, without a certificate, as `sign-string --private-key` allows.
    pub fn load_key_only(spec: &IdentitySpec, now: OffsetDateTime) -> Result<Self, IdentityError> {
        if let Some(token) = &spec.token {
            let found = search::find(token, None, false, now)?;
            return Ok(Self::Token(Arc::new(found.key)));
        }
        let Some(key_path) = &spec.private_key else {
            return Err(IdentityError::new(
                ErrorKind::Usage,
                "no --private-key",
                "was given",
                "give --private-key FILE, or --certificate for a file that holds the key",
            ));
        };
        let key = read_private_key(key_path, spec.password.as_ref(), spec.readable_key_files)?;
        Ok(Self::File(Arc::new(key)))
    }
}
