//! The loop of one refresher: pace, fetch, check, publish, wait.
//!
//! Every call passes two gates first: the role's own floor (`min_interval` since its last
//! call, whatever the last answer was) and the token bucket of its account and region. The
//! wait until the next call runs on both clocks: the monotonic one (tokio's timers, which
//! stand still while the host is suspended) and the wall clock, read again at least every
//! `wall_check`, so that after a resume or a forward clock step the refresh comes as soon as
//! the wall clock says it is due, and after a backward step no later than the monotonic
//! schedule.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

use super::clock::SharedClock;
use super::schedule::{
    Schedule, check_usable, refresh_due, retry_delay, unit_random, unusable_delay,
};
use super::source::{CredentialSource, FetchError, Fetched};
use super::state::{Handle, State, Stats, floor};

/// When to call next: whichever of the two instants comes first.
struct Wake {
    monotonic: Instant,
    wall: OffsetDateTime,
}

impl Wake {
    /// `delay` from now on both clocks.
    fn after(delay: Duration, now: OffsetDateTime) -> Self {
        Self {
            monotonic: Instant::now() + delay,
            wall: now + delay,
        }
    }

    /// At the wall-clock instant `due`, or after as long on the monotonic clock.
    fn at(due: OffsetDateTime, now: OffsetDateTime) -> Self {
        let delay = Duration::try_from(due - now).unwrap_or(Duration::ZERO);
        Self {
            monotonic: Instant::now() + delay,
            wall: due,
        }
    }
}

/// How a wait ended.
#[derive(PartialEq, Eq)]
enum Woke {
    /// On the monotonic schedule.
    OnTime,
    /// Early, because the wall clock says it is due (a resume, a forward step).
    ByWallClock,
    /// Every reader has gone.
    Closed,
}

/// Sleeps until `wake` on either clock.
async fn sleep_until(
    tx: &watch::Sender<State>,
    clock: &SharedClock,
    wake: &Wake,
    wall_check: Duration,
) -> Woke {
    loop {
        let now = Instant::now();
        if now >= wake.monotonic {
            return Woke::OnTime;
        }
        if clock.now() >= wake.wall {
            return Woke::ByWallClock;
        }
        let nap = (wake.monotonic - now).min(wall_check.max(Duration::from_millis(1)));
        tokio::select! {
            () = tokio::time::sleep(nap) => {}
            () = tx.closed() => return Woke::Closed,
        }
    }
}

/// Waits `delay` on the monotonic clock alone. False when every reader has gone.
async fn pause(tx: &watch::Sender<State>, until: Instant) -> bool {
    tokio::select! {
        () = tokio::time::sleep_until(until) => true,
        () = tx.closed() => false,
    }
}

/// Starts the refresher for one role on the current tokio runtime.
pub fn spawn(role: String, source: Arc<dyn CredentialSource>, schedule: Schedule) -> Handle {
    let (tx, rx) = watch::channel(State::Starting { last_error: None });
    let stats = Arc::new(Stats::default());
    tokio::spawn(run(role, source, schedule, tx, stats.clone()));
    Handle::new(rx, stats)
}

async fn run(
    role: String,
    source: Arc<dyn CredentialSource>,
    schedule: Schedule,
    tx: watch::Sender<State>,
    stats: Arc<Stats>,
) {
    let clock = schedule.clock.clone();
    let bucket = schedule.pacers.bucket(&source.quota_key());
    if !schedule.start_window.is_zero() {
        let spread = schedule.start_window.mul_f64(unit_random());
        if !pause(&tx, Instant::now() + spread).await {
            return;
        }
    }
    let mut failures: u32 = 0;
    let mut last_call: Option<Instant> = None;
    // Whether this call is off the regular schedule (see `refresh_due`).
    let mut off_schedule = true;
    loop {
        if let Some(last) = last_call
            && !pause(&tx, last + schedule.min_interval).await
        {
            return;
        }
        tokio::select! {
            () = bucket.take() => {}
            () = tx.closed() => return,
        }
        last_call = Some(Instant::now());
        let outcome = source.fetch().await;
        let now = clock.now();
        let outcome = outcome.and_then(|f| check_usable(f, now, schedule.min_servable));
        let wake = match outcome {
            Ok(fetched) => {
                bucket.passed();
                *stats
                    .region
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = source.region();
                let wake = published(
                    &role,
                    fetched,
                    now,
                    off_schedule || failures > 0,
                    &tx,
                    &stats,
                );
                failures = 0;
                wake
            }
            Err(error) => {
                failures += 1;
                if error.is_throttling() {
                    let pause = bucket.throttled(error.retry_after());
                    tracing::debug!(role = %role, pause_ms = pause.as_millis() as u64, "throttled: pausing every role of this account and region");
                }
                match failed(&role, &error, failures, now, &schedule, &tx, &stats) {
                    Some(wake) => wake,
                    None => return,
                }
            }
        };
        // When every reader is gone (the role was reloaded or the daemon is stopping),
        // stop at once rather than after one more CreateSession.
        match sleep_until(&tx, &clock, &wake, schedule.wall_check).await {
            Woke::OnTime => off_schedule = false,
            Woke::ByWallClock => off_schedule = true,
            Woke::Closed => return,
        }
    }
}

/// Publishes new credentials; the next refresh is due at about half their lifetime.
fn published(
    role: &str,
    fetched: Fetched,
    now: OffsetDateTime,
    spread: bool,
    tx: &watch::Sender<State>,
    stats: &Stats,
) -> Wake {
    let Fetched {
        credentials,
        serial,
        certificate_not_after,
    } = fetched;
    stats.successes.fetch_add(1, Ordering::Relaxed);
    if let Some(t) = certificate_not_after {
        stats
            .certificate_not_after
            .store(t.unix_timestamp(), Ordering::Relaxed);
    }
    tracing::info!(
        role = %role,
        expires = %crate::identity::rfc3339(credentials.expiration),
        serial = %serial,
        region = %stats.region().unwrap_or_default(),
        "credentials refreshed"
    );
    let wake = Wake::at(refresh_due(&credentials, now, spread), now);
    tx.send_replace(State::Ready {
        credentials: Arc::new(credentials),
        received: now,
        last_error: None,
    });
    wake
}

/// Records a failed refresh (one WARN) and says when to try again; `None` when the
/// refresher stops (a permanent error before any credentials).
fn failed(
    role: &str,
    error: &FetchError,
    failures: u32,
    now: OffsetDateTime,
    schedule: &Schedule,
    tx: &watch::Sender<State>,
    stats: &Stats,
) -> Option<Wake> {
    let permanent = !error.is_transient();
    let message = error.to_string();
    let counter = if permanent {
        &stats.permanent_failures
    } else {
        &stats.transient_failures
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let unusable = matches!(error, FetchError::Unusable { .. });
    let backoff = |limit: Option<Duration>| {
        if unusable {
            let wait = unusable_delay(schedule, failures);
            limit.map_or(wait, |l| wait.min(l.max(schedule.min_backoff)))
        } else {
            retry_delay(schedule, failures, limit, error.is_throttling())
        }
    };
    let current = tx.borrow().clone();
    match current {
        State::Starting { .. } if permanent => {
            // The one who waits for the first credentials reports the error (serve and
            // update exit with it, a reload logs it): one line.
            tracing::debug!(role = %role, error = %message, "cannot obtain credentials; giving up");
            tx.send_replace(State::Stopped { error: message });
            None
        }
        State::Starting { .. } => {
            let delay = backoff(None);
            tracing::warn!(role = %role, error = %message, retry_in_ms = delay.as_millis() as u64, "first fetch failed; retrying");
            tx.send_replace(State::Starting {
                last_error: Some(message),
            });
            Some(Wake::after(delay, now))
        }
        State::Ready {
            credentials,
            received,
            ..
        } => {
            // Retry well before the credentials stop being servable, so that one more
            // attempt fits in; a permanent error is retried too, since a renewed
            // certificate or a fixed profile can cure it.
            let left = credentials.expiration - now - floor(credentials.expiration - received);
            let limit = Duration::try_from(left / 4).ok();
            let delay = backoff(limit);
            tracing::warn!(role = %role, error = %message, retry_in_ms = delay.as_millis() as u64, "refresh failed; keeping the last good credentials while they last");
            tx.send_replace(State::Ready {
                credentials,
                received,
                last_error: Some(message),
            });
            Some(Wake::after(delay, now))
        }
        State::Stopped { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;

    use super::super::clock::Clock;
    use super::super::pacing::{Pacers, Pacing};
    use super::*;
    use crate::credentials::Credentials;
    use crate::secret::Secret;

    /// A wall clock that follows tokio's (paused) clock, plus jumps the test makes.
    struct FakeClock {
        base: OffsetDateTime,
        start: Instant,
        jumped: Mutex<time::Duration>,
    }

    impl FakeClock {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                base: OffsetDateTime::now_utc(),
                start: Instant::now(),
                jumped: Mutex::new(time::Duration::ZERO),
            })
        }

        fn jump(&self, by: time::Duration) {
            *self.jumped.lock().unwrap() += by;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> OffsetDateTime {
            self.base + (Instant::now() - self.start) + *self.jumped.lock().unwrap()
        }
    }

    /// A service on the fake clock, issuing credentials of `lifetime` that expire
    /// `expiry_skew` later (negative: earlier) than they should; it logs when it is called.
    struct Service {
        clock: Arc<FakeClock>,
        lifetime: time::Duration,
        expiry_skew: Mutex<time::Duration>,
        calls: Mutex<Vec<Instant>>,
        key: String,
        /// Calls still to be answered 429 `ThrottlingException`.
        throttle_next: Mutex<u32>,
    }

    impl Service {
        fn new(clock: &Arc<FakeClock>, lifetime: time::Duration) -> Arc<Self> {
            Arc::new(Self {
                clock: clock.clone(),
                lifetime,
                expiry_skew: Mutex::new(time::Duration::ZERO),
                calls: Mutex::default(),
                key: "111122223333/us-east-1".into(),
                throttle_next: Mutex::new(0),
            })
        }

        fn calls(&self) -> Vec<Instant> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl CredentialSource for Service {
        fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
            Box::pin(async move {
                self.calls.lock().unwrap().push(Instant::now());
                {
                    let mut throttle = self.throttle_next.lock().unwrap();
                    if *throttle > 0 {
                        *throttle -= 1;
                        return Err(FetchError::CreateSession(Arc::new(
                            crate::rolesanywhere::CreateSessionError::Service {
                                status: 429,
                                error_type: "ThrottlingException".into(),
                                message: "Rate exceeded".into(),
                                request_id: None,
                                attempts: 1,
                                retry_after: None,
                            },
                        )));
                    }
                }
                let expiration =
                    self.clock.now() + self.lifetime + *self.expiry_skew.lock().unwrap();
                Ok(Fetched {
                    credentials: Credentials {
                        access_key_id: "ASIAFAKE".into(),
                        secret_access_key: Secret::from("s".to_owned()),
                        session_token: Secret::from("t".to_owned()),
                        expiration,
                        expiration_text: crate::identity::rfc3339(expiration),
                        role_arn: "arn:aws:iam::111122223333:role/r".into(),
                    },
                    serial: "1".into(),
                    certificate_not_after: None,
                })
            })
        }

        fn quota_key(&self) -> String {
            self.key.clone()
        }
    }

    fn schedule(clock: &Arc<FakeClock>) -> Schedule {
        Schedule {
            clock: SharedClock(clock.clone()),
            ..Schedule::default()
        }
    }

    async fn run_for(d: Duration) {
        tokio::time::sleep(d).await;
    }

    #[tokio::test(start_paused = true)]
    async fn expired_and_short_answers_are_failures_and_slow_down() {
        for skew in [
            time::Duration::seconds(-7200),
            time::Duration::seconds(-3599),
        ] {
            let clock = FakeClock::new();
            let service = Service::new(&clock, time::Duration::hours(1));
            *service.expiry_skew.lock().unwrap() = skew;
            let handle = spawn("r".into(), service.clone(), schedule(&clock));
            run_for(Duration::from_secs(600)).await;
            let calls = service.calls();
            let start = calls[0];
            let first_minute = calls
                .iter()
                .filter(|&&t| t - start < Duration::from_secs(60))
                .count();
            assert!(
                first_minute <= 4,
                "{first_minute} calls in the first minute"
            );
            assert!(calls.len() <= 12, "{} calls in 10 minutes", calls.len());
            assert!(calls.len() >= 3, "still retried");
            assert!(
                matches!(handle.state(), State::Starting { last_error: Some(ref e) } if e.contains("needed to serve")),
                "{:?}",
                handle.state()
            );
            assert_eq!(handle.stats().successes.load(Ordering::Relaxed), 0);
            // The service recovers: the next retry succeeds.
            *service.expiry_skew.lock().unwrap() = time::Duration::ZERO;
            run_for(Duration::from_secs(300)).await;
            assert!(handle.current(clock.now()).is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_forward_wall_clock_jump_is_followed_by_a_refresh_within_seconds() {
        for jump in [time::Duration::minutes(40), time::Duration::hours(3)] {
            let clock = FakeClock::new();
            let service = Service::new(&clock, time::Duration::hours(1));
            let mut handle: Handle = spawn("r".into(), service.clone(), schedule(&clock));
            handle.first().await.unwrap();
            run_for(Duration::from_secs(60)).await;
            assert_eq!(service.calls().len(), 1);
            // The monotonic clock stands still (a suspend), the wall clock moves on.
            clock.jump(jump);
            let jumped_at = Instant::now();
            run_for(Duration::from_secs(10)).await;
            let calls = service.calls();
            assert_eq!(calls.len(), 2, "one refresh after the jump of {jump}");
            assert!(calls[1] - jumped_at <= Duration::from_secs(6));
            assert!(handle.current(clock.now()).is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_backward_step_does_not_delay_the_refresh() {
        let clock = FakeClock::new();
        let service = Service::new(&clock, time::Duration::hours(1));
        let mut handle = spawn("r".into(), service.clone(), schedule(&clock));
        handle.first().await.unwrap();
        clock.jump(time::Duration::minutes(-20));
        run_for(Duration::from_secs(1801)).await;
        assert_eq!(
            service.calls().len(),
            2,
            "refreshed on the monotonic schedule"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_roles_share_one_bucket_per_account_and_region() {
        let clock = FakeClock::new();
        let pacers = Arc::new(Pacers::new(Pacing::default()));
        let mut services = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..50 {
            let service = Service::new(&clock, time::Duration::hours(1));
            let s = Schedule {
                pacers: pacers.clone(),
                ..schedule(&clock)
            };
            handles.push(spawn("r".into(), service.clone(), s));
            services.push(service);
        }
        let start = Instant::now();
        for h in &mut handles {
            h.first().await.unwrap();
        }
        let mut calls: Vec<f64> = services
            .iter()
            .flat_map(|s| s.calls())
            .map(|t| (t - start).as_secs_f64())
            .collect();
        calls.sort_by(f64::total_cmp);
        assert_eq!(calls.len(), 50);
        let last = calls[49];
        assert!((20.0..=25.0).contains(&last), "all ready after {last} s");
        for w in 0..=last.ceil() as usize * 10 {
            let from = w as f64 / 10.0;
            let n = calls
                .iter()
                .filter(|&&t| t >= from && t < from + 1.0)
                .count();
            assert!(n <= 7, "{n} calls in the second from {from}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_answer_slows_the_other_roles_of_the_account() {
        let clock = FakeClock::new();
        let pacers = Arc::new(Pacers::new(Pacing {
            rate: 100.0,
            burst: 100,
        }));
        let shared = |clock: &Arc<FakeClock>| Schedule {
            pacers: pacers.clone(),
            ..schedule(clock)
        };
        let throttled = Service::new(&clock, time::Duration::hours(1));
        *throttled.throttle_next.lock().unwrap() = 1;
        let start = Instant::now();
        let mut first = spawn("a".into(), throttled.clone(), shared(&clock));
        run_for(Duration::from_millis(100)).await;
        let other = Service::new(&clock, time::Duration::hours(1));
        let mut second = spawn("b".into(), other.clone(), shared(&clock));
        let mut elsewhere_service = Service::new(&clock, time::Duration::hours(1));
        Arc::get_mut(&mut elsewhere_service).unwrap().key = "444455556666/us-east-1".into();
        let mut elsewhere = spawn("c".into(), elsewhere_service.clone(), shared(&clock));
        first.first().await.unwrap();
        second.first().await.unwrap();
        elsewhere.first().await.unwrap();
        // The bucket of the account stays closed for at least half a second after the 429,
        // for the role that got it and for the other one; another account is not slowed.
        assert!(other.calls()[0] - start >= Duration::from_millis(500));
        assert!(throttled.calls()[1] - start >= Duration::from_millis(500));
        assert!(elsewhere_service.calls()[0] - start < Duration::from_millis(200));
    }
}
