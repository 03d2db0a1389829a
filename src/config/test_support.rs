//! What the configuration layer's tests share: a config file and an AWS config file on a
//! fake file system, fixed environments, and serve plans built from flags and file keys.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser as _;

use super::*;
use crate::cli::{Cli, Command, ServeArgs};

pub(super) const TA: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a";
pub(super) const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/p";

pub(super) fn serve_args(flags: &[&str]) -> ServeArgs {
    let argv = ["rolesanywhere-helper", "serve"].iter().chain(flags);
    match Cli::try_parse_from(argv).expect("flags parse").command {
        Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

/// The usual role's keys, then `extra`.
pub(super) fn role(name: &str, extra: &str) -> String {
    format!(
        "[[role]]\nname = \"{name}\"\ncertificate = \"c\"\nprivate_key = \"k\"\ntrust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"arn:aws:iam::111122223333:role/{name}\"\n{extra}\n"
    )
}

/// The AWS shared config file of the tests' home.
pub(super) const AWS_CONFIG: &str = "/home/t/.aws/config";

/// Inputs with `env` (and HOME) and a file system holding `t.toml`, a password file and
/// an AWS config file whose default profile holds `aws_keys`.
pub(super) fn inputs_with(env: &[(&str, &str)], config: &str, aws_keys: &str) -> Inputs {
    let files: HashMap<PathBuf, Vec<u8>> = [
        (PathBuf::from("t.toml"), config.as_bytes().to_vec()),
        (PathBuf::from("pw.txt"), b"from-file\n".to_vec()),
        (
            PathBuf::from(AWS_CONFIG),
            format!("[default]\n{aws_keys}\n").into_bytes(),
        ),
    ]
    .into_iter()
    .collect();
    Inputs {
        env: Env::fixed(env.iter().copied().chain([("HOME", "/home/t")])),
        fs: Fs::Fake(files),
        clock: Clock::System,
    }
}

pub(super) fn inputs(env: &[(&str, &str)], config: &str) -> Inputs {
    inputs_with(env, config, "")
}

pub(super) fn plan_with(
    flags: &[&str],
    env: &[(&str, &str)],
    top: &str,
    role_keys: &str,
    aws_keys: &str,
) -> Result<Plan, ConfigError> {
    let text = format!(
        "{top}\n{}",
        role("app", &format!("imds = \"127.0.0.1:9912\"\n{role_keys}"))
    );
    let mut all = vec!["--config", "t.toml"];
    all.extend_from_slice(flags);
    serve_plan(&serve_args(&all), &inputs_with(env, &text, aws_keys), &[])
}

pub(super) fn plan(
    flags: &[&str],
    env: &[(&str, &str)],
    top: &str,
    role_keys: &str,
) -> Result<Plan, ConfigError> {
    plan_with(flags, env, top, role_keys, "")
}

/// One setting: how each source gives it, and how the plan shows it.
pub(super) struct Setting {
    pub(super) name: &'static str,
    pub(super) flag: &'static [&'static str],
    pub(super) env: Option<(&'static str, &'static str)>,
    /// A top-level line, or (if `in_role`) a key of the role.
    pub(super) file: &'static str,
    pub(super) in_role: bool,
    /// A key of the AWS config file's profile, if it has one.
    pub(super) profile: Option<&'static str>,
    pub(super) read: fn(&Plan) -> String,
    /// What each source yields in the plan, and the default.
    pub(super) from_flag: &'static str,
    pub(super) from_env: &'static str,
    pub(super) from_file: &'static str,
    pub(super) from_profile: &'static str,
    pub(super) default: &'static str,
}

/// What `read` makes of the plan's first daemon socket, or `none`.
pub(super) fn daemon_socket(plan: &Plan, read: impl Fn(&DaemonSocketPlan) -> String) -> String {
    plan.daemon_sockets
        .first()
        .map_or_else(|| "none".to_owned(), read)
}

/// The plan's fleet slot, `INDEX/COUNT at RATE`, or `none`.
pub(super) fn fleet(plan: &Plan) -> String {
    plan.pacing.fleet.map_or("none".into(), |f| {
        format!("{}/{} at {}", f.index, f.count, f.rate)
    })
}
