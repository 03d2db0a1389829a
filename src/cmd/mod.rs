//! One module per subcommand. Each takes its parsed flags, gets its plan from the
//! [`config`](crate::config) layer, does its job through the library, and returns an
//! [`Error`](crate::error::Error) worded for the user.

pub mod completion;
pub mod credential_process;
pub mod daemon_client;
pub mod demo;
pub mod emulate;
pub mod pki;
pub mod read_certificate_data;
pub mod serve;
pub mod sign_string;
pub mod update;
pub mod version;

use std::io::Write as _;

use std::time::Duration;

use crate::error::{Error, Result};

/// How long a stopping command waits for reads and writes still under way on the blocking
/// pool: a hung file system must not hold up a stop.
pub const BLOCKING_GRACE: Duration = Duration::from_millis(500);

/// Writes command output to stdout exactly as given (no trailing newline is added: the
/// official helper prints none, and scripts compare bytes).
pub fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// The single-threaded async runtime of the commands that talk to the network: an answer
/// or a request costs microseconds, so a second thread would add only hand-offs and a
/// second stack and malloc arena; what takes longer runs on the blocking pool.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::system("cannot start the async runtime"))
}
