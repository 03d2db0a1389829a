//! Independent clients against the emulator: AWS Labs' Python `iam-rolesanywhere-session`
//! (RSA and EC leaves, with and without an intermediate), the AWS CLI on STS
//! GetCallerIdentity with issued credentials, and the `emulate` binary driven as a subprocess.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use rolesanywhere_helper::emulator::{Emulator, EmulatorConfig};
use rolesanywhere_helper::pki::{DevPki, KeyType, PkiOptions};

use crate::common;
use crate::emulator::*;

/// Runs a blocking command off the async runtime (the emulator serves on it meanwhile).
async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || common::run(&mut cmd))
        .await
        .unwrap()
}

async fn python_gets_credentials(key_type: KeyType, intermediate: bool) {
    let pki = DevPki::generate(&PkiOptions {
        key_type,
        intermediate,
        ..PkiOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path()).unwrap();
    let emu = start(pki.root_pem()).await;
    let ca = dir.path().join("emulator-ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();

    let mut cmd = Command::new(common::python());
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rolesanywhere_session_client.py"),
    )
    .args(["--endpoint", &host(&emu), "--region", REGION])
    .args([
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
        "--trust-anchor-arn",
        TA,
    ])
    .arg("--ca")
    .arg(&ca)
    .arg("--certificate")
    .arg(dir.path().join("leaf.pem"))
    .arg("--private-key")
    .arg(dir.path().join("leaf.key"))
    .env_remove("AWS_PROFILE")
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    if intermediate {
        cmd.arg("--chain").arg(dir.path().join("leaf-chain.pem"));
    }
    let out = output(cmd).await;
    let log = emu.received();
    assert!(
        out.status.success(),
        "python client failed:\n{}\nemulator saw: {log:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The library sends the ARNs in the JSON body, with application/x-amz-json-1.0.
    // botocore may refresh once more before use; every attempt must have been accepted.
    assert!(
        !log.is_empty() && log.iter().all(|r| r.status == 201),
        "{log:?}"
    );
    assert!(log[0].query.is_empty());
    assert!(
        log[0].body.contains("\"trustAnchorArn\": "),
        "{}",
        log[0].body
    );
    assert_eq!(log[0].chain_len, usize::from(intermediate));
    let serial_hex = {
        let der = x509_parser::pem::parse_x509_pem(pki.leaf_pem().as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            log[0].serial.as_deref(),
            Some(cert.tbs_certificate.serial.to_str_radix(10).as_str())
        );
        cert.tbs_certificate.serial.to_str_radix(16)
    };
    assert_eq!(
        result["arn"],
        format!("arn:aws:sts::123456789012:assumed-role/dev-role/{serial_hex}")
    );
    assert_eq!(result["account"], "123456789012");
    assert!(result["access_key"].as_str().unwrap().starts_with("ASIA"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_library_rsa_leaf_from_root() {
    python_gets_credentials(KeyType::Rsa2048, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_library_rsa_leaf_through_intermediate() {
    python_gets_credentials(KeyType::Rsa2048, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_library_ec_leaf_from_root() {
    python_gets_credentials(KeyType::P256, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_library_ec_leaf_through_intermediate() {
    python_gets_credentials(KeyType::P256, true).await;
}

fn aws_cli(emu_url: &str, ca: &Path, key: &str, secret: &str, token: &str) -> Command {
    let mut cmd = Command::new(common::require_tool("aws"));
    cmd.args([
        "sts",
        "get-caller-identity",
        "--output",
        "json",
        "--region",
        "eu-west-1",
    ])
    .args(["--endpoint-url", emu_url])
    .env("AWS_CA_BUNDLE", ca)
    .env("AWS_ACCESS_KEY_ID", key)
    .env("AWS_SECRET_ACCESS_KEY", secret)
    .env("AWS_SESSION_TOKEN", token)
    .env_remove("AWS_PROFILE")
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_get_caller_identity_with_issued_credentials() {
    let root = TestCa::root("cli root");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let reply = post(&emu, &id.request(&emu, now(), BODY)).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    let json = reply.json();
    let creds = &json["credentialSet"][0]["credentials"];
    let (key, secret, token) = (
        creds["accessKeyId"].as_str().unwrap().to_owned(),
        creds["secretAccessKey"].as_str().unwrap().to_owned(),
        creds["sessionToken"].as_str().unwrap().to_owned(),
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.ca_pem().unwrap()).unwrap();

    let out = output(aws_cli(&emu.url(), &ca, &key, &secret, &token)).await;
    assert!(
        out.status.success(),
        "aws failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        identity["Arn"],
        "arn:aws:sts::123456789012:assumed-role/dev-role/1234"
    );
    assert_eq!(identity["Account"], "123456789012");
    assert!(identity["UserId"].as_str().unwrap().starts_with("AROA"));

    let mut wrong = secret.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    let out = output(aws_cli(&emu.url(), &ca, &key, &wrong, &token)).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");

    let out = output(aws_cli(&emu.url(), &ca, &key, &secret, "not-the-token")).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidClientTokenId"));
    emu.shutdown().await;
}

#[test]
fn emulate_binary_prints_its_url_takes_faults_and_stops_on_sigterm() {
    let e = Emulate::start(&[]);
    let ca_pem = std::fs::read_to_string(&e.ca_file).unwrap();

    // Drive it with curl: a fault order, then a request that gets the fault.
    let fault = format!("{}/_emulator/faults", e.url);
    let answer = e.curl(&[
        "-X",
        "POST",
        "--data",
        r#"{"action":"fail_next","count":1,"status":503}"#,
        &fault,
    ]);
    assert!(answer.ends_with("200"), "{answer}");
    let sessions = format!("{}/sessions", e.url);
    let answer = e.curl(&["-X", "POST", "--data", "{}", &sessions]);
    assert!(answer.ends_with("503"), "{answer}");
    // The next one is verified (and refused: it is not signed).
    let answer = e.curl(&["-X", "POST", "--data", "{}", &sessions]);
    assert!(
        answer.ends_with("403") && answer.contains("Invalid signature"),
        "{answer}"
    );
    let log = e.curl(&[&format!("{}/_emulator/received", e.url)]);
    assert!(
        log.contains("\"status\":503") && log.contains("\"status\":403"),
        "{log}"
    );
    assert!(ca_pem.contains("BEGIN CERTIFICATE"));
    let ca_file = e.ca_file.clone();
    e.stop();
    assert!(
        !Path::new(&ca_file).exists(),
        "the CA file is removed on exit"
    );
}

#[test]
fn emulate_binary_throttles_above_max_tps_with_retry_after() {
    let e = Emulate::start(&["--max-tps", "2", "--throttle-retry-after", "3"]);
    let sessions = format!("{}/sessions", e.url);
    // Three requests from one curl, on one connection, well within a second: two pass the
    // quota (and are refused, being unsigned), the third is throttled before any check.
    let answer = e.curl(&[
        "-D", "-", "-X", "POST", "--data", "{}", &sessions, &sessions, &sessions,
    ]);
    let codes: Vec<&str> = answer
        .lines()
        .filter(|l| l.len() == 3 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(codes, ["403", "403", "429"], "{answer}");
    let throttled = &answer[answer.rfind("HTTP/").unwrap()..];
    assert!(
        throttled.to_ascii_lowercase().contains("retry-after: 3")
            && throttled.contains("ThrottlingException")
            && throttled.contains("Rate exceeded"),
        "{throttled}"
    );
    e.stop();
}

/// The `emulate` binary of the tests, on a free port, trusting a fresh dev PKI's root.
struct Emulate {
    child: std::process::Child,
    url: String,
    /// The CA bundle it prints for its clients.
    ca_file: String,
    _pki: tempfile::TempDir,
}

impl Emulate {
    fn start(extra: &[&str]) -> Self {
        let pki = DevPki::generate(&PkiOptions {
            key_type: KeyType::P256,
            ..PkiOptions::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path()).unwrap();
        let mut child = common::helper()
            .args(["emulate", "--port", "0", "--allow-short-sessions"])
            .args(extra)
            .arg("--trust-anchor")
            .arg(dir.path().join("root-ca.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first}"))
            .to_owned();
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
        let second = lines.next().unwrap().unwrap();
        assert!(second.contains("AWS_CA_BUNDLE="), "{second}");
        let ca_file = second.rsplit("AWS_CA_BUNDLE=").next().unwrap().to_owned();
        Self {
            child,
            url,
            ca_file,
            _pki: dir,
        }
    }

    /// curl with `args`: what it printed, each answer followed by a line of its status.
    fn curl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(common::require_tool("curl"));
        cmd.args([
            "-sS",
            "--cacert",
            &self.ca_file,
            "-o",
            "-",
            "-w",
            "\n%{http_code}\n",
        ])
        .args(args);
        let out = String::from_utf8(common::run_ok(&mut cmd)).unwrap();
        out.trim_end().to_owned()
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        common::run_ok(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let status = self.child.wait().unwrap();
        assert!(status.success(), "emulate exited with {status}");
    }
}

#[tokio::test]
async fn emulate_binary_refuses_a_non_ca_anchor_with_a_clear_error() {
    let root = TestCa::root("root");
    let leaf = root.issue(CertSpec::default());
    let dir = tempfile::tempdir().unwrap();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        rolesanywhere_helper::sigv4x509::certificate_header(&leaf.leaf_der)
    );
    std::fs::write(dir.path().join("leaf.pem"), pem).unwrap();
    let out = common::run(
        common::helper()
            .args(["emulate", "--trust-anchor"])
            .arg(dir.path().join("leaf.pem")),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a CA certificate"), "{err}");
    // In process, the same check.
    let config = EmulatorConfig::single_anchor(
        &std::fs::read_to_string(dir.path().join("leaf.pem")).unwrap(),
        REGION,
    )
    .unwrap();
    assert!(Emulator::start(config).await.is_err());
}
