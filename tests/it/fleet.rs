//! Fleet safety of `serve` against a misbehaving or busy service: credentials answered
//! already expired or expiring within a second are failed refreshes (few calls, one WARN
//! each, no READY=1), and 50 roles started against a service that enforces the
//! CreateSession quota (`emulate --max-tps 10`) all become ready without being throttled.

use std::collections::BTreeMap;
use std::time::Duration;

use rolesanywhere_helper::pki::KeyType;

use crate::common::{Captured, helper};
use crate::credential_process::Setup;
use crate::serve_config::role_toml;
use crate::serve_daemon::Daemon;
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
