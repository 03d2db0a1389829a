//! Fleet slots: a schedule shared by every host of a fleet without any message between them.
//!
//! A fleet of `count` hosts that shares one account's CreateSession quota divides the wall
//! clock into a repeating cycle of `count / rate` seconds, one slot of `1 / rate` seconds per
//! host; host `index` owns the slot that starts `index / rate` seconds into each cycle,
//! counted from the Unix epoch, so hosts whose clocks agree (NTP) agree on the grid. A host
//! calls CreateSession only at the start of its own slots, one call per slot, so the fleet
//! as a whole never makes more than `rate` calls in a second, however many hosts start,
//! fail or have their clocks stepped together. What no slot can serve in time (credentials
//! that would lapse before the host's next free slot) is called off the grid: see
//! [`Grid::reserve`].

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

/// A host's place in its fleet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FleetSlot {
    /// This host's slot, from 0 to `count - 1`; every host of the fleet has its own.
    pub index: u32,
    /// How many hosts share the grid.
    pub count: u32,
    /// CreateSession calls per second of the whole fleet in one account and region.
    pub rate: f64,
}

impl FleetSlot {
    /// The fleet rate by default: 95 % of the service's quota of 10 calls per second, for a
    /// fleet that is the only CreateSession caller of its account and region.
    pub const DEFAULT_RATE: f64 = 9.5;

    /// How long one cycle lasts (`count / rate`, at least a nanosecond): the longest a role
    /// may wait for its host's next slot.
    pub fn period(&self) -> time::Duration {
        let seconds = f64::from(self.count.max(1)) / self.rate.max(1e-6);
        time::Duration::seconds_f64(seconds).max(time::Duration::NANOSECOND)
    }
}

/// The slots of one host for one account and region, and which of them its roles have
/// taken.
#[derive(Debug)]
pub struct Grid {
    /// The cycle, and where this host's slot starts in it, in nanoseconds.
    period: i128,
    offset: i128,
    /// Slot numbers (cycles since the epoch) taken by a role.
    taken: Mutex<BTreeSet<i128>>,
}

impl Grid {
    pub fn new(slot: FleetSlot) -> Self {
        let count = slot.count.max(1);
        let period = slot.period().whole_nanoseconds();
        Self {
            period,
            offset: period * i128::from(slot.index.min(count - 1)) / i128::from(count),
            taken: Mutex::default(),
        }
    }

    /// How long one cycle lasts: the longest a role may wait for this host's next slot.
    pub fn period(&self) -> time::Duration {
        nanos_to_duration(self.period)
    }

    fn start_of(&self, n: i128) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + nanos_to_duration(n * self.period + self.offset)
    }

    /// The number of the first slot that starts at or after `t`.
    fn first_from(&self, t: OffsetDateTime) -> i128 {
        let since = (t - OffsetDateTime::UNIX_EPOCH).whole_nanoseconds() - self.offset;
        since.div_euclid(self.period) + i128::from(since.rem_euclid(self.period) != 0)
    }

    /// Takes this host's first free slot that starts between `earliest` and `latest` and
    /// says when it starts; `None` when there is none (the caller then calls off the grid,
    /// or its credentials would lapse). `latest: None` is no limit (a role without
    /// credentials has nothing to lose by waiting for its slot). Slots that ended before
    /// `now` are forgotten (not those before `earliest`: other roles may hold them).
    pub fn reserve(
        &self,
        now: OffsetDateTime,
        earliest: OffsetDateTime,
        latest: Option<OffsetDateTime>,
    ) -> Option<OffsetDateTime> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.first_from(now);
        while taken.first().is_some_and(|&n| n < current - 1) {
            taken.pop_first();
        }
        let mut n = self.first_from(earliest.max(now));
        while taken.contains(&n) {
            n += 1;
        }
        let start = self.start_of(n);
        if latest.is_some_and(|l| start > l) {
            return None;
        }
        taken.insert(n);
        Some(start)
    }

    /// Gives back the slot starting at `start`, which its role will not use (its plan
    /// changed), so that another role of this host can.
    pub fn release(&self, start: OffsetDateTime) {
        let n = self.first_from(start);
        self.taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&n);
    }
}

fn nanos_to_duration(nanos: i128) -> time::Duration {
    time::Duration::nanoseconds(i64::try_from(nanos).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds_f64(seconds)
    }

    fn secs(t: OffsetDateTime) -> f64 {
        (t - OffsetDateTime::UNIX_EPOCH).as_seconds_f64()
    }

    #[test]
    fn each_host_owns_its_own_slot_of_every_cycle() {
        // Four hosts at 2 calls a second: a 2-second cycle, slots half a second apart.
        let grids: Vec<Grid> = (0..4)
            .map(|index| {
                Grid::new(FleetSlot {
                    index,
                    count: 4,
                    rate: 2.0,
                })
            })
            .collect();
        let now = at(1_000_000_000.2);
        let starts: Vec<f64> = grids
            .iter()
            .map(|g| secs(g.reserve(now, now, None).unwrap()))
            .collect();
        let expected = [
            1_000_000_002.0,
            1_000_000_000.5,
            1_000_000_001.0,
            1_000_000_001.5,
        ];
        for (s, e) in starts.iter().zip(expected) {
            assert!((s - e).abs() < 1e-6, "{starts:?}");
        }
        assert_eq!(grids[0].period(), time::Duration::seconds(2));
    }

    #[test]
    fn roles_of_one_host_take_successive_slots_and_can_give_them_back() {
        let grid = Grid::new(FleetSlot {
            index: 1,
            count: 10,
            rate: 5.0,
        });
        let now = at(100.0);
        let a = grid.reserve(now, now, None).unwrap();
        let b = grid.reserve(now, now, None).unwrap();
        assert!((secs(a) - 100.2).abs() < 1e-6, "{}", secs(a));
        assert_eq!(b - a, time::Duration::seconds(2));
        grid.release(a);
        assert_eq!(grid.reserve(now, now, None), Some(a));
        // Nothing free before `latest`: no slot.
        assert_eq!(grid.reserve(now, now, Some(at(103.0))), None);
        assert!(grid.reserve(now, now, Some(at(104.3))).is_some());
        // A role that reserves far ahead leaves the nearer slots of the others taken.
        let far = grid.reserve(now, at(200.0), None).unwrap();
        assert!((secs(far) - 200.2).abs() < 1e-6);
        let next = grid.reserve(now, now, None).unwrap();
        assert!((secs(next) - 106.2).abs() < 1e-6, "{}", secs(next));
        // A slot that starts exactly at `earliest` is taken, not skipped.
        let exact = Grid::new(FleetSlot {
            index: 0,
            count: 1,
            rate: 1.0,
        });
        assert_eq!(exact.reserve(at(7.0), at(7.0), None), Some(at(7.0)));
    }

    #[test]
    fn past_slots_are_forgotten() {
        let grid = Grid::new(FleetSlot {
            index: 0,
            count: 1,
            rate: 1.0,
        });
        for s in 0..100 {
            let t = at(f64::from(s));
            grid.reserve(t, t, None).unwrap();
        }
        assert!(grid.taken.lock().unwrap().len() <= 2);
    }
}
