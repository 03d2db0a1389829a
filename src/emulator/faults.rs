//! Fault injection for CreateSession, so that retry, backoff and last-good behaviour of
//! clients can be tested against a server that misbehaves on demand.
//!
//! Faults are set in process through [`Faults`], or from outside with
//! `POST /_emulator/faults` and a JSON body (accepted from loopback peers only):
//!
//! ```text
//! {"action":"fail_next","count":2,"status":503}
//! {"action":"fail_next","count":1,"status":429,"retry_after":3}
//! {"action":"delay","millis":1500}
//! {"action":"drop_next","count":1}
//! {"action":"malformed_next","count":1}
//! {"action":"clear"}
//! ```
//!
//! Pending counts are consumed in this order: drop, fail, malformed. The delay applies to
//! every CreateSession until cleared. A faulted request is logged but not verified.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

/// What to do with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection without an answer.
    Drop,
    /// Answer this status (with an error body), and `Retry-After` when given.
    Fail {
        status: u16,
        retry_after: Option<u32>,
    },
    /// Answer 201 with a body that is not valid JSON.
    Malformed,
}

#[derive(Debug, Default)]
struct State {
    drop: u32,
    fail: u32,
    fail_status: u16,
    retry_after: Option<u32>,
    malformed: u32,
    delay: Duration,
}

/// The pending faults of one emulator.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

/// A fault order as JSON, the body of `POST /_emulator/faults`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultOrder {
    FailNext {
        count: u32,
        status: u16,
        #[serde(default)]
        retry_after: Option<u32>,
    },
    Delay {
        millis: u64,
    },
    DropNext {
        count: u32,
    },
    MalformedNext {
        count: u32,
    },
    Clear,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers the next `count` CreateSession requests with `status` (500, 503, ...).
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut s = self.lock();
        s.fail = count;
        s.fail_status = status;
        s.retry_after = None;
    }

    /// Answers the next `count` requests with `status` and `Retry-After: secs` (429 for
    /// throttling, or 503).
    pub fn fail_next_retry_after(&self, count: u32, status: u16, secs: u32) {
        let mut s = self.lock();
        s.fail = count;
        s.fail_status = status;
        s.retry_after = Some(secs);
    }

    /// Delays every CreateSession answer by `delay` (zero to stop).
    pub fn delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Closes the connection of the next `count` requests without answering.
    pub fn drop_next(&self, count: u32) {
        self.lock().drop = count;
    }

    /// Answers the next `count` requests with 201 and a truncated JSON body.
    pub fn malformed_next(&self, count: u32) {
        self.lock().malformed = count;
    }

    /// Removes every pending fault and the delay.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// Applies an order received over HTTP; refuses statuses that are not errors.
    pub fn apply(&self, order: FaultOrder) -> Result<(), String> {
        match order {
            FaultOrder::FailNext {
                count,
                status,
                retry_after,
            } => {
                if !(400..=599).contains(&status) {
                    return Err(format!("status {status} is not an error status (400..599)"));
                }
                match retry_after {
                    Some(secs) => self.fail_next_retry_after(count, status, secs),
                    None => self.fail_next(count, status),
                }
            }
            FaultOrder::Delay { millis } => {
                if millis > 600_000 {
                    return Err("a delay above 600000 ms is refused".into());
                }
                self.delay(Duration::from_millis(millis));
            }
            FaultOrder::DropNext { count } => self.drop_next(count),
            FaultOrder::MalformedNext { count } => self.malformed_next(count),
            FaultOrder::Clear => self.clear(),
        }
        Ok(())
    }

    /// The delay to apply and the fault (if any) for the request arriving now; consumes one
    /// pending count.
    pub fn take(&self) -> (Duration, Option<Fault>) {
        let mut s = self.lock();
        let fault = if s.drop > 0 {
            s.drop -= 1;
            Some(Fault::Drop)
        } else if s.fail > 0 {
            s.fail -= 1;
            Some(Fault::Fail {
                status: s.fail_status,
                retry_after: s.retry_after,
            })
        } else if s.malformed > 0 {
            s.malformed -= 1;
            Some(Fault::Malformed)
        } else {
            None
        };
        (s.delay, fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_consumed_in_order() {
        let f = Faults::default();
        f.fail_next_retry_after(2, 429, 3);
        f.drop_next(1);
        f.malformed_next(1);
        assert_eq!(f.take().1, Some(Fault::Drop));
        let fail = Some(Fault::Fail {
            status: 429,
            retry_after: Some(3),
        });
        assert_eq!(f.take().1, fail);
        assert_eq!(f.take().1, fail);
        assert_eq!(f.take().1, Some(Fault::Malformed));
        assert_eq!(f.take().1, None);
        f.delay(Duration::from_millis(5));
        assert_eq!(f.take().0, Duration::from_millis(5));
        f.clear();
        assert_eq!(f.take(), (Duration::ZERO, None));
    }

    #[test]
    fn orders_parse_and_are_checked() {
        let f = Faults::default();
        let order: FaultOrder =
            serde_json::from_str(r#"{"action":"fail_next","count":1,"status":503}"#).unwrap();
        f.apply(order).unwrap();
        assert_eq!(
            f.take().1,
            Some(Fault::Fail {
                status: 503,
                retry_after: None
            })
        );
        let bad: FaultOrder =
            serde_json::from_str(r#"{"action":"fail_next","count":1,"status":200}"#).unwrap();
        assert!(f.apply(bad).is_err());
        assert!(serde_json::from_str::<FaultOrder>(r#"{"action":"explode"}"#).is_err());
    }
}
