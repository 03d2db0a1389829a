//! Command lines written for the official `aws_signing_helper` (Go, cobra and pflag) parse
//! here as they parse there: every boolean flag of the official helper in each spelling
//! of Go's `strconv.ParseBool`, its integer flags in the spellings of
//! `strconv.ParseInt(s, 0, 64)`, values that begin with a dash, and `completion`.
//!
//! One table says, for each command line, whether each program parses it or refuses it as
//! a usage error; the few rows where they differ say why. The inputs fail fast once
//! parsed (a certificate file that does not exist, no ARNs), so "parsed" is told from
//! "refused" by the kind of error, and every run but `completion` exits 1. Our binary is
//! always checked against the table; the official one too when it is present
//! (`RA_TEST_OFFICIAL`, or `../shared/peers/official-1.8.0/aws_signing_helper` beside the
//! checkout). With `CI=true` it must be present.
//!
//! Then the completion scripts: bash accepts and loads its script, which completes
//! subcommands, their flags and flag values; the other shells' scripts name every command.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// What a program's flag parser makes of a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    /// Parsed; the command then ran (and, with these inputs, failed on the missing file).
    Parsed,
    /// Refused with a usage error.
    Refused,
}
use Parse::{Parsed, Refused};

/// One command line and what each program does with it.
struct Case {
    args: Vec<String>,
    official: Parse,
    ours: Parse,
    /// The exit code of a parsed run: 1 (the inputs fail), or 0 for `completion` and
    /// `version`.
    parsed_exit: i32,
    /// Why the programs differ, when they do.
    why: Option<&'static str>,
}

const MISSING: &str = "/nonexistent/rolesanywhere-cli-compat/cert.pem";

/// Stray words: the official helper ignores them, so there `--debug false` turns debugging
/// on; here a stray word is refused.
const STRAY: &str = "a stray word is refused here; the official helper ignores it";
/// Ports and hop limits out of their type's range are refused here by the flag parser;
/// the official helper parses any 64-bit integer and fails later.
const NARROWER: &str = "this program refuses a port or hop limit out of range when parsing";
/// `completion` with no shell or an unknown one.
const NO_SHELL: &str =
    "a missing or unknown shell is an error here; the official helper prints help, exit 0";

/// The official helper's boolean flags, by command (from its `--help`).
const CREDENTIAL_BOOLS: &[&str] = &[
    "debug",
    "no-verify-ssl",
    "with-proxy",
    "use-latest-expiring-certificate",
    "reuse-pin",
    "no-tpm-key-password",
];
const SIGN_STRING_BOOLS: &[&str] = &[
    "debug",
    "use-latest-expiring-certificate",
    "reuse-pin",
    "no-tpm-key-password",
];

/// `=VALUE`s of a boolean flag that Go's `strconv.ParseBool` takes (and the bare flag).
const BOOL_OK: &[&str] = &[
    "", "=true", "=false", "=1", "=0", "=t", "=f", "=T", "=F", "=TRUE", "=FALSE", "=True", "=False",
];
/// `=VALUE`s it refuses.
const BOOL_BAD: &[&str] = &[
    "=yes",
    "=no",
    "=",
    "=on",
    "=tRUE",
    "=-1",
    "=true=false",
    "= true",
];

/// Integers `strconv.ParseInt(s, 0, 64)` takes, for the official helper's `int` flags.
const INT_OK: &[&str] = &[
    "3600",
    "0xE10",
    "0XE10",
    "0x_E10",
    "0o7020",
    "0O7020",
    "07020",
    "0_7020",
    "0b111000010000",
    "0B1110_0001_0000",
    "3_600",
    "+3600",
    "-3600",
    "-0xE10",
    "0",
    "-0",
    "00",
    "9223372036854775807",
    "-9223372036854775808",
];
/// Integers it refuses.
const INT_BAD: &[&str] = &[
    "",
    "abc",
    "1__0",
    "_1",
    "1_",
    "0x",
    "0x_",
    "0b",
    "08",
    "0b2",
    "0o8",
    "0xg",
    "1e3",
    "3600.0",
    " 1",
    "+-1",
    "9223372036854775808",
    "-9223372036854775809",
    "--debug",
];

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn both(parse: Parse, args: Vec<String>) -> Case {
    Case {
        args,
        official: parse,
        ours: parse,
        parsed_exit: 1,
        why: None,
    }
}

fn differs(why: &'static str, args: Vec<String>) -> Case {
    Case {
        args,
        official: Parsed,
        ours: Refused,
        parsed_exit: 1,
        why: Some(why),
    }
}

/// `case`, for a command that succeeds once parsed.
fn succeeds(case: Case) -> Case {
    Case {
        parsed_exit: 0,
        ..case
    }
}

/// `command --certificate MISSING` followed by `rest`.
fn line(command: &str, rest: &[&str]) -> Vec<String> {
    let command: Vec<&str> = command.split(' ').collect();
    words(&[&command[..], &["--certificate", MISSING], rest].concat())
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let commands: &[(&str, &[&str])] = &[
        ("credential-process", CREDENTIAL_BOOLS),
        ("serve", CREDENTIAL_BOOLS),
        ("update", CREDENTIAL_BOOLS),
        ("update", &["once"]),
        ("sign-string", SIGN_STRING_BOOLS),
        ("read-certificate-data", &["debug"]),
    ];
    for (i, (command, flags)) in commands.iter().enumerate() {
        // Every spelling on the first command, a few on the others.
        let (ok, bad) = if i == 0 || flags == &["once"] {
            (BOOL_OK, BOOL_BAD)
        } else {
            (&["", "=false", "=T", "=0"][..], &["=yes", "="][..])
        };
        for flag in *flags {
            for value in ok {
                cases.push(both(Parsed, line(command, &[&format!("--{flag}{value}")])));
            }
            for value in bad {
                cases.push(both(Refused, line(command, &[&format!("--{flag}{value}")])));
            }
            for word in ["true", "false"] {
                cases.push(differs(STRAY, line(command, &[&format!("--{flag}"), word])));
            }
        }
        // Given twice, the last one counts; both parse.
        let flag = format!("--{}", flags[0]);
        cases.push(both(
            Parsed,
            line(command, &[&flag, &format!("{flag}=false")]),
        ));
    }

    for command in ["credential-process", "serve", "update"] {
        let all = command == "credential-process";
        for value in INT_OK.iter().filter(|_| all).chain(&["0x384", "-1", "0b1"]) {
            cases.push(both(Parsed, line(command, &["--session-duration", value])));
        }
        for value in INT_BAD.iter().filter(|_| all).chain(&["1__0", "0x"]) {
            cases.push(both(Refused, line(command, &["--session-duration", value])));
        }
        cases.push(both(Parsed, line(command, &["--session-duration=0x384"])));
        cases.push(both(Refused, line(command, &["--session-duration=1__0"])));
        cases.push(both(Refused, line(command, &["--session-duration"])));
    }

    for flag in ["--port", "--hop-limit"] {
        for value in [
            "0x10", "0X10", "0o17", "017", "0b1010", "1_0", "+10", "-0", "0", "64",
        ] {
            cases.push(both(Parsed, line("serve", &[flag, value])));
            cases.push(both(Parsed, line("serve", &[&format!("{flag}={value}")])));
        }
        for value in ["1__0", "0x", "08", "abc", "", "9223372036854775808"] {
            cases.push(both(Refused, line("serve", &[flag, value])));
        }
        for value in ["-1", "-0x10", "9223372036854775807"] {
            cases.push(differs(NARROWER, line("serve", &[flag, value])));
        }
    }
    cases.push(differs(NARROWER, line("serve", &["--port", "70000"])));
    cases.push(differs(NARROWER, line("serve", &["--port", "0x10000"])));

    // A flag that takes a value takes the next word, whatever it begins with.
    for rest in [
        &["--pkcs8-password", "-secret"][..],
        &["--certificate", "--debug"],
        &["--role-arn", "-x"],
        &["--region", "--endpoint"],
    ] {
        cases.push(both(Parsed, line("credential-process", rest)));
    }
    for rest in [&["--nope"][..], &["-debug"], &["--debug", "--nope=1"]] {
        cases.push(both(Refused, line("credential-process", rest)));
    }
    cases.push(differs(STRAY, line("credential-process", &["extra"])));
    cases.push(succeeds(differs(STRAY, words(&["version", "extra"]))));
    cases.push(succeeds(both(Parsed, words(&["version"]))));
    cases.push(both(Refused, words(&["version", "--debug"])));

    for shell in ["bash", "zsh", "fish", "powershell"] {
        for rest in [
            &[][..],
            &["--no-descriptions"],
            &["--no-descriptions=false"],
        ] {
            let args = words(&[&["completion", shell], rest].concat());
            cases.push(succeeds(both(Parsed, args)));
        }
        cases.push(both(
            Refused,
            words(&["completion", shell, "--no-descriptions=maybe"]),
        ));
        cases.push(both(Refused, words(&["completion", shell, "extra"])));
    }
    for args in [&["completion"][..], &["completion", "tcsh"]] {
        cases.push(succeeds(differs(NO_SHELL, words(args))));
    }
    cases
}

/// The official helper, if it is here.
fn official() -> Option<PathBuf> {
    let path = std::env::var_os("RA_TEST_OFFICIAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/peers/official-1.8.0/aws_signing_helper")
        });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the official helper is missing at {} (set RA_TEST_OFFICIAL); CI needs it",
        path.display()
    );
    None
}

/// Runs `cmd` with no input, in a scratch HOME, failing the test if it takes over 30 s.
fn run_bounded(mut cmd: Command, home: &Path) -> Output {
    cmd.env("HOME", home)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                panic!("{cmd:?} did not finish in 30 s");
            }
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// How a run of one of the programs went: its parse outcome, told from its stderr.
fn outcome(out: &Output, official: bool) -> Parse {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let usage = if official {
        // cobra: "Error: <pflag's message>", then the usage.
        stderr.starts_with("Error: ")
    } else {
        // clap: "error: <message>", then a pointer to --help.
        stderr.starts_with("error: ") && stderr.contains("For more information, try '--help'.")
    };
    if usage { Refused } else { Parsed }
}

/// Runs every case through one program (on a few threads); returns the mismatches.
fn check(program: &Path, official: bool) -> Vec<String> {
    let cases = cases();
    let home = tempfile::tempdir().expect("scratch HOME");
    let chunk = cases.len().div_ceil(4);
    std::thread::scope(|scope| {
        let workers: Vec<_> = cases
            .chunks(chunk)
            .map(|chunk| {
                let home = home.path();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|case| mismatch(program, official, case, home))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect()
    })
}

fn mismatch(program: &Path, official: bool, case: &Case, home: &Path) -> Option<String> {
    let mut cmd = if official {
        Command::new(program)
    } else {
        common::helper()
    };
    cmd.args(&case.args);
    let out = run_bounded(cmd, home);
    let expected = if official { case.official } else { case.ours };
    let got = outcome(&out, official);
    let exit = if got == Parsed { case.parsed_exit } else { 1 };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or("");
    if stderr.contains("panicked") {
        return Some(format!("{:?}: panicked: {stderr}", case.args));
    }
    (got != expected || out.status.code() != Some(exit)).then(|| {
        format!(
            "{:?}: expected {expected:?} (exit {exit}){}, got {got:?} ({}): {first}",
            case.args,
            case.why
                .map(|w| format!(" because {w}"))
                .unwrap_or_default(),
            out.status
        )
    })
}

#[test]
fn our_flag_parser_takes_what_the_table_says() {
    let bad = check(&common::bin(), false);
    assert!(bad.is_empty(), "{} case(s):\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn the_official_helper_takes_what_the_table_says() {
    let Some(official) = official() else {
        eprintln!("the official helper is not here: only this program was compared with the table");
        return;
    };
    let bad = check(&official, true);
    assert!(bad.is_empty(), "{} case(s):\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn the_table_covers_each_form_and_keeps_differences_few() {
    let cases = cases();
    let differing: Vec<_> = cases.iter().filter(|c| c.official != c.ours).collect();
    assert!(differing.iter().all(|c| c.why.is_some()));
    assert!(
        cases
            .iter()
            .filter(|c| c.why.is_none())
            .all(|c| c.official == c.ours)
    );
    for flag in CREDENTIAL_BOOLS.iter().chain(&["once"]) {
        assert!(
            cases
                .iter()
                .any(|c| c.args.iter().any(|a| a == &format!("--{flag}=F"))),
            "{flag}"
        );
    }
    assert!(
        differing.len() * 5 < cases.len(),
        "{} of {}",
        differing.len(),
        cases.len()
    );
}

/// `completion SHELL [--no-descriptions]` by the binary under test: its stdout.
fn script(args: &[&str]) -> String {
    let out = common::run(common::helper().arg("completion").args(args));
    assert!(
        out.status.success(),
        "completion {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a UTF-8 script")
}

/// Loads `script` in bash and completes each of `lines` (the words typed so far, the last
/// being the one completed), as bash does on TAB; returns each line's candidates.
fn bash_complete(script_file: &Path, name: &str, lines: &[&[&str]]) -> Vec<Vec<String>> {
    let bash = common::require_tool("bash");
    let mut program = format!(
        "source {file:?} || exit 9\ncomplete -p {name} || exit 8\nspec=$(complete -p {name})\n\
         fn=${{spec#*-F }}; fn=${{fn%% *}}\n",
        file = script_file
    );
    for words in lines {
        let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
        let n = words.len();
        program.push_str(&format!(
            "COMP_WORDS=({name} {words}); COMP_CWORD={n}; COMPREPLY=()\n\
             \"$fn\" {name} {cur:?} {prev:?}\necho \"R:${{COMPREPLY[*]}}\"\n",
            words = quoted.join(" "),
            cur = words[n - 1],
            prev = if n >= 2 { words[n - 2] } else { name },
        ));
    }
    let out = common::run(Command::new(bash).arg("--norc").arg("-c").arg(&program));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .next()
            .unwrap_or("")
            .contains(&format!(" {name}")),
        "complete -p shows the program: {stdout}"
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("R:"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// What each program name's bash script must complete.
fn check_bash_completion(script_file: &Path, name: &str) {
    let replies = bash_complete(
        script_file,
        name,
        &[
            &["cred"],
            &["credential-process", "--deb"],
            &["serve", "--hop"],
            &["credential-process", "--debug", "--role-"],
            &["sign-string", "--format", ""],
            &["completion", "p"],
        ],
    );
    let expected: [&[&str]; 6] = [
        &["credential-process"],
        &["--debug"],
        &["--hop-limit"],
        &["--role-arn", "--role-session-name"],
        &["json", "text", "bin"],
        &["powershell"],
    ];
    for (reply, want) in replies.iter().zip(expected) {
        assert_eq!(reply, want);
    }
    assert_eq!(replies.len(), expected.len());
}

#[test]
fn the_bash_script_is_valid_and_completes_commands_flags_and_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rolesanywhere-helper.bash");
    std::fs::write(&file, script(&["bash"])).expect("write the script");
    let bash = common::require_tool("bash");
    let syntax = common::run(Command::new(&bash).arg("-n").arg(&file));
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    check_bash_completion(&file, "rolesanywhere-helper");

    let bare = dir.path().join("bare.bash");
    std::fs::write(&bare, script(&["bash", "--no-descriptions"])).expect("write the script");
    check_bash_completion(&bare, "rolesanywhere-helper");
}

#[test]
fn installed_under_the_official_name_the_script_completes_that_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("aws_signing_helper");
    std::os::unix::fs::symlink(common::bin(), &link).expect("symlink");
    let out = common::run(Command::new(&link).args(["completion", "bash"]));
    assert!(out.status.success());
    let file = dir.path().join("aws_signing_helper.bash");
    std::fs::write(&file, &out.stdout).expect("write the script");
    check_bash_completion(&file, "aws_signing_helper");
    let zsh = common::run(Command::new(&link).args(["completion", "zsh"]));
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef aws_signing_helper"));
}

#[test]
fn the_other_shells_scripts_name_every_command_and_flag() {
    let commands = [
        "demo",
        "credential-process",
        "serve",
        "update",
        "sign-string",
        "read-certificate-data",
        "emulate",
        "pki",
        "completion",
        "version",
    ];
    let heads = [
        ("zsh", "#compdef rolesanywhere-helper"),
        ("fish", ""),
        ("powershell", ""),
        ("elvish", ""),
    ];
    for (shell, head) in heads {
        let full = script(&[shell]);
        let bare = script(&[shell, "--no-descriptions"]);
        for text in [&full, &bare] {
            assert!(text.starts_with(head), "{shell}");
            for word in commands
                .iter()
                .chain(&["session-duration", "hop-limit", "no-verify-ssl"])
            {
                assert!(text.contains(word), "{shell} script lacks {word}");
            }
        }
        assert!(
            full.contains("Get credentials once"),
            "{shell} describes the commands"
        );
        assert!(
            !bare.contains("Get credentials once"),
            "{shell} --no-descriptions"
        );
        assert!(!bare.contains("Print help"), "{shell} --no-descriptions");
        assert!(bare.len() < full.len());
    }
    assert!(script(&["fish"]).contains("complete -c rolesanywhere-helper"));
}
