//! `credential-process` end to end: the binary against the emulator over real HTTPS, with
//! rcgen- and openssl-made identities, the official helper's command lines, the AWS CLI
//! and botocore reading it through `credential_process`, and every error class with its
//! one-line message. Proxies are in `migration`: a loopback endpoint such as this
//! emulator's is never proxied.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rolesanywhere_helper::emulator::{Emulator, EmulatorConfig, ProfileConfig};
use rolesanywhere_helper::pki::{DevPki, KeyType, PkiOptions};
use tokio::runtime::Runtime;

use crate::common::{self, helper, openssl};

pub const REGION: &str = "us-east-1";
pub const TA: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/4f1c2c36-0000-4000-8000-000000000001";
pub const PROFILE: &str =
    "arn:aws:rolesanywhere:us-east-1:111122223333:profile/6f4943fb-0000-4000-8000-000000000002";
pub const ROLE: &str = "arn:aws:iam::111122223333:role/onprem-app";

/// A running emulator trusting a dev PKI, with the PKI's files on disk.
pub struct Setup {
    pub emulator: Emulator,
    pub dir: tempfile::TempDir,
    pub ca_bundle: PathBuf,
    /// Runs the emulator's tasks; dropped last.
    _runtime: Runtime,
}

impl Setup {
    pub fn new(key_type: KeyType, intermediate: bool) -> Self {
        Self::with_config(key_type, intermediate, |_| {})
    }

    /// Like `new`, with a chance to adjust the emulator's configuration.
    pub fn with_config(
        key_type: KeyType,
        intermediate: bool,
        adjust: impl FnOnce(&mut EmulatorConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::generate(&PkiOptions {
            key_type,
            intermediate,
            ..PkiOptions::default()
        })
        .unwrap();
        pki.write(dir.path()).unwrap();
        Self::start(dir, pki.root_pem(), adjust)
    }

    /// An emulator trusting `root_pem` (a CA made elsewhere), with an empty directory for
    /// the test's files.
    pub fn trusting(root_pem: &str) -> Self {
        Self::start(tempfile::tempdir().unwrap(), root_pem, |_| {})
    }

    fn start(
        dir: tempfile::TempDir,
        root_pem: &str,
        adjust: impl FnOnce(&mut EmulatorConfig),
    ) -> Self {
        let mut config = EmulatorConfig::single_anchor(root_pem, REGION).unwrap();
        adjust(&mut config);
        let rt = Runtime::new().unwrap();
        let emulator = rt.block_on(Emulator::start(config)).unwrap();
        // A plain-HTTP emulator (`TlsMode::Http`) has no CA: the file is then not written.
        let ca_bundle = dir.path().join("emulator-ca.pem");
        if let Some(pem) = emulator.ca_pem() {
            std::fs::write(&ca_bundle, pem).unwrap();
        }
        Self {
            emulator,
            dir,
            ca_bundle,
            _runtime: rt,
        }
    }

    /// An emulator whose profile issues `seconds`-second sessions (below the service's
    /// 15-minute minimum), for the tests that watch credentials being refreshed.
    pub fn short_sessions(key_type: KeyType, intermediate: bool, seconds: u32) -> Self {
        Self::with_config(key_type, intermediate, |config| {
            config.min_duration_seconds = 1;
            config.profiles = vec![ProfileConfig {
                arn: PROFILE.into(),
                role_arns: vec![ROLE.into()],
                duration_seconds: seconds,
                accept_role_session_name: false,
                enabled: true,
            }];
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `aws sts get-caller-identity --profile PROFILE` against the emulator, with `env`
    /// telling the CLI where its configuration is; the JSON it prints.
    pub fn caller_identity(
        &self,
        profile: &str,
        env: impl FnOnce(&mut Command),
    ) -> serde_json::Value {
        let mut aws = Command::new(common::require_tool("aws"));
        aws.args(["sts", "get-caller-identity", "--profile", profile])
            .args(["--output", "json", "--endpoint-url", &self.emulator.url()]);
        env(&mut aws);
        common::json_stdout(&common::run(&mut aws), "aws sts get-caller-identity")
    }

    /// Sets up an AWS CLI or botocore process to read only the AWS config file `config`
    /// (no credentials file, no credentials in the environment) and to trust the emulator.
    pub fn aws_env<'a>(&'a self, config: &'a Path) -> impl Fn(&mut Command) + 'a {
        move |cmd: &mut Command| {
            cmd.env("AWS_CONFIG_FILE", config)
                .env("AWS_SHARED_CREDENTIALS_FILE", self.path("no-credentials"))
                .env("AWS_CA_BUNDLE", &self.ca_bundle)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("AWS_PROFILE");
        }
    }

    /// The leaf key encrypted with `password` (PKCS#8, PBES2 with AES-256-CBC, by openssl),
    /// as `leaf.enc.key`.
    pub fn encrypted_leaf_key(&self, password: &str) -> PathBuf {
        openssl(
            self.dir.path(),
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "leaf.key",
                "-out",
                "leaf.enc.key",
                "-v2",
                "aes-256-cbc",
                "-passout",
                &format!("pass:{password}"),
            ],
        );
        self.path("leaf.enc.key")
    }

    /// `credential-process` with the three ARNs and nothing else.
    fn arns_command() -> Command {
        Self::arns_subcommand("credential-process")
    }

    /// The given subcommand with the three ARNs and nothing else.
    fn arns_subcommand(subcommand: &str) -> Command {
        let mut cmd = helper();
        cmd.args([subcommand, "--trust-anchor-arn", TA]).args([
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
        ]);
        cmd
    }

    /// `credential-process` with the three ARNs, the endpoint and the CA bundle set; the
    /// identity flags are left to the caller.
    pub fn command(&self) -> Command {
        self.endpoint_subcommand("credential-process")
    }

    /// The given subcommand with the three ARNs, the endpoint and the CA bundle.
    pub fn endpoint_subcommand(&self, subcommand: &str) -> Command {
        let mut cmd = Self::arns_subcommand(subcommand);
        cmd.args(["--endpoint", &self.emulator.url()])
            .env("AWS_CA_BUNDLE", &self.ca_bundle);
        cmd
    }

    fn add_leaf<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.arg("--certificate")
            .arg(self.path("leaf.pem"))
            .arg("--private-key")
            .arg(self.path("leaf.key"))
    }

    /// `subcommand` (`serve`, `update`) with the ARNs, the endpoint, the CA bundle and the
    /// PKI's leaf and key.
    pub fn leaf_subcommand(&self, subcommand: &str) -> Command {
        let mut cmd = self.endpoint_subcommand(subcommand);
        self.add_leaf(&mut cmd);
        cmd
    }

    /// `command()` with the PKI's leaf and key.
    pub fn leaf_command(&self) -> Command {
        let mut cmd = self.command();
        self.add_leaf(&mut cmd);
        cmd
    }

    /// The ARNs and the leaf, with neither endpoint nor CA bundle.
    pub fn bare_leaf_command(&self) -> Command {
        let mut cmd = Self::arns_command();
        self.add_leaf(&mut cmd);
        cmd
    }
}

/// The parsed `credential_process` output, after checking its exact shape.
pub fn credentials(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "credential-process failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!text.ends_with('\n'), "no trailing newline");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        text.starts_with(r#"{"Version":1,"AccessKeyId":""#),
        "{text}"
    );
    assert_eq!(keys.len(), 5, "{text}");
    let order = [
        "\"AccessKeyId\"",
        "\"SecretAccessKey\"",
        "\"SessionToken\"",
        "\"Expiration\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "field order: {text}"
    );
    assert!(json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    time::OffsetDateTime::parse(
        json["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("Expiration is RFC 3339");
    json
}

/// The single stderr line of a failed run, after checking exit code 1 and empty stdout.
pub fn failure(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code 1 expected; stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line on stderr: {stderr}"
    );
    stderr.trim_end().to_owned()
}

#[test]
fn dev_pki_key_types_get_credentials() {
    for key_type in [KeyType::Rsa2048, KeyType::P256, KeyType::P384] {
        let setup = Setup::new(key_type, false);
        let json = credentials(&common::run(&mut setup.leaf_command()));
        let received = setup.emulator.received();
        assert_eq!(received.len(), 1, "{key_type:?}: one request");
        assert_eq!(received[0].status, 201);
        assert_eq!(
            received[0].body, r#"{"durationSeconds":3600}"#,
            "compact body, default duration"
        );
        assert!(json["SessionToken"].as_str().unwrap().len() > 20);
    }
}

/// Issues an openssl-made leaf of `key_args` from the dev root, in `setup`'s folder.
fn openssl_leaf(setup: &Setup, name: &str, genkey: &[&str]) -> (PathBuf, PathBuf) {
    let dir = setup.dir.path();
    let key = format!("{name}.key");
    let mut args = genkey.to_vec();
    args.extend(["-out", &key]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let cert = common::issue_from_root(
        dir,
        name,
        "30",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    (cert, dir.join(key))
}

#[test]
fn openssl_key_types_and_formats_get_credentials() {
    let setup = Setup::new(KeyType::P256, false);
    let dir = setup.dir.path();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "rsa3072",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:3072",
            ],
        ),
        (
            "rsa4096",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:4096",
            ],
        ),
        (
            "p384",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ],
        ),
        (
            "p521",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-521",
            ],
        ),
    ];
    for (name, genkey) in &cases {
        let (cert, key) = openssl_leaf(&setup, name, genkey);
        let out = common::run(
            setup
                .command()
                .arg("--certificate")
                .arg(&cert)
                .arg("--private-key")
                .arg(&key),
        );
        credentials(&out);
    }

    // Every key format, on one RSA and one EC key made by openssl.
    let (rsa_cert, rsa_key) = openssl_leaf(
        &setup,
        "rsa2048",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    );
    let (ec_cert, ec_key) = openssl_leaf(
        &setup,
        "p256",
        &["ecparam", "-name", "prime256v1", "-genkey"],
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    openssl(
        dir,
        &[
            "rsa",
            "-in",
            &s(&rsa_key),
            "-traditional",
            "-out",
            "rsa-pkcs1.pem",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &s(&rsa_key),
            "-outform",
            "DER",
            "-out",
            "rsa-pkcs8.der",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            &s(&ec_key),
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret",
            "-out",
            "ec-enc.pem",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            &s(&rsa_key),
            "-scrypt",
            "-passout",
            "pass:s3cret",
            "-out",
            "rsa-scrypt.pem",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-in",
            &s(&ec_cert),
            "-outform",
            "DER",
            "-out",
            "ec-cert.der",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            &s(&ec_key),
            "-in",
            &s(&ec_cert),
            "-passout",
            "pass:s3cret",
            "-out",
            "ec.p12",
        ],
    );
    let combined = dir.join("combined.pem");
    std::fs::write(
        &combined,
        [
            std::fs::read(&rsa_key).unwrap(),
            std::fs::read(&rsa_cert).unwrap(),
        ]
        .concat(),
    )
    .unwrap();
    std::fs::write(dir.join("pw"), "s3cret\n").unwrap();

    let formats: Vec<(&str, PathBuf, Option<PathBuf>, bool)> = vec![
        (
            "PKCS#1 PEM",
            rsa_cert.clone(),
            Some(dir.join("rsa-pkcs1.pem")),
            false,
        ),
        (
            "PKCS#8 DER",
            rsa_cert.clone(),
            Some(dir.join("rsa-pkcs8.der")),
            false,
        ),
        (
            "SEC1 with EC PARAMETERS",
            ec_cert.clone(),
            Some(ec_key.clone()),
            false,
        ),
        (
            "encrypted PKCS#8 AES-256",
            ec_cert.clone(),
            Some(dir.join("ec-enc.pem")),
            true,
        ),
        (
            "encrypted PKCS#8 scrypt",
            rsa_cert.clone(),
            Some(dir.join("rsa-scrypt.pem")),
            true,
        ),
        (
            "DER certificate",
            dir.join("ec-cert.der"),
            Some(ec_key.clone()),
            false,
        ),
        ("PKCS#12", dir.join("ec.p12"), None, true),
        ("combined key+certificate PEM", combined, None, false),
    ];
    for (label, cert, key, password) in formats {
        let mut cmd = setup.command();
        cmd.arg("--certificate").arg(&cert);
        if let Some(key) = key {
            cmd.arg("--private-key").arg(key);
        }
        if password {
            cmd.arg("--pkcs8-password-file").arg(dir.join("pw"));
        }
        let out = common::run(&mut cmd);
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        credentials(&out);
    }
}

#[test]
fn chains_work_from_fullchain_and_intermediates() {
    let setup = Setup::new(KeyType::P256, true);
    // Without the intermediate the leaf does not chain to the root anchor.
    let out = common::run(&mut setup.leaf_command());
    let line = failure(&out);
    assert!(line.starts_with("CreateSession refused (403 AccessDeniedException): Untrusted Signing Certificate - the certificate does not chain"), "{line}");

    let out = common::run(
        setup
            .command()
            .arg("--certificate")
            .arg(setup.path("leaf-fullchain.pem"))
            .arg("--private-key")
            .arg(setup.path("leaf.key")),
    );
    credentials(&out);
    let out = common::run(
        setup
            .leaf_command()
            .arg("--intermediates")
            .arg(setup.path("leaf-chain.pem")),
    );
    credentials(&out);
    let received = setup.emulator.received();
    assert_eq!(
        received.iter().map(|r| r.chain_len).collect::<Vec<_>>(),
        vec![0, 1, 1]
    );
    assert!(
        received[1]
            .signed_headers
            .contains(&"x-amz-x509-chain".to_owned())
    );
}

#[test]
fn official_command_lines_run_unchanged() {
    let setup = Setup::new(KeyType::Rsa2048, false);
    let (cert, key) = (setup.path("leaf.pem"), setup.path("leaf.key"));
    let url = setup.emulator.url();
    // The README's line, then with each optional flag of the official helper.
    let lines: Vec<Vec<String>> = vec![
        vec![],
        vec!["--session-duration".into(), "900".into()],
        vec!["--region".into(), REGION.into()],
        vec!["--with-proxy".into()],
        vec!["--debug".into()],
        vec!["--no-verify-ssl".into()],
    ];
    for extra in lines {
        let mut cmd = helper();
        cmd.args(["credential-process", "--certificate"])
            .arg(&cert)
            .arg("--private-key")
            .arg(&key)
            .args([
                "--trust-anchor-arn",
                TA,
                "--profile-arn",
                PROFILE,
                "--role-arn",
                ROLE,
                "--endpoint",
                &url,
            ])
            .args(&extra)
            .env("AWS_CA_BUNDLE", &setup.ca_bundle);
        let out = common::run(&mut cmd);
        let json = credentials(&out);
        if extra.first().is_some_and(|f| f == "--debug") {
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                log.contains("canonical request"),
                "--debug explains the steps"
            );
            for secret in ["SecretAccessKey", "SessionToken"] {
                let value = json[secret].as_str().unwrap();
                assert!(!log.contains(value), "--debug must not print the {secret}");
            }
        }
    }
    let bodies: Vec<String> = setup
        .emulator
        .received()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies[1], r#"{"durationSeconds":900}"#);

    // `--no-verify-ssl` is what lets it work without the CA bundle.
    let out = common::run(
        setup
            .leaf_command()
            .env_remove("AWS_CA_BUNDLE")
            .arg("--no-verify-ssl"),
    );
    credentials(&out);
}

#[test]
fn role_session_name_is_sent_only_when_given() {
    let setup = Setup::with_config(KeyType::P256, false, |c| {
        c.profiles.push(ProfileConfig {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 3600,
            accept_role_session_name: true,
            enabled: true,
        });
    });
    credentials(&common::run(
        setup
            .leaf_command()
            .args(["--role-session-name", "host-42"]),
    ));
    let received = setup.emulator.received();
    assert_eq!(
        received[0].body,
        r#"{"durationSeconds":3600,"roleSessionName":"host-42"}"#
    );
}

#[test]
fn aws_cli_and_botocore_use_it_as_credential_process() {
    let setup = Setup::new(KeyType::P256, false);
    let config = setup.path("aws-config");
    let line = format!(
        "credential_process = {} credential-process --certificate {} --private-key {} --trust-anchor-arn {TA} --profile-arn {PROFILE} --role-arn {ROLE} --endpoint {}",
        common::bin().display(),
        setup.path("leaf.pem").display(),
        setup.path("leaf.key").display(),
        setup.emulator.url()
    );
    std::fs::write(
        &config,
        format!("[profile ra]\nregion = {REGION}\n{line}\n"),
    )
    .unwrap();
    let aws_env = setup.aws_env(&config);
    let identity = setup.caller_identity("ra", &aws_env);
    let arn = identity["Arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::111122223333:assumed-role/onprem-app/"),
        "{arn}"
    );

    let mut py = Command::new(common::python());
    py.arg("-c").arg(
        "import boto3; c = boto3.Session(profile_name='ra').get_credentials().get_frozen_credentials(); \
         print(c.access_key, len(c.secret_key), len(c.token))",
    );
    aws_env(&mut py);
    let out = common::run(&mut py);
    assert!(
        out.status.success(),
        "botocore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ASIA"), "{text}");
    // Two processes ran: the CLI's and botocore's.
    assert_eq!(
        setup
            .emulator
            .received()
            .iter()
            .filter(|r| r.status == 201)
            .count(),
        2
    );
}

/// A port that was free a moment ago (the race with other tests is accepted).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} did not open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn emulator_error_classes_are_one_clear_line() {
    let setup = Setup::new(KeyType::P256, false);
    // Faults stand for the service's status classes; each is reported with its type.
    for (status, error_type) in [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
    ] {
        setup.emulator.faults().fail_next(1, status);
        let line = failure(&common::run(&mut setup.leaf_command()));
        assert!(
            line.starts_with(&format!("CreateSession refused ({status} {error_type}): ")),
            "{line}"
        );
        assert!(line.contains("[request id "), "{line}");
    }
    // 4xx is not retried.
    assert_eq!(setup.emulator.received().len(), 3);
    for (status, error_type) in [
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
    ] {
        setup.emulator.clear_received();
        setup.emulator.faults().fail_next(3, status);
        let line = failure(&common::run(&mut setup.leaf_command()));
        assert!(
            line.starts_with(&format!("CreateSession failed ({status} {error_type}): ")),
            "{line}"
        );
        assert!(line.contains("after 3 attempts"), "{line}");
        assert_eq!(
            setup.emulator.received().len(),
            3,
            "{status} is retried, 3 attempts in all"
        );
    }
}

#[test]
fn real_refusals_name_the_fix() {
    // A leaf from another PKI does not chain to the anchor.
    let setup = Setup::new(KeyType::P256, false);
    let other = tempfile::tempdir().unwrap();
    DevPki::generate(&PkiOptions {
        key_type: KeyType::P256,
        ..PkiOptions::default()
    })
    .unwrap()
    .write(other.path())
    .unwrap();
    let out = common::run(
        setup
            .command()
            .arg("--certificate")
            .arg(other.path().join("leaf.pem"))
            .arg("--private-key")
            .arg(other.path().join("leaf.key")),
    );
    assert!(failure(&out).contains(
        "Untrusted Signing Certificate - the certificate does not chain to the trust anchor"
    ));

    // A profile that refuses custom session names.
    let setup = Setup::with_config(KeyType::P256, false, |c| {
        c.profiles.push(ProfileConfig {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 3600,
            accept_role_session_name: false,
            enabled: true,
        });
    });
    let line = failure(&common::run(
        setup.leaf_command().args(["--role-session-name", "x1"]),
    ));
    assert!(
        line.contains("(403 AccessDeniedException)") && line.contains("--role-session-name"),
        "{line}"
    );

    // An unknown profile.
    let line = failure(&common::run(setup.leaf_command().args([
        "--profile-arn",
        "arn:aws:rolesanywhere:us-east-1:111122223333:profile/unknown",
    ])));
    assert!(
        line.contains("ResourceNotFoundException") || line.contains("AccessDeniedException"),
        "{line}"
    );
}

#[test]
fn transport_errors_are_one_clear_line() {
    let setup = Setup::new(KeyType::P256, false);
    // Connection refused: nothing listens on the port.
    let port = free_port();
    let line = failure(&common::run(
        setup
            .leaf_command()
            .args(["--endpoint", &format!("https://127.0.0.1:{port}")]),
    ));
    assert!(
        line.starts_with("cannot reach https://127.0.0.1:") && line.contains("after 3 attempts"),
        "{line}"
    );

    // Untrusted TLS: no CA bundle.
    let line = failure(&common::run(
        setup.leaf_command().env_remove("AWS_CA_BUNDLE"),
    ));
    assert!(
        line.contains("TLS handshake") && line.contains("--ca-bundle"),
        "{line}"
    );
    // ... and the same through --ca-bundle instead of the variable.
    credentials(&common::run(
        setup
            .leaf_command()
            .env_remove("AWS_CA_BUNDLE")
            .arg("--ca-bundle")
            .arg(&setup.ca_bundle),
    ));

    // Timeout: the emulator answers after 3 s, the client waits 1 s per attempt.
    setup.emulator.clear_received();
    setup.emulator.faults().delay(Duration::from_secs(3));
    let started = Instant::now();
    let line = failure(&common::run(setup.leaf_command().args(["--timeout", "1"])));
    setup.emulator.faults().clear();
    assert!(
        line.contains("no complete answer")
            && line.contains("within 1 s")
            && line.contains("3 attempts"),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn retries_follow_the_policy() {
    let setup = Setup::new(KeyType::P256, false);
    // Two failures, then success: three attempts, credentials printed.
    setup.emulator.faults().fail_next(2, 503);
    credentials(&common::run(&mut setup.leaf_command()));
    let statuses: Vec<u16> = setup.emulator.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 201]);

    // Four failures: one clear error after three attempts; the fourth is never sent.
    setup.emulator.clear_received();
    setup.emulator.faults().fail_next(4, 500);
    let line = failure(&common::run(&mut setup.leaf_command()));
    assert!(
        line.contains("(500 ") && line.contains("after 3 attempts"),
        "{line}"
    );
    assert_eq!(setup.emulator.received().len(), 3);
    setup.emulator.faults().clear();

    // Retry-After is respected.
    setup.emulator.clear_received();
    setup.emulator.faults().fail_next_retry_after(1, 429, 2);
    let started = Instant::now();
    credentials(&common::run(&mut setup.leaf_command()));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for Retry-After"
    );
    assert_eq!(
        setup
            .emulator
            .received()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        vec![429, 201]
    );
}

#[test]
fn bad_flags_fail_before_any_request() {
    let setup = Setup::new(KeyType::P256, false);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--session-duration", "100"],
            "--session-duration 100 is out of range",
        ),
        (vec!["--session-duration", "43201"], "out of range"),
        (
            vec!["--trust-anchor-arn", "nope"],
            "--trust-anchor-arn \"nope\" is not an ARN",
        ),
        (
            vec![
                "--profile-arn",
                "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/x",
            ],
            "regions don't match",
        ),
        (
            vec!["--role-arn", "arn:aws:iam::111122223333:user/x"],
            "is not a iam role ARN",
        ),
        (
            vec!["--cert-selector", "Key=x509Subject,Value=CN=x"],
            "not available on Linux",
        ),
        (vec!["--pkcs11-lib", "/x.so"], "PKCS#11"),
    ];
    for (args, expected) in cases {
        let line = failure(&common::run(setup.leaf_command().args(&args)));
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    let line = failure(&common::run(helper().args([
        "credential-process",
        "--certificate",
        "x.pem",
    ])));
    assert!(line.contains("--trust-anchor-arn is required"), "{line}");
    assert!(setup.emulator.received().is_empty(), "no request was sent");
}

#[test]
fn endpoint_flag_wins_over_the_environment() {
    let setup = Setup::new(KeyType::P256, false);
    // A dead endpoint in the environment does not matter when --endpoint is given...
    let dead = format!("https://127.0.0.1:{}", free_port());
    credentials(&common::run(
        setup
            .leaf_command()
            .env("AWS_ENDPOINT_URL_ROLESANYWHERE", &dead),
    ));
    // ...and the environment is used when it is not.
    let mut cmd = setup.bare_leaf_command();
    cmd.env("AWS_CA_BUNDLE", &setup.ca_bundle)
        .env("AWS_ENDPOINT_URL_ROLESANYWHERE", setup.emulator.url());
    credentials(&common::run(&mut cmd));
}

#[test]
fn fips_endpoint_keeps_the_plain_region_in_the_signature() {
    let setup = Setup::new(KeyType::P256, false);
    for fips in [vec!["--use-fips-endpoint"], vec![]] {
        let mut cmd = setup.bare_leaf_command();
        cmd.args(["--debug", "--connect-timeout", "1", "--timeout", "1"])
            // No network here: the point is where the request would go and what it signs.
            .env("HTTPS_PROXY", "http://127.0.0.1:9");
        if fips.is_empty() {
            cmd.env("AWS_USE_FIPS_ENDPOINT", "true");
        } else {
            cmd.args(&fips);
        }
        let out = common::run(&mut cmd);
        assert_eq!(out.status.code(), Some(1));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("https://rolesanywhere-fips.us-east-1.amazonaws.com"),
            "{log}"
        );
        assert!(
            log.contains("/us-east-1/rolesanywhere/aws4_request"),
            "plain region in the scope: {log}"
        );
    }
}
