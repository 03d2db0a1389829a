//! How fast one daemon may call CreateSession: the token bucket each account and region
//! gets (calls per second, burst), and either the window over which the roles' first
//! fetches are spread or the host's slot in its fleet's shared schedule
//! ([`crate::refresh::slots::FleetSlot`]). Command line, then config file, then the defaults of
//! [`crate::refresh::pacing::Pacing`]: well under the service's quota of 10 calls per second per
//! account and region, for one host. A fleet shares that quota: see the README's "Fleets".

use std::time::Duration;

use super::file::ConfigFile;
use super::origin::{ConfigError, Origin, Sourced, first};
use crate::cli::ServeArgs;
use crate::refresh::slots::FleetSlot;

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
    /// The host's slot in its fleet, if it has one: then every call keeps to it.
    pub fleet: Option<FleetSlot>,
}

impl Default for PacingPlan {
    fn default() -> Self {
        let pacing = crate::refresh::pacing::Pacing::default();
        Self {
            rate: pacing.rate,
            burst: pacing.burst,
            start_window: Duration::ZERO,
            fleet: None,
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
    if let Some(window) = &window {
        if window.value > MAX_START_WINDOW_SECONDS {
            return Err(window.error(format!(
                "must be a number of seconds from 0 to {MAX_START_WINDOW_SECONDS}"
            )));
        }
        plan.start_window = Duration::from_secs(window.value);
    }
    let slot = first([
        args.fleet_slot
            .clone()
            .map(|v| Sourced::new(v, Origin::Flag("--fleet-slot"))),
        top.and_then(|(f, t)| f.top(&t.fleet_slot, "fleet_slot")),
    ]);
    let fleet_rate = first([
        args.fleet_rate
            .map(|v| Sourced::new(v, Origin::Flag("--fleet-rate"))),
        top.and_then(|(f, t)| f.top(&t.fleet_rate, "fleet_rate")),
    ]);
    plan.fleet = fleet_slot(slot, fleet_rate)?;
    if let (Some(_), Some(window)) = (plan.fleet, &window)
        && window.value > 0
    {
        return Err(window
            .error("cannot be used with a fleet slot, which spreads the first fetches itself"));
    }
    Ok(plan)
}

/// The fleet slot of `INDEX/COUNT` at `rate` calls per second.
fn fleet_slot(
    slot: Option<Sourced<String>>,
    rate: Option<Sourced<f64>>,
) -> Result<Option<FleetSlot>, ConfigError> {
    let rate_value = match &rate {
        Some(r) if !(r.value.is_finite() && (0.01..=1000.0).contains(&r.value)) => {
            return Err(r.error("must be a number of calls per second from 0.01 to 1000"));
        }
        Some(r) => r.value,
        None => FleetSlot::DEFAULT_RATE,
    };
    let Some(slot) = slot else {
        return match rate {
            Some(r) => Err(r.error("needs a fleet slot (fleet_slot, --fleet-slot)")),
            None => Ok(None),
        };
    };
    let parsed = slot
        .value
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((index, count)) if count > 0 && index < count => Ok(Some(FleetSlot {
            index,
            count,
            rate: rate_value,
        })),
        _ => Err(slot.error(format!(
            "{:?} is not a fleet slot; write INDEX/COUNT, this host's number from 0 to COUNT-1 and the number of hosts in the fleet (for example 17/1000)",
            slot.value
        ))),
    }
}
