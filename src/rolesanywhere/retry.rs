//! The wait between two attempts of one call: full-jitter exponential backoff, as the AWS
//! SDKs' standard retry mode, or the server's `Retry-After` when it asks for longer.

use std::time::Duration;

use super::error::CreateSessionError;

/// The ceiling of the first wait; it doubles with each failed attempt.
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The ceiling of any wait of ours.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured: a server asking for more gets a shorter wait rather
/// than a caller held for minutes.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// One failed attempt, with the server's `Retry-After` if it sent one.
pub(super) struct Failure {
    pub error: CreateSessionError,
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure without `Retry-After`.
    pub fn of(error: CreateSessionError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<CreateSessionError> for Failure {
    fn from(error: CreateSessionError) -> Self {
        Self::of(error)
    }
}

/// The wait after failed attempt `attempt` (1-based): random up to
/// `min(5 s, 200 ms × 2^(attempt-1))`, or the server's `Retry-After` (capped at 20 s)
/// when that is longer.
pub(super) fn delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let jitter = crate::backoff::full_jitter(FIRST_WAIT, MAX_WAIT, attempt);
    match retry_after {
        Some(wait) => wait.min(MAX_RETRY_AFTER).max(jitter),
        None => jitter,
    }
}

/// A `Retry-After` of delay-seconds, the form AWS services send (an HTTP date is ignored).
pub(super) fn retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for attempt in 1..6 {
            assert!(delay(attempt, None) <= Duration::from_secs(5));
        }
        assert!(delay(1, None) <= Duration::from_millis(200));
        assert!(delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert!(delay(1, Some(Duration::from_secs(3))) <= Duration::from_secs(3));
        assert_eq!(
            delay(1, Some(Duration::from_secs(999))),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }
}
