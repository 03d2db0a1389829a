//! `update`: the credentials file keeps every byte but the three keys, survives writers
//! killed at random points, holds two concurrent writers' profiles, and is read by boto3
//! and the AWS CLI.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::{self, run};
use crate::credential_process::Setup;

const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// `update` writing to `file`, with the test's ARNs, endpoint and leaf.
fn update(setup: &Setup, file: &Path) -> Command {
    let mut cmd = setup.leaf_subcommand("update");
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", file);
    cmd
}

/// The values of the three keys in section `profile` (first occurrence), if all present.
fn profile_values(text: &str, profile: &str) -> Option<[String; 3]> {
    let mut in_section = false;
    let mut found: [Option<String>; 3] = Default::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            if in_section {
                break;
            }
            in_section = trimmed[1..trimmed.len() - 1].trim() == profile;
            continue;
        }
        if !in_section || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(['=', ':']) {
            let key = key.trim().to_ascii_lowercase();
            if let Some(i) = KEYS.iter().position(|k| *k == key) {
                found[i] = Some(value.trim().to_owned());
            }
        }
    }
    let [a, b, c] = found;
    Some([a?, b?, c?]).filter(|v| v.iter().all(|s| !s.is_empty()))
}

/// Replaces the placeholders OLD_AK, OLD_SK and OLD_ST, where the test put them, with the
/// values now in the file: what the file must equal if nothing else changed.
fn expected(template: &str, values: &[String; 3]) -> String {
    template
        .replace("OLD_AK", &values[0])
        .replace("OLD_SK", &values[1])
        .replace("OLD_ST", &values[2])
}

#[test]
fn tricky_files_keep_every_byte_but_the_three_keys() {
    let setup = Setup::new(KeyType::P256, false);
    let file = setup.path("credentials");
    // (file before, profile, file after with the written values as placeholders)
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "# comment\r\n[default]\r\naws_access_key_id = OLD_AK\r\n; other comment\r\naws_secret_access_key=OLD_SK\r\naws_session_token   =   OLD_ST\r\n",
            "default",
            "# comment\r\n[default]\r\naws_access_key_id = OLD_AK\r\n; other comment\r\naws_secret_access_key=OLD_SK\r\naws_session_token   =   OLD_ST\r\n".into(),
        ),
        (
            "[other]\naws_access_key_id = keep\n\n[p]\nregion = eu-west-1\naws_session_token = x\naws_access_key_id = y",
            "p",
            "[other]\naws_access_key_id = keep\n\n[p]\nregion = eu-west-1\naws_session_token = OLD_ST\naws_access_key_id = OLD_AK\naws_secret_access_key = OLD_SK".into(),
        ),
        (
            "[p]\nowner = Zoë Ångström ✓\n\n[p]\naws_access_key_id = second\n",
            "p",
            "[p]\nowner = Zoë Ångström ✓\naws_access_key_id = OLD_AK\naws_secret_access_key = OLD_SK\naws_session_token = OLD_ST\n\n[p]\naws_access_key_id = second\n".into(),
        ),
        (
            "[a]\nx = 1\n# [p]\n",
            "p",
            "[a]\nx = 1\n# [p]\n\n[p]\naws_access_key_id = OLD_AK\naws_secret_access_key = OLD_SK\naws_session_token = OLD_ST\n".into(),
        ),
        (
            "[a]\nx = 1\n[p]\n",
            "p",
            "[a]\nx = 1\n[p]\naws_access_key_id = OLD_AK\naws_secret_access_key = OLD_SK\naws_session_token = OLD_ST\n".into(),
        ),
    ];
    for (before, profile, after) in cases {
        std::fs::write(&file, before).unwrap();
        let out = run(update(&setup, &file).args(["--profile", profile, "--once"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "update prints nothing on stdout");
        let text = std::fs::read_to_string(&file).unwrap();
        let values = profile_values(&text, profile).unwrap_or_else(|| panic!("{text}"));
        assert!(values[0].starts_with("ASIA"), "{text}");
        assert_eq!(text, expected(&after, &values), "from {before:?}");
    }
}

#[test]
fn boto3_and_the_aws_cli_read_the_written_profile() {
    let setup = Setup::new(KeyType::Rsa2048, false);
    let home = setup.path("home");
    std::fs::create_dir(&home).unwrap();
    // No AWS_SHARED_CREDENTIALS_FILE: ~/.aws is created, 0700, with a 0600 file.
    let out = run(setup
        .leaf_subcommand("update")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env("HOME", &home)
        .args(["--profile", "ra", "--once"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = home.join(".aws/credentials");
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&home.join(".aws")), 0o700);
    assert_eq!(mode(&file), 0o600);
    let values = profile_values(&std::fs::read_to_string(&file).unwrap(), "ra").unwrap();

    let clean = |cmd: &mut Command| {
        cmd.env("HOME", &home)
            .env("AWS_CONFIG_FILE", setup.path("no-config"))
            .env("AWS_CA_BUNDLE", &setup.ca_bundle)
            .env("AWS_DEFAULT_REGION", "us-east-1");
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ] {
            cmd.env_remove(var);
        }
    };
    let mut py = Command::new(common::python());
    py.arg("-c").arg(
        "import boto3; print(boto3.Session(profile_name='ra').get_credentials().get_frozen_credentials().access_key)",
    );
    clean(&mut py);
    let out = run(&mut py);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), values[0]);

    let identity = setup.caller_identity("ra", clean);
    assert!(
        identity["Arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/onprem-app/"),
        "{identity}"
    );
}

#[test]
fn writers_killed_at_random_points_never_leave_a_torn_file() {
    const WRITES: usize = 1000;
    let setup = Setup::new(KeyType::P256, false);
    let file = setup.path("credentials");
    let template = "# fleet credentials\n[other]\nregion = eu-west-1\n\n[p]\naws_access_key_id = OLD_AK\naws_secret_access_key = OLD_SK\naws_session_token = OLD_ST\noutput = json\n\n[tail]\nx = y\n";
    std::fs::write(&file, template).unwrap();

    // A reader parses the file in a loop for the whole test.
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (done, reads, file) = (done.clone(), reads.clone(), file.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let text = std::fs::read_to_string(&file).expect("the file always exists");
                let values = profile_values(&text, "p")
                    .unwrap_or_else(|| panic!("torn or unparseable file: {text:?}"));
                assert_eq!(text, expected(template, &values), "only the keys change");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // How long one write takes, to spread the kills over a writer's whole life.
    let started = Instant::now();
    for _ in 0..3 {
        assert!(
            run(update(&setup, &file).args(["--profile", "p", "--once"]))
                .status
                .success()
        );
    }
    let life = started.elapsed() / 3;
    let (mut killed, mut completed) = (0, 0);
    for _ in 0..WRITES {
        let mut child = update(&setup, &file)
            .args(["--profile", "p", "--once"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = life.mul_f64(1.2 * (getrandom::u32().unwrap() as f64 / u32::MAX as f64));
        std::thread::sleep(at);
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: kill() has no memory effects.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            killed += 1;
        }
        if child.wait().unwrap().success() {
            completed += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    reader.join().expect("the reader never saw a bad file");
    assert!(
        killed > 100 && completed > 100,
        "killed {killed}, completed {completed}"
    );
    assert!(
        reads.load(Ordering::Relaxed) > WRITES,
        "the reader kept reading"
    );
    let leftovers: Vec<String> = std::fs::read_dir(setup.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".credentials"))
        .collect();
    assert!(
        leftovers.len() <= 1,
        "at most one temporary file: {leftovers:?}"
    );
}

#[test]
fn two_concurrent_updaters_keep_both_profiles_current() {
    let setup = Setup::short_sessions(KeyType::P256, false, 20);
    let file = setup.path("credentials");
    std::fs::write(&file, "[keep]\nregion = eu-west-1\n").unwrap();
    let spawn = |profile: &str| {
        update(&setup, &file)
            .args(["--profile", profile])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut a = spawn("a");
    let mut b = spawn("b");
    std::thread::sleep(Duration::from_secs(60));
    for child in [&mut a, &mut b] {
        assert!(matches!(child.try_wait(), Ok(None)), "update keeps running");
        // SAFETY: kill() has no memory effects.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    let mut writes = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        writes += log.matches("credentials file updated").count();
    }
    // Each writes at start and then about every 10 s.
    assert!(writes >= 10, "{writes} writes");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("[keep]\nregion = eu-west-1\n"), "{text}");
    let mut py = Command::new(common::python());
    py.arg("-c").arg(
        "import boto3, sys\nfor p in ('a', 'b'):\n    s = boto3.Session(profile_name=p, region_name='us-east-1')\n    print(s.client('sts', endpoint_url=sys.argv[1]).get_caller_identity()['Arn'])",
    )
    .arg(setup.emulator.url())
    .env("AWS_SHARED_CREDENTIALS_FILE", &file)
    .env("AWS_CONFIG_FILE", setup.path("no-config"))
    .env("AWS_CA_BUNDLE", &setup.ca_bundle);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        py.env_remove(var);
    }
    let out = run(&mut py);
    assert!(
        out.status.success(),
        "both profiles hold unexpired credentials: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn errors_leave_the_file_untouched() {
    let setup = Setup::new(KeyType::P256, true);
    let file = setup.path("credentials");
    let before = "[default]\naws_access_key_id = untouched\n";
    std::fs::write(&file, before).unwrap();
    for (args, expected) in [
        // The leaf without its intermediate: the service refuses it.
        (
            vec!["--once"],
            "CreateSession refused (403 AccessDeniedException)",
        ),
        (
            vec!["--once", "--profile", "a]b"],
            "cannot be written as a credentials-file section",
        ),
        (
            vec!["--once", "--config", "x.toml"],
            "--certificate, --private-key, --trust-anchor-arn, --profile-arn, --role-arn cannot be combined with --config",
        ),
        // Without --once, a permanent error on the first attempt stops it too.
        (vec![], "credentials could not be obtained"),
    ] {
        let out = run(update(&setup, &file).args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    }
}
