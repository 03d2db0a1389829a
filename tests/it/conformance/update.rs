//! `update --once` on a set of tricky credentials files, by both programs: the exit code,
//! the silence on stdout, the file's mode, and its bytes afterwards with the new credential
//! values replaced by `<new>`. Where ours keeps bytes the official helper rewrites or loses,
//! both results are spelled out (README "`update`": every byte but the three values stays;
//! official-helper.md §5.3 and §9.9 for the official writer's bugs).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use rolesanywhere_helper::pki::KeyType;

use super::{Peer, SIDES, Side, Stage, rows, run_bounded, show};

const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];
/// Values in the input files; anything else on a key line is a new credential.
const OLD: [&str; 5] = ["OLD", "OLDS", "OLDT", "OTHER", "KEEP"];

struct Case {
    name: &'static str,
    /// The file before (`None`: it does not exist).
    before: Option<&'static [u8]>,
    profile: &'static str,
    /// Exit code and file afterwards (normalised), per program.
    official: (i32, &'static [u8]),
    ours: (i32, &'static [u8]),
}

/// The three keys with the old values, or with new ones as normalised; `$nl` ends each line.
macro_rules! old {
    ($nl:literal) => {
        concat!(
            "aws_access_key_id = OLD",
            $nl,
            "aws_secret_access_key = OLDS",
            $nl,
            "aws_session_token = OLDT",
            $nl
        )
    };
}
macro_rules! new {
    ($nl:literal) => {
        concat!(
            "aws_access_key_id = <new>",
            $nl,
            "aws_secret_access_key = <new>",
            $nl,
            "aws_session_token = <new>",
            $nl
        )
    };
}

/// Text as bytes, for the table.
const fn b(text: &'static str) -> &'static [u8] {
    text.as_bytes()
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let same = |name, before, profile, after| Case { name, before, profile, official: (0, after), ours: (0, after) };
    let differ = |name, before, profile, official, ours| Case { name, before, profile, official, ours };
    vec![
        // The official writer ends a new section with a blank line; ours writes none.
        differ("new file", None, "default", (0, b(concat!("[default]\n", new!("\n"), "\n"))), (0, b(concat!("[default]\n", new!("\n"))))),
        differ("empty file", Some(b""), "default", (0, b(concat!("[default]\n", new!("\n"), "\n"))), (0, b(concat!("[default]\n", new!("\n"))))),
        same("comments and other profiles", Some(b"# c\n[other]\naws_access_key_id = OTHER\n\n[default]\nregion = eu-west-1\naws_access_key_id = OLD\naws_secret_access_key = OLDS\n; tail comment\n[z]\nk = v\n"), "default",
            b"# c\n[other]\naws_access_key_id = OTHER\n\n[default]\nregion = eu-west-1\naws_access_key_id = <new>\naws_secret_access_key = <new>\n; tail comment\naws_session_token = <new>\n[z]\nk = v\n"),
        // CRLF: the official writer turns every line ending into LF; ours keeps them.
        differ("crlf line endings", Some(b(concat!("[default]\r\n", old!("\r\n"), "region = x\r\n[b]\r\nk=v\r\n"))), "default",
            (0, b(concat!("[default]\n", new!("\n"), "region = x\n[b]\nk=v\n"))), (0, b(concat!("[default]\r\n", new!("\r\n"), "region = x\r\n[b]\r\nk=v\r\n")))),
        // The official writer loses the last line of the file's last section (§5.3).
        differ("no final newline", Some(b(concat!("[a]\nk = v\n[default]\n", old!("\n"), "region = x"))), "default",
            (0, b(concat!("[a]\nk = v\n[default]\n", new!("\n")))), (0, b(concat!("[a]\nk = v\n[default]\n", new!("\n"), "region = x")))),
        differ("last line of the last section", Some(b(concat!("[default]\n", old!("\n"), "[prod]\nregion = x\n"))), "prod",
            (0, b(concat!("[default]\n", old!("\n"), "[prod]\n", new!("\n")))), (0, b(concat!("[default]\n", old!("\n"), "[prod]\nregion = x\n", new!("\n"))))),
        // A missing section: appended after a blank line here, followed by one there.
        differ("missing section", Some(b"[a]\nk = v\n"), "default",
            (0, b(concat!("[a]\nk = v\n[default]\n", new!("\n"), "\n"))), (0, b(concat!("[a]\nk = v\n\n[default]\n", new!("\n"))))),
        differ("commented header is no header", Some(b"# [default]\n[a]\nk=v\n"), "default",
            (0, b(concat!("# [default]\n[a]\nk=v\n[default]\n", new!("\n"), "\n"))), (0, b(concat!("# [default]\n[a]\nk=v\n\n[default]\n", new!("\n"))))),
        // The official writer repeats a header on the file's last line (§5.3); ours keeps
        // the file without a final newline.
        differ("header on the last line", Some(b"[a]\nk = v\n[default]"), "default",
            (0, b(concat!("[a]\nk = v\n[default]\n[default]\n", new!("\n"), "\n"))), (0, b"[a]\nk = v\n[default]\naws_access_key_id = <new>\naws_secret_access_key = <new>\naws_session_token = <new>")),
        same("profile name with a space", Some(b(concat!("[test profile]\n", old!("\n"), "[test]\nk=v\n"))), "test profile",
            b(concat!("[test profile]\n", new!("\n"), "[test]\nk=v\n"))),
        same("only the first of two sections", Some(b(concat!("[default]\n", old!("\n"), "[default]\naws_access_key_id = OTHER\n"))), "default",
            b(concat!("[default]\n", new!("\n"), "[default]\naws_access_key_id = OTHER\n"))),
        same("indented key is another key", Some(b(concat!("[default]\n  aws_access_key_id = KEEP\n", old!("\n")))), "default",
            b(concat!("[default]\n  aws_access_key_id = KEEP\n", new!("\n")))),
        // The official writer replaces any line that starts with a key's name (§5.3).
        differ("longer key name", Some(b(concat!("[default]\naws_access_key_id_2 = KEEP\n", old!("\n")))), "default",
            (0, b(concat!("[default]\naws_access_key_id = <new>\n", new!("\n")))), (0, b(concat!("[default]\naws_access_key_id_2 = KEEP\n", new!("\n"))))),
        differ("spacing around =", Some(b"[default]\naws_access_key_id=OLD\naws_secret_access_key=OLDS\naws_session_token=OLDT\n[p2]\nk = v\n"), "default",
            (0, b(concat!("[default]\n", new!("\n"), "[p2]\nk = v\n"))), (0, b"[default]\naws_access_key_id=<new>\naws_secret_access_key=<new>\naws_session_token=<new>\n[p2]\nk = v\n")),
        // The official writer also loses a header on the file's last line (§5.3).
        differ("empty last section", Some(b(concat!("[default]\n", old!("\n"), "[p2]\n"))), "default",
            (0, b(concat!("[default]\n", new!("\n")))), (0, b(concat!("[default]\n", new!("\n"), "[p2]\n")))),
        same("non-UTF-8 text", Some(b"[a]\nk = caf\xe9\n[default]\naws_access_key_id = OLD\naws_secret_access_key = OLDS\naws_session_token = OLDT\n"), "default",
            b"[a]\nk = caf\xe9\n[default]\naws_access_key_id = <new>\naws_secret_access_key = <new>\naws_session_token = <new>\n"),
        // The official helper's SDK refuses a file whose [default] holds a key without its
        // secret, whatever --profile says; ours edits the profile it was given.
        differ("partial keys in another profile", Some(b(concat!("[default]\naws_access_key_id = OTHER\n[prod]\n", old!("\n")))), "prod",
            (1, b(concat!("[default]\naws_access_key_id = OTHER\n[prod]\n", old!("\n")))), (0, b(concat!("[default]\naws_access_key_id = OTHER\n[prod]\n", new!("\n"))))),
    ]
}

#[test]
fn update_rewrites_credentials_files_as_documented() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    let failed = rows(
        cases(),
        |c| c.name,
        |case| {
            for (side, (code, after)) in SIDES.into_iter().zip([case.official, case.ours]) {
                let file = stage.dir().join(format!("credentials-{side:?}"));
                let _ = std::fs::remove_file(&file);
                if let Some(before) = case.before {
                    std::fs::write(&file, before).unwrap();
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640))
                        .unwrap();
                }
                let out = update(
                    &peer,
                    &stage,
                    side,
                    case.profile,
                    &[("AWS_SHARED_CREDENTIALS_FILE", &file)],
                );
                let what = format!("{}: {side:?}: {}", case.name, show(&out));
                assert_eq!(out.status.code(), Some(code), "{what}");
                assert!(out.stdout.is_empty(), "{what}");
                let written = normalised(&std::fs::read(&file).unwrap());
                assert!(
                    written == after,
                    "{what}: {:?}",
                    String::from_utf8_lossy(&written)
                );
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                let kept = if case.before.is_some() { 0o640 } else { 0o600 };
                assert_eq!(mode, kept, "{what}: mode {mode:o}");
            }
        },
    );
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}

#[test]
fn update_finds_the_file_where_each_program_looks() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    let home = peer.home();
    let aws = home.join(".aws");
    let cwd = tempfile::tempdir().unwrap();
    // The literal `~` folder exists, so that only the file is left to make (the official
    // helper would make the folder 0600, which a non-root user cannot then write into).
    std::fs::create_dir(cwd.path().join("~")).unwrap();
    for side in SIDES {
        let _ = std::fs::remove_dir_all(&aws);
        let out = update(&peer, &stage, side, "default", &[]);
        // official-helper.md §9.9: the official helper makes a missing ~/.aws with mode
        // 0600 (no search bit: only root can then create the file); ours with 0700.
        let dir_mode = std::fs::metadata(&aws).unwrap().permissions().mode() & 0o777;
        let root = unsafe { libc::geteuid() } == 0;
        let (code, mode) = match side {
            Side::Official => (if root { 0 } else { 1 }, 0o600),
            Side::Ours => (0, 0o700),
        };
        assert_eq!(out.status.code(), Some(code), "{side:?}: {}", show(&out));
        assert_eq!(dir_mode, mode, "{side:?}: ~/.aws mode {dir_mode:o}");
        if code == 0 {
            let written = std::fs::read(aws.join("credentials")).unwrap();
            assert!(normalised(&written).starts_with(b"[default]\naws_access_key_id = <new>\n"));
        }

        // README "`update`": a leading ~/ of AWS_SHARED_CREDENTIALS_FILE is expanded here;
        // the official helper takes it literally, relative to the working directory.
        let tilde = "~/creds-tilde";
        let (expanded, literal) = (home.join("creds-tilde"), cwd.path().join(tilde));
        let _ = std::fs::remove_file(&expanded);
        let _ = std::fs::remove_file(&literal);
        let mut cmd = update_command(&peer, &stage, side, "default");
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", tilde)
            .current_dir(cwd.path());
        let out = run_bounded(cmd);
        assert!(out.status.success(), "{side:?}: {}", show(&out));
        let (written, untouched) = match side {
            Side::Official => (literal, expanded),
            Side::Ours => (expanded, literal),
        };
        assert!(written.is_file(), "{side:?}: {} written", written.display());
        assert!(
            !untouched.exists(),
            "{side:?}: {} untouched",
            untouched.display()
        );
    }
}

fn update_command(peer: &Peer, stage: &Stage, side: Side, profile: &str) -> std::process::Command {
    let mut cmd = peer.command(side);
    cmd.args(stage.args("update", "{pem} {chain} --once"))
        .args(["--profile", profile]);
    cmd
}

fn update(
    peer: &Peer,
    stage: &Stage,
    side: Side,
    profile: &str,
    env: &[(&str, &Path)],
) -> std::process::Output {
    let mut cmd = update_command(peer, stage, side, profile);
    cmd.envs(env.iter().copied());
    run_bounded(cmd)
}

/// `file` with the value of every credential key line that does not hold an old value
/// replaced by `<new>`; each key's new value must be the same everywhere it appears, and
/// the access key must be a temporary one.
fn normalised(file: &[u8]) -> Vec<u8> {
    let mut news: [Option<Vec<u8>>; 3] = Default::default();
    let mut out = Vec::new();
    for line in file.split_inclusive(|&b| b == b'\n') {
        let content_end = line
            .iter()
            .rposition(|&b| b != b'\n' && b != b'\r')
            .map_or(0, |i| i + 1);
        let (content, ending) = line.split_at(content_end);
        let Some(eq) = content.iter().position(|&b| b == b'=') else {
            out.extend_from_slice(line);
            continue;
        };
        let key = String::from_utf8_lossy(&content[..eq]);
        let value_start = eq + 1 + content[eq + 1..].iter().take_while(|b| **b == b' ').count();
        let value = &content[value_start..];
        let slot = KEYS.iter().position(|k| *k == key.trim_end());
        let old = OLD.iter().any(|o| o.as_bytes() == value);
        match slot {
            Some(i) if !old && !key.starts_with(' ') => {
                let seen = news[i].get_or_insert_with(|| value.to_vec());
                assert_eq!(seen, value, "one new value per key");
                out.extend_from_slice(&content[..value_start]);
                out.extend_from_slice(b"<new>");
                out.extend_from_slice(ending);
            }
            _ => out.extend_from_slice(line),
        }
    }
    if let Some(access_key) = &news[0] {
        assert!(
            access_key.starts_with(b"ASIA"),
            "{}",
            String::from_utf8_lossy(access_key)
        );
    }
    out
}
