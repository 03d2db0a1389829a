//! Files that are not what the user meant, given where a certificate, a key, a chain or a
//! CA bundle belongs: `/dev/zero`, a FIFO that nobody writes to, a 2 GB sparse file. Read
//! whole, the first fills memory and the last takes seconds and gigabytes; the FIFO blocks its
//! reader until a writer comes, which may be never. `credential-process` and `serve` refuse
//! each at once, with exit code 1, nothing on stdout and one line on stderr that names the
//! file and what is wrong with it.
//!
//! And `serve` stops promptly on SIGTERM while its first credential fetch hangs.

use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common;
use crate::credential_process::Setup;
use crate::serve_daemon::Daemon;

/// How long a refusal may take: it needs no more than an `open` and an `fstat`.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);
/// How long `serve` may take to stop once signalled.
const STOPPED_WITHIN: Duration = Duration::from_secs(2);
/// When a process under test is killed, so that a regression fails instead of hanging.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// The address space each process under test may use, far above what the helper needs: a
/// regression that reads `/dev/zero` or the sparse file whole then fails on an allocation
/// after a gigabyte or so, instead of taking the machine's memory.
const ADDRESS_SPACE: u64 = 2 << 30;

/// A file that must be refused, made in a test folder.
struct BadFile {
    what: &'static str,
    make: fn(&Path) -> PathBuf,
    /// Words of which the error line must hold one (case aside): what is wrong.
    problem: &'static [&'static str],
}

const DEV_ZERO: BadFile = BadFile {
    what: "/dev/zero",
    make: |_| PathBuf::from("/dev/zero"),
    problem: &["character device", "not a regular file"],
};

const FIFO: BadFile = BadFile {
    what: "a FIFO without a writer",
    make: |dir| {
        let path = dir.join("no-writer.fifo");
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        path
    },
    problem: &["fifo", "not a regular file"],
};

const SPARSE_2_GB: BadFile = BadFile {
    what: "a 2 GB sparse file",
    make: |dir| {
        let path = dir.join("sparse-2g.pem");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        path
    },
    problem: &["limit", "too large", "too big"],
};

/// The flags that name an input file.
const FLAGS: [&str; 4] = [
    "--certificate",
    "--private-key",
    "--intermediates",
    "--ca-bundle",
];

/// The subcommands that read them at start.
const SUBCOMMANDS: [&str; 2] = ["credential-process", "serve"];

#[test]
fn dev_zero_is_refused_at_once() {
    refused_everywhere(&DEV_ZERO);
}

#[test]
fn a_fifo_without_a_writer_is_refused_at_once() {
    refused_everywhere(&FIFO);
}

#[test]
fn a_2_gb_sparse_file_is_refused_at_once() {
    refused_everywhere(&SPARSE_2_GB);
}

/// The command lines the refusals start from work with the right files, under the same
/// address-space limit: a refusal is then the bad file's doing.
#[test]
fn the_same_command_lines_work_with_the_right_files() {
    let setup = Setup::new(KeyType::P256, true);
    let finished = finish(spawn(&mut valid_command(&setup, "credential-process")));
    assert_eq!(
        finished.status.and_then(|s| s.code()),
        Some(0),
        "credential-process with the right files: {}",
        finished.stderr
    );
    crate::credential_process::credentials(&finished.output());
    // Ready means the first credentials arrived.
    let daemon = Daemon::start(valid_command(&setup, "serve"));
    assert!(daemon.log().contains("serving credentials for 1 role(s)"));
}

/// Every subcommand with `bad` as each input file, the other files right: all refused.
fn refused_everywhere(bad: &BadFile) {
    let setup = Setup::new(KeyType::P256, true);
    let path = (bad.make)(setup.dir.path());
    let mut wrong = Vec::new();
    for subcommand in SUBCOMMANDS {
        for flag in FLAGS {
            let mut cmd = valid_command(&setup, subcommand);
            // A flag given twice takes its last value.
            cmd.arg(flag).arg(&path);
            let finished = finish(spawn(&mut cmd));
            if let Err(problem) = check_refusal(&finished, &path, bad.problem) {
                wrong.push(format!("{subcommand} {flag} {}: {problem}", path.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} given as an input file is not refused at once (exit code 1 within {:?}, nothing \
         on stdout, one line on stderr naming the file and saying one of {:?}) in {} of {} \
         cases:\n{}",
        bad.what,
        REFUSED_WITHIN,
        bad.problem,
        wrong.len(),
        SUBCOMMANDS.len() * FLAGS.len(),
        wrong.join("\n")
    );
}

/// `subcommand` with the dev PKI's leaf, key and chain and the emulator's CA bundle, all
/// given as flags (`serve` on a free port), limited to [`ADDRESS_SPACE`].
fn valid_command(setup: &Setup, subcommand: &str) -> Command {
    let mut cmd = setup.leaf_subcommand(subcommand);
    cmd.arg("--intermediates")
        .arg(setup.path("leaf-chain.pem"))
        .arg("--ca-bundle")
        .arg(&setup.ca_bundle);
    if subcommand == "serve" {
        cmd.args(["--port", "0"]);
    }
    // SAFETY: setrlimit is async-signal-safe and reads only the local struct.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE as libc::rlim_t,
                rlim_max: ADDRESS_SPACE as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    cmd
}

/// What is wrong with a refusal, if anything.
fn check_refusal(finished: &Finished, path: &Path, problem: &[&str]) -> Result<(), String> {
    let stderr = &finished.stderr;
    let Some(status) = finished.status else {
        return Err(format!(
            "still running after {KILL_AFTER:?}, killed; stderr: {stderr:?}"
        ));
    };
    if status.code() != Some(1) {
        return Err(format!(
            "{status} instead of exit code 1; stderr: {stderr:?}"
        ));
    }
    if finished.took > REFUSED_WITHIN {
        return Err(format!("took {:?}; stderr: {stderr:?}", finished.took));
    }
    if !finished.stdout.is_empty() {
        return Err(format!(
            "printed on stdout: {:?}",
            String::from_utf8_lossy(&finished.stdout)
        ));
    }
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let [line] = lines.as_slice() else {
        return Err(format!("{} lines on stderr: {stderr:?}", lines.len()));
    };
    if !line.contains(&path.display().to_string()) {
        return Err(format!("the line does not name the file: {line:?}"));
    }
    let lower = line.to_lowercase();
    if !problem.iter().any(|p| lower.contains(p)) {
        return Err(format!("the line does not say what is wrong: {line:?}"));
    }
    Ok(())
}

#[test]
fn serve_stops_at_once_on_sigterm_while_its_first_fetch_hangs() {
    let setup = Setup::new(KeyType::P256, false);
    // An endpoint that accepts connections and never answers: the TLS handshake, and so
    // the first fetch, waits for the (long) timeouts.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    hole.set_nonblocking(true).unwrap();
    let mut cmd = setup.leaf_subcommand("serve");
    cmd.arg("--endpoint")
        .arg(format!("https://{}", hole.local_addr().unwrap()))
        .args([
            "--connect-timeout",
            "300",
            "--timeout",
            "300",
            "--port",
            "0",
        ]);
    let mut process = spawn(&mut cmd);

    let deadline = Instant::now() + Duration::from_secs(30);
    let _connection = loop {
        if let Ok((stream, _)) = hole.accept() {
            break stream;
        }
        if Instant::now() > deadline || process.child.try_wait().unwrap().is_some() {
            let finished = finish(process);
            panic!(
                "serve never connected to the endpoint ({:?}): {}",
                finished.status, finished.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Let the client send its ClientHello and start waiting for the answer.
    std::thread::sleep(Duration::from_millis(200));

    // SAFETY: kill() has no memory effects.
    assert_eq!(
        unsafe { libc::kill(process.child.id() as i32, libc::SIGTERM) },
        0
    );
    let finished = finish(process);
    let status = finished.status.unwrap_or_else(|| {
        panic!(
            "serve was still waiting for its fetch {KILL_AFTER:?} after SIGTERM: {}",
            finished.stderr
        )
    });
    assert!(
        finished.took <= STOPPED_WITHIN,
        "serve took {:?} to stop after SIGTERM (at most {STOPPED_WITHIN:?}): {}",
        finished.took,
        finished.stderr
    );
    assert!(
        status.success(),
        "a stop on SIGTERM is a clean exit, not {status}: {}",
        finished.stderr
    );
}

/// How a process ended.
struct Finished {
    /// `None`: killed after [`KILL_AFTER`].
    status: Option<ExitStatus>,
    /// From the call to [`finish`] to the exit.
    took: Duration,
    stdout: Vec<u8>,
    stderr: String,
}

impl Finished {
    /// As `Command::output` would have returned it (a killed process shows as killed).
    fn output(&self) -> std::process::Output {
        use std::os::unix::process::ExitStatusExt as _;
        std::process::Output {
            status: self
                .status
                .unwrap_or_else(|| ExitStatus::from_raw(libc::SIGKILL)),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone().into_bytes(),
        }
    }
}

/// Starts a process under test (see [`common::Captured`]).
fn spawn(cmd: &mut Command) -> common::Captured {
    common::Captured::spawn(cmd)
}

/// Waits for the process to exit, for at most [`KILL_AFTER`]; then kills it.
fn finish(process: common::Captured) -> Finished {
    let ended = process.wait_within(KILL_AFTER);
    Finished {
        status: ended.status,
        took: ended.took,
        stdout: ended.stdout,
        stderr: String::from_utf8_lossy(&ended.stderr).into_owned(),
    }
}
