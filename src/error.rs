//! The error every command returns: one line for the user, exit code 1.

use crate::identity::IdentityError;
use crate::identity::key::SignatureError;

/// A failure to report on stderr as one line; the process then exits with code 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags or configuration that cannot work together.
    #[error("{0}")]
    Usage(String),
    /// A certificate, key or bundle that cannot be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The key refused to sign.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// Writing the result failed (for example, stdout was closed).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

/// The result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;
