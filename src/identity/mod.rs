//! Where the certificate and the private key live, and the checks that make a pair usable.
//!
//! An [`Identity`] is a leaf certificate, the chain to send with it, and the key that signs.
//! Loading one reports every problem the service would otherwise answer with an opaque
//! "Invalid signature" or "Untrusted Signing Certificate": a key that does not match the
//! certificate, a CA certificate used as a leaf, an expired certificate, a weak key. Each
//! error has a kind ([`ErrorKind`]) that tells the daemon whether to retry.
//!
//! - [`load`]: the identity, from files or from a token ([`crate::pkcs11`]).
//! - [`signer`]: the key that signs, in memory or on a token.
//! - [`spec`]: the flags that say where the identity is.
//! - [`file`](mod@file): the file readers ([`certificates`], [`private_key`], [`pkcs12`]).
//! - [`checks`]: the leaf and chain checks.
//!
//! Certificates, keys and PEM themselves are in [`crate::x509`], shared with the token
//! side, and re-exported here under their old paths.

pub mod certificates;
pub mod checks;
pub mod file;
mod key_and_certificates;
mod key_der;
mod key_encryption;
mod key_problem;
pub mod load;
#[cfg(test)]
mod mldsa_tests;
pub mod pkcs12;
pub mod private_key;
pub mod signer;
pub mod spec;

pub use crate::identity_error::{ErrorKind, IdentityError};
pub use crate::x509::{
    Certificate, Digest, KeyType, MAX_CHAIN, PrivateKey, PublicKey, order_chain,
};
pub use crate::x509::{certificate, key, pem};
pub use checks::rfc3339;
pub use load::Identity;
pub use signer::Signer;
pub use spec::IdentitySpec;
