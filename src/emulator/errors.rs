//! The errors the emulator answers with, and the errors that stop it from starting.
//!
//! A refused CreateSession carries the AWS restJson1 error shape: a status, the error type in
//! `X-Amzn-ErrorType`, and `{"message":"..."}`. The message is the one the real service
//! sends (`Invalid signature`, `Untrusted Signing Certificate`, ...) so that clients see the
//! same text they will see in production; the precise reason, which the real service keeps
//! to itself, travels separately in the `X-Emulator-Reason` header and in the request log.

use std::fmt;

use hyper::StatusCode;

/// The error shapes of the Roles Anywhere model, plus the ones fault injection produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 403: authentication or authorisation failed.
    AccessDenied,
    /// 400: the request does not satisfy the API's constraints.
    Validation,
    /// 404: the trust anchor or profile does not exist.
    ResourceNotFound,
    /// 429: too many requests.
    Throttling,
    /// 500: the service failed.
    InternalServer,
    /// 503: the service is unavailable.
    ServiceUnavailable,
    /// 413: the request is larger than the emulator reads.
    PayloadTooLarge,
}

impl ErrorKind {
    /// The HTTP status of this error.
    pub fn status(self) -> StatusCode {
        match self {
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::Validation => StatusCode::BAD_REQUEST,
            Self::ResourceNotFound => StatusCode::NOT_FOUND,
            Self::Throttling => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The value of `X-Amzn-ErrorType`.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDeniedException",
            Self::Validation => "ValidationException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::Throttling => "ThrottlingException",
            Self::InternalServer => "InternalServerException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::PayloadTooLarge => "RequestEntityTooLargeException",
        }
    }

    /// The error kind fault injection uses for a status code.
    pub fn for_status(status: u16) -> Self {
        match status {
            400 => Self::Validation,
            403 => Self::AccessDenied,
            404 => Self::ResourceNotFound,
            429 => Self::Throttling,
            503 => Self::ServiceUnavailable,
            _ => Self::InternalServer,
        }
    }
}

/// The message of a signature failure, as the real service words it.
pub const INVALID_SIGNATURE: &str = "Invalid signature";
/// The message of a request whose `X-Amz-Date` is too far from the server clock.
pub const SIGNATURE_EXPIRED: &str = "Signature expired";
/// The message of a chain, validity or revocation failure, as the real service words it.
pub const UNTRUSTED_CERTIFICATE: &str = "Untrusted Signing Certificate";

/// A refused CreateSession.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    /// The error shape.
    pub kind: ErrorKind,
    /// The `message` member of the body.
    pub message: String,
    /// Why exactly, for the `X-Emulator-Reason` header and the log.
    pub reason: String,
}

impl ServiceError {
    fn new(kind: ErrorKind, message: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            reason: reason.into(),
        }
    }

    /// 403 `Invalid signature`: the `Authorization` header, a signed header or the signature
    /// itself is wrong.
    pub fn invalid_signature(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, INVALID_SIGNATURE, reason)
    }

    /// 403 `Signature expired`: the request time is more than the allowed skew away.
    pub fn signature_expired(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, SIGNATURE_EXPIRED, reason)
    }

    /// 403 `Untrusted Signing Certificate`: no valid path to the trust anchor.
    pub fn untrusted(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, UNTRUSTED_CERTIFICATE, reason)
    }

    /// 403 with a message of its own (profile, role and session-name decisions).
    pub fn access_denied(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorKind::AccessDenied, message.clone(), message)
    }

    /// 400 `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorKind::Validation, message.clone(), message)
    }

    /// 404 `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(ErrorKind::ResourceNotFound, message.clone(), message)
    }

    /// Any kind, with the same text as message and reason (fault injection, size limits).
    pub fn other(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(kind, message.clone(), message)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.kind.status().as_u16(),
            self.kind.type_name(),
            self.message
        )?;
        if self.reason != self.message {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

/// Why the emulator could not start: a configuration, file or socket problem, worded for the
/// person who started it.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration (flags, TOML file, certificates in it) cannot work.
    #[error("emulator configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A file that must be given does not exist; the fix says how to make one.
    #[error("{what} {path} does not exist; {fix}")]
    Missing {
        what: &'static str,
        path: String,
        fix: &'static str,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}; pick another --port or --bind")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("emulator TLS: {0}")]
    Tls(String),
}
