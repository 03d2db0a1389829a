//! The one way the long-running commands learn that they should stop: Ctrl-C (SIGINT) or
//! SIGTERM (what systemd and `kill` send).
//!
//! The handlers are installed by [`StopSignals::install`], before a command announces that
//! it is ready: a signal that arrived between the announcement and a lazily installed
//! handler would otherwise kill the process without its cleanup.

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Installs the handlers; from now on SIGINT and SIGTERM are caught. Must be called
    /// inside a tokio runtime.
    pub fn install() -> crate::error::Result<Self> {
        let install = |kind| {
            signal(kind).map_err(crate::error::Error::system(
                "cannot install the signal handlers",
            ))
        };
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    /// Returns when SIGINT or SIGTERM arrives (or arrived since `install`).
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
