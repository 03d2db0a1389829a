//! `demo` prints commands that work as printed, and removes its folder on Ctrl-C.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, helper};

#[test]
fn demo_commands_work_and_ctrl_c_cleans_up() {
    let mut demo = helper()
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
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
    let exports = find("export ");
    let aws_line = find("aws sts get-caller-identity");

    // Run the printed lines as printed, in a shell, with the test venv's aws on PATH.
    let venv = common::require_tool("aws");
    let path = format!(
        "{}:{}",
        venv.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = common::run(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{exports}\n{aws_line} --output json"))
            .env("PATH", path)
            .env_remove("AWS_PROFILE"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        identity["Arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/demo-role/"),
        "{identity}"
    );

    let folder = find("Press Ctrl-C")
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&folder).is_dir());
    common::run_ok(Command::new("kill").args(["-INT", &demo.id().to_string()]));
    let status = demo.wait().unwrap();
    assert!(status.success(), "demo exits 0 on Ctrl-C");
    assert!(!std::path::Path::new(&folder).exists(), "{folder} removed");
}
