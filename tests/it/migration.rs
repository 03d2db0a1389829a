//! Setups that work with the official `aws_signing_helper` and must keep working when only
//! the program's name changes: key, PKCS#12, combined PEM and password files readable by
//! their group (the `root:ssl-cert` 0640 layout), an emulator on 127.0.0.1 or localhost
//! with `HTTPS_PROXY` set for everything else, and the first messages a migrating user
//! meets (a signature refused for the wrong region, a directory given for a file, an
//! emulator started without its trust anchor).
//!
//! What stays different on purpose is checked too: files that every local account can
//! read are still refused.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rolesanywhere_helper::emulator::{Emulator, EmulatorConfig, TlsMode};
use rolesanywhere_helper::pki::KeyType;

use crate::common::{helper, openssl, run};
use crate::credential_process::{REGION, Setup, credentials, failure};

const PASSWORD: &str = "migrate-pw-31337";

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// One way of giving the helper a private key: the files that hold a secret, and the
/// identity flags that name them.
struct KeyForm {
    what: &'static str,
    secrets: Vec<PathBuf>,
    args: Vec<String>,
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// The key forms the official helper reads from files, written into `setup`'s folder:
/// a plain key, an encrypted PKCS#8 key (password on the command line, as the official
/// helper takes it), a PKCS#12 file with a password file, and a combined key+certificate
/// PEM.
fn key_forms(setup: &Setup) -> Vec<KeyForm> {
    let dir = setup.dir.path();
    let (cert, key) = (setup.path("leaf.pem"), setup.path("leaf.key"));
    let encrypted = setup.encrypted_leaf_key(PASSWORD);
    let p12 = setup.path("leaf.p12");
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "leaf.key",
            "-in",
            "leaf.pem",
            "-passout",
            &format!("pass:{PASSWORD}"),
            "-out",
            "leaf.p12",
        ],
    );
    let password = setup.path("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let combined = setup.path("combined.pem");
    let mut both = std::fs::read(&key).unwrap();
    both.extend(std::fs::read(&cert).unwrap());
    std::fs::write(&combined, both).unwrap();
    vec![
        KeyForm {
            what: "key",
            secrets: vec![key.clone()],
            args: vec![
                "--certificate".into(),
                arg(&cert),
                "--private-key".into(),
                arg(&key),
            ],
        },
        KeyForm {
            what: "encrypted key",
            secrets: vec![encrypted.clone()],
            args: vec![
                "--certificate".into(),
                arg(&cert),
                "--private-key".into(),
                arg(&encrypted),
                "--pkcs8-password".into(),
                PASSWORD.into(),
            ],
        },
        KeyForm {
            what: "PKCS#12 with a password file",
            secrets: vec![p12.clone(), password.clone()],
            args: vec![
                "--certificate".into(),
                arg(&p12),
                "--pkcs8-password-file".into(),
                arg(&password),
            ],
        },
        KeyForm {
            what: "combined PEM",
            secrets: vec![combined.clone()],
            args: vec!["--certificate".into(), arg(&combined)],
        },
    ]
}

fn sign_string(form: &KeyForm) -> Command {
    let mut cmd = helper();
    cmd.arg("sign-string").args(&form.args);
    cmd
}

#[test]
fn group_readable_key_files_are_used_as_the_official_helper_uses_them() {
    let setup = Setup::new(KeyType::P256, false);
    for form in key_forms(&setup) {
        for secret in &form.secrets {
            set_mode(secret, 0o640);
        }
        let out = run(setup.command().args(&form.args));
        credentials(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty(),
            "{}: no warning expected: {stderr}",
            form.what
        );
        let out = run(&mut sign_string(&form));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sign-string {}: {stderr}", form.what);
        assert!(stderr.is_empty(), "sign-string {}: {stderr}", form.what);
    }
}

#[test]
fn key_files_every_account_can_read_are_still_refused() {
    let setup = Setup::new(KeyType::P256, false);
    for form in key_forms(&setup) {
        for secret in &form.secrets {
            set_mode(secret, 0o640);
        }
        for secret in &form.secrets {
            for mode in [0o604, 0o644] {
                set_mode(secret, mode);
                let line = failure(&run(setup.command().args(&form.args)));
                let want = format!(
                    "{} holds a secret but can be read by others (mode 0{:o}); make it private with: chmod 600 {0}",
                    secret.display(),
                    mode
                );
                assert!(line.contains(&want), "{}: {line}", form.what);
                // With the flag it is used, with one warning that says why.
                let out = run(sign_string(&form).arg("--allow-readable-key-files"));
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "{}: {stderr}", form.what);
                assert!(stderr.contains("can be read by others"), "{stderr}");
                assert!(!stderr.contains("group"), "{stderr}");
            }
            set_mode(secret, 0o640);
        }
    }
    assert!(setup.emulator.received().is_empty(), "nothing was sent");
}

#[test]
fn a_directory_given_for_a_file_is_called_a_directory() {
    let setup = Setup::new(KeyType::P256, false);
    let encrypted = setup.encrypted_leaf_key(PASSWORD);
    let (cert, key) = (arg(&setup.path("leaf.pem")), arg(&setup.path("leaf.key")));
    for mode in [0o777, 0o755, 0o700] {
        let dir = setup.path(&format!("dir{mode:o}"));
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, mode);
        let d = arg(&dir);
        let cases: [(&str, Vec<String>); 3] = [
            (
                "private key",
                vec![
                    "--certificate".into(),
                    cert.clone(),
                    "--private-key".into(),
                    d.clone(),
                ],
            ),
            (
                "certificate",
                vec![
                    "--certificate".into(),
                    d.clone(),
                    "--private-key".into(),
                    key.clone(),
                ],
            ),
            (
                "password file",
                vec![
                    "--certificate".into(),
                    cert.clone(),
                    "--private-key".into(),
                    arg(&encrypted),
                    "--pkcs8-password-file".into(),
                    d.clone(),
                ],
            ),
        ];
        for (what, args) in cases {
            let line = failure(&run(setup.command().args(&args)));
            let file = what.strip_suffix(" file").unwrap_or(what);
            assert_eq!(
                line,
                format!("{what} {d} is a directory, not a file; give the {file} file itself"),
                "{mode:o}"
            );
            assert!(!line.contains("mode 0"), "{what} {mode:o}: {line}");
        }
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1 that records the first line of every connection
/// and tunnels to the asked port on 127.0.0.1, whatever host was asked for: a name that
/// resolves nowhere then reaches the emulator, through the proxy only.
struct FakeProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || tunnel(client, &log));
            }
        });
        Self { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn tunnel(mut client: TcpStream, log: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or_default().to_owned();
    log.lock().unwrap().push(line.clone());
    let port = line
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|target| target.rsplit_once(':'))
        .and_then(|(_, port)| port.parse::<u16>().ok());
    let Some(upstream) = port.and_then(|p| TcpStream::connect(("127.0.0.1", p)).ok()) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut from_upstream, mut to_client) =
        (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_upstream, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let (mut from_client, mut to_upstream) = (client, upstream);
    let _ = std::io::copy(&mut from_client, &mut to_upstream);
    let _ = to_upstream.shutdown(Shutdown::Write);
    let _ = back.join();
}

/// Go's `ProxyFromEnvironment`, which the official helper uses, never proxies a request
/// to localhost or a loopback address, whatever `HTTPS_PROXY` says: an emulator or a local
/// relay is reached directly on a host whose environment names a corporate proxy.
#[test]
fn a_loopback_endpoint_is_reached_directly_despite_https_proxy() {
    let setup = Setup::new(KeyType::P256, false);
    let proxy = FakeProxy::start();
    let port = setup.emulator.addr().port();
    for endpoint in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        for variable in ["HTTPS_PROXY", "https_proxy"] {
            let out = run(setup
                .leaf_command()
                .args(["--endpoint", &endpoint])
                .env(variable, proxy.url()));
            credentials(&out);
            assert_eq!(
                proxy.seen(),
                Vec::<String>::new(),
                "{endpoint} with {variable} went through the proxy"
            );
        }
    }
    assert_eq!(setup.emulator.received().len(), 4);
}

/// A server certificate for `name`, and the CA that issued it (PEM).
fn server_certificate(name: &str) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem(), ca_pem)
}

const NAME: &str = "emulator.invalid";

/// An emulator trusting a [`Setup`]'s root, serving HTTPS for [`NAME`], which resolves
/// nowhere and only [`FakeProxy`] reaches; with the CA bundle for its certificate.
struct NamedEmulator {
    emulator: Emulator,
    ca_bundle: PathBuf,
    /// Runs the emulator's tasks; dropped last.
    _runtime: tokio::runtime::Runtime,
}

impl NamedEmulator {
    fn start(setup: &Setup) -> Self {
        let (cert_pem, key_pem, ca_pem) = server_certificate(NAME);
        let mut config = EmulatorConfig::single_anchor(
            &std::fs::read_to_string(setup.path("root-ca.pem")).unwrap(),
            REGION,
        )
        .unwrap();
        config.tls = TlsMode::Given { cert_pem, key_pem };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let emulator = runtime.block_on(Emulator::start(config)).unwrap();
        let ca_bundle = setup.path("named-ca.pem");
        std::fs::write(&ca_bundle, ca_pem).unwrap();
        Self {
            emulator,
            ca_bundle,
            _runtime: runtime,
        }
    }

    /// `setup`'s leaf command with this emulator's named endpoint and CA bundle.
    fn leaf_command(&self, setup: &Setup) -> Command {
        let mut cmd = setup.leaf_command();
        cmd.args(["--endpoint", &format!("https://{NAME}:{}", self.port())])
            .env("AWS_CA_BUNDLE", &self.ca_bundle);
        cmd
    }

    fn port(&self) -> u16 {
        self.emulator.addr().port()
    }

    /// The request line a proxy sees for it.
    fn connect_line(&self) -> String {
        format!("CONNECT {NAME}:{} HTTP/1.1", self.port())
    }
}

/// Any other host goes through the proxy: here a name that only the proxy can reach.
#[test]
fn a_named_endpoint_goes_through_https_proxy() {
    let setup = Setup::new(KeyType::P256, false);
    let named = NamedEmulator::start(&setup);
    let proxy = FakeProxy::start();
    credentials(&run(named
        .leaf_command(&setup)
        .env("HTTPS_PROXY", proxy.url())));
    assert_eq!(proxy.seen(), vec![named.connect_line()]);
    assert_eq!(named.emulator.received().len(), 1);
    // ALL_PROXY is not a variable the official helper reads: the same request with it alone
    // goes direct (and cannot resolve the name).
    let out = run(named.leaf_command(&setup).env("ALL_PROXY", proxy.url()));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(proxy.seen().len(), 1, "ALL_PROXY was used");
}

/// The largest request there is, ML-DSA-87 with an ML-DSA-87 intermediate (about 9 KB of
/// signature and 20 KB of certificates in headers), goes through the proxy's tunnel whole.
#[test]
fn an_mldsa87_request_goes_through_https_proxy() {
    let setup = Setup::new(KeyType::MlDsa87, true);
    let named = NamedEmulator::start(&setup);
    let proxy = FakeProxy::start();
    credentials(&run(named
        .leaf_command(&setup)
        .arg("--intermediates")
        .arg(setup.path("intermediate-ca.pem"))
        .env("HTTPS_PROXY", proxy.url())));
    assert_eq!(proxy.seen(), vec![named.connect_line()]);
    let received = named.emulator.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].status, 201, "{received:?}");
    assert_eq!(received[0].chain_len, 1);
    let verified = received[0].verified.as_ref().unwrap();
    assert!(verified.string_to_sign.starts_with("AWS4-X509-MLDSA\n"));
    // ML-DSA-87 signatures are 4,627 bytes.
    assert_eq!(verified.signature_hex.len(), 2 * 4627);
}

/// The key is checked against the certificate before any request, so a refused
/// signature most often means a `--region` that is not the trust anchor's: the hint says
/// that first.
#[test]
fn an_invalid_signature_points_first_at_the_region() {
    let setup = Setup::new(KeyType::P256, false);
    let line = failure(&run(setup.leaf_command().args(["--region", "eu-west-1"])));
    let (_, hint) = line
        .split_once("Invalid signature - ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        hint.starts_with("the request was signed for a region that is not the trust anchor's"),
        "{line}"
    );
    let region = hint.find("--region").unwrap_or(usize::MAX);
    let key = hint.find("key").unwrap_or(0);
    assert!(region < key, "{line}");
}

#[test]
fn emulate_without_its_trust_anchor_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("devpki/root-ca.pem");
    let out = run(helper()
        .args(["emulate", "--port", "0", "--trust-anchor"])
        .arg(&missing));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "trust anchor {} does not exist;",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("rolesanywhere-helper pki init DIR"),
        "{stderr}"
    );
}
