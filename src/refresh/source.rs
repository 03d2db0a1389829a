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
    /// The service answered credentials that cannot be served: already expired, or
    /// expiring too soon (a clock far off on either side, or a misconfigured service).
    #[error("the service answered credentials that {} (expiration {expiration}); at least {needed_seconds} s of validity are needed to serve them; check this host's clock and the profile's session duration", describe_left(*.seconds_left))]
    Unusable {
        expiration: String,
        seconds_left: i64,
        needed_seconds: u64,
    },
}

fn describe_left(seconds_left: i64) -> String {
    if seconds_left <= 0 {
        format!("expired {} s ago", -seconds_left)
    } else {
        format!("expire in {seconds_left} s")
    }
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
            Self::Task(_) | Self::Unusable { .. } => true,
        }
    }

    /// Whether the service said the account and region are over their request quota (429,
    /// `ThrottlingException`): every role that shares the quota should slow down.
    pub fn is_throttling(&self) -> bool {
        match self {
            Self::CreateSession(e) => matches!(
                e.as_ref(),
                crate::rolesanywhere::CreateSessionError::Service { status, error_type, .. }
                    if *status == 429 || error_type.contains("Throttl")
            ),
            _ => false,
        }
    }

    /// The `Retry-After` the service sent with its refusal, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::CreateSession(e) => match e.as_ref() {
                crate::rolesanywhere::CreateSessionError::Service { retry_after, .. } => {
                    *retry_after
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// Where credentials come from. The real source re-reads the identity files and calls
/// CreateSession each time; tests use scripted sources.
pub trait CredentialSource: Send + Sync + 'static {
    /// Fetches a fresh set.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>>;

    /// The scope of the service quota this source's next call counts against (account and
    /// region); sources with the same key share one token bucket. Empty: one bucket for all
    /// such sources of a daemon. Asked before every call: a source that changes regions
    /// changes quotas.
    fn quota_key(&self) -> String {
        String::new()
    }

    /// The region the last successful fetch came from, when the source knows it.
    fn region(&self) -> Option<String> {
        None
    }
}

/// The quota key of a trust anchor ARN (`arn:aws:rolesanywhere:REGION:ACCOUNT:...`):
/// `ACCOUNT/REGION`, with `region` when the ARN does not name one.
pub fn quota_key_of(trust_anchor_arn: &str, region: &str) -> String {
    let mut parts = trust_anchor_arn.split(':');
    let arn_region = parts.nth(3).filter(|r| !r.is_empty()).unwrap_or(region);
    let account = parts.next().unwrap_or_default();
    format!("{account}/{arn_region}")
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

/// Credentials with access key `key` that expire at `expiration`, as the fake services of
/// the tests answer them.
#[cfg(test)]
pub(crate) fn expiring(key: &str, expiration: OffsetDateTime) -> Fetched {
    Fetched {
        credentials: Credentials {
            access_key_id: key.into(),
            secret_access_key: crate::secret::Secret::from("s".to_owned()),
            session_token: crate::secret::Secret::from("t".to_owned()),
            expiration,
            expiration_text: crate::identity::rfc3339(expiration),
            role_arn: "arn:aws:iam::111122223333:role/r".into(),
        },
        serial: "1".into(),
        certificate_not_after: None,
    }
}

/// A CreateSession refusal with HTTP `status` and `error_type`, as the fake services of the
/// tests answer it.
#[cfg(test)]
pub(crate) fn refused(status: u16, error_type: &str) -> FetchError {
    FetchError::CreateSession(Arc::new(
        crate::rolesanywhere::CreateSessionError::Service {
            status,
            error_type: error_type.into(),
            message: "refused".into(),
            request_id: None,
            attempts: 1,
            retry_after: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rolesanywhere::CreateSessionError;

    fn service(status: u16, error_type: &str, retry_after: Option<u64>) -> FetchError {
        FetchError::CreateSession(Arc::new(CreateSessionError::Service {
            status,
            error_type: error_type.into(),
            message: "m".into(),
            request_id: None,
            attempts: 1,
            retry_after: retry_after.map(std::time::Duration::from_secs),
        }))
    }

    #[test]
    fn a_throttled_answer_carries_its_retry_after_to_the_account_pause() {
        let throttled = service(429, "ThrottlingException", Some(7));
        assert!(throttled.is_throttling());
        assert_eq!(
            throttled.retry_after(),
            Some(std::time::Duration::from_secs(7))
        );
        assert!(service(400, "ThrottlingException", None).is_throttling());
        assert_eq!(service(429, "TooManyRequests", None).retry_after(), None);
        assert!(!service(503, "ServiceUnavailable", Some(2)).is_throttling());
    }
}
