//! The loop of one refresher: wait, pace, fetch, check, publish.
//!
//! Every call passes two gates first: the role's own floor (`min_interval` since its last
//! call, whatever the last answer was) and the token bucket of its account and region. The
//! wait until the next call runs on both clocks: the monotonic one (tokio's timers, which
//! stand still while the host is suspended) and the wall clock, read again at least every
//! `wall_check`, so that after a resume or a forward clock step the refresh comes as soon as
//! the wall clock says it is due, and after a backward step no later than the monotonic
//! schedule.
//!
//! A host with a place in a fleet (`slots`) calls only at its own slots: the first fetch at
//! the next free one, a refresh at the first free one past half the lifetime, a retry at the
//! first free one past its backoff; and when a clock step has carried it past the slot it
//! was waiting for, it waits for its next one rather than calling with the rest of the
//! fleet. Only a call that no slot can serve before the credentials lapse goes off the grid.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

use super::clock::SharedClock;
use super::schedule::{Schedule, check_usable, refresh_due, retry_delay, unusable_delay};
use super::slots::Grid;
use super::source::{CredentialSource, FetchError, Fetched};
use super::state::{Handle, State, Stats, serve_until};
use crate::backoff::unit_random;

/// How far the two clocks may drift apart over one wait (NTP slews the wall clock by at most
/// 500 ppm, under 2 s an hour) before a difference counts as a step.
const DRIFT: Duration = Duration::from_secs(2);
/// How late a slot may be called after a clock step before the role waits for its next one.
const LATE: time::Duration = time::Duration::SECOND;

/// When to call next: whichever of the two instants comes first (for a fleet slot, the
/// wall-clock instant: see [`sleep_until`]).
struct Wake {
    monotonic: Instant,
    wall: OffsetDateTime,
    /// Whether `wall` is the start of one of this host's fleet slots.
    slot: bool,
}

impl Wake {
    /// `delay` from now on both clocks.
    fn after(delay: Duration, now: OffsetDateTime) -> Self {
        Self {
            monotonic: Instant::now() + delay,
            wall: now + delay,
            slot: false,
        }
    }

    /// At the wall-clock instant `due`, or after as long on the monotonic clock.
    fn at(due: OffsetDateTime, now: OffsetDateTime) -> Self {
        let delay = Duration::try_from(due - now).unwrap_or(Duration::ZERO);
        Self {
            monotonic: Instant::now() + delay,
            wall: due,
            slot: false,
        }
    }

    /// At this host's first free slot of `grid` between `earliest` (or now, if later) and
    /// `latest`, if there is one.
    fn on_grid(
        grid: &Grid,
        earliest: OffsetDateTime,
        latest: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<Self> {
        let start = grid.reserve(now, earliest, latest)?;
        Some(Self {
            slot: true,
            ..Self::at(start, now)
        })
    }
}

/// How a wait ended.
#[derive(PartialEq, Eq)]
enum Woke {
    /// On the monotonic schedule (the wall clock agreeing within [`DRIFT`]).
    OnTime,
    /// Early by the monotonic clock, because the wall clock says it is due (a resume, a
    /// forward step), `late` past the wall-clock instant.
    ByWallClock { late: time::Duration },
    /// Every reader has gone.
    Closed,
}

/// Sleeps until `wake` on either clock. The naps end at the wall-clock instant when it comes
/// first, so that a fleet slot is met to the millisecond after a clock step; and a fleet slot
/// is not called early because the monotonic clock ran a little fast (only after a backward
/// step, more than [`DRIFT`] early, does the monotonic schedule win).
async fn sleep_until(
    tx: &watch::Sender<State>,
    clock: &SharedClock,
    wake: &Wake,
    wall_check: Duration,
) -> Woke {
    loop {
        let monotonic_left = wake.monotonic.saturating_duration_since(Instant::now());
        let wall_left = wake.wall - clock.now();
        if !wall_left.is_positive() {
            return if monotonic_left <= DRIFT {
                Woke::OnTime
            } else {
                Woke::ByWallClock { late: -wall_left }
            };
        }
        let wall_left = Duration::try_from(wall_left).unwrap_or(Duration::ZERO);
        if monotonic_left.is_zero() && !(wake.slot && wall_left <= DRIFT) {
            return Woke::OnTime;
        }
        let mut nap = wall_left.min(wall_check);
        if !monotonic_left.is_zero() {
            nap = nap.min(monotonic_left);
        }
        tokio::select! {
            () = tokio::time::sleep(nap.max(Duration::from_millis(1))) => {}
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
    // The host's slots are the same in every account and region; those of the first
    // serve the role throughout, so that its reservations stay in one place.
    let home = schedule.pacers.bucket(&source.quota_key());
    let grid = home.grid();
    let now = clock.now();
    let mut wake = match grid {
        Some(grid) => replan(grid, &tx, &schedule, now),
        None => Wake::after(schedule.start_window.mul_f64(unit_random()), now),
    };
    let outlet = Outlet {
        role: &role,
        tx: &tx,
        stats: &stats,
    };
    let mut failures: u32 = 0;
    let mut last_call: Option<Instant> = None;
    loop {
        // Whether this call is off the regular schedule (see `refresh_due`). When every
        // reader is gone (the role was reloaded or the daemon is stopping), stop at once
        // rather than after one more CreateSession.
        let off_schedule = match sleep_until(&tx, &clock, &wake, schedule.wall_check).await {
            Woke::Closed => return,
            Woke::OnTime => false,
            Woke::ByWallClock { late } => {
                if let Some(grid) = grid
                    && late > LATE
                {
                    if wake.slot {
                        grid.release(wake.wall);
                    }
                    wake = replan(grid, &tx, &schedule, clock.now());
                    continue;
                }
                true
            }
        };
        if let Some(last) = last_call
            && !pause(&tx, last + schedule.min_interval).await
        {
            return;
        }
        let bucket = schedule.pacers.bucket(&source.quota_key());
        tokio::select! {
            () = bucket.take() => {}
            () = tx.closed() => return,
        }
        last_call = Some(Instant::now());
        let starting = matches!(*tx.borrow(), State::Starting { .. });
        let outcome = source.fetch().await;
        let now = clock.now();
        let outcome = outcome.and_then(|f| check_usable(f, now, schedule.min_servable));
        wake = match outcome {
            Ok(fetched) => {
                bucket.passed();
                *stats
                    .region
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = source.region();
                let spread = starting || off_schedule || failures > 0;
                failures = 0;
                published(&outlet, fetched, now, spread, grid)
            }
            Err(error) => {
                failures += 1;
                if error.is_throttling() {
                    let pause = bucket.throttled(error.retry_after());
                    tracing::debug!(role = %role, pause_ms = pause.as_millis() as u64, "throttled: pausing every role of this account and region");
                }
                let Some(wake) = failed(&outlet, &error, failures, now, &schedule, grid) else {
                    return;
                };
                wake
            }
        };
    }
}

/// The latest a call may come for credentials received at `received` and still leave room
/// for one more attempt and for the wall-clock check to notice a step.
fn last_useful(
    credentials: &crate::credentials::Credentials,
    received: OffsetDateTime,
    schedule: &Schedule,
) -> OffsetDateTime {
    serve_until(credentials, received) - 2 * schedule.wall_check - schedule.min_servable
}

/// In a fleet, where to call next after a clock step carried the role past the slot it
/// waited for (or at the start): the next free slot while the credentials last; without a
/// slot in time, a random moment in the first half of the time they can still be served, so
/// that the hosts in that plight do not call together either (and at once if they cannot).
fn replan(
    grid: &Grid,
    tx: &watch::Sender<State>,
    schedule: &Schedule,
    now: OffsetDateTime,
) -> Wake {
    let (latest, servable) = match &*tx.borrow() {
        State::Ready {
            credentials,
            received,
            ..
        } => (
            Some(last_useful(credentials, *received, schedule)),
            serve_until(credentials, *received),
        ),
        _ => (None, now),
    };
    Wake::on_grid(grid, now, latest, now).unwrap_or_else(|| {
        let left = (servable - now).max(time::Duration::ZERO);
        Wake::at(now + left * (0.5 * unit_random()), now)
    })
}

/// Where a refresher says what happened: its role's name for the log, the state readers
/// see, the counters.
#[derive(Clone, Copy)]
struct Outlet<'a> {
    role: &'a str,
    tx: &'a watch::Sender<State>,
    stats: &'a Stats,
}

/// Publishes new credentials; the next refresh is due at about half their lifetime (in a
/// fleet, at the first free slot from half the lifetime on, up to halfway from there to the
/// end of their servable time, or off the grid if none is free by then). Spreading the
/// first refresh after credentials fetched off the schedule matters on the grid too: a
/// fleet started together would otherwise call in one block of slots every few cycles,
/// using the whole quota for a while and none the rest of the time.
fn published(
    out: &Outlet<'_>,
    fetched: Fetched,
    now: OffsetDateTime,
    spread: bool,
    grid: Option<&Grid>,
) -> Wake {
    let Outlet { role, tx, stats } = *out;
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
    let wake = grid
        .and_then(|grid| {
            let half = now + (credentials.expiration - now) / 2;
            let latest = half + (serve_until(&credentials, now) - half) / 2;
            // No later than half the lifetime: the first free slot then comes within one
            // cycle, before `latest` whenever the cycle fits the rule of the README.
            let due = if spread {
                refresh_due(&credentials, now, true).min(half)
            } else {
                half
            };
            let wake = Wake::on_grid(grid, due, Some(latest), now);
            if wake.is_none() {
                tracing::warn!(role = %role, cycle_s = grid.period().whole_seconds(), "no free fleet slot before the next refresh is due; refreshing off the grid (sessions too short for the fleet's cycle; see the README's \"Fleets\")");
            }
            wake
        })
        .unwrap_or_else(|| Wake::at(refresh_due(&credentials, now, spread), now));
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
    out: &Outlet<'_>,
    error: &FetchError,
    failures: u32,
    now: OffsetDateTime,
    schedule: &Schedule,
    grid: Option<&Grid>,
) -> Option<Wake> {
    let Outlet { role, tx, stats } = *out;
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
            let wake = grid
                .and_then(|grid| Wake::on_grid(grid, now + delay, None, now))
                .unwrap_or_else(|| Wake::after(delay, now));
            tracing::warn!(role = %role, error = %message, retry_in_ms = wait_ms(&wake, now), "first fetch failed; retrying");
            tx.send_replace(State::Starting {
                last_error: Some(message),
            });
            Some(wake)
        }
        State::Ready {
            credentials,
            received,
            ..
        } => {
            // Retry well before the credentials stop being servable, so that one more
            // attempt fits in; a permanent error is retried too, since a renewed
            // certificate or a fixed profile can cure it.
            let left = serve_until(&credentials, received) - now;
            let limit = Duration::try_from(left / 4).ok();
            let delay = backoff(limit);
            let latest = last_useful(&credentials, received, schedule);
            let wake = grid
                .and_then(|grid| Wake::on_grid(grid, now + delay, Some(latest), now))
                .unwrap_or_else(|| Wake::after(delay, now));
            tracing::warn!(role = %role, error = %message, retry_in_ms = wait_ms(&wake, now), "refresh failed; keeping the last good credentials while they last");
            tx.send_replace(State::Ready {
                credentials,
                received,
                last_error: Some(message),
            });
            Some(wake)
        }
        State::Stopped { .. } => None,
    }
}

/// Milliseconds from `now` until `wake`, for the log.
fn wait_ms(wake: &Wake, now: OffsetDateTime) -> u64 {
    (wake.wall - now).whole_milliseconds().max(0) as u64
}
