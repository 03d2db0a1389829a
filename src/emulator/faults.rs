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
//! {"action":"slow_body","millis":1500}
//! {"action":"drop_next","count":1}
//! {"action":"malformed_next","count":1}
//! {"action":"empty_next","count":1}
//! {"action":"incomplete_next","count":1}
//! {"action":"skew","seconds":600}
//! {"action":"expiry_skew","seconds":-3599}
//! {"action":"clear"}
//! ```
//!
//! Pending counts are consumed in this order: drop, fail, malformed, empty, incomplete. A
//! faulted request is logged but not verified. The delay, the slow body and the skew apply
//! to every CreateSession until cleared:
//!
//! - `delay` holds the whole answer back; a client that gives up meanwhile leaves its
//!   request in the log with status 0 and the fault `delay`;
//! - `slow_body` sends the status, the headers and the first half of the body at once, and
//!   the rest of the body only after the pause (a link that stalls mid-answer);
//! - `skew` runs the clock that `X-Amz-Date` is checked against that many seconds off real
//!   time, as a service whose clock (or the host's) drifted: beyond the allowed skew every
//!   request is refused with `Signature expired`, by the real check;
//! - `expiry_skew` moves the expiration of every issued credential set that many seconds
//!   (negative: credentials that expire within seconds, or expired on arrival), as a
//!   misbehaving service would; `emulate --expiry-skew` sets it at start, and `clear`
//!   keeps that start value.

use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

/// The largest `delay` or `slow_body` pause an order may ask for.
const MAX_PAUSE: Duration = Duration::from_secs(600);
/// The largest clock skew an order may ask for, in seconds (one week).
const MAX_SKEW_SECONDS: i64 = 7 * 86_400;

/// The access key id of an `incomplete` answer: made up, never issued.
pub const INCOMPLETE_ACCESS_KEY_ID: &str = "ASIAINCOMPLETE000000";
/// The secret access key of an `incomplete` answer: made up, so that tests can check that a
/// client that refuses the answer does not log it either.
pub const INCOMPLETE_SECRET_ACCESS_KEY: &str = "IncompleteAnswerSecretMustNotBeLogged000";

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
    /// Over the `--max-tps` quota: 429 `ThrottlingException`, with `Retry-After` when set.
    Throttled { retry_after: Option<u32> },
    /// Answer 201 with a body that is not valid JSON.
    Malformed,
    /// Answer 201 with valid JSON whose `credentialSet` is empty.
    Empty,
    /// Answer 201 with a credential set whose credentials lack `sessionToken` and
    /// `expiration`.
    Incomplete,
}

#[derive(Debug, Default)]
struct State {
    drop: u32,
    fail: u32,
    fail_status: u16,
    retry_after: Option<u32>,
    malformed: u32,
    empty: u32,
    incomplete: u32,
    delay: Duration,
    body_pause: Duration,
    skew_seconds: i64,
    expiry_skew_seconds: i64,
}

/// The pending faults of one emulator.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
    /// The expiry skew set at start, which `clear` returns to.
    initial_expiry_skew: i64,
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
    SlowBody {
        millis: u64,
    },
    DropNext {
        count: u32,
    },
    MalformedNext {
        count: u32,
    },
    EmptyNext {
        count: u32,
    },
    IncompleteNext {
        count: u32,
    },
    Skew {
        seconds: i64,
    },
    ExpirySkew {
        seconds: i64,
    },
    Clear,
}

impl Faults {
    /// Faults with an expiry skew from the start (`emulate --expiry-skew`).
    pub fn with_expiry_skew(seconds: i64) -> Self {
        let faults = Self {
            initial_expiry_skew: seconds,
            ..Self::default()
        };
        faults.expiry_skew(seconds);
        faults
    }

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

    /// Sends every CreateSession answer in two parts: the status, the headers and the first
    /// half of the body at once, the rest after `pause` (zero to stop).
    pub fn slow_body(&self, pause: Duration) {
        self.lock().body_pause = pause;
    }

    /// Closes the connection of the next `count` requests without answering.
    pub fn drop_next(&self, count: u32) {
        self.lock().drop = count;
    }

    /// Answers the next `count` requests with 201 and a truncated JSON body.
    pub fn malformed_next(&self, count: u32) {
        self.lock().malformed = count;
    }

    /// Answers the next `count` requests with 201 and an empty `credentialSet`.
    pub fn empty_next(&self, count: u32) {
        self.lock().empty = count;
    }

    /// Answers the next `count` requests with 201 and credentials that lack
    /// `sessionToken` and `expiration`.
    pub fn incomplete_next(&self, count: u32) {
        self.lock().incomplete = count;
    }

    /// Runs the clock that request times are checked against `seconds` off real time
    /// (positive: ahead); zero to stop.
    pub fn skew(&self, seconds: i64) {
        self.lock().skew_seconds = seconds;
    }

    /// Moves the expiration of every credential set issued from now on by `seconds`.
    pub fn expiry_skew(&self, seconds: i64) {
        self.lock().expiry_skew_seconds = seconds;
    }

    /// How many seconds issued expirations are moved.
    pub fn expiry_skew_seconds(&self) -> i64 {
        self.lock().expiry_skew_seconds
    }

    /// Removes every pending fault, the delay, the slow body and the skews (the expiry skew
    /// returns to its start value).
    pub fn clear(&self) {
        *self.lock() = State {
            expiry_skew_seconds: self.initial_expiry_skew,
            ..State::default()
        };
    }

    /// Applies an order received over HTTP; refuses statuses that are not errors, and
    /// pauses or skews beyond the limits.
    pub fn apply(&self, order: FaultOrder) -> Result<(), String> {
        let pause = |what: &str, millis: u64| {
            let pause = Duration::from_millis(millis);
            if pause > MAX_PAUSE {
                Err(format!(
                    "a {what} above {} ms is refused",
                    MAX_PAUSE.as_millis()
                ))
            } else {
                Ok(pause)
            }
        };
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
            FaultOrder::Delay { millis } => self.delay(pause("delay", millis)?),
            FaultOrder::SlowBody { millis } => self.slow_body(pause("pause", millis)?),
            FaultOrder::DropNext { count } => self.drop_next(count),
            FaultOrder::MalformedNext { count } => self.malformed_next(count),
            FaultOrder::EmptyNext { count } => self.empty_next(count),
            FaultOrder::IncompleteNext { count } => self.incomplete_next(count),
            FaultOrder::Skew { seconds } => {
                if seconds.abs() > MAX_SKEW_SECONDS {
                    return Err(format!(
                        "a skew beyond {MAX_SKEW_SECONDS} seconds either way is refused"
                    ));
                }
                self.skew(seconds);
            }
            FaultOrder::ExpirySkew { seconds } => {
                if seconds.abs() > MAX_SKEW_SECONDS {
                    return Err(format!(
                        "an expiry skew beyond {MAX_SKEW_SECONDS} seconds either way is refused"
                    ));
                }
                self.expiry_skew(seconds);
            }
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
        } else if s.empty > 0 {
            s.empty -= 1;
            Some(Fault::Empty)
        } else if s.incomplete > 0 {
            s.incomplete -= 1;
            Some(Fault::Incomplete)
        } else {
            None
        };
        (s.delay, fault)
    }

    /// The pause in the middle of every answer's body (zero: none).
    pub fn body_pause(&self) -> Duration {
        self.lock().body_pause
    }

    /// How many seconds the request-time check's clock runs off real time.
    pub fn skew_seconds(&self) -> i64 {
        self.lock().skew_seconds
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
        f.empty_next(1);
        f.incomplete_next(1);
        assert_eq!(f.take().1, Some(Fault::Drop));
        let fail = Some(Fault::Fail {
            status: 429,
            retry_after: Some(3),
        });
        assert_eq!(f.take().1, fail);
        assert_eq!(f.take().1, fail);
        assert_eq!(f.take().1, Some(Fault::Malformed));
        assert_eq!(f.take().1, Some(Fault::Empty));
        assert_eq!(f.take().1, Some(Fault::Incomplete));
        assert_eq!(f.take().1, None);
        f.delay(Duration::from_millis(5));
        assert_eq!(f.take().0, Duration::from_millis(5));
        f.slow_body(Duration::from_millis(7));
        f.skew(-42);
        assert_eq!(f.body_pause(), Duration::from_millis(7));
        assert_eq!(f.skew_seconds(), -42);
        f.clear();
        assert_eq!(f.take(), (Duration::ZERO, None));
        assert_eq!(f.body_pause(), Duration::ZERO);
        assert_eq!(f.skew_seconds(), 0);
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

        for (text, ok) in [
            (r#"{"action":"empty_next","count":1}"#, true),
            (r#"{"action":"incomplete_next","count":1}"#, true),
            (r#"{"action":"slow_body","millis":2000}"#, true),
            (r#"{"action":"slow_body","millis":600001}"#, false),
            (r#"{"action":"delay","millis":600001}"#, false),
            (r#"{"action":"skew","seconds":-600}"#, true),
            (r#"{"action":"skew","seconds":604801}"#, false),
            (r#"{"action":"expiry_skew","seconds":-3599}"#, true),
            (r#"{"action":"expiry_skew","seconds":-604801}"#, false),
        ] {
            let order: FaultOrder = serde_json::from_str(text).unwrap();
            assert_eq!(f.apply(order).is_ok(), ok, "{text}");
        }
        assert_eq!(f.take().1, Some(Fault::Empty));
        assert_eq!(f.take().1, Some(Fault::Incomplete));
        assert_eq!(f.body_pause(), Duration::from_millis(2000));
        assert_eq!(f.skew_seconds(), -600);
        assert_eq!(f.expiry_skew_seconds(), -3599);
        f.clear();
        assert_eq!(f.expiry_skew_seconds(), 0);
        let started = Faults::with_expiry_skew(-7200);
        started.expiry_skew(5);
        started.clear();
        assert_eq!(started.expiry_skew_seconds(), -7200);
    }
}
