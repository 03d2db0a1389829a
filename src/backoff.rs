//! Full-jitter exponential backoff, the AWS SDKs' retry wait: after the `n`th failure, a
//! uniformly random wait between zero and `min(cap, first × 2^(n-1))`.
//!
//! The randomness is the point: clients that failed together (a fleet whose endpoint went
//! away, every role of one daemon) would otherwise retry together, in waves that keep the
//! service down. Both retry paths use it: the CreateSession client between the attempts of
//! one call, and the refresher between calls.

use std::time::Duration;

/// The wait after failed attempt `attempt` (1 for the first failure; 0 counts as 1): random
/// in `[0, min(cap, first × 2^(attempt-1))]`.
pub fn full_jitter(first: Duration, cap: Duration, attempt: u32) -> Duration {
    scaled(first, cap, attempt, unit_random())
}

/// The same wait for a given `unit` in [0, 1].
fn scaled(first: Duration, cap: Duration, attempt: u32, unit: f64) -> Duration {
    let ceiling = ceiling(first, cap, attempt);
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    // Not `mul_f64`, which panics where the product rounds past `Duration::MAX`.
    Duration::try_from_secs_f64(ceiling.as_secs_f64() * unit)
        .unwrap_or(ceiling)
        .min(ceiling)
}

/// `min(cap, first × 2^(attempt-1))`, without overflow for any attempt.
fn ceiling(first: Duration, cap: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    first.saturating_mul(1 << doublings).min(cap)
}

/// A uniform value in [0, 1), for every random wait of the project. Without the system's
/// random source (it does not fail on Linux past early boot) it is 0: a wait is then its
/// floor.
pub(crate) fn unit_random() -> f64 {
    (getrandom::u64().unwrap_or(0) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_millis(200);
    const CAP: Duration = Duration::from_secs(5);

    #[test]
    fn the_ceiling_doubles_from_first_up_to_the_cap() {
        assert_eq!(ceiling(FIRST, CAP, 1), FIRST);
        assert_eq!(ceiling(FIRST, CAP, 2), Duration::from_millis(400));
        assert_eq!(ceiling(FIRST, CAP, 5), Duration::from_millis(3200));
        assert_eq!(ceiling(FIRST, CAP, 6), CAP);
        // No overflow, however many failures.
        assert_eq!(ceiling(FIRST, CAP, u32::MAX), CAP);
        assert_eq!(
            ceiling(Duration::MAX, Duration::MAX, 40),
            Duration::MAX,
            "saturates"
        );
        // Attempt 0 is read as the first.
        assert_eq!(ceiling(FIRST, CAP, 0), FIRST);
    }

    #[test]
    fn the_wait_spans_zero_to_the_ceiling() {
        assert_eq!(scaled(FIRST, CAP, 3, 0.0), Duration::ZERO);
        assert_eq!(scaled(FIRST, CAP, 3, 1.0), Duration::from_millis(800));
        assert_eq!(scaled(FIRST, CAP, 3, 0.5), Duration::from_millis(400));
        assert_eq!(scaled(FIRST, CAP, 9, 1.0), CAP);
        // A unit outside [0, 1] cannot leave the bounds.
        assert_eq!(scaled(FIRST, CAP, 3, 7.0), Duration::from_millis(800));
        assert_eq!(scaled(FIRST, CAP, 3, -1.0), Duration::ZERO);
        assert_eq!(scaled(FIRST, CAP, 3, f64::NAN), Duration::ZERO);
        assert_eq!(
            scaled(Duration::MAX, Duration::MAX, 1, 1.0),
            Duration::MAX,
            "no overflow"
        );
    }

    #[test]
    fn random_waits_stay_within_the_bounds() {
        for attempt in 0..40 {
            let ceiling = ceiling(FIRST, CAP, attempt);
            for _ in 0..50 {
                assert!(full_jitter(FIRST, CAP, attempt) <= ceiling);
            }
        }
        let unit = unit_random();
        assert!((0.0..1.0).contains(&unit), "{unit}");
    }
}
