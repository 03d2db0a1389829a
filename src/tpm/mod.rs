//! TPM 2.0 keys: `TSS2 PRIVATE KEY` files and persistent handles, signing through the
//! TPM with a password session.
//!
//! The TPM is reached without any TPM library: commands are framed here ([`wire`]) and
//! sent to the character device or to swtpm's Unix socket ([`device`]), so the binary
//! runs on hosts without tpm2-tss, and the commands needed are five ([`commands`]).
//!
//! - [`key_file`]: the key file format (ASN.1 `TPMKey`).
//! - [`public`]: a key's public area, and the storage primary template.
//! - [`key`]: a key ready to sign, as the identity holds it.
//! - [`refused`]: passwords the TPM refused, never sent again.

pub mod commands;
pub mod device;
pub mod device_path;
pub mod error;
pub mod key;
pub mod key_file;
pub mod public;
pub mod rc;
pub mod refused;
pub mod wire;

pub use error::TpmError;
pub use key::{TpmKey, TpmOptions, TpmPassword};
