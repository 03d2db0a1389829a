//! `demo` prints commands that work as printed (through IMDS, ECS and credential_process),
//! and removes its folder on Ctrl-C.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, helper};

#[test]
fn demo_commands_work_and_ctrl_c_cleans_up() {
    let mut demo = Interrupted(
        helper()
            .arg("demo")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("Press Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("demo printed its instructions in time");
        lines.push(line);
    }
    let find = |prefix: &str| {
        lines
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {lines:#?}"))
            .to_owned()
    };
    let aws_line = find("aws sts get-caller-identity");
    let exports: Vec<&String> = lines
        .iter()
        .filter(|l| l.trim().starts_with("export "))
        .collect();
    let joined = exports
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        exports.len(),
        3,
        "IMDS, ECS and credential_process: {lines:#?}"
    );
    assert!(joined.contains("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:"));
    assert!(joined.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:"));
    assert!(joined.contains("AWS_PROFILE=demo"));

    // Run each printed export with the printed aws line, in a shell, with the test venv's
    // aws on PATH and no AWS variables from this environment.
    let venv = common::require_tool("aws");
    let path = format!(
        "{}:{}",
        venv.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for export in exports {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("{}\n{aws_line} --output json", export.trim()))
            .env("PATH", &path);
        for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            sh.env_remove(var);
        }
        let identity = common::json_stdout(&common::run(&mut sh), export);
        assert!(
            identity["Arn"]
                .as_str()
                .unwrap()
                .contains(":assumed-role/demo-role/"),
            "{export}: {identity}"
        );
    }

    let folder = find("Press Ctrl-C")
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&folder).is_dir());
    common::run_ok(Command::new("kill").args(["-INT", &demo.0.id().to_string()]));
    let status = demo.0.wait().unwrap();
    assert!(status.success(), "demo exits 0 on Ctrl-C");
    assert!(!std::path::Path::new(&folder).exists(), "{folder} removed");
}

/// The demo process, sent Ctrl-C if the test fails half-way, so that it cleans up too.
struct Interrupted(std::process::Child);

impl Drop for Interrupted {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}
