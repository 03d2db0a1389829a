//! Fleet simulation: N hosts, each a daemon with R roles on the real refresh engine
//! (`rolesanywhere_helper::refresh`: schedule, backoff, pacing, wall-clock checks), against a
//! simulated CreateSession service that enforces the quota of one account and region (10
//! calls in any one second; more are answered 429 `ThrottlingException`). tokio's paused
//! time is the hosts' monotonic clock and an injected clock their wall clock, so hours of
//! fleet time run in seconds.
//!
//! Every host has its slot in the fleet (`fleet_slot = "HOST/N"`, the default fleet rate of
//! 9.5 calls per second) and a wall clock off by up to ±20 ms, as NTP keeps a fleet's clocks.
//! Phases: a cold start of every host at once, a steady state of one session lifetime, a
//! 10-minute regional outage (503 for every call), and a mass forward clock jump of 20
//! minutes (every host resumed from a suspend at once).
//!
//! `FLEET_ROLES` (default 1) sets the roles per host. `FLEET_SLOTS=0` runs the hosts without
//! slots instead, each role's first fetch spread at
//! random over a start window of N·R / quota seconds (`FLEET_START_FACTOR` times that), for
//! comparison; `FLEET_THROTTLE_CAP` (seconds, default 30) sets the engine's
//! `max_throttled_backoff`.
//!
//! `cargo run --example fleet [-- N...]` prints the figures for N = 1,000, 10,000
//! and 100,000 hosts (or the given N) and writes `bench/fleet/fleet-N.svg`, the call rate
//! over time.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plotters::prelude::*;
use rolesanywhere_helper::credentials::Credentials;
use rolesanywhere_helper::refresh::{
    self, Clock, CredentialSource, FetchError, Fetched, FleetSlot, Pacers, Pacing, Schedule,
    SharedClock,
};
use rolesanywhere_helper::rolesanywhere::CreateSessionError;
use rolesanywhere_helper::secret::Secret;
use time::OffsetDateTime;
use tokio::time::Instant;

/// The service's CreateSession quota per account and region, calls per second.
const QUOTA: u32 = 10;
/// The outage, and the clock jump.
const OUTAGE: Duration = Duration::from_secs(600);
const JUMP: time::Duration = time::Duration::minutes(20);
/// How long a call takes.
const LATENCY: Duration = Duration::from_millis(80);

/// The wall clock: tokio's (paused) clock plus the jumps made.
struct SimClock {
    base: OffsetDateTime,
    start: Instant,
    jumped: Mutex<time::Duration>,
}

impl Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        self.base + (Instant::now() - self.start) + *lock(&self.jumped)
    }
}

/// One host's wall clock: the simulation's, off by a fixed few milliseconds.
struct HostClock {
    sim: Arc<SimClock>,
    offset: time::Duration,
}

impl Clock for HostClock {
    fn now(&self) -> OffsetDateTime {
        self.sim.now() + self.offset
    }
}

/// The clock offset of `host`, spread evenly over ±20 ms (a fixed scramble of the host's
/// number, so that runs compare).
fn clock_offset(host: usize) -> time::Duration {
    let scrambled = (host as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let unit = scrambled as f64 / (1u64 << 24) as f64;
    time::Duration::seconds_f64((unit - 0.5) * 0.040)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the service saw, second by second, and what each role held.
#[derive(Default)]
struct Ledger {
    /// Calls accepted in the last second (the quota window).
    window: VecDeque<Instant>,
    attempts: Vec<u32>,
    accepted: Vec<u32>,
    throttled: u64,
    /// Until when each role's credentials can be served (`None`: never had any).
    serve_until: Vec<Option<OffsetDateTime>>,
    holding: usize,
    /// The longest time a role that had credentials went without servable ones.
    longest_gap: time::Duration,
    down_until: Option<Instant>,
}

struct Service {
    clock: Arc<SimClock>,
    lifetime: time::Duration,
    ledger: Mutex<Ledger>,
}

impl Service {
    fn call(&self, role: usize) -> Result<Credentials, FetchError> {
        let now = Instant::now();
        let second = (now - self.clock.start).as_secs() as usize;
        let mut l = lock(&self.ledger);
        if l.attempts.len() <= second {
            l.attempts.resize(second + 1, 0);
            l.accepted.resize(second + 1, 0);
        }
        l.attempts[second] += 1;
        if l.down_until.is_some_and(|d| now < d) {
            return Err(refusal(503, "InternalServerException"));
        }
        while l
            .window
            .front()
            .is_some_and(|&t| now - t >= Duration::from_secs(1))
        {
            l.window.pop_front();
        }
        if l.window.len() >= QUOTA as usize {
            l.throttled += 1;
            return Err(refusal(429, "ThrottlingException"));
        }
        l.window.push_back(now);
        l.accepted[second] += 1;
        let wall = self.clock.now();
        let expiration = wall + self.lifetime;
        let until = expiration - refresh::floor(self.lifetime);
        match l.serve_until[role] {
            None => l.holding += 1,
            Some(previous) if previous < wall => {
                l.longest_gap = l.longest_gap.max(wall - previous);
            }
            Some(_) => {}
        }
        l.serve_until[role] = Some(until);
        Ok(Credentials {
            access_key_id: "ASIASIMULATED".into(),
            secret_access_key: Secret::from("s".to_owned()),
            session_token: Secret::from("t".to_owned()),
            expiration,
            expiration_text: String::new(),
            role_arn: "arn:aws:iam::111122223333:role/sim".into(),
        })
    }

    /// Roles whose credentials have lapsed by now count their gap so far.
    fn close_gaps(&self) {
        let wall = self.clock.now();
        let mut l = lock(&self.ledger);
        let worst = l
            .serve_until
            .iter()
            .flatten()
            .filter(|&&u| u < wall)
            .map(|&u| wall - u)
            .max();
        if let Some(w) = worst {
            l.longest_gap = l.longest_gap.max(w);
        }
    }
}

fn refusal(status: u16, error_type: &str) -> FetchError {
    FetchError::CreateSession(Arc::new(CreateSessionError::Service {
        status,
        error_type: error_type.into(),
        message: "simulated".into(),
        request_id: None,
        attempts: 1,
        // The simulated service throttles without `Retry-After`.
        retry_after: None,
    }))
}

/// One role of one host.
struct RoleSource {
    service: Arc<Service>,
    role: usize,
}

impl CredentialSource for RoleSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
        Box::pin(async move {
            tokio::time::sleep(LATENCY).await;
            self.service.call(self.role).map(|credentials| Fetched {
                credentials,
                serial: "1".into(),
                certificate_not_after: None,
            })
        })
    }

    fn quota_key(&self) -> String {
        "111122223333/us-east-1".into()
    }
}

/// The figures of one phase.
struct Phase {
    name: &'static str,
    from: usize,
    to: usize,
    throttled: u64,
    longest_gap: time::Duration,
}

struct Report {
    hosts: usize,
    session_hours: u32,
    all_holding_after: f64,
    minimum: f64,
    phases: Vec<Phase>,
    steady_per_role_hour: f64,
    attempts: Vec<u32>,
    accepted: Vec<u32>,
}

/// The shortest whole-hour session that keeps a fleet's steady state (two calls per role
/// per lifetime) under half the quota.
fn session_hours(roles: usize) -> u32 {
    let per_hour_at_one = 2.0 * roles as f64;
    let budget = 0.5 * f64::from(QUOTA) * 3600.0;
    ((per_hour_at_one / budget).ceil() as u32).clamp(1, 12)
}

async fn simulate(hosts: usize) -> Report {
    let roles = hosts * roles_per_host();
    let hours = session_hours(roles);
    let lifetime = time::Duration::hours(i64::from(hours));
    let clock = Arc::new(SimClock {
        base: OffsetDateTime::now_utc(),
        start: Instant::now(),
        jumped: Mutex::new(time::Duration::ZERO),
    });
    let service = Arc::new(Service {
        clock: clock.clone(),
        lifetime,
        ledger: Mutex::new(Ledger {
            serve_until: vec![None; roles],
            ..Ledger::default()
        }),
    });
    // What a fleet operator sets: a slot per host, or else the first fetches spread over
    // N·R / quota seconds.
    let minimum = roles as f64 / f64::from(QUOTA);
    let mut handles = Vec::with_capacity(roles);
    for host in 0..hosts {
        let fleet = slots().then_some(FleetSlot {
            index: host as u32,
            count: hosts as u32,
            rate: FleetSlot::DEFAULT_RATE,
        });
        let start_window = if slots() {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(minimum * start_factor())
        };
        let schedule = Schedule {
            clock: SharedClock(Arc::new(HostClock {
                sim: clock.clone(),
                offset: clock_offset(host),
            })),
            pacers: Arc::new(Pacers::with_fleet(Pacing::default(), fleet)),
            start_window,
            wall_check: wall_check(hosts),
            max_throttled_backoff: Duration::from_secs(env_or("FLEET_THROTTLE_CAP", 30.0) as u64),
            ..Schedule::default()
        };
        for r in 0..roles_per_host() {
            let role = host * roles_per_host() + r;
            let source = Arc::new(RoleSource {
                service: service.clone(),
                role,
            });
            handles.push(refresh::spawn(
                format!("h{host}r{r}"),
                source,
                schedule.clone(),
            ));
        }
    }
    let second = |clock: &SimClock| (Instant::now() - clock.start).as_secs() as usize;
    let throttled = |s: &Service| lock(&s.ledger).throttled;
    let mut phases = Vec::new();

    // Cold start.
    while lock(&service.ledger).holding < roles {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let all_holding_after = (Instant::now() - clock.start).as_secs_f64();
    phases.push(Phase {
        name: "cold start",
        from: 0,
        to: second(&clock),
        throttled: throttled(&service),
        longest_gap: lock(&service.ledger).longest_gap,
    });

    // Steady state over one lifetime, after the first refreshes have settled.
    let phase = |name, from, before: u64| {
        service.close_gaps();
        let mut l = lock(&service.ledger);
        let gap = std::mem::replace(&mut l.longest_gap, time::Duration::ZERO);
        Phase {
            name,
            from,
            to: second(&clock),
            throttled: l.throttled - before,
            longest_gap: gap,
        }
    };
    lock(&service.ledger).longest_gap = time::Duration::ZERO;
    tokio::time::sleep(Duration::try_from(lifetime / 2).unwrap_or_default()).await;
    let (from, before) = (second(&clock), throttled(&service));
    tokio::time::sleep(Duration::try_from(lifetime).unwrap_or_default()).await;
    phases.push(phase("steady state", from, before));

    // A regional outage.
    let (from, before) = (second(&clock), throttled(&service));
    lock(&service.ledger).down_until = Some(Instant::now() + OUTAGE);
    tokio::time::sleep(OUTAGE + Duration::from_secs(1800)).await;
    phases.push(phase("10-min outage", from, before));

    // Every host's wall clock jumps forward at once.
    let (from, before) = (second(&clock), throttled(&service));
    *lock(&clock.jumped) += JUMP;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    phases.push(phase("clock jump +20 min", from, before));
    drop(handles);

    let mut l = lock(&service.ledger);
    // Seconds without a call at the end still count.
    let end = second(&clock);
    if l.attempts.len() < end {
        l.attempts.resize(end, 0);
        l.accepted.resize(end, 0);
    }
    let steady = &phases[1];
    let steady_calls: u32 = l.accepted[steady.from..steady.to].iter().sum();
    let steady_hours = (steady.to - steady.from) as f64 / 3600.0;
    Report {
        hosts,
        session_hours: hours,
        all_holding_after,
        minimum,
        steady_per_role_hour: f64::from(steady_calls) / roles as f64 / steady_hours,
        attempts: l.attempts.clone(),
        accepted: l.accepted.clone(),
        phases,
    }
}

fn print(report: &Report) {
    let peak = |v: &[u32]| v.iter().copied().max().unwrap_or(0);
    let start = if slots() {
        format!("fleet slots at {}/s", FleetSlot::DEFAULT_RATE)
    } else {
        format!(
            "no slots, start window {:.0} s",
            report.minimum * start_factor()
        )
    };
    println!(
        "N = {} hosts x {} role(s), {} h sessions, quota {QUOTA}/s, {start}",
        report.hosts,
        roles_per_host(),
        report.session_hours,
    );
    println!(
        "  every host holding credentials after {:.0} s = {:.3} x the quota-limited minimum ({:.0} s)",
        report.all_holding_after,
        report.all_holding_after / report.minimum,
        report.minimum
    );
    println!(
        "  steady state: {:.2} CreateSession calls per role per hour",
        report.steady_per_role_hour
    );
    println!(
        "  {:<20} {:>9} {:>9} {:>9} {:>9} {:>10} {:>14}",
        "phase", "peak att", "peak ok", "mean ok", "secs>11", "throttled", "longest gap"
    );
    for p in &report.phases {
        let attempts = &report.attempts[p.from..p.to.min(report.attempts.len())];
        let accepted = &report.accepted[p.from..p.to.min(report.accepted.len())];
        let mean = f64::from(accepted.iter().sum::<u32>()) / accepted.len().max(1) as f64;
        let over = attempts
            .iter()
            .filter(|&&n| f64::from(n) > 1.1 * f64::from(QUOTA))
            .count();
        println!(
            "  {:<20} {:>9} {:>9} {:>9.2} {:>9} {:>10} {:>12} s",
            p.name,
            peak(attempts),
            peak(accepted),
            mean,
            over,
            p.throttled,
            p.longest_gap.whole_seconds()
        );
    }
}

/// The call rate over time, minute by minute: the busiest second's calls received, and the
/// mean calls received and accepted per second.
fn chart(report: &Report, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let per_minute = |v: &[u32], of: fn(&[u32]) -> f64| -> Vec<(f64, f64)> {
        v.chunks(60)
            .enumerate()
            .map(|(i, c)| (i as f64 / 60.0, of(c)))
            .collect()
    };
    let mean = |c: &[u32]| f64::from(c.iter().sum::<u32>()) / c.len() as f64;
    let busiest = |c: &[u32]| f64::from(c.iter().copied().max().unwrap_or(0));
    let peaks = per_minute(&report.attempts, busiest);
    let attempts = per_minute(&report.attempts, mean);
    let accepted = per_minute(&report.accepted, mean);
    let end = attempts.last().map_or(1.0, |p| p.0);
    let top = peaks.iter().map(|p| p.1).fold(f64::from(QUOTA), f64::max) * 1.15;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "CreateSession calls per second, {} hosts {}, quota {QUOTA}/s",
                report.hosts,
                if slots() {
                    "with fleet slots"
                } else {
                    "without fleet slots"
                }
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("simulated hours")
        .y_desc("calls per second")
        .draw()?;
    let orange = RGBColor(240, 150, 40);
    chart
        .draw_series(LineSeries::new(peaks, orange))?
        .label("received in the busiest second of each minute")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], orange));
    chart
        .draw_series(LineSeries::new(attempts, &RED))?
        .label("received, 1-minute mean (incl. throttled, refused in the outage)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    chart
        .draw_series(LineSeries::new(accepted, &BLUE))?
        .label("accepted, 1-minute mean")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, f64::from(QUOTA)), (end, f64::from(QUOTA))],
            &BLACK,
        ))?
        .label("quota")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    for hosts in sizes {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()?;
        let started = std::time::Instant::now();
        let report = runtime.block_on(simulate(hosts));
        print(&report);
        let name = if slots() {
            format!("fleet-{hosts}.svg")
        } else {
            format!("fleet-{hosts}-no-slots.svg")
        };
        chart(
            &report,
            &format!("{}/bench/fleet/{name}", env!("CARGO_MANIFEST_DIR")),
        )?;
        println!(
            "  ({:.1} s of real time; chart: bench/fleet/{name})\n",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Roles per host (`FLEET_ROLES`, default 1).
fn roles_per_host() -> usize {
    env_or("FLEET_ROLES", 1.0).max(1.0) as usize
}

/// Whether the hosts have fleet slots (`FLEET_SLOTS`, default 1).
fn slots() -> bool {
    env_or("FLEET_SLOTS", 1.0) != 0.0
}

/// The start window as a fraction of the quota-limited minimum (`FLEET_START_FACTOR`,
/// default 1).
fn start_factor() -> f64 {
    env_or("FLEET_START_FACTOR", 1.0)
}

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How often the simulated hosts read their wall clock: the engine's 5 s would cost
/// 100,000 roles 20,000 wake-ups per simulated second; 30 s (300 s from 100,000 hosts)
/// changes only how soon a clock jump is noticed, which the figures show.
fn wall_check(hosts: usize) -> Duration {
    if hosts >= 100_000 {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(30)
    }
}
