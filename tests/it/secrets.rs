//! Secrets stay secret: no secret in any log line at debug level, and the processes that
//! hold them cannot be dumped or traced by other processes of the same user.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;

use rolesanywhere_helper::pki::KeyType;

use crate::common::{bin, require_tool, run};
use crate::credential_process::{Setup, credentials};
use crate::serve_daemon::{Daemon, http, imds_credentials, imds_token};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn debug_logs_hold_none_of_the_secrets_issued() {
    let setup = Setup::new(KeyType::P256, false);
    let dir = setup.dir.path();
    let encrypted_key = setup.encrypted_leaf_key(PASSWORD);
    let key_body: String = std::fs::read_to_string(dir.join("leaf.key"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let with_key = |sub: &str| {
        let mut cmd = setup.leaf_subcommand(sub);
        cmd.arg("--private-key")
            .arg(&encrypted_key)
            .env("ROLESANYWHERE_PKCS8_PASSWORD", PASSWORD)
            .arg("--debug")
            .env("RUST_LOG", "trace");
        cmd
    };
    let mut secrets: Vec<String> = vec![PASSWORD.into(), key_body];
    let mut logs = String::new();

    // credential-process
    let out = run(&mut with_key("credential-process"));
    let json = credentials(&out);
    secrets.push(json["SecretAccessKey"].as_str().unwrap().into());
    secrets.push(json["SessionToken"].as_str().unwrap().into());
    logs.push_str(&String::from_utf8_lossy(&out.stderr));

    // serve, over IMDS and ECS
    let token_file = setup.path("ecs-token");
    let mut serve = with_key("serve");
    serve.arg("--ecs-token-file").arg(&token_file);
    let d = Daemon::start(serve);
    let imds = imds_credentials(d.port, "onprem-app").json();
    let ecs_token = std::fs::read_to_string(&token_file).unwrap();
    let ecs = http(
        ("127.0.0.1", d.port),
        "GET",
        "/ecs/onprem-app",
        &[("Authorization", &ecs_token)],
    )
    .json();
    secrets.push(imds_token(d.port));
    secrets.push(ecs_token);
    for doc in [&imds, &ecs] {
        secrets.push(doc["SecretAccessKey"].as_str().unwrap().into());
        secrets.push(doc["Token"].as_str().unwrap().into());
    }

    // update
    let file = setup.path("credentials");
    let out = run(with_key("update")
        .arg("--once")
        .env("AWS_SHARED_CREDENTIALS_FILE", &file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&file).unwrap();
    for line in written.lines().filter(|l| !l.contains("aws_access_key_id")) {
        if let Some((_, value)) = line.split_once(" = ") {
            secrets.push(value.into());
        }
    }
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    logs.push_str(&d.log());

    assert!(logs.lines().count() > 20, "debug logging ran: {logs}");
    assert!(secrets.len() >= 12);
    for secret in &secrets {
        assert!(secret.len() >= 16, "a real secret: {secret:?}");
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the logs:\n{logs}"
        );
    }
}

#[test]
fn processes_holding_secrets_are_not_dumpable() {
    // proc(5): the files of a non-dumpable process belong to root, whoever runs it. So run
    // the daemon as `nobody` and look at who owns its /proc/PID/environ.
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs the daemon as another user, which needs root"
    );
    let setpriv = require_tool("setpriv");
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let setup = Setup::new(KeyType::P256, false);
    // Files `nobody` can read: its own key (0600), the certificate and the CA bundle.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = |name: &str, from: &Path, mode: u32| {
        let to = shared.path().join(name);
        std::fs::copy(from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&to, Some(65534), Some(65534)).unwrap();
        to
    };
    let cert = copy("leaf.pem", &setup.path("leaf.pem"), 0o644);
    let key = copy("leaf.key", &setup.path("leaf.key"), 0o600);
    let ca = copy("ca.pem", &setup.ca_bundle, 0o644);

    let serve = setup.leaf_subcommand("serve");
    let mut cmd = Command::new(&setpriv);
    cmd.args(nobody)
        .arg(bin())
        .args(serve.get_args())
        .arg("--certificate")
        .arg(&cert)
        .arg("--private-key")
        .arg(&key)
        .env("AWS_CA_BUNDLE", &ca);
    let d = Daemon::start(cmd);
    let owner = |pid: u32| {
        std::fs::metadata(format!("/proc/{pid}/environ"))
            .unwrap()
            .uid()
    };
    assert_eq!(owner(d.pid()), 0, "the daemon is not dumpable");

    // The control: an ordinary process of `nobody` owns its /proc files.
    let mut control = Command::new(&setpriv)
        .args(nobody)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let control_owner = owner(control.id());
    let _ = control.kill();
    let _ = control.wait();
    assert_eq!(control_owner, 65534, "the check can tell the difference");
}
