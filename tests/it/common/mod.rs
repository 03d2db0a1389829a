//! Helpers shared by every test module: the binary under test, the known-answer files,
//! and the external tools (openssl, the Python venv) that `tests/run.sh` installs.
//!
//! A missing tool fails the test with a message that says how to get it; nothing skips.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `rolesanywhere-helper` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rolesanywhere-helper"))
}

/// A command for the binary under test, with a clean environment for the variables that
/// change its behaviour.
pub fn helper() -> Command {
    let mut cmd = Command::new(bin());
    for var in [
        "ROLESANYWHERE_PKCS8_PASSWORD",
        "ROLESANYWHERE_PKCS11_PIN",
        "ROLESANYWHERE_PKCS11_CONTEXT_PIN",
        "ROLESANYWHERE_TPM_KEY_PASSWORD",
        "TPM_DEVICE",
        "CREDENTIALS_DIRECTORY",
        "AWS_CA_BUNDLE",
        "AWS_ENDPOINT_URL_ROLESANYWHERE",
        "AWS_ENDPOINT_URL",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_PROFILE",
        "AWS_MAX_ATTEMPTS",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Whatever the shared config file of the user running the tests says does not count.
    cmd.env("AWS_CONFIG_FILE", "/dev/null");
    cmd
}

/// `tests/data/kat`, the known-answer vectors (see the README there for their origin).
pub fn kat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kat")
}

/// The path of a tool on PATH, or a failure that says how to install it.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let venv = std::env::var_os("RA_TEST_VENV_BIN").map(PathBuf::from);
    venv.into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed; run tests/run.sh, which installs it"))
}

/// The Python of the test venv (boto3, awscli, iam-rolesanywhere-session).
pub fn python() -> PathBuf {
    let python = std::env::var_os("RA_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv/bin/python");
            p.is_file().then_some(p)
        })
        .unwrap_or_else(|| {
            panic!("the test venv is missing; run tests/run.sh, which creates tests/.venv")
        });
    assert!(
        python.is_file(),
        "{} is missing; run tests/run.sh",
        python.display()
    );
    python
}

/// Runs a command and returns its output, failing the test if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Signs `NAME.csr` in `dir` with the dev PKI's root there (`root-ca.pem`, `root-ca.key`),
/// with openssl: `NAME.pem`, valid for `days` (a negative number: already expired), with
/// `extensions` (openssl's extension-file lines). Returns its path.
pub fn issue_from_root(dir: &Path, name: &str, days: &str, extensions: &str) -> PathBuf {
    let (csr, ext, cert) = (
        format!("{name}.csr"),
        format!("{name}.ext"),
        format!("{name}.pem"),
    );
    std::fs::write(dir.join(&ext), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "root-ca.pem",
            "-CAkey",
            "root-ca.key",
            "-CAcreateserial",
            "-days",
            days,
            "-sha256",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
    dir.join(cert)
}

/// Runs a command with `input` on its standard input; returns its output.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Dropped at the end of the statement: the child sees the end of its input.
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed; returns stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `openssl` with `args` in `dir`; it must succeed.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    run_ok(
        Command::new(require_tool("openssl"))
            .current_dir(dir)
            .args(args),
    )
}

/// The JSON a successful command printed; a failure shows `what` and its stderr.
pub fn json_stdout(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Files the tests write are private (umask 077), as key files must be: the helper refuses
/// a private key that others can read (`identity_bad_input` checks that refusal
/// with an explicit chmod). Set before any test runs, so that every file a test or a tool
/// it starts writes is covered.
#[used]
#[unsafe(link_section = ".init_array")]
static PRIVATE_FILES: extern "C" fn() = private_files;

extern "C" fn private_files() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0o077) };
}

/// A child with no stdin whose stdout and stderr are read to the end by threads of their
/// own, so that a full pipe never blocks it, however long it runs.
pub struct Captured {
    pub child: std::process::Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

/// How a [`Captured`] child ended.
pub struct Ended {
    /// `None` when it was killed for running too long.
    pub status: Option<std::process::ExitStatus>,
    /// From the call to [`Captured::wait_within`] to the exit.
    pub took: std::time::Duration,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Captured {
    pub fn spawn(cmd: &mut Command) -> Self {
        use std::io::Read as _;
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the exit for at most `limit`, then kills the child.
    pub fn wait_within(mut self, limit: std::time::Duration) -> Ended {
        let since = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                break Some(status);
            }
            if since.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        Ended {
            status,
            took: since.elapsed(),
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: self.stderr.join().expect("stderr reader"),
        }
    }
}
