//! The configuration layer's rule, table-driven: for every setting that has a flag, a
//! variable or a file key, every combination of them yields the first of command line,
//! environment, file, default; and the plans and errors the commands get.

use super::test_support::*;
use super::*;

fn settings() -> Vec<Setting> {
    vec![
        Setting {
            name: "session duration",
            flag: &["--session-duration", "1000"],
            env: None,
            file: "session_duration = 2000",
            in_role: true,
            profile: None,
            read: |p| p.roles[0].settings.params.duration_seconds.to_string(),
            from_flag: "1000",
            from_env: "",
            from_file: "2000",
            from_profile: "",
            default: "3600",
        },
        Setting {
            name: "region",
            flag: &["--region", "eu-west-1"],
            env: None,
            file: "region = \"eu-west-2\"",
            in_role: true,
            profile: None,
            read: |p| p.roles[0].settings.params.region.clone(),
            from_flag: "eu-west-1",
            from_env: "",
            from_file: "eu-west-2",
            from_profile: "",
            default: "us-east-1",
        },
        Setting {
            name: "endpoint",
            flag: &["--endpoint", "https://flag"],
            env: Some(("AWS_ENDPOINT_URL", "https://env")),
            file: "endpoint = \"https://file\"",
            in_role: true,
            profile: Some("endpoint_url = https://profile"),
            read: |p| p.roles[0].settings.client.endpoint.clone(),
            from_flag: "https://flag",
            from_env: "https://env",
            from_file: "https://file",
            from_profile: "https://profile",
            default: "https://rolesanywhere.us-east-1.amazonaws.com",
        },
        Setting {
            name: "STS endpoint",
            flag: &["--sts-endpoint", "https://flag"],
            env: Some(("AWS_ENDPOINT_URL_STS", "https://env")),
            file: "sts_endpoint = \"https://file\"",
            in_role: true,
            profile: Some("endpoint_url = https://profile"),
            read: |p| p.roles[0].settings.sts_endpoint.clone(),
            from_flag: "https://flag",
            from_env: "https://env",
            from_file: "https://file",
            from_profile: "https://profile",
            default: "https://sts.us-east-1.amazonaws.com",
        },
        Setting {
            name: "CA bundle",
            flag: &["--ca-bundle", "/flag.pem"],
            env: Some(("AWS_CA_BUNDLE", "/env.pem")),
            file: "ca_bundle = \"/file.pem\"",
            in_role: true,
            profile: Some("ca_bundle = /profile.pem"),
            read: |p| format!("{:?}", p.roles[0].settings.client.ca_bundle),
            from_flag: "Some(\"/flag.pem\")",
            from_env: "Some(\"/env.pem\")",
            from_file: "Some(\"/file.pem\")",
            from_profile: "Some(\"/profile.pem\")",
            default: "None",
        },
        Setting {
            name: "key password",
            flag: &[],
            env: Some(("ROLESANYWHERE_PKCS8_PASSWORD", "from-env")),
            file: "pkcs8_password_file = \"pw.txt\"",
            in_role: true,
            profile: None,
            read: |p| {
                let password = p.roles[0].settings.identity.password.as_ref();
                password.map_or("none", |s| s.expose()).to_owned()
            },
            from_flag: "",
            from_env: "from-env",
            from_file: "from-file",
            from_profile: "",
            default: "none",
        },
        Setting {
            name: "TPM key password",
            flag: &["--tpm-key-password", "from-flag"],
            env: Some(("ROLESANYWHERE_TPM_KEY_PASSWORD", "from-env")),
            file: "tpm_key_password_file = \"pw.txt\"",
            in_role: true,
            profile: None,
            read: |p| {
                let password = p.roles[0].settings.identity.tpm.password.as_ref();
                password.map_or("none", |s| s.secret.expose()).to_owned()
            },
            from_flag: "from-flag",
            from_env: "from-env",
            from_file: "from-file",
            from_profile: "",
            default: "none",
        },
        Setting {
            name: "no TPM key password",
            flag: &["--no-tpm-key-password"],
            env: None,
            file: "no_tpm_key_password = true",
            in_role: true,
            profile: None,
            read: |p| p.roles[0].settings.identity.tpm.no_password.to_string(),
            from_flag: "true",
            from_env: "",
            from_file: "true",
            from_profile: "",
            default: "false",
        },
        Setting {
            name: "TPM device",
            flag: &[],
            env: Some(("TPM_DEVICE", "/run/swtpm/sock")),
            file: "",
            in_role: true,
            profile: None,
            read: |p| format!("{:?}", p.roles[0].settings.identity.tpm.device),
            from_flag: "",
            from_env: "Some(\"/run/swtpm/sock\")",
            // The config file has no device: `$TPM_DEVICE` or the default.
            from_file: "None",
            from_profile: "",
            default: "None",
        },
        Setting {
            name: "hop limit",
            flag: &["--hop-limit", "2"],
            env: None,
            file: "hop_limit = 3",
            in_role: false,
            profile: None,
            read: |p| p.listeners[0].hop_limit.to_string(),
            from_flag: "2",
            from_env: "",
            from_file: "3",
            from_profile: "",
            default: "64",
        },
        Setting {
            name: "pacing rate",
            flag: &["--pacing-rate", "4"],
            env: None,
            file: "pacing_rate = 0.5",
            in_role: false,
            profile: None,
            read: |p| p.pacing.rate.to_string(),
            from_flag: "4",
            from_env: "",
            from_file: "0.5",
            from_profile: "",
            default: "2",
        },
        Setting {
            name: "pacing burst",
            flag: &["--pacing-burst", "3"],
            env: None,
            file: "pacing_burst = 8",
            in_role: false,
            profile: None,
            read: |p| p.pacing.burst.to_string(),
            from_flag: "3",
            from_env: "",
            from_file: "8",
            from_profile: "",
            default: "5",
        },
        Setting {
            name: "start window",
            flag: &["--start-window", "60"],
            env: None,
            file: "start_window = 600",
            in_role: false,
            profile: None,
            read: |p| p.pacing.start_window.as_secs().to_string(),
            from_flag: "60",
            from_env: "",
            from_file: "600",
            from_profile: "",
            default: "0",
        },
        Setting {
            name: "fleet slot",
            flag: &["--fleet-slot", "3/10"],
            env: None,
            file: "fleet_slot = \"4/10\"",
            in_role: false,
            profile: None,
            read: fleet,
            from_flag: "3/10 at 9.5",
            from_env: "",
            from_file: "4/10 at 9.5",
            from_profile: "",
            default: "none",
        },
        Setting {
            name: "fleet rate",
            flag: &["--fleet-slot", "0/2", "--fleet-rate", "4"],
            env: None,
            file: "fleet_slot = \"1/2\"\nfleet_rate = 3",
            in_role: false,
            profile: None,
            read: fleet,
            from_flag: "0/2 at 4",
            from_env: "",
            from_file: "1/2 at 3",
            from_profile: "",
            default: "none",
        },
        Setting {
            name: "max connections",
            flag: &["--max-connections", "10"],
            env: None,
            file: "max_connections = 20",
            in_role: false,
            profile: None,
            read: |p| p.max_connections.to_string(),
            from_flag: "10",
            from_env: "",
            from_file: "20",
            from_profile: "",
            default: "4096",
        },
        Setting {
            name: "ops listener",
            flag: &["--ops-listen", "127.0.0.1:1"],
            env: None,
            file: "ops = \"127.0.0.1:2\"",
            in_role: false,
            profile: None,
            read: |p| format!("{:?}", p.ops.as_ref().map(|o| o.to_string())),
            from_flag: "Some(\"127.0.0.1:1\")",
            from_env: "",
            from_file: "Some(\"127.0.0.1:2\")",
            from_profile: "",
            default: "None",
        },
        Setting {
            name: "allowed hosts",
            flag: &["--allow-host", "flag.internal"],
            env: None,
            file: "allowed_hosts = [\"file.internal\"]",
            in_role: false,
            profile: None,
            read: |p| p.allowed_hosts.join(","),
            from_flag: "flag.internal",
            from_env: "",
            from_file: "file.internal",
            from_profile: "",
            default: "",
        },
        Setting {
            name: "certificate expiry warning",
            flag: &["--cert-expiry-warning-days", "7"],
            env: None,
            file: "cert_expiry_warning_days = 9",
            in_role: false,
            profile: None,
            read: |p| p.cert_expiry_warning_days.to_string(),
            from_flag: "7",
            from_env: "",
            from_file: "9",
            from_profile: "",
            default: "30",
        },
        Setting {
            name: "daemon socket",
            flag: &["--daemon-socket", "/flag.sock"],
            env: None,
            file: "[daemon_socket]\npath = \"/file.sock\"",
            in_role: false,
            profile: None,
            read: |p| daemon_socket(p, |d| d.endpoint.to_string()),
            from_flag: "/flag.sock",
            from_env: "",
            from_file: "/file.sock",
            from_profile: "",
            default: "none",
        },
        Setting {
            name: "daemon socket mode and group",
            flag: &[
                "--daemon-socket",
                "/s",
                "--daemon-socket-mode",
                "600",
                "--daemon-socket-group",
                "5",
            ],
            env: None,
            file: "[daemon_socket]\npath = \"/s\"\nmode = 0o640\ngroup = \"6\"",
            in_role: false,
            profile: None,
            read: |p| daemon_socket(p, |d| format!("{:o} {:?}", d.mode, d.group)),
            from_flag: "600 Some(5)",
            from_env: "",
            from_file: "640 Some(6)",
            from_profile: "",
            default: "none",
        },
        Setting {
            name: "daemon socket allow list",
            flag: &[
                "--daemon-socket",
                "/s",
                "--daemon-socket-allow-user",
                "7",
                "--daemon-socket-allow-group",
                "8",
            ],
            env: None,
            file: "[daemon_socket]\npath = \"/s\"\nallow_users = [9]\nallow_groups = [\"10\"]",
            in_role: false,
            profile: None,
            read: |p| daemon_socket(p, |d| format!("{:?} {:?}", d.allow.uids, d.allow.gids)),
            from_flag: "[7] [8]",
            from_env: "",
            from_file: "[9] [10]",
            from_profile: "",
            default: "none",
        },
    ]
}

#[test]
fn command_line_then_environment_then_file_then_default_for_every_setting() {
    for setting in settings() {
        // Every subset of the sources this setting has.
        for mask in 0..16u8 {
            let flag = mask & 1 != 0 && !setting.flag.is_empty();
            let env = mask & 2 != 0 && setting.env.is_some();
            let file = mask & 4 != 0;
            let profile = mask & 8 != 0 && setting.profile.is_some();
            let flags: &[&str] = if flag { setting.flag } else { &[] };
            let vars: Vec<(&str, &str)> = setting.env.filter(|_| env).into_iter().collect();
            let (top, role_keys) = match (file, setting.in_role) {
                (false, _) => ("", ""),
                (true, true) => ("", setting.file),
                (true, false) => (setting.file, ""),
            };
            let aws_keys = setting.profile.filter(|_| profile).unwrap_or_default();
            let plan = plan_with(flags, &vars, top, role_keys, aws_keys)
                .unwrap_or_else(|e| panic!("{}: {e}", setting.name));
            let expected = if flag {
                setting.from_flag
            } else if env {
                setting.from_env
            } else if file {
                setting.from_file
            } else if profile {
                setting.from_profile
            } else {
                setting.default
            };
            assert_eq!(
                (setting.read)(&plan),
                expected,
                "{}: flag {flag}, environment {env}, file {file}, AWS profile {profile}",
                setting.name
            );
        }
    }
}

#[test]
fn without_a_config_file_the_endpoint_is_the_flag_then_the_service_variable_then_the_global_one() {
    let flags = |extra: &[&str]| {
        let mut all = vec![
            "--certificate",
            "c",
            "--private-key",
            "k",
            "--trust-anchor-arn",
            TA,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            "arn:aws:iam::111122223333:role/app",
        ];
        all.extend_from_slice(extra);
        serve_args(&all).credentials
    };
    let both = [
        ("AWS_ENDPOINT_URL_ROLESANYWHERE", "https://svc"),
        ("AWS_ENDPOINT_URL", "https://global"),
    ];
    let endpoint = |extra: &[&str], env: &[(&str, &str)]| {
        let settings = credential_process(&flags(extra), &inputs(env, "")).unwrap();
        (
            settings.client.endpoint,
            settings.endpoint_source.to_string(),
        )
    };
    assert_eq!(
        endpoint(&["--endpoint", "https://flag"], &both),
        ("https://flag".into(), "--endpoint".into())
    );
    assert_eq!(
        endpoint(&[], &both),
        (
            "https://svc".into(),
            "$AWS_ENDPOINT_URL_ROLESANYWHERE".into()
        )
    );
    assert_eq!(endpoint(&[], &both[1..]).1, "$AWS_ENDPOINT_URL");
    assert_eq!(
        endpoint(
            &["--region", "eu-west-1"],
            &[("AWS_USE_FIPS_ENDPOINT", "true")]
        )
        .0,
        "https://rolesanywhere-fips.eu-west-1.amazonaws.com"
    );
}

#[test]
fn errors_name_the_flag_the_variable_or_the_file_line_and_key() {
    let error = plan(&[], &[], "", "session_duration = 5")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "config file t.toml, line 10: role \"app\": session_duration 5 is out of range; the service accepts 900 to 43200 seconds (15 minutes to 12 hours)"
    );
    let error = plan(&["--session-duration", "5"], &[], "", "")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("--session-duration 5 is out of range"),
        "{error}"
    );
    let error = plan(&[], &[], "hop_limit = 0", "").unwrap_err().to_string();
    assert!(
        error.starts_with("config file t.toml, line 1: hop_limit 0 is out of range"),
        "{error}"
    );
    let error = plan(&[], &[], "max_connections = 0", "")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "config file t.toml, line 1: max_connections must be at least 1"
    );
    let error = plan(&["--max-connections", "0"], &[], "", "")
        .unwrap_err()
        .to_string();
    assert_eq!(error, "--max-connections must be at least 1");
    for (flags, file, expected) in [
        (
            &["--pacing-rate", "0"][..],
            "",
            "--pacing-rate must be a number of calls per second from 0.01 to 1000",
        ),
        (
            &[][..],
            "pacing_burst = 0",
            "config file t.toml, line 1: pacing_burst must be a number of calls from 1 to 1000",
        ),
        (
            &["--start-window", "3601"][..],
            "",
            "--start-window must be a number of seconds from 0 to 3600",
        ),
    ] {
        let error = plan(flags, &[], file, "").unwrap_err().to_string();
        assert_eq!(error, expected);
    }
    let text = role("app", "imds = \"127.0.0.1:1\"").replace(
        "role_arn = \"arn:aws:iam::111122223333:role/app\"",
        "role_arn = \"bad\"",
    );
    let error = serve_plan(
        &serve_args(&["--config", "t.toml"]),
        &inputs(&[], &text),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with(
            "config file t.toml, line 7: role \"app\": role_arn \"bad\" is not an ARN"
        ),
        "{error}"
    );
    let missing = role("app", "imds = \"127.0.0.1:1\"")
        .replace(&format!("profile_arn = \"{PROFILE}\"\n"), "");
    let error = serve_plan(
        &serve_args(&["--config", "t.toml"]),
        &inputs(&[], &missing),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "config file t.toml, line 2: role \"app\": profile_arn is required; give the ARN"
    );
    let error = serve_plan(
        &serve_args(&["--config", "t.toml"]),
        &inputs(&[], "[[role]]\nname = 1\n"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("config file t.toml, line 2: invalid type"),
        "{error}"
    );
}

#[test]
fn the_config_file_is_read_through_the_file_system_given() {
    let error = serve_plan(
        &serve_args(&["--config", "other.toml"]),
        &inputs(&[], ""),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("config file other.toml: cannot be read"),
        "{error}"
    );
}

#[test]
fn the_aws_config_file_gives_attempts_and_the_services_endpoint_and_can_be_ignored() {
    let aws = "max_attempts = 5\nservices = mine\n[services mine]\nrolesanywhere =\n  endpoint_url = https://svc.example\n";
    let plan = plan_with(&[], &[], "", "", aws).unwrap();
    let client = &plan.roles[0].settings.client;
    assert_eq!(client.max_attempts, 5);
    assert_eq!(client.endpoint, "https://svc.example");
    let plan = plan_with(&[], &[("AWS_MAX_ATTEMPTS", "2")], "", "", aws).unwrap();
    assert_eq!(plan.roles[0].settings.client.max_attempts, 2);
    let ignoring = [
        ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ("AWS_ENDPOINT_URL", "https://env"),
    ];
    let plan = plan_with(&[], &ignoring, "", "", aws).unwrap();
    assert_eq!(
        plan.roles[0].settings.client.endpoint,
        "https://rolesanywhere.us-east-1.amazonaws.com"
    );
    let error = plan_with(&[], &[], "", "", "max_attempts = 0")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "AWS config file /home/t/.aws/config, line 2: profile \"default\": max_attempts \"0\" is not a number of attempts; use a whole number from 1 to 10"
    );
    // A profile that AWS_PROFILE names but the file lacks gives nothing, and no error.
    let plan = plan_with(&[], &[("AWS_PROFILE", "absent")], "", "", aws).unwrap();
    assert_eq!(plan.roles[0].settings.client.max_attempts, 3);
}
