//! One refresher per role: it fetches credentials ahead of expiry, in one task (so refreshes
//! are single-flight by construction), and publishes the current set to any number of
//! readers without locks on their path.
//!
//! The schedule keeps every SDK happy and the service's quota light: the next refresh comes
//! once half the lifetime has passed (50 to 55 %, jittered so that a fleet does not refresh in
//! step), so a role calls at most twice per lifetime and a one-hour session never hands out
//! credentials with less than 27 minutes left, well above the 15 minutes below which botocore
//! fetches again. When a refresh fails, the last good
//! credentials are kept while they have more than `min(5 min, 10 % of the lifetime)` left;
//! past that, readers get an error rather than credentials about to expire, and never
//! expired ones.
//!
//! Many hosts share one CreateSession quota, so a refresher is also careful with the service:
//! credentials answered already expired or about to expire are a failed refresh (with a
//! longer backoff), never a success to be refreshed again at once; calls pass a floor per
//! role and a token bucket per account and region (`pacing`), and a host with a place in a
//! fleet calls only at its own slots of a wall-clock grid the fleet shares (`slots`); and
//! the wait runs on the monotonic clock checked against the injected wall clock (`clock`),
//! so that a suspend or a clock step is noticed within seconds. The loop is in `engine`,
//! the timing in `schedule`, what readers see in `state`.

mod clock;
mod engine;
#[cfg(test)]
mod engine_tests;
mod failover;
pub mod pacing;
mod schedule;
mod session_source;
pub mod slots;
mod source;
mod state;
pub use clock::{Clock, SharedClock, SystemClock};
pub use engine::spawn;
pub use failover::{FailoverSource, Region};
pub use pacing::{Bucket, Pacers, Pacing};
pub use schedule::Schedule;
#[cfg(any(test, fuzzing))]
pub(crate) use schedule::refresh_delay;
pub use session_source::SessionSource;
pub use slots::{FleetSlot, Grid};
pub use source::{CredentialSource, FetchError, Fetched, quota_key_of};
pub use state::{Handle, State, Stats, Unavailable, floor, serve_until};

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::credentials::Credentials;
    use time::OffsetDateTime;

    fn creds(key: &str, lifetime: time::Duration) -> Credentials {
        source::expiring(key, OffsetDateTime::now_utc() + lifetime).credentials
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
        Err(source::refused(if permanent { 403 } else { 503 }, "Boom"))
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
            assert!((0.499 * 3600.0..=0.551 * 3600.0).contains(&d), "{d}");
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
