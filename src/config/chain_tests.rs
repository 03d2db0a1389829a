//! The role-chain settings: where the hops come from, and what is refused before any
//! request.

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser as _;

const TA: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a";
const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/p";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";

fn settings(extra: &[&str], env: &[(&str, &str)]) -> Result<SessionSettings, ConfigError> {
    let mut argv = vec![
        "rolesanywhere-helper",
        "credential-process",
        "--certificate",
        "c",
        "--private-key",
        "k",
        "--trust-anchor-arn",
        TA,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
    ];
    argv.extend_from_slice(extra);
    let args = match Cli::try_parse_from(argv).expect("flags parse").command {
        Command::CredentialProcess(args) => args.credentials,
        _ => unreachable!(),
    };
    let inputs = Inputs {
        env: Env::fixed(env.iter().copied().chain([("HOME", "/home/t")])),
        fs: Fs::Fake(Default::default()),
        clock: Clock::System,
    };
    credential_process(&args, &inputs)
}

#[test]
fn hops_keep_their_order_and_the_served_role_is_the_last() {
    let s = settings(
        &[
            "--assume-role-arn",
            "arn:aws:iam::444455556666:role/a",
            "--assume-role-external-id",
            "ext-1",
            "--assume-role-arn",
            "arn:aws:iam::555566667777:role/path/b",
            "--use-fips-endpoint",
        ],
        &[],
    )
    .unwrap();
    let chain = s.chain.as_ref().unwrap();
    assert_eq!(chain.hops.len(), 2);
    assert_eq!(chain.hops[0].external_id.as_deref(), Some("ext-1"));
    assert_eq!(chain.hops[1].external_id, None);
    assert_eq!(chain.duration_seconds, 3600);
    assert_eq!(chain.region, "us-east-1");
    assert_eq!(
        chain.client.endpoint,
        "https://sts-fips.us-east-1.amazonaws.com"
    );
    assert_eq!(s.served_role_arn(), "arn:aws:iam::555566667777:role/path/b");
    assert_eq!(s.role_name(), "b");
    assert_eq!(s.params.role_arn, ROLE, "CreateSession keeps its role");
    assert!(settings(&[], &[]).unwrap().chain.is_none());
}

#[test]
fn the_global_endpoint_variable_applies_unless_configured_endpoints_are_ignored() {
    let hop = ["--assume-role-arn", "arn:aws:iam::444455556666:role/a"];
    let s = settings(&hop, &[("AWS_ENDPOINT_URL", "https://global")]).unwrap();
    assert_eq!(s.chain.unwrap().client.endpoint, "https://global");
    assert_eq!(s.sts_endpoint_source.to_string(), "$AWS_ENDPOINT_URL");
    let s = settings(
        &hop,
        &[
            ("AWS_ENDPOINT_URL_STS", "https://sts.example"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ],
    )
    .unwrap();
    assert_eq!(s.sts_endpoint, "https://sts.us-east-1.amazonaws.com");
}

#[test]
fn chain_mistakes_are_refused_before_any_request() {
    let error = |extra: &[&str]| settings(extra, &[]).unwrap_err().to_string();
    assert_eq!(
        error(&[
            "--assume-role-arn",
            "arn:aws:iam::4:role/a",
            "--session-duration",
            "3601"
        ]),
        "--session-duration 3601 is above 3600 seconds, the longest session of a role assumed by role chaining (--assume-role-arn); give 3600 or less"
    );
    assert_eq!(
        error(&["--assume-role-arn", "arn:aws-cn:iam::4:role/a"]),
        "--assume-role-arn is in partition aws-cn but the trust anchor is in aws; STS cannot chain across partitions"
    );
    let text = error(&["--assume-role-arn", "arn:aws:s3:::bucket"]);
    assert!(
        text.starts_with("--assume-role-arn \"arn:aws:s3:::bucket\" is not a iam role ARN"),
        "{text}"
    );
    let text = error(&[
        "--assume-role-arn",
        "arn:aws:iam::4:role/a",
        "--assume-role-external-id",
        "x",
    ]);
    assert!(
        text.starts_with("--assume-role-external-id is not a valid external ID"),
        "{text}"
    );
    let text = error(&[
        "--assume-role-arn",
        "arn:aws:iam::4:role/a",
        "--assume-role-session-name",
        "has space",
    ]);
    assert!(
        text.starts_with("--assume-role-session-name \"has space\" is not a valid session name"),
        "{text}"
    );
    assert_eq!(
        error(&[
            "--assume-role-arn",
            "arn:aws:iam::4:role/a",
            "--sts-endpoint",
            "sts.example"
        ]),
        "--sts-endpoint \"sts.example\" is not a valid http(s) URL; give a URL such as https://sts.us-east-1.amazonaws.com"
    );
    // Without hops, a long CreateSession session is as before.
    assert!(settings(&["--session-duration", "43200"], &[]).is_ok());
}

#[test]
fn a_config_file_role_gives_its_chain_and_names_the_line_of_a_mistake() {
    let plan = |external_id: &str| {
        let text = format!(
            "[[role]]\nname = \"app\"\ncertificate = \"c\"\nprivate_key = \"k\"\ntrust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"{ROLE}\"\nimds = \"127.0.0.1:9912\"\nsts_endpoint = \"https://sts.file\"\n[[role.assume_roles]]\nrole_arn = \"arn:aws:iam::4:role/a\"\nrole_session_name = \"s1\"\n[[role.assume_roles]]\nrole_arn = \"arn:aws:iam::5:role/b\"\nexternal_id = \"{external_id}\"\n"
        );
        let inputs = Inputs {
            env: Env::fixed([("HOME", "/home/t")]),
            fs: Fs::Fake([(std::path::PathBuf::from("t.toml"), text.into_bytes())].into()),
            clock: Clock::System,
        };
        let args =
            match Cli::try_parse_from(["rolesanywhere-helper", "serve", "--config", "t.toml"])
                .unwrap()
                .command
            {
                Command::Serve(args) => *args,
                _ => unreachable!(),
            };
        serve_plan(&args, &inputs, &[])
    };
    let good = plan("ext-2").unwrap();
    let settings = &good.roles[0].settings;
    let chain = settings.chain.as_ref().unwrap();
    assert_eq!(chain.client.endpoint, "https://sts.file");
    assert_eq!(chain.hops[0].role_session_name.as_deref(), Some("s1"));
    assert_eq!(chain.hops[1].external_id.as_deref(), Some("ext-2"));
    assert_eq!(settings.role_name(), "b");
    let error = plan("x").unwrap_err().to_string();
    assert_eq!(
        error,
        "config file t.toml, line 15: role \"app\": assume_roles.external_id is not a valid external ID; use 2 to 1224 characters from letters, digits and _+=,.@:/-"
    );
}
