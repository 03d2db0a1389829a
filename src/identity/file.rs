//! Certificates and private keys from files, in every format users bring, under one path:
//! PEM or DER certificates and bundles; PKCS#8 (plain and encrypted), PKCS#1 RSA and SEC1
//! EC keys; combined key+certificate PEM; and PKCS#12.
//!
//! Each reader names the file and the fix in its errors, because a wrong path or format is
//! the most common first-run failure. The readers live in modules of their own; this one
//! gathers them for the commands and the configuration.

pub use super::certificates::{bundle, certificates, holds_private_key, parse_bundle};
pub use super::pkcs12::pkcs12;
pub use super::private_key::private_key;
pub use crate::input_file::{Readable, Role, file_error, guard_secret, read};
