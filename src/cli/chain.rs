//! The role-chain flags: `--assume-role-arn` (repeatable, in order), and the
//! `--assume-role-session-name` and `--assume-role-external-id` that apply to the
//! `--assume-role-arn` they follow; `--sts-endpoint`.
//!
//! Which hop a session name belongs to is a matter of where it stands on the command line,
//! which derived clap types cannot see, so these flags are read here from the positions
//! clap records for each value.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

const ARN: &str = "assume_role_arn";
const SESSION_NAME: &str = "assume_role_session_name";
const EXTERNAL_ID: &str = "assume_role_external_id";
const STS_ENDPOINT: &str = "sts_endpoint";

/// One `--assume-role-arn` with the flags that follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HopFlags {
    pub role_arn: String,
    pub role_session_name: Option<String>,
    pub external_id: Option<String>,
}

/// The role-chain flags of the commands that call CreateSession.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainArgs {
    /// The hops, in command-line order.
    pub hops: Vec<HopFlags>,
    pub sts_endpoint: Option<String>,
}

impl Args for ChainArgs {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(
            Arg::new(ARN)
                .long("assume-role-arn")
                .value_name("ARN")
                .action(ArgAction::Append)
                .help("After CreateSession, assume this role with STS AssumeRole, using the credentials obtained so far; repeat for a chain, in order. The credentials handed out are the last role's [this project's own flag]"),
        )
        .arg(
            Arg::new(SESSION_NAME)
                .long("assume-role-session-name")
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("Session name for the --assume-role-arn it follows [default: rolesanywhere-helper-<unix time>] [this project's own flag]"),
        )
        .arg(
            Arg::new(EXTERNAL_ID)
                .long("assume-role-external-id")
                .value_name("ID")
                .action(ArgAction::Append)
                .help("External ID for the --assume-role-arn it follows, when its trust policy asks for one [this project's own flag]"),
        )
        .arg(
            Arg::new(STS_ENDPOINT)
                .long("sts-endpoint")
                .value_name("URL")
                .action(ArgAction::Set)
                .help("STS endpoint for --assume-role-arn. Wins over AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL and the config files, which win over https://sts[-fips].<region>.<partition suffix> [this project's own flag]"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ChainArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        // Every value with its position on the command line, then read in that order.
        let mut values: Vec<(usize, &str, String)> = Vec::new();
        for id in [ARN, SESSION_NAME, EXTERNAL_ID] {
            let (Some(indices), Some(texts)) =
                (matches.indices_of(id), matches.get_many::<String>(id))
            else {
                continue;
            };
            values.extend(indices.zip(texts).map(|(i, v)| (i, id, v.clone())));
        }
        values.sort_by_key(|(i, _, _)| *i);
        let mut hops: Vec<HopFlags> = Vec::new();
        for (_, id, value) in values {
            if id == ARN {
                hops.push(HopFlags {
                    role_arn: value,
                    ..HopFlags::default()
                });
                continue;
            }
            let flag = if id == SESSION_NAME {
                "--assume-role-session-name"
            } else {
                "--assume-role-external-id"
            };
            let Some(hop) = hops.last_mut() else {
                return Err(usage(format!(
                    "{flag} {value:?} stands before any --assume-role-arn; give it after the --assume-role-arn it applies to"
                )));
            };
            let slot = if id == SESSION_NAME {
                &mut hop.role_session_name
            } else {
                &mut hop.external_id
            };
            if slot.is_some() {
                return Err(usage(format!(
                    "{flag} is given twice for --assume-role-arn {}; give one per role",
                    hop.role_arn
                )));
            }
            *slot = Some(value);
        }
        Ok(Self {
            hops,
            sts_endpoint: matches.get_one::<String>(STS_ENDPOINT).cloned(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

fn usage(message: String) -> clap::Error {
    clap::Error::raw(
        clap::error::ErrorKind::ArgumentConflict,
        format!("{message}\n"),
    )
}
