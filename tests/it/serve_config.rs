//! `serve --config`: several roles in one daemon, each reaching its own SDK client, and
//! the config file's errors.

use std::path::Path;
use std::process::Command;

use rolesanywhere_helper::pki::KeyType;

use crate::common::{self, helper};
use crate::credential_process::{PROFILE, Setup, TA, free_port};
use crate::serve_daemon::{Daemon, http, imds_token};

/// Runs tests/python/whoami.py with a clean AWS environment plus `env`; its JSON.
fn boto3_whoami(setup: &Setup, env: &[(&str, String)]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/whoami.py");
    let mut py = Command::new(common::python());
    py.arg(script)
        .arg(setup.emulator.url())
        .env("AWS_CONFIG_FILE", setup.path("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", setup.path("no-credentials"))
        .env("AWS_CA_BUNDLE", &setup.ca_bundle)
        .env("AWS_EC2_METADATA_V1_DISABLED", "true");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    ] {
        py.env_remove(var);
    }
    for (name, value) in env {
        py.env(name, value);
    }
    common::json_stdout(&common::run(&mut py), "whoami.py")
}

pub fn role_toml(setup: &Setup, name: &str, extra: &str) -> String {
    format!(
        "[[role]]\nname = \"{name}\"\ncertificate = \"{}\"\nprivate_key = \"{}\"\ntrust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"arn:aws:iam::111122223333:role/{name}\"\nendpoint = \"{}\"\nca_bundle = \"{}\"\n{extra}\n",
        setup.path("leaf.pem").display(),
        setup.path("leaf.key").display(),
        setup.emulator.url(),
        setup.ca_bundle.display(),
    )
}

#[test]
fn two_roles_from_one_config_reach_their_own_sdk_clients() {
    let setup = Setup::new(KeyType::P256, false);
    let (ecs_port, alpha_port, beta_port) = (free_port(), free_port(), free_port());
    let token_file = setup.path("beta.token");
    let config = setup.path("serve.toml");
    std::fs::write(
        &config,
        format!(
            "# Two roles, one daemon\nbind = \"127.0.0.1:{ecs_port}\"\n\n{}{}",
            role_toml(
                &setup,
                "alpha",
                &format!("imds = \"127.0.0.1:{alpha_port}\"")
            ),
            role_toml(
                &setup,
                "beta",
                &format!(
                    "imds = \"127.0.0.1:{beta_port}\"\necs_token_file = \"{}\"",
                    token_file.display()
                )
            ),
        ),
    )
    .unwrap();
    let mut cmd = helper();
    cmd.args(["serve", "--config"]).arg(&config);
    let d = Daemon::start(cmd);
    let log = d.log();
    assert!(
        log.contains("Role alpha (arn:aws:iam::111122223333:role/alpha):"),
        "{log}"
    );
    assert!(log.contains(&format!(
        "export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:{ecs_port}/ecs/beta"
    )));
    assert!(log.contains("serving credentials for 2 role(s)"), "{log}");

    let alpha = boto3_whoami(
        &setup,
        &[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://127.0.0.1:{alpha_port}/"),
        )],
    );
    let beta = boto3_whoami(
        &setup,
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://127.0.0.1:{ecs_port}/ecs/beta"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
    );
    assert_eq!(alpha["method"], "iam-role", "{alpha}");
    assert_eq!(beta["method"], "container-role", "{beta}");
    assert!(
        alpha["arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/alpha/"),
        "{alpha}"
    );
    assert!(
        beta["arn"]
            .as_str()
            .unwrap()
            .contains(":assumed-role/beta/"),
        "{beta}"
    );
    assert_ne!(alpha["access_key"], beta["access_key"]);

    // Each IMDS listener lists only its own role; the ECS listener has no IMDS.
    for (port, name) in [(alpha_port, "alpha"), (beta_port, "beta")] {
        let token = imds_token(port);
        let list = http(
            ("127.0.0.1", port),
            "GET",
            "/latest/meta-data/iam/security-credentials/",
            &[("X-aws-ec2-metadata-token", &token)],
        );
        assert_eq!(list.body, name);
    }
    let no_imds = http(
        ("127.0.0.1", ecs_port),
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
    );
    assert_eq!(no_imds.status, 404);
    assert_eq!(setup.emulator.issued_sessions(), 2, "one session per role");
}

#[test]
fn config_file_errors_name_the_file_and_the_problem() {
    let setup = Setup::new(KeyType::P256, false);
    let config = setup.path("serve.toml");
    for (text, expected) in [
        ("bind = 5".to_owned(), "invalid type"),
        ("".to_owned(), "no [[role]] is defined"),
        (role_toml(&setup, "x", ""), "served nowhere"),
        (
            role_toml(&setup, "x", "imds = \"127.0.0.1:1\"\nsesion_duration = 900"),
            "unknown field `sesion_duration`",
        ),
        (
            role_toml(&setup, "x", "imds = \"127.0.0.1:1\"")
                .replace("role_arn = ", "role_arn = \"bad\"\n#"),
            "role \"x\": role_arn \"bad\" is not an ARN",
        ),
    ] {
        std::fs::write(&config, &text).unwrap();
        let out = common::run(helper().args(["serve", "--config"]).arg(&config));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}\n{stderr}");
        assert!(
            stderr.contains(&format!("config file {}", config.display())),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{text}\n=> {stderr}");
    }
    assert!(setup.emulator.received().is_empty());
}
