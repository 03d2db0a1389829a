//! Certificates, keys and PEM as both the file side ([`crate::identity`]) and the token side
//! ([`crate::pkcs11`]) need them: parsing, the facts worth checking, signing and verifying.
//!
//! Nothing here reads a file or talks to a token; the modules that do build on this one.
//!
//! - [`certificate`]: parsed X.509 certificates and the facts the helper uses.
//! - [`key`]: private and public keys, digests, the signing primitive.
//! - [`chain`]: ordering the intermediates sent with the leaf, and the service's limit.
//! - [`pem`]: a tolerant PEM scanner.
//! - [`mldsa`]: ML-DSA (FIPS 204) keys, their PKCS#8 encodings and signatures.
//! - [`oid`]: the object identifiers met in keys and certificates.

pub mod certificate;
pub mod chain;
pub mod key;
pub mod mldsa;
pub mod oid;
pub mod pem;

pub use certificate::{Certificate, CertificateError};
pub use chain::{MAX_CHAIN, order_chain};
pub use key::{Digest, KeyType, PrivateKey, PublicKey, SignatureError};
