//! A role's identity settings, validated into an [`IdentitySpec`]: which files or token
//! objects hold the certificate and key, and the secrets that open them.

use std::path::PathBuf;

use super::aws_profile::AwsProfile;
use super::inputs::Inputs;
use super::origin::{ConfigError, Origin, Sourced};
use super::role::{PasswordSource, RoleSources};
use crate::cli::KeyArgs;
use crate::identity::IdentitySpec;
use crate::identity::file::{self, Readable, Role};
use crate::pkcs11::{PinOptions, Pkcs11Uri, TokenSpec};
use crate::secret::Secret;
use crate::tpm::{TpmOptions, TpmPassword};

/// The systemd credential (in `$CREDENTIALS_DIRECTORY`) that may hold the key password,
/// used when nothing else gives it.
pub const PASSWORD_CREDENTIAL: &str = "pkcs8-password";

/// Refuses the official helper's flags for key stores this build does not have, rather
/// than silently ignoring them.
pub fn refuse_unavailable(args: &KeyArgs) -> Result<(), ConfigError> {
    if args.cert_selector.is_some()
        || args.system_store_name.is_some()
        || args.use_latest_expiring_certificate
    {
        return Err(store_unavailable());
    }
    Ok(())
}

/// The answer to the official helper's `--cert-selector`, `--system-store-name` and
/// `--use-latest-expiring-certificate` on Linux.
pub fn store_unavailable() -> ConfigError {
    ConfigError::conflict(
        "operating-system certificate stores (--cert-selector, --system-store-name, --use-latest-expiring-certificate) are not available on Linux; give --certificate and --private-key files",
    )
}

/// The identity of a role.
pub fn identity_spec(role: &RoleSources, inputs: &Inputs) -> Result<IdentitySpec, ConfigError> {
    let readable = if role.allow_readable_key_files {
        Readable::Warn
    } else {
        Readable::Refuse
    };
    let cert_uri = token_uri(role.certificate.as_ref())?;
    let key_uri = token_uri(role.private_key.as_ref())?;
    // An empty password means "no password", as upstream documents, from every source:
    // an empty file must behave like `--pkcs8-password ""`.
    let password = password(role, readable, inputs)?.filter(|p| !p.expose().is_empty());
    let tpm = tpm_options(role, readable, inputs)?;
    let token = match (&cert_uri, &key_uri) {
        (None, None) => {
            refuse_token_settings(role)?;
            None
        }
        _ if tpm.explicit.is_some() => {
            return Err(ConfigError::conflict(format!(
                "{} is for TPM keys, and the key is on a PKCS#11 token; drop it",
                tpm.explicit.as_deref().unwrap_or_default()
            )));
        }
        (Some(given), None) if role.private_key.is_some() => {
            let uri = &given.value;
            let (cert, key) = if role.from_file() {
                ("certificate", "private_key")
            } else {
                ("--certificate", "--private-key")
            };
            return Err(ConfigError::conflict(format!(
                "{cert} {uri} is on a PKCS#11 token and {key} is a file; a token's certificate goes with a key on the token: give {key} as a pkcs11: URI, or drop it to find the key from the certificate"
            )));
        }
        _ => Some(TokenSpec {
            module: token_module(
                cert_uri.as_ref(),
                key_uri.as_ref(),
                role.pkcs11_lib.as_ref(),
            )?,
            certificate: cert_uri.as_ref().map(|u| u.value.clone()),
            private_key: key_uri.as_ref().map(|u| u.value.clone()),
            pins: PinOptions {
                pin_file: role.pkcs11_pin_file.as_ref().map(|s| s.value.clone()),
                context_pin_file: role
                    .pkcs11_context_pin_file
                    .as_ref()
                    .map(|s| s.value.clone()),
                reuse_pin: role.reuse_pin.as_ref().is_some_and(|s| s.value),
                prompt: false,
                readable,
            },
        }),
    };
    let file_path = |value: &Option<Sourced<String>>, uri: &Option<Sourced<Pkcs11Uri>>| match uri {
        Some(_) => None,
        None => value
            .as_ref()
            .filter(|s| !s.value.starts_with(HANDLE_PREFIX))
            .map(|s| PathBuf::from(&s.value)),
    };
    Ok(IdentitySpec {
        certificate: file_path(&role.certificate, &cert_uri),
        private_key: file_path(&role.private_key, &key_uri),
        intermediates: role.intermediates.as_ref().map(|s| PathBuf::from(&s.value)),
        password,
        readable_key_files: readable,
        token,
        tpm,
    })
}

/// How `--private-key` names a persistent TPM key, as upstream: `handle:0x81000101`.
const HANDLE_PREFIX: &str = "handle:";

/// The systemd credential that may hold the TPM key password.
pub const TPM_PASSWORD_CREDENTIAL: &str = "tpm-key-password";

/// The TPM settings: a persistent handle in `--private-key`, the key password from the
/// first source that gives one (the systemd credential `tpm-key-password` last), and
/// `$TPM_DEVICE`.
fn tpm_options(
    role: &RoleSources,
    readable: Readable,
    inputs: &Inputs,
) -> Result<TpmOptions, ConfigError> {
    if let Some(cert) = role
        .certificate
        .as_ref()
        .filter(|c| c.value.starts_with(HANDLE_PREFIX))
    {
        return Err(cert.error(format!(
            "{}: a TPM handle names a key, not a certificate; give it as the private key, and the certificate file as the certificate",
            cert.value
        )));
    }
    let handle = match role
        .private_key
        .as_ref()
        .filter(|k| k.value.starts_with(HANDLE_PREFIX))
    {
        Some(given) => Some(parse_handle(&given.value).ok_or_else(|| {
            given.error(format!(
                "{}: invalid TPM handle; write the persistent handle in hex, as handle:0x81000101 or handle:81000101",
                given.value
            ))
        })?),
        None => None,
    };
    let password = match &role.tpm_password {
        Some(given) => {
            let secret = read_password(given, readable, inputs)?;
            Some(TpmPassword {
                secret,
                origin: describe_source(given),
            })
        }
        None => match inputs.systemd_credential(TPM_PASSWORD_CREDENTIAL) {
            Some(path) => Some(TpmPassword {
                secret: inputs.fs.read_secret(&path).map_err(|e| {
                    ConfigError::conflict(format!(
                        "the systemd credential {} cannot be read: {e}",
                        path.display()
                    ))
                })?,
                origin: format!("the systemd credential {TPM_PASSWORD_CREDENTIAL}"),
            }),
            None => None,
        },
    };
    // An empty password is no password, as for the key password above.
    let password = password.filter(|p| !p.secret.expose().is_empty());
    let no_password = role.no_tpm_password.as_ref().is_some_and(|s| s.value);
    if let (Some(given), Some(no)) = (&role.tpm_password, &role.no_tpm_password)
        && no.value
    {
        return Err(ConfigError::conflict(format!(
            "{} gives a TPM key password and {} says the key has none; keep one",
            given.origin, no.origin
        )));
    }
    // The settings a person gave for a TPM key (not the environment's or systemd's,
    // which may serve other keys too): refused beside a key that is not in a TPM.
    let explicit = role
        .tpm_password
        .as_ref()
        .map(|s| &s.origin)
        .or(role
            .no_tpm_password
            .as_ref()
            .filter(|s| s.value)
            .map(|s| &s.origin))
        .filter(|o| !matches!(o, Origin::Env(_)))
        .map(|o| o.to_string());
    Ok(TpmOptions {
        handle,
        password,
        no_password,
        device: inputs
            .env
            .nonempty(crate::tpm::device_path::DEVICE_ENV)
            .map(PathBuf::from),
        explicit,
    })
}

/// `handle:0x81000101` or `handle:81000101`.
fn parse_handle(value: &str) -> Option<u32> {
    let hex = value.strip_prefix(HANDLE_PREFIX)?;
    let hex = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// `--tpm-key-password-file /x` or `$ROLESANYWHERE_TPM_KEY_PASSWORD`, for messages.
fn describe_source(given: &Sourced<PasswordSource>) -> String {
    match &given.value {
        PasswordSource::File(path) => format!("{} {}", given.origin, path.display()),
        PasswordSource::Text(_) => given.origin.to_string(),
    }
}

/// The secret of a password source: the text, or the file's content.
fn read_password(
    given: &Sourced<PasswordSource>,
    readable: Readable,
    inputs: &Inputs,
) -> Result<Secret, ConfigError> {
    match &given.value {
        PasswordSource::Text(secret) => Ok(secret.clone()),
        PasswordSource::File(path) => {
            file::guard_secret(Role::PasswordFile, path, readable)?;
            inputs.fs.read_secret(path).map_err(|e| {
                given.error(format!(
                    "{}: the password file cannot be read ({e}); check the path",
                    path.display()
                ))
            })
        }
    }
}

/// The key password from the first source that gives one; under systemd,
/// `LoadCredential=pkcs8-password:FILE` passes it privately as the last resort.
fn password(
    role: &RoleSources,
    readable: Readable,
    inputs: &Inputs,
) -> Result<Option<Secret>, ConfigError> {
    match &role.password {
        Some(Sourced {
            value: PasswordSource::Text(secret),
            ..
        }) => Ok(Some(secret.clone())),
        Some(
            given @ Sourced {
                value: PasswordSource::File(path),
                ..
            },
        ) => {
            file::guard_secret(Role::PasswordFile, path, readable)?;
            inputs.fs.read_secret(path).map(Some).map_err(|e| {
                given.error(format!(
                    "{}: the password file cannot be read ({e}); check the path",
                    path.display()
                ))
            })
        }
        None => match inputs.systemd_credential(PASSWORD_CREDENTIAL) {
            Some(path) => inputs.fs.read_secret(&path).map(Some).map_err(|e| {
                ConfigError::conflict(format!(
                    "the systemd credential {} cannot be read: {e}",
                    path.display()
                ))
            }),
            None => Ok(None),
        },
    }
}

/// The PKCS#11 settings without a `pkcs11:` URI would change nothing: say so rather than
/// let a typo in the URI go unnoticed.
fn refuse_token_settings(role: &RoleSources) -> Result<(), ConfigError> {
    let given: Vec<String> = [
        role.pkcs11_lib.as_ref().map(|s| s.origin.clone()),
        role.pkcs11_pin_file.as_ref().map(|s| s.origin.clone()),
        role.pkcs11_context_pin_file
            .as_ref()
            .map(|s| s.origin.clone()),
        role.reuse_pin
            .as_ref()
            .filter(|s| s.value)
            .map(|s| s.origin.clone()),
    ]
    .into_iter()
    .flatten()
    .map(|origin| origin.to_string())
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    let (verb, them) = if given.len() == 1 {
        ("is", "it")
    } else {
        ("are", "them")
    };
    let (cert, key) = if role.from_file() {
        ("certificate", "private_key")
    } else {
        ("--certificate", "--private-key")
    };
    Err(ConfigError::conflict(format!(
        "{} {verb} for keys on a PKCS#11 token, and neither {cert} nor {key} is a pkcs11: URI; give the token's URI (pkcs11:token=...;object=...) or drop {them}",
        given.join(", ")
    )))
}

/// The parsed URI when the value is a `pkcs11:` URI; a malformed one is an error.
fn token_uri(value: Option<&Sourced<String>>) -> Result<Option<Sourced<Pkcs11Uri>>, ConfigError> {
    let Some(given) = value.filter(|v| v.value.starts_with("pkcs11:")) else {
        return Ok(None);
    };
    match given.value.parse::<Pkcs11Uri>() {
        Ok(uri) => Ok(Some(Sourced::new(uri, given.origin.clone()))),
        Err(e) => Err(given.error(format!(
            "{}: malformed PKCS#11 URI: it {e} (RFC 7512: pkcs11:token=LABEL;object=LABEL;id=%01?pin-source=file:/path)",
            crate::pkcs11::uri::redact(&given.value)
        ))),
    }
}

/// The module to load: a URI's `module-path`, else `--pkcs11-lib`, else p11-kit's proxy.
/// Two different names are refused rather than one silently winning.
fn token_module(
    cert: Option<&Sourced<Pkcs11Uri>>,
    key: Option<&Sourced<Pkcs11Uri>>,
    lib: Option<&Sourced<String>>,
) -> Result<String, ConfigError> {
    let from_uris: Vec<&str> = [cert, key]
        .into_iter()
        .flatten()
        .filter_map(|u| u.value.module_path.as_deref())
        .collect();
    if let [a, b] = from_uris.as_slice()
        && a != b
    {
        return Err(ConfigError::conflict(format!(
            "the certificate and key URIs name different modules ({a} and {b}); both must be on one module"
        )));
    }
    let lib = lib.filter(|l| !l.value.is_empty());
    match (from_uris.first(), lib) {
        (Some(uri), Some(lib)) if *uri != lib.value => Err(lib.error(format!(
            "{} and module-path={uri} in the URI name different modules; keep one",
            lib.value
        ))),
        (Some(uri), _) => Ok((*uri).to_owned()),
        (None, Some(lib)) => Ok(lib.value.clone()),
        (None, None) => Ok(crate::pkcs11::DEFAULT_MODULE.to_owned()),
    }
}

/// The identity of `sign-string` and `read-certificate-data`: the key flags alone.
pub fn from_key_flags(args: &KeyArgs, inputs: &Inputs) -> Result<IdentitySpec, ConfigError> {
    refuse_unavailable(args)?;
    let credential = crate::cli::CredentialArgs {
        key: args.clone(),
        ..Default::default()
    };
    // No network call follows: the AWS config file's endpoint and CA bundle do not matter.
    let sources = RoleSources::from_flags(&credential, &inputs.env, &AwsProfile::default());
    identity_spec(&sources, inputs)
}

/// What `read-certificate-data` reads.
#[derive(Debug)]
pub enum CertificateSource {
    /// A certificate file: its first certificate.
    File(PathBuf),
    /// The certificates a `pkcs11:` URI matches, to list.
    Token(Box<TokenSpec>),
}

/// The validated flags of `read-certificate-data`.
pub fn certificate_source(
    args: &crate::cli::ReadCertificateDataArgs,
    inputs: &Inputs,
) -> Result<CertificateSource, ConfigError> {
    if args.cert_selector.is_some() || args.system_store_name.is_some() {
        return Err(store_unavailable());
    }
    let Some(certificate) = &args.certificate else {
        return Err(ConfigError::conflict(
            "give --certificate FILE; operating-system certificate stores are not available on Linux",
        ));
    };
    if !certificate.starts_with("pkcs11:") {
        return Ok(CertificateSource::File(PathBuf::from(certificate)));
    }
    let key = KeyArgs {
        certificate: Some(certificate.clone()),
        pkcs11_lib: args.pkcs11_lib.clone(),
        pkcs11_pin_file: args.pkcs11_pin_file.clone(),
        ..KeyArgs::default()
    };
    match from_key_flags(&key, inputs)?.token {
        Some(token) => Ok(CertificateSource::Token(Box::new(token))),
        None => Err(ConfigError::conflict(format!(
            "{certificate} is not a pkcs11: URI"
        ))),
    }
}

#[cfg(test)]
mod tpm_tests {
    use super::parse_handle;

    #[test]
    fn handles_are_hex_with_or_without_0x() {
        assert_eq!(parse_handle("handle:0x81000101"), Some(0x8100_0101));
        assert_eq!(parse_handle("handle:81000101"), Some(0x8100_0101));
        assert_eq!(parse_handle("handle:0X81000101"), Some(0x8100_0101));
        for bad in [
            "handle:",
            "handle:0x",
            "handle:xyz",
            "handle:0x181000101",
            "81000101",
        ] {
            assert_eq!(parse_handle(bad), None, "{bad}");
        }
    }
}
