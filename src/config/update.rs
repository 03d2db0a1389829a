//! The plan of `update`: the credentials file, and each role with the profile it is
//! written to, from the flags or from the config file `serve` reads (whose listener keys
//! `update` ignores, so that one file serves both commands).

use std::collections::HashSet;

use super::aws_profile::AwsProfile;
use super::file::ConfigFile;
use super::inputs::Inputs;
use super::origin::{ConfigError, Origin, Sourced};
use super::plan::UpdatePlan;
use super::role::RoleSources;
use super::serve::{file_roles, refuse_flags_beside_config};
use super::session::session_settings;
use crate::cli::UpdateArgs;

pub fn update_plan(args: &UpdateArgs, inputs: &Inputs) -> Result<UpdatePlan, ConfigError> {
    super::identity::refuse_unavailable(&args.credentials.key)?;
    let file =
        crate::credfile::default_path(|k| inputs.env.get(k)).map_err(ConfigError::conflict)?;
    let aws_profile = AwsProfile::load(inputs)?;
    let roles = match &args.config {
        Some(path) => {
            refuse_flags_beside_config(
                &args.credentials,
                &[("--profile", args.profile.is_some())],
            )?;
            let config = ConfigFile::read(path, &inputs.fs)?;
            let mut profiles = HashSet::new();
            let mut roles = Vec::new();
            for (entry, settings) in file_roles(&config, &args.credentials, inputs, &aws_profile)? {
                let profile = config
                    .of(entry, &entry.profile, "profile")
                    .unwrap_or_else(|| {
                        Sourced::new(entry.name.get_ref().clone(), config.missing(entry, "name"))
                    });
                check_profile_name(&profile)?;
                if !profiles.insert(profile.value.clone()) {
                    return Err(
                        profile.error(format!("{:?} is written by two roles", profile.value))
                    );
                }
                roles.push((profile.value, settings));
            }
            roles
        }
        None => {
            let profile = Sourced::new(
                args.profile.clone().unwrap_or_else(|| "default".into()),
                Origin::Flag("--profile"),
            );
            check_profile_name(&profile)?;
            let sources = RoleSources::from_flags(&args.credentials, &inputs.env, &aws_profile);
            vec![(profile.value, session_settings(&sources, inputs)?)]
        }
    };
    Ok(UpdatePlan { file, roles })
}

/// A name that can stand between `[` and `]` on one line and be read back the same.
fn check_profile_name(name: &Sourced<String>) -> Result<(), ConfigError> {
    let text = &name.value;
    let valid =
        !text.is_empty() && text.trim() == text && !text.contains(['[', ']', '\n', '\r', '#', ';']);
    if valid {
        Ok(())
    } else {
        Err(name.error(format!(
            "{text:?}: this profile name cannot be written as a credentials-file section; use letters, digits and -_."
        )))
    }
}
