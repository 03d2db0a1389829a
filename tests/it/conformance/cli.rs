//! The command line itself beside the official helper's (cobra and pflag): help and
//! version, unknown commands and flags, `completion`, and the value forms pflag takes
//! (`--flag=true` booleans, `0x..`, `0o..`, `0b..`, `0..` and `1_000` integers).

use rolesanywhere_helper::pki::KeyType;

use super::{Peer, SIDES, Side, Stage, rows, show};

/// The official helper's subcommands but `completion` (see its own test).
const SUBCOMMANDS: [&str; 6] = [
    "credential-process",
    "sign-string",
    "read-certificate-data",
    "serve",
    "update",
    "version",
];

/// Runs both programs with `line` (split at spaces); their outputs.
fn both(peer: &Peer, line: &str) -> [std::process::Output; 2] {
    let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    SIDES.map(|side| peer.run(side, &args, &[]))
}

#[test]
fn help_version_and_unknown_input() {
    let Some(peer) = Peer::get() else { return };
    let mut lines: Vec<(String, i32, i32)> = Vec::new();
    for help in ["--help", "-h", "help"] {
        lines.push((help.to_owned(), 0, 0));
    }
    for sub in SUBCOMMANDS {
        lines.push((format!("{sub} --help"), 0, 0));
        lines.push((format!("{sub} -h"), 0, 0));
        lines.push((format!("help {sub}"), 0, 0));
        lines.push((format!("{sub} --no-such-flag"), 1, 1));
    }
    lines.extend([
        ("version".to_owned(), 0, 0),
        ("no-such-command".to_owned(), 1, 1),
        // Extra words after a command: ignored there (cobra sets no argument check),
        // refused here with one line. Not in the README's differences yet.
        ("version extra".to_owned(), 0, 1),
    ]);
    let failed = rows(
        lines.iter(),
        |(line, _, _)| line.as_str(),
        |(line, official, ours)| {
            let [o, r] = both(&peer, line);
            assert_eq!(
                o.status.code(),
                Some(*official),
                "{line}: official: {}",
                show(&o)
            );
            assert_eq!(r.status.code(), Some(*ours), "{line}: ours: {}", show(&r));
            for out in [&o, &r] {
                if out.status.success() {
                    assert!(!out.stdout.is_empty(), "{line}: {}", show(out));
                } else {
                    assert!(
                        out.stdout.is_empty() && !out.stderr.is_empty(),
                        "{line}: {}",
                        show(out)
                    );
                }
            }
        },
    );
    assert!(failed.is_empty(), "rows that failed: {failed:?}");

    // Each prints its own version number, as X.Y.Z and a newline.
    for out in both(&peer, "version") {
        let text = String::from_utf8(out.stdout).unwrap();
        let number = text
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("{text:?}"));
        let parts: Vec<&str> = number.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "{text:?}"
        );
    }

    // No command at all: the official helper prints its help on stdout and exits 0; ours
    // prints it on stderr and exits 1 (clap's usage error). Not in the README's
    // differences yet.
    let [o, r] = both(&peer, "");
    assert_eq!((o.status.code(), r.status.code()), (Some(0), Some(1)));
    assert!(!o.stdout.is_empty() && r.stdout.is_empty() && !r.stderr.is_empty());
}

/// Being added to ours: `completion SHELL` prints a completion script for the shell, as
/// cobra's does for the official helper.
#[test]
fn completion_scripts_for_four_shells() {
    let Some(peer) = Peer::get() else { return };
    let shells = [
        ("bash", "complete "),
        ("zsh", "#compdef"),
        ("fish", "complete -c"),
        ("powershell", "Register-ArgumentCompleter"),
    ];
    for line in ["completion --help", "completion -h", "help completion"] {
        let [o, r] = both(&peer, line);
        assert!(
            o.status.success() && r.status.success(),
            "{} / {}",
            show(&o),
            show(&r)
        );
    }
    let mut cases = Vec::new();
    for (shell, marker) in shells {
        // The one flag of each shell's command, which the rows below give.
        let flags = super::official_flags(&peer, &["completion", shell]);
        assert_eq!(flags, ["--no-descriptions"], "completion {shell}");
        for extra in ["", " --no-descriptions"] {
            cases.push((format!("completion {shell}{extra}"), shell, marker));
        }
    }
    let failed = rows(
        cases,
        |c| c.0.as_str(),
        |(line, shell, marker)| {
            for (side, out) in SIDES.into_iter().zip(both(&peer, &line)) {
                assert!(out.status.success(), "{line}: {side:?}: {}", show(&out));
                let script = String::from_utf8(out.stdout).unwrap();
                assert!(script.contains(marker), "{line}: {side:?}: no {marker:?}");
                let name = match side {
                    Side::Official => "aws_signing_helper",
                    Side::Ours => "rolesanywhere-helper",
                };
                assert!(
                    script.contains(name),
                    "{line}: {side:?}: the script names {name}"
                );
                if shell == "bash" {
                    let dir = tempfile::tempdir().unwrap();
                    let file = dir.path().join("completion.bash");
                    std::fs::write(&file, &script).unwrap();
                    let check =
                        crate::common::run(std::process::Command::new("bash").arg("-n").arg(&file));
                    assert!(
                        check.status.success(),
                        "{line}: {side:?}: bash -n: {}",
                        show(&check)
                    );
                }
            }
        },
    );
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}

/// Being changed in ours: values are read as pflag reads them. Booleans take
/// `--flag=VALUE` with Go's ParseBool spellings; integers take Go's literal forms.
#[test]
fn flag_values_are_read_as_pflag_reads_them() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    #[rustfmt::skip]
    let cases: Vec<(&str, i32, Option<u32>)> = vec![
        ("--session-duration 0x384", 0, Some(900)),
        ("--session-duration 0X384", 0, Some(900)),
        ("--session-duration 0o1750", 0, Some(1000)),
        ("--session-duration 01750", 0, Some(1000)),
        ("--session-duration 0b1111101000", 0, Some(1000)),
        ("--session-duration 1_000", 0, Some(1000)),
        ("--session-duration=+900", 0, Some(900)),
        ("--session-duration 0900", 1, None),
        ("--session-duration 900.0", 1, None),
        ("--session-duration 1e3", 1, None),
        ("--with-proxy=true", 0, Some(3600)),
        ("--with-proxy=TRUE", 0, Some(3600)),
        ("--with-proxy=True", 0, Some(3600)),
        ("--with-proxy=t", 0, Some(3600)),
        ("--with-proxy=1", 0, Some(3600)),
        ("--no-verify-ssl=false", 0, Some(3600)),
        ("--no-verify-ssl=FALSE", 0, Some(3600)),
        ("--no-verify-ssl=False", 0, Some(3600)),
        ("--no-verify-ssl=f", 0, Some(3600)),
        ("--no-verify-ssl=F", 0, Some(3600)),
        ("--no-verify-ssl=0", 0, Some(3600)),
        ("--with-proxy=yes", 1, None),
        ("--debug=true", 0, Some(3600)),
        ("--debug=false", 0, Some(3600)),
    ];
    let failed = rows(
        cases,
        |c| c.0,
        |(flags, code, duration)| {
            for side in SIDES {
                stage.clear();
                let out = peer.run(
                    side,
                    &stage.args("credential-process", &format!("{{pem}} {{chain}} {flags}")),
                    &[],
                );
                let what = format!("{flags}: {side:?}: {}", show(&out));
                assert_eq!(out.status.code(), Some(code), "{what}");
                let bodies: Vec<String> = stage
                    .setup
                    .emulator
                    .received()
                    .into_iter()
                    .map(|r| r.body)
                    .collect();
                let expected: Vec<String> = duration
                    .map(|d| format!(r#"{{"durationSeconds":{d}}}"#))
                    .into_iter()
                    .collect();
                assert_eq!(bodies, expected, "{what}");
                // --debug=false is no --debug: nothing on stderr when all goes well.
                if flags.starts_with("--debug=") {
                    let on = flags.ends_with("true");
                    assert_eq!(!out.stderr.is_empty(), on, "{what}");
                }
            }
        },
    );
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}
