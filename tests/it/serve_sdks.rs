//! Real SDKs get their credentials from `serve`, the way they would on EC2 (IMDSv2) or in a
//! container (the ECS endpoint): botocore through boto3 and the AWS CLI, the Rust SDK's
//! `aws-config` providers, and the JavaScript SDK v3.
//!
//! Each test checks that the SDK reports the access key the daemon serves, and that STS
//! GetCallerIdentity on the emulator accepts the SDK's credentials, which it does only for
//! a key, secret and session token it issued itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_http_client::tls;
use rolesanywhere_helper::pki::KeyType;

use crate::common;
use crate::credential_process::{REGION, ROLE, Setup};
use crate::serve_daemon::{Daemon, imds_credentials};

/// The role's name: the last component of its ARN, the name IMDS and the ECS path use.
const ROLE_NAME: &str = "onprem-app";

/// The child test that runs the Rust SDK's ECS provider; it reads its configuration from
/// the process environment only, so it runs in a process of its own.
const ECS_CHILD: &str = "serve_sdks::rust_sdk_ecs_child";
/// Set for that child; without it the child test does nothing.
const CHILD_VAR: &str = "RA_TEST_SDK_ECS_CHILD";
/// What the child prints before its credentials (libtest may start the line).
const CHILD_MARK: &str = "SDK-CREDENTIALS ";

/// Variables that would make an SDK look elsewhere for credentials or configuration.
const AWS_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// boto3's default chain, then STS with what it found. Argument: the STS endpoint URL.
pub(crate) const BOTO3_WHOAMI: &str = r#"
import json, sys
import boto3

session = boto3.Session()
credentials = session.get_credentials()
if credentials is None:
    sys.exit("boto3 found no credentials")
frozen = credentials.get_frozen_credentials()
identity = session.client("sts", endpoint_url=sys.argv[1]).get_caller_identity()
print(json.dumps({
    "method": credentials.method,
    "access_key": frozen.access_key,
    # Inside botocore's 15-minute advisory window it would fetch again on every use.
    "refresh_needed": credentials.refresh_needed(),
    "arn": identity["Arn"],
    "account": identity["Account"],
}))
"#;

/// STS GetCallerIdentity with the credentials given as JSON on stdin (AccessKeyId,
/// SecretAccessKey, SessionToken). Argument: the STS endpoint URL.
const STS_WITH_GIVEN: &str = r#"
import json, sys
import boto3

given = json.load(sys.stdin)
sts = boto3.client(
    "sts",
    endpoint_url=sys.argv[1],
    aws_access_key_id=given["AccessKeyId"],
    aws_secret_access_key=given["SecretAccessKey"],
    aws_session_token=given["SessionToken"],
)
identity = sts.get_caller_identity()
print(json.dumps({"arn": identity["Arn"], "account": identity["Account"]}))
"#;

/// An emulator and a `serve` daemon in front of it.
struct Served {
    setup: Setup,
    daemon: Daemon,
    /// The ECS token file, when the ECS endpoint is on.
    token_file: Option<PathBuf>,
}

impl Served {
    fn imds() -> Self {
        let setup = Setup::new(KeyType::P256, false);
        let daemon = Daemon::start(setup.leaf_subcommand("serve"));
        Self {
            setup,
            daemon,
            token_file: None,
        }
    }

    fn with_ecs() -> Self {
        let setup = Setup::new(KeyType::P256, false);
        let token_file = setup.path("ecs-token");
        let mut cmd = setup.leaf_subcommand("serve");
        cmd.arg("--ecs-token-file").arg(&token_file);
        let daemon = Daemon::start(cmd);
        Self {
            setup,
            daemon,
            token_file: Some(token_file),
        }
    }

    /// The value of `export NAME=` on the daemon's stderr.
    fn exported(&self, name: &str) -> String {
        let log = self.daemon.log();
        let prefix = format!("export {name}=");
        log.lines()
            .find_map(|line| line.trim().strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{log}"))
            .to_owned()
    }

    /// The IMDS variables, as printed, with their expected values checked.
    fn imds_env(&self) -> Vec<(&'static str, String)> {
        let endpoint = self.exported("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        assert_eq!(endpoint, format!("{}/", self.daemon.url()));
        vec![
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint),
            ("AWS_EC2_METADATA_V1_DISABLED", "true".to_owned()),
        ]
    }

    /// The ECS variables, as printed, with their expected values checked; IMDS is off, so
    /// that only the container provider can succeed.
    fn ecs_env(&self) -> Vec<(&'static str, String)> {
        let token_file = self.token_file.as_ref().expect("started with_ecs");
        let uri = self.exported("AWS_CONTAINER_CREDENTIALS_FULL_URI");
        assert_eq!(
            ROLE.rsplit('/').next(),
            Some(ROLE_NAME),
            "the ECS path names the role"
        );
        assert_eq!(uri, format!("{}/ecs/{ROLE_NAME}", self.daemon.url()));
        let file = self.exported("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        assert_eq!(Path::new(&file), token_file.as_path());
        let token = std::fs::read(token_file).unwrap();
        assert!(
            !token.is_empty() && !token.contains(&b'\n'),
            "one token, no newline: {token:?}"
        );
        vec![
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    fn sdk_command(&self, program: impl AsRef<std::ffi::OsStr>, env: &[(&str, String)]) -> Command {
        sdk_command(&self.setup, program, env)
    }

    /// The access key the daemon serves now.
    fn served_key(&self) -> String {
        let reply = imds_credentials(self.daemon.port, ROLE_NAME);
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()["AccessKeyId"].as_str().unwrap().to_owned()
    }

    /// boto3's default chain with `env`: what `BOTO3_WHOAMI` printed.
    fn boto3(&self, env: &[(&str, String)]) -> serde_json::Value {
        let mut py = self.sdk_command(common::python(), env);
        py.arg("-c")
            .arg(BOTO3_WHOAMI)
            .arg(self.setup.emulator.url());
        let out = common::run(&mut py);
        assert!(
            out.status.success(),
            "boto3 ({env:?}):\n{}\ndaemon:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Checks that `credentials` (AccessKeyId, SecretAccessKey, SessionToken) are the ones
    /// the daemon serves, and that the emulator's STS accepts them for the role.
    fn check_issued(&self, sdk: &str, credentials: &serde_json::Value) {
        let key = credentials["AccessKeyId"].as_str().unwrap();
        assert!(key.starts_with("ASIA"), "{sdk}: {credentials}");
        assert_eq!(key, self.served_key(), "{sdk}: the served key");
        check_identity(sdk, &sts_identity(&self.setup, credentials));
    }
}

/// The emulator's STS answer names the account and the assumed role.
fn check_identity(sdk: &str, identity: &serde_json::Value) {
    let arn = identity["arn"].as_str().unwrap_or_default();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::111122223333:assumed-role/{ROLE_NAME}/"
        )),
        "{sdk}: {identity}"
    );
    assert_eq!(identity["account"], "111122223333", "{sdk}: {identity}");
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

#[test]
fn boto3_gets_credentials_through_imds() {
    let served = Served::imds();
    let found = served.boto3(&served.imds_env());
    assert_eq!(found["method"], "iam-role", "{found}");
    assert_eq!(found["refresh_needed"], false, "{found}");
    assert_eq!(found["access_key"], served.served_key().as_str(), "{found}");
    check_identity("boto3 through IMDS", &found);
}

#[test]
fn boto3_gets_credentials_through_ecs() {
    let served = Served::with_ecs();
    let found = served.boto3(&served.ecs_env());
    assert_eq!(found["method"], "container-role", "{found}");
    assert_eq!(found["refresh_needed"], false, "{found}");
    assert_eq!(found["access_key"], served.served_key().as_str(), "{found}");
    check_identity("boto3 through ECS", &found);
}

#[test]
fn aws_cli_calls_sts_with_credentials_from_imds() {
    let served = Served::imds();
    let mut aws = served.sdk_command(common::require_tool("aws"), &served.imds_env());
    aws.args(["sts", "get-caller-identity", "--output", "json"])
        .args(["--endpoint-url", &served.setup.emulator.url()]);
    let out = common::run(&mut aws);
    assert!(
        out.status.success(),
        "aws sts get-caller-identity:\n{}\ndaemon:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.daemon.log()
    );
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_identity(
        "aws",
        &serde_json::json!({"arn": identity["Arn"], "account": identity["Account"]}),
    );
    assert!(
        identity["UserId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("AROA"),
        "{identity}"
    );
}

/// An HTTP client for aws-config: rustls on ring (only plain HTTP is used here).
fn rust_sdk_provider_config() -> aws_config::provider_config::ProviderConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::provider_config::ProviderConfig::without_region().with_http_client(http)
}

/// What a Rust SDK provider returned, in the JSON shape of the other SDKs' scripts.
fn rust_sdk_json(credentials: &aws_credential_types::Credentials) -> serde_json::Value {
    let expiry = credentials.expiry().expect("temporary credentials expire");
    let left = expiry
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        left > std::time::Duration::from_secs(15 * 60),
        "more than 15 minutes left: {left:?}"
    );
    serde_json::json!({
        "AccessKeyId": credentials.access_key_id(),
        "SecretAccessKey": credentials.secret_access_key(),
        "SessionToken": credentials.session_token().expect("a session token"),
    })
}

#[test]
fn rust_sdk_imds_provider_gets_credentials() {
    let served = Served::imds();
    let config = rust_sdk_provider_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let credentials = runtime.block_on(async {
        let client = aws_config::imds::Client::builder()
            .configure(&config)
            .endpoint(format!("{}/", served.daemon.url()))
            .unwrap()
            .build();
        aws_config::imds::credentials::ImdsCredentialsProvider::builder()
            .configure(&config)
            .imds_client(client)
            .build()
            .provide_credentials()
            .await
    });
    let credentials = credentials.unwrap_or_else(|e| {
        panic!(
            "ImdsCredentialsProvider: {}\ndaemon:\n{}",
            error_chain(&e),
            served.daemon.log()
        )
    });
    served.check_issued("aws-config IMDS", &rust_sdk_json(&credentials));
}

#[test]
fn rust_sdk_ecs_provider_gets_credentials() {
    let served = Served::with_ecs();
    // EcsCredentialsProvider reads only the process environment: run it in a child process
    // of this test binary, with the daemon's ECS variables set.
    let mut child = served.sdk_command(std::env::current_exe().unwrap(), &served.ecs_env());
    child
        .args([ECS_CHILD, "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_VAR, "1");
    let out = common::run(&mut child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "EcsCredentialsProvider:\n{stdout}\n{}\ndaemon:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.daemon.log()
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(CHILD_MARK).map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no credentials from the child:\n{stdout}"));
    let credentials: serde_json::Value = serde_json::from_str(line).unwrap();
    served.check_issued("aws-config ECS", &credentials);
}

/// Run by `rust_sdk_ecs_provider_gets_credentials` in a process of its own, with the ECS
/// variables set: prints what `EcsCredentialsProvider` returned. Does nothing otherwise.
#[test]
#[ignore = "run by rust_sdk_ecs_provider_gets_credentials in a child process"]
fn rust_sdk_ecs_child() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let config = rust_sdk_provider_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let credentials = runtime
        .block_on(
            aws_config::ecs::EcsCredentialsProvider::builder()
                .configure(&config)
                .build()
                .provide_credentials(),
        )
        .unwrap_or_else(|e| panic!("EcsCredentialsProvider: {}", error_chain(&e)));
    println!("{CHILD_MARK}{}", rust_sdk_json(&credentials));
}

/// `node SCRIPT` in the SDK's directory (`$RA_TEST_JS_DIR`, else tests/sdk/js) with `env`;
/// the credentials it printed.
fn node(served: &Served, script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let node = common::require_tool("node");
    let dir = std::env::var_os("RA_TEST_JS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/js"));
    assert!(
        dir.join("node_modules/@aws-sdk/credential-providers")
            .is_dir(),
        "the JavaScript SDK is not installed in {}; run tests/run.sh, which installs it",
        dir.display()
    );
    let mut cmd = served.sdk_command(node, env);
    cmd.arg(script).current_dir(&dir);
    let out = common::run(&mut cmd);
    assert!(
        out.status.success(),
        "node {script}:\n{}\ndaemon:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.daemon.log()
    );
    let credentials: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expiration = credentials["Expiration"].as_str().unwrap_or_default();
    let expiration =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("node {script}: Expiration {expiration:?}: {e}"));
    let left = expiration - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(15),
        "node {script}: more than 15 minutes left: {credentials}"
    );
    credentials
}

#[test]
fn javascript_sdk_gets_credentials_through_imds() {
    let served = Served::imds();
    let credentials = node(&served, "imds.mjs", &served.imds_env());
    served.check_issued("JavaScript fromInstanceMetadata", &credentials);
}

#[test]
fn javascript_sdk_gets_credentials_through_ecs() {
    let served = Served::with_ecs();
    let credentials = node(&served, "ecs.mjs", &served.ecs_env());
    served.check_issued("JavaScript fromHttp", &credentials);
}

/// `program` with no AWS configuration but `env`: empty config and credentials files, the
/// region, and the emulator's CA for the STS calls.
pub(crate) fn sdk_command(
    setup: &Setup,
    program: impl AsRef<std::ffi::OsStr>,
    env: &[(&str, String)],
) -> Command {
    let mut cmd = Command::new(program);
    for var in AWS_VARS {
        cmd.env_remove(var);
    }
    let empty = setup.path("empty-aws-file");
    std::fs::write(&empty, "").unwrap();
    cmd.env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_REGION", REGION)
        .env("AWS_CA_BUNDLE", &setup.ca_bundle);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

/// What the emulator's STS (through boto3) says of `credentials` (AccessKeyId,
/// SecretAccessKey, SessionToken): `STS_WITH_GIVEN`'s JSON, or a failure if it refuses them.
pub(crate) fn sts_identity(setup: &Setup, credentials: &serde_json::Value) -> serde_json::Value {
    let mut py = sdk_command(setup, common::python(), &[]);
    py.arg("-c").arg(STS_WITH_GIVEN).arg(setup.emulator.url());
    let out = common::run_with_input(&mut py, credentials.to_string().as_bytes());
    assert!(
        out.status.success(),
        "STS refused the credentials:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
