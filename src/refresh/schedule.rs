//! When a refresher calls CreateSession: the timing knobs, the half-life schedule, the
//! backoffs after failures, and the check that what the service answered can be served at
//! all (credentials already expired, or expiring within seconds, are a failed refresh, not a
//! success that would be refreshed again at once, in a loop).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::clock::SharedClock;
use super::pacing::Pacers;
use super::source::{FetchError, Fetched};
use crate::backoff::unit_random;
use crate::credentials::Credentials;

/// Timing knobs; the defaults suit production, tests and the fleet simulation change them.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// First wait after a failed attempt; doubled each time up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The cap of the backoff after throttled answers, whose wait is uniform between
    /// `min_backoff` and the doubled ceiling (not clamped full jitter, which would send
    /// every role throttled in one second back in the same next second). A higher cap
    /// means fewer throttled calls and a longer tail (see the README's fleet figures).
    pub max_throttled_backoff: Duration,
    /// The floor between two CreateSession calls of one role, whatever the service answers
    /// and whatever the clocks say.
    pub min_interval: Duration,
    /// First wait after an answer whose credentials cannot be served; doubled each time up
    /// to `max_unusable_backoff`. Longer than `min_backoff`: a service that answers such
    /// credentials is likely to answer them again.
    pub unusable_backoff: Duration,
    pub max_unusable_backoff: Duration,
    /// How long credentials must stay servable after receipt to count as a success.
    pub min_servable: Duration,
    /// The longest sleep on the monotonic clock before the wall clock is read again: after
    /// a suspend, a resume or a clock step, the refresh comes at most this late.
    pub wall_check: Duration,
    /// Each role's first fetch waits a random time in `[0, start_window]`, so that a fleet
    /// started at once spreads its first calls.
    pub start_window: Duration,
    /// The wall clock.
    pub clock: SharedClock,
    /// The token buckets shared by every refresher started with this schedule (or a clone).
    pub pacers: Arc<Pacers>,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(1),
            // Past the last good credentials every client is failing, so recovery should
            // follow the service within seconds; full jitter spreads a fleet's retries.
            max_backoff: Duration::from_secs(30),
            max_throttled_backoff: Duration::from_secs(30),
            min_interval: Duration::from_secs(1),
            // At most four calls in the first minute, then one every few minutes.
            unusable_backoff: Duration::from_secs(15),
            max_unusable_backoff: Duration::from_secs(300),
            min_servable: Duration::from_secs(5),
            wall_check: Duration::from_secs(5),
            start_window: Duration::ZERO,
            clock: SharedClock::default(),
            pacers: Arc::default(),
        }
    }
}

impl Schedule {
    /// How long the first fetches of `roles` new refreshers may wait for their turn: the
    /// start window, or in a fleet one cycle of the host's slots per role (the roles take
    /// successive slots).
    pub fn first_fetches_within(&self, roles: usize) -> Duration {
        match self.pacers.fleet() {
            Some(fleet) => Duration::try_from(fleet.period())
                .unwrap_or_default()
                .saturating_mul(u32::try_from(roles).unwrap_or(u32::MAX)),
            None => self.start_window,
        }
    }
}

/// When the next refresh is due: between 50 % and 55 % of the lifetime after receipt, so
/// that a role calls CreateSession at most twice per lifetime (two calls an hour for one-hour
/// sessions) while a one-hour session still has 27 minutes or more left when it is replaced,
/// far above the 15 minutes below which botocore fetches again.
#[cfg(any(test, fuzzing))]
pub(crate) fn refresh_delay(
    credentials: &Credentials,
    received: OffsetDateTime,
    now: OffsetDateTime,
) -> Duration {
    Duration::try_from(refresh_due(credentials, received, false) - now).unwrap_or(Duration::ZERO)
}

/// The wall-clock instant of the next refresh (see [`refresh_delay`]). After credentials
/// fetched off the schedule (the first ones, after failures, after a clock jump), which a
/// fleet tends to fetch all together, the next refresh comes anywhere between 10 % and 55 %
/// of the lifetime instead: one early call per role that spreads the fleet's refreshes over
/// the whole period rather than repeating the burst every half-life.
pub(super) fn refresh_due(
    credentials: &Credentials,
    received: OffsetDateTime,
    spread: bool,
) -> OffsetDateTime {
    let lifetime = (credentials.expiration - received)
        .as_seconds_f64()
        .max(0.0);
    let fraction = if spread {
        0.1 + 0.45 * unit_random()
    } else {
        0.50 + 0.05 * unit_random()
    };
    received + time::Duration::seconds_f64(lifetime * fraction)
}

/// Full-jitter backoff for attempt `n` (1-based), never past `limit` if one is given; with
/// the higher cap after a throttled answer.
pub(super) fn retry_delay(
    schedule: &Schedule,
    n: u32,
    limit: Option<Duration>,
    throttled: bool,
) -> Duration {
    let wait = if throttled {
        // Uniform between the floor and the doubled ceiling: clamping full jitter to the
        // floor would send every role throttled in one second back in the same next second.
        let cap = schedule.max_throttled_backoff.max(schedule.max_backoff);
        let ceiling = schedule
            .min_backoff
            .saturating_mul(1 << n.min(16))
            .min(cap)
            .max(schedule.min_backoff);
        schedule.min_backoff + (ceiling - schedule.min_backoff).mul_f64(unit_random())
    } else {
        let jitter = crate::backoff::full_jitter(schedule.min_backoff, schedule.max_backoff, n);
        schedule.min_backoff.max(jitter)
    };
    limit.map_or(wait, |l| wait.min(l.max(schedule.min_backoff)))
}

/// The wait after the `n`th unusable answer in a row: random in the upper half of
/// `min(max, first × 2^(n-1))`, never below the first.
pub(super) fn unusable_delay(schedule: &Schedule, n: u32) -> Duration {
    let ceiling = schedule
        .unusable_backoff
        .saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(schedule.max_unusable_backoff.max(schedule.unusable_backoff));
    ceiling
        .mul_f64(0.5 + 0.5 * unit_random())
        .max(schedule.unusable_backoff)
}

/// Whether `fetched`, received at `now`, can be served for at least `min_servable`; if not,
/// the refresh failed with [`FetchError::Unusable`].
pub(super) fn check_usable(
    fetched: Fetched,
    now: OffsetDateTime,
    min_servable: Duration,
) -> Result<Fetched, FetchError> {
    let expiration = fetched.credentials.expiration;
    let servable_for = super::state::serve_until(&fetched.credentials, now) - now;
    if expiration > now && servable_for >= min_servable {
        return Ok(fetched);
    }
    Err(FetchError::Unusable {
        expiration: crate::identity::rfc3339(expiration),
        seconds_left: (expiration - now).whole_seconds(),
        needed_seconds: min_servable.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_backoff_starts_high_and_is_capped() {
        let s = Schedule::default();
        for n in 1..40 {
            let d = unusable_delay(&s, n);
            assert!(
                d >= Duration::from_secs(15) && d <= Duration::from_secs(300),
                "{d:?}"
            );
        }
        assert!(unusable_delay(&s, 3) >= Duration::from_secs(30));
    }

    #[test]
    fn throttled_retries_spread_over_the_doubled_range() {
        let s = Schedule::default();
        let waits: Vec<Duration> = (0..200).map(|_| retry_delay(&s, 1, None, true)).collect();
        assert!(
            waits
                .iter()
                .all(|w| (Duration::from_secs(1)..=Duration::from_secs(2)).contains(w))
        );
        // Not all at the floor, as clamped full jitter would put half of them.
        let at_floor = waits
            .iter()
            .filter(|&&w| w < Duration::from_millis(1010))
            .count();
        assert!(at_floor < 20, "{at_floor} of 200 at the floor");
        let late: Vec<Duration> = (0..200).map(|_| retry_delay(&s, 10, None, true)).collect();
        assert!(late.iter().all(|&w| w <= Duration::from_secs(30)));
        assert!(late.iter().any(|&w| w > Duration::from_secs(15)));
    }
}
