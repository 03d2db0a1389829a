//! `serve --daemon-socket` and `credential-process --daemon-socket`: many concurrent calls
//! answered from the daemon's memory with no CreateSession of their own, output shaped
//! byte for byte as a direct call's, the allow list checked on the kernel's word about the
//! peer, one line and exit 1 when no daemon is there (or the direct call with
//! --fallback-direct), slow and silent clients cut off by the HTTP listeners' limits,
//! per-role sockets from the config file, and socket activation.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::{self, bin, helper, require_tool, run};
use crate::credential_process::{Setup, credentials, failure, free_port};
use crate::serve_config::role_toml;
use crate::serve_daemon::{Daemon, http};

/// A directory for sockets that other users may traverse (the test's temporary directory
/// is private to root).
fn socket_dir(setup: &Setup) -> PathBuf {
    let dir = setup.path("run");
    std::fs::create_dir(&dir).unwrap();
    for d in [setup.dir.path(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    dir
}

/// `serve` with the test identity and `--daemon-socket SOCKET`, plus `extra`; ready.
fn serve(setup: &Setup, socket: &Path, extra: &[&str]) -> Daemon {
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.arg("--daemon-socket").arg(socket).args(extra);
    Daemon::start(cmd)
}

/// `credential-process --daemon-socket SOCKET` plus `extra`.
fn client(socket: &Path, extra: &[&str]) -> Command {
    let mut cmd = helper();
    cmd.args(["credential-process", "--daemon-socket"])
        .arg(socket)
        .args(extra);
    cmd
}

/// The output with its secret values blanked and the digits of `Expiration` zeroed: two
/// outputs of the same shape (key order, quoting, date format, no newline) are equal.
fn shape(out: &Output) -> String {
    let json = credentials(out);
    let mut text = String::from_utf8(out.stdout.clone()).unwrap();
    for key in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        text = text.replace(json[key].as_str().unwrap(), key);
    }
    let expiration = json["Expiration"].as_str().unwrap();
    let zeroed: String = expiration
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    text.replace(expiration, &zeroed)
}

#[test]
fn two_hundred_concurrent_calls_make_no_create_session_and_match_a_direct_call() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("daemon.sock");
    let _daemon = serve(&setup, &socket, &[]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660, "the socket file is 0660 by default");
    let sessions = setup.emulator.issued_sessions();
    assert_eq!(sessions, 1, "the daemon's first refresh");

    let children: Vec<_> = (0..200)
        .map(|_| {
            client(&socket, &[])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        credentials(out);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout, outputs[0].stdout,
            "every call gets the same credentials"
        );
    }
    assert_eq!(
        setup.emulator.issued_sessions(),
        sessions,
        "no CreateSession beyond the daemon's own"
    );

    let direct = run(&mut setup.leaf_command());
    assert_eq!(shape(&direct), shape(&outputs[0]));
    assert_ne!(
        direct.stdout, outputs[0].stdout,
        "the direct call has its own session"
    );
}

#[test]
fn a_peer_off_the_allow_list_gets_one_line_and_its_uid_is_logged() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = socket_dir(&setup).join("daemon.sock");
    // Only `nobody` may ask; the socket file's group lets it connect.
    let ops = format!("127.0.0.1:{}", free_port());
    let daemon = serve(
        &setup,
        &socket,
        &[
            "--daemon-socket-allow-user",
            "nobody",
            "--daemon-socket-group",
            "65534",
            "--ops-listen",
            &ops,
        ],
    );
    // The tests run as root, which is not on the list.
    let refused = run(&mut client(&socket, &[]));
    let line = failure(&refused);
    assert!(
        line.contains("uid 0 is not allowed to use this socket"),
        "{line}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !daemon.log().contains("refused a peer") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = daemon.log();
    let logged = log
        .lines()
        .find(|l| l.contains("refused a peer"))
        .unwrap_or_else(|| panic!("no refusal logged: {log}"));
    assert!(logged.contains("uid=0"), "{logged}");
    assert!(!log.contains("ASIA"), "no credentials in the log");

    // `nobody` is allowed.
    let copy = setup.path("run/helper");
    std::fs::copy(bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut as_nobody = Command::new(require_tool("setpriv"));
    as_nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args(["credential-process", "--daemon-socket"])
        .arg(&socket)
        .env("AWS_CONFIG_FILE", "/dev/null");
    credentials(&run(&mut as_nobody));
    assert_eq!(setup.emulator.issued_sessions(), 1);

    // /metrics counts both, by outcome.
    let metrics = http(ops.as_str(), "GET", "/metrics", &[]).body;
    for outcome in ["refused\"} 1", "credentials\"} 1", "error\"} 0"] {
        assert!(
            metrics.contains(&format!(
                "rolesanywhere_daemon_socket_requests_total{{outcome=\"{outcome}\n"
            )),
            "{outcome}: {metrics}"
        );
    }
}

#[test]
fn a_group_on_the_allow_list_admits_its_members() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = socket_dir(&setup).join("daemon.sock");
    // Members of nogroup may ask; the socket file's group and mode (0660) let them in.
    let _daemon = serve(
        &setup,
        &socket,
        &[
            "--daemon-socket-allow-group",
            "nogroup",
            "--daemon-socket-group",
            "nogroup",
        ],
    );
    let copy = setup.path("run/helper");
    std::fs::copy(bin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A user (daemon, uid 1) whose supplementary group is allowed.
    let as_member = |groups: &str| {
        let mut cmd = Command::new(require_tool("setpriv"));
        cmd.args(["--reuid=1", "--regid=1", &format!("--groups={groups}")])
            .arg(&copy)
            .args(["credential-process", "--daemon-socket"])
            .arg(&socket)
            .env("AWS_CONFIG_FILE", "/dev/null");
        run(&mut cmd)
    };
    credentials(&as_member("65534"));
    // Without the group, the socket file's mode keeps it out.
    let line = failure(&as_member("2"));
    assert!(line.contains("no credential daemon at"), "{line}");
}

#[test]
fn a_world_writable_socket_mode_is_refused() {
    let setup = Setup::new(KeyType::P256, false);
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.args(["--port", "0", "--daemon-socket"])
        .arg(setup.path("d.sock"))
        .args(["--daemon-socket-mode", "0666"]);
    let out = run(&mut cmd);
    let line = failure(&out);
    assert!(
        line.contains("--daemon-socket-mode") && line.contains("0666 would let every user connect"),
        "{line}"
    );
    assert!(!setup.path("d.sock").exists());
}

#[test]
fn without_a_daemon_one_line_and_exit_1_or_the_direct_call() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("nobody-listens.sock");
    let line = failure(&run(&mut client(&socket, &[])));
    assert!(
        line.contains(&format!("no credential daemon at {}", socket.display())),
        "{line}"
    );
    // With --fallback-direct, the usual flags make the direct call.
    let mut fallback = setup.leaf_command();
    fallback
        .arg("--daemon-socket")
        .arg(&socket)
        .arg("--fallback-direct");
    let out = run(&mut fallback);
    credentials(&out);
    assert_eq!(setup.emulator.issued_sessions(), 1);
    // A socket file nobody listens on any more is "not there" too.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let line = failure(&run(&mut client(&socket, &[])));
    assert!(line.contains("no credential daemon at"), "{line}");
}

#[test]
fn silent_and_slow_clients_cannot_hold_the_daemon() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("daemon.sock");
    // Three connection slots: one waits in the IMDS listener's accept, and the two held
    // below take the rest, one client saying nothing, one sending a byte a second.
    let daemon = serve(&setup, &socket, &["--max-connections", "3"]);
    let mut silent = UnixStream::connect(&socket).unwrap();
    let slow = UnixStream::connect(&socket).unwrap();
    let dribble = std::thread::spawn(move || {
        let mut slow = slow;
        for _ in 0..30 {
            if slow.write_all(b"C").is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        false
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out =
        common::Captured::spawn(&mut client(&socket, &[])).wait_within(Duration::from_secs(20));
    let took = started.elapsed();
    assert_eq!(
        out.status.map(|s| s.code()),
        Some(Some(0)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(15),
        "the held slots were freed by the header timeout: {took:?}"
    );
    // The silent client was closed with nothing sent.
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(silent.read_to_end(&mut rest).unwrap(), 0);
    assert!(dribble.join().unwrap(), "the dribbling client was cut off");
    drop(daemon);
}

#[test]
fn config_file_sockets_for_every_role_and_for_one() {
    let setup = Setup::new(KeyType::P256, false);
    let all = setup.path("all.sock");
    let beta = setup.path("beta.sock");
    let config = setup.path("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon_socket]\npath = \"{}\"\nmode = 0o600\n\n{}{}",
            all.display(),
            role_toml(
                &setup,
                "alpha",
                &format!("imds = \"127.0.0.1:{}\"", free_port())
            ),
            role_toml(
                &setup,
                "beta",
                &format!(
                    "daemon_socket = {{ path = \"{}\", allow_users = [0] }}",
                    beta.display()
                )
            ),
        ),
    )
    .unwrap();
    let mut cmd = helper();
    cmd.args(["serve", "--config"]).arg(&config);
    let daemon = Daemon::start(cmd);
    assert!(
        daemon.log().contains(&format!(
            "Daemon socket: credential-process --daemon-socket {}",
            beta.display()
        )),
        "{}",
        daemon.log()
    );
    let mode = std::fs::metadata(&all).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let line = failure(&run(&mut client(&all, &[])));
    assert!(line.contains("serves 2 roles (alpha, beta)"), "{line}");
    let line = failure(&run(&mut client(&all, &["--role", "gamma"])));
    assert!(line.contains("no role \"gamma\""), "{line}");
    let alpha = run(&mut client(&all, &["--role", "alpha"]));
    let beta_from_all = run(&mut client(&all, &["--role", "beta"]));
    let beta_own = run(&mut client(&beta, &[]));
    assert_ne!(
        credentials(&alpha)["AccessKeyId"],
        credentials(&beta_own)["AccessKeyId"]
    );
    assert_eq!(beta_from_all.stdout, beta_own.stdout);
    let line = failure(&run(&mut client(&beta, &["--role", "alpha"])));
    assert!(line.contains("it serves: beta"), "{line}");
    assert_eq!(setup.emulator.issued_sessions(), 2, "one session per role");

    // Stopped, the daemon removes its socket files.
    crate::systemd::signal(daemon.pid(), libc::SIGTERM);
    assert!(daemon.wait(Duration::from_secs(10)).is_some());
    assert!(!all.exists() && !beta.exists());
}

#[test]
fn a_socket_passed_by_systemd_answers_its_first_client() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("daemon.sock");
    let serve = setup.leaf_subcommand("serve");
    let mut cmd = Command::new(require_tool("systemd-socket-activate"));
    cmd.arg("-l")
        .arg(&socket)
        .arg("--fdname=daemon")
        .arg(format!(
            "--setenv=AWS_CA_BUNDLE={}",
            setup.ca_bundle.display()
        ))
        .arg(serve.get_program())
        .args(serve.get_args())
        .args(["--port", "0", "--daemon-socket", "fd:daemon"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut activator = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // This call starts the daemon and waits in the socket's queue for its answer.
    let out = run(&mut client(&socket, &[]));
    let _ = activator.kill();
    let _ = activator.wait();
    credentials(&out);
    assert_eq!(setup.emulator.issued_sessions(), 1);
}

#[test]
fn the_daemon_socket_unit_verifies() {
    let analyze = require_tool("systemd-analyze");
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let dir = tempfile::tempdir().unwrap();
    for unit in [
        "rolesanywhere-helper.service",
        "rolesanywhere-helper-daemon.socket",
    ] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap().replace(
            "/usr/local/bin/rolesanywhere-helper",
            &bin().display().to_string(),
        );
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = run(Command::new(&analyze)
        .arg("verify")
        .arg(dir.path().join("rolesanywhere-helper-daemon.socket"))
        .current_dir(dir.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn a_reload_adds_and_removes_daemon_sockets() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("daemon.sock");
    let config = setup.path("serve.toml");
    let imds = format!("imds = \"127.0.0.1:{}\"", free_port());
    let write = |top: &str| {
        std::fs::write(
            &config,
            format!("{top}\n{}", role_toml(&setup, "alpha", &imds)),
        )
        .unwrap();
    };
    write("");
    let mut cmd = helper();
    cmd.args(["serve", "--config"]).arg(&config);
    let daemon = Daemon::start(cmd);
    assert!(!socket.exists());
    let reload = |wanted: bool| {
        crate::systemd::signal(daemon.pid(), libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(20);
        while socket.exists() != wanted {
            assert!(Instant::now() < deadline, "{}", daemon.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    write(&format!(
        "[daemon_socket]\npath = \"{}\"\nallow_users = [65534]",
        socket.display()
    ));
    reload(true);
    let line = failure(&run(&mut client(&socket, &[])));
    assert!(line.contains("uid 0 is not allowed"), "{line}");
    // A reload that keeps the socket gives it the new allow list.
    write(&format!(
        "[daemon_socket]\npath = \"{}\"\nallow_users = [0]",
        socket.display()
    ));
    crate::systemd::signal(daemon.pid(), libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    let answered = loop {
        let out = run(&mut client(&socket, &[]));
        if out.status.success() {
            break out;
        }
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    credentials(&answered);
    write("");
    reload(false);
}

#[test]
fn the_aws_cli_reads_credentials_through_the_daemon_socket() {
    let setup = Setup::new(KeyType::P256, false);
    let socket = setup.path("daemon.sock");
    let _daemon = serve(&setup, &socket, &[]);
    let config = setup.path("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile ra]\nregion = us-east-1\ncredential_process = {} credential-process --daemon-socket {}\n",
            bin().display(),
            socket.display()
        ),
    )
    .unwrap();
    for _ in 0..3 {
        let identity = setup.caller_identity("ra", setup.aws_env(&config));
        let arn = identity["Arn"].as_str().unwrap();
        assert!(arn.contains(":assumed-role/onprem-app/"), "{arn}");
    }
    assert_eq!(
        setup.emulator.issued_sessions(),
        1,
        "three CLI calls, the daemon's one session"
    );
}
