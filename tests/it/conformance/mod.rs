//! Conformance with AWS's official `aws_signing_helper` 1.8.0: the official binary and ours
//! run on the same inputs, against the same emulator, and what users depend on is compared:
//! exit codes, stdout bytes, the CreateSession request on the wire, the IMDS exchange of
//! `serve`, and `update`'s rewrite of the credentials file. Where the two differ on purpose,
//! the documented difference is asserted (naming its README row), so that a change in
//! either direction fails.
//!
//! The official binary comes from `$RA_TEST_OFFICIAL` (`tests/run.sh` sets it when the peer
//! sits beside the repository, at `../shared/peers/official-1.8.0/aws_signing_helper`).
//! Without it nothing can be compared: outside CI the suite says so in one line and passes;
//! with `CI=true` every test fails.

mod cli;
mod diag;
mod environment;
mod flags;
mod relay;
mod serve;
mod update;
mod wire;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::Duration;

use rolesanywhere_helper::emulator::{EmulatorConfig, TlsMode};
use rolesanywhere_helper::pki::KeyType;

use crate::common::{self, openssl};
use crate::credential_process::{PROFILE, ROLE, Setup, TA};
use relay::Relay;

/// How long one run of either program may take.
const RUN_WITHIN: Duration = Duration::from_secs(90);

/// Which program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Official,
    Ours,
}

pub const SIDES: [Side; 2] = [Side::Official, Side::Ours];

/// The official binary and a private home directory for both programs (the official one
/// reads `~/.aws/config` and `~/.aws/credentials`; neither may see the real ones).
pub struct Peer {
    official: PathBuf,
    home: tempfile::TempDir,
}

impl Peer {
    /// The peer, or `None` when the suite is skipped (see the module documentation).
    pub fn get() -> Option<Self> {
        let var = std::env::var_os("RA_TEST_OFFICIAL").map(PathBuf::from);
        let official = match var {
            Some(path) if path.is_file() => path,
            other => {
                let why = match other {
                    Some(path) => format!("RA_TEST_OFFICIAL={} is not a file", path.display()),
                    None => "RA_TEST_OFFICIAL is not set".to_owned(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "conformance: {why}; in CI the official helper must be there \
                     (tests/run.sh sets RA_TEST_OFFICIAL when \
                     ../shared/peers/official-1.8.0/aws_signing_helper exists)"
                );
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    // Straight to the process's stderr: the test harness captures `eprintln!`.
                    let _ = writeln!(
                        std::io::stderr(),
                        "conformance: skipped, {why} (tests/run.sh sets it when the official \
                         helper is beside the repository)"
                    );
                });
                return None;
            }
        };
        Some(Self {
            official,
            home: tempfile::tempdir().unwrap(),
        })
    }

    /// The home directory both programs get.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A command for `side` with nothing from the test's environment but `PATH` and a
    /// private `HOME`.
    pub fn command(&self, side: Side) -> Command {
        let mut cmd = Command::new(match side {
            Side::Official => self.official.clone(),
            Side::Ours => common::bin(),
        });
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home());
        cmd
    }

    /// Runs `side` with `args` and `env` to the end.
    pub fn run(&self, side: Side, args: &[String], env: &[(&str, String)]) -> Output {
        let mut cmd = self.command(side);
        cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        run_bounded(cmd)
    }
}

/// Runs `cmd` with no stdin, failing the test if it takes longer than [`RUN_WITHIN`]
/// (a program that waits for a terminal would otherwise hang the suite).
pub fn run_bounded(mut cmd: Command) -> Output {
    let ended = common::Captured::spawn(&mut cmd).wait_within(RUN_WITHIN);
    let Some(status) = ended.status else {
        panic!("{cmd:?} did not finish within {RUN_WITHIN:?}");
    };
    Output {
        status,
        stdout: ended.stdout,
        stderr: ended.stderr,
    }
}

/// `template` with `{pem}` (the leaf's certificate and key flags), `{chain}` (its
/// intermediates flag) and `{dir}` replaced, split at whitespace (test paths hold none).
pub fn args(template: &str, dir: &Path) -> Vec<String> {
    template
        .replace(
            "{pem}",
            "--certificate {dir}/leaf.pem --private-key {dir}/leaf.key",
        )
        .replace("{chain}", "--intermediates {dir}/leaf-chain.pem")
        .replace("{dir}", dir.to_str().unwrap())
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The three ARNs every credentials command needs.
pub fn arns() -> Vec<String> {
    [
        "--trust-anchor-arn",
        TA,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A short account of a run, for failure messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A plain-HTTP emulator trusting a fresh dev PKI (with the identity files of
/// [`identity_files`]), behind a recording relay that strips the path prefix `/prefix`.
pub struct Stage {
    pub setup: Setup,
    pub relay: Relay,
}

impl Stage {
    pub fn new(key_type: KeyType, intermediate: bool) -> Self {
        Self::with_config(key_type, intermediate, |_| {})
    }

    /// Like `new`, with a chance to adjust the emulator's configuration.
    pub fn with_config(
        key_type: KeyType,
        intermediate: bool,
        adjust: impl FnOnce(&mut EmulatorConfig),
    ) -> Self {
        let setup = Setup::with_config(key_type, intermediate, |c| {
            c.tls = TlsMode::Http;
            adjust(c);
        });
        identity_files(&setup, intermediate);
        let relay = Relay::start(setup.emulator.addr(), "/prefix");
        Self { setup, relay }
    }

    pub fn dir(&self) -> &Path {
        self.setup.dir.path()
    }

    /// `subcommand`, the ARNs, `--endpoint` (the relay) and `template`'s flags.
    pub fn args(&self, subcommand: &str, template: &str) -> Vec<String> {
        let mut all = vec![subcommand.to_owned()];
        all.extend(arns());
        all.extend(["--endpoint".to_owned(), self.relay.url()]);
        all.extend(args(template, self.dir()));
        all
    }

    /// Forgets what the emulator and the relay have seen.
    pub fn clear(&self) {
        self.setup.emulator.clear_received();
        self.relay.take();
    }
}

/// Writes the other forms of the PKI's leaf identity beside it: `combined.pem` (key then
/// certificate), `legacy.key` (PKCS#1 or SEC1), `enc.key` (PBES2, password `pw`),
/// `leaf.der`, `legacy.p12` (3DES, SHA-1 MAC, empty password) and `modern.p12` (OpenSSL 3
/// defaults, empty password); both PKCS#12 files hold the intermediate when there is one.
pub fn identity_files(setup: &Setup, intermediate: bool) {
    let dir = setup.dir.path();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let combined = [read("leaf.key"), read("leaf.pem")].concat();
    std::fs::write(dir.join("combined.pem"), combined).unwrap();
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "leaf.key",
            "-traditional",
            "-out",
            "legacy.key",
        ],
    );
    setup.encrypted_leaf_key("pw");
    std::fs::rename(dir.join("leaf.enc.key"), dir.join("enc.key")).unwrap();
    openssl(
        dir,
        &[
            "x509", "-in", "leaf.pem", "-outform", "DER", "-out", "leaf.der",
        ],
    );
    let chain: &[&str] = if intermediate {
        &["-certfile", "leaf-chain.pem"]
    } else {
        &[]
    };
    let legacy = [
        "-keypbe",
        "PBE-SHA1-3DES",
        "-certpbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
    ];
    for (name, extra) in [("legacy.p12", &legacy[..]), ("modern.p12", &[][..])] {
        let mut cmd = vec!["pkcs12", "-export", "-in", "leaf.pem", "-inkey", "leaf.key"];
        cmd.extend(chain);
        cmd.extend(extra);
        cmd.extend(["-passout", "pass:", "-out", name]);
        openssl(dir, &cmd);
    }
}

/// The base64 body of the first PEM block of `file`: the standard base64 of its DER.
pub fn pem_base64(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

/// Every `--flag` named in `<subcommand> --help` of the official helper, without `--help`.
pub fn official_flags(peer: &Peer, subcommand: &[&str]) -> Vec<String> {
    let mut cmd = peer.command(Side::Official);
    cmd.args(subcommand).arg("--help");
    let out = run_bounded(cmd);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut flags: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Flags:"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .filter(|f| *f != "--help")
        .map(str::to_owned)
        .collect();
    flags.sort();
    flags.dedup();
    assert!(!flags.is_empty() || subcommand == ["version"], "{text}");
    flags
}

/// Runs `check` on every row, each to its end even when an earlier one failed (its panic
/// message is printed as usual); the names of the rows that failed.
pub fn rows<T>(
    rows: impl IntoIterator<Item = T>,
    name: impl for<'a> Fn(&'a T) -> &'a str,
    check: impl Fn(T),
) -> Vec<String> {
    let mut failed = Vec::new();
    for row in rows {
        let row_name = name(&row).to_owned();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(row)));
        if result.is_err() {
            failed.push(row_name);
        }
    }
    failed
}
