//! PKCS#11 tokens and HSMs: the certificate and the key named by RFC 7512 `pkcs11:` URIs,
//! the key kept where it cannot be copied.
//!
//! - [`uri`]: parsing and printing URIs.
//! - [`pin`]: where PINs come from, none of them needing a terminal.

pub mod pin;
pub mod uri;

pub use pin::PinOptions;
pub use uri::{ObjectType, Pkcs11Uri};
