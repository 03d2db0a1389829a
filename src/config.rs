//! Turns flags (and, later, the config file and environment) into validated settings, once,
//! with errors that say which flag is wrong and what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::arn::Arn;
use crate::cli::{CredentialArgs, KeyArgs};
use crate::endpoint;
use crate::error::{Error, Result};
use crate::identity::IdentitySpec;
use crate::identity::file::{self, Readable, Role};
use crate::pkcs11::{PinOptions, Pkcs11Uri, TokenSpec};
use crate::rolesanywhere::{ClientConfig, SessionParams};
use crate::secret::Secret;

/// The environment variable that may hold the key or PKCS#12 password.
pub const PASSWORD_ENV: &str = "ROLESANYWHERE_PKCS8_PASSWORD";
/// The systemd credential (in `$CREDENTIALS_DIRECTORY`) that may hold it, used when
/// neither a flag nor the variable gives it.
pub const PASSWORD_CREDENTIAL: &str = "pkcs8-password";

/// The identity flags as an [`IdentitySpec`], after refusing the official helper's flags
/// for key stores this build does not have (rather than silently ignoring them).
pub fn identity_spec(args: &KeyArgs) -> Result<IdentitySpec> {
    refuse_unavailable(args)?;
    for value in [&args.certificate, &args.private_key].into_iter().flatten() {
        refuse_tpm_handle(value)?;
    }
    let readable = if args.allow_readable_key_files {
        Readable::Warn
    } else {
        Readable::Refuse
    };
    let cert_uri = token_uri(args.certificate.as_deref(), "--certificate")?;
    let key_uri = token_uri(args.private_key.as_deref(), "--private-key")?;
    // The flags (mutually exclusive) win over the environment variable, which only fills
    // in when neither is given: an exported variable must not block a flag.
    let password = match (&args.pkcs8_password, &args.pkcs8_password_file) {
        (Some(p), _) => Some(Secret::from(p.clone())),
        (None, Some(path)) => {
            file::guard_secret(Role::PasswordFile, path, readable)?;
            Some(Secret::from_file(path).map_err(|e| {
                Error::Usage(format!(
                    "password file {} cannot be read ({e}); check the --pkcs8-password-file path",
                    path.display()
                ))
            })?)
        }
        (None, None) => match std::env::var(PASSWORD_ENV) {
            Ok(value) => Some(Secret::from(value)),
            // Under systemd, `LoadCredential=pkcs8-password:FILE` passes it privately.
            Err(_) => match crate::systemd::credential(PASSWORD_CREDENTIAL) {
                Some(path) => Some(Secret::from_file(&path).map_err(|e| {
                    Error::Usage(format!(
                        "the systemd credential {} cannot be read: {e}",
                        path.display()
                    ))
                })?),
                None => None,
            },
        },
    };
    // An empty password means "no password", as upstream documents, from every source:
    // an empty file must behave like `--pkcs8-password ""`.
    let password = password.filter(|p| !p.expose().is_empty());
    let token = match (&cert_uri, &key_uri) {
        (None, None) => {
            refuse_token_flags(args)?;
            None
        }
        (Some(uri), None) if args.private_key.is_some() => {
            return Err(Error::Usage(format!(
                "--certificate {uri} is on a PKCS#11 token and --private-key is a file; a token's certificate goes with a key on the token: give --private-key as a pkcs11: URI, or drop it to find the key from the certificate"
            )));
        }
        _ => Some(TokenSpec {
            module: token_module(
                cert_uri.as_ref(),
                key_uri.as_ref(),
                args.pkcs11_lib.as_deref(),
            )?,
            certificate: cert_uri.clone(),
            private_key: key_uri.clone(),
            pins: PinOptions {
                pin_file: args.pkcs11_pin_file.clone(),
                context_pin_file: args.pkcs11_context_pin_file.clone(),
                reuse_pin: args.reuse_pin,
                prompt: false,
                readable,
            },
        }),
    };
    Ok(IdentitySpec {
        certificate: match cert_uri {
            Some(_) => None,
            None => args.certificate.as_ref().map(PathBuf::from),
        },
        private_key: match key_uri {
            Some(_) => None,
            None => args.private_key.as_ref().map(PathBuf::from),
        },
        intermediates: None,
        password,
        readable_key_files: readable,
        token,
    })
}

/// The PKCS#11 flags without a `pkcs11:` URI would change nothing: say so rather than
/// let a typo in the URI go unnoticed.
fn refuse_token_flags(args: &KeyArgs) -> Result<()> {
    let given: Vec<&str> = [
        ("--pkcs11-lib", args.pkcs11_lib.is_some()),
        ("--pkcs11-pin-file", args.pkcs11_pin_file.is_some()),
        (
            "--pkcs11-context-pin-file",
            args.pkcs11_context_pin_file.is_some(),
        ),
        ("--reuse-pin", args.reuse_pin),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    let (verb, them) = if given.len() == 1 {
        ("is", "it")
    } else {
        ("are", "them")
    };
    Err(Error::Usage(format!(
        "{} {verb} for keys on a PKCS#11 token, and neither --certificate nor --private-key is a pkcs11: URI; give the token's URI (pkcs11:token=...;object=...) or drop {them}",
        given.join(", ")
    )))
}

/// The parsed URI when `value` is a `pkcs11:` URI; a malformed one is a usage error.
fn token_uri(value: Option<&str>, flag: &str) -> Result<Option<Pkcs11Uri>> {
    let Some(value) = value.filter(|v| v.starts_with("pkcs11:")) else {
        return Ok(None);
    };
    value.parse::<Pkcs11Uri>().map(Some).map_err(|e| {
        Error::Usage(format!(
            "{flag} {}: malformed PKCS#11 URI: it {e} (RFC 7512: pkcs11:token=LABEL;object=LABEL;id=%01?pin-source=file:/path)",
            crate::pkcs11::uri::redact(value)
        ))
    })
}

/// The module to load: a URI's `module-path`, else `--pkcs11-lib`, else p11-kit's proxy.
/// Two different names are refused rather than one silently winning.
fn token_module(
    cert: Option<&Pkcs11Uri>,
    key: Option<&Pkcs11Uri>,
    flag: Option<&str>,
) -> Result<String> {
    let from_uris: Vec<&str> = [cert, key]
        .into_iter()
        .flatten()
        .filter_map(|u| u.module_path.as_deref())
        .collect();
    if let [a, b] = from_uris.as_slice()
        && a != b
    {
        return Err(Error::Usage(format!(
            "the certificate and key URIs name different modules ({a} and {b}); both must be on one module"
        )));
    }
    let flag = flag.filter(|f| !f.is_empty());
    match (from_uris.first(), flag) {
        (Some(uri), Some(flag)) if *uri != flag => Err(Error::Usage(format!(
            "--pkcs11-lib {flag} and module-path={uri} in the URI name different modules; keep one"
        ))),
        (Some(uri), _) => Ok((*uri).to_owned()),
        (None, Some(flag)) => Ok(flag.to_owned()),
        (None, None) => Ok(crate::pkcs11::DEFAULT_MODULE.to_owned()),
    }
}

fn refuse_unavailable(args: &KeyArgs) -> Result<()> {
    if args.cert_selector.is_some()
        || args.system_store_name.is_some()
        || args.use_latest_expiring_certificate
    {
        return Err(store_unavailable());
    }
    if args.tpm_key_password.is_some() || args.no_tpm_key_password {
        return Err(Error::Usage(
            "TPM keys are not available in this version; use certificate and key files or a PKCS#11 token".into(),
        ));
    }
    Ok(())
}

/// The answer to the official helper's `--cert-selector`, `--system-store-name` and
/// `--use-latest-expiring-certificate` on Linux.
pub fn store_unavailable() -> Error {
    Error::Usage(
        "operating-system certificate stores (--cert-selector, --system-store-name, --use-latest-expiring-certificate) are not available on Linux; give --certificate and --private-key files".into(),
    )
}

fn refuse_tpm_handle(value: &str) -> Result<()> {
    if value.starts_with("handle:") {
        return Err(Error::Usage(format!(
            "{value}: TPM key handles are not available in this version; use certificate and key files or a PKCS#11 token"
        )));
    }
    Ok(())
}

/// Everything a CreateSession call needs, validated.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub identity: IdentitySpec,
    pub params: SessionParams,
    pub client: ClientConfig,
    /// Where the endpoint came from, for `--debug`.
    pub endpoint_source: endpoint::Source,
}

/// The service's bounds on `durationSeconds`.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 900..=43200;

/// Validates the CreateSession flags: the ARNs and their regions, the duration, the
/// endpoint. Every check here runs before any key is read or any request is sent.
pub fn session_settings(
    args: &CredentialArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SessionSettings> {
    let trust_anchor = required_arn(
        &args.trust_anchor_arn,
        "--trust-anchor-arn",
        "rolesanywhere",
        "trust-anchor/",
    )?;
    let profile = required_arn(
        &args.profile_arn,
        "--profile-arn",
        "rolesanywhere",
        "profile/",
    )?;
    let role = required_arn(&args.role_arn, "--role-arn", "iam", "role/")?;
    if trust_anchor.region != profile.region {
        return Err(Error::Usage(format!(
            "trust anchor and profile regions don't match ({} and {}); use the profile of the trust anchor's region",
            trust_anchor.region, profile.region
        )));
    }
    let region = args
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| trust_anchor.region.clone());
    if region.is_empty() {
        return Err(Error::Usage(
            "the trust anchor ARN names no region; give --region".into(),
        ));
    }
    if !DURATION_RANGE.contains(&args.session_duration) {
        return Err(Error::Usage(format!(
            "--session-duration {} is out of range; the service accepts 900 to 43200 seconds (15 minutes to 12 hours)",
            args.session_duration
        )));
    }
    if let Some(name) = &args.role_session_name {
        let valid = (2..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
        if !valid {
            return Err(Error::Usage(format!(
                "--role-session-name {name:?} is not a valid session name; use 2 to 64 characters from letters, digits and _+=,.@-"
            )));
        }
    }
    let fips = args.use_fips_endpoint
        || env("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let (url, endpoint_source) = endpoint::resolve(args.endpoint.as_deref(), &env, &region, fips);

    let mut identity = identity_spec(&args.key)?;
    identity.intermediates = args.intermediates.as_ref().map(PathBuf::from);

    let mut client = ClientConfig::new(url);
    client.ca_bundle = args.ca_bundle.clone().filter(|p| !p.as_os_str().is_empty());
    client.insecure_skip_verify = args.no_verify_ssl;
    client.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    client.attempt_timeout = Duration::from_secs(args.timeout.max(1));
    Ok(SessionSettings {
        identity,
        params: SessionParams {
            trust_anchor_arn: trust_anchor.to_string(),
            profile_arn: profile.to_string(),
            role_arn: role.to_string(),
            duration_seconds: u32::try_from(args.session_duration).unwrap_or(3600),
            role_session_name: args.role_session_name.clone(),
            region,
        },
        client,
        endpoint_source,
    })
}

fn required_arn(
    value: &Option<String>,
    flag: &str,
    service: &str,
    resource_prefix: &str,
) -> Result<Arn> {
    let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
        return Err(Error::Usage(format!("{flag} is required; give the ARN")));
    };
    let arn: Arn = value
        .parse()
        .map_err(|e| Error::Usage(format!("{flag} {value:?} is not an ARN: {e}")))?;
    if arn.service != service
        || !arn.resource.starts_with(resource_prefix)
        || arn.resource.len() == resource_prefix.len()
    {
        return Err(Error::Usage(format!(
            "{flag} {value:?} is not a {service} {} ARN (arn:PARTITION:{service}:REGION:ACCOUNT:{resource_prefix}ID)",
            resource_prefix.trim_end_matches('/')
        )));
    }
    Ok(arn)
}
