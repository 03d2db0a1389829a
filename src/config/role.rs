//! One role's settings as given, before validation: each value merged from the command
//! line, the environment and the config file under the one rule (the first of them that
//! gives it wins), and kept with its origin for the error messages.

use std::path::PathBuf;

use super::aws_profile::AwsProfile;
use super::file::{ConfigFile, RoleEntry};
use super::inputs::Env;
use super::origin::{Origin, Sourced, first};
use crate::cli::CredentialArgs;

/// The environment variable that may hold the key or PKCS#12 password.
pub const PASSWORD_ENV: &str = "ROLESANYWHERE_PKCS8_PASSWORD";

/// The environment variable that may hold the TPM key password.
pub const TPM_PASSWORD_ENV: &str = "ROLESANYWHERE_TPM_KEY_PASSWORD";

/// Where the password of an encrypted key comes from.
#[derive(Clone, Debug)]
pub enum PasswordSource {
    /// Given as text (`--pkcs8-password`, the environment).
    Text(crate::secret::Secret),
    /// A file to read (`--pkcs8-password-file`, `pkcs8_password_file`).
    File(PathBuf),
}

/// The low-level settings of one role.
#[derive(Clone, Debug)]
pub struct RoleSources {
    /// For a required setting nobody gave: where to say it is missing.
    missing: Missing,
    pub certificate: Option<Sourced<String>>,
    pub private_key: Option<Sourced<String>>,
    pub password: Option<Sourced<PasswordSource>>,
    pub pkcs11_lib: Option<Sourced<String>>,
    pub pkcs11_pin_file: Option<Sourced<PathBuf>>,
    pub pkcs11_context_pin_file: Option<Sourced<PathBuf>>,
    pub reuse_pin: Option<Sourced<bool>>,
    /// The TPM key password, and `--no-tpm-key-password`.
    pub tpm_password: Option<Sourced<PasswordSource>>,
    pub no_tpm_password: Option<Sourced<bool>>,
    pub intermediates: Option<Sourced<String>>,
    pub trust_anchor_arn: Option<Sourced<String>>,
    pub profile_arn: Option<Sourced<String>>,
    pub role_arn: Option<Sourced<String>>,
    pub session_duration: Option<Sourced<i64>>,
    pub role_session_name: Option<Sourced<String>>,
    pub region: Option<Sourced<String>>,
    pub endpoint: Option<Sourced<String>>,
    pub use_fips_endpoint: Option<Sourced<bool>>,
    pub ca_bundle: Option<Sourced<PathBuf>>,
    pub no_verify_ssl: bool,
    pub connect_timeout: Option<Sourced<u64>>,
    pub timeout: Option<Sourced<u64>>,
    /// CreateSession attempts, as text: only the AWS SDKs' sources give it.
    pub max_attempts: Option<Sourced<String>>,
    pub allow_readable_key_files: bool,
    /// The roles to assume after CreateSession, in order: from the flags if any is given,
    /// else from the config file's role.
    pub assume_roles: Vec<HopSources>,
    pub sts_endpoint: Option<Sourced<String>>,
}

/// One hop of the role chain, as given.
#[derive(Clone, Debug)]
pub struct HopSources {
    pub role_arn: Sourced<String>,
    pub role_session_name: Option<Sourced<String>>,
    pub external_id: Option<Sourced<String>>,
}

/// How a missing required setting is named: by its flag, or by its key in a role.
#[derive(Clone, Debug)]
enum Missing {
    Flags,
    File(Origin),
}

impl RoleSources {
    /// Where to report that the setting of `flag` (or file `key`) was given by nobody.
    pub fn absent(&self, flag: &'static str, key: &str) -> Origin {
        match &self.missing {
            Missing::Flags => Origin::Flag(flag),
            Missing::File(Origin::File(spot)) => {
                let mut spot = spot.as_ref().clone();
                spot.key = key.to_owned();
                Origin::File(std::sync::Arc::new(spot))
            }
            Missing::File(other) => other.clone(),
        }
    }

    /// Whether this role comes from the config file.
    pub fn from_file(&self) -> bool {
        matches!(self.missing, Missing::File(_))
    }

    /// The role of the command line alone (no config file of this tool's).
    pub fn from_flags(args: &CredentialArgs, env: &Env, profile: &AwsProfile) -> Self {
        merge(args, env, None, profile)
    }

    /// A `[[role]]` of the config file, with the command line and environment first.
    pub fn from_file_role(
        args: &CredentialArgs,
        env: &Env,
        file: &ConfigFile,
        role: &RoleEntry,
        profile: &AwsProfile,
    ) -> Self {
        merge(args, env, Some((file, role)), profile)
    }
}

fn flag<T: Clone>(value: &Option<T>, name: &'static str) -> Option<Sourced<T>> {
    value.clone().map(|v| Sourced::new(v, Origin::Flag(name)))
}

/// A flag whose empty value means "not given", as `--endpoint ""` did upstream.
fn nonempty_flag<T: Clone + AsRef<std::ffi::OsStr>>(
    value: &Option<T>,
    name: &'static str,
) -> Option<Sourced<T>> {
    flag(value, name).filter(|s| !s.value.as_ref().is_empty())
}

fn var(env: &Env, name: &'static str) -> Option<Sourced<String>> {
    env.nonempty(name)
        .map(|v| Sourced::new(v, Origin::Env(name)))
}

/// The one precedence rule: command line, then environment, then this tool's config file,
/// then the AWS shared config file's profile, then (at validation) the default.
fn merge(
    args: &CredentialArgs,
    env: &Env,
    file: Option<(&ConfigFile, &RoleEntry)>,
    profile: &AwsProfile,
) -> RoleSources {
    let key = &args.key;
    // A role's value from the file, if there is a file.
    macro_rules! in_file {
        ($field:ident) => {
            file.and_then(|(f, r)| f.of(r, &r.$field, stringify!($field)))
        };
    }
    let password = first([
        flag(&key.pkcs8_password, "--pkcs8-password")
            .map(|s| s.map(|v| PasswordSource::Text(v.into()))),
        flag(&key.pkcs8_password_file, "--pkcs8-password-file")
            .map(|s| s.map(PasswordSource::File)),
        env.get(PASSWORD_ENV)
            .map(|v| Sourced::new(PasswordSource::Text(v.into()), Origin::Env(PASSWORD_ENV))),
        in_file!(pkcs8_password_file).map(|s| s.map(PasswordSource::File)),
    ]);
    let tpm_password = first([
        flag(&key.tpm_key_password, "--tpm-key-password")
            .map(|s| s.map(|v| PasswordSource::Text(v.into()))),
        flag(&key.tpm_key_password_file, "--tpm-key-password-file")
            .map(|s| s.map(PasswordSource::File)),
        env.get(TPM_PASSWORD_ENV).map(|v| {
            Sourced::new(
                PasswordSource::Text(v.into()),
                Origin::Env(TPM_PASSWORD_ENV),
            )
        }),
        in_file!(tpm_key_password_file).map(|s| s.map(PasswordSource::File)),
    ]);
    // As the AWS SDKs: the endpoint URLs of the environment and the shared config file
    // are not used when either says so.
    let ignore_endpoints = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .or(profile.ignore_endpoints.as_ref().map(|s| s.value))
        .unwrap_or(false);
    let configured = |value: Option<Sourced<String>>| value.filter(|_| !ignore_endpoints);
    let fips_env = env.get("AWS_USE_FIPS_ENDPOINT").map(|v| {
        Sourced::new(
            v.trim().eq_ignore_ascii_case("true"),
            Origin::Env("AWS_USE_FIPS_ENDPOINT"),
        )
    });
    RoleSources {
        missing: match file {
            None => Missing::Flags,
            Some((f, r)) => Missing::File(f.missing(r, "")),
        },
        certificate: first([
            flag(&key.certificate, "--certificate"),
            in_file!(certificate),
        ]),
        private_key: first([
            flag(&key.private_key, "--private-key"),
            in_file!(private_key),
        ]),
        password,
        pkcs11_lib: first([flag(&key.pkcs11_lib, "--pkcs11-lib"), in_file!(pkcs11_lib)]),
        pkcs11_pin_file: first([
            flag(&key.pkcs11_pin_file, "--pkcs11-pin-file"),
            in_file!(pkcs11_pin_file),
        ]),
        pkcs11_context_pin_file: first([
            flag(&key.pkcs11_context_pin_file, "--pkcs11-context-pin-file"),
            in_file!(pkcs11_context_pin_file),
        ]),
        reuse_pin: first([
            key.reuse_pin
                .then(|| Sourced::new(true, Origin::Flag("--reuse-pin"))),
            in_file!(reuse_pin),
        ]),
        tpm_password,
        no_tpm_password: first([
            key.no_tpm_key_password
                .then(|| Sourced::new(true, Origin::Flag("--no-tpm-key-password"))),
            in_file!(no_tpm_key_password),
        ]),
        intermediates: first([
            flag(&args.intermediates, "--intermediates"),
            in_file!(intermediates),
        ]),
        trust_anchor_arn: first([
            flag(&args.trust_anchor_arn, "--trust-anchor-arn"),
            in_file!(trust_anchor_arn),
        ]),
        profile_arn: first([
            flag(&args.profile_arn, "--profile-arn"),
            in_file!(profile_arn),
        ]),
        role_arn: first([flag(&args.role_arn, "--role-arn"), in_file!(role_arn)]),
        session_duration: first([
            flag(&args.session_duration, "--session-duration"),
            in_file!(session_duration),
        ]),
        role_session_name: first([
            flag(&args.role_session_name, "--role-session-name"),
            in_file!(role_session_name),
        ]),
        region: first([nonempty_flag(&args.region, "--region"), in_file!(region)]),
        endpoint: first([
            nonempty_flag(&args.endpoint, "--endpoint"),
            configured(var(env, "AWS_ENDPOINT_URL_ROLESANYWHERE")),
            configured(var(env, "AWS_ENDPOINT_URL")),
            in_file!(endpoint),
            configured(profile.endpoint_url.clone()),
        ]),
        use_fips_endpoint: first([
            args.use_fips_endpoint
                .then(|| Sourced::new(true, Origin::Flag("--use-fips-endpoint"))),
            fips_env,
        ]),
        ca_bundle: first([
            nonempty_flag(&args.ca_bundle, "--ca-bundle"),
            var(env, "AWS_CA_BUNDLE").map(|s| s.map(PathBuf::from)),
            in_file!(ca_bundle),
            profile.ca_bundle.clone(),
        ]),
        no_verify_ssl: args.no_verify_ssl,
        connect_timeout: flag(&args.connect_timeout, "--connect-timeout"),
        timeout: flag(&args.timeout, "--timeout"),
        max_attempts: first([var(env, "AWS_MAX_ATTEMPTS"), profile.max_attempts.clone()]),
        allow_readable_key_files: key.allow_readable_key_files,
        assume_roles: hops(args, file),
        sts_endpoint: first([
            nonempty_flag(&args.chain.sts_endpoint, "--sts-endpoint"),
            configured(var(env, "AWS_ENDPOINT_URL_STS")),
            configured(var(env, "AWS_ENDPOINT_URL")),
            in_file!(sts_endpoint),
            configured(profile.sts_endpoint_url.clone()),
        ]),
    }
}

/// The hops of the command line if it gives any, else those of the file's role: a chain is
/// taken whole from one place, never mixed.
fn hops(args: &CredentialArgs, file: Option<(&ConfigFile, &RoleEntry)>) -> Vec<HopSources> {
    if !args.chain.hops.is_empty() {
        return args
            .chain
            .hops
            .iter()
            .map(|h| HopSources {
                role_arn: Sourced::new(h.role_arn.clone(), Origin::Flag("--assume-role-arn")),
                role_session_name: flag(&h.role_session_name, "--assume-role-session-name"),
                external_id: flag(&h.external_id, "--assume-role-external-id"),
            })
            .collect();
    }
    let Some((f, r)) = file else {
        return Vec::new();
    };
    let at = |v: &toml::Spanned<String>, key: &str| {
        Sourced::new(v.get_ref().clone(), f.origin(v.span(), key, Some(r)))
    };
    r.assume_roles
        .iter()
        .flatten()
        .map(|h| HopSources {
            role_arn: at(&h.role_arn, "assume_roles.role_arn"),
            role_session_name: h
                .role_session_name
                .as_ref()
                .map(|v| at(v, "assume_roles.role_session_name")),
            external_id: h
                .external_id
                .as_ref()
                .map(|v| at(v, "assume_roles.external_id")),
        })
        .collect()
}
