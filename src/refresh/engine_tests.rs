//! The refresher's loop against a fake service on tokio's paused clock and a fake wall
//! clock: unusable answers, clock steps, pacing across roles and fleet slots.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::clock::{Clock, SharedClock};
use super::pacing::{Pacers, Pacing};
use super::source::{CredentialSource, FetchError, Fetched};
use super::{FleetSlot, Handle, Schedule, State, spawn};

/// A wall clock that follows tokio's (paused) clock, plus jumps the test makes.
struct FakeClock {
    base: OffsetDateTime,
    start: Instant,
    jumped: Mutex<time::Duration>,
}

impl FakeClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            base: OffsetDateTime::now_utc(),
            start: Instant::now(),
            jumped: Mutex::new(time::Duration::ZERO),
        })
    }

    fn jump(&self, by: time::Duration) {
        *self.jumped.lock().unwrap() += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        self.base + (Instant::now() - self.start) + *self.jumped.lock().unwrap()
    }
}

/// A service on the fake clock, issuing credentials of `lifetime` that expire
/// `expiry_skew` later (negative: earlier) than they should; it logs when it is called.
struct Service {
    clock: Arc<FakeClock>,
    lifetime: time::Duration,
    expiry_skew: Mutex<time::Duration>,
    calls: Mutex<Vec<Instant>>,
    /// The same calls by the wall clock.
    wall_calls: Mutex<Vec<OffsetDateTime>>,
    key: String,
    /// Calls still to be answered 429 `ThrottlingException`.
    throttle_next: Mutex<u32>,
}

impl Service {
    fn new(clock: &Arc<FakeClock>, lifetime: time::Duration) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            lifetime,
            expiry_skew: Mutex::new(time::Duration::ZERO),
            calls: Mutex::default(),
            wall_calls: Mutex::default(),
            key: "111122223333/us-east-1".into(),
            throttle_next: Mutex::new(0),
        })
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

impl CredentialSource for Service {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(Instant::now());
            self.wall_calls.lock().unwrap().push(self.clock.now());
            {
                let mut throttle = self.throttle_next.lock().unwrap();
                if *throttle > 0 {
                    *throttle -= 1;
                    return Err(super::source::refused(429, "ThrottlingException"));
                }
            }
            let expiration = self.clock.now() + self.lifetime + *self.expiry_skew.lock().unwrap();
            Ok(super::source::expiring("ASIAFAKE", expiration))
        })
    }

    fn quota_key(&self) -> String {
        self.key.clone()
    }
}

fn schedule(clock: &Arc<FakeClock>) -> Schedule {
    Schedule {
        clock: SharedClock(clock.clone()),
        ..Schedule::default()
    }
}

async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn expired_and_short_answers_are_failures_and_slow_down() {
    for skew in [
        time::Duration::seconds(-7200),
        time::Duration::seconds(-3599),
    ] {
        let clock = FakeClock::new();
        let service = Service::new(&clock, time::Duration::hours(1));
        *service.expiry_skew.lock().unwrap() = skew;
        let handle = spawn("r".into(), service.clone(), schedule(&clock));
        run_for(Duration::from_secs(600)).await;
        let calls = service.calls();
        let start = calls[0];
        let first_minute = calls
            .iter()
            .filter(|&&t| t - start < Duration::from_secs(60))
            .count();
        assert!(
            first_minute <= 4,
            "{first_minute} calls in the first minute"
        );
        assert!(calls.len() <= 12, "{} calls in 10 minutes", calls.len());
        assert!(calls.len() >= 3, "still retried");
        assert!(
            matches!(handle.state(), State::Starting { last_error: Some(ref e) } if e.contains("needed to serve")),
            "{:?}",
            handle.state()
        );
        assert_eq!(handle.stats().successes.load(Ordering::Relaxed), 0);
        // The service recovers: the next retry succeeds.
        *service.expiry_skew.lock().unwrap() = time::Duration::ZERO;
        run_for(Duration::from_secs(300)).await;
        assert!(handle.current(clock.now()).is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn a_forward_wall_clock_jump_is_followed_by_a_refresh_within_seconds() {
    for jump in [time::Duration::minutes(40), time::Duration::hours(3)] {
        let clock = FakeClock::new();
        let service = Service::new(&clock, time::Duration::hours(1));
        let mut handle: Handle = spawn("r".into(), service.clone(), schedule(&clock));
        handle.first().await.unwrap();
        run_for(Duration::from_secs(60)).await;
        assert_eq!(service.calls().len(), 1);
        // The monotonic clock stands still (a suspend), the wall clock moves on.
        clock.jump(jump);
        let jumped_at = Instant::now();
        run_for(Duration::from_secs(10)).await;
        let calls = service.calls();
        assert_eq!(calls.len(), 2, "one refresh after the jump of {jump}");
        assert!(calls[1] - jumped_at <= Duration::from_secs(6));
        assert!(handle.current(clock.now()).is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn a_backward_step_does_not_delay_the_refresh() {
    let clock = FakeClock::new();
    let service = Service::new(&clock, time::Duration::hours(1));
    let mut handle = spawn("r".into(), service.clone(), schedule(&clock));
    handle.first().await.unwrap();
    clock.jump(time::Duration::minutes(-20));
    // The first refresh comes within 55 % of the hour by the monotonic clock (33 minutes),
    // not 20 minutes later as the wall clock would have it.
    run_for(Duration::from_secs(1981)).await;
    assert_eq!(
        service.calls().len(),
        2,
        "refreshed on the monotonic schedule"
    );
}

#[tokio::test(start_paused = true)]
async fn many_roles_share_one_bucket_per_account_and_region() {
    let clock = FakeClock::new();
    let pacers = Arc::new(Pacers::new(Pacing::default()));
    let mut services = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..50 {
        let service = Service::new(&clock, time::Duration::hours(1));
        let s = Schedule {
            pacers: pacers.clone(),
            ..schedule(&clock)
        };
        handles.push(spawn("r".into(), service.clone(), s));
        services.push(service);
    }
    let start = Instant::now();
    for h in &mut handles {
        h.first().await.unwrap();
    }
    let mut calls: Vec<f64> = services
        .iter()
        .flat_map(|s| s.calls())
        .map(|t| (t - start).as_secs_f64())
        .collect();
    calls.sort_by(f64::total_cmp);
    assert_eq!(calls.len(), 50);
    let last = calls[49];
    assert!((20.0..=25.0).contains(&last), "all ready after {last} s");
    for w in 0..=last.ceil() as usize * 10 {
        let from = w as f64 / 10.0;
        let n = calls
            .iter()
            .filter(|&&t| t >= from && t < from + 1.0)
            .count();
        assert!(n <= 7, "{n} calls in the second from {from}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_answer_slows_the_other_roles_of_the_account() {
    let clock = FakeClock::new();
    let pacers = Arc::new(Pacers::new(Pacing {
        rate: 100.0,
        burst: 100,
    }));
    let shared = |clock: &Arc<FakeClock>| Schedule {
        pacers: pacers.clone(),
        ..schedule(clock)
    };
    let throttled = Service::new(&clock, time::Duration::hours(1));
    *throttled.throttle_next.lock().unwrap() = 1;
    let start = Instant::now();
    let mut first = spawn("a".into(), throttled.clone(), shared(&clock));
    run_for(Duration::from_millis(100)).await;
    let other = Service::new(&clock, time::Duration::hours(1));
    let mut second = spawn("b".into(), other.clone(), shared(&clock));
    let mut elsewhere_service = Service::new(&clock, time::Duration::hours(1));
    Arc::get_mut(&mut elsewhere_service).unwrap().key = "444455556666/us-east-1".into();
    let mut elsewhere = spawn("c".into(), elsewhere_service.clone(), shared(&clock));
    first.first().await.unwrap();
    second.first().await.unwrap();
    elsewhere.first().await.unwrap();
    // The bucket of the account stays closed for at least half a second after the 429,
    // for the role that got it and for the other one; another account is not slowed.
    assert!(other.calls()[0] - start >= Duration::from_millis(500));
    assert!(throttled.calls()[1] - start >= Duration::from_millis(500));
    assert!(elsewhere_service.calls()[0] - start < Duration::from_millis(200));
}

/// A schedule for host `index` of a fleet of `count` at `rate` calls per second.
fn fleet_schedule(clock: &Arc<FakeClock>, index: u32, count: u32, rate: f64) -> Schedule {
    Schedule {
        pacers: Arc::new(Pacers::with_fleet(
            Pacing::default(),
            Some(FleetSlot { index, count, rate }),
        )),
        ..schedule(clock)
    }
}

/// Seconds from the start of the host's slot to `t`, in a cycle of `period` seconds whose
/// slot starts `offset` seconds in.
fn past_slot(t: OffsetDateTime, period: f64, offset: f64) -> f64 {
    ((t - OffsetDateTime::UNIX_EPOCH).as_seconds_f64() - offset).rem_euclid(period)
}

#[tokio::test(start_paused = true)]
async fn every_call_of_a_fleet_host_is_at_one_of_its_slots() {
    // Host 2 of 5 at one call a second: a 5-second cycle whose slot starts 2 s in.
    let clock = FakeClock::new();
    let schedule = fleet_schedule(&clock, 2, 5, 1.0);
    let services: Vec<_> = (0..3)
        .map(|_| Service::new(&clock, time::Duration::minutes(1)))
        .collect();
    let handles: Vec<Handle> = services
        .iter()
        .map(|s| spawn("r".into(), s.clone(), schedule.clone()))
        .collect();
    run_for(Duration::from_secs(600)).await;
    let mut calls: Vec<OffsetDateTime> = services
        .iter()
        .flat_map(|s| s.wall_calls.lock().unwrap().clone())
        .collect();
    calls.sort();
    // Three one-minute sessions refreshed at 30 to 42 s: about 50 calls each in 10 minutes.
    assert!(calls.len() >= 3 * 14, "{} calls", calls.len());
    for t in &calls {
        let into = past_slot(*t, 5.0, 2.0);
        assert!(into < 0.01, "a call {into} s after the start of the slot");
    }
    for pair in calls.windows(2) {
        assert!(
            pair[1] - pair[0] >= time::Duration::seconds(4),
            "two calls in one slot"
        );
    }
    for h in &handles {
        assert!(h.current(clock.now()).is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_clock_step_a_fleet_host_waits_for_its_next_slot_while_it_can() {
    // A 10-minute cycle; two-hour sessions, refreshed at a slot between 60 and 87.5 minutes.
    let clock = FakeClock::new();
    let service = Service::new(&clock, time::Duration::hours(2));
    let mut handle = spawn(
        "r".into(),
        service.clone(),
        fleet_schedule(&clock, 0, 600, 1.0),
    );
    handle.first().await.unwrap();
    let received = *service.wall_calls.lock().unwrap().last().unwrap();
    // Resumed 88 minutes later: past the slot it waited for, with 27 minutes still servable.
    clock.jump(time::Duration::minutes(88));
    run_for(Duration::from_secs(10)).await;
    assert_eq!(
        service.calls().len(),
        1,
        "no call with the rest of the fleet"
    );
    run_for(Duration::from_secs(600)).await;
    let calls = service.wall_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(past_slot(calls[1], 600.0, 0.0) < 0.01, "at the host's slot");
    assert!(calls[1] - received < time::Duration::minutes(105));
    assert!(handle.current(clock.now()).is_ok());

    // Resumed after the credentials have lapsed: at once, whatever the slot.
    clock.jump(time::Duration::hours(3));
    let jumped_at = Instant::now();
    run_for(Duration::from_secs(10)).await;
    let calls = service.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls[2] - jumped_at <= Duration::from_secs(6));
    assert!(handle.current(clock.now()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_fleet_with_slots_never_calls_above_its_rate() {
    // 100 hosts with two roles each at 5 calls a second (a 20-second cycle, two cycles for
    // a host's two roles), ten-minute sessions, all started at once, then every wall clock
    // stepped forward by 3 minutes together.
    let clock = FakeClock::new();
    let hosts = 100;
    let services: Vec<_> = (0..2 * hosts)
        .map(|_| Service::new(&clock, time::Duration::minutes(10)))
        .collect();
    let schedules: Vec<Schedule> = (0..hosts)
        .map(|i| fleet_schedule(&clock, i, hosts, 5.0))
        .collect();
    let handles: Vec<Handle> = services
        .iter()
        .enumerate()
        .map(|(i, s)| spawn("r".into(), s.clone(), schedules[i / 2].clone()))
        .collect();
    run_for(Duration::from_secs(41)).await;
    assert!(
        handles.iter().all(|h| h.current(clock.now()).is_ok()),
        "every role holds credentials after two cycles"
    );
    run_for(Duration::from_secs(1800)).await;
    clock.jump(time::Duration::minutes(3));
    run_for(Duration::from_secs(1800)).await;
    let mut per_second = std::collections::BTreeMap::new();
    for t in services
        .iter()
        .flat_map(|s| s.wall_calls.lock().unwrap().clone())
    {
        *per_second.entry(t.unix_timestamp()).or_insert(0) += 1;
    }
    let busiest = per_second.values().copied().max().unwrap_or(0);
    assert!(busiest <= 5, "{busiest} calls in one second");
    let calls: usize = per_second.values().sum();
    assert!(
        calls >= 200 * 11,
        "{calls} calls: every host refreshed all along"
    );
    for h in &handles {
        assert!(h.current(clock.now()).is_ok());
    }
}
