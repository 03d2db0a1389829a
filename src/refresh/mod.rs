//! One refresher per role: it fetches credentials ahead of expiry, in one task (so refreshes
//! are single-flight by construction), and publishes the current set to any number of
//! readers without locks on their path.
//!
//! The schedule is the one that keeps every SDK happy: the next refresh comes when about half
//! the lifetime has passed (with jitter, so that a fleet does not refresh in step), so a
//! one-hour session never hands out credentials with less than 30 minutes left, well above
//! the 15 minutes below which botocore fetches again. When a refresh fails, the last good
//! credentials are kept while they have more than `min(5 min, 10 % of the lifetime)` left;
//! past that, readers get an error rather than credentials about to expire, and never
//! expired ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::credentials::Credentials;

mod clock;
mod engine;
mod pacing;
mod schedule;
mod session_source;
mod source;
pub use clock::{Clock, SharedClock, SystemClock};
pub use pacing::{Bucket, Pacers, Pacing};
pub use schedule::Schedule;
#[cfg(any(test, fuzzing))]
pub(crate) use schedule::refresh_delay;
pub use session_source::SessionSource;
pub use source::{CredentialSource, FetchError, Fetched, quota_key_of};

/// Counters and facts about one refresher, for health reports and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub successes: AtomicU64,
    pub transient_failures: AtomicU64,
    pub permanent_failures: AtomicU64,
    /// Unix time at which the last used certificate expires; 0 until known.
    pub certificate_not_after: AtomicI64,
}

impl Stats {
    /// Seconds until the certificate last used expires, once one has been used.
    pub fn certificate_seconds_left(&self, now: OffsetDateTime) -> Option<i64> {
        let not_after = self.certificate_not_after.load(Ordering::Relaxed);
        (not_after != 0).then(|| not_after - now.unix_timestamp())
    }
}

/// What readers see.
#[derive(Clone, Debug)]
pub enum State {
    /// No credentials yet; the first fetch is under way or being retried.
    Starting { last_error: Option<String> },
    /// Credentials, with when they were received (to know their lifetime).
    Ready {
        credentials: Arc<Credentials>,
        received: OffsetDateTime,
        last_error: Option<String>,
    },
    /// The first fetch failed permanently; the refresher has stopped.
    Stopped { error: String },
}

/// Why a reader gets no credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("credentials are not available yet{}", .0.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotYet(Option<String>),
    #[error("credentials expire too soon to hand out and refreshing them failed: {0}")]
    Stale(String),
    #[error("credentials could not be obtained: {0}")]
    Stopped(String),
}

/// The reading side: cheap to clone, one per listener.
#[derive(Clone, Debug)]
pub struct Handle {
    rx: watch::Receiver<State>,
    stats: Arc<Stats>,
}

impl Handle {
    /// The credentials to hand out now, if they are still worth handing out.
    pub fn current(&self, now: OffsetDateTime) -> Result<Arc<Credentials>, Unavailable> {
        self.current_with_receipt(now)
            .map(|(credentials, _)| credentials)
    }

    /// Like [`current`](Self::current), with when the credentials were received (IMDS
    /// reports it as `LastUpdated`).
    pub fn current_with_receipt(
        &self,
        now: OffsetDateTime,
    ) -> Result<(Arc<Credentials>, OffsetDateTime), Unavailable> {
        match &*self.rx.borrow() {
            State::Starting { last_error } => Err(Unavailable::NotYet(last_error.clone())),
            State::Stopped { error } => Err(Unavailable::Stopped(error.clone())),
            State::Ready {
                credentials,
                received,
                last_error,
            } => {
                if servable(credentials, *received, now) {
                    Ok((credentials.clone(), *received))
                } else {
                    Err(Unavailable::Stale(
                        last_error
                            .clone()
                            .unwrap_or_else(|| "no refresh has succeeded".into()),
                    ))
                }
            }
        }
    }

    /// Whether `credentials` are the ones published now, for readers that cache what they
    /// derive from them (no lock beyond the channel's, no time arithmetic).
    pub fn holds(&self, credentials: &Arc<Credentials>) -> bool {
        matches!(&*self.rx.borrow(), State::Ready { credentials: c, .. } if Arc::ptr_eq(c, credentials))
    }

    /// The raw state, for health reports.
    pub fn state(&self) -> State {
        self.rx.borrow().clone()
    }

    /// The refresher's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the refresher task is still running (it ends only after a permanent failure
    /// at start, or when every handle is gone); the watchdog pings only while all are.
    pub fn alive(&self) -> bool {
        self.rx.has_changed().is_ok()
    }

    /// Waits until the first fetch has succeeded or failed permanently.
    pub async fn first(&mut self) -> Result<Arc<Credentials>, Unavailable> {
        self.newer_than(None).await
    }

    /// Waits for credentials other than `previous` (any, if `None`): what a writer of the
    /// credentials file needs after each refresh. Fails only when the refresher stopped.
    pub async fn newer_than(
        &mut self,
        previous: Option<&Arc<Credentials>>,
    ) -> Result<Arc<Credentials>, Unavailable> {
        loop {
            match &*self.rx.borrow_and_update() {
                State::Ready { credentials, .. }
                    if previous.is_none_or(|p| !Arc::ptr_eq(p, credentials)) =>
                {
                    return Ok(credentials.clone());
                }
                State::Stopped { error } => return Err(Unavailable::Stopped(error.clone())),
                State::Ready { .. } | State::Starting { .. } => {}
            }
            if self.rx.changed().await.is_err() {
                return Err(Unavailable::Stopped("the refresher ended".into()));
            }
        }
    }
}

#[cfg(any(test, fuzzing))]
impl Handle {
    /// A handle whose state never changes (no refresher behind it), for the fuzz targets
    /// and tests.
    pub(crate) fn fixed(state: State) -> Self {
        let (_tx, rx) = watch::channel(state);
        Self {
            rx,
            stats: Arc::default(),
        }
    }
}

/// The floor of remaining validity below which credentials are not handed out:
/// `min(5 minutes, 10 % of the lifetime)`.
pub fn floor(lifetime: time::Duration) -> time::Duration {
    std::cmp::min(time::Duration::minutes(5), lifetime / 10)
}

fn servable(credentials: &Credentials, received: OffsetDateTime, now: OffsetDateTime) -> bool {
    now < serve_until(credentials, received)
}

/// The instant from which credentials received at `received` are no longer handed out:
/// [`floor`] before they expire.
pub fn serve_until(credentials: &Credentials, received: OffsetDateTime) -> OffsetDateTime {
    credentials.expiration - floor(credentials.expiration - received)
}

/// Starts the refresher for one role on the current tokio runtime.
pub fn spawn(role: String, source: Arc<dyn CredentialSource>, schedule: Schedule) -> Handle {
    let (tx, rx) = watch::channel(State::Starting { last_error: None });
    let stats = Arc::new(Stats::default());
    tokio::spawn(engine::run(role, source, schedule, tx, stats.clone()));
    Handle { rx, stats }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::secret::Secret;

    fn creds(key: &str, lifetime: time::Duration) -> Credentials {
        let expiration = OffsetDateTime::now_utc() + lifetime;
        Credentials {
            access_key_id: key.into(),
            secret_access_key: Secret::from("s".to_owned()),
            session_token: Secret::from("t".to_owned()),
            expiration,
            expiration_text: crate::identity::rfc3339(expiration),
            role_arn: "arn:aws:iam::1:role/r".into(),
        }
    }

    /// Answers from a script, then repeats the last entry.
    struct Scripted {
        script: Mutex<Vec<Result<Credentials, FetchError>>>,
        calls: AtomicU32,
    }

    impl CredentialSource for Scripted {
        fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let mut script = self.script.lock().unwrap();
                let next = if script.len() > 1 {
                    script.remove(0)
                } else {
                    script[0].clone()
                };
                next.map(|credentials| Fetched {
                    credentials,
                    serial: "1".into(),
                    certificate_not_after: None,
                })
            })
        }
    }

    /// A refusal (403) or an outage (503) of the service.
    fn fail(permanent: bool) -> Result<Credentials, FetchError> {
        Err(FetchError::CreateSession(Arc::new(
            crate::rolesanywhere::CreateSessionError::Service {
                status: if permanent { 403 } else { 503 },
                error_type: "Boom".into(),
                message: "boom".into(),
                request_id: None,
                attempts: 1,
            },
        )))
    }

    fn fast() -> Schedule {
        Schedule {
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            min_interval: Duration::from_millis(5),
            min_servable: Duration::from_millis(50),
            wall_check: Duration::from_millis(20),
            ..Schedule::default()
        }
    }

    #[test]
    fn floor_is_min_of_five_minutes_and_a_tenth() {
        assert_eq!(floor(time::Duration::hours(1)), time::Duration::minutes(5));
        assert_eq!(
            floor(time::Duration::seconds(20)),
            time::Duration::seconds(2)
        );
    }

    #[test]
    fn refresh_comes_at_about_half_life() {
        let now = OffsetDateTime::now_utc();
        let c = creds("A", time::Duration::hours(1));
        for _ in 0..100 {
            let d = refresh_delay(&c, now, now).as_secs_f64();
            assert!((0.449 * 3600.0..=0.501 * 3600.0).contains(&d), "{d}");
        }
    }

    #[tokio::test]
    async fn permanent_first_error_stops() {
        let source = Arc::new(Scripted {
            script: Mutex::new(vec![fail(true)]),
            calls: AtomicU32::new(0),
        });
        let mut handle = spawn("r".into(), source.clone(), fast());
        assert!(matches!(handle.first().await, Err(Unavailable::Stopped(_))));
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn transient_first_errors_are_retried() {
        let script = vec![
            fail(false),
            fail(false),
            Ok(creds("A", time::Duration::hours(1))),
        ];
        let source = Arc::new(Scripted {
            script: Mutex::new(script),
            calls: AtomicU32::new(0),
        });
        let mut handle = spawn("r".into(), source.clone(), fast());
        assert_eq!(handle.first().await.unwrap().access_key_id, "A");
        assert_eq!(source.calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            handle
                .current(OffsetDateTime::now_utc())
                .unwrap()
                .access_key_id,
            "A"
        );
    }

    #[tokio::test]
    async fn short_sessions_are_refreshed_before_expiry() {
        let script = vec![
            Ok(creds("A", time::Duration::milliseconds(400))),
            Ok(creds("B", time::Duration::hours(1))),
        ];
        let source = Arc::new(Scripted {
            script: Mutex::new(script),
            calls: AtomicU32::new(0),
        });
        let mut handle = spawn("r".into(), source, fast());
        assert_eq!(handle.first().await.unwrap().access_key_id, "A");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            handle
                .current(OffsetDateTime::now_utc())
                .unwrap()
                .access_key_id,
            "B"
        );
    }

    #[tokio::test]
    async fn stale_credentials_are_not_served() {
        // A 1 s session, then only failures: the floor is 100 ms, so readers get the
        // credentials only while more than that is left, then an error; never expired ones.
        let script = vec![Ok(creds("A", time::Duration::seconds(1))), fail(false)];
        let source = Arc::new(Scripted {
            script: Mutex::new(script),
            calls: AtomicU32::new(0),
        });
        let mut handle = spawn("r".into(), source.clone(), fast());
        let first = handle.first().await.unwrap();
        let deadline = first.expiration;
        loop {
            let now = OffsetDateTime::now_utc();
            if now > deadline + time::Duration::milliseconds(200) {
                break;
            }
            if let Ok(c) = handle.current(now) {
                assert!(
                    c.expiration - now > time::Duration::milliseconds(90),
                    "served with too little left"
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(matches!(
            handle.current(OffsetDateTime::now_utc()),
            Err(Unavailable::Stale(_))
        ));
        let calls = source.calls.load(Ordering::SeqCst);
        assert!(calls > 2, "failed refreshes are retried ({calls} calls)");
        assert!(
            calls < 200,
            "retries are bounded, no busy loop ({calls} calls)"
        );
    }
}
