//! What `serve` is to do, validated before anything starts: the roles (identity, ARNs,
//! session settings, ECS token file) and the listeners (address, hop limit, which role each
//! serves over IMDS and which over ECS).
//!
//! With flags only, the plan is one role on one listener, as the official helper's `serve`.
//! With `--config FILE`, each `[[role]]` of the TOML file is a role; the shared settings at
//! the top and the command line's endpoint, region, CA bundle and timeouts are defaults.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{CredentialArgs, KeyArgs, ServeArgs};
use crate::config::{self, SessionSettings};
use crate::error::{Error, Result};

/// The official helper's port.
pub const DEFAULT_PORT: u16 = 9911;
/// The official helper's default hop limit.
pub const DEFAULT_HOP_LIMIT: u32 = 64;
/// Connections held at once unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Days before a certificate's expiry from which the daemon warns, once a day.
pub const DEFAULT_CERT_EXPIRY_WARNING_DAYS: u32 = 30;

#[derive(Debug)]
pub struct Plan {
    pub roles: Vec<RolePlan>,
    pub listeners: Vec<ListenerPlan>,
    pub max_connections: usize,
    /// Host names answered besides IP addresses and localhost.
    pub allowed_hosts: Vec<String>,
    /// Where `/healthz` and `/metrics` are served, if anywhere.
    pub ops: Option<Endpoint>,
    pub cert_expiry_warning_days: u32,
}

/// Where a listener listens: an address to bind, or a socket passed by systemd socket
/// activation, named by its `FileDescriptorName=` (written `fd:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Activated(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Activated(name) => write!(f, "fd:{name}"),
        }
    }
}

#[derive(Debug)]
pub struct RolePlan {
    pub name: String,
    pub settings: SessionSettings,
    pub ecs: Option<EcsPlan>,
}

#[derive(Debug, Clone)]
pub struct EcsPlan {
    pub token_file: PathBuf,
    /// The group that may read the token file, if not only the owner.
    pub group: Option<u32>,
}

#[derive(Debug)]
pub struct ListenerPlan {
    pub endpoint: Endpoint,
    pub hop_limit: u32,
    /// Index into `roles` of the role served over IMDS here.
    pub imds: Option<usize>,
    /// Indexes into `roles` of the roles served over ECS here.
    pub ecs: Vec<usize>,
}

/// The plan for `serve`'s flags (and config file, if given). `activated` are the names of
/// the sockets passed by socket activation.
pub fn from_args(
    args: &ServeArgs,
    env: impl Fn(&str) -> Option<String>,
    activated: &[String],
) -> Result<Plan> {
    let hop_limit = hop_limit(args.hop_limit.unwrap_or(DEFAULT_HOP_LIMIT), "--hop-limit")?;
    let max_connections = args.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        return Err(Error::Usage("--max-connections must be at least 1".into()));
    }
    let ops = args
        .ops_listen
        .as_deref()
        .map(|text| parse_endpoint(text, "--ops-listen", activated))
        .transpose()?;
    let warning_days = args
        .cert_expiry_warning_days
        .unwrap_or(DEFAULT_CERT_EXPIRY_WARNING_DAYS);
    match &args.config {
        None => one_role(args, hop_limit, max_connections, env, activated).map(|mut plan| {
            plan.ops = ops;
            plan.cert_expiry_warning_days = warning_days;
            plan.allowed_hosts = args.allowed_hosts.clone();
            plan
        }),
        Some(path) => {
            refuse_flags_beside_config(
                &args.credentials,
                &[
                    ("--port", args.port.is_some()),
                    ("--bind", args.bind.is_some()),
                    ("--hop-limit", args.hop_limit.is_some()),
                    ("--ecs-token-file", args.ecs_token_file.is_some()),
                ],
            )?;
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Usage(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                ))
            })?;
            let mut plan = from_toml(&text, path, args, max_connections, env, activated)?;
            plan.ops = ops.or(plan.ops);
            plan.allowed_hosts
                .extend(args.allowed_hosts.iter().cloned());
            if let Some(days) = args.cert_expiry_warning_days {
                plan.cert_expiry_warning_days = days;
            }
            Ok(plan)
        }
    }
}

fn one_role(
    args: &ServeArgs,
    hop_limit: u32,
    max_connections: usize,
    env: impl Fn(&str) -> Option<String>,
    activated: &[String],
) -> Result<Plan> {
    let ip = match &args.bind {
        Some(text) => parse_ip(text, "--bind")?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    // A passed socket replaces --bind and --port; several need --config to say which is
    // which (the ops socket, if it is one, is named by --ops-listen).
    let for_role: Vec<&String> = activated
        .iter()
        .filter(|name| args.ops_listen.as_deref() != Some(&format!("fd:{name}")))
        .collect();
    let endpoint = match for_role.as_slice() {
        [] => Endpoint::Tcp(SocketAddr::new(ip, args.port.unwrap_or(DEFAULT_PORT))),
        [name] => Endpoint::Activated((*name).clone()),
        names => {
            return Err(Error::Usage(format!(
                "{} sockets were passed ({}); without --config, serve uses one. Name them in the config file (imds = \"fd:NAME\")",
                names.len(),
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let settings = config::session_settings(&args.credentials, env)?;
    let name = role_name(&settings);
    let ecs = match &args.ecs_token_file {
        Some(file) => Some(EcsPlan {
            token_file: file.clone(),
            group: group(args.ecs_token_group.as_deref(), "--ecs-token-group")?,
        }),
        None => None,
    };
    let serves_ecs = ecs.is_some();
    Ok(Plan {
        roles: vec![RolePlan {
            name,
            settings,
            ecs,
        }],
        listeners: vec![ListenerPlan {
            endpoint,
            hop_limit,
            imds: Some(0),
            ecs: if serves_ecs { vec![0] } else { Vec::new() },
        }],
        max_connections,
        allowed_hosts: Vec::new(),
        ops: None,
        cert_expiry_warning_days: DEFAULT_CERT_EXPIRY_WARNING_DAYS,
    })
}

/// The last component of the role ARN: the name IMDS lists and the ECS path uses.
fn role_name(settings: &SessionSettings) -> String {
    let arn = &settings.params.role_arn;
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

/// With `--config`, the role-specific flags would be ambiguous: refuse them by name.
/// `extra` are the calling command's own such flags, with whether each was given.
pub fn refuse_flags_beside_config(c: &CredentialArgs, extra: &[(&str, bool)]) -> Result<()> {
    let given = [
        ("--certificate", c.key.certificate.is_some()),
        ("--private-key", c.key.private_key.is_some()),
        ("--pkcs8-password", c.key.pkcs8_password.is_some()),
        ("--pkcs8-password-file", c.key.pkcs8_password_file.is_some()),
        ("--pkcs11-lib", c.key.pkcs11_lib.is_some()),
        ("--pkcs11-pin-file", c.key.pkcs11_pin_file.is_some()),
        (
            "--pkcs11-context-pin-file",
            c.key.pkcs11_context_pin_file.is_some(),
        ),
        ("--reuse-pin", c.key.reuse_pin),
        ("--intermediates", c.intermediates.is_some()),
        ("--trust-anchor-arn", c.trust_anchor_arn.is_some()),
        ("--profile-arn", c.profile_arn.is_some()),
        ("--role-arn", c.role_arn.is_some()),
        ("--role-session-name", c.role_session_name.is_some()),
    ];
    let clashing: Vec<&str> = given
        .iter()
        .chain(extra)
        .filter(|(_, set)| *set)
        .map(|(flag, _)| *flag)
        .collect();
    if clashing.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} cannot be combined with --config; set them in the config file instead",
            clashing.join(", ")
        )))
    }
}

/// The config file. Unknown keys are errors, so a typo does not silently change nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Where the ECS paths are served: `IP:PORT`.
    #[serde(default)]
    bind: Option<String>,
    #[serde(default)]
    hop_limit: Option<u32>,
    #[serde(default)]
    max_connections: Option<usize>,
    /// `IP:PORT` or `fd:NAME` of the `/healthz` and `/metrics` listener.
    #[serde(default)]
    ops: Option<String>,
    #[serde(default)]
    cert_expiry_warning_days: Option<u32>,
    /// Host names answered besides IP addresses and localhost.
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default, rename = "role")]
    roles: Vec<RoleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    name: String,
    certificate: Option<String>,
    private_key: Option<String>,
    pkcs8_password_file: Option<PathBuf>,
    /// PKCS#11: the module, the PIN files and `--reuse-pin`, for `pkcs11:` URIs.
    pkcs11_lib: Option<String>,
    pkcs11_pin_file: Option<PathBuf>,
    pkcs11_context_pin_file: Option<PathBuf>,
    reuse_pin: Option<bool>,
    intermediates: Option<String>,
    trust_anchor_arn: Option<String>,
    profile_arn: Option<String>,
    role_arn: Option<String>,
    session_duration: Option<i64>,
    role_session_name: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    ca_bundle: Option<PathBuf>,
    /// `IP:PORT` of this role's IMDS listener.
    imds: Option<String>,
    ecs_token_file: Option<PathBuf>,
    ecs_token_group: Option<String>,
    /// The credentials-file profile `update` writes (default: `name`).
    profile: Option<String>,
}

/// The roles of a config file, with their validated session settings in the same order.
struct Roles {
    file: File,
    settings: Vec<SessionSettings>,
}

fn file_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Usage(format!("config file {}: {what}", path.display()))
}

/// Parses the file and validates what every command shares: role names and session
/// settings.
fn read_roles(
    text: &str,
    path: &Path,
    defaults: &CredentialArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Roles> {
    let file: File = toml::from_str(text).map_err(|e| file_error(path, e))?;
    if file.roles.is_empty() {
        return Err(file_error(path, "no [[role]] is defined"));
    }
    let mut names = HashSet::new();
    let mut settings = Vec::with_capacity(file.roles.len());
    for entry in &file.roles {
        if !valid_name(&entry.name) {
            return Err(file_error(
                path,
                format!(
                    "role name {:?} must be 1 to 64 letters, digits, '.', '_' or '-' (it is part of the ECS path)",
                    entry.name
                ),
            ));
        }
        if !names.insert(entry.name.as_str()) {
            return Err(file_error(
                path,
                format!("role name {:?} is used twice", entry.name),
            ));
        }
        settings.push(
            config::session_settings(&entry.credential_args(defaults), &env)
                .map_err(|e| file_error(path, format!("role {:?}: {e}", entry.name)))?,
        );
    }
    Ok(Roles { file, settings })
}

/// The roles of `--config FILE` for `update`: each with the credentials-file profile it
/// is written to (its `profile` key, or its name). Listener keys are ignored, so one file
/// can serve both commands.
pub fn update_roles(
    path: &Path,
    defaults: &CredentialArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, SessionSettings)>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    update_roles_from_text(&text, path, defaults, env)
}

/// [`update_roles`] for the text of the file at `path`.
pub(crate) fn update_roles_from_text(
    text: &str,
    path: &Path,
    defaults: &CredentialArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, SessionSettings)>> {
    let Roles { file, settings } = read_roles(text, path, defaults, env)?;
    let mut profiles = HashSet::new();
    let mut out = Vec::with_capacity(settings.len());
    for (entry, settings) in file.roles.into_iter().zip(settings) {
        let profile = entry.profile.unwrap_or(entry.name);
        if !profiles.insert(profile.clone()) {
            return Err(file_error(
                path,
                format!("profile {profile:?} is written by two roles"),
            ));
        }
        out.push((profile, settings));
    }
    Ok(out)
}

pub(crate) fn from_toml(
    text: &str,
    path: &Path,
    args: &ServeArgs,
    max_connections: usize,
    env: impl Fn(&str) -> Option<String>,
    activated: &[String],
) -> Result<Plan> {
    let Roles { file, settings } = read_roles(text, path, &args.credentials, env)?;
    let at = |what: String| file_error(path, what);
    let hop_limit = hop_limit(file.hop_limit.unwrap_or(DEFAULT_HOP_LIMIT), "hop_limit")
        .map_err(|e| at(e.to_string()))?;
    let ecs_endpoint = match &file.bind {
        Some(text) => parse_endpoint(text, "bind", activated).map_err(|e| at(e.to_string()))?,
        None => Endpoint::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            DEFAULT_PORT,
        )),
    };
    let ops = file
        .ops
        .as_deref()
        .map(|text| parse_endpoint(text, "ops", activated).map_err(|e| at(e.to_string())))
        .transpose()?;
    let max_connections = file.max_connections.unwrap_or(max_connections);

    let mut roles = Vec::with_capacity(file.roles.len());
    let mut listeners: Vec<ListenerPlan> = Vec::new();
    for (index, (entry, settings)) in file.roles.iter().zip(settings).enumerate() {
        let within = |e: Error| at(format!("role {:?}: {e}", entry.name));
        // A passed socket named like the role is its IMDS listener unless the file says
        // otherwise.
        let imds = entry.imds.clone().or_else(|| {
            activated
                .contains(&entry.name)
                .then(|| format!("fd:{}", entry.name))
        });
        if imds.is_none() && entry.ecs_token_file.is_none() {
            return Err(within(Error::Usage(
                "give imds = \"IP:PORT\", ecs_token_file = \"FILE\", or both; otherwise the role is served nowhere".into(),
            )));
        }
        let ecs = match &entry.ecs_token_file {
            Some(file) => Some(EcsPlan {
                token_file: file.clone(),
                group: group(entry.ecs_token_group.as_deref(), "ecs_token_group")
                    .map_err(within)?,
            }),
            None if entry.ecs_token_group.is_some() => {
                return Err(within(Error::Usage(
                    "ecs_token_group needs ecs_token_file".into(),
                )));
            }
            None => None,
        };
        if let Some(text) = &imds {
            let endpoint = parse_endpoint(text, "imds", activated).map_err(within)?;
            let listener = listener_at(&mut listeners, endpoint.clone(), hop_limit);
            if let Some(other) = listener.imds {
                return Err(within(Error::Usage(format!(
                    "imds address {endpoint} is already role {:?}'s; IMDS serves one role per address",
                    file.roles[other].name
                ))));
            }
            listener.imds = Some(index);
        }
        if ecs.is_some() {
            listener_at(&mut listeners, ecs_endpoint.clone(), hop_limit)
                .ecs
                .push(index);
        }
        roles.push(RolePlan {
            name: entry.name.clone(),
            settings,
            ecs,
        });
    }
    Ok(Plan {
        roles,
        listeners,
        max_connections,
        allowed_hosts: file.allowed_hosts.clone(),
        ops,
        cert_expiry_warning_days: file
            .cert_expiry_warning_days
            .unwrap_or(DEFAULT_CERT_EXPIRY_WARNING_DAYS),
    })
}

impl RoleEntry {
    /// The role as command-line flags, with the command line's connection settings as
    /// defaults, so one validation serves both ways of configuring.
    fn credential_args(&self, defaults: &CredentialArgs) -> CredentialArgs {
        CredentialArgs {
            key: KeyArgs {
                certificate: self.certificate.clone(),
                private_key: self.private_key.clone(),
                pkcs8_password_file: self.pkcs8_password_file.clone(),
                allow_readable_key_files: defaults.key.allow_readable_key_files,
                debug: defaults.key.debug,
                pkcs11_lib: self.pkcs11_lib.clone(),
                pkcs11_pin_file: self.pkcs11_pin_file.clone(),
                pkcs11_context_pin_file: self.pkcs11_context_pin_file.clone(),
                reuse_pin: self.reuse_pin.unwrap_or(false),
                ..KeyArgs::default()
            },
            intermediates: self.intermediates.clone(),
            trust_anchor_arn: self.trust_anchor_arn.clone(),
            profile_arn: self.profile_arn.clone(),
            role_arn: self.role_arn.clone(),
            session_duration: self.session_duration.unwrap_or(defaults.session_duration),
            role_session_name: self.role_session_name.clone(),
            region: self.region.clone().or_else(|| defaults.region.clone()),
            endpoint: self.endpoint.clone().or_else(|| defaults.endpoint.clone()),
            ca_bundle: self
                .ca_bundle
                .clone()
                .or_else(|| defaults.ca_bundle.clone()),
            ..defaults.clone()
        }
    }
}

/// The listener at `endpoint`, added if new.
fn listener_at(
    listeners: &mut Vec<ListenerPlan>,
    endpoint: Endpoint,
    hop_limit: u32,
) -> &mut ListenerPlan {
    let index = match listeners.iter().position(|l| l.endpoint == endpoint) {
        Some(i) => i,
        None => {
            listeners.push(ListenerPlan {
                endpoint,
                hop_limit,
                imds: None,
                ecs: Vec::new(),
            });
            listeners.len() - 1
        }
    };
    &mut listeners[index]
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn hop_limit(value: u32, what: &str) -> Result<u32> {
    if (1..=255).contains(&value) {
        Ok(value)
    } else {
        Err(Error::Usage(format!(
            "{what} {value} is out of range; use 1 to 255"
        )))
    }
}

/// An IP address, with or without the brackets of an IPv6 URL host.
fn parse_ip(text: &str, what: &str) -> Result<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().map_err(|_| {
        Error::Usage(format!(
            "{what} {text:?} is not an IP address; use for example 127.0.0.1 or [::1]"
        ))
    })
}

/// `IP:PORT`, or `fd:NAME` for a socket passed by socket activation.
fn parse_endpoint(text: &str, what: &str, activated: &[String]) -> Result<Endpoint> {
    match text.strip_prefix("fd:") {
        Some(name) if activated.iter().any(|a| a == name) => {
            Ok(Endpoint::Activated(name.to_owned()))
        }
        Some(name) => Err(Error::Usage(format!(
            "{what} {text:?}: no socket named {name:?} was passed by socket activation{}",
            if activated.is_empty() {
                String::new()
            } else {
                format!(" (passed: {})", activated.join(", "))
            }
        ))),
        None => parse_socket_addr(text, what).map(Endpoint::Tcp),
    }
}

fn parse_socket_addr(text: &str, what: &str) -> Result<SocketAddr> {
    text.parse().map_err(|_| {
        Error::Usage(format!(
            "{what} {text:?} is not IP:PORT; use for example 127.0.0.1:9911 or [::1]:9911"
        ))
    })
}

fn group(name: Option<&str>, what: &str) -> Result<Option<u32>> {
    name.map(|n| {
        crate::serve::ecs::resolve_group(n).map_err(|e| Error::Usage(format!("{what}: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TA: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a";
    const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/p";

    fn flags() -> ServeArgs {
        let mut args = ServeArgs::default();
        args.credentials.session_duration = 3600;
        args.credentials.key.certificate = Some("c.pem".into());
        args.credentials.key.private_key = Some("k.pem".into());
        args.credentials.trust_anchor_arn = Some(TA.into());
        args.credentials.profile_arn = Some(PROFILE.into());
        args.credentials.role_arn = Some("arn:aws:iam::111122223333:role/path/app".into());
        args
    }

    fn plan_toml(text: &str) -> Result<Plan> {
        let mut args = ServeArgs::default();
        args.credentials.session_duration = 3600;
        from_toml(
            text,
            Path::new("t.toml"),
            &args,
            DEFAULT_MAX_CONNECTIONS,
            |_| None,
            &["sock".to_owned()],
        )
    }

    fn role(name: &str, extra: &str) -> String {
        format!(
            "[[role]]\nname = \"{name}\"\ncertificate = \"c\"\nprivate_key = \"k\"\ntrust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PROFILE}\"\nrole_arn = \"arn:aws:iam::111122223333:role/{name}\"\n{extra}\n"
        )
    }

    #[test]
    fn flags_make_one_role_on_loopback_9911() {
        let plan = from_args(&flags(), |_| None, &[]).unwrap();
        assert_eq!(plan.roles.len(), 1);
        assert_eq!(plan.roles[0].name, "app", "the role path is stripped");
        assert_eq!(
            plan.listeners[0].endpoint,
            Endpoint::Tcp("127.0.0.1:9911".parse().unwrap())
        );
        assert_eq!(plan.listeners[0].hop_limit, 64);
        assert_eq!(plan.listeners[0].imds, Some(0));
        assert!(plan.listeners[0].ecs.is_empty());
    }

    #[test]
    fn bind_takes_ipv6_with_or_without_brackets() {
        for text in ["::1", "[::1]"] {
            let mut args = flags();
            args.bind = Some(text.into());
            args.port = Some(0);
            let plan = from_args(&args, |_| None, &[]).unwrap();
            assert_eq!(
                plan.listeners[0].endpoint,
                Endpoint::Tcp("[::1]:0".parse().unwrap())
            );
        }
        let mut args = flags();
        args.bind = Some("localhost:80".into());
        assert!(
            from_args(&args, |_| None, &[])
                .unwrap_err()
                .to_string()
                .contains("--bind")
        );
    }

    #[test]
    fn hop_limit_must_be_1_to_255() {
        for bad in [0, 256] {
            let mut args = flags();
            args.hop_limit = Some(bad);
            assert!(
                from_args(&args, |_| None, &[])
                    .unwrap_err()
                    .to_string()
                    .contains("1 to 255")
            );
        }
    }

    #[test]
    fn config_serves_two_roles_on_their_listeners() {
        let text = format!(
            "bind = \"127.0.0.1:9000\"\n{}{}",
            role(
                "a",
                "imds = \"127.0.0.1:9001\"\necs_token_file = \"/tmp/a\""
            ),
            role("b", "imds = \"[::1]:9002\"")
        );
        let plan = plan_toml(&text).unwrap();
        assert_eq!(plan.roles.len(), 2);
        let at = |addr: &str| {
            plan.listeners
                .iter()
                .find(|l| l.endpoint == Endpoint::Tcp(addr.parse().unwrap()))
                .unwrap()
        };
        assert_eq!(at("127.0.0.1:9001").imds, Some(0));
        assert_eq!(at("[::1]:9002").imds, Some(1));
        assert_eq!(at("127.0.0.1:9000").ecs, vec![0]);
    }

    #[test]
    fn passed_sockets_are_matched_by_name() {
        // `fd:NAME` explicitly, or implicitly a socket named like a role without `imds`.
        let text = format!(
            "bind = \"fd:sock\"\n{}",
            role("sock", "ecs_token_file = \"/tmp/t\"")
        );
        let plan = plan_toml(&text).unwrap();
        assert_eq!(plan.listeners.len(), 1);
        assert_eq!(
            plan.listeners[0].endpoint,
            Endpoint::Activated("sock".into())
        );
        assert_eq!(plan.listeners[0].imds, Some(0));
        assert_eq!(plan.listeners[0].ecs, vec![0]);
        let error = plan_toml(&role("a", "imds = \"fd:other\""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "no socket named \"other\" was passed by socket activation (passed: sock)"
            ),
            "{error}"
        );
    }

    #[test]
    fn flags_take_the_one_passed_socket() {
        let names = ["web".to_owned()];
        let plan = from_args(&flags(), |_| None, &names).unwrap();
        assert_eq!(
            plan.listeners[0].endpoint,
            Endpoint::Activated("web".into())
        );
        let two = ["a".to_owned(), "b".to_owned()];
        let error = from_args(&flags(), |_| None, &two).unwrap_err().to_string();
        assert!(error.contains("2 sockets were passed (a, b)"), "{error}");
        let mut args = flags();
        args.ops_listen = Some("fd:b".into());
        let plan = from_args(&args, |_| None, &two).unwrap();
        assert_eq!(plan.listeners[0].endpoint, Endpoint::Activated("a".into()));
        assert_eq!(plan.ops, Some(Endpoint::Activated("b".into())));
    }

    #[test]
    fn config_errors_name_the_problem() {
        let cases = [
            (String::new(), "no [[role]]"),
            (role("a", ""), "served nowhere"),
            (role("a b", "imds = \"127.0.0.1:1\""), "role name"),
            (
                format!(
                    "{}{}",
                    role("a", "imds = \"127.0.0.1:1\""),
                    role("a", "imds = \"127.0.0.1:2\"")
                ),
                "used twice",
            ),
            (
                format!(
                    "{}{}",
                    role("a", "imds = \"127.0.0.1:1\""),
                    role("b", "imds = \"127.0.0.1:1\"")
                ),
                "one role per address",
            ),
            (
                role("a", "imds = \"127.0.0.1:1\"\ncolour = 1"),
                "unknown field",
            ),
            (role("a", "imds = \"here\""), "not IP:PORT"),
            (
                role("a", "imds = \"127.0.0.1:1\"\nsession_duration = 5"),
                "out of range",
            ),
        ];
        for (text, expected) in cases {
            let error = plan_toml(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}\n=> {error}");
        }
    }

    #[test]
    fn role_flags_beside_config_are_refused() {
        let mut args = flags();
        args.config = Some("serve.toml".into());
        let error = from_args(&args, |_| None, &[]).unwrap_err().to_string();
        assert!(
            error.contains("--certificate") && error.contains("--role-arn"),
            "{error}"
        );
    }
}
