//! PKCS#11 tokens on SoftHSM2: credentials from the emulator with RSA-2048 and P-256 keys
//! kept on a token, in the three arrangements (both on the token, certificate file and key
//! on the token, key URI alone), by label and by id, through SoftHSM's module and through
//! p11-kit's proxy; `serve` on a token, and surviving the token's re-creation; signatures
//! checked by openssl; PIN sources; `CKA_ALWAYS_AUTHENTICATE`; the chain of real issuers;
//! the listing of `read-certificate-data`; and each failure as one line.
//!
//! Every test makes its own SoftHSM configuration and token folder (`SOFTHSM2_CONF` set
//! on the commands it runs), so tests run in parallel. Commands run in a new session
//! without a controlling terminal, as under an SDK or systemd, so none can stop to ask
//! for a PIN.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rolesanywhere_helper::identity::Certificate;
use rolesanywhere_helper::pki::KeyType;

use crate::common::{openssl, require_tool, run, run_ok};
use crate::credential_process::{PROFILE, Setup, credentials, failure};
use crate::serve_daemon::{Daemon, imds_credentials};

/// Distinctive PINs, so that a test can tell one never reaches the output.
const PIN: &str = "ra-pin-4711";
const SO_PIN: &str = "ra-so-pin-0815";
const TOKEN: &str = "ra-test";
const ROLE_NAME: &str = "onprem-app";

/// SoftHSM2's module where Debian installs it.
fn softhsm_module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!("SoftHSM2's module (libsofthsm2.so) is not installed; run tests/run.sh, which installs softhsm2")
    })
}

/// Detaches a command from the controlling terminal (a new session), so that a missing
/// PIN is an error and never a prompt, whoever runs the tests.
fn detached(cmd: &mut Command) -> &mut Command {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        })
    }
}

/// A SoftHSM2 instance of its own: a configuration file and a token folder.
struct Hsm {
    dir: tempfile::TempDir,
}

impl Hsm {
    fn new() -> Self {
        Self::with_config("")
    }

    /// With extra lines in `softhsm2.conf` (such as `slots.mechanisms`).
    fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n{extra}\n",
                tokens.display()
            ),
        )
        .unwrap();
        write_secret(&dir.path().join("pin"), &format!("{PIN}\n"));
        Self { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The file holding the user PIN.
    fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(require_tool(name));
        cmd.env("SOFTHSM2_CONF", self.conf());
        cmd
    }

    fn init_token(&self, label: &str) {
        run_ok(self.tool("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ]));
    }

    fn delete_token(&self, label: &str) {
        run_ok(
            self.tool("softhsm2-util")
                .args(["--delete-token", "--token", label]),
        );
    }

    /// A PKCS#8 PEM key pair (private and public objects) with `label` and `id` (hex).
    fn import_key(&self, token: &str, key_pem: &Path, label: &str, id: &str) {
        run_ok(
            self.tool("softhsm2-util")
                .arg("--import")
                .arg(key_pem)
                .args(["--token", token, "--label", label, "--id", id, "--pin", PIN]),
        );
    }

    /// One object written with pkcs11-tool: `kind` is cert, privkey or pubkey; `file` DER.
    fn write_object(
        &self,
        token: &str,
        file: &Path,
        kind: &str,
        label: &str,
        id: &str,
        extra: &[&str],
    ) {
        run_ok(
            self.tool("pkcs11-tool")
                .arg("--module")
                .arg(softhsm_module())
                .args([
                    "--token-label",
                    token,
                    "--login",
                    "--pin",
                    PIN,
                    "--write-object",
                ])
                .arg(file)
                .args(["--type", kind, "--label", label, "--id", id])
                .args(extra),
        );
    }
}

/// A file only its owner can read, as PIN files must be.
fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The first certificate of a PEM file written as DER next to it.
fn der_of(pem: &Path) -> PathBuf {
    let bytes = std::fs::read(pem).unwrap();
    let blocks = rolesanywhere_helper::identity::pem::blocks(&bytes).unwrap();
    let cert = blocks.iter().find(|b| b.label == "CERTIFICATE").unwrap();
    let out = pem.with_extension("der");
    std::fs::write(&out, &*cert.der).unwrap();
    out
}

/// An emulator over HTTPS trusting a dev PKI with an intermediate, and a token holding the
/// leaf's key pair and certificate (label `leaf`, id 01), the intermediate (`intermediate`,
/// 02) and the root (`root`, 03).
struct Fixture {
    setup: Setup,
    hsm: Hsm,
}

impl Fixture {
    fn new(key_type: KeyType) -> Self {
        Self::on(Setup::new(key_type, true), Hsm::new())
    }

    fn on(setup: Setup, hsm: Hsm) -> Self {
        let fixture = Self { setup, hsm };
        fixture.fill_token();
        fixture
    }

    /// Makes the token and stores the PKI's objects on it.
    fn fill_token(&self) {
        let hsm = &self.hsm;
        hsm.init_token(TOKEN);
        hsm.import_key(TOKEN, &self.setup.path("leaf.key"), "leaf", "01");
        let certificates = [
            ("leaf.pem", "leaf", "01"),
            ("intermediate-ca.pem", "intermediate", "02"),
            ("root-ca.pem", "root", "03"),
        ];
        for (file, label, id) in certificates {
            let path = self.setup.path(file);
            if path.exists() {
                hsm.write_object(TOKEN, &der_of(&path), "cert", label, id, &[]);
            }
        }
    }

    /// `subcommand` against the emulator, with the token's configuration, detached.
    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = self.setup.endpoint_subcommand(subcommand);
        cmd.env("SOFTHSM2_CONF", self.hsm.conf());
        detached(&mut cmd);
        cmd
    }

    /// `sign-string` (no endpoint) with the token's configuration, detached.
    fn sign_string(&self) -> Command {
        let mut cmd = crate::common::helper();
        cmd.arg("sign-string").env("SOFTHSM2_CONF", self.hsm.conf());
        detached(&mut cmd);
        cmd
    }

    fn received_201s(&self) -> usize {
        self.setup
            .emulator
            .received()
            .iter()
            .filter(|r| r.status == 201)
            .count()
    }
}

/// The three arrangements of certificate and key.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `--certificate pkcs11:…`: the key is found from the certificate.
    BothOnToken,
    /// `--certificate FILE --private-key pkcs11:…`.
    CertificateFile,
    /// `--private-key pkcs11:…` alone: the certificate is found from the key.
    KeyOnly,
}

const MODES: [Mode; 3] = [Mode::BothOnToken, Mode::CertificateFile, Mode::KeyOnly];

/// The identity flags of `mode`, naming the objects by label or by id, with the module
/// given (`--pkcs11-lib`) or the default (p11-kit's proxy), and the PIN from a file.
fn identity_args(fixture: &Fixture, mode: Mode, by_id: bool, direct: bool) -> Vec<String> {
    let object = if by_id { "id=%01" } else { "object=leaf" };
    let uri = format!("pkcs11:token={TOKEN};{object}");
    let mut args: Vec<String> = match mode {
        Mode::BothOnToken => vec!["--certificate".into(), uri],
        Mode::CertificateFile => vec![
            "--certificate".into(),
            fixture
                .setup
                .path("leaf-fullchain.pem")
                .display()
                .to_string(),
            "--private-key".into(),
            uri,
        ],
        Mode::KeyOnly => vec!["--private-key".into(), uri],
    };
    if direct {
        args.push("--pkcs11-lib".into());
        args.push(softhsm_module().display().to_string());
    }
    args.push("--pkcs11-pin-file".into());
    args.push(fixture.hsm.pin_file().display().to_string());
    args
}

fn credential_process_everywhere(key_type: KeyType) {
    let fixture = Fixture::new(key_type);
    for mode in MODES {
        for by_id in [false, true] {
            for direct in [true, false] {
                let what = format!(
                    "{key_type:?} {mode:?} by {} through {}",
                    if by_id { "id" } else { "label" },
                    if direct {
                        "--pkcs11-lib"
                    } else {
                        "p11-kit-proxy"
                    }
                );
                let out = run(fixture
                    .command("credential-process")
                    .args(identity_args(&fixture, mode, by_id, direct)));
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                credentials(&out);
                let last = fixture.setup.emulator.received().pop().unwrap();
                assert_eq!(last.status, 201, "{what}: {last:?}");
                // The intermediate: from the token's real issuers, or from the fullchain file.
                assert_eq!(
                    last.chain_len, 1,
                    "{what}: the chain is the intermediate alone"
                );
            }
        }
    }
    assert_eq!(fixture.received_201s(), 12);
}

#[test]
fn credential_process_rsa_2048_on_a_token() {
    credential_process_everywhere(KeyType::Rsa2048);
}

#[test]
fn credential_process_p256_on_a_token() {
    credential_process_everywhere(KeyType::P256);
}

fn serve_everywhere(key_type: KeyType) {
    let fixture = Fixture::new(key_type);
    // Each mode by label and by id, the two spread over the two module paths.
    let cases = [
        (Mode::BothOnToken, false, true),
        (Mode::BothOnToken, true, false),
        (Mode::CertificateFile, true, true),
        (Mode::CertificateFile, false, false),
        (Mode::KeyOnly, false, true),
        (Mode::KeyOnly, true, false),
    ];
    for (mode, by_id, direct) in cases {
        let what = format!("{key_type:?} {mode:?} by_id={by_id} direct={direct}");
        let mut cmd = fixture.command("serve");
        cmd.args(identity_args(&fixture, mode, by_id, direct));
        let daemon = Daemon::start(cmd);
        let reply = imds_credentials(daemon.port, ROLE_NAME);
        assert_eq!(reply.status, 200, "{what}: {reply:?}\n{}", daemon.log());
        assert!(
            reply.json()["AccessKeyId"]
                .as_str()
                .unwrap()
                .starts_with("ASIA")
        );
    }
    assert_eq!(fixture.received_201s(), cases.len());
}

#[test]
fn serve_rsa_2048_on_a_token() {
    serve_everywhere(KeyType::Rsa2048);
}

#[test]
fn serve_p256_on_a_token() {
    serve_everywhere(KeyType::P256);
}

/// The fixed string `sign-string` signs, for the public key of `certificate`.
fn fixed_string(certificate: &Path) -> Vec<u8> {
    let der = std::fs::read(der_of(certificate)).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    rolesanywhere_helper::cmd::sign_string::fixed_string(cert.public_key())
}

/// Checks a signature of the fixed string with `openssl dgst`.
fn openssl_verifies(dir: &Path, certificate: &Path, signature: &[u8], digest: &str) {
    std::fs::write(dir.join("data"), fixed_string(certificate)).unwrap();
    std::fs::write(dir.join("signature"), signature).unwrap();
    let public = openssl(
        dir,
        &[
            "x509",
            "-in",
            certificate.to_str().unwrap(),
            "-pubkey",
            "-noout",
        ],
    );
    std::fs::write(dir.join("public.pem"), public).unwrap();
    let out = openssl(
        dir,
        &[
            "dgst",
            &format!("-{digest}"),
            "-verify",
            "public.pem",
            "-signature",
            "signature",
            "data",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");
}

#[test]
fn sign_string_with_token_keys_verifies_with_openssl() {
    for key_type in [KeyType::Rsa2048, KeyType::P256] {
        let fixture = Fixture::new(key_type);
        let dir = fixture.hsm.dir.path();
        let leaf = fixture.setup.path("leaf.pem");
        for (digest, flag) in [
            ("sha256", "SHA256"),
            ("sha384", "SHA384"),
            ("sha512", "SHA512"),
        ] {
            for direct in [true, false] {
                for mode in [Mode::BothOnToken, Mode::KeyOnly] {
                    let signature = run_ok(
                        fixture
                            .sign_string()
                            .args(identity_args(&fixture, mode, false, direct))
                            .args(["--digest", flag, "--format", "bin"]),
                    );
                    openssl_verifies(dir, &leaf, &signature, digest);
                }
            }
        }
    }
}

#[test]
fn rsa_without_ckm_sha256_rsa_pkcs_signs_with_ckm_rsa_pkcs() {
    let hsm = Hsm::with_config(
        // SoftHSM 2.6 reads the leading '-' as part of the first name: it is repeated.
        "slots.mechanisms = -CKM_SHA256_RSA_PKCS,CKM_SHA256_RSA_PKCS,CKM_SHA384_RSA_PKCS,CKM_SHA512_RSA_PKCS",
    );
    let fixture = Fixture::on(Setup::new(KeyType::Rsa2048, true), hsm);
    let dir = fixture.hsm.dir.path();
    // The token really lacks it.
    let listed = run_ok(
        fixture
            .hsm
            .tool("pkcs11-tool")
            .arg("--module")
            .arg(softhsm_module())
            .args(["--token-label", TOKEN, "--list-mechanisms"]),
    );
    let listed = String::from_utf8_lossy(&listed);
    let offers = |name: &str| {
        listed
            .lines()
            .any(|l| l.trim().starts_with(&format!("{name},")))
    };
    assert!(
        offers("RSA-PKCS") && !offers("SHA256-RSA-PKCS") && !offers("SHA512-RSA-PKCS"),
        "{listed}"
    );
    for digest in ["SHA256", "SHA512"] {
        let signature = run_ok(
            fixture
                .sign_string()
                .args(identity_args(&fixture, Mode::BothOnToken, true, true))
                .args(["--digest", digest, "--format", "bin"]),
        );
        openssl_verifies(
            dir,
            &fixture.setup.path("leaf.pem"),
            &signature,
            &digest.to_lowercase(),
        );
    }
    credentials(&run(fixture
        .command("credential-process")
        .args(identity_args(&fixture, Mode::BothOnToken, true, true))));
}

#[test]
fn every_pin_source_logs_in() {
    let fixture = Fixture::new(KeyType::P256);
    let module = softhsm_module();
    let pin_file = fixture.hsm.pin_file();
    let creds = tempfile::tempdir().unwrap();
    write_secret(&creds.path().join("pkcs11-pin"), PIN);
    // Readable by its group (root:ssl-cert 0640), as the official helper's users keep
    // PIN files: used, since no other account can read it.
    let group_readable = fixture.hsm.dir.path().join("group-pin");
    write_secret(&group_readable, PIN);
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&group_readable, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let base = format!("pkcs11:token={TOKEN};object=leaf");
    /// What the case is, the `--certificate` value and flags after it, the environment.
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        ("pin-value", vec![format!("{base}?pin-value={PIN}")], vec![]),
        (
            "pin-source=file:",
            vec![format!("{base}?pin-source=file:{}", pin_file.display())],
            vec![],
        ),
        (
            "pin-source path",
            vec![format!("{base}?pin-source={}", pin_file.display())],
            vec![],
        ),
        (
            "--pkcs11-pin-file",
            vec![
                base.clone(),
                "--pkcs11-pin-file".into(),
                pin_file.display().to_string(),
            ],
            vec![],
        ),
        (
            "group-readable --pkcs11-pin-file",
            vec![
                base.clone(),
                "--pkcs11-pin-file".into(),
                group_readable.display().to_string(),
            ],
            vec![],
        ),
        (
            "$ROLESANYWHERE_PKCS11_PIN",
            vec![base.clone()],
            vec![("ROLESANYWHERE_PKCS11_PIN", PIN.to_owned())],
        ),
        (
            "systemd credential",
            vec![base.clone()],
            vec![("CREDENTIALS_DIRECTORY", creds.path().display().to_string())],
        ),
    ];
    for (what, args, env) in cases {
        let mut cmd = fixture.sign_string();
        cmd.arg("--certificate")
            .args(&args)
            .arg("--pkcs11-lib")
            .arg(&module);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // --debug tells the steps, never the PIN.
        let out = run(cmd.arg("--debug"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {stderr}");
        assert!(stderr.contains("PKCS#11 objects found"), "{what}: {stderr}");
        assert!(!stderr.contains(PIN), "{what}: the PIN in {stderr}");
    }
}

#[test]
fn an_interactive_command_asks_for_the_pin_on_the_terminal() {
    let fixture = Fixture::new(KeyType::P256);
    // `script` gives the command a terminal of its own and types what it reads from stdin.
    let helper = crate::common::bin();
    let line = format!(
        "{} sign-string --certificate 'pkcs11:token={TOKEN};object=leaf' --pkcs11-lib {} --format text",
        helper.display(),
        softhsm_module().display()
    );
    let mut child = Command::new(require_tool("script"))
        .args(["-qec", &line, "/dev/null"])
        .env("SOFTHSM2_CONF", fixture.hsm.conf())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Type the PIN once the question shows (echo is off by then).
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("PIN for token") {
        use std::io::Read as _;
        let n = stdout.read(&mut buffer).unwrap();
        assert!(n > 0, "no question: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{PIN}").unwrap();
    }
    {
        use std::io::Read as _;
        stdout.read_to_end(&mut seen).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Please enter your user PIN for token \"ra-test\": "),
        "{text}"
    );
    assert!(!text.contains(PIN), "the PIN was echoed: {text}");
    let signature = text.rsplit(": ").next().unwrap().trim();
    assert!(
        signature.len() >= 140 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "{text}"
    );
}

#[test]
fn failures_are_one_clear_line() {
    let fixture = Fixture::new(KeyType::P256);
    // A second key pair, so that a token-wide key URI matches two keys.
    let other = fixture.hsm.dir.path().join("other.key");
    openssl(
        fixture.hsm.dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            other.to_str().unwrap(),
        ],
    );
    fixture.hsm.import_key(TOKEN, &other, "other", "09");
    let module = softhsm_module().display().to_string();
    let pin_file = fixture.hsm.pin_file().display().to_string();
    let wrong = fixture.hsm.dir.path().join("wrong");
    write_secret(&wrong, "wrong-pin-9999");
    let wrong = wrong.display().to_string();
    let shared = fixture.hsm.dir.path().join("shared-pin");
    std::fs::write(&shared, PIN).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let shared = shared.display().to_string();
    let pin_dir = fixture.hsm.dir.path().join("pin-dir");
    std::fs::create_dir(&pin_dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pin_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let pin_dir = pin_dir.display().to_string();
    let leaf = format!("pkcs11:token={TOKEN};object=leaf");
    let cases: Vec<(&str, Vec<String>, &[&str])> = vec![
        (
            "wrong PIN",
            vec![
                "--certificate".into(),
                leaf.clone(),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                wrong,
            ],
            &[
                "token \"ra-test\" refused the user PIN from the file",
                "as incorrect",
            ],
        ),
        (
            "PIN file others can read",
            vec![
                "--certificate".into(),
                leaf.clone(),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                shared,
            ],
            &["can be read by others (mode 0644)", "chmod 600"],
        ),
        (
            "directory as PIN file",
            vec![
                "--certificate".into(),
                leaf.clone(),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                pin_dir.clone(),
            ],
            &["is a directory, not a file; give the PIN file itself"],
        ),
        (
            "missing PIN",
            vec![
                "--certificate".into(),
                leaf.clone(),
                "--pkcs11-lib".into(),
                module.clone(),
            ],
            &["token \"ra-test\" needs the user PIN", "--pkcs11-pin-file"],
        ),
        (
            "ambiguous key URI",
            vec![
                "--private-key".into(),
                format!("pkcs11:token={TOKEN}"),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                pin_file.clone(),
            ],
            &[
                "matches 2 private keys",
                "\"leaf\" (id %01)",
                "\"other\" (id %09)",
                "add object= or id=",
            ],
        ),
        (
            "ambiguous certificate URI",
            vec![
                "--certificate".into(),
                format!("pkcs11:token={TOKEN}"),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                pin_file.clone(),
            ],
            &["matches 3 certificates", "add object= or id="],
        ),
        (
            "no such object",
            vec![
                "--certificate".into(),
                format!("pkcs11:token={TOKEN};object=nothing"),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                pin_file.clone(),
            ],
            &[
                "matches no certificate on token \"ra-test\"",
                "read-certificate-data",
            ],
        ),
        (
            "no such key",
            vec![
                "--private-key".into(),
                format!("pkcs11:token={TOKEN};id=%42"),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                pin_file.clone(),
            ],
            &["matches no private key on token \"ra-test\""],
        ),
        (
            "no such token",
            vec![
                "--certificate".into(),
                "pkcs11:token=elsewhere".into(),
                "--pkcs11-lib".into(),
                module.clone(),
            ],
            &["matches no token", "tokens present: \"ra-test\""],
        ),
        (
            "module not found",
            vec![
                "--certificate".into(),
                leaf.clone(),
                "--pkcs11-lib".into(),
                "/nonexistent/libpkcs11.so".into(),
            ],
            &[
                "PKCS#11 module /nonexistent/libpkcs11.so cannot be loaded",
                "--pkcs11-lib",
            ],
        ),
        (
            "malformed URI",
            vec![
                "--certificate".into(),
                format!("pkcs11:token={TOKEN};object=%zz?pin-value=secret"),
            ],
            &[
                "malformed PKCS#11 URI",
                "bad percent-encoding",
                "pin-value=[redacted]",
            ],
        ),
        (
            "type of another object",
            vec![
                "--private-key".into(),
                format!("pkcs11:token={TOKEN};object=leaf;type=cert"),
                "--pkcs11-lib".into(),
                module.clone(),
                "--pkcs11-pin-file".into(),
                pin_file.clone(),
            ],
            &["has type=cert, but --private-key needs type=private"],
        ),
        (
            "modules that disagree",
            vec![
                "--certificate".into(),
                format!("{leaf}?module-path=/usr/lib/a.so"),
                "--pkcs11-lib".into(),
                module.clone(),
            ],
            &["name different modules"],
        ),
    ];
    for (what, args, wants) in cases {
        let out = run(fixture.command("credential-process").args(&args));
        let line = failure(&out);
        for want in wants {
            assert!(
                line.contains(want),
                "{what}: {line:?} should contain {want:?}"
            );
        }
        assert!(
            !line.contains("secret") && !line.contains("9999") && !line.contains(PIN),
            "{what}: a PIN in {line}"
        );
    }
    // Nothing reached the service.
    assert!(fixture.setup.emulator.received().is_empty());
}

#[test]
fn the_chain_holds_only_real_issuers_from_the_token() {
    let fixture = Fixture::new(KeyType::P256);
    let dir = fixture.hsm.dir.path();
    // A look-alike of the intermediate (same subject, another key) and an unrelated CA:
    // names alone would take the first, the official helper's bug #174 all of them.
    let fake_key = dir.join("fake.key");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            fake_key.to_str().unwrap(),
        ],
    );
    let intermediate = fixture.setup.path("intermediate-ca.pem");
    let fake = dir.join("fake.pem");
    openssl(
        dir,
        &[
            "x509",
            "-in",
            intermediate.to_str().unwrap(),
            "-key",
            fake_key.to_str().unwrap(),
            "-out",
            fake.to_str().unwrap(),
        ],
    );
    let unrelated = dir.join("unrelated.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            fake_key.to_str().unwrap(),
            "-subj",
            "/CN=unrelated CA",
            "-days",
            "2",
            "-out",
            unrelated.to_str().unwrap(),
        ],
    );
    fixture
        .hsm
        .write_object(TOKEN, &der_of(&fake), "cert", "fake", "07", &[]);
    fixture
        .hsm
        .write_object(TOKEN, &der_of(&unrelated), "cert", "unrelated", "08", &[]);
    for mode in [Mode::BothOnToken, Mode::KeyOnly] {
        let out = run(fixture
            .command("credential-process")
            .args(identity_args(&fixture, mode, false, true)));
        credentials(&out);
        let last = fixture.setup.emulator.received().pop().unwrap();
        assert_eq!(
            (last.status, last.chain_len),
            (201, 1),
            "{mode:?}: {last:?}"
        );
    }
}

#[test]
fn read_certificate_data_lists_token_certificates_with_their_uris() {
    let fixture = Fixture::new(KeyType::P256);
    let module = softhsm_module();
    let mut cmd = crate::common::helper();
    cmd.env("SOFTHSM2_CONF", fixture.hsm.conf())
        .args([
            "read-certificate-data",
            "--certificate",
            &format!("pkcs11:token={TOKEN}"),
            "--pkcs11-lib",
        ])
        .arg(&module);
    let text = String::from_utf8(run_ok(detached(&mut cmd))).unwrap();
    let blocks: Vec<&str> = text
        .strip_prefix("Matching identities\n")
        .unwrap_or_else(|| panic!("{text}"))
        .split_terminator("\n\n")
        .collect();
    assert_eq!(blocks.len(), 3, "{text}");
    assert!(text.ends_with("\n\n"), "each block ends with a blank line");
    let leaf_block = blocks
        .iter()
        .find(|b| b.contains("object=leaf;"))
        .expect("the leaf");
    let lines: Vec<&str> = leaf_block.lines().collect();
    let leaf_der = std::fs::read(der_of(&fixture.setup.path("leaf.pem"))).unwrap();
    let fingerprint = openssl(
        fixture.hsm.dir.path(),
        &[
            "x509",
            "-inform",
            "der",
            "-in",
            der_of(&fixture.setup.path("leaf.pem")).to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha1",
            "-serial",
        ],
    );
    let fingerprint = String::from_utf8(fingerprint).unwrap();
    let sha1 = fingerprint
        .lines()
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    let serial = fingerprint
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("serial=")
        .trim_start_matches('0')
        .to_owned();
    assert!(!leaf_der.is_empty());
    assert_eq!(
        lines[0].split_once(") ").unwrap().1,
        format!("Hex Fingerprint: {sha1}")
    );
    assert_eq!(
        lines[1],
        "Subject: CN=rolesanywhere-dev-client,O=rolesanywhere-helper development PKI"
    );
    assert_eq!(
        lines[2],
        "Issuer: CN=rolesanywhere-helper dev intermediate CA,O=rolesanywhere-helper development PKI"
    );
    assert_eq!(lines[3], format!("Serial Number: {serial}"));
    let uri = lines[4].strip_prefix("URI: ").unwrap();
    assert!(
        uri.starts_with(&format!(
            "pkcs11:token={TOKEN};manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial="
        )) && uri.ends_with(";id=%01;object=leaf;type=cert"),
        "{uri}"
    );
    // The printed URI is usable as it is.
    let out = run(fixture
        .command("credential-process")
        .args(["--certificate", uri, "--pkcs11-lib"])
        .arg(&module)
        .arg("--pkcs11-pin-file")
        .arg(fixture.hsm.pin_file()));
    credentials(&out);

    let mut cmd = crate::common::helper();
    cmd.env("SOFTHSM2_CONF", fixture.hsm.conf())
        .args([
            "read-certificate-data",
            "--certificate",
            &format!("pkcs11:token={TOKEN};object=none"),
            "--pkcs11-lib",
        ])
        .arg(&module);
    assert_eq!(run_ok(detached(&mut cmd)), b"No matching identities\n");
}

/// A key with `CKA_ALWAYS_AUTHENTICATE` (written by pkcs11-tool, without a public-key
/// object) and its certificate as a file.
fn always_authenticate_key(
    fixture: &Fixture,
    algorithm: &[&str],
    label: &str,
    id: &str,
) -> PathBuf {
    let dir = fixture.hsm.dir.path();
    let key = dir.join(format!("{label}.key"));
    let mut genkey = vec!["genpkey"];
    genkey.extend_from_slice(algorithm);
    genkey.extend_from_slice(&["-out", key.to_str().unwrap()]);
    openssl(dir, &genkey);
    let der = dir.join(format!("{label}.p8"));
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-outform",
            "der",
            "-out",
            der.to_str().unwrap(),
        ],
    );
    fixture.hsm.write_object(
        TOKEN,
        &der,
        "privkey",
        label,
        id,
        &["--usage-sign", "--always-auth"],
    );
    // A leaf certificate for it from the dev root, so the emulator accepts it.
    let csr = dir.join(format!("{label}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            &format!("/CN={label}"),
            "-out",
            csr.to_str().unwrap(),
        ],
    );
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    let cert = dir.join(format!("{label}.pem"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            fixture.setup.path("root-ca.pem").to_str().unwrap(),
            "-CAkey",
            fixture.setup.path("root-ca.key").to_str().unwrap(),
            "-set_serial",
            "4242",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    cert
}

#[test]
fn a_key_with_always_authenticate_signs_with_reuse_pin() {
    let fixture = Fixture::on(Setup::new(KeyType::P256, false), Hsm::new());
    let module = softhsm_module().display().to_string();
    let pin_file = fixture.hsm.pin_file().display().to_string();
    let rsa = always_authenticate_key(
        &fixture,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "aa-rsa",
        "10",
    );
    let ec = always_authenticate_key(
        &fixture,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "aa-ec",
        "11",
    );
    let identity = |cert: &Path, label: &str| {
        vec![
            "--certificate".to_owned(),
            cert.display().to_string(),
            "--private-key".to_owned(),
            format!("pkcs11:token={TOKEN};object={label}"),
            "--pkcs11-pin-file".to_owned(),
            pin_file.clone(),
        ]
    };
    // RSA: through the module itself (C_Sign after the login) and through p11-kit's
    // proxy (CKM_SHA256_RSA_PKCS in parts around the login). EC through the module.
    let cases: [(&Path, &str, Option<&str>); 3] = [
        (&rsa, "aa-rsa", Some(&module)),
        (&rsa, "aa-rsa", None),
        (&ec, "aa-ec", Some(&module)),
    ];
    for (cert, label, lib) in cases {
        let mut cmd = fixture.command("credential-process");
        cmd.args(identity(cert, label)).arg("--reuse-pin");
        if let Some(lib) = lib {
            cmd.args(["--pkcs11-lib", lib]);
        }
        credentials(&run(&mut cmd));
        let signature = run_ok(
            {
                let mut cmd = fixture.sign_string();
                cmd.args(identity(cert, label))
                    .args(["--reuse-pin", "--format", "bin"]);
                if let Some(lib) = lib {
                    cmd.args(["--pkcs11-lib", lib]);
                }
                cmd
            }
            .arg("--digest")
            .arg("SHA256"),
        );
        openssl_verifies(fixture.hsm.dir.path(), cert, &signature, "sha256");
    }
    // A context PIN of its own also works; with none, one clear line.
    credentials(&run(fixture
        .command("credential-process")
        .args(identity(&rsa, "aa-rsa"))
        .args([
            "--pkcs11-lib",
            &module,
            "--pkcs11-context-pin-file",
            &pin_file,
        ])));
    let line = failure(&run(fixture
        .command("credential-process")
        .args(identity(&ec, "aa-ec"))
        .args(["--pkcs11-lib", &module])));
    assert!(
        line.contains("CKA_ALWAYS_AUTHENTICATE")
            && line.contains("--reuse-pin")
            && line.contains("--pkcs11-context-pin-file"),
        "{line}"
    );
}

#[test]
fn serve_gets_new_credentials_after_the_token_is_re_created() {
    const LIFETIME: u32 = 8;
    let setup = Setup::short_sessions(KeyType::P256, true, LIFETIME);
    let fixture = Fixture::on(setup, Hsm::new());
    // One daemon on SoftHSM's module, one on p11-kit's proxy.
    let daemons: Vec<Daemon> = [true, false]
        .into_iter()
        .map(|direct| {
            let mut cmd = fixture.command("serve");
            cmd.args(identity_args(&fixture, Mode::BothOnToken, false, direct));
            Daemon::start(cmd)
        })
        .collect();
    let keys_before: Vec<String> = daemons
        .iter()
        .map(|d| {
            let reply = imds_credentials(d.port, ROLE_NAME);
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.json()["AccessKeyId"].as_str().unwrap().to_owned()
        })
        .collect();

    // The token goes away and comes back with the same key and certificates, as after a
    // re-initialisation (SoftHSM gives it a new serial and slot).
    fixture.hsm.delete_token(TOKEN);
    fixture.fill_token();
    let recreated = fixture.received_201s();

    let deadline = Instant::now() + Duration::from_secs(u64::from(LIFETIME) * 3);
    loop {
        let renewed = daemons.iter().zip(&keys_before).all(|(d, before)| {
            let reply = imds_credentials(d.port, ROLE_NAME);
            reply.status == 200 && reply.json()["AccessKeyId"].as_str() != Some(before.as_str())
        });
        if renewed && fixture.received_201s() >= recreated + daemons.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refresh after the token came back:\n{}\n---\n{}",
            daemons[0].log(),
            daemons[1].log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for daemon in &daemons {
        let log = daemon.log();
        assert!(log.contains("re-initialising the PKCS#11 module"), "{log}");
        assert!(log.matches("credentials refreshed").count() >= 2, "{log}");
        assert_eq!(imds_credentials(daemon.port, ROLE_NAME).status, 200);
    }
}

#[test]
fn config_file_roles_on_a_token_for_serve_and_update() {
    let fixture = Fixture::new(KeyType::P256);
    let setup = &fixture.setup;
    let (alpha_port, beta_port) = (
        crate::credential_process::free_port(),
        crate::credential_process::free_port(),
    );
    let role = |name: &str, identity: &str, port: u16| {
        format!(
            "[[role]]\nname = \"{name}\"\n{identity}\npkcs11_pin_file = \"{}\"\ntrust_anchor_arn = \"{}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"arn:aws:iam::111122223333:role/{name}\"\nendpoint = \"{}\"\nca_bundle = \"{}\"\nimds = \"127.0.0.1:{port}\"\n\n",
            fixture.hsm.pin_file().display(),
            crate::credential_process::TA,
            setup.emulator.url(),
            setup.ca_bundle.display(),
        )
    };
    let config = setup.path("serve.toml");
    std::fs::write(
        &config,
        format!(
            "{}{}",
            role(
                "alpha",
                &format!(
                    "certificate = \"pkcs11:token={TOKEN};object=leaf\"\npkcs11_lib = \"{}\"",
                    softhsm_module().display()
                ),
                alpha_port
            ),
            role(
                "beta",
                &format!("private_key = \"pkcs11:token={TOKEN};id=%01\""),
                beta_port
            ),
        ),
    )
    .unwrap();
    let mut cmd = crate::common::helper();
    cmd.env("SOFTHSM2_CONF", fixture.hsm.conf())
        .args(["serve", "--config"])
        .arg(&config);
    detached(&mut cmd);
    let daemon = Daemon::start(cmd);
    for (port, name) in [(alpha_port, "alpha"), (beta_port, "beta")] {
        let reply = imds_credentials(port, name);
        assert_eq!(reply.status, 200, "{name}: {reply:?}\n{}", daemon.log());
    }
    drop(daemon);

    let credentials_file = setup.path("credentials");
    let mut cmd = crate::common::helper();
    cmd.env("SOFTHSM2_CONF", fixture.hsm.conf())
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials_file)
        .args(["update", "--once", "--config"])
        .arg(&config);
    run_ok(detached(&mut cmd));
    let written = std::fs::read_to_string(&credentials_file).unwrap();
    assert!(
        written.contains("[alpha]") && written.contains("[beta]"),
        "{written}"
    );
    assert_eq!(
        written.matches("aws_session_token = ").count(),
        2,
        "{written}"
    );
}

/// An ML-DSA certificate cannot go with a key on a token (as with the official helper): one
/// line saying so before any module is loaded, and no request. (SoftHSM2 2.6 keeps no
/// ML-DSA keys, and OpenSSL 3.0's pkcs11-tool cannot store an ML-DSA certificate, so the
/// certificate is a file beside a key URI here.)
#[test]
fn an_mldsa_certificate_with_a_token_key_is_refused_in_one_line() {
    let fixture = Fixture::new(KeyType::P256);
    let pq = Setup::new(KeyType::MlDsa65, false);
    let module = softhsm_module().display().to_string();
    let pin_file = fixture.hsm.pin_file().display().to_string();
    let line = failure(&run(fixture
        .setup
        .command()
        .arg("--certificate")
        .arg(pq.path("leaf.pem"))
        .args([
            "--private-key",
            &format!("pkcs11:token={TOKEN};object=leaf"),
        ])
        .args(["--pkcs11-lib", &module, "--pkcs11-pin-file", &pin_file])));
    assert!(
        line.contains(
            "holds an ML-DSA-65 certificate, and ML-DSA keys on a PKCS#11 token are not supported"
        ),
        "{line}"
    );
    assert!(fixture.setup.emulator.received().is_empty());
}
