//! The official helper's flag grammar (Go's pflag), applied to the whole command tree so
//! that every flag, the official helper's and this project's own alike, reads the same way
//! and no flag added later can miss it.

use clap::{Arg, ArgAction, Command};

use super::values::go_bool;

/// Applies pflag's grammar to `cmd` and all its subcommands:
///
/// - A boolean flag is set by `--flag` or `--flag=VALUE` with a `strconv.ParseBool` value
///   (`--debug=false` switches it off, as scripts written for the official helper do). As
///   in pflag, `--flag true` is not a value: the `true` is a stray word, which is refused
///   here (the official helper ignores it, so there `--debug false` turns debugging on).
/// - A flag that takes a value takes the next word even when it begins with `-`, so that a
///   password, path or number starting with a dash is read as the value.
pub fn apply(cmd: Command) -> Command {
    cmd.mut_args(flag).mut_subcommands(apply)
}

fn flag(arg: Arg) -> Arg {
    if arg.is_positional() {
        return arg;
    }
    match arg.get_action() {
        ArgAction::SetTrue => arg
            .action(ArgAction::Set)
            .num_args(0..=1)
            .require_equals(true)
            .default_value("false")
            .hide_default_value(true)
            .default_missing_value("true")
            .value_parser(go_bool)
            .value_name("BOOL"),
        action if action.takes_values() => arg.allow_hyphen_values(true),
        _ => arg,
    }
}
