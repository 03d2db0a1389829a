//! `serve` at start: a key file that is not there yet (a mount or a secret that comes
//! late) is waited for, retried with backoff and reported by `/healthz`, and used within
//! one backoff step once it appears; a certificate that can never work stops the daemon
//! at once with one line naming it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use rolesanywhere_helper::pki::KeyType;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::openssl;
use crate::credential_process::{Setup, free_port, wait_for_port};
use crate::serve_daemon::{Daemon, http, imds_credentials, imds_token};

const ROLE_NAME: &str = "onprem-app";
/// The refresher's longest wait between two attempts (`Schedule::default`).
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// What the attempt after the file appeared may take beyond its due time: reading the
/// files, signing, one CreateSession with the emulator, and the test's own request, on a
/// machine shared with other builds.
const SLACK: Duration = Duration::from_secs(3);
/// When the key file is put in place, counted from the daemon's start: after a few
/// failed attempts, early enough to keep the test short.
const KEY_APPEARS_AFTER: Duration = Duration::from_millis(2500);
/// How far a logged attempt may be from the rename that it raced: an attempt under way
/// at the rename may still fail, and one due just before it may start just after.
const RACE: Duration = Duration::from_millis(500);
/// The message of each failed first fetch.
const RETRY_LINE: &str = "first fetch failed; retrying";

/// A retry the daemon announced: when it logged it, and when the next attempt is due.
#[derive(Debug)]
struct Retry {
    logged: OffsetDateTime,
    due: OffsetDateTime,
    line: String,
}

/// The `first fetch failed` lines of a text log (`TIMESTAMP  WARN message ... retry_in_ms=N`).
fn retries(log: &str) -> Vec<Retry> {
    log.lines()
        .filter(|l| l.contains(RETRY_LINE))
        .map(|line| {
            let stamp = line.split_whitespace().next().unwrap_or_default();
            let logged = OffsetDateTime::parse(stamp, &Rfc3339)
                .unwrap_or_else(|e| panic!("no timestamp ({e}): {line}"));
            let ms: i64 = line
                .split("retry_in_ms=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no retry_in_ms: {line}"));
            Retry {
                logged,
                due: logged + time::Duration::milliseconds(ms),
                line: line.to_owned(),
            }
        })
        .collect()
}

/// Copies `from` to `to` as deployment tools do: written beside it with mode 0600, then
/// renamed into place, so the daemon never sees a partial key. Returns when it appeared.
fn put_in_place(from: &Path, to: &Path) -> OffsetDateTime {
    use std::os::unix::fs::PermissionsExt as _;
    let temp = to.with_extension("tmp");
    std::fs::copy(from, &temp).unwrap();
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&temp, to).unwrap();
    OffsetDateTime::from(SystemTime::now())
}

#[test]
fn a_key_file_that_appears_late_is_used_within_one_backoff_step() {
    let setup = Setup::new(KeyType::P256, false);
    let key = setup.path("late.key");
    let (port, ops_port) = (free_port(), free_port());
    let mut cmd = setup.endpoint_subcommand("serve");
    cmd.arg("--certificate")
        .arg(setup.path("leaf.pem"))
        .arg("--private-key")
        .arg(&key)
        .args(["--port", &port.to_string()])
        .args(["--ops-listen", &format!("127.0.0.1:{ops_port}")]);
    let started = Instant::now();
    let healthz = || http(("127.0.0.1", ops_port), "GET", "/healthz", &[]);

    // The daemon becomes ready only once it has credentials, so the key is put in place
    // from a second thread while this one waits for that.
    let (daemon, appeared) = std::thread::scope(|scope| {
        let placer = scope.spawn(|| {
            wait_for_port(ops_port);
            // Until the key appears, health is 503 and names the missing file.
            let key_path = key.display().to_string();
            let mut reported = false;
            while started.elapsed() < KEY_APPEARS_AFTER {
                let reply = healthz();
                assert_eq!(reply.status, 503, "healthy without a key: {reply:?}");
                reported |= reply.body.contains(&key_path) && reply.body.contains("does not exist");
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(reported, "/healthz never named {key_path}: {:?}", healthz());
            put_in_place(&setup.path("leaf.key"), &key)
        });
        let daemon = Daemon::start_exact(cmd);
        let appeared = placer.join().expect("the key is put in place");
        (daemon, appeared)
    });
    let d = daemon.unwrap_or_else(|log| panic!("serve did not start:\n{log}"));
    let reply = imds_credentials(port, ROLE_NAME);
    let served = OffsetDateTime::from(SystemTime::now());
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(healthz().status, 200);

    let log = d.log();
    let retries = retries(&log);
    let before: Vec<&Retry> = retries.iter().filter(|r| r.logged < appeared).collect();
    assert!(
        before.len() >= 2,
        "the missing key was retried {} time(s) in {KEY_APPEARS_AFTER:?}:\n{log}",
        before.len()
    );
    for retry in &retries {
        assert!(
            retry.line.contains(&key.display().to_string())
                && retry.line.contains("does not exist"),
            "{}",
            retry.line
        );
        assert!(
            retry.logged < appeared + RACE,
            "an attempt failed after the key appeared at {appeared}:\n{log}"
        );
    }
    // The last retry announced is the one the key was there for.
    let pending = retries.last().expect("retries");
    assert!(
        pending.due + RACE >= appeared,
        "the last announced retry was due before the key appeared: {pending:?}"
    );
    assert!(
        served <= pending.due + SLACK,
        "credentials came at {served}, the retry was due at {}:\n{log}",
        pending.due
    );
    assert!(
        served - appeared <= MAX_BACKOFF + SLACK,
        "credentials came {} after the key appeared",
        served - appeared
    );
    assert_eq!(
        log.matches("credentials refreshed").count(),
        1,
        "one successful fetch:\n{log}"
    );
}

/// A leaf certificate for the PKI's leaf key, signed by its root, valid for `days` (a
/// negative number: already expired), as `NAME.pem`.
fn issue(setup: &Setup, name: &str, days: &str) -> PathBuf {
    let dir = setup.dir.path();
    let csr = format!("{name}.csr");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &csr,
        ],
    );
    crate::common::issue_from_root(
        dir,
        name,
        days,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
}

/// A self-signed leaf (not a CA) for the PKI's leaf key: well formed, but the trust
/// anchor does not know its issuer.
fn stranger(setup: &Setup) -> PathBuf {
    openssl(
        setup.dir.path(),
        &[
            "req",
            "-x509",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=stranger",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-out",
            "stranger.pem",
        ],
    );
    setup.path("stranger.pem")
}

/// Runs `cmd` until it exits or `within` passes (then kills it): its exit status, if it
/// exited, and its stderr.
fn exit_within(mut cmd: Command, within: Duration) -> (Option<ExitStatus>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn a_refused_certificate_stops_serve_at_once_with_one_line() {
    let setup = Setup::new(KeyType::P256, false);
    let (leaf, leaf_key) = (setup.path("leaf.pem"), setup.path("leaf.key"));
    let (root, root_key) = (setup.path("root-ca.pem"), setup.path("root-ca.key"));
    let expired = issue(&setup, "expired", "-1");
    let stranger = stranger(&setup);
    let shown = |p: &Path| p.display().to_string();
    // (case, certificate, key, what the line says, whether the service is asked). The
    // line names the file at fault; a refusal by the service names the role instead.
    let cases: [(&str, &Path, &Path, Vec<String>, bool); 4] = [
        (
            "an expired leaf",
            &expired,
            &leaf_key,
            vec![shown(&expired), "expired".into()],
            false,
        ),
        (
            "the CA certificate as leaf",
            &root,
            &root_key,
            vec![shown(&root), "CA".into()],
            false,
        ),
        (
            "a key that is not the certificate's",
            &leaf,
            &root_key,
            vec![shown(&leaf), shown(&root_key), "does not match".into()],
            false,
        ),
        (
            "a certificate the trust anchor did not issue",
            &stranger,
            &leaf_key,
            vec![
                format!("role {ROLE_NAME}"),
                "403".into(),
                "trust anchor".into(),
            ],
            true,
        ),
    ];
    for (case, cert, key, says, asks) in cases {
        setup.emulator.clear_received();
        let mut cmd = setup.endpoint_subcommand("serve");
        cmd.arg("--certificate")
            .arg(cert)
            .arg("--private-key")
            .arg(key)
            .args(["--port", "0"]);
        let started = Instant::now();
        let (status, stderr) = exit_within(cmd, Duration::from_secs(10));
        let status = status.unwrap_or_else(|| panic!("{case}: still running after 10 s: {stderr}"));
        assert_eq!(status.code(), Some(1), "{case}: {status}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{case}: exited only after {:?}",
            started.elapsed()
        );
        assert!(
            stderr.ends_with('\n') && stderr.matches('\n').count() == 1,
            "{case}: stderr is not one line: {stderr:?}"
        );
        for part in &says {
            assert!(
                stderr.contains(part.as_str()),
                "{case}: no {part:?} in {stderr}"
            );
        }
        assert_eq!(
            !setup.emulator.received().is_empty(),
            asks,
            "{case}: the service was asked: {:?}",
            setup.emulator.received()
        );
    }
}

/// Clients that connect before the first credentials wait in the listen queue for a few
/// seconds (time enough for a first CreateSession, so socket activation answers its first
/// client) and are then answered with a JSON reason, never left hanging: IMDS as EC2
/// answers an instance with no role yet (404), ECS with 503.
#[test]
fn clients_before_the_first_credentials_get_a_json_answer_after_a_bounded_wait() {
    let setup = Setup::new(KeyType::P256, false);
    let key = setup.path("never.key");
    let port = free_port();
    let token_file = setup.path("ecs.token");
    let mut child = setup
        .endpoint_subcommand("serve")
        .arg("--certificate")
        .arg(setup.path("leaf.pem"))
        .arg("--private-key")
        .arg(&key)
        .args(["--port", &port.to_string()])
        .arg("--ecs-token-file")
        .arg(&token_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let started = Instant::now();
    wait_for_port(port);
    let token = imds_token(port);
    let answered = started.elapsed();
    let listing = http(
        ("127.0.0.1", port),
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    let ecs_token = std::fs::read_to_string(&token_file).expect("the token file is written");
    let ecs = http(
        ("127.0.0.1", port),
        "GET",
        &format!("/ecs/{ROLE_NAME}"),
        &[("Authorization", &ecs_token)],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        answered >= Duration::from_secs(3) && answered <= Duration::from_secs(5) + SLACK,
        "the first client was answered after {answered:?}"
    );
    assert_eq!(listing.status, 404, "{listing:?}");
    let body = listing.json();
    assert_eq!(body["Code"], "CredentialsNotYetAvailable", "{body}");
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains(ROLE_NAME) && message.contains(&key.display().to_string()),
        "{message}"
    );
    assert_eq!(ecs.status, 503, "{ecs:?}");
    assert_eq!(ecs.json()["Code"], "CredentialsUnavailable");
}
