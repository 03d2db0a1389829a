//! Fleet safety of `serve` against a misbehaving or busy service: credentials answered
//! already expired or expiring within a second are failed refreshes (few calls, one WARN
//! each, no READY=1), and 50 roles started against a service that enforces the
//! CreateSession quota (`emulate --max-tps 10`) all become ready without being throttled, and
//! a forward step of the wall clock (libfaketime) is followed by a refresh within seconds;
//! a host with a fleet slot calls only at its own slots of the fleet's wall-clock grid.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::{Captured, helper, require_tool};
use crate::credential_process::Setup;
use crate::serve_config::role_toml;
use crate::serve_daemon::{Daemon, http, imds_credentials};
use crate::systemd::Notifications;

/// How long the daemon runs against a service that answers unusable credentials.
const WATCHED: Duration = Duration::from_secs(45);

/// Runs `serve` for [`WATCHED`] against an emulator whose 3600-second credentials expire
/// `skew` seconds off, and checks what a fleet needs of it.
fn unusable_answers_are_failed_refreshes(skew: i64) {
    let setup = Setup::with_config(KeyType::P256, false, |c| c.expiry_skew_seconds = skew);
    let notifications = Notifications::listen(setup.dir.path());
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.args(["--port", "0"])
        .env("NOTIFY_SOCKET", &notifications.path);
    let ended = Captured::spawn(&mut cmd).wait_within(WATCHED);
    assert!(ended.status.is_none(), "serve kept running and retrying");
    let log = String::from_utf8_lossy(&ended.stderr);

    let calls = setup.emulator.received().len();
    // 15 s, then 15..30 s, then 30..60 s: at most four calls in 45 s, never a loop.
    assert!(
        (2..=4).contains(&calls),
        "{calls} CreateSession calls in {WATCHED:?}:\n{log}"
    );
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), calls, "one WARN per failed refresh:\n{log}");
    for line in &warnings {
        assert!(
            line.contains("first fetch failed")
                && line.contains("at least 5 s of validity are needed to serve them"),
            "{line}"
        );
    }
    assert!(!log.contains("credentials refreshed"), "{log}");
    let seen = notifications.all();
    assert!(
        seen.iter().all(|(_, m)| !m.lines().any(|l| l == "READY=1")),
        "READY=1 without servable credentials: {seen:?}"
    );
}

#[test]
fn expired_answers_are_failed_refreshes() {
    unusable_answers_are_failed_refreshes(-7200);
}

#[test]
fn one_second_answers_are_failed_refreshes() {
    unusable_answers_are_failed_refreshes(-3599);
}

/// `serve` of `roles` roles (each with an ECS endpoint) and the top-level lines `top`, ready.
fn serve_roles(setup: &Setup, roles: usize, top: &str) -> Daemon {
    let bind = crate::credential_process::free_port();
    let mut text = format!("bind = \"127.0.0.1:{bind}\"\n{top}\n");
    for i in 0..roles {
        let token = setup.path(&format!("role{i}.token"));
        text.push_str(&role_toml(
            setup,
            &format!("role{i}"),
            &format!("ecs_token_file = \"{}\"", token.display()),
        ));
    }
    let config = setup.path("serve.toml");
    std::fs::write(&config, text).unwrap();
    let mut cmd = helper();
    cmd.args(["serve", "--config"]).arg(&config);
    Daemon::start(cmd)
}

#[test]
fn fifty_roles_start_within_the_quota() {
    let setup = Setup::with_config(KeyType::P256, false, |c| c.max_tps = Some(10));
    let d = serve_roles(&setup, 50, "");
    assert!(
        d.log().contains("serving credentials for 50 role(s)"),
        "{}",
        d.log()
    );

    let received = setup.emulator.received();
    let accepted = received.iter().filter(|r| r.status == 201).count();
    let throttled = received.iter().filter(|r| r.status == 429).count();
    assert_eq!(accepted, 50, "one session per role");
    assert!(throttled <= 3, "{throttled} throttled calls");
    // Every call, throttled or not, by the second it arrived in.
    let mut per_second = BTreeMap::new();
    for r in &received {
        *per_second.entry(r.received_at.clone()).or_insert(0) += 1;
    }
    assert!(
        per_second.values().all(|&n| n <= 10),
        "a second above the quota: {per_second:?}"
    );
}

#[test]
fn a_host_with_a_fleet_slot_calls_only_at_its_own_slots() {
    // Host 3 of 4 at one call a second: a 4-second cycle whose slot starts 3 s in, counted
    // from the Unix epoch. Three roles take three successive slots.
    let setup = Setup::new(KeyType::P256, false);
    let d = serve_roles(&setup, 3, "fleet_slot = \"3/4\"\nfleet_rate = 1");
    let received = setup.emulator.received();
    assert_eq!(received.len(), 3, "one call per role:\n{}", d.log());
    let mut seconds: Vec<i64> = received
        .iter()
        .map(|r| {
            time::OffsetDateTime::parse(
                &r.received_at,
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
            .unix_timestamp()
        })
        .collect();
    seconds.sort_unstable();
    for s in &seconds {
        assert_eq!(
            s.rem_euclid(4),
            3,
            "a call outside the host's slot: {seconds:?}"
        );
    }
    assert_eq!(seconds[1] - seconds[0], 4, "successive slots: {seconds:?}");
    assert_eq!(seconds[2] - seconds[1], 4, "successive slots: {seconds:?}");
}

/// libfaketime's library for multi-threaded programs, from Debian's `faketime` package.
fn faketime_library() -> PathBuf {
    require_tool("faketime");
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| PathBuf::from(dir).join("faketime/libfaketimeMT.so.1"))
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!("libfaketimeMT.so.1 is not installed; run tests/run.sh, which installs faketime")
    })
}

#[test]
fn a_forward_wall_clock_jump_is_followed_by_a_refresh_within_seconds() {
    let library = faketime_library();
    let setup = Setup::new(KeyType::P256, false);
    // The daemon's wall clock is real time plus the offset in this file, read at every
    // call; its monotonic clock is left alone, as after a suspend or an NTP step.
    let offset = setup.path("faketime-offset");
    std::fs::write(&offset, "+0\n").unwrap();
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.env("LD_PRELOAD", &library)
        .env("FAKETIME_TIMESTAMP_FILE", &offset)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let d = Daemon::start(cmd);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        setup.emulator.received().len(),
        1,
        "one-hour credentials: no refresh yet"
    );

    // 40 minutes later by the wall clock: past the refresh at 50 to 55 % of the hour. The
    // service's clock moves with the host's (both are right; the daemon's timers lag).
    setup.emulator.faults().skew(2400);
    setup.emulator.faults().expiry_skew(2400);
    std::fs::write(&offset, "+40m\n").unwrap();
    let jumped = Instant::now();
    while setup.emulator.received().len() < 2 && jumped.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let received = setup.emulator.received();
    assert_eq!(received.len(), 2, "a refresh after the jump:\n{}", d.log());
    assert_eq!(received[1].status, 201, "{:?}", received[1]);
    assert!(
        jumped.elapsed() <= Duration::from_secs(8),
        "refreshed {:?} after the jump",
        jumped.elapsed()
    );
    let reply = imds_credentials(d.port, "onprem-app");
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A plain-HTTP emulator of `region` trusting the dev PKI's root, issuing 60-second sessions
/// for [`crate::credential_process::ROLE`] under `profile`, on `port`.
fn regional_emulator(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
    region: &str,
    profile: &str,
    port: u16,
) -> rolesanywhere_helper::emulator::Emulator {
    use rolesanywhere_helper::emulator::{Emulator, EmulatorConfig, ProfileConfig, TlsMode};
    let root = std::fs::read_to_string(setup.path("root-ca.pem")).unwrap();
    let mut config = EmulatorConfig::single_anchor(&root, region).unwrap();
    config.tls = TlsMode::Http;
    config.port = port;
    config.min_duration_seconds = 1;
    config.profiles = vec![ProfileConfig {
        arn: profile.into(),
        role_arns: vec![crate::credential_process::ROLE.into()],
        duration_seconds: 60,
        accept_role_session_name: false,
        enabled: true,
    }];
    runtime.block_on(Emulator::start(config)).unwrap()
}

/// Whether `emulator` has issued a session within `limit`.
fn issues_within(emulator: &rolesanywhere_helper::emulator::Emulator, limit: Duration) -> bool {
    let since = Instant::now();
    while since.elapsed() < limit {
        if emulator.received().iter().any(|r| r.status == 201) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_failover_role_switches_regions_and_back_without_a_failed_request() {
    use crate::credential_process::{PROFILE, ROLE, TA, free_port};
    const WEST_TA: &str = "arn:aws:rolesanywhere:us-west-2:111122223333:trust-anchor/west";
    const WEST_PROFILE: &str = "arn:aws:rolesanywhere:us-west-2:111122223333:profile/west";
    let setup = Setup::new(KeyType::P256, false);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (east_port, west_port, imds_port) = (free_port(), free_port(), free_port());
    let ops_port = free_port();
    let east = regional_emulator(&runtime, &setup, "us-east-1", PROFILE, east_port);
    let west = regional_emulator(&runtime, &setup, "us-west-2", WEST_PROFILE, west_port);
    let config = setup.path("failover.toml");
    std::fs::write(
        &config,
        format!(
            "ops = \"127.0.0.1:{ops_port}\"\n[[role]]\nname = \"onprem-app\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ntrust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"{ROLE}\"\nendpoint = \"{}\"\nimds = \"127.0.0.1:{imds_port}\"\nfailover_after = 2\nfailover = [{{ trust_anchor_arn = \"{WEST_TA}\", profile_arn = \"{WEST_PROFILE}\", endpoint = \"{}\" }}]\n",
            setup.path("leaf.pem").display(),
            setup.path("leaf.key").display(),
            east.url(),
            west.url(),
        ),
    )
    .unwrap();
    let mut cmd = helper();
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("AWS_MAX_ATTEMPTS", "1");
    let d = Daemon::start(cmd);
    // /metrics says which region issued the credentials served.
    let serving = |region: &str| {
        let line = format!(
            "rolesanywhere_credentials_region{{role=\"onprem-app\",region=\"{region}\"}} 1"
        );
        let since = Instant::now();
        while since.elapsed() < Duration::from_secs(5) {
            if http(("127.0.0.1", ops_port), "GET", "/metrics", &[])
                .body
                .contains(&line)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(serving("us-east-1"));

    // An SDK asking all the time.
    let watched = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                statuses.push(imds_credentials(imds_port, "onprem-app").status);
                std::thread::sleep(Duration::from_millis(200));
            }
            statuses
        })
    };

    // The primary region goes away: the next refreshes fail twice, then us-west-2 serves.
    runtime.block_on(east.shutdown());
    assert!(
        issues_within(&west, Duration::from_secs(60)),
        "no failover to us-west-2:\n{}",
        d.log()
    );
    assert!(serving("us-west-2"), "{}", d.log());
    // It comes back on the same address: the next refresh returns to it.
    let east = regional_emulator(&runtime, &setup, "us-east-1", PROFILE, east_port);
    assert!(
        issues_within(&east, Duration::from_secs(60)),
        "no return to us-east-1:\n{}",
        d.log()
    );
    assert!(serving("us-east-1"), "{}", d.log());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = poller.join().unwrap();
    // It asked all along (every 200 ms; at least one request per 400 ms of the switch and the
    // return, however soon the refreshes fell due: the first comes at 10 to 55 % of the
    // session, so the whole takes from about 10 s to a minute).
    let watched = watched.elapsed();
    assert!(
        statuses.len() as f64 >= watched.as_secs_f64() / 0.4 && statuses.len() >= 20,
        "{} requests in {watched:?}",
        statuses.len()
    );
    assert!(
        statuses.iter().all(|&s| s == 200),
        "failed IMDS GETs: {statuses:?}"
    );
    let log = d.log();
    assert!(log.contains("switching to the next region"), "{log}");
    assert!(log.contains("the primary region answers again"), "{log}");
    assert!(log.contains("region=us-west-2"), "{log}");
}
