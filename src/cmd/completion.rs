//! `completion SHELL`: the shell completion script, as the official helper's `completion`
//! prints one. It is generated from the command-line definitions, so it always offers
//! exactly the commands and flags that parse.

use std::ffi::OsStr;
use std::path::Path;

use clap::builder::PossibleValuesParser;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionArgs, NAME};
use crate::error::Result;

/// Prints the script for `args.shell` on stdout.
pub fn run(args: &CompletionArgs) -> Result<()> {
    let argv0 = std::env::args_os().next();
    let name = bin_name(argv0.as_deref());
    // clap_complete spells the states of its bash script two ways for a name with a `-`
    // (such as rolesanywhere-helper), so that nothing after a subcommand completes
    // (clap-rs/clap#6421), and it splits them again at `__subcmd__`, which a name must
    // not hold. So the bash script is made for a fixed name without either (spelled as
    // clap_complete spells rolesanywhere-helper in its function names anyway), and its
    // `complete` lines are then pointed at the real name.
    let generated_for = match args.shell {
        Shell::Bash => BASH_STAND_IN,
        _ => name,
    };
    // The definitions without the pflag grammar: a boolean flag is completed as the switch
    // it is nearly always written as, where its optional `=VALUE` would make fish take the
    // next word as its value.
    let mut cmd = <Cli as clap::Args>::augment_args(clap::Command::new(NAME));
    cmd.set_bin_name(generated_for);
    // Built first, so that the help subcommand and the --help and --version flags that
    // building adds lose their descriptions too.
    cmd.build();
    if args.no_descriptions {
        cmd = without_descriptions(cmd);
    }
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, generated_for, &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if generated_for != name {
        script = point_complete_lines(&script, generated_for, name);
    }
    super::print(script.as_bytes())
}

/// The name the bash script is made for, and its function is named after.
const BASH_STAND_IN: &str = "rolesanywhere__helper";

/// `script` with each `complete ... FROM` line ending in `TO` instead.
fn point_complete_lines(script: &str, from: &str, to: &str) -> String {
    let suffix = format!(" {from}");
    let mut out = String::with_capacity(script.len());
    for line in script.lines() {
        match line.strip_suffix(&suffix) {
            Some(head) if line.trim_start().starts_with("complete ") => {
                out.push_str(head);
                out.push(' ');
                out.push_str(to);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The name the script completes: the one this program was started as, so that a copy or
/// link installed as `aws_signing_helper` gets a script for that name; [`NAME`] when that
/// name has characters that a shell function name or a `complete` line would not take,
/// or a `__`, which clap_complete uses as a separator inside its scripts.
fn bin_name(argv0: Option<&OsStr>) -> &str {
    argv0
        .and_then(|path| Path::new(path).file_name())
        .and_then(OsStr::to_str)
        .filter(|name| {
            !name.starts_with(['-', '.'])
                && !name.contains("__")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        })
        .unwrap_or(NAME)
}

/// `cmd` with no help text on any command, flag or value, for `--no-descriptions`.
fn without_descriptions(cmd: clap::Command) -> clap::Command {
    cmd.about(None)
        .long_about(None)
        .mut_args(|arg| {
            let values = arg.get_possible_values();
            let arg = arg.help(None).long_help(None);
            if values.is_empty() {
                return arg;
            }
            // Only the names are kept; this command is never used to parse.
            let bare = values.into_iter().map(|v| v.help(None));
            arg.value_parser(PossibleValuesParser::new(bare))
        })
        .mut_subcommands(without_descriptions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_completes_the_name_the_program_was_started_as() {
        let name = |s: &str| bin_name(Some(OsStr::new(s))).to_owned();
        assert_eq!(
            name("/usr/local/bin/aws_signing_helper"),
            "aws_signing_helper"
        );
        assert_eq!(name("rolesanywhere-helper"), "rolesanywhere-helper");
        assert_eq!(name("./helper.v2"), "helper.v2");
        for odd in [
            "/bin/a b",
            "/bin/a;rm",
            "-x",
            ".hidden",
            "/",
            "",
            "/bin/é",
            "a__subcmd__b",
        ] {
            assert_eq!(name(odd), NAME, "{odd:?}");
        }
        assert_eq!(bin_name(None), NAME);
    }
}
