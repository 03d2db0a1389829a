//! `serve` conformance: every status code and header rule of the IMDSv2 and ECS endpoints,
//! over raw HTTP against the binary, with the emulator behind it.

use std::time::Duration;

use rolesanywhere_helper::pki::KeyType;

use crate::credential_process::{ROLE, Setup};
use crate::serve_daemon::{Daemon, http, imds_credentials, imds_token};

const ROLE_NAME: &str = "onprem-app";
const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials";
const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "X-aws-ec2-metadata-token";

fn daemon(setup: &Setup) -> Daemon {
    Daemon::start(setup.leaf_subcommand("serve"))
}

fn is_ec2_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b[19] == b'Z'
        && b[10] == b'T'
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

#[test]
fn token_put_issues_tokens_and_echoes_the_ttl() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    for ttl in ["1", "60", "21600"] {
        let reply = http(
            ("127.0.0.1", d.port),
            "PUT",
            "/latest/api/token",
            &[(TTL, ttl)],
        );
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(
            reply.header("x-aws-ec2-metadata-token-ttl-seconds"),
            Some(ttl)
        );
        assert!(reply.body.len() >= 32 && !reply.body.contains(['\n', ' ']));
    }
    let a = imds_token(d.port);
    let b = imds_token(d.port);
    assert_ne!(a, b, "every PUT makes a new token");
}

#[test]
fn token_put_refuses_a_missing_or_bad_ttl_with_400() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    let missing = http(("127.0.0.1", d.port), "PUT", "/latest/api/token", &[]);
    assert_eq!(missing.status, 400, "{missing:?}");
    for bad in [
        "0",
        "21601",
        "-1",
        "+60",
        "abc",
        "1.5",
        "99999999999999999999",
    ] {
        let reply = http(
            ("127.0.0.1", d.port),
            "PUT",
            "/latest/api/token",
            &[(TTL, bad)],
        );
        assert_eq!(reply.status, 400, "TTL {bad:?}: {reply:?}");
    }
}

#[test]
fn x_forwarded_for_is_refused_with_403_everywhere() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    let token = imds_token(d.port);
    let proxied = [("X-Forwarded-For", "10.0.0.1")];
    let put = http(
        ("127.0.0.1", d.port),
        "PUT",
        "/latest/api/token",
        &[(TTL, "60"), proxied[0]],
    );
    assert_eq!(put.status, 403, "{put:?}");
    for path in [
        format!("{CREDENTIALS}/"),
        format!("{CREDENTIALS}/{ROLE_NAME}"),
    ] {
        let get = http(
            ("127.0.0.1", d.port),
            "GET",
            &path,
            &[(TOKEN, &token), proxied[0]],
        );
        assert_eq!(get.status, 403, "{path}: {get:?}");
    }
}

#[test]
fn role_list_and_credentials_with_and_without_trailing_slash() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    let token = imds_token(d.port);
    let auth = [(TOKEN, token.as_str())];
    for path in [CREDENTIALS.to_owned(), format!("{CREDENTIALS}/")] {
        let reply = http(("127.0.0.1", d.port), "GET", &path, &auth);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(reply.body, ROLE_NAME, "a bare name, no newline");
        let left: u64 = reply
            .header("x-aws-ec2-metadata-token-ttl-seconds")
            .unwrap()
            .parse()
            .unwrap();
        assert!((21590..=21600).contains(&left), "{left}");
    }
    for path in [
        format!("{CREDENTIALS}/{ROLE_NAME}"),
        format!("{CREDENTIALS}/{ROLE_NAME}/"),
    ] {
        let reply = http(("127.0.0.1", d.port), "GET", &path, &auth);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        let keys: Vec<&str> = {
            // The key order of EC2's document, checked on the raw text.
            let mut keys: Vec<(usize, &str)> = [
                "Code",
                "LastUpdated",
                "Type",
                "AccessKeyId",
                "SecretAccessKey",
                "Token",
                "Expiration",
            ]
            .iter()
            .map(|k| (reply.body.find(&format!("\"{k}\"")).unwrap(), *k))
            .collect();
            keys.sort();
            keys.into_iter().map(|(_, k)| k).collect()
        };
        assert_eq!(
            keys,
            [
                "Code",
                "LastUpdated",
                "Type",
                "AccessKeyId",
                "SecretAccessKey",
                "Token",
                "Expiration"
            ]
        );
        let json = reply.json();
        assert_eq!(json.as_object().unwrap().len(), 7);
        assert_eq!(json["Code"], "Success");
        assert_eq!(json["Type"], "AWS-HMAC");
        assert!(is_ec2_time(json["Expiration"].as_str().unwrap()), "{json}");
        assert!(is_ec2_time(json["LastUpdated"].as_str().unwrap()), "{json}");
        assert!(json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
        assert!(
            reply
                .header("x-aws-ec2-metadata-token-ttl-seconds")
                .is_some()
        );
    }
    assert_eq!(setup.emulator.issued_sessions(), 1, "served from memory");
}

#[test]
fn missing_unknown_and_expired_tokens_get_401() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    let short = http(
        ("127.0.0.1", d.port),
        "PUT",
        "/latest/api/token",
        &[(TTL, "1")],
    )
    .body;
    let role_path = format!("{CREDENTIALS}/{ROLE_NAME}");
    for path in [format!("{CREDENTIALS}/"), role_path.clone()] {
        let none = http(("127.0.0.1", d.port), "GET", &path, &[]);
        assert_eq!(none.status, 401, "{none:?}");
        let unknown = http(
            ("127.0.0.1", d.port),
            "GET",
            &path,
            &[(TOKEN, "not-a-token")],
        );
        assert_eq!(unknown.status, 401, "{unknown:?}");
    }
    assert_eq!(
        http(("127.0.0.1", d.port), "GET", &role_path, &[(TOKEN, &short)]).status,
        200
    );
    std::thread::sleep(Duration::from_millis(1100));
    let expired = http(("127.0.0.1", d.port), "GET", &role_path, &[(TOKEN, &short)]);
    assert_eq!(expired.status, 401, "{expired:?}");
}

#[test]
fn wrong_methods_get_405() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    let token = imds_token(d.port);
    let auth = [(TOKEN, token.as_str()), (TTL, "60")];
    for (method, path) in [
        ("GET", "/latest/api/token".to_owned()),
        ("POST", "/latest/api/token".to_owned()),
        ("PUT", format!("{CREDENTIALS}/")),
        ("POST", format!("{CREDENTIALS}/{ROLE_NAME}")),
        ("DELETE", format!("{CREDENTIALS}/{ROLE_NAME}")),
        ("HEAD", format!("{CREDENTIALS}/{ROLE_NAME}")),
    ] {
        let reply = http(("127.0.0.1", d.port), method, &path, &auth);
        assert_eq!(reply.status, 405, "{method} {path}: {reply:?}");
        assert!(reply.header("allow").is_some());
    }
}

#[test]
fn other_paths_get_404_so_sdks_fall_back() {
    let setup = Setup::new(KeyType::P256, false);
    let d = daemon(&setup);
    let token = imds_token(d.port);
    let auth = [(TOKEN, token.as_str())];
    for path in [
        "/",
        "/latest/meta-data/",
        "/latest/meta-data/iam/info",
        "/latest/meta-data/iam/security-credentials-extended/",
        &format!("/latest/meta-data/iam/security-credentials-extended/{ROLE_NAME}"),
        &format!("{CREDENTIALS}/other-role"),
        &format!("{CREDENTIALS}/{ROLE_NAME}/extra"),
        "/latest/api/token/extra",
        &format!("/ecs/{ROLE_NAME}"),
    ] {
        let reply = http(("127.0.0.1", d.port), "GET", path, &auth);
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
    }
}

#[test]
fn ecs_endpoint_needs_the_token_from_its_file() {
    let setup = Setup::new(KeyType::P256, false);
    let token_file = setup.path("ecs-token");
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.arg("--ecs-token-file").arg(&token_file);
    let d = Daemon::start(cmd);
    assert!(d.log().contains(&format!(
        "export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:{}/ecs/{ROLE_NAME}",
        d.port
    )));
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(!token.ends_with('\n') && token.len() >= 32);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let path = format!("/ecs/{ROLE_NAME}");
    let ok = http(
        ("127.0.0.1", d.port),
        "GET",
        &path,
        &[("Authorization", &token)],
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    let json = ok.json();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{json}");
    assert_eq!(json["RoleArn"], ROLE);
    assert!(is_ec2_time(json["Expiration"].as_str().unwrap()));
    for key in ["AccessKeyId", "SecretAccessKey", "Token"] {
        assert!(json[key].as_str().is_some_and(|v| !v.is_empty()), "{key}");
    }

    let missing = http(("127.0.0.1", d.port), "GET", &path, &[]);
    assert_eq!(missing.status, 401, "{missing:?}");
    let mut wrong = token.clone();
    wrong.replace_range(..1, if token.starts_with('A') { "B" } else { "A" });
    for bad in [
        wrong.as_str(),
        &format!("Bearer {token}"),
        &token[..token.len() - 1],
    ] {
        let reply = http(
            ("127.0.0.1", d.port),
            "GET",
            &path,
            &[("Authorization", bad)],
        );
        assert_eq!(reply.status, 403, "{bad:?}: {reply:?}");
    }
    let post = http(
        ("127.0.0.1", d.port),
        "POST",
        &path,
        &[("Authorization", &token)],
    );
    assert_eq!(post.status, 405);
    let other = http(
        ("127.0.0.1", d.port),
        "GET",
        "/ecs/other",
        &[("Authorization", &token)],
    );
    assert_eq!(other.status, 404);

    // SIGTERM stops the daemon cleanly and removes the token file.
    // SAFETY: kill() has no memory effects.
    unsafe { libc::kill(d.pid() as i32, libc::SIGTERM) };
    let status = d
        .wait(Duration::from_secs(10))
        .expect("serve exits on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!token_file.exists(), "the token file is removed on exit");
}

#[test]
fn ipv6_bind_serves_on_loopback_v6() {
    let setup = Setup::new(KeyType::P256, false);
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.args(["--bind", "[::1]"]);
    let d = Daemon::start(cmd);
    assert!(d.log().contains(&format!(
        "export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://[::1]:{}/",
        d.port
    )));
    let reply = http(("::1", d.port), "PUT", "/latest/api/token", &[(TTL, "60")]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", d.port)).is_err());
}

#[test]
fn credentials_are_those_the_emulator_issued() {
    let setup = Setup::new(KeyType::Rsa2048, true);
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.arg("--certificate")
        .arg(setup.path("leaf-fullchain.pem"));
    let d = Daemon::start(cmd);
    let json = imds_credentials(d.port, ROLE_NAME).json();
    let issued = setup.emulator.received();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].chain_len, 1, "the intermediate is sent");
    let log = d.log();
    assert!(
        log.contains("credentials refreshed") && log.contains("role=onprem-app"),
        "{log}"
    );
    for secret in ["SecretAccessKey", "Token"] {
        let value = json[secret].as_str().unwrap();
        assert!(!log.contains(value), "{secret} is never logged");
    }
}

#[test]
fn a_permanent_error_at_start_stops_the_daemon_with_the_service_message() {
    let setup = Setup::new(KeyType::P256, true);
    // The leaf alone, without its intermediate: the service refuses it.
    let mut child = setup
        .leaf_subcommand("serve")
        .args(["--port", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "serve kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("role onprem-app: credentials could not be obtained: CreateSession refused (403 AccessDeniedException)"),
        "{stderr}"
    );
    assert!(!stderr.contains("Local server started"), "{stderr}");
    assert_eq!(
        setup.emulator.received().len(),
        1,
        "a permanent error is not retried"
    );
}

#[test]
fn bad_flags_fail_before_anything_starts() {
    let setup = Setup::new(KeyType::P256, false);
    for (args, expected) in [
        (
            vec!["--hop-limit", "0"],
            "--hop-limit 0 is out of range; use 1 to 255",
        ),
        (
            vec!["--hop-limit", "256"],
            "--hop-limit 256 is out of range",
        ),
        (
            vec!["--bind", "localhost"],
            "--bind \"localhost\" is not an IP address",
        ),
        (
            vec!["--session-duration", "100"],
            "--session-duration 100 is out of range",
        ),
        (
            vec!["--config", "/nonexistent.toml"],
            "cannot be combined with --config",
        ),
    ] {
        let out = crate::common::run(
            setup
                .leaf_subcommand("serve")
                .args(["--port", "0"])
                .args(&args),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(setup.emulator.received().is_empty());
    // A taken port is reported at once.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = crate::common::run(setup.leaf_subcommand("serve").args(["--port", &port]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn hop_limit_sets_the_ttl_of_every_reply_packet() {
    let tcpdump = crate::common::require_tool("tcpdump");
    let setup = Setup::new(KeyType::P256, false);
    for (bind, host, expected) in [
        ("127.0.0.1", "127.0.0.1", "ttl 7"),
        ("[::1]", "::1", "hlim 7"),
    ] {
        let mut cmd = setup.leaf_subcommand("serve");
        cmd.args(["--bind", bind, "--hop-limit", "7"]);
        let d = Daemon::start(cmd);
        // The SYN-ACK and the reply: every packet the daemon sends on this connection.
        let mut capture = std::process::Command::new(&tcpdump)
            .args(["-i", "lo", "-n", "-v", "-l", "-c", "2"])
            .arg(format!("tcp src port {}", d.port))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until it listens.
        let mut stderr = std::io::BufReader::new(capture.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            assert!(
                std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
                "tcpdump could not start (it needs CAP_NET_RAW)"
            );
        }
        let reply = http((host, d.port), "PUT", "/latest/api/token", &[(TTL, "60")]);
        assert_eq!(reply.status, 200);
        let out = capture.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let packets: Vec<&str> = text.lines().filter(|l| l.contains(" IP")).collect();
        assert_eq!(packets.len(), 2, "{text}");
        for packet in packets {
            assert!(packet.contains(expected), "{bind}: {packet}");
        }
    }
}
