//! Fleet safety of `serve` against a misbehaving or busy service: credentials answered
//! already expired or expiring within a second are failed refreshes (few calls, one WARN
//! each, no READY=1), and 50 roles started against a service that enforces the
//! CreateSession quota (`emulate --max-tps 10`) all become ready without being throttled, and
//! a forward step of the wall clock (libfaketime) is followed by a refresh within seconds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::{Captured, helper, require_tool};
use crate::credential_process::Setup;
use crate::serve_config::role_toml;
use crate::serve_daemon::{Daemon, imds_credentials};
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

#[test]
fn fifty_roles_start_within_the_quota() {
    let setup = Setup::with_config(KeyType::P256, false, |c| c.max_tps = Some(10));
    let bind = crate::credential_process::free_port();
    let mut text = format!("bind = \"127.0.0.1:{bind}\"\n");
    for i in 0..50 {
        let token = setup.path(&format!("role{i}.token"));
        text.push_str(&role_toml(
            &setup,
            &format!("role{i}"),
            &format!("ecs_token_file = \"{}\"", token.display()),
        ));
    }
    let config = setup.path("serve.toml");
    std::fs::write(&config, text).unwrap();
    let mut cmd = helper();
    cmd.args(["serve", "--config"]).arg(&config);
    let d = Daemon::start(cmd);
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

    // 40 minutes later by the wall clock: past the refresh at 45 to 50 % of the hour. The
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
