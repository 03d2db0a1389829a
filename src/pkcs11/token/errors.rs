//! The errors of a token lookup, each with the kind that says whether it may pass: a
//! token, object or device that is absent now may be there at the next attempt; a PIN
//! the token refused, or a URI that cannot work, stays wrong.

use cryptoki::error::{Error as CkError, RvError};

use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::module::{DEFAULT_MODULE, ModuleError, describe, is_loss};
use crate::pkcs11::pin::Pin;
use crate::pkcs11::uri::{ObjectType, Pkcs11Uri};
use crate::x509::{Certificate, PublicKey};

/// The module `module` cannot be loaded or initialised.
pub(super) fn module_failure(module: &str, error: &ModuleError) -> IdentityError {
    let kind = match error {
        ModuleError::Load(_) => ErrorKind::Usage,
        ModuleError::Initialize(_) => ErrorKind::TokenAbsent,
    };
    let fix = if module == DEFAULT_MODULE {
        "install p11-kit's proxy module (Debian: p11-kit-modules) or give the module with --pkcs11-lib /path/to/module.so"
    } else {
        "check --pkcs11-lib or module-path in the URI"
    };
    IdentityError::new(
        kind,
        format!("PKCS#11 module {module}"),
        error.to_string(),
        fix,
    )
}

/// A PKCS#11 call about `input` failed: a session that cannot be opened, objects that
/// cannot be listed or read. The token's answers are not about what the user gave, so
/// the next attempt may succeed ([`ErrorKind::Device`]).
pub(super) fn pkcs11_error(input: &str, error: &CkError) -> IdentityError {
    IdentityError::new(
        ErrorKind::Device,
        input,
        format!("could not be read ({})", describe(error)),
        "check that the token is present; the lookup is retried at the next attempt",
    )
}

/// A URI whose `type` is not the class `flag` needs.
pub(super) fn refuse_type(
    uri: &Pkcs11Uri,
    want: ObjectType,
    flag: &str,
) -> Result<(), IdentityError> {
    match uri.object_type {
        Some(kind) if kind != want => Err(IdentityError::new(
            ErrorKind::Usage,
            format!("{flag} {uri}"),
            format!(
                "has type={}, but {flag} needs type={}",
                kind.as_str(),
                want.as_str()
            ),
            format!("write type={} or leave type out", want.as_str()),
        )),
        _ => Ok(()),
    }
}

/// An ML-DSA certificate found on a token: its key cannot be there too, as with the official
/// helper (no PKCS#11 mechanism for it is in common use yet). Said before any key lookup, so
/// that the user is not sent looking for a key that no lookup would find. (A certificate
/// file beside a key URI is refused the same way when it is read, in `identity::load`.)
pub(super) fn refuse_mldsa(certificate: &Certificate, input: &str) -> Result<(), IdentityError> {
    match certificate.public_key() {
        PublicKey::MlDsa(level, _) => Err(IdentityError::new(
            ErrorKind::Unsupported,
            input,
            format!(
                "is an {} certificate, and ML-DSA keys on a PKCS#11 token are not supported",
                level.as_str()
            ),
            "keep the certificate and its ML-DSA key in files (--certificate, --private-key)",
        )),
        _ => Ok(()),
    }
}

/// A PIN not sent again because the token refused it before.
pub(super) fn refused_again(name: &str, pin: &Pin, which: &str) -> IdentityError {
    IdentityError::new(
        ErrorKind::PinRefused,
        name,
        format!(
            "refused the {which} PIN from {} as incorrect before; it is not sent again, since each wrong attempt counts towards locking the token",
            pin.origin
        ),
        "correct the PIN there; the corrected PIN is used at the next attempt",
    )
}

/// A wrong, locked or refused PIN, in words. A login that failed because the session or
/// the token went away is a [`ErrorKind::Device`] error; every other refusal is the
/// token's answer to the PIN, and stays until the PIN or the token is changed.
pub(super) fn login_failure(
    name: &str,
    pin: Option<&Pin>,
    which: &str,
    error: &CkError,
) -> IdentityError {
    let from = pin
        .map(|p| format!(" from {}", p.origin))
        .unwrap_or_default();
    let (problem, fix) = match error {
        CkError::Pkcs11(RvError::PinIncorrect, _) => (
            format!("refused the {which} PIN{from} as incorrect"),
            "check the PIN (each wrong attempt may count towards locking the token)".to_owned(),
        ),
        CkError::Pkcs11(RvError::PinLocked, _) => (
            format!("has its {which} PIN locked after too many wrong attempts"),
            "unlock it with the security officer PIN (e.g. pkcs11-tool --init-pin --login --login-type so)".to_owned(),
        ),
        CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => (
            format!("refused the {which} PIN{from}: it has a length or characters the token does not accept"),
            "check the PIN".to_owned(),
        ),
        other => (
            format!("refused the {which} login ({})", describe(other)),
            "check the token and the PIN".to_owned(),
        ),
    };
    let kind = if is_loss(error) {
        ErrorKind::Device
    } else {
        ErrorKind::PinRefused
    };
    IdentityError::new(kind, name, problem, fix)
}

/// Whether re-initialising the module may cure `error`: some modules (SoftHSM among
/// them) see a token or objects re-created under a running process, or recover from a
/// lost device, only after `C_Finalize` and `C_Initialize`.
pub(super) fn stale_view_may_explain(error: &IdentityError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::TokenAbsent | ErrorKind::ObjectAbsent | ErrorKind::Device
    )
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;
    use cryptoki::error::{Error as CkError, RvError};

    use super::*;
    use crate::secret::Secret;

    fn pin() -> Pin {
        Pin {
            secret: Secret::from("1234".to_owned()),
            origin: "$ROLESANYWHERE_PKCS11_PIN".into(),
        }
    }

    fn login(rv: RvError) -> IdentityError {
        login_failure(
            "token \"t\"",
            Some(&pin()),
            "user",
            &CkError::Pkcs11(rv, Function::Login),
        )
    }

    #[test]
    fn a_pin_the_token_refused_is_permanent() {
        for rv in [
            RvError::PinIncorrect,
            RvError::PinLocked,
            RvError::PinLenRange,
            RvError::PinInvalid,
            RvError::UserPinNotInitialized,
        ] {
            let error = login(rv);
            assert_eq!(error.kind(), ErrorKind::PinRefused, "{error}");
            assert!(!error.is_transient(), "{error}");
            assert!(!stale_view_may_explain(&error), "{error}");
        }
        assert_eq!(
            login(RvError::PinIncorrect).to_string(),
            "token \"t\" refused the user PIN from $ROLESANYWHERE_PKCS11_PIN as incorrect; check the PIN (each wrong attempt may count towards locking the token)"
        );
        let again = refused_again("token \"t\"", &pin(), "user");
        assert!(!again.is_transient(), "{again}");
    }

    #[test]
    fn a_login_that_lost_the_device_is_transient() {
        for rv in [
            RvError::DeviceRemoved,
            RvError::DeviceError,
            RvError::TokenNotPresent,
            RvError::SessionHandleInvalid,
        ] {
            let error = login(rv);
            assert_eq!(error.kind(), ErrorKind::Device, "{error}");
            assert!(error.is_transient(), "{error}");
            assert!(stale_view_may_explain(&error), "{error}");
        }
    }

    #[test]
    fn a_failing_call_is_transient_and_its_text_unchanged() {
        let error = pkcs11_error(
            "token \"t\"",
            &CkError::Pkcs11(RvError::SessionCount, Function::OpenSession),
        );
        assert_eq!(
            error.to_string(),
            "token \"t\" could not be read (C_OpenSession returned CKR_SESSION_COUNT); check that the token is present; the lookup is retried at the next attempt"
        );
        assert!(error.is_transient());
    }

    #[test]
    fn a_module_that_cannot_load_is_permanent_one_that_cannot_initialise_is_not() {
        let load = module_failure(
            "/x.so",
            &ModuleError::Load("cannot be loaded (no such file)".into()),
        );
        assert_eq!(
            load.to_string(),
            "PKCS#11 module /x.so cannot be loaded (no such file); check --pkcs11-lib or module-path in the URI"
        );
        assert!(!load.is_transient());
        let init = module_failure(
            DEFAULT_MODULE,
            &ModuleError::Initialize(
                "cannot be initialised (C_Initialize returned CKR_DEVICE_ERROR)".into(),
            ),
        );
        assert!(init.is_transient());
    }

    #[test]
    fn a_uri_of_the_wrong_type_is_permanent() {
        let uri: Pkcs11Uri = "pkcs11:token=t;type=cert".parse().unwrap();
        let error = refuse_type(&uri, ObjectType::PrivateKey, "--private-key").unwrap_err();
        assert_eq!(
            error.to_string(),
            "--private-key pkcs11:token=t;type=cert has type=cert, but --private-key needs type=private; write type=private or leave type out"
        );
        assert!(!error.is_transient());
    }
}
