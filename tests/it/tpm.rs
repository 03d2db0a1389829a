//! TPM 2.0 keys on swtpm, a software TPM that each test starts on its own Unix socket
//! with a fresh state: `TSS2 PRIVATE KEY` files made by tpm2-openssl (RSA-2048 with and
//! without a password, EC P-256, EC P-384) and a persistent key made with tpm2-tools,
//! each with a certificate issued by the dev PKI's CA, used by `credential-process`
//! against the emulator over HTTPS, by the AWS CLI, and by `serve` over refreshes; and
//! the refusals: a wrong password (sent once, counted once by the TPM), a policy key, a
//! key for another certificate, a missing device.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::{self, require_tool, run, run_ok};
use crate::credential_process::{
    PROFILE, REGION, ROLE, Setup, TA, credentials, failure, free_port,
};
use crate::serve_daemon::{Daemon, imds_credentials};

/// `openssl genpkey` options of the keys the tests make on the TPM.
const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "group:P-256"];
const P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "group:P-384"];
const RSA2048: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "bits:2048"];

/// A running swtpm with its own state directory, stopped when dropped.
struct Swtpm {
    child: Child,
    dir: tempfile::TempDir,
}

impl Swtpm {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Self::spawn(dir.path());
        Self { child, dir }
    }

    /// Stops swtpm and starts it again on the same state (a TPM gone for a while).
    fn restart_after(&mut self, pause: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.sock());
        std::thread::sleep(pause);
        self.child = Self::spawn(self.dir.path());
    }

    fn spawn(dir: &Path) -> Child {
        let sock = dir.join("sock");
        let child = Command::new(require_tool("swtpm"))
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.display()))
            .arg("--server")
            .arg(format!("type=unixio,path={}", sock.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}.ctrl", sock.display()))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "swtpm made no socket in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// `cmd` pointed at this TPM: tpm2-tools and tpm2-openssl through their swtpm TCTI,
    /// this helper through `$TPM_DEVICE`.
    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        let tcti = format!("swtpm:path={}", self.sock().display());
        cmd.env("TPM2TOOLS_TCTI", &tcti)
            .env("TPM2OPENSSL_TCTI", &tcti)
            .env("TPM_DEVICE", self.sock())
    }

    /// Runs a tpm2-tools command, then flushes what it left loaded: swtpm has no
    /// resource manager, and leaked objects soon fill its three slots.
    fn tool(&self, dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
        let out = run_ok(
            self.env(&mut Command::new(require_tool(name)))
                .current_dir(dir)
                .args(args),
        );
        run_ok(
            self.env(&mut Command::new(require_tool("tpm2_flushcontext")))
                .arg("-t"),
        );
        out
    }

    fn openssl(&self, dir: &Path, args: &[&str]) {
        run_ok(
            self.env(&mut Command::new(require_tool("openssl")))
                .current_dir(dir)
                .args(args),
        );
    }

    /// `TPM2_PT_LOCKOUT_COUNTER`: the failed authorisations the TPM has counted.
    fn lockout_counter(&self) -> u32 {
        let out = self.tool(Path::new("/"), "tpm2_getcap", &["properties-variable"]);
        let text = String::from_utf8(out).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("TPM2_PT_LOCKOUT_COUNTER:"))
            .unwrap_or_else(|| panic!("no lockout counter in:\n{text}"));
        let value = line.split(':').nth(1).unwrap().trim();
        u32::from_str_radix(value.trim_start_matches("0x"), 16).unwrap()
    }

    /// A key made by tpm2-openssl (`genpkey` options `algorithm`: [`P256`], [`P384`],
    /// [`RSA2048`]), with `password` if
    /// given, and its certificate issued by the dev PKI's root CA in `dir`:
    /// `NAME.tss.pem` and `NAME.pem`.
    /// An EC P-256, an EC P-384 and an RSA-2048 key (with `rsa_password`), each with its
    /// certificate, in the order the tests name them.
    fn three_keys(&self, dir: &Path, rsa_password: Option<&str>) -> [(PathBuf, PathBuf); 3] {
        [
            self.key_and_certificate(dir, "ec256", P256, None),
            self.key_and_certificate(dir, "ec384", P384, None),
            self.key_and_certificate(dir, "rsa", RSA2048, rsa_password),
        ]
    }

    fn key_and_certificate(
        &self,
        dir: &Path,
        name: &str,
        algorithm: &[&str],
        password: Option<&str>,
    ) -> (PathBuf, PathBuf) {
        let key = format!("{name}.tss.pem");
        let mut genpkey = vec!["genpkey", "-provider", "tpm2"];
        genpkey.extend_from_slice(algorithm);
        let auth = password.map(|p| format!("user-auth:{p}"));
        if let Some(auth) = &auth {
            genpkey.extend(["-pkeyopt", auth.as_str()]);
        }
        genpkey.extend(["-out", &key]);
        self.openssl(dir, &genpkey);
        self.certificate(dir, name, &key, password);
        (dir.join(&key), dir.join(format!("{name}.pem")))
    }

    /// `NAME.pem`: a leaf certificate for the TPM key `key` (a file or `handle:...`).
    fn certificate(&self, dir: &Path, name: &str, key: &str, password: Option<&str>) -> PathBuf {
        let csr = format!("{name}.csr");
        let passin = password.map(|p| format!("pass:{p}"));
        let mut req = vec![
            "req",
            "-new",
            "-provider",
            "tpm2",
            "-provider",
            "default",
            "-propquery",
            "?provider=tpm2",
            "-key",
            key,
            "-subj",
        ];
        let subject = format!("/CN={name}");
        req.extend([subject.as_str(), "-out", &csr]);
        if let Some(passin) = &passin {
            req.extend(["-passin", passin.as_str()]);
        }
        self.openssl(dir, &req);
        common::issue_from_root(
            dir,
            name,
            "30",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        )
    }

    /// A persistent EC P-256 key at `handle` (tpm2-tools' default attributes, no
    /// password), and its certificate `NAME.pem`.
    fn persistent_key(&self, dir: &Path, handle: &str, name: &str) -> PathBuf {
        self.persistent_key_with(dir, handle, &[]);
        self.certificate(dir, name, &format!("handle:{handle}"), None)
    }

    /// A persistent EC P-256 key at `handle`, made by `tpm2_create` with `extra`.
    fn persistent_key_with(&self, dir: &Path, handle: &str, extra: &[&str]) {
        self.tool(
            dir,
            "tpm2_createprimary",
            &["-Q", "-C", "o", "-c", "primary.ctx"],
        );
        let mut create = vec![
            "-Q",
            "-C",
            "primary.ctx",
            "-G",
            "ecc256",
            "-u",
            "p.pub",
            "-r",
            "p.priv",
        ];
        create.extend_from_slice(extra);
        self.tool(dir, "tpm2_create", &create);
        let load = [
            "-Q",
            "-C",
            "primary.ctx",
            "-u",
            "p.pub",
            "-r",
            "p.priv",
            "-c",
            "p.ctx",
        ];
        self.tool(dir, "tpm2_load", &load);
        self.tool(
            dir,
            "tpm2_evictcontrol",
            &["-Q", "-C", "o", "-c", "p.ctx", handle],
        );
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator (trusting the dev PKI) and a TPM.
fn setup() -> (Setup, Swtpm) {
    (Setup::new(KeyType::P256, false), Swtpm::start())
}

/// `credential-process` against the emulator with these identity arguments.
fn credential_process(setup: &Setup, tpm: &Swtpm, identity: &[&str]) -> std::process::Output {
    let mut cmd = setup.command();
    tpm.env(&mut cmd).args(identity);
    run(&mut cmd)
}

/// `credential-process` with `identity`, refused before any request with one line that
/// says `expected`.
fn refused_before_any_request(setup: &Setup, tpm: &Swtpm, identity: &[&str], expected: &str) {
    let line = failure(&credential_process(setup, tpm, identity));
    assert!(line.contains(expected), "{line}");
    assert!(setup.emulator.received().is_empty());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tss2_key_files_of_each_type_get_credentials() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let [ec256, ec384, rsa] = tpm.three_keys(dir, None);
    for (name, (key, cert)) in [
        ("EC P-256", &ec256),
        ("EC P-384", &ec384),
        ("RSA-2048", &rsa),
    ] {
        let out = credential_process(
            &setup,
            &tpm,
            &["--certificate", s(cert), "--private-key", s(key)],
        );
        let json = credentials(&out);
        assert!(
            json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
            "{name}: {json}"
        );
    }
    let received = setup.emulator.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.status == 201), "{received:?}");

    // The key beside the certificate in one file, as upstream's combined files.
    let combined = dir.join("combined.pem");
    let mut both = std::fs::read(&ec256.1).unwrap();
    both.extend(std::fs::read(&ec256.0).unwrap());
    std::fs::write(&combined, both).unwrap();
    std::fs::set_permissions(
        &combined,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    credentials(&credential_process(
        &setup,
        &tpm,
        &["--certificate", s(&combined)],
    ));

    // sign-string verifies against the certificate's key, with each digest.
    for digest in ["SHA256", "SHA384", "SHA512"] {
        let mut cmd = common::helper();
        tpm.env(&mut cmd).args([
            "sign-string",
            "--certificate",
            s(&ec384.1),
            "--private-key",
            s(&ec384.0),
            "--format",
            "bin",
            "--digest",
            digest,
        ]);
        assert!(!run_ok(&mut cmd).is_empty(), "{digest}");
    }
}

#[test]
fn an_rsa_key_with_a_password_takes_it_from_each_source() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "rsapw", RSA2048, Some("1234"));
    let pw_file = dir.join("tpm-password");
    std::fs::write(&pw_file, "1234\n").unwrap();
    std::fs::set_permissions(
        &pw_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let credentials_dir = dir.join("credentials");
    std::fs::create_dir(&credentials_dir).unwrap();
    std::fs::copy(&pw_file, credentials_dir.join("tpm-key-password")).unwrap();
    let identity = ["--certificate", s(&cert), "--private-key", s(&key)];
    let pw_arg = pw_file.display().to_string();
    let cred_dir = credentials_dir.display().to_string();
    // Each source: its arguments and its environment.
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, &[&str], Env); 4] = [
        ("flag", &["--tpm-key-password", "1234"], &[]),
        ("file flag", &["--tpm-key-password-file", &pw_arg], &[]),
        ("env", &[], &[("ROLESANYWHERE_TPM_KEY_PASSWORD", "1234")]),
        (
            "systemd credential",
            &[],
            &[("CREDENTIALS_DIRECTORY", &cred_dir)],
        ),
    ];
    for (source, args, env) in cases {
        let mut cmd = setup.command();
        tpm.env(&mut cmd)
            .args(identity)
            .args(args)
            .envs(env.iter().copied());
        let out = run(&mut cmd);
        credentials(&out);
        assert!(
            out.stderr.is_empty(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(tpm.lockout_counter(), 0);

    // Without any: one line saying how to give it, and the TPM is not asked.
    let line = failure(&credential_process(&setup, &tpm, &identity));
    assert!(
        line.contains("has a password (emptyAuth is not set) and none was given"),
        "{line}"
    );
    assert!(line.contains("--tpm-key-password-file"), "{line}");
    assert_eq!(tpm.lockout_counter(), 0);
}

#[test]
fn a_wrong_password_is_one_line_counted_once_and_never_retried_by_a_daemon() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "rsapw", RSA2048, Some("1234"));
    let identity = [
        "--certificate",
        s(&cert),
        "--private-key",
        s(&key),
        "--tpm-key-password",
        "4321",
    ];
    assert_eq!(tpm.lockout_counter(), 0);
    let line = failure(&credential_process(&setup, &tpm, &identity));
    assert!(
        line.contains(
            "was refused its password from --tpm-key-password by the TPM (TPM_RC_AUTH_FAIL"
        ),
        "{line}"
    );
    assert!(!line.contains("4321"), "{line}");
    assert_eq!(tpm.lockout_counter(), 1);
    assert!(setup.emulator.received().is_empty());

    // serve stops at the first refusal instead of retrying until the TPM locks.
    let mut cmd = setup.endpoint_subcommand("serve");
    tpm.env(&mut cmd).args(identity).args(["--port", "0"]);
    let out = common::Captured::spawn(&mut cmd).wait_within(Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{stderr}");
    assert!(stderr.contains("was refused its password"), "{stderr}");
    assert_eq!(tpm.lockout_counter(), 2, "{stderr}");
}

#[test]
fn a_persistent_handle_gets_credentials_with_and_without_0x() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let cert = tpm.persistent_key(dir, "0x81000101", "persistent");
    for handle in ["handle:0x81000101", "handle:81000101"] {
        let out = credential_process(
            &setup,
            &tpm,
            &[
                "--certificate",
                s(&cert),
                "--private-key",
                handle,
                "--no-tpm-key-password",
            ],
        );
        credentials(&out);
    }
    // Without --no-tpm-key-password the key may have a password: say so, ask nothing.
    let line = failure(&credential_process(
        &setup,
        &tpm,
        &[
            "--certificate",
            s(&cert),
            "--private-key",
            "handle:0x81000101",
        ],
    ));
    assert!(
        line.contains("may have a password and none was given"),
        "{line}"
    );
    let line = failure(&credential_process(
        &setup,
        &tpm,
        &[
            "--certificate",
            s(&cert),
            "--private-key",
            "handle:0x81000102",
            "--no-tpm-key-password",
        ],
    ));
    assert!(line.contains("does not exist in the TPM"), "{line}");
    assert_eq!(setup.emulator.received().len(), 2);
}

/// The AWS CLI runs `credential-process` with a TPM key and calls STS with what it got.
#[test]
fn the_aws_cli_uses_credentials_signed_by_a_tpm_key() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "ec", P256, None);
    let config = setup.path("aws-config");
    let line = format!(
        "credential_process = {} credential-process --certificate {} --private-key {} --trust-anchor-arn {TA} --profile-arn {PROFILE} --role-arn {ROLE} --endpoint {}",
        common::bin().display(),
        cert.display(),
        key.display(),
        setup.emulator.url()
    );
    std::fs::write(
        &config,
        format!("[profile ra]\nregion = {REGION}\n{line}\n"),
    )
    .unwrap();
    let aws_env = setup.aws_env(&config);
    let identity = setup.caller_identity("ra", |cmd| {
        aws_env(cmd);
        cmd.env("TPM_DEVICE", tpm.sock());
    });
    let arn = identity["Arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::111122223333:assumed-role/onprem-app/"),
        "{arn}"
    );
}

/// A key file with a policy: one line, before the TPM or the service is asked.
#[test]
fn a_policy_key_is_refused_with_one_line() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "ec", P256, None);
    let blocks = rolesanywhere_helper::x509::pem::blocks(&std::fs::read(&key).unwrap()).unwrap();
    let der = &blocks[0].der;
    // The outer SEQUENCE (long form, one length byte for these sizes), the OID, then
    // `[0] emptyAuth`: a `[1] policy` with one TPMPolicy goes right after it.
    assert_eq!(&der[..2], &[0x30, 0x81]);
    let body = &der[3..];
    let split = 8 + 5;
    let policy = [
        0xA1, 0x0E, 0x30, 0x0C, 0x30, 0x0A, 0xA0, 0x04, 0x02, 0x02, 0x01, 0x6B, 0xA1, 0x02, 0x04,
        0x00,
    ];
    let mut new_body = body[..split].to_vec();
    new_body.extend_from_slice(&policy);
    new_body.extend_from_slice(&body[split..]);
    let len = u16::try_from(new_body.len()).unwrap().to_be_bytes();
    let mut new_der = vec![0x30, 0x82, len[0], len[1]];
    new_der.extend(new_body);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&new_der);
    let pem = format!("-----BEGIN TSS2 PRIVATE KEY-----\n{b64}\n-----END TSS2 PRIVATE KEY-----\n");
    let policy_key = dir.join("policy.tss.pem");
    std::fs::write(&policy_key, pem).unwrap();
    std::fs::set_permissions(
        &policy_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    refused_before_any_request(
        &setup,
        &tpm,
        &["--certificate", s(&cert), "--private-key", s(&policy_key)],
        "is a TPM key with a policy, which this helper does not support",
    );
}

#[test]
fn a_key_for_another_certificate_is_refused_before_any_request() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, _) = tpm.key_and_certificate(dir, "one", P256, None);
    let (_, other_cert) = tpm.key_and_certificate(dir, "two", P256, None);
    refused_before_any_request(
        &setup,
        &tpm,
        &["--certificate", s(&other_cert), "--private-key", s(&key)],
        "does not match the certificate \"CN=two\"",
    );
}

#[test]
fn a_missing_device_is_one_line_naming_tpm_device() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "ec", P256, None);
    let gone = dir.join("no-such-tpm");
    let mut cmd = setup.command();
    tpm.env(&mut cmd).env("TPM_DEVICE", &gone).args([
        "--certificate",
        s(&cert),
        "--private-key",
        s(&key),
    ]);
    let line = failure(&run(&mut cmd));
    assert!(
        line.contains(&format!("$TPM_DEVICE={}", gone.display())),
        "{line}"
    );
    // Without $TPM_DEVICE, on a host without a TPM (the test machines): the defaults.
    if !Path::new("/dev/tpmrm0").exists() && !Path::new("/dev/tpm0").exists() {
        let mut cmd = setup.command();
        cmd.args(["--certificate", s(&cert), "--private-key", s(&key)]);
        let line = failure(&run(&mut cmd));
        assert!(
            line.contains("no TPM device ($TPM_DEVICE is not set, and neither /dev/tpmrm0 nor /dev/tpm0 exists)"),
            "{line}"
        );
    }
    assert!(setup.emulator.received().is_empty());
}

/// `serve` with 20-second sessions from a config-file role whose key is a persistent TPM
/// handle, and a second role with a key file: each refreshes its credentials.
#[test]
fn serve_refreshes_tpm_keys_from_a_config_file() {
    let setup = Setup::short_sessions(KeyType::P256, false, 20);
    let tpm = Swtpm::start();
    let dir = setup.dir.path();
    let handle_cert = tpm.persistent_key(dir, "0x81000101", "persistent");
    let (key, cert) = tpm.key_and_certificate(dir, "ec", P256, None);
    let (a, b) = (free_port(), free_port());
    let role = |name: &str, port: u16, cert: &Path, key: &str, extra: &str| {
        format!(
            "[[role]]\nname = \"{name}\"\ncertificate = \"{}\"\nprivate_key = \"{key}\"\n{extra}trust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"{ROLE}\"\nendpoint = \"{}\"\nca_bundle = \"{}\"\nimds = \"127.0.0.1:{port}\"\n\n",
            cert.display(),
            setup.emulator.url(),
            setup.ca_bundle.display(),
        )
    };
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        role(
            "persistent",
            a,
            &handle_cert,
            "handle:0x81000101",
            "no_tpm_key_password = true\n",
        ) + &role("file", b, &cert, s(&key), ""),
    )
    .unwrap();
    let mut cmd = common::helper();
    tpm.env(&mut cmd).args(["serve", "--config"]).arg(&config);
    let d = Daemon::start(cmd);
    let mut keys: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let end = Instant::now() + Duration::from_secs(27);
    while Instant::now() < end {
        for (i, port) in [a, b].into_iter().enumerate() {
            let reply = imds_credentials(port, "onprem-app");
            assert_eq!(reply.status, 200, "{reply:?}\n{}", d.log());
            let key = reply.json()["AccessKeyId"].as_str().unwrap().to_owned();
            if keys[i].last() != Some(&key) {
                keys[i].push(key);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for (i, seen) in keys.iter().enumerate() {
        assert!(
            seen.len() >= 2,
            "role {i}: one set of credentials in 27 s\n{}",
            d.log()
        );
    }
    assert!(
        d.log().matches("credentials refreshed").count() >= 4,
        "{}",
        d.log()
    );
}

/// `update --once` writes credentials signed by a TPM key; `read-certificate-data` reads
/// the certificate of a combined certificate+TPM key file; `sign-string` signs with a
/// persistent key.
#[test]
fn update_read_certificate_data_and_sign_string_take_tpm_keys() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "ec", P256, None);
    let file = dir.join("credentials");
    let mut cmd = setup.endpoint_subcommand("update");
    tpm.env(&mut cmd)
        .env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .args(["--certificate", s(&cert), "--private-key", s(&key)])
        .args(["--profile", "tpm", "--once"]);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("[tpm]\naws_access_key_id = ASIA"), "{text}");

    let combined = dir.join("combined.pem");
    let mut both = std::fs::read(&cert).unwrap();
    both.extend(std::fs::read(&key).unwrap());
    std::fs::write(&combined, both).unwrap();
    let mut cmd = common::helper();
    cmd.args(["read-certificate-data", "--certificate", s(&combined)]);
    let json = common::json_stdout(&run(&mut cmd), "read-certificate-data");
    assert_eq!(json["keyType"], "EC");

    let handle_cert = tpm.persistent_key(dir, "0x81000101", "persistent");
    let mut cmd = common::helper();
    tpm.env(&mut cmd).args([
        "sign-string",
        "--certificate",
        s(&handle_cert),
        "--private-key",
        "handle:0x81000101",
        "--no-tpm-key-password",
        "--format",
        "text",
    ]);
    let hex = String::from_utf8(run_ok(&mut cmd)).unwrap();
    assert!(hex.starts_with("30"), "a DER ECDSA signature: {hex}");
}

/// TPM 2.0 has no ML-DSA: a TPM key given for an ML-DSA certificate is refused in one
/// line that says so, rather than as a mismatch.
#[test]
fn a_tpm_key_for_an_ml_dsa_certificate_is_refused_with_one_line() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let (key, _) = tpm.key_and_certificate(dir, "ec", P256, None);
    let mldsa = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mldsa/mldsa65-cert.pem");
    refused_before_any_request(
        &setup,
        &tpm,
        &["--certificate", s(&mldsa), "--private-key", s(&key)],
        "ML-DSA keys in a TPM are not supported",
    );
}

/// `serve` with 20-second sessions on a TPM key whose TPM goes away for longer than a
/// session: the daemon keeps running (a missing device is worth waiting for), answers an
/// error naming the TPM once the credentials expire, and recovers when the TPM is back.
#[test]
fn serve_waits_for_a_tpm_that_went_away_and_recovers() {
    let setup = Setup::short_sessions(KeyType::P256, false, 20);
    let mut tpm = Swtpm::start();
    let dir = setup.dir.path();
    let (key, cert) = tpm.key_and_certificate(dir, "ec", P256, None);
    let mut cmd = setup.endpoint_subcommand("serve");
    tpm.env(&mut cmd)
        .args(["--certificate", s(&cert), "--private-key", s(&key)]);
    let d = Daemon::start(cmd);
    let first = imds_credentials(d.port, "onprem-app");
    assert_eq!(first.status, 200, "{first:?}");
    let first_key = first.json()["AccessKeyId"].as_str().unwrap().to_owned();

    // Gone for 30 s: the 20-second credentials expire meanwhile.
    let stopped = Instant::now();
    let _ = tpm.child.kill();
    let _ = tpm.child.wait();
    let error = loop {
        assert!(
            stopped.elapsed() < Duration::from_secs(28),
            "no error while the TPM was away\n{}",
            d.log()
        );
        let reply = imds_credentials(d.port, "onprem-app");
        if reply.status != 200 {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(error.status, 503, "{error:?}");
    let message = error.json()["Message"].as_str().unwrap().to_owned();
    assert!(message.contains("TPM"), "{message}");
    tpm.restart_after(Duration::from_secs(30).saturating_sub(stopped.elapsed()));

    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        assert!(
            Instant::now() < deadline,
            "no recovery 45 s after the TPM came back\n{}",
            d.log()
        );
        let reply = imds_credentials(d.port, "onprem-app");
        if reply.status == 200 {
            assert_ne!(reply.json()["AccessKeyId"].as_str().unwrap(), first_key);
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Keys a password session cannot make sign are refused with one line, before any
/// request: a decrypt-only key (as upstream's tests) and a key a policy alone authorises.
#[test]
fn decrypt_only_and_policy_only_keys_are_refused_with_one_line() {
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let cert = tpm.persistent_key(dir, "0x81000101", "signer");
    let cases = [
        (
            "0x81000102",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt",
            "cannot sign (it is a decryption or storage key)",
        ),
        (
            "0x81000103",
            "fixedtpm|fixedparent|sensitivedataorigin|sign",
            "is authorised by a policy only (userWithAuth is clear)",
        ),
    ];
    for (handle, attributes, problem) in cases {
        tpm.persistent_key_with(dir, handle, &["-a", attributes]);
        let key = format!("handle:{handle}");
        let line = failure(&credential_process(
            &setup,
            &tpm,
            &[
                "--certificate",
                s(&cert),
                "--private-key",
                &key,
                "--no-tpm-key-password",
            ],
        ));
        assert!(line.contains(problem), "{line}");
    }
    assert!(setup.emulator.received().is_empty());
}

/// The official helper and this one, given the same TPM keys, certificates and emulator:
/// both get credentials (when the official helper is there, see [`crate::conformance`]).
#[test]
fn the_official_helper_and_this_one_take_the_same_tpm_keys() {
    use crate::conformance::{Peer, SIDES};
    let Some(peer) = Peer::get() else {
        return;
    };
    let (setup, tpm) = setup();
    let dir = setup.dir.path();
    let [ec256, ec384, rsa] = tpm.three_keys(dir, Some("1234"));
    let handle_cert = tpm.persistent_key(dir, "0x81000101", "persistent");
    let path = |p: &Path| p.display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![
            "--certificate".into(),
            path(&ec256.1),
            "--private-key".into(),
            path(&ec256.0),
        ],
        vec![
            "--certificate".into(),
            path(&ec384.1),
            "--private-key".into(),
            path(&ec384.0),
        ],
        vec![
            "--certificate".into(),
            path(&rsa.1),
            "--private-key".into(),
            path(&rsa.0),
            "--tpm-key-password".into(),
            "1234".into(),
        ],
        vec![
            "--certificate".into(),
            path(&handle_cert),
            "--private-key".into(),
            "handle:0x81000101".into(),
            "--no-tpm-key-password".into(),
        ],
    ];
    let env = [
        ("AWS_CA_BUNDLE", path(&setup.ca_bundle)),
        ("TPM_DEVICE", path(&tpm.sock())),
    ];
    for identity in &cases {
        let mut args: Vec<String> = [
            "credential-process",
            "--trust-anchor-arn",
            TA,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
            "--endpoint",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(setup.emulator.url());
        args.extend(identity.iter().cloned());
        for side in SIDES {
            let out = peer.run(side, &args, &env);
            let json = credentials(&out);
            assert!(
                json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
                "{side:?} {identity:?}"
            );
        }
    }
    assert_eq!(setup.emulator.received().len(), 2 * cases.len());
}
