//! PKCS#11 tokens and HSMs: the certificate and the key named by RFC 7512 `pkcs11:` URIs,
//! the key kept where it cannot be copied.
//!
//! - [`uri`]: parsing and printing URIs.

pub mod uri;

pub use uri::{ObjectType, Pkcs11Uri};
