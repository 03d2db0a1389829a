//! `serve` under systemd's protocols, without a booted systemd: the units verify, socket
//! activation through `systemd-socket-activate` (TCP and Unix), readiness, watchdog and
//! stopping notifications on a test-owned `NOTIFY_SOCKET`, SIGHUP reload with zero failed
//! requests, SIGTERM letting requests under way finish, the ops endpoints and JSON logs.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::{self, bin, require_tool, run};
use crate::credential_process::{Setup, free_port};
use crate::serve_daemon::{
    Daemon, http, http_unix, imds_credentials, imds_token, read_response, request_head,
};
use crate::serve_refresh::renew_leaf;

const ROLE_NAME: &str = "onprem-app";

/// Kills the wrapped process when dropped (a failed assertion must not leave it running).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill() has no memory effects.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let analyze = require_tool("systemd-analyze");
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let dir = tempfile::tempdir().unwrap();
    // The units name the installed binary; verify checks that it exists.
    let copy = |from: &str, to: &str| {
        let text = std::fs::read_to_string(units.join(from)).unwrap();
        let text = text.replace(
            "/usr/local/bin/rolesanywhere-helper",
            &bin().display().to_string(),
        );
        std::fs::write(dir.path().join(to), text).unwrap();
    };
    copy(
        "rolesanywhere-helper.service",
        "rolesanywhere-helper.service",
    );
    copy("rolesanywhere-helper.socket", "rolesanywhere-helper.socket");
    copy(
        "rolesanywhere-helper@.service",
        "rolesanywhere-helper@.service",
    );
    copy(
        "rolesanywhere-helper@.service",
        "rolesanywhere-helper@billing.service",
    );
    for unit in [
        "rolesanywhere-helper.service",
        "rolesanywhere-helper.socket",
        "rolesanywhere-helper@billing.service",
    ] {
        let out = run(Command::new(&analyze)
            .arg("verify")
            .arg(dir.path().join(unit))
            .current_dir(dir.path()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{unit}: {stderr}"
        );
    }
    // The example config parses with every key the units rely on.
    let config = std::fs::read_to_string(units.join("config.toml")).unwrap();
    assert!(config.contains("/run/credentials/rolesanywhere-helper.service/private-key"));
}

/// `systemd-socket-activate` listening on `listen` with `--fdname=imds`, about to run
/// `serve` with the test's flags on the first connection.
fn socket_activated(setup: &Setup, listen: &str) -> Reaped {
    let serve = setup.leaf_subcommand("serve");
    let mut cmd = Command::new(require_tool("systemd-socket-activate"));
    cmd.args(["-l", listen, "--fdname=imds"])
        .arg(format!(
            "--setenv=AWS_CA_BUNDLE={}",
            setup.ca_bundle.display()
        ))
        .arg(serve.get_program())
        .args(serve.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = Reaped(cmd.spawn().unwrap());
    // It listens before the daemon exists; wait until it does.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listening = || match listen.strip_prefix('/') {
        Some(_) => Path::new(listen).exists(),
        None => std::net::TcpStream::connect(listen).is_ok(),
    };
    while !listening() {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn socket_activation_over_tcp() {
    let setup = Setup::new(KeyType::P256, false);
    let port = free_port();
    let _activator = socket_activated(&setup, &format!("127.0.0.1:{port}"));
    // The probe connection above started the daemon; this one waits in the queue of the
    // passed socket until the first credentials are there, then gets an answer.
    let token = imds_token(port);
    let reply = http(
        ("127.0.0.1", port),
        "GET",
        &format!("/latest/meta-data/iam/security-credentials/{ROLE_NAME}"),
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(setup.emulator.issued_sessions(), 1);
}

#[test]
fn socket_activation_over_a_unix_socket() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("imds.sock");
    let _activator = socket_activated(&setup, &socket.display().to_string());
    // The first connection starts the daemon and is answered once it is ready.
    let token = http_unix(
        &socket,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
    );
    assert_eq!(token.status, 200, "{token:?}");
    let reply = http_unix(
        &socket,
        "GET",
        &format!("/latest/meta-data/iam/security-credentials/{ROLE_NAME}"),
        &[("X-aws-ec2-metadata-token", &token.body)],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.json()["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
}

/// Datagrams received on a test-owned `NOTIFY_SOCKET`, with when they arrived.
pub struct Notifications {
    pub path: PathBuf,
    received: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Notifications {
    pub fn listen(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        });
        Self { path, received }
    }

    pub fn all(&self) -> Vec<(Instant, String)> {
        self.received.lock().unwrap().clone()
    }
}

#[test]
fn notify_socket_sees_ready_after_credentials_then_watchdog_then_stopping() {
    let setup = Setup::new(KeyType::P256, false);
    // The first CreateSession takes 1.5 s: READY=1 must wait for it.
    setup.emulator.faults().delay(Duration::from_millis(1500));
    let notifications = Notifications::listen(setup.dir.path());
    let started = Instant::now();
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.env("NOTIFY_SOCKET", &notifications.path)
        .env("WATCHDOG_USEC", "400000");
    let d = Daemon::start(cmd);
    setup.emulator.faults().clear();
    std::thread::sleep(Duration::from_millis(1500));

    let seen = notifications.all();
    let ready = seen
        .iter()
        .position(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {seen:?}"));
    let (ready_at, ready_message) = &seen[ready];
    assert!(
        ready_at.duration_since(started) >= Duration::from_millis(1500),
        "READY=1 came before the first credentials"
    );
    assert!(
        ready_message.contains("STATUS=serving 1 role(s): onprem-app until "),
        "{ready_message}"
    );
    assert!(
        seen[..ready].iter().all(|(_, m)| !m.contains("WATCHDOG=1")),
        "no watchdog ping before readiness: {seen:?}"
    );
    // 0.4 s watchdog: a ping every 0.2 s.
    let pings = seen[ready..]
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(pings >= 4, "{pings} pings in 1.5 s: {seen:?}");

    signal(d.pid(), libc::SIGTERM);
    let pid = d.pid();
    let status = d.wait(Duration::from_secs(10)).expect("exits on SIGTERM");
    assert!(status.success(), "{status}");
    let last = notifications.all();
    assert!(
        last.iter().any(|(_, m)| m == "STOPPING=1"),
        "no STOPPING=1 from {pid}: {last:?}"
    );
}

#[test]
fn sighup_swaps_to_a_renewed_certificate_with_zero_failed_requests() {
    let setup = Setup::new(KeyType::P256, false);
    let d = Daemon::start(setup.leaf_subcommand("serve"));
    let port = d.port;
    let token = imds_token(port);
    let client = std::thread::spawn(move || {
        let mut keys = Vec::new();
        let mut failures = Vec::new();
        for _ in 0..1000 {
            let reply = http(
                ("127.0.0.1", port),
                "GET",
                &format!("/latest/meta-data/iam/security-credentials/{ROLE_NAME}"),
                &[("X-aws-ec2-metadata-token", &token)],
            );
            if reply.status == 200 {
                let key = reply.json()["AccessKeyId"].as_str().unwrap().to_owned();
                if keys.last() != Some(&key) {
                    keys.push(key);
                }
            } else {
                failures.push(reply);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (keys, failures)
    });
    std::thread::sleep(Duration::from_millis(300));
    renew_leaf(&setup, "424242");
    signal(d.pid(), libc::SIGHUP);
    let (keys, failures) = client.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(
        keys.len(),
        2,
        "the key changed once, at the reload: {keys:?}"
    );
    assert!(
        setup
            .emulator
            .received()
            .iter()
            .any(|r| r.serial.as_deref() == Some("424242") && r.status == 201),
        "the renewed certificate was used"
    );
    assert!(d.log().contains("role reloaded"), "{}", d.log());
}

#[test]
fn sigterm_lets_requests_under_way_finish() {
    let setup = Setup::new(KeyType::P256, false);
    let mut d = Some(Daemon::start(setup.leaf_subcommand("serve")));
    let port = d.as_ref().unwrap().port;
    let token = imds_token(port);
    let head = request_head(
        "GET",
        &format!("/latest/meta-data/iam/security-credentials/{ROLE_NAME}"),
        &[("X-aws-ec2-metadata-token", &token)],
    );
    let (first, rest) = head.split_at(head.len() / 2);
    // Twenty requests half sent when SIGTERM arrives.
    let mut streams: Vec<std::net::TcpStream> = (0..20)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(first.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let daemon = d.take().unwrap();
    let signalled = Instant::now();
    signal(daemon.pid(), libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    // New connections are no longer accepted.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after SIGTERM"
    );
    for stream in &mut streams {
        stream.write_all(rest.as_bytes()).unwrap();
    }
    for stream in streams {
        let reply = read_response(stream);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let status = daemon
        .wait(Duration::from_secs(5))
        .expect("exits within 5 s");
    assert!(status.success(), "{status}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
}

#[test]
fn ops_endpoint_reports_health_and_prometheus_metrics() {
    let setup = Setup::new(KeyType::P256, false);
    // The first attempts fail, so health is 503 until the emulator recovers.
    setup.emulator.faults().fail_next(1000, 503);
    let ops_port = free_port();
    let mut serve = setup.leaf_subcommand("serve");
    serve
        .args([
            "--port",
            "0",
            "--ops-listen",
            &format!("127.0.0.1:{ops_port}"),
        ])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Reaped(serve.spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let healthz = || http(("127.0.0.1", ops_port), "GET", "/healthz", &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", ops_port)).is_err() {
        assert!(Instant::now() < deadline, "the ops listener never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let starting = healthz();
    assert_eq!(starting.status, 503, "{starting:?}");
    assert!(
        starting
            .body
            .contains("onprem-app: credentials are not available yet"),
        "{starting:?}"
    );
    // Once a whole fetch (three attempts) has failed, health names the error.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = healthz();
        assert_eq!(reply.status, 503);
        if reply.body.contains("503") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed fetch reported: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    setup.emulator.faults().clear();
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthz().status != 200 {
        assert!(Instant::now() < deadline, "never healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    let port = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let port = log.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("Local server started on port: ")
                    .and_then(|p| p.parse::<u16>().ok())
            });
            if let Some(port) = port {
                break port;
            }
            assert!(Instant::now() < deadline, "no port line");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(imds_credentials(port, ROLE_NAME).status, 200);
    assert_eq!(http(("127.0.0.1", port), "GET", "/nope", &[]).status, 404);
    assert_eq!(
        http(("127.0.0.1", ops_port), "POST", "/metrics", &[]).status,
        405
    );

    let metrics = http(("127.0.0.1", ops_port), "GET", "/metrics", &[]);
    assert_eq!(metrics.status, 200);
    // Parsed by the reference Python client's parser.
    let mut py = Command::new(common::python());
    py.arg("-c").arg(
        "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\n\
             out = {}\nfor family in text_string_to_metric_families(sys.stdin.read()):\n    \
             for s in family.samples:\n        \
             key = s.name + ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n        \
             out[key] = s.value\nprint(json.dumps(out))",
    );
    let out = common::run_with_input(&mut py, metrics.body.as_bytes());
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        metrics.body
    );
    let samples: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let value = |key: &str| {
        samples[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key} in {samples}"))
    };
    assert!(value("rolesanywhere_refreshes_totaloutcome=success,role=onprem-app") >= 1.0);
    assert!(value("rolesanywhere_refreshes_totaloutcome=transient_error,role=onprem-app") >= 1.0);
    assert!(value("rolesanywhere_credentials_expiry_secondsrole=onprem-app") > 3000.0);
    assert!(value("rolesanywhere_certificate_expiry_secondsrole=onprem-app") > 86400.0);
    assert!(value("rolesanywhere_imds_tokens") >= 1.0);
    assert_eq!(
        value("rolesanywhere_http_requests_totalroute=imds_token,status=200"),
        1.0
    );
    assert_eq!(
        value("rolesanywhere_http_requests_totalroute=imds_credentials,status=200"),
        1.0
    );
    assert_eq!(
        value("rolesanywhere_http_requests_totalroute=other,status=404"),
        1.0
    );

    // --log-format json: every log line is a JSON object; the refresh line has its fields.
    let lines = log.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let refreshed = events
        .iter()
        .find(|e| e["message"] == "credentials refreshed")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(refreshed["role"], "onprem-app");
    assert!(refreshed["serial"].as_str().is_some());
}

#[test]
fn certificate_expiry_is_warned_about_within_the_configured_days() {
    let setup = Setup::new(KeyType::P256, false);
    // The dev PKI's leaf is valid for 365 days.
    let quiet = Daemon::start(setup.leaf_subcommand("serve"));
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.args(["--cert-expiry-warning-days", "400"]);
    let warned = Daemon::start(cmd);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !warned.log().contains("the certificate expires soon") {
        assert!(Instant::now() < deadline, "{}", warned.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Valid for exactly 365 days: 365 whole days are left when the check falls in the
    // second the certificate was made, 364 after.
    let log = warned.log();
    assert!(
        log.contains("days_left=364") || log.contains("days_left=365"),
        "{log}"
    );
    assert!(!quiet.log().contains("expires soon"), "{}", quiet.log());
}

#[test]
fn the_key_password_comes_from_the_systemd_credentials_directory() {
    let setup = Setup::new(KeyType::P256, false);
    let encrypted_key = setup.encrypted_leaf_key("s3cret");
    let credentials = setup.path("credentials");
    std::fs::create_dir(&credentials).unwrap();
    std::fs::write(credentials.join("pkcs8-password"), "s3cret\n").unwrap();
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.arg("--private-key")
        .arg(&encrypted_key)
        .env("CREDENTIALS_DIRECTORY", &credentials);
    let d = Daemon::start(cmd);
    assert_eq!(imds_credentials(d.port, ROLE_NAME).status, 200);
    // Without it, the key cannot be opened.
    let out = run(setup
        .leaf_subcommand("serve")
        .arg("--private-key")
        .arg(&encrypted_key)
        .args(["--port", "0"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no password was given"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
