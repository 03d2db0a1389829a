//! Pacing of CreateSession calls across the roles of one daemon: one token bucket per
//! account and region (the scope of the service's CreateSession quota), which every call
//! takes a token from, first fetches included, and which a throttled answer closes for a
//! while for every role that shares it, not only for the one that was throttled.
//!
//! A bucket in one process cannot keep a fleet-wide quota on its own (every host has its
//! own); what it does is keep one host's share small and steady, and make a host back off
//! as a whole when the service says the account is over its quota.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::slots::{FleetSlot, Grid};

/// The rate and burst of each bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    /// Tokens added per second.
    pub rate: f64,
    /// The most tokens a bucket holds (calls that may go out at once after a quiet time).
    pub burst: u32,
}

impl Default for Pacing {
    /// 2 calls/s with bursts of 5: at most 7 calls in any one second, well under the
    /// service's 10 per second and account-region, and 50 roles start in about 23 s.
    fn default() -> Self {
        Self {
            rate: 2.0,
            burst: 5,
        }
    }
}

/// The first pause after a throttled answer without `Retry-After`, doubled for each
/// throttled answer in a row.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// The longest such pause.
const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured: a service (or something posing as one) asking for more
/// does not keep every role of the account from refreshing for longer than this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The buckets of one daemon, by quota key (account and region).
#[derive(Debug, Default)]
pub struct Pacers {
    pacing: Pacing,
    /// This host's place in its fleet's grid, if it has one.
    fleet: Option<FleetSlot>,
    buckets: Mutex<HashMap<String, Arc<Bucket>>>,
}

impl Pacers {
    pub fn new(pacing: Pacing) -> Self {
        Self::with_fleet(pacing, None)
    }

    /// Buckets whose calls also keep to this host's slots of `fleet` (see `slots`).
    pub fn with_fleet(pacing: Pacing, fleet: Option<FleetSlot>) -> Self {
        Self {
            pacing,
            fleet,
            buckets: Mutex::default(),
        }
    }

    /// The settings every bucket gets.
    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// This host's place in its fleet, if it has one.
    pub fn fleet(&self) -> Option<FleetSlot> {
        self.fleet
    }

    /// The bucket of `key`, made on first use.
    pub fn bucket(&self, key: &str) -> Arc<Bucket> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .entry(key.to_owned())
            .or_insert_with(|| {
                let mut bucket = Bucket::new(self.pacing);
                bucket.grid = self.fleet.map(Grid::new);
                Arc::new(bucket)
            })
            .clone()
    }
}

/// One token bucket on tokio's clock (so that paused time in a simulation drives it).
#[derive(Debug)]
pub struct Bucket {
    pacing: Pacing,
    state: Mutex<BucketState>,
    /// This host's fleet slots for the account and region, if it has a place in a fleet.
    grid: Option<Grid>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    updated: Instant,
    /// No token is given out before this instant (after a throttled answer).
    closed_until: Instant,
    /// Throttled answers in a row, for the length of the next pause.
    throttles: u32,
}

impl Bucket {
    pub fn new(pacing: Pacing) -> Self {
        let now = Instant::now();
        Self {
            pacing,
            state: Mutex::new(BucketState {
                tokens: f64::from(pacing.burst.max(1)),
                updated: now,
                closed_until: now,
                throttles: 0,
            }),
            grid: None,
        }
    }

    /// This host's fleet slots for the bucket's account and region, if any.
    pub fn grid(&self) -> Option<&Grid> {
        self.grid.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, BucketState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a token now, or says how long to wait before asking again.
    pub fn try_take(&self) -> Result<(), Duration> {
        let mut s = self.lock();
        let now = Instant::now();
        if now < s.closed_until {
            return Err(s.closed_until - now);
        }
        let rate = self.pacing.rate.max(1e-6);
        let elapsed = now.saturating_duration_since(s.updated).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(f64::from(self.pacing.burst.max(1)));
        s.updated = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - s.tokens) / rate;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(1)))
        }
    }

    /// Waits for a token.
    pub async fn take(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// The service said the account is over its quota: no token for anyone until
    /// `retry_after` has passed (at most [`MAX_RETRY_AFTER`]), or a pause that doubles with each throttled answer in a row
    /// (random in its upper half, so that hosts throttled together do not come back together).
    pub fn throttled(&self, retry_after: Option<Duration>) -> Duration {
        let mut s = self.lock();
        s.throttles = s.throttles.saturating_add(1);
        let pause = retry_after
            .map(|d| d.min(MAX_RETRY_AFTER))
            .unwrap_or_else(|| {
                let doubled = THROTTLE_PAUSE
                    .saturating_mul(1 << s.throttles.saturating_sub(1).min(16))
                    .min(MAX_THROTTLE_PAUSE);
                doubled.mul_f64(0.5 + 0.5 * crate::backoff::unit_random())
            });
        let until = Instant::now() + pause;
        if until > s.closed_until {
            s.closed_until = until;
        }
        s.tokens = 0.0;
        pause
    }

    /// A call went through: the next throttled answer starts the pauses again from the first.
    pub fn passed(&self) {
        self.lock().throttles = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spreads_calls_at_its_rate() {
        let bucket = Bucket::new(Pacing {
            rate: 2.0,
            burst: 3,
        });
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..9 {
            bucket.take().await;
            at.push((Instant::now() - start).as_secs_f64());
        }
        // Three at once, then one every half second.
        assert!(at[..3].iter().all(|&t| t < 0.01), "{at:?}");
        assert!((at[8] - 3.0).abs() < 0.05, "{at:?}");
        for window in 0..4 {
            let w = f64::from(window);
            let n = at.iter().filter(|&&t| t >= w && t < w + 1.0).count();
            assert!(n <= 3 + 2, "{n} calls in second {window}: {at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_answer_closes_the_bucket_for_everyone() {
        let pacers = Pacers::new(Pacing {
            rate: 100.0,
            burst: 100,
        });
        let a = pacers.bucket("111122223333/us-east-1");
        let b = pacers.bucket("111122223333/us-east-1");
        let other = pacers.bucket("444455556666/us-east-1");
        a.throttled(Some(Duration::from_secs(3)));
        assert!(b.try_take().is_err(), "the same account and region waits");
        assert!(other.try_take().is_ok(), "another account does not");
        let start = Instant::now();
        b.take().await;
        assert!(Instant::now() - start >= Duration::from_secs(3));
        // A Retry-After of an hour holds the account's roles back for five minutes only.
        assert_eq!(
            a.throttled(Some(Duration::from_secs(3600))),
            Duration::from_secs(300)
        );
        // Without Retry-After the pauses grow, and a call that passes resets them.
        a.passed();
        let first = a.throttled(None);
        let second = a.throttled(None);
        assert!(first <= Duration::from_secs(1) && second >= Duration::from_secs(1));
        a.passed();
        assert!(a.throttled(None) <= Duration::from_secs(1));
    }
}
