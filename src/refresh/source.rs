//! What a refresher fetches from: the source trait, what a fetch yields, and how it fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::credentials::Credentials;

/// A fetch failure. What failed decides whether it is worth retrying
/// ([`FetchError::is_transient`]), not the code that saw it fail.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FetchError {
    /// The certificate or key could not be loaded.
    #[error(transparent)]
    Identity(Arc<crate::identity::IdentityError>),
    /// CreateSession did not yield credentials.
    #[error(transparent)]
    CreateSession(Arc<crate::rolesanywhere::CreateSessionError>),
    /// A hop of the role chain (STS AssumeRole) did not yield credentials.
    #[error(transparent)]
    AssumeRole(Arc<crate::sts::AssumeRoleError>),
    /// The task that loads the identity did not finish (it panicked).
    #[error("loading the identity failed: {0}")]
    Task(String),
}

impl FetchError {
    /// Whether a later attempt may succeed without anyone changing anything: a file or
    /// token not there yet, a service unreachable or overloaded. The rest (a refused
    /// certificate, a malformed key) stops a refresher that never had credentials.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Identity(e) => e.is_transient(),
            Self::CreateSession(e) => e.is_transient(),
            Self::AssumeRole(e) => e.is_transient(),
            Self::Task(_) => true,
        }
    }
}

/// Where credentials come from. The real source re-reads the identity files and calls
/// CreateSession each time; tests use scripted sources.
pub trait CredentialSource: Send + Sync + 'static {
    /// Fetches a fresh set.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>>;
}

/// Credentials together with what the log line about them needs.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub credentials: Credentials,
    /// Decimal serial of the certificate that signed the request.
    pub serial: String,
    /// When that certificate expires, for metrics and expiry warnings.
    pub certificate_not_after: Option<OffsetDateTime>,
}
