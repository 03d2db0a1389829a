//! The wall clock the refresher reads, injected so that a simulation (or a test) can move it
//! apart from the monotonic clock that tokio's timers run on, as a suspend and resume, a VM
//! migration or an NTP step does on a real host.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The time now.
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock (`CLOCK_REALTIME`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A shared clock, cheap to clone into every refresher.
#[derive(Clone)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl SharedClock {
    pub fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock))
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedClock")
    }
}
