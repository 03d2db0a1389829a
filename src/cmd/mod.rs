//! One module per subcommand. Each takes its parsed flags, does its job through the
//! library, and returns an [`Error`](crate::error::Error) worded for the user.

pub mod credential_process;
pub mod demo;
pub mod emulate;
pub mod pki;
pub mod read_certificate_data;
pub mod serve;
pub mod sign_string;
pub mod update;

use std::io::Write as _;

/// Writes command output to stdout exactly as given (no trailing newline is added: the
/// official helper prints none, and scripts compare bytes).
pub fn print(bytes: &[u8]) -> crate::error::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
