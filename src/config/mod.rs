//! The configuration layer: every command's settings, from the command line, the
//! environment and the config file, merged under one rule and validated once into the
//! plan the command runs on.
//!
//! **The rule.** For each setting, the command line wins, then the environment, then the
//! config file, then the built-in default. A flag given twice takes its last value.
//!
//! The flow is one-way: [`inputs`] (environment, file system, clock: passed in, never
//! reached for) and [`file`] (the TOML schema) feed [`role`], which merges one role's
//! low-level settings with their [`origin`]s; [`identity`] and [`session`] validate a role;
//! [`serve`] and [`update`] build those commands' [`plan`]s. Every error names where the bad
//! value came from: the flag, the variable, or the file's line and key.
//!
//! A new setting is a field in [`cli`](crate::cli) (the flag), in [`file`] (the key), one
//! line in [`role::RoleSources`] or [`serve`] (the precedence) and its check in the
//! validation step; nothing else needs to know where it came from.

pub mod aws_profile;
pub mod daemon_socket;
pub mod failover;
pub mod file;
pub mod identity;
pub mod ids;
pub mod inputs;
pub mod listen;
pub mod origin;
pub mod pacing;
pub mod plan;
pub mod role;
pub mod serve;
pub mod session;
pub mod update;

pub use daemon_socket::{DaemonClient, daemon_client};
pub use identity::{PASSWORD_CREDENTIAL, from_key_flags, store_unavailable};
pub use inputs::{Clock, Env, Fs, Inputs};
pub use origin::{ConfigError, Origin};
pub use pacing::PacingPlan;
pub use plan::{
    DaemonSocketPlan, EcsPlan, Endpoint, ListenerPlan, PeerAllow, Plan, RolePlan, UnixEndpoint,
    UpdatePlan,
};
pub use role::PASSWORD_ENV;
pub use serve::serve_plan;
pub use session::{DURATION_RANGE, SessionSettings};
pub use update::update_plan;

use crate::cli::CredentialArgs;

/// The settings of `credential-process`: one role, from the flags and the environment.
pub fn credential_process(
    args: &CredentialArgs,
    inputs: &Inputs,
) -> Result<SessionSettings, ConfigError> {
    identity::refuse_unavailable(&args.key)?;
    let profile = aws_profile::AwsProfile::load(inputs)?;
    session::session_settings(
        &role::RoleSources::from_flags(args, &inputs.env, &profile),
        inputs,
    )
}

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
