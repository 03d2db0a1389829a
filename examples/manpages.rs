//! Writes the man pages of `rolesanywhere-helper` and each of its subcommands (section 1)
//! into a folder, from the same command-line definitions the program parses with, so a
//! page cannot name a flag that does not exist. `packaging/build.sh` runs it:
//!
//!   cargo run --example manpages -- OUT_DIR
//!
//! It is an example rather than a subcommand so that the generator stays out of the
//! installed binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory as _;
use rolesanywhere_helper::cli::Cli;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: manpages OUT_DIR");
        return ExitCode::FAILURE;
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("manpages: cannot create {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    // `help` is clap's, says nothing a page of its own would, and is left out.
    let cmd = Cli::command().disable_help_subcommand(true);
    match clap_mangen::generate_to(cmd, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("manpages: cannot write into {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
