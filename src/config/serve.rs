//! The plan of `serve`: from the flags alone, one role on one listener, as the official
//! helper's `serve`; with `--config FILE`, each `[[role]]` of the file, and the file's
//! listeners. Shared settings follow the one precedence rule (command line, environment,
//! file, default); the flags that describe the single role of the command line are refused
//! beside `--config`, where they would be ambiguous.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::aws_profile::AwsProfile;
use super::file::{ConfigFile, RoleEntry};
use super::inputs::Inputs;
use super::origin::{ConfigError, Origin, Sourced, first};
use super::plan::{
    DEFAULT_CERT_EXPIRY_WARNING_DAYS, DEFAULT_HOP_LIMIT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT,
    DaemonSocketPlan, EcsPlan, Endpoint, ListenerPlan, Plan, RolePlan,
};
use super::role::RoleSources;
use super::session::{SessionSettings, session_settings};
use super::{ids, listen};
use crate::cli::{CredentialArgs, ServeArgs};

/// The plan for `serve`'s flags and config file. `activated` are the names of the sockets
/// passed by socket activation.
pub fn serve_plan(
    args: &ServeArgs,
    inputs: &Inputs,
    activated: &[String],
) -> Result<Plan, ConfigError> {
    super::identity::refuse_unavailable(&args.credentials.key)?;
    let file = match &args.config {
        Some(path) => {
            refuse_flags_beside_config(
                &args.credentials,
                &[
                    ("--port", args.port.is_some()),
                    ("--bind", args.bind.is_some()),
                    ("--ecs-token-file", args.ecs_token_file.is_some()),
                    ("--ecs-token-group", args.ecs_token_group.is_some()),
                ],
            )?;
            Some(ConfigFile::read(path, &inputs.fs)?)
        }
        None => None,
    };
    let top = file.as_ref().map(|f| (f, &f.top));
    let hop = first([
        args.hop_limit
            .map(|v| Sourced::new(v, Origin::Flag("--hop-limit"))),
        top.and_then(|(f, t)| f.top(&t.hop_limit, "hop_limit")),
    ]);
    let hop_limit = hop
        .as_ref()
        .map(listen::hop_limit)
        .transpose()?
        .unwrap_or(DEFAULT_HOP_LIMIT);
    let max_connections = first([
        args.max_connections
            .map(|v| Sourced::new(v, Origin::Flag("--max-connections"))),
        top.and_then(|(f, t)| f.top(&t.max_connections, "max_connections")),
    ]);
    let max_connections = match max_connections {
        Some(given) if given.value == 0 => return Err(given.error("must be at least 1")),
        Some(given) => given.value,
        None => DEFAULT_MAX_CONNECTIONS,
    };
    let ops = first([
        args.ops_listen
            .clone()
            .map(|v| Sourced::new(v, Origin::Flag("--ops-listen"))),
        top.and_then(|(f, t)| f.top(&t.ops, "ops")),
    ]);
    let allowed_hosts = first([
        (!args.allowed_hosts.is_empty())
            .then(|| Sourced::new(args.allowed_hosts.clone(), Origin::Flag("--allow-host"))),
        top.and_then(|(f, t)| f.top(&t.allowed_hosts, "allowed_hosts")),
    ]);
    let warning_days = first([
        args.cert_expiry_warning_days
            .map(|v| Sourced::new(v, Origin::Flag("--cert-expiry-warning-days"))),
        top.and_then(|(f, t)| f.top(&t.cert_expiry_warning_days, "cert_expiry_warning_days")),
    ]);
    let profile = AwsProfile::load(inputs)?;
    // The daemon sockets first: the passed sockets they take are no other listener's.
    let role_count = file.as_ref().map_or(1, |f| f.top.roles.len());
    let daemon_sockets = super::daemon_socket::plans(
        &args.daemon_socket,
        file.as_ref(),
        (0..role_count).collect(),
        activated,
    )?;
    let taken = super::daemon_socket::activated_names(&daemon_sockets);
    let activated: Vec<String> = activated
        .iter()
        .filter(|name| !taken.contains(name))
        .cloned()
        .collect();
    let activated = activated.as_slice();
    let mut plan = match &file {
        None => one_role(args, inputs, &profile, hop_limit, activated)?,
        Some(file) => from_file(
            file,
            &args.credentials,
            inputs,
            &profile,
            hop_limit,
            activated,
            &daemon_sockets,
        )?,
    };
    plan.daemon_sockets = daemon_sockets;
    plan.max_connections = max_connections;
    plan.ops = ops
        .as_ref()
        .map(|o| listen::endpoint(o, activated))
        .transpose()?;
    plan.allowed_hosts = allowed_hosts.map(|h| h.value).unwrap_or_default();
    plan.cert_expiry_warning_days =
        warning_days.map_or(DEFAULT_CERT_EXPIRY_WARNING_DAYS, |d| d.value);
    plan.pacing = super::pacing::pacing_plan(args, file.as_ref())?;
    Ok(plan)
}

/// The one role of the command line, on one listener.
fn one_role(
    args: &ServeArgs,
    inputs: &Inputs,
    profile: &AwsProfile,
    hop_limit: u32,
    activated: &[String],
) -> Result<Plan, ConfigError> {
    let ip = match &args.bind {
        Some(text) => listen::ip(&Sourced::new(text.clone(), Origin::Flag("--bind")))?,
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
            return Err(ConfigError::conflict(format!(
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
    let settings = session_settings(
        &RoleSources::from_flags(&args.credentials, &inputs.env, profile),
        inputs,
    )?;
    let group = args
        .ecs_token_group
        .clone()
        .map(|g| ids::group(&Sourced::new(g, Origin::Flag("--ecs-token-group"))))
        .transpose()?;
    let ecs = args
        .ecs_token_file
        .clone()
        .map(|token_file| EcsPlan { token_file, group });
    let serves_ecs = ecs.is_some();
    Ok(Plan {
        roles: vec![RolePlan {
            name: settings.role_name(),
            settings,
            ecs,
            failover: None,
        }],
        listeners: vec![ListenerPlan {
            endpoint,
            hop_limit,
            imds: Some(0),
            ecs: if serves_ecs { vec![0] } else { Vec::new() },
        }],
        max_connections: DEFAULT_MAX_CONNECTIONS,
        allowed_hosts: Vec::new(),
        ops: None,
        cert_expiry_warning_days: DEFAULT_CERT_EXPIRY_WARNING_DAYS,
        daemon_sockets: Vec::new(),
        pacing: super::pacing::PacingPlan::default(),
    })
}

/// With `--config`, the flags that describe the command line's one role would be
/// ambiguous: refuse them by name. `extra` are the calling command's own such flags, with
/// whether each was given.
pub fn refuse_flags_beside_config(
    c: &CredentialArgs,
    extra: &[(&str, bool)],
) -> Result<(), ConfigError> {
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
        ("--assume-role-arn", !c.chain.hops.is_empty()),
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
        Err(ConfigError::conflict(format!(
            "{} cannot be combined with --config; set them in the config file instead",
            clashing.join(", ")
        )))
    }
}

/// Each `[[role]]` with its validated session settings, in the file's order; names are
/// checked to be valid and unique.
pub fn file_roles<'f>(
    file: &'f ConfigFile,
    defaults: &CredentialArgs,
    inputs: &Inputs,
    profile: &AwsProfile,
) -> Result<Vec<(&'f RoleEntry, SessionSettings)>, ConfigError> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(file.top.roles.len());
    for entry in &file.top.roles {
        let entry = entry.get_ref();
        let name = file
            .of(entry, &Some(entry.name.clone()), "name")
            .unwrap_or_else(|| Sourced::new(String::new(), file.missing(entry, "name")));
        if !valid_name(&name.value) {
            return Err(name.error(format!(
                "{:?} must be 1 to 64 letters, digits, '.', '_' or '-' (it is part of the ECS path)",
                name.value
            )));
        }
        if !names.insert(name.value.clone()) {
            return Err(name.error(format!("{:?} is used twice", name.value)));
        }
        let sources = RoleSources::from_file_role(defaults, &inputs.env, file, entry, profile);
        out.push((entry, session_settings(&sources, inputs)?));
    }
    Ok(out)
}

fn from_file(
    file: &ConfigFile,
    defaults: &CredentialArgs,
    inputs: &Inputs,
    profile: &AwsProfile,
    hop_limit: u32,
    activated: &[String],
    daemon_sockets: &[DaemonSocketPlan],
) -> Result<Plan, ConfigError> {
    let ecs_endpoint = match file.top(&file.top.bind, "bind") {
        Some(text) => listen::endpoint(&text, activated)?,
        None => Endpoint::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            DEFAULT_PORT,
        )),
    };
    let mut roles = Vec::with_capacity(file.top.roles.len());
    let mut listeners: Vec<ListenerPlan> = Vec::new();
    for (index, (entry, settings)) in file_roles(file, defaults, inputs, profile)?
        .into_iter()
        .enumerate()
    {
        let name = entry.name.get_ref().clone();
        // A passed socket named like the role is its IMDS listener unless the file says
        // otherwise.
        let imds = file.of(entry, &entry.imds, "imds").or_else(|| {
            activated
                .contains(&name)
                .then(|| Sourced::new(format!("fd:{name}"), file.missing(entry, "imds")))
        });
        let token_file = file.of(entry, &entry.ecs_token_file, "ecs_token_file");
        let token_group = file.of(entry, &entry.ecs_token_group, "ecs_token_group");
        let on_socket = daemon_sockets.iter().any(|s| s.roles.contains(&index));
        if imds.is_none() && token_file.is_none() && !on_socket {
            return Err(ConfigError::at(
                file.missing(entry, "imds"),
                "or ecs_token_file is needed: give imds = \"IP:PORT\", ecs_token_file = \"FILE\", a daemon_socket, or several; otherwise the role is served nowhere",
            ));
        }
        let ecs = match (token_file, &token_group) {
            (Some(token_file), _) => Some(EcsPlan {
                token_file: token_file.value,
                group: token_group.as_ref().map(ids::group).transpose()?,
            }),
            (None, Some(group)) => return Err(group.error("needs ecs_token_file")),
            (None, None) => None,
        };
        if let Some(text) = &imds {
            let endpoint = listen::endpoint(text, activated)?;
            let listener = listener_at(&mut listeners, endpoint.clone(), hop_limit);
            if let Some(other) = listener.imds {
                let other: &RolePlan = &roles[other];
                return Err(text.error(format!(
                    "{endpoint} is already role {:?}'s; IMDS serves one role per address",
                    other.name
                )));
            }
            listener.imds = Some(index);
        }
        if ecs.is_some() {
            listener_at(&mut listeners, ecs_endpoint.clone(), hop_limit)
                .ecs
                .push(index);
        }
        let failover = super::failover::failover_plan(
            &settings,
            file.of(entry, &entry.failover, "failover"),
            file.of(entry, &entry.failover_after, "failover_after"),
        )?;
        roles.push(RolePlan {
            name,
            settings,
            ecs,
            failover,
        });
    }
    Ok(Plan {
        roles,
        listeners,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        allowed_hosts: Vec::new(),
        ops: None,
        cert_expiry_warning_days: DEFAULT_CERT_EXPIRY_WARNING_DAYS,
        daemon_sockets: Vec::new(),
        pacing: super::pacing::PacingPlan::default(),
    })
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
