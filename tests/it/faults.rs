//! Upstream faults under `serve`: the real daemon with 40-second sessions from the emulator,
//! a fault injected right after the first credentials and kept across the refreshes that
//! follow, then cleared. For each fault: the endpoint keeps serving the last good credentials
//! while they are valid, the log has one clear line per failed refresh naming the error and
//! no secret, retries are as specified (3 attempts per refresh for transient errors, 1 for
//! answers no retry can fix), the attempts stay within the bound the backoff design allows,
//! the daemon burns no CPU, and a new session arrives once the fault clears.
//!
//! Network faults the emulator cannot make (a connection reset by TCP RST, a connect that
//! never completes) come from a small TCP relay in front of it. A DNS failure is a daemon
//! started against a name that does not resolve.
//!
//! The scenarios take about a session lifetime each, so all of them run at once, in their
//! own threads, the first time any of these tests asks for its outcome; each test then
//! reports and checks its own scenario.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rolesanywhere_helper::emulator::faults::INCOMPLETE_SECRET_ACCESS_KEY;
use rolesanywhere_helper::pki::KeyType;
use rolesanywhere_helper::refresh::Schedule;
use rolesanywhere_helper::rolesanywhere::ClientConfig;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::helper;
use crate::credential_process::{PROFILE, ROLE, Setup, TA};
use crate::serve_daemon::{Daemon, imds_credentials};

const ROLE_NAME: &str = "onprem-app";
/// The session lifetime the emulator grants.
const LIFETIME: u32 = 60;
/// How long after the first session was issued the fault is cleared: past the first refresh
/// (anywhere from 10 to 55 % of the lifetime after the first credentials) and at least two
/// failed refreshes after it (two throttled refreshes of three attempts each, 2 s apart, with
/// the account's pause between them, take 10 s), and before the credentials stop being handed
/// out (at 90 % of the lifetime).
const CLEAR_AFTER: Duration = Duration::from_secs(45);
/// How long after the clear a new session must have arrived.
const RECOVER_WITHIN: Duration = Duration::from_secs(5);
/// A count that outlasts any scenario.
const MANY: u32 = 1_000_000;
/// The `Retry-After` of the throttling scenario, in seconds.
const RETRY_AFTER: u32 = 2;
/// Poll period of the endpoint and of the emulator's request log.
const TICK: Duration = Duration::from_millis(25);
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Timing slack for measurements made by polling (every TICK, on a possibly busy machine).
const SLACK: Duration = Duration::from_millis(150);

// ---------------------------------------------------------------------------------------
// The tests: one per fault.

#[test]
fn fault_http_500() {
    check("http_500");
}

#[test]
fn fault_http_503() {
    check("http_503");
}

#[test]
fn fault_http_429_with_retry_after() {
    check("http_429_retry_after");
}

#[test]
fn fault_connect_timeout() {
    check("connect_timeout");
}

#[test]
fn fault_answer_slower_than_the_timeout() {
    check("answer_slower_than_timeout");
}

#[test]
fn fault_body_stalls_past_the_timeout() {
    check("body_stalls_past_timeout");
}

#[test]
fn fault_connection_closed_without_answer() {
    check("connection_closed_without_answer");
}

#[test]
fn fault_connection_reset() {
    check("connection_reset");
}

#[test]
fn fault_malformed_json() {
    check("malformed_json");
}

#[test]
fn fault_empty_credential_set() {
    check("empty_credential_set");
}

#[test]
fn fault_201_with_missing_fields() {
    check("201_missing_fields");
}

#[test]
fn fault_clock_skew_refusal() {
    check("clock_skew_refusal");
}

#[test]
fn fault_dns_failure_at_start() {
    check("dns_failure");
}

// ---------------------------------------------------------------------------------------
// The scenarios.

/// Where the attempts of a scenario can be counted from outside the daemon.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counter {
    /// The emulator's request log.
    Emulator,
    /// The connections the relay accepted (and reset).
    Relay,
    /// Nowhere outside: the kernel drops the connection attempts. The daemon's own count
    /// ("after N attempts") is used.
    LogOnly,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RelayMode {
    Forward = 0,
    Reset = 1,
    Stall = 2,
}

struct Spec {
    name: &'static str,
    /// Flags besides the identity, ARNs and endpoint.
    flags: &'static [&'static str],
    through_relay: bool,
    inject: fn(&Env),
    /// What the failure line must say.
    expect: &'static [&'static str],
    /// Attempts per failed refresh: the client's 3 for transient errors, 1 for answers no
    /// retry can fix.
    per_refresh: u32,
    counter: Counter,
    /// How long the emulator may take to log an attempt after it arrived (the delayed
    /// answer is logged when sent).
    settle: Duration,
}

struct Env<'a> {
    setup: &'a Setup,
    relay: Option<&'a Relay>,
}

fn specs() -> Vec<Spec> {
    let transient = ClientConfig::new("https://x").max_attempts;
    vec![
        Spec {
            name: "http_500",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().fail_next(MANY, 500),
            expect: &[
                "CreateSession failed (500 InternalServerException): Injected fault (after 3 attempts)",
            ],
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "http_503",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().fail_next(MANY, 503),
            expect: &[
                "CreateSession failed (503 ServiceUnavailableException): Injected fault (after 3 attempts)",
            ],
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "http_429_retry_after",
            flags: &[],
            through_relay: false,
            inject: |e| {
                e.setup
                    .emulator
                    .faults()
                    .fail_next_retry_after(MANY, 429, RETRY_AFTER)
            },
            expect: &[
                "CreateSession failed (429 ThrottlingException): Injected fault (after 3 attempts)",
            ],
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "connect_timeout",
            flags: &["--connect-timeout", "1"],
            through_relay: true,
            inject: |e| e.relay.unwrap().set(RelayMode::Stall),
            expect: &[
                "cannot connect to https://127.0.0.1:",
                "within 1 s (after 3 attempts)",
                "--connect-timeout",
            ],
            per_refresh: transient,
            counter: Counter::LogOnly,
            settle: Duration::ZERO,
        },
        Spec {
            name: "answer_slower_than_timeout",
            flags: &["--timeout", "1"],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().delay(Duration::from_secs(3)),
            expect: &["no complete answer from", "within 1 s (after 3 attempts)"],
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::from_secs(1),
        },
        Spec {
            name: "body_stalls_past_timeout",
            flags: &["--timeout", "1"],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().slow_body(Duration::from_secs(3)),
            expect: &["within 1 s (after 3 attempts)"],
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "connection_closed_without_answer",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().drop_next(MANY),
            expect: &["cannot reach https://127.0.0.1:", "(after 3 attempts)"],
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "connection_reset",
            flags: &[],
            through_relay: true,
            inject: |e| e.relay.unwrap().set(RelayMode::Reset),
            expect: &[
                "cannot reach https://127.0.0.1:",
                "reset",
                "(after 3 attempts)",
            ],
            per_refresh: transient,
            counter: Counter::Relay,
            settle: Duration::ZERO,
        },
        Spec {
            name: "malformed_json",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().malformed_next(MANY),
            expect: &["CreateSession answered 201 but its body is not the expected JSON"],
            per_refresh: 1,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "empty_credential_set",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().empty_next(MANY),
            expect: &["CreateSession answered 201 but its credentialSet is empty"],
            per_refresh: 1,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "201_missing_fields",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().incomplete_next(MANY),
            expect: &["CreateSession answered 201 but its credentials lack sessionToken"],
            per_refresh: 1,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
        Spec {
            name: "clock_skew_refusal",
            flags: &[],
            through_relay: false,
            inject: |e| e.setup.emulator.faults().skew(600),
            expect: &[
                "CreateSession refused (403 AccessDeniedException): Signature expired",
                "synchronise it (NTP)",
            ],
            // A wrong clock heals once NTP catches up: retried like any transient error.
            per_refresh: transient,
            counter: Counter::Emulator,
            settle: Duration::ZERO,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Running every scenario at once.

/// What a scenario measured, and which of its checks failed.
struct Report {
    figures: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn new(name: &str) -> Self {
        Self {
            figures: vec![format!("fault scenario {name}:")],
            failures: Vec::new(),
        }
    }

    fn figure(&mut self, text: String) {
        self.figures.push(format!("  {text}"));
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }
}

type Outcome = Result<Report, String>;
type Job = Box<dyn FnOnce() -> Report + Send>;

struct Lab {
    waiting: Mutex<HashMap<&'static str, mpsc::Receiver<Outcome>>>,
}

static LAB: OnceLock<Lab> = OnceLock::new();

impl Lab {
    fn start() -> Self {
        let mut waiting = HashMap::new();
        let mut jobs: Vec<(&'static str, Job)> = specs()
            .into_iter()
            .map(|spec| {
                let name = spec.name;
                let job: Job = Box::new(move || run(&spec));
                (name, job)
            })
            .collect();
        jobs.push(("dns_failure", Box::new(dns_failure)));
        for (name, job) in jobs {
            let (tx, rx) = mpsc::channel();
            waiting.insert(name, rx);
            std::thread::Builder::new()
                .name(format!("fault-{name}"))
                .spawn(move || {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                        .map_err(|panic| {
                            panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "the scenario panicked".into())
                        });
                    let _ = tx.send(outcome);
                })
                .unwrap();
        }
        Self {
            waiting: Mutex::new(waiting),
        }
    }
}

/// Runs (once, with all the others) the scenario `name`, prints its figures and checks it.
fn check(name: &'static str) {
    let lab = LAB.get_or_init(Lab::start);
    let rx = lab
        .waiting
        .lock()
        .unwrap()
        .remove(name)
        .expect("each scenario is checked by one test");
    let report = match rx.recv() {
        Ok(Ok(report)) => report,
        Ok(Err(panic)) => panic!("scenario {name} failed: {panic}"),
        Err(_) => panic!("scenario {name} ended without an outcome"),
    };
    for line in &report.figures {
        eprintln!("{line}");
    }
    assert!(
        report.failures.is_empty(),
        "scenario {name}:\n- {}",
        report.failures.join("\n- ")
    );
}

// ---------------------------------------------------------------------------------------
// One scenario against a running daemon.

/// `serve` for the PKI's leaf against `endpoint`, killed if the test process dies first.
fn serve_command(setup: &Setup, endpoint: &str, flags: &[&str]) -> Command {
    let mut cmd = helper();
    cmd.args(["serve", "--trust-anchor-arn", TA, "--profile-arn", PROFILE])
        .args(["--role-arn", ROLE, "--endpoint", endpoint])
        .arg("--certificate")
        .arg(setup.path("leaf.pem"))
        .arg("--private-key")
        .arg(setup.path("leaf.key"))
        .env("AWS_CA_BUNDLE", &setup.ca_bundle)
        .args(flags);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// The credentials IMDS serves now: status, and the key, secret, token and expiry on a 200.
struct Served {
    status: u16,
    key: String,
    secret: String,
    token: String,
    expiration: String,
}

fn served(d: &Daemon) -> Served {
    let reply = imds_credentials(d.port, ROLE_NAME);
    if reply.status != 200 {
        return Served {
            status: reply.status,
            key: String::new(),
            secret: String::new(),
            token: String::new(),
            expiration: reply.body,
        };
    }
    let json = reply.json();
    let field = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
    Served {
        status: 200,
        key: field("AccessKeyId"),
        secret: field("SecretAccessKey"),
        token: field("Token"),
        expiration: field("Expiration"),
    }
}

/// CPU time (user + system) of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the `)`.
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// A log line of the daemon, with its timestamp.
struct LogLine {
    at: OffsetDateTime,
    text: String,
}

fn log_lines(log: &str) -> Vec<LogLine> {
    log.lines()
        .filter_map(|line| {
            let (stamp, _) = line.split_once(' ')?;
            let at = OffsetDateTime::parse(stamp, &Rfc3339).ok()?;
            Some(LogLine {
                at,
                text: line.to_owned(),
            })
        })
        .collect()
}

/// The attempts a failure line reports ("after N attempts"; one when it says none).
fn attempts_in(line: &str) -> u32 {
    line.split("(after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The largest number of attempts the design allows while failing for `window`: refreshes
/// start at least `min_backoff` apart (every wait after a failure is at least that long),
/// and each makes at most `per_refresh` attempts. Two more refreshes' worth allow for the
/// polling that measures the window.
fn attempt_bound(window: Duration, per_refresh: u32) -> u64 {
    let min_backoff = Schedule::default().min_backoff;
    let refreshes = (window.as_secs_f64() / min_backoff.as_secs_f64()).floor() as u64 + 2;
    refreshes * u64::from(per_refresh)
}

fn per_minute(count: u64, window: Duration) -> f64 {
    count as f64 * 60.0 / window.as_secs_f64().max(0.001)
}

fn run(spec: &Spec) -> Report {
    let mut report = Report::new(spec.name);
    let setup = Setup::short_sessions(KeyType::P256, false, LIFETIME);
    let relay = spec
        .through_relay
        .then(|| Relay::start(setup.emulator.addr()));
    let endpoint = match &relay {
        Some(r) => format!("https://{}", r.addr),
        None => setup.emulator.url(),
    };
    let d = Daemon::start(serve_command(&setup, &endpoint, spec.flags));
    let env = Env {
        setup: &setup,
        relay: relay.as_ref(),
    };
    let first = served(&d);
    assert_eq!(first.status, 200, "no credentials at start");
    // Times count from the issue of the first session (its expiry less the lifetime: the
    // emulator's clock has whole seconds, so up to a second early), not from when this
    // thread got to look, so that a busy machine does not eat into the margins.
    let expiry = OffsetDateTime::parse(&first.expiration, &Rfc3339).expect("an RFC 3339 expiry");
    let left = Duration::try_from(expiry - OffsetDateTime::now_utc()).unwrap_or_default();
    let started = (Instant::now() + left)
        .checked_sub(Duration::from_secs(LIFETIME.into()))
        .unwrap();
    let logged_before = setup.emulator.received().len();
    let relayed_before = relay
        .as_ref()
        .map_or(0, |r| r.resets.load(Ordering::SeqCst));
    let cpu_before = cpu_time(d.pid());
    (spec.inject)(&env);
    let injected = Instant::now();

    // Watch: the endpoint every POLL_EVERY, the emulator's log every TICK (to time each
    // attempt), until a new session is served after the clear.
    let mut arrivals: Vec<Instant> = Vec::new();
    let mut seen = logged_before;
    let mut polls = 0u32;
    let mut last_poll = Instant::now() - POLL_EVERY;
    let mut cleared: Option<Instant> = None;
    let mut second: Option<Served> = None;
    let mut served_wrong = Vec::new();
    while second.is_none() {
        let now = Instant::now();
        let received = setup.emulator.received();
        for _ in seen..received.len() {
            arrivals.push(now);
        }
        seen = received.len();
        if cleared.is_none() && now - started >= CLEAR_AFTER {
            setup.emulator.faults().clear();
            if let Some(r) = &relay {
                r.set(RelayMode::Forward);
            }
            cleared = Some(Instant::now());
        }
        if let Some(at) = cleared
            && now - at > RECOVER_WITHIN
        {
            break;
        }
        if now - last_poll >= POLL_EVERY {
            last_poll = now;
            polls += 1;
            let s = served(&d);
            if s.status != 200 || (s.key != first.key && cleared.is_none()) {
                served_wrong.push(format!(
                    "at +{:.1} s: {} {} {}",
                    (now - started).as_secs_f64(),
                    s.status,
                    s.key,
                    s.expiration
                ));
            } else if s.key != first.key {
                second = Some(s);
            } else if s.expiration != first.expiration {
                served_wrong.push(format!("the expiry changed to {}", s.expiration));
            }
        }
        std::thread::sleep(TICK);
    }
    let recovered = Instant::now();
    let cpu = cpu_time(d.pid()).saturating_sub(cpu_before);
    std::thread::sleep(spec.settle);
    let received = setup.emulator.received();
    let after_fault = &received[logged_before..];
    let resets = relay
        .as_ref()
        .map_or(0, |r| r.resets.load(Ordering::SeqCst) - relayed_before);

    // The log: one line per failed refresh, each naming the error; no other warning.
    let log = d.log();
    let lines = log_lines(&log);
    let failures: Vec<&LogLine> = lines
        .iter()
        .filter(|l| l.text.contains("refresh failed"))
        .collect();
    let others: Vec<&LogLine> = lines
        .iter()
        .filter(|l| {
            (l.text.contains(" WARN ") || l.text.contains(" ERROR "))
                && !l.text.contains("refresh failed")
        })
        .collect();
    let logged_attempts: u32 = failures.iter().map(|l| attempts_in(&l.text)).sum();
    let gaps: Vec<Duration> = failures
        .windows(2)
        .map(|w| Duration::try_from(w[1].at - w[0].at).unwrap_or_default())
        .collect();
    let min_gap = gaps.iter().min().copied();
    // When failing began: the first attempt seen outside, or (when none can be seen) the
    // first failure line, which comes after its attempts and so shortens the window.
    let first_attempt = match spec.counter {
        Counter::Emulator => arrivals.first().copied(),
        Counter::Relay => relay.as_ref().and_then(|r| *r.first_reset.lock().unwrap()),
        Counter::LogOnly => failures.first().and_then(|first| {
            let ago = Duration::try_from(OffsetDateTime::now_utc() - first.at).ok()?;
            Some(Instant::now() - ago)
        }),
    };
    let window = first_attempt.map_or(Duration::ZERO, |t| recovered.saturating_duration_since(t));
    let external = match spec.counter {
        Counter::Emulator => after_fault.len() as u64,
        Counter::Relay => resets as u64 + 1,
        Counter::LogOnly => u64::from(logged_attempts) + 1,
    };
    let bound = attempt_bound(window, spec.per_refresh);

    report.figure(format!(
        "times from the first session's issue: fault injected at +{:.1} s, cleared at +{:.1} s; first failed attempt at +{:.1} s; new session served {:.2} s after the clear",
        injected.saturating_duration_since(started).as_secs_f64(),
        cleared.map_or(0.0, |c| c.saturating_duration_since(started).as_secs_f64()),
        first_attempt.map_or(0.0, |t| (t.saturating_duration_since(started)).as_secs_f64()),
        cleared.map_or(0.0, |c| recovered.saturating_duration_since(c).as_secs_f64()),
    ));
    report.figure(format!(
        "failed refreshes (log lines): {}; attempts they report: {} ({} per refresh expected); min gap between failed refreshes: {}",
        failures.len(),
        logged_attempts,
        spec.per_refresh,
        min_gap.map_or("n/a".into(), |g| format!("{:.2} s", g.as_secs_f64())),
    ));
    report.figure(format!(
        "attempts counted by the {} (fault to recovery, the successful one included): {} in {:.1} s of failing = {:.0}/min; design bound {} = {:.0}/min",
        match spec.counter {
            Counter::Emulator => "emulator",
            Counter::Relay => "relay",
            Counter::LogOnly => "daemon's own log (the kernel drops the connects)",
        },
        external,
        window.as_secs_f64(),
        per_minute(external, window),
        bound,
        per_minute(bound, window),
    ));
    report.figure(format!(
        "endpoint polls: {polls}, every one 200 with the first credentials until the new ones; daemon CPU while failing: {} ms",
        cpu.as_millis()
    ));
    if let Some(line) = failures.first() {
        report.figure(format!("log: {}", line.text));
    }

    report.check(served_wrong.is_empty(), || {
        format!("the endpoint did not serve the last good credentials: {served_wrong:?}")
    });
    report.check(second.is_some(), || {
        format!(
            "no new session within {RECOVER_WITHIN:?} of the clear; log:\n{log}\nemulator: {:?}",
            after_fault.iter().map(|r| r.status).collect::<Vec<_>>()
        )
    });
    report.check(failures.len() >= 2, || {
        format!(
            "the fault should span at least two failed refreshes, saw {}:\n{log}",
            failures.len()
        )
    });
    for line in &failures {
        for part in spec.expect {
            report.check(line.text.contains(part), || {
                format!("the failure line does not say {part:?}: {}", line.text)
            });
        }
        report.check(
            line.text.contains(" WARN ")
                && line.text.contains(&format!("role={ROLE_NAME}"))
                && line
                    .text
                    .contains("keeping the last good credentials while they last"),
            || format!("not the expected failure line: {}", line.text),
        );
        report.check(attempts_in(&line.text) == spec.per_refresh, || {
            format!(
                "{} attempts per failed refresh expected: {}",
                spec.per_refresh, line.text
            )
        });
    }
    report.check(others.is_empty(), || {
        format!(
            "other warnings or errors in the log: {:?}",
            others.iter().map(|l| &l.text).collect::<Vec<_>>()
        )
    });
    let mut secrets = vec![
        first.secret.as_str(),
        first.token.as_str(),
        INCOMPLETE_SECRET_ACCESS_KEY,
    ];
    if let Some(s) = &second {
        secrets.extend([s.secret.as_str(), s.token.as_str()]);
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        report.check(!log.contains(secret), || {
            "the log holds a secret access key or session token".into()
        });
    }
    // The attempts seen outside match the daemon's account: those of the failed refreshes,
    // then the successful refresh (whose first attempts may still have failed).
    let logged = u64::from(logged_attempts);
    report.check(
        external > logged && external <= logged + u64::from(spec.per_refresh),
        || {
            format!(
                "attempts seen outside ({external}) do not match the log ({logged} in failed refreshes, then the successful one)"
            )
        },
    );
    report.check(external <= bound, || {
        format!(
            "{external} attempts in {:.1} s exceed the design bound {bound}",
            window.as_secs_f64()
        )
    });
    report.check(
        min_gap.is_none_or(|g| g + SLACK >= Schedule::default().min_backoff),
        || format!("failed refreshes closer than the minimum backoff: {min_gap:?}"),
    );
    report.check(cpu < window / 10 + Duration::from_millis(500), || {
        format!(
            "the daemon used {} ms of CPU in {:.1} s of failing",
            cpu.as_millis(),
            window.as_secs_f64()
        )
    });
    report.check(
        after_fault
            .iter()
            .any(|r| r.status == 201 && r.fault.is_none()),
        || "the emulator issued no new session after the fault".into(),
    );

    if spec.name == "http_429_retry_after" {
        // Within a refresh, attempts wait for Retry-After; only the waits between refreshes
        // (at least the minimum backoff) may be shorter.
        let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
        let retry_after = Duration::from_secs(RETRY_AFTER.into());
        let short = gaps.iter().filter(|g| **g + SLACK < retry_after).count();
        report.figure(format!(
            "gaps between attempts: {} of {} shorter than Retry-After ({RETRY_AFTER} s), shortest {:.2} s",
            short,
            gaps.len(),
            gaps.iter().min().map_or(0.0, |g| g.as_secs_f64())
        ));
        report.check(short <= failures.len(), || {
            format!(
                "{short} gaps shorter than Retry-After, but only {} waits between refreshes",
                failures.len()
            )
        });
        report.check(
            gaps.iter()
                .all(|g| *g + SLACK >= Schedule::default().min_backoff),
            || format!("attempts closer than the minimum backoff: {gaps:?}"),
        );
    }
    if spec.name == "clock_skew_refusal" {
        skew_at_start(&setup, &mut report);
    }
    report
}

/// A clock already off when the daemon starts: what it does with the refusal of its first
/// CreateSession. Either way, the refusal must be named, with what to do about it.
fn skew_at_start(setup: &Setup, report: &mut Report) {
    setup.emulator.faults().skew(600);
    let mut child = serve_command(setup, &setup.emulator.url(), &["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut exited = None;
    while exited.is_none() && Instant::now() < deadline {
        exited = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    setup.emulator.faults().clear();
    let lines = reader.join().unwrap();
    let named = lines
        .iter()
        .filter(|l| l.contains("Signature expired") && l.contains("synchronise it (NTP)"))
        .count();
    report.figure(format!(
        "started with the clock already 600 s off: {}; lines naming the skew: {named}; last line: {}",
        match exited {
            Some(status) => format!("the daemon stops at once ({status})"),
            None => "the daemon keeps retrying".into(),
        },
        lines.last().map_or("", String::as_str)
    ));
    report.check(named >= 1, || {
        format!("the refusal at start is not named: {lines:?}")
    });
    if let Some(status) = exited {
        report.check(!status.success(), || {
            format!("a daemon that gives up must fail: {status}")
        });
    }
}

// ---------------------------------------------------------------------------------------
// DNS failure: a daemon whose endpoint does not resolve.

const DNS_WATCH: Duration = Duration::from_secs(20);

fn dns_failure() -> Report {
    let mut report = Report::new("dns_failure");
    let setup = Setup::new(KeyType::P256, false);
    let mut cmd = serve_command(
        &setup,
        "https://no-such-host.invalid",
        &["--port", "0", "--connect-timeout", "2"],
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let started = Instant::now();
    let cpu_before = cpu_time(child.id());
    let stderr = child.stderr.take().unwrap();
    let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    std::thread::sleep(DNS_WATCH);
    let exited = child.try_wait().unwrap();
    let cpu = cpu_time(child.id()).saturating_sub(cpu_before);
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.lock().unwrap().clone();
    let failures: Vec<&(Instant, String)> = lines
        .iter()
        .filter(|(_, l)| l.contains("first fetch failed; retrying"))
        .collect();
    let attempts: u32 = failures.iter().map(|(_, l)| attempts_in(l)).sum();
    let gaps: Vec<Duration> = failures.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let bound = attempt_bound(DNS_WATCH, 3);
    report.figure(format!(
        "watched {:.0} s: still running: {}; failed first fetches (log lines): {}; attempts they report: {} = {:.0}/min; design bound {} = {:.0}/min; min gap {}; daemon CPU {} ms",
        (Instant::now() - started).as_secs_f64(),
        exited.is_none(),
        failures.len(),
        attempts,
        per_minute(attempts.into(), DNS_WATCH),
        bound,
        per_minute(bound, DNS_WATCH),
        gaps.iter()
            .min()
            .map_or("n/a".into(), |g| format!("{:.2} s", g.as_secs_f64())),
        cpu.as_millis()
    ));
    if let Some((_, line)) = failures.first() {
        report.figure(format!("log: {line}"));
    }
    let all: Vec<&String> = lines.iter().map(|(_, l)| l).collect();
    report.check(exited.is_none(), || {
        format!("the daemon exited on a DNS failure ({exited:?}): {all:?}")
    });
    report.check(failures.len() >= 2, || {
        format!("the first fetch should be retried: {all:?}")
    });
    for (_, line) in &failures {
        report.check(
            // "cannot reach ...: failed to lookup address information", or, where the
            // resolver does not answer, the connect timeout.
            line.contains("https://no-such-host.invalid/sessions")
                && line.contains("(after 3 attempts)")
                && line.contains(" WARN "),
            || format!("not a clear DNS failure line: {line}"),
        );
    }
    report.check(
        lines.iter().all(|(_, l)| {
            !(l.contains(" WARN ") || l.contains(" ERROR ")) || l.contains("first fetch failed")
        }),
        || format!("other warnings or errors in the log: {all:?}"),
    );
    report.check(u64::from(attempts) <= bound, || {
        format!("{attempts} attempts exceed the design bound {bound}")
    });
    report.check(
        gaps.iter()
            .all(|g| *g + SLACK >= Schedule::default().min_backoff),
        || format!("first fetches closer than the minimum backoff: {gaps:?}"),
    );
    report.check(cpu < DNS_WATCH / 10, || {
        format!("the daemon used {} ms of CPU", cpu.as_millis())
    });
    report
}

// ---------------------------------------------------------------------------------------
// A TCP relay in front of the emulator: forwards, resets every new connection (RST), or
// stops accepting with its accept queue full, so that connection attempts get no answer.

struct Relay {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Connections accepted and reset.
    resets: Arc<AtomicUsize>,
    /// When the first of them was.
    first_reset: Arc<Mutex<Option<Instant>>>,
    /// Both ends of every forwarded connection, to cut them when the mode changes.
    live: Arc<Mutex<Vec<TcpStream>>>,
    /// Connections that fill the accept queue while stalled.
    fillers: Mutex<Vec<TcpStream>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Self {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&local.into()).unwrap();
        // The smallest accept queue: one connection fills it.
        socket.listen(0).unwrap();
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).unwrap();
        let relay = Self {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(AtomicU8::new(RelayMode::Forward as u8)),
            resets: Arc::default(),
            first_reset: Arc::default(),
            live: Arc::default(),
            fillers: Mutex::default(),
            stop: Arc::default(),
        };
        let (mode, resets, first_reset, live, stop) = (
            relay.mode.clone(),
            relay.resets.clone(),
            relay.first_reset.clone(),
            relay.live.clone(),
            relay.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if mode.load(Ordering::SeqCst) == RelayMode::Stall as u8 {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                if mode.load(Ordering::SeqCst) == RelayMode::Reset as u8 {
                    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
                    resets.fetch_add(1, Ordering::SeqCst);
                    first_reset.lock().unwrap().get_or_insert_with(Instant::now);
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                {
                    let mut live = live.lock().unwrap();
                    live.extend(client.try_clone().ok());
                    live.extend(server.try_clone().ok());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        relay
    }

    /// Switches mode, cutting every forwarded connection (so that the daemon's pooled one
    /// goes too).
    fn set(&self, mode: RelayMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let mut fillers = self.fillers.lock().unwrap();
        fillers.clear();
        if mode == RelayMode::Stall {
            // Fill the accept queue: once a connect times out, the kernel drops new SYNs.
            for _ in 0..8 {
                match TcpStream::connect_timeout(&self.addr, Duration::from_millis(300)) {
                    Ok(s) => fillers.push(s),
                    Err(_) => break,
                }
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}
