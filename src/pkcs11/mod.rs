//! PKCS#11 tokens and HSMs: the certificate and the key named by RFC 7512 `pkcs11:` URIs,
//! the key kept where it cannot be copied.
//!
//! The module is loaded at run time (the `cryptoki` crate opens it with `dlopen`), so the
//! binary runs on hosts without any PKCS#11 library. The default module is p11-kit's
//! proxy; `--pkcs11-lib` or a URI's `module-path` names another.
//!
//! - [`uri`]: parsing and printing URIs.
//! - [`pin`]: where PINs come from, none of them needing a terminal.
//! - [`module`]: the process-wide module, its long-lived sessions, re-initialisation.
//! - [`token`]: finding the certificate and the key, and signing.
//!
//! Its errors are [`crate::identity_error::IdentityError`]s, whose kind says whether a
//! failure may pass (a token not plugged in yet) or needs a person (a PIN the token
//! refused). Certificates and keys are [`crate::x509`]'s; nothing here depends on
//! [`crate::identity`], which builds on this module.

pub mod module;
mod percent;
pub mod pin;
pub mod token;
pub mod uri;

pub use module::DEFAULT_MODULE;
pub use pin::PinOptions;
pub use token::{Found, FoundCertificate, Listed, TokenKey, TokenSpec};
pub use uri::{ObjectType, Pkcs11Uri};
