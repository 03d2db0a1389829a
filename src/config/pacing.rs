//! How fast one daemon may call CreateSession: the token bucket each account and region
//! gets (calls per second, burst), and the window over which the roles' first fetches are
//! spread. Command line, then config file, then the defaults of
//! [`crate::refresh::pacing::Pacing`]: well under the service's quota of 10 calls per second per
//! account and region, for one host. A fleet shares that quota: see the README's "Fleets".

use std::time::Duration;

use super::file::ConfigFile;
use super::origin::{ConfigError, Origin, Sourced, first};
use crate::cli::ServeArgs;

/// The largest start window (one hour): longer would leave a host without credentials for
/// longer than most sessions last.
const MAX_START_WINDOW_SECONDS: u64 = 3600;

/// The validated pacing of `serve`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacingPlan {
    /// CreateSession calls per second per account and region.
    pub rate: f64,
    /// Calls that may go out at once after a quiet time.
    pub burst: u32,
    /// Each role's first fetch waits a random time up to this.
    pub start_window: Duration,
}

impl Default for PacingPlan {
    fn default() -> Self {
        let pacing = crate::refresh::pacing::Pacing::default();
        Self {
            rate: pacing.rate,
            burst: pacing.burst,
            start_window: Duration::ZERO,
        }
    }
}

/// The pacing of `args` and `file`.
pub fn pacing_plan(args: &ServeArgs, file: Option<&ConfigFile>) -> Result<PacingPlan, ConfigError> {
    let top = file.map(|f| (f, &f.top));
    let rate = first([
        args.pacing_rate
            .map(|v| Sourced::new(v, Origin::Flag("--pacing-rate"))),
        top.and_then(|(f, t)| f.top(&t.pacing_rate, "pacing_rate")),
    ]);
    let burst = first([
        args.pacing_burst
            .map(|v| Sourced::new(v, Origin::Flag("--pacing-burst"))),
        top.and_then(|(f, t)| f.top(&t.pacing_burst, "pacing_burst")),
    ]);
    let window = first([
        args.start_window
            .map(|v| Sourced::new(v, Origin::Flag("--start-window"))),
        top.and_then(|(f, t)| f.top(&t.start_window, "start_window")),
    ]);
    let mut plan = PacingPlan::default();
    if let Some(rate) = rate {
        if !(rate.value.is_finite() && (0.01..=1000.0).contains(&rate.value)) {
            return Err(rate.error("must be a number of calls per second from 0.01 to 1000"));
        }
        plan.rate = rate.value;
    }
    if let Some(burst) = burst {
        if !(1..=1000).contains(&burst.value) {
            return Err(burst.error("must be a number of calls from 1 to 1000"));
        }
        plan.burst = burst.value;
    }
    if let Some(window) = window {
        if window.value > MAX_START_WINDOW_SECONDS {
            return Err(window.error(format!(
                "must be a number of seconds from 0 to {MAX_START_WINDOW_SECONDS}"
            )));
        }
        plan.start_window = Duration::from_secs(window.value);
    }
    Ok(plan)
}
