//! `serve` beside the official helper's: the IMDSv2 exchange SDKs make (token PUT, role
//! list, role document with its fields and their types) and every status the two give to
//! the same requests, then how each starts and refreshes. Differences are the README's
//! "Differences from the official helper's `serve`" and its Host rule.

use std::process::Command;
use std::time::{Duration, Instant};

use rolesanywhere_helper::emulator::ProfileConfig;
use rolesanywhere_helper::pki::KeyType;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Peer, SIDES, Side, Stage, rows, run_bounded, show};
use crate::credential_process::{PROFILE, ROLE, free_port};
use crate::serve_daemon::{Daemon, Response, http};

const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "X-aws-ec2-metadata-token";
const LIST: &str = "/latest/meta-data/iam/security-credentials";
/// A role with a path: both serve its last component.
const ROLE_WITH_PATH: &str = "arn:aws:iam::111122223333:role/team/onprem-app";

/// What a successful answer must hold.
#[derive(Clone, Copy)]
enum Body {
    /// Not looked at (a refusal).
    Any,
    /// A token, with the request's TTL echoed.
    Token(&'static str),
    /// The role name, bare.
    RoleName,
    /// The EC2 credentials document.
    Credentials,
}

struct Row {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    /// `{token}` is a valid token of the program under test.
    headers: &'static [(&'static str, &'static str)],
    official: u16,
    ours: u16,
    body: Body,
}

#[rustfmt::skip]
fn exchange() -> Vec<Row> {
    let row = |name, method, path, headers, official, ours, body| Row { name, method, path, headers, official, ours, body };
    let auth: &'static [(&str, &str)] = &[(TOKEN, "{token}")];
    vec![
        row("token", "PUT", "/latest/api/token", &[(TTL, "21600")], 200, 200, Body::Token("21600")),
        row("token, TTL 1", "PUT", "/latest/api/token", &[(TTL, "1")], 200, 200, Body::Token("1")),
        // README "serve" differences: the TTL header is required on the token PUT (EC2
        // answers 400 without it; the official helper defaults to 21600).
        row("token without TTL", "PUT", "/latest/api/token", &[], 200, 400, Body::Any),
        // A sign is no part of a whole number of seconds here; Go's Atoi takes it.
        row("token, TTL +60", "PUT", "/latest/api/token", &[(TTL, "+60")], 200, 400, Body::Any),
        row("token, TTL 0", "PUT", "/latest/api/token", &[(TTL, "0")], 400, 400, Body::Any),
        row("token, TTL 21601", "PUT", "/latest/api/token", &[(TTL, "21601")], 400, 400, Body::Any),
        row("token, TTL -1", "PUT", "/latest/api/token", &[(TTL, "-1")], 400, 400, Body::Any),
        row("token, TTL abc", "PUT", "/latest/api/token", &[(TTL, "abc")], 400, 400, Body::Any),
        // README "serve" differences: X-Forwarded-For is refused with 403 on every path
        // (the official helper: 400 on the token PUT only).
        row("token with X-Forwarded-For", "PUT", "/latest/api/token", &[(TTL, "60"), ("X-Forwarded-For", "10.0.0.1")], 400, 403, Body::Any),
        row("role list with X-Forwarded-For", "GET", LIST, &[(TOKEN, "{token}"), ("X-Forwarded-For", "10.0.0.1")], 200, 403, Body::Any),
        // README "serve": a Host that is neither an IP address nor localhost is refused.
        row("token for another Host", "PUT", "/latest/api/token", &[(TTL, "60"), ("Host", "attacker.example")], 200, 403, Body::Any),
        row("token path, GET", "GET", "/latest/api/token", &[(TTL, "60")], 405, 405, Body::Any),
        row("token path, POST", "POST", "/latest/api/token", &[(TTL, "60")], 405, 405, Body::Any),
        row("role list without token", "GET", "/latest/meta-data/iam/security-credentials/", &[], 401, 401, Body::Any),
        row("role list, unknown token", "GET", "/latest/meta-data/iam/security-credentials/", &[(TOKEN, "not-a-token")], 401, 401, Body::Any),
        row("role list", "GET", LIST, auth, 200, 200, Body::RoleName),
        row("role list/", "GET", "/latest/meta-data/iam/security-credentials/", auth, 200, 200, Body::RoleName),
        row("role list, PUT", "PUT", "/latest/meta-data/iam/security-credentials/", auth, 405, 405, Body::Any),
        row("credentials", "GET", "/latest/meta-data/iam/security-credentials/onprem-app", auth, 200, 200, Body::Credentials),
        row("credentials/", "GET", "/latest/meta-data/iam/security-credentials/onprem-app/", auth, 200, 200, Body::Credentials),
        row("credentials without token", "GET", "/latest/meta-data/iam/security-credentials/onprem-app", &[], 401, 401, Body::Any),
        // README "serve" differences: a role path that is not its role is 404 (the
        // official helper answers with its role name).
        row("credentials of another role", "GET", "/latest/meta-data/iam/security-credentials/other", auth, 200, 404, Body::Any),
        row("meta-data root", "GET", "/latest/meta-data/", auth, 404, 404, Body::Any),
        row("extended credentials", "GET", "/latest/meta-data/iam/security-credentials-extended/onprem-app", auth, 404, 404, Body::Any),
        row("unknown path", "GET", "/nothing", auth, 404, 404, Body::Any),
    ]
}

/// `serve` with the stage's ARNs, endpoint, identity and `extra` flags.
fn serve_command(peer: &Peer, stage: &Stage, side: Side, extra: &[&str]) -> Command {
    let mut cmd = peer.command(side);
    cmd.args(stage.args("serve", "{pem} {chain}")).args(extra);
    cmd
}

/// Starts `side`'s `serve` on a free port and waits until it answers.
fn start(peer: &Peer, stage: &Stage, side: Side, extra: &[&str]) -> Daemon {
    let mut cmd = serve_command(peer, stage, side, extra);
    cmd.args(["--port", "0"]);
    let started = match side {
        // The official helper listens (and says so) only after its first CreateSession.
        Side::Official => Daemon::start_ready(cmd, |l| l.contains("Local server started on port")),
        Side::Ours => Daemon::start_exact(cmd),
    };
    started.unwrap_or_else(|log| panic!("{side:?} serve did not start:\n{log}"))
}

fn token(port: u16, ttl: &str) -> String {
    let reply = http(
        ("127.0.0.1", port),
        "PUT",
        "/latest/api/token",
        &[(TTL, ttl)],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

#[test]
fn imds_exchange_matches_the_official_helper() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    let mut documents = Vec::new();
    for side in SIDES {
        let daemon = start(&peer, &stage, side, &["--role-arn", ROLE_WITH_PATH]);
        let port = daemon.port;
        let short = token(port, "1");
        let since = Instant::now();
        let valid = token(port, "21600");
        let failed = rows(
            exchange(),
            |r| r.name,
            |row| {
                let headers: Vec<(&str, String)> = row
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.replace("{token}", &valid)))
                    .collect();
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let reply = http(("127.0.0.1", port), row.method, row.path, &headers);
                let status = match side {
                    Side::Official => row.official,
                    Side::Ours => row.ours,
                };
                assert_eq!(reply.status, status, "{}: {side:?}: {reply:?}", row.name);
                check_body(row.body, &reply, side);
            },
        );
        assert!(failed.is_empty(), "{side:?}: rows that failed: {failed:?}");
        // An expired token is refused by both.
        std::thread::sleep(Duration::from_millis(2100).saturating_sub(since.elapsed()));
        let late = http(("127.0.0.1", port), "GET", LIST, &[(TOKEN, &short)]);
        assert_eq!(late.status, 401, "{side:?}: expired token: {late:?}");
        let path = format!("{LIST}/onprem-app");
        documents.push(http(("127.0.0.1", port), "GET", &path, &[(TOKEN, &valid)]).json());
    }
    // The same fields with the same types (the values are each one's own credentials).
    let shape = |doc: &Value| -> Vec<(String, &'static str)> {
        let mut fields: Vec<_> = doc
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), kind(v)))
            .collect();
        fields.sort();
        fields
    };
    assert_eq!(shape(&documents[0]), shape(&documents[1]));
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_body(body: Body, reply: &Response, side: Side) {
    match body {
        Body::Any => {}
        Body::Token(ttl) => {
            assert!(
                reply.body.len() >= 32 && !reply.body.contains(char::is_whitespace),
                "{reply:?}"
            );
            assert_eq!(
                reply.header("x-aws-ec2-metadata-token-ttl-seconds"),
                Some(ttl)
            );
        }
        Body::RoleName => {
            assert_eq!(reply.body, "onprem-app", "{side:?}: bare name, no newline");
            let left: u32 = reply
                .header("x-aws-ec2-metadata-token-ttl-seconds")
                .unwrap()
                .parse()
                .unwrap();
            assert!((21000..=21600).contains(&left), "{left}");
        }
        Body::Credentials => {
            let doc = reply.json();
            for key in ["AccessKeyId", "SecretAccessKey", "Token"] {
                let value = doc[key].as_str().unwrap_or_default();
                assert!(!value.is_empty(), "{side:?}: {key}: {doc}");
            }
            assert!(doc["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
            assert_eq!(doc["Code"], "Success");
            assert_eq!(doc["Type"], "AWS-HMAC");
            let at =
                |key: &str| OffsetDateTime::parse(doc[key].as_str().unwrap(), &Rfc3339).unwrap();
            let now = OffsetDateTime::now_utc();
            assert!(
                (at("Expiration") - now - time::Duration::hours(1)).abs()
                    < time::Duration::minutes(2)
            );
            assert!((now - at("LastUpdated")).abs() < time::Duration::minutes(2));
        }
    }
}

#[test]
fn a_refused_first_request_never_becomes_empty_credentials() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    stage.setup.emulator.faults().fail_next(1000, 403);
    // official-helper.md §9.1: the official helper ignores the refusal and serves empty
    // credentials with Code "Success".
    let official = start(&peer, &stage, Side::Official, &[]);
    let t = token(official.port, "60");
    let path = format!("{LIST}/onprem-app");
    let doc = http(("127.0.0.1", official.port), "GET", &path, &[(TOKEN, &t)]);
    assert_eq!(doc.status, 200, "{doc:?}");
    assert_eq!(
        (
            doc.json()["Code"].as_str(),
            doc.json()["AccessKeyId"].as_str()
        ),
        (Some("Success"), Some(""))
    );
    drop(official);
    // README "serve" differences: ours stops at start with one line on a permanent error.
    let out = run_bounded(serve_command(&peer, &stage, Side::Ours, &["--port", "0"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("403") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn credentials_are_refreshed_in_the_background_not_in_the_request() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::with_config(KeyType::P256, true, |config| {
        config.min_duration_seconds = 1;
        config.profiles = vec![ProfileConfig {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 10,
            accept_role_session_name: false,
            enabled: true,
        }];
    });
    let requests = || stage.setup.emulator.received().len();
    for side in SIDES {
        stage.clear();
        let daemon = start(&peer, &stage, side, &[]);
        let started = requests();
        for _ in 0..3 {
            let t = token(daemon.port, "60");
            let doc = http(
                ("127.0.0.1", daemon.port),
                "GET",
                &format!("{LIST}/onprem-app"),
                &[(TOKEN, &t)],
            );
            assert_eq!(doc.status, 200, "{side:?}: {doc:?}");
        }
        let after_gets = requests() - started;
        // Past the first refresh of ours (at 10 to 55 % of the 10 s lifetime).
        std::thread::sleep(Duration::from_millis(6500));
        let while_idle = requests() - started - after_gets;
        // official-helper.md §4.5: with under 10 minutes left, each request of the official
        // helper waits for a CreateSession, and nothing happens between requests. README
        // "serve" differences: ours refreshes in the background at about half the
        // lifetime, and no request waits for CreateSession.
        match side {
            Side::Official => assert_eq!((after_gets, while_idle), (3, 0), "official"),
            Side::Ours => assert!(
                after_gets == 0 && while_idle >= 1,
                "ours: {after_gets}, {while_idle}"
            ),
        }
    }
}

/// A client that comes before the first credentials is answered with them after a short
/// wait, as by the official helper (which listens only once it has them); ours waits in the
/// listen queue for at most a few seconds (README "`serve`", Refresh).
#[test]
fn a_client_that_comes_early_gets_the_first_credentials() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    stage
        .setup
        .emulator
        .faults()
        .delay(Duration::from_millis(700));
    for side in SIDES {
        let port = free_port();
        let mut cmd = serve_command(&peer, &stage, side, &["--port", &port.to_string()]);
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let begun = Instant::now();
        let t = loop {
            if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let reply = crate::serve_daemon::exchange(
                    stream,
                    "PUT",
                    "/latest/api/token",
                    &[(TTL, "60")],
                );
                assert_eq!(reply.status, 200, "{side:?}: {reply:?}");
                break reply.body;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(20),
                "{side:?}: no listener"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let doc = http(
            ("127.0.0.1", port),
            "GET",
            &format!("{LIST}/onprem-app"),
            &[(TOKEN, &t)],
        );
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(doc.status, 200, "{side:?}: {doc:?}");
        assert!(
            doc.json()["AccessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIA"),
            "{side:?}: {doc:?}"
        );
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "{side:?}: answered in {:?}",
            begun.elapsed()
        );
    }
}
