//! rolesanywhere-helper: temporary AWS credentials from an X.509 certificate through IAM
//! Roles Anywhere, as a drop-in for the official `aws_signing_helper`.
//!
//! The flow is one-way: `config -> identity -> sigv4x509 -> rolesanywhere -> refresh ->
//! {credential-process | update | serve}`. The emulator shares only the canonicalisation
//! of [`sigv4x509`] with the client side.

pub mod arn;
pub mod backoff;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod credentials;
pub mod credfile;
pub mod daemon_wire;
pub mod emulator;
pub mod endpoint;
pub mod error;
pub mod files;
#[cfg(fuzzing)]
pub mod fuzz_entry;
pub mod httpd;
pub mod identity;
pub mod identity_error;
pub mod input_file;
pub mod logging;
pub mod pkcs11;
pub mod pki;
pub mod refresh;
pub mod refusal;
pub mod rolesanywhere;
pub mod secret;
pub mod serve;
pub mod signals;
pub mod sigv4x509;
pub mod sts;
pub mod systemd;
pub mod tpm;
pub mod x509;
