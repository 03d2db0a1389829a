//! The daemon sockets of `serve`, and the client side's settings of `credential-process
//! --daemon-socket`.
//!
//! A socket for every role comes from the `--daemon-socket*` flags, or from the file's
//! `[daemon_socket]` table (each key under the one rule: command line, then file, then
//! default); a socket for one role from that role's `daemon_socket = { ... }`. Each has an
//! allow list of users and groups; with none given, only the daemon's own user may ask.

use std::path::PathBuf;

use super::file::{ConfigFile, DaemonSocketEntry, IdEntry};
use super::ids;
use super::origin::{ConfigError, Origin, Sourced, first};
use super::plan::{DaemonSocketPlan, PeerAllow, UnixEndpoint};
use crate::cli::{CredentialProcessArgs, DaemonSocketArgs};

/// The socket file's mode unless configured: the owner and the group may connect.
pub const DEFAULT_MODE: u32 = 0o660;

/// One socket's settings, each with its origin, before validation.
#[derive(Default)]
struct Sources {
    path: Option<Sourced<String>>,
    mode: Option<Sourced<u32>>,
    group: Option<Sourced<String>>,
    users: Option<Sourced<Vec<String>>>,
    groups: Option<Sourced<Vec<String>>>,
}

impl Sources {
    fn from_flags(args: &DaemonSocketArgs) -> Self {
        let list = |values: &Vec<String>, flag| {
            (!values.is_empty()).then(|| Sourced::new(values.clone(), Origin::Flag(flag)))
        };
        Self {
            path: args
                .path
                .clone()
                .map(|v| Sourced::new(v, Origin::Flag("--daemon-socket"))),
            mode: args
                .mode
                .map(|v| Sourced::new(v, Origin::Flag("--daemon-socket-mode"))),
            group: args
                .group
                .clone()
                .map(|v| Sourced::new(v, Origin::Flag("--daemon-socket-group"))),
            users: list(&args.allow_users, "--daemon-socket-allow-user"),
            groups: list(&args.allow_groups, "--daemon-socket-allow-group"),
        }
    }

    /// A table of the file; `role` is the role it belongs to, if a role's.
    fn from_file(
        file: &ConfigFile,
        entry: &DaemonSocketEntry,
        role: Option<&super::file::RoleEntry>,
        prefix: &str,
    ) -> Self {
        let at = |span, key: &str| file.origin(span, &format!("{prefix}{key}"), role);
        let ids = |list: &Option<toml::Spanned<Vec<IdEntry>>>, key: &str| {
            list.as_ref().map(|l| {
                Sourced::new(
                    l.get_ref().iter().map(IdEntry::text).collect(),
                    at(l.span(), key),
                )
            })
        };
        Self {
            path: entry
                .path
                .as_ref()
                .map(|v| Sourced::new(v.get_ref().clone(), at(v.span(), "path"))),
            mode: entry
                .mode
                .as_ref()
                .map(|v| Sourced::new(*v.get_ref(), at(v.span(), "mode"))),
            group: entry
                .group
                .as_ref()
                .map(|v| Sourced::new(v.get_ref().clone(), at(v.span(), "group"))),
            users: ids(&entry.allow_users, "allow_users"),
            groups: ids(&entry.allow_groups, "allow_groups"),
        }
    }

    /// Each key from `self` if given there, else from `other`.
    fn or(self, other: Self) -> Self {
        Self {
            path: first([self.path, other.path]),
            mode: first([self.mode, other.mode]),
            group: first([self.group, other.group]),
            users: first([self.users, other.users]),
            groups: first([self.groups, other.groups]),
        }
    }

    fn is_empty(&self) -> bool {
        self.path.is_none()
            && self.mode.is_none()
            && self.group.is_none()
            && self.users.is_none()
            && self.groups.is_none()
    }

    /// The validated socket, serving `roles`; `missing` is where a missing path is
    /// reported.
    fn plan(
        self,
        roles: Vec<usize>,
        activated: &[String],
        missing: Origin,
    ) -> Result<DaemonSocketPlan, ConfigError> {
        let path = self.path.ok_or_else(|| {
            ConfigError::at(
                missing,
                "is needed: the socket's path (or fd:NAME), with --daemon-socket or `path = ...`",
            )
        })?;
        let endpoint = match path.value.strip_prefix("fd:") {
            Some(name) if activated.iter().any(|a| a == name) => {
                for (given, what) in [
                    (self.mode.as_ref().map(|m| &m.origin), "SocketMode="),
                    (self.group.as_ref().map(|g| &g.origin), "SocketGroup="),
                ] {
                    if let Some(origin) = given {
                        return Err(ConfigError::at(
                            origin.clone(),
                            format!(
                                "does not apply to a passed socket; set {what} in its .socket unit"
                            ),
                        ));
                    }
                }
                UnixEndpoint::Activated(name.to_owned())
            }
            Some(name) => {
                return Err(path.error(format!(
                    "{:?}: no socket named {name:?} was passed by socket activation",
                    path.value
                )));
            }
            None if path.value.is_empty() => return Err(path.error("is empty")),
            None => UnixEndpoint::Path(PathBuf::from(&path.value)),
        };
        let mode = match self.mode {
            Some(mode) if mode.value > 0o777 => {
                return Err(mode.error(format!(
                    "{:o} is not a file mode; write it in octal, such as 0o660",
                    mode.value
                )));
            }
            Some(mode) if mode.value & 0o002 != 0 => {
                return Err(mode.error(format!(
                    "{:04o} would let every user connect; allow a group instead (0660)",
                    mode.value
                )));
            }
            Some(mode) => mode.value,
            None => DEFAULT_MODE,
        };
        let group = self.group.as_ref().map(ids::group).transpose()?;
        let mut uids = Vec::new();
        for name in self.users.iter().flat_map(each) {
            uids.push(ids::user(&name)?);
        }
        let mut gids = Vec::new();
        for name in self.groups.iter().flat_map(each) {
            gids.push(ids::group(&name)?);
        }
        if uids.is_empty() && gids.is_empty() {
            // SAFETY: geteuid has no preconditions and cannot fail.
            uids.push(unsafe { libc::geteuid() });
        }
        Ok(DaemonSocketPlan {
            endpoint,
            mode,
            group,
            allow: PeerAllow { uids, gids },
            roles,
        })
    }
}

/// Each name of a list, with the list's origin.
fn each(list: &Sourced<Vec<String>>) -> impl Iterator<Item = Sourced<String>> + '_ {
    list.value
        .iter()
        .map(|v| Sourced::new(v.clone(), list.origin.clone()))
}

/// The daemon sockets of `serve`. `file_roles` are the plan's role indexes of the file's
/// `[[role]]`s, in the file's order (all roles: `0..n`); `all` is every role's index.
pub fn plans(
    args: &DaemonSocketArgs,
    file: Option<&ConfigFile>,
    all: Vec<usize>,
    activated: &[String],
) -> Result<Vec<DaemonSocketPlan>, ConfigError> {
    let mut plans: Vec<DaemonSocketPlan> = Vec::new();
    let flags = Sources::from_flags(args);
    let top = file.and_then(|f| f.top.daemon_socket.as_ref().map(|t| (f, t)));
    let (merged, missing) = match top {
        Some((f, table)) => (
            flags.or(Sources::from_file(
                f,
                table.get_ref(),
                None,
                "daemon_socket.",
            )),
            f.origin(table.span(), "daemon_socket.path", None),
        ),
        None => (flags, Origin::Flag("--daemon-socket")),
    };
    if !merged.is_empty() {
        plans.push(merged.plan(all, activated, missing)?);
    }
    if let Some(file) = file {
        for (index, entry) in file.top.roles.iter().enumerate() {
            let entry = entry.get_ref();
            let Some(table) = &entry.daemon_socket else {
                continue;
            };
            let sources = Sources::from_file(file, table.get_ref(), Some(entry), "daemon_socket.");
            let missing = file.origin(table.span(), "daemon_socket.path", Some(entry));
            let plan = sources.plan(vec![index], activated, missing.clone())?;
            if let Some(same) = plans.iter_mut().find(|p| p.endpoint == plan.endpoint) {
                return Err(ConfigError::at(
                    missing,
                    format!(
                        "{} is already a daemon socket of another role or of every role; give each its own path",
                        same.endpoint
                    ),
                ));
            }
            plans.push(plan);
        }
    }
    Ok(plans)
}

/// The passed sockets' names that daemon sockets take, so that no other listener takes
/// them.
pub fn activated_names(plans: &[DaemonSocketPlan]) -> Vec<String> {
    plans
        .iter()
        .filter_map(|p| match &p.endpoint {
            UnixEndpoint::Activated(name) => Some(name.clone()),
            UnixEndpoint::Path(_) => None,
        })
        .collect()
}

/// What `credential-process --daemon-socket` asks, and what it does when nobody answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonClient {
    pub socket: PathBuf,
    /// The role's name in the daemon's config; `None`: the socket's only role.
    pub role: Option<String>,
    /// Make the direct call when no daemon answers.
    pub fallback_direct: bool,
}

/// The client settings of `credential-process`, if `--daemon-socket` is given. Nothing
/// else is read (no AWS profile, no identity): the daemon holds all of that.
pub fn daemon_client(args: &CredentialProcessArgs) -> Result<Option<DaemonClient>, ConfigError> {
    let Some(socket) = &args.daemon_socket else {
        return Ok(None);
    };
    if let Some(role) = &args.role
        && !crate::daemon_wire::valid_role(role)
    {
        return Err(ConfigError::at(
            Origin::Flag("--role"),
            format!("{role:?} must be 1 to 64 letters, digits, '.', '_' or '-'"),
        ));
    }
    Ok(Some(DaemonClient {
        socket: socket.clone(),
        role: args.role.clone(),
        fallback_direct: args.fallback_direct,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_match_users_and_any_group() {
        let allow = PeerAllow {
            uids: vec![1000],
            gids: vec![50],
        };
        assert!(allow.permits(1000, 1, Vec::new));
        assert!(allow.permits(7, 50, Vec::new));
        assert!(allow.permits(7, 8, || vec![9, 50]));
        assert!(!allow.permits(7, 8, || vec![9]));
        let users_only = PeerAllow {
            uids: vec![1000],
            gids: vec![],
        };
        assert!(!users_only.permits(7, 8, || panic!("groups are not read without gids")));
    }
}
