//! The TOML config file of `serve --config` and `update --config`: its schema, and the
//! origin (file, line, key) of every value in it. Unknown keys are errors, so that a typo
//! does not silently change nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::inputs::Fs;
use super::origin::{ConfigError, FileSpot, Origin, Sourced};

/// The file's top level.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Top {
    /// Where the ECS paths are served: `IP:PORT` or `fd:NAME`.
    pub bind: Option<Spanned<String>>,
    pub hop_limit: Option<Spanned<u32>>,
    pub max_connections: Option<Spanned<usize>>,
    /// `IP:PORT` or `fd:NAME` of the `/healthz` and `/metrics` listener.
    pub ops: Option<Spanned<String>>,
    pub cert_expiry_warning_days: Option<Spanned<u32>>,
    /// Host names answered besides IP addresses and localhost.
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
    /// The daemon socket for every role (`[daemon_socket]`).
    pub daemon_socket: Option<Spanned<DaemonSocketEntry>>,
    /// CreateSession calls per second and burst per account and region, and the window
    /// (seconds) the first fetches are spread over.
    pub pacing_rate: Option<Spanned<f64>>,
    pub pacing_burst: Option<Spanned<u32>>,
    pub start_window: Option<Spanned<u64>>,
    /// This host's slot in its fleet (`INDEX/COUNT`) and the fleet's calls per second.
    pub fleet_slot: Option<Spanned<String>>,
    pub fleet_rate: Option<Spanned<f64>>,
    #[serde(default, rename = "role")]
    pub roles: Vec<Spanned<RoleEntry>>,
}

/// One further region of a role's `failover` list.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverEntry {
    pub trust_anchor_arn: String,
    pub profile_arn: String,
    /// The region's endpoint; its default endpoint when not given.
    pub endpoint: Option<String>,
}

/// One `[[role]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub name: Spanned<String>,
    pub certificate: Option<Spanned<String>>,
    pub private_key: Option<Spanned<String>>,
    pub pkcs8_password_file: Option<Spanned<PathBuf>>,
    /// PKCS#11: the module, the PIN files and `--reuse-pin`, for `pkcs11:` URIs.
    pub pkcs11_lib: Option<Spanned<String>>,
    pub pkcs11_pin_file: Option<Spanned<PathBuf>>,
    pub pkcs11_context_pin_file: Option<Spanned<PathBuf>>,
    pub reuse_pin: Option<Spanned<bool>>,
    /// TPM keys: the password file, or `true` when the key has none.
    pub tpm_key_password_file: Option<Spanned<PathBuf>>,
    pub no_tpm_key_password: Option<Spanned<bool>>,
    pub intermediates: Option<Spanned<String>>,
    pub trust_anchor_arn: Option<Spanned<String>>,
    pub profile_arn: Option<Spanned<String>>,
    pub role_arn: Option<Spanned<String>>,
    pub session_duration: Option<Spanned<i64>>,
    pub role_session_name: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
    pub ca_bundle: Option<Spanned<PathBuf>>,
    /// `IP:PORT` or `fd:NAME` of this role's IMDS listener.
    pub imds: Option<Spanned<String>>,
    pub ecs_token_file: Option<Spanned<PathBuf>>,
    pub ecs_token_group: Option<Spanned<String>>,
    /// The credentials-file profile `update` writes (default: `name`).
    pub profile: Option<Spanned<String>>,
    /// Roles to assume after CreateSession, in order (role chaining).
    pub assume_roles: Option<Vec<AssumeRoleEntry>>,
    /// The STS endpoint of the role chain.
    pub sts_endpoint: Option<Spanned<String>>,
    /// A daemon socket for this role alone.
    pub daemon_socket: Option<Spanned<DaemonSocketEntry>>,
    /// Further regions, and the transient failures in a row before the next is tried.
    pub failover: Option<Spanned<Vec<FailoverEntry>>>,
    pub failover_after: Option<Spanned<u32>>,
}

/// One hop of a role's chain: `assume_roles = [{ role_arn = "…" }]`, or a
/// `[[role.assume_roles]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeRoleEntry {
    pub role_arn: Spanned<String>,
    pub role_session_name: Option<Spanned<String>>,
    pub external_id: Option<Spanned<String>>,
}

/// A daemon socket (`[daemon_socket]`, or a role's `daemon_socket = { ... }`).
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DaemonSocketEntry {
    /// The socket file, or `fd:NAME` for a socket passed by socket activation.
    pub path: Option<Spanned<String>>,
    /// The socket file's mode, written in octal in TOML (`0o660`).
    pub mode: Option<Spanned<u32>>,
    /// The socket file's group, by name or number.
    pub group: Option<Spanned<String>>,
    /// The users and groups whose processes may ask, by name or number.
    pub allow_users: Option<Spanned<Vec<IdEntry>>>,
    pub allow_groups: Option<Spanned<Vec<IdEntry>>>,
}

/// A user or group, by number or by name.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum IdEntry {
    Number(u32),
    Name(String),
}

impl IdEntry {
    /// The text form, as a flag would give it.
    pub fn text(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Name(name) => name.clone(),
        }
    }
}

/// A parsed config file, able to say where each of its values stands.
pub struct ConfigFile {
    path: Arc<PathBuf>,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    pub top: Top,
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path, fs: &Fs) -> Result<Self, ConfigError> {
        let whole = |problem: String| ConfigError::File {
            path: path.to_owned(),
            line: None,
            problem,
        };
        let bytes = fs
            .read_config(path)
            .map_err(|e| whole(format!("cannot be read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| whole("is not UTF-8 text".into()))?;
        Self::parse(&text, path)
    }

    /// Parses `text`, the content of the file at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect::<Vec<_>>();
        let line_of = |offset: usize| line_starts.partition_point(|&start| start <= offset);
        let top: Top = toml::from_str(text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            line: e.span().map(|span| line_of(span.start)),
            // The message alone: the error's Display quotes the line over several lines.
            problem: e.message().trim_end().replace('\n', "; "),
        })?;
        if top.roles.is_empty() {
            return Err(ConfigError::File {
                path: path.to_owned(),
                line: None,
                problem: "no [[role]] is defined".into(),
            });
        }
        Ok(Self {
            path: Arc::new(path.to_owned()),
            line_starts,
            top,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The origin of a value at `span`, under `key` (of `role`, if a role's).
    pub fn origin(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        role: Option<&RoleEntry>,
    ) -> Origin {
        Origin::File(Arc::new(FileSpot {
            path: self.path.as_ref().clone(),
            line: self
                .line_starts
                .partition_point(|&start| start <= span.start),
            key: key.to_owned(),
            role: role.map(|r| r.name.get_ref().clone()),
        }))
    }

    /// A top-level value with its origin.
    pub fn top<T: Clone>(&self, value: &Option<Spanned<T>>, key: &str) -> Option<Sourced<T>> {
        value
            .as_ref()
            .map(|v| Sourced::new(v.get_ref().clone(), self.origin(v.span(), key, None)))
    }

    /// A role's value with its origin.
    pub fn of<T: Clone>(
        &self,
        role: &RoleEntry,
        value: &Option<Spanned<T>>,
        key: &str,
    ) -> Option<Sourced<T>> {
        value
            .as_ref()
            .map(|v| Sourced::new(v.get_ref().clone(), self.origin(v.span(), key, Some(role))))
    }

    /// Where a key missing from `role` would go: the role's `name` line.
    pub fn missing(&self, role: &RoleEntry, key: &str) -> Origin {
        self.origin(role.name.span(), key, Some(role))
    }

    /// An error about the file as a whole, at the line of `span` if given.
    pub fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError::File {
            path: self.path.as_ref().clone(),
            line: span.map(|s| self.line_starts.partition_point(|&start| start <= s.start)),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_know_their_line_and_key() {
        let text = "hop_limit = 3\n\n[[role]]\nname = \"a\"\nsession_duration = 5\n";
        let file = ConfigFile::parse(text, Path::new("t.toml")).unwrap();
        let hop = file.top(&file.top.hop_limit, "hop_limit").unwrap();
        assert_eq!(hop.value, 3);
        assert_eq!(
            hop.error("3 is odd").to_string(),
            "config file t.toml, line 1: hop_limit 3 is odd"
        );
        let role = file.top.roles[0].get_ref();
        let duration = file
            .of(role, &role.session_duration, "session_duration")
            .unwrap();
        assert_eq!(
            duration.error("5 is out of range").to_string(),
            "config file t.toml, line 5: role \"a\": session_duration 5 is out of range"
        );
        assert_eq!(
            file.missing(role, "role_arn").to_string(),
            "config file t.toml, line 4: role \"a\": role_arn"
        );
    }

    #[test]
    fn parse_errors_are_one_line_with_the_line_number() {
        let error = ConfigFile::parse("[[role]]\nname = \"a\"\ncolour = 1\n", Path::new("t.toml"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.starts_with("config file t.toml, line 3: unknown field `colour`"),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }
}
