//! Role chaining end to end: CreateSession on the emulator, then STS AssumeRole on the
//! emulator for each `--assume-role-arn`, from `credential-process`, `serve` (boto3 through
//! IMDS) and `update`. The emulator's STS checks each hop's signature with the secret it
//! issued, the session token, and its role trust; GetCallerIdentity through boto3 then
//! names the last role. Each refusal of STS is one clear line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rolesanywhere_helper::credentials::Credentials;
use rolesanywhere_helper::emulator::{EmulatorConfig, ProfileConfig, RoleTrustConfig};
use rolesanywhere_helper::pki::KeyType;
use rolesanywhere_helper::rolesanywhere::ClientConfig;
use rolesanywhere_helper::secret::Secret;
use rolesanywhere_helper::sts::{Hop, StsClient};

use crate::common;
use crate::credential_process::{PROFILE, REGION, ROLE, Setup, credentials, failure};
use crate::serve_daemon::{Daemon, imds_credentials};
use crate::serve_sdks::BOTO3_WHOAMI;

/// The role Roles Anywhere gives, in the security account: `ROLE`.
const CENTRAL: &str = ROLE;
/// A workload role in another account, trusting `CENTRAL`.
const WORKLOAD: &str = "arn:aws:iam::444455556666:role/workload";
/// A third account's role, trusting `WORKLOAD` with an external ID.
const DEEP: &str = "arn:aws:iam::555566667777:role/deep";
const EXTERNAL_ID: &str = "deep-secret-1";

/// The trust of the emulator's STS: CENTRAL -> WORKLOAD -> DEEP (with the external ID).
fn trust(config: &mut EmulatorConfig) {
    config.roles = vec![
        RoleTrustConfig {
            arn: WORKLOAD.into(),
            trusted_role_arns: vec![CENTRAL.into()],
            external_id: None,
            duration_seconds: None,
        },
        RoleTrustConfig {
            arn: DEEP.into(),
            trusted_role_arns: vec![WORKLOAD.into()],
            external_id: Some(EXTERNAL_ID.into()),
            duration_seconds: None,
        },
    ];
}

fn trusting_setup() -> Setup {
    Setup::with_config(KeyType::P256, false, trust)
}

/// `subcommand` with the leaf, the emulator as Roles Anywhere, and as STS through
/// `AWS_ENDPOINT_URL_STS`.
fn chained(setup: &Setup, subcommand: &str) -> Command {
    let mut cmd = setup.leaf_subcommand(subcommand);
    cmd.env("AWS_ENDPOINT_URL_STS", setup.emulator.url());
    cmd
}

fn one_hop(cmd: &mut Command) -> &mut Command {
    cmd.args(["--assume-role-arn", WORKLOAD])
        .args(["--assume-role-session-name", "hop-one"])
}

fn two_hops(cmd: &mut Command) -> &mut Command {
    one_hop(cmd)
        .args(["--assume-role-arn", DEEP])
        .args(["--assume-role-external-id", EXTERNAL_ID])
        .args(["--assume-role-session-name", "hop-two"])
}

/// A command without AWS configuration but the emulator's CA.
fn sdk_command(setup: &Setup, program: impl AsRef<std::ffi::OsStr>) -> Command {
    crate::serve_sdks::sdk_command(setup, program, &[])
}

/// The ARN GetCallerIdentity (boto3 against the emulator's STS) names for `credentials`
/// (AccessKeyId, SecretAccessKey, SessionToken).
fn caller_arn(setup: &Setup, credentials: &serde_json::Value) -> String {
    let identity = crate::serve_sdks::sts_identity(setup, credentials);
    identity["arn"].as_str().unwrap().to_owned()
}

/// Seconds from now until the `Expiration` of `credentials`.
fn seconds_left(credentials: &serde_json::Value) -> i64 {
    let expiration = time::OffsetDateTime::parse(
        credentials["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    (expiration - time::OffsetDateTime::now_utc()).whole_seconds()
}

#[test]
fn credential_process_assumes_one_and_two_hops() {
    let setup = trusting_setup();

    let plain = credentials(&common::run(&mut setup.leaf_command()));
    assert!(
        caller_arn(&setup, &plain)
            .starts_with("arn:aws:sts::111122223333:assumed-role/onprem-app/"),
        "without hops, the CreateSession role"
    );

    let out = common::run(one_hop(&mut chained(&setup, "credential-process")));
    let hop = credentials(&out);
    assert_eq!(
        caller_arn(&setup, &hop),
        "arn:aws:sts::444455556666:assumed-role/workload/hop-one"
    );
    assert!((3500..=3600).contains(&seconds_left(&hop)), "{hop}");

    let mut cmd = chained(&setup, "credential-process");
    cmd.arg("--debug");
    let out = common::run(two_hops(&mut cmd));
    let deep = credentials(&out);
    assert_eq!(
        caller_arn(&setup, &deep),
        "arn:aws:sts::555566667777:assumed-role/deep/hop-two"
    );
    // The source identity Roles Anywhere set from the certificate came along both hops.
    let log = String::from_utf8_lossy(&out.stderr);
    let carried = log
        .lines()
        .filter(|l| l.contains("role assumed") && l.contains("source_identity=\"CN="))
        .count();
    assert_eq!(carried, 2, "{log}");
    for secret in ["SecretAccessKey", "SessionToken"] {
        assert!(
            !log.contains(deep[secret].as_str().unwrap()),
            "{secret} logged"
        );
    }
}

#[test]
fn the_sts_endpoint_flag_wins_and_a_session_name_is_made_when_none_is_given() {
    let setup = trusting_setup();
    let mut cmd = setup.leaf_command();
    cmd.env("AWS_ENDPOINT_URL_STS", "https://127.0.0.1:9")
        .args(["--sts-endpoint", &setup.emulator.url()])
        .args(["--assume-role-arn", WORKLOAD]);
    let hop = credentials(&common::run(&mut cmd));
    let arn = caller_arn(&setup, &hop);
    assert!(
        arn.starts_with("arn:aws:sts::444455556666:assumed-role/workload/rolesanywhere-helper-"),
        "{arn}"
    );
}

#[test]
fn sts_refusals_are_one_clear_line() {
    let setup = trusting_setup();

    // AccessDenied: DEEP does not trust CENTRAL.
    let mut cmd = chained(&setup, "credential-process");
    cmd.args(["--assume-role-arn", DEEP]);
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.starts_with(&format!("AssumeRole {DEEP} refused (403 AccessDenied): User: arn:aws:sts::111122223333:assumed-role/onprem-app/")),
        "{line}"
    );
    assert!(
        line.contains("is not authorized to perform: sts:AssumeRole"),
        "{line}"
    );

    // AccessDenied: the external ID is missing on the second hop.
    let mut cmd = chained(&setup, "credential-process");
    one_hop(&mut cmd).args(["--assume-role-arn", DEEP]);
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.starts_with(&format!("AssumeRole {DEEP} refused (403 AccessDenied)")),
        "{line}"
    );
    assert!(line.contains("external ID"), "{line}");

    // InvalidClientTokenId: an STS that did not issue the credentials (another emulator).
    let other = Setup::new(KeyType::P256, false);
    let mut cmd = setup.leaf_command();
    cmd.args(["--sts-endpoint", &other.emulator.url()])
        .env("AWS_CA_BUNDLE", bundle_of_both(&setup, &other));
    one_hop(&mut cmd);
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.starts_with(&format!("AssumeRole {WORKLOAD} refused (403 InvalidClientTokenId): The security token included in the request is invalid.")),
        "{line}"
    );

    // A chained session asked for more than an hour: refused before any request.
    let mut cmd = chained(&setup, "credential-process");
    one_hop(&mut cmd).args(["--session-duration", "7200"]);
    setup.emulator.clear_received();
    let line = failure(&common::run(&mut cmd));
    assert_eq!(
        line,
        "--session-duration 7200 is above 3600 seconds, the longest session of a role assumed by role chaining (--assume-role-arn); give 3600 or less"
    );
    assert!(setup.emulator.received().is_empty(), "no request was sent");
}

/// A CA bundle trusting both emulators' TLS certificates.
fn bundle_of_both(a: &Setup, b: &Setup) -> std::path::PathBuf {
    let path = a.path("both-ca.pem");
    let both = [
        std::fs::read_to_string(&a.ca_bundle).unwrap(),
        std::fs::read_to_string(&b.ca_bundle).unwrap(),
    ]
    .concat();
    std::fs::write(&path, both).unwrap();
    path
}

/// The first credentials of `setup`'s CreateSession, as the library's type.
fn create_session_credentials(setup: &Setup) -> Credentials {
    let json = credentials(&common::run(&mut setup.leaf_command()));
    let text = |k: &str| json[k].as_str().unwrap().to_owned();
    Credentials {
        access_key_id: text("AccessKeyId"),
        secret_access_key: Secret::from(text("SecretAccessKey")),
        session_token: Secret::from(text("SessionToken")),
        expiration: time::OffsetDateTime::now_utc(),
        expiration_text: text("Expiration"),
        role_arn: ROLE.into(),
    }
}

/// The STS client of the library against `setup`'s emulator.
fn sts_client(setup: &Setup) -> StsClient {
    let config = ClientConfig {
        ca_bundle: Some(setup.ca_bundle.clone()),
        ..ClientConfig::new(setup.emulator.url())
    };
    StsClient::new(config, REGION).unwrap()
}

fn workload_hop() -> Hop {
    Hop {
        role_arn: WORKLOAD.into(),
        role_session_name: Some("direct".into()),
        external_id: None,
    }
}

/// What the configuration refuses before any request, STS refuses too, and the client
/// says so in one line: a chained session longer than an hour (ValidationError), and
/// credentials that expired (ExpiredToken).
#[test]
fn validation_and_expiry_refusals_of_sts_read_as_one_line() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let setup = trusting_setup();
    let previous = create_session_credentials(&setup);
    let e = runtime
        .block_on(sts_client(&setup).assume_role(&previous, &workload_hop(), 7200))
        .unwrap_err();
    let line = e.to_string();
    assert!(
        line.starts_with(&format!("AssumeRole {WORKLOAD} refused (400 ValidationError): The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining. - a session assumed by role chaining lasts at most 3600 seconds: lower --session-duration")),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    assert!(!e.is_transient());

    // Sessions of one second, whose CreateSession answer is held back for two: the hop
    // comes with credentials that expired.
    let short = Setup::with_config(KeyType::P256, false, |config| {
        trust(config);
        config.min_duration_seconds = 1;
        config.profiles = vec![ProfileConfig {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 1,
            accept_role_session_name: false,
            enabled: true,
        }];
    });
    short.emulator.faults().slow_body(Duration::from_secs(2));
    let mut cmd = chained(&short, "credential-process");
    one_hop(&mut cmd);
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.starts_with(&format!("AssumeRole {WORKLOAD} refused (400 ExpiredToken): The security token included in the request is expired - ")),
        "{line}"
    );
}

/// boto3's default chain through the daemon's IMDS: what `BOTO3_WHOAMI` printed.
fn boto3_through_imds(setup: &Setup, daemon: &Daemon) -> serde_json::Value {
    let mut py = sdk_command(setup, common::python());
    py.env(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("{}/", daemon.url()),
    )
    .env("AWS_EC2_METADATA_V1_DISABLED", "true")
    .arg("-c")
    .arg(BOTO3_WHOAMI)
    .arg(setup.emulator.url());
    let out = common::run(&mut py);
    assert!(
        out.status.success(),
        "boto3:\n{}\ndaemon:\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn serve_hands_boto3_the_last_roles_credentials() {
    let setup = trusting_setup();
    for (hops, arn) in [
        (
            one_hop as fn(&mut Command) -> &mut Command,
            "arn:aws:sts::444455556666:assumed-role/workload/hop-one",
        ),
        (
            two_hops,
            "arn:aws:sts::555566667777:assumed-role/deep/hop-two",
        ),
    ] {
        let mut cmd = chained(&setup, "serve");
        hops(&mut cmd);
        let daemon = Daemon::start(cmd);
        let found = boto3_through_imds(&setup, &daemon);
        assert_eq!(found["method"], "iam-role", "{found}");
        assert_eq!(found["arn"], arn, "{found}");
        // IMDS names the last role.
        let name = arn.split('/').nth(1).unwrap();
        let served = imds_credentials(daemon.port, name);
        assert_eq!(served.status, 200, "{served:?}");
        assert_eq!(served.json()["AccessKeyId"], found["access_key"]);
    }
}

#[test]
fn serve_stops_at_start_when_sts_refuses_the_chain() {
    let setup = trusting_setup();
    let mut cmd = chained(&setup, "serve");
    cmd.args(["--assume-role-arn", DEEP, "--port", "0"]);
    let log = match Daemon::start_exact(cmd) {
        Ok(daemon) => panic!("serve started:\n{}", daemon.log()),
        Err(log) => log,
    };
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("AssumeRole")).collect();
    assert_eq!(refusals.len(), 1, "one line says why:\n{log}");
    assert!(
        log.contains(&format!("AssumeRole {DEEP} refused (403 AccessDenied): User: arn:aws:sts::111122223333:assumed-role/onprem-app/")),
        "{log}"
    );
    assert!(
        log.contains("is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::555566667777:role/deep"),
        "{log}"
    );
}

/// Sessions of a few seconds at every step: the daemon refreshes the whole chain, from a
/// new CreateSession, and what it serves keeps naming the last role.
#[test]
fn serve_refreshes_the_whole_chain() {
    let setup = Setup::with_config(KeyType::P256, false, |config| {
        trust(config);
        config.min_duration_seconds = 1;
        config.profiles = vec![ProfileConfig {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 30,
            accept_role_session_name: false,
            enabled: true,
        }];
        config.roles[0].duration_seconds = Some(10);
    });
    let mut cmd = chained(&setup, "serve");
    one_hop(&mut cmd);
    let daemon = Daemon::start(cmd);
    let first = imds_credentials(daemon.port, "workload").json();
    let sessions_before = setup.emulator.received().len();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let second = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(250));
        let now = imds_credentials(daemon.port, "workload").json();
        if now["AccessKeyId"] != first["AccessKeyId"] {
            break now;
        }
    };
    assert!(
        setup.emulator.received().len() > sessions_before,
        "the refresh began with a new CreateSession"
    );
    let given = serde_json::json!({
        "AccessKeyId": second["AccessKeyId"],
        "SecretAccessKey": second["SecretAccessKey"],
        "SessionToken": second["Token"],
    });
    assert_eq!(
        caller_arn(&setup, &given),
        "arn:aws:sts::444455556666:assumed-role/workload/hop-one"
    );
}

/// The values of the three keys of `[profile]` in a credentials file written by `update`.
fn written(file: &Path, profile: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(file).unwrap();
    let mut values = serde_json::Map::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{profile}]");
            continue;
        }
        if let (true, Some((key, value))) = (inside, line.split_once('=')) {
            let name = match key.trim() {
                "aws_access_key_id" => "AccessKeyId",
                "aws_secret_access_key" => "SecretAccessKey",
                "aws_session_token" => "SessionToken",
                _ => continue,
            };
            values.insert(name.into(), value.trim().into());
        }
    }
    values.into()
}

#[test]
fn update_writes_the_last_roles_credentials() {
    let setup = trusting_setup();
    let file = setup.path("credentials");
    let mut cmd = chained(&setup, "update");
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .args(["--once", "--profile", "chained"]);
    let out = common::run(two_hops(&mut cmd));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        caller_arn(&setup, &written(&file, "chained")),
        "arn:aws:sts::555566667777:assumed-role/deep/hop-two"
    );
}

#[test]
fn a_config_file_role_takes_its_chain_from_assume_roles() {
    let setup = trusting_setup();
    let file = setup.path("credentials");
    let config = setup.path("roles.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[role]]
name = "deep"
certificate = "{leaf}"
private_key = "{key}"
trust_anchor_arn = "{ta}"
profile_arn = "{PROFILE}"
role_arn = "{ROLE}"
endpoint = "{url}"
sts_endpoint = "{url}"
assume_roles = [
  {{ role_arn = "{WORKLOAD}", role_session_name = "file-one" }},
  {{ role_arn = "{DEEP}", role_session_name = "file-two", external_id = "{EXTERNAL_ID}" }},
]
"#,
            leaf = setup.path("leaf.pem").display(),
            key = setup.path("leaf.key").display(),
            ta = crate::credential_process::TA,
            url = setup.emulator.url(),
        ),
    )
    .unwrap();
    let mut cmd = common::helper();
    cmd.args(["update", "--once", "--config"])
        .arg(&config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .env("AWS_CA_BUNDLE", &setup.ca_bundle);
    let out = common::run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        caller_arn(&setup, &written(&file, "deep")),
        "arn:aws:sts::555566667777:assumed-role/deep/file-two"
    );

    // The chain flags describe the command line's one role: refused beside --config.
    let mut cmd = common::helper();
    cmd.args(["update", "--once", "--config"])
        .arg(&config)
        .args(["--assume-role-arn", WORKLOAD]);
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.contains("--assume-role-arn cannot be combined with --config"),
        "{line}"
    );
}

/// boto3 (botocore's own SigV4 signer and XML parser) against the emulator's AssumeRole:
/// CreateSession's credentials assume WORKLOAD, whose credentials GetCallerIdentity names;
/// a role that does not trust them is refused with AccessDenied.
const BOTO3_ASSUME: &str = r#"
import json, sys
import boto3
from botocore.exceptions import ClientError

given = json.load(sys.stdin)
sts = boto3.client(
    "sts",
    endpoint_url=sys.argv[1],
    aws_access_key_id=given["AccessKeyId"],
    aws_secret_access_key=given["SecretAccessKey"],
    aws_session_token=given["SessionToken"],
)
assumed = sts.assume_role(RoleArn=sys.argv[2], RoleSessionName="boto")
c = assumed["Credentials"]
again = boto3.client(
    "sts",
    endpoint_url=sys.argv[1],
    aws_access_key_id=c["AccessKeyId"],
    aws_secret_access_key=c["SecretAccessKey"],
    aws_session_token=c["SessionToken"],
)
try:
    sts.assume_role(RoleArn=sys.argv[3], RoleSessionName="boto")
    refused = None
except ClientError as e:
    refused = e.response["Error"]["Code"]
print(json.dumps({
    "arn": again.get_caller_identity()["Arn"],
    "source_identity": assumed.get("SourceIdentity"),
    "refused": refused,
}))
"#;

#[test]
fn boto3_assumes_a_role_on_the_emulator() {
    let setup = trusting_setup();
    let first = credentials(&common::run(&mut setup.leaf_command()));
    let mut py = sdk_command(&setup, common::python());
    py.arg("-c")
        .arg(BOTO3_ASSUME)
        .args([&setup.emulator.url(), WORKLOAD, DEEP]);
    let out = common::run_with_input(&mut py, first.to_string().as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        found["arn"],
        "arn:aws:sts::444455556666:assumed-role/workload/boto"
    );
    assert_eq!(found["source_identity"], "CN=rolesanywhere-dev-client");
    assert_eq!(found["refused"], "AccessDenied");
}
