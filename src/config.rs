//! Turns flags (and, later, the config file and environment) into validated settings, once,
//! with errors that say which flag is wrong and what to do.

use std::path::PathBuf;

use crate::cli::KeyArgs;
use crate::error::{Error, Result};
use crate::identity::IdentitySpec;
use crate::secret::Secret;

/// The identity flags as an [`IdentitySpec`], after refusing the official helper's flags
/// for key stores this build does not have (rather than silently ignoring them).
pub fn identity_spec(args: &KeyArgs) -> Result<IdentitySpec> {
    refuse_unavailable(args)?;
    for value in [&args.certificate, &args.private_key].into_iter().flatten() {
        refuse_store_uri(value)?;
    }
    let password = match (&args.pkcs8_password, &args.pkcs8_password_file) {
        (Some(p), _) if p.is_empty() => None,
        (Some(p), _) => Some(Secret::from(p.clone())),
        (None, Some(path)) => Some(Secret::from_file(path).map_err(|e| {
            Error::Usage(format!(
                "password file {} cannot be read ({e}); check the --pkcs8-password-file path",
                path.display()
            ))
        })?),
        (None, None) => None,
    };
    Ok(IdentitySpec {
        certificate: args.certificate.as_ref().map(PathBuf::from),
        private_key: args.private_key.as_ref().map(PathBuf::from),
        intermediates: None,
        password,
    })
}

fn refuse_unavailable(args: &KeyArgs) -> Result<()> {
    if args.cert_selector.is_some()
        || args.system_store_name.is_some()
        || args.use_latest_expiring_certificate
    {
        return Err(store_unavailable());
    }
    if args.pkcs11_lib.is_some() || args.reuse_pin {
        return Err(Error::Usage(
            "PKCS#11 tokens are not available in this version; use certificate and key files"
                .into(),
        ));
    }
    if args.tpm_key_password.is_some() || args.no_tpm_key_password {
        return Err(Error::Usage(
            "TPM keys are not available in this version; use certificate and key files".into(),
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

fn refuse_store_uri(value: &str) -> Result<()> {
    if value.starts_with("pkcs11:") {
        return Err(Error::Usage(format!(
            "{value}: PKCS#11 URIs are not available in this version; use certificate and key files"
        )));
    }
    if value.starts_with("handle:") {
        return Err(Error::Usage(format!(
            "{value}: TPM key handles are not available in this version; use certificate and key files"
        )));
    }
    Ok(())
}
