//! The error every command returns: one line for the user, exit code 1. Each layer has
//! its own error type; this one only gathers them, with the context a command adds.

use crate::config::ConfigError;
use crate::identity::IdentityError;
use crate::identity::key::SignatureError;
use crate::refresh::{FetchError, Unavailable};
use crate::rolesanywhere::{ClientError, CreateSessionError};

/// A failure to report on stderr as one line; the process then exits with code 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags, environment or config file that cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A certificate, key or bundle that cannot be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The key refused to sign.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The HTTPS client for the service cannot be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// CreateSession did not yield credentials.
    #[error(transparent)]
    CreateSession(#[from] CreateSessionError),
    /// CreateSession or a hop of the role chain did not yield credentials.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A role (of `serve`) or profile (of `update`) got no credentials.
    #[error("{context}: {source}")]
    Credentials {
        context: String,
        source: Unavailable,
    },
    /// The operating system refused something the command needs: a listening socket, a
    /// signal handler, a file to write.
    #[error("{what}: {source}")]
    System {
        what: String,
        source: std::io::Error,
    },
    /// The credential daemon asked by `credential-process --daemon-socket` gave nothing.
    #[error(transparent)]
    Daemon(#[from] crate::daemon_wire::DaemonError),
    /// The emulator could not start or run.
    #[error(transparent)]
    Emulator(#[from] crate::emulator::EmulatorError),
    /// The dev PKI could not be made.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// Writing the result failed (for example, stdout was closed).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// A part of the command failed, in its own words.
    #[error("{what}: {source}")]
    Failed {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// An error of the operating system while doing `what`.
    pub fn system(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::System { what, source }
    }

    /// A failure of a part, while doing `what`.
    pub fn failed<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> Self {
        let what = what.into();
        move |source| Self::Failed {
            what,
            source: source.into(),
        }
    }
}

/// The result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;
