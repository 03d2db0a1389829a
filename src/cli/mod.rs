//! Command-line definitions. Subcommand and flag names, defaults and value spellings are
//! those of the official `aws_signing_helper`, so existing command lines keep working;
//! flags it lacks are marked as this project's own in their help. The flag grammar is the
//! official helper's too (Go's pflag: see [`pflag`] and [`values`]).

mod chain;
mod credentials;
mod dev;
mod key;
pub mod pflag;
pub mod values;

#[cfg(test)]
mod tests;

use clap::{Args, CommandFactory, Parser, Subcommand};

pub use chain::{ChainArgs, HopFlags};
pub use credentials::{
    CredentialArgs, CredentialProcessArgs, DaemonSocketArgs, LogFormat, ServeArgs, UpdateArgs,
};
pub use dev::{DemoArgs, EmulateArgs, PkiArgs, PkiCommand, PkiInitArgs};
pub use key::{DigestArg, FormatArg, KeyArgs, ReadCertificateDataArgs, SignStringArgs};

/// Temporary AWS credentials from an X.509 certificate, through IAM Roles Anywhere.
///
/// Its [`CommandFactory`] is written out rather than derived, so that every parse (and
/// the completion scripts) sees the definitions with [`pflag::apply`] done.
#[derive(Args, Debug)]
// A flag given twice takes its last value, as with the official helper's flag parser, so
// that wrapper scripts can append overrides.
// `--version` adds the commit of a release build (build.rs); `-V` and `version` print the
// version alone.
#[command(version, long_version = env!("RA_LONG_VERSION"), about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The program's name in usage lines and completion scripts.
pub const NAME: &str = "rolesanywhere-helper";

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        pflag::apply(<Self as Args>::augment_args(clap::Command::new(NAME)))
    }

    fn command_for_update() -> clap::Command {
        pflag::apply(<Self as Args>::augment_args_for_update(clap::Command::new(
            NAME,
        )))
    }
}

impl Parser for Cli {}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Try everything on this machine: a dev PKI, the local emulator and a ready AWS profile
    Demo(DemoArgs),
    /// Get credentials once and print them in the `credential_process` JSON format
    CredentialProcess(Box<CredentialProcessArgs>),
    /// Keep credentials fresh in memory and serve them to SDKs on a local IMDSv2-compatible
    /// endpoint and, optionally, an ECS container-credentials endpoint
    Serve(Box<ServeArgs>),
    /// Keep a profile of the shared credentials file (~/.aws/credentials) fresh, for tools
    /// that read only that file
    Update(Box<UpdateArgs>),
    /// Sign a fixed test string with the private key, to check that the key works
    SignString(SignStringArgs),
    /// Print the certificate's key type, base64 DER, decimal serial and algorithms as JSON;
    /// for a pkcs11: URI, list the matching certificates on PKCS#11 tokens
    ReadCertificateData(ReadCertificateDataArgs),
    /// Run a local, verifying IAM Roles Anywhere emulator (CreateSession and STS
    /// GetCallerIdentity and AssumeRole), for tests and trials without an AWS account
    Emulate(EmulateArgs),
    /// Make a development PKI (root CA, intermediate, leaf, emulator TLS certificate)
    Pki(PkiArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish
    ///
    /// To load it in the current bash session:
    ///   source <(rolesanywhere-helper completion bash)
    /// To load it in every new session, write it where the shell looks for completions:
    ///   rolesanywhere-helper completion bash > /etc/bash_completion.d/rolesanywhere-helper
    ///   rolesanywhere-helper completion zsh > "${fpath[1]}/_rolesanywhere-helper"
    ///   rolesanywhere-helper completion fish > ~/.config/fish/completions/rolesanywhere-helper.fish
    /// Installed under another name (such as aws_signing_helper), the script completes that
    /// name.
    #[command(verbatim_doc_comment)]
    Completion(CompletionArgs),
    /// Print the version
    Version,
}

/// `completion SHELL`: the script that completes this program's commands and flags.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// Shell to write the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,

    /// Leave the descriptions of commands and flags out of the script
    #[arg(long)]
    pub no_descriptions: bool,
}
