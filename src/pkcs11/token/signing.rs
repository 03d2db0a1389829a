//! One signature with a key object on a token, whatever its kind and
//! `CKA_ALWAYS_AUTHENTICATE`: the hash-and-sign mechanism when the token offers it, else
//! the raw one over a digest computed here, with the context-specific login in between
//! for keys that need one.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use super::errors::login_failure;
use super::mechanisms::{Mechanisms, digest_index, digest_info, digest_name};
use super::objects::{KeyKind, KeyObject};
use crate::pkcs11::module::{Module, State, describe};
use crate::pkcs11::pin::{self, Kind, Pin, PinOptions};
use crate::pkcs11::uri::Pkcs11Uri;
use crate::x509::Digest;

/// Why signing on the token failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct SignFailure(String);

/// One signature with a key object, whatever its kind and `CKA_ALWAYS_AUTHENTICATE`.
pub(super) struct Signer<'a> {
    pub(super) module: &'a Module,
    pub(super) key: &'a KeyObject,
    pub(super) mechanisms: &'a Mechanisms,
    pub(super) pins: &'a PinOptions,
    pub(super) user_uri: Option<&'a Pkcs11Uri>,
    /// The token's label, for messages.
    pub(super) token: &'a str,
}

impl Signer<'_> {
    /// The hash-and-sign mechanism for `digest`, which can sign in several parts, if the
    /// token offers it.
    fn hashing_mechanism(&self, digest: Digest) -> Option<Mechanism<'static>> {
        let i = digest_index(digest);
        match self.key.kind {
            KeyKind::Rsa if self.mechanisms.offers(self.mechanisms.sha_rsa[i]) => {
                Some(match digest {
                    Digest::Sha256 => Mechanism::Sha256RsaPkcs,
                    Digest::Sha384 => Mechanism::Sha384RsaPkcs,
                    Digest::Sha512 => Mechanism::Sha512RsaPkcs,
                })
            }
            KeyKind::Ec if self.mechanisms.known && self.mechanisms.ecdsa_sha[i] => {
                Some(match digest {
                    Digest::Sha256 => Mechanism::EcdsaSha256,
                    Digest::Sha384 => Mechanism::EcdsaSha384,
                    Digest::Sha512 => Mechanism::EcdsaSha512,
                })
            }
            _ => None,
        }
    }

    /// Signs `message` hashed with `digest`; a failure that suggests the token went away
    /// marks the module for re-initialisation at the next lookup.
    pub(super) fn sign(
        &self,
        state: &mut State,
        message: &[u8],
        digest: Digest,
    ) -> Result<Vec<u8>, SignFailure> {
        let what = self.key.describe(self.token);
        let outcome = self.sign_inner(state, message, digest);
        if let Err((Some(e), _)) = &outcome {
            state.note_failure(e);
        }
        outcome.map_err(|(_, text)| SignFailure(format!("{what}: {text}")))
    }

    fn sign_inner(
        &self,
        state: &mut State,
        message: &[u8],
        digest: Digest,
    ) -> Result<Vec<u8>, (Option<CkError>, String)> {
        let hash = digest.hash(message);
        match self.key.kind {
            KeyKind::Rsa => {
                let hashing = match digest {
                    Digest::Sha256 => Mechanism::Sha256RsaPkcs,
                    Digest::Sha384 => Mechanism::Sha384RsaPkcs,
                    Digest::Sha512 => Mechanism::Sha512RsaPkcs,
                };
                let mut with_prefix = digest_info(digest).to_vec();
                with_prefix.extend_from_slice(&hash);
                let m = &self.mechanisms;
                if m.known && !m.sha_rsa[digest_index(digest)] && !m.rsa_pkcs {
                    return Err((
                        None,
                        format!(
                            "cannot sign: the token offers neither CKM_{}_RSA_PKCS nor CKM_RSA_PKCS",
                            digest_name(digest)
                        ),
                    ));
                }
                if !m.offers(m.sha_rsa[digest_index(digest)]) {
                    return self.single(state, &Mechanism::RsaPkcs, &with_prefix, message, digest);
                }
                match self.single(state, &hashing, message, message, digest) {
                    // Listed but refused: the raw mechanism with the DigestInfo prefix.
                    Err((Some(CkError::Pkcs11(RvError::MechanismInvalid, _)), _)) => {
                        self.single(state, &Mechanism::RsaPkcs, &with_prefix, message, digest)
                    }
                    other => other,
                }
            }
            KeyKind::Ec => {
                if self.mechanisms.known && !self.mechanisms.ecdsa {
                    return Err((
                        None,
                        "cannot sign: the token does not offer CKM_ECDSA".into(),
                    ));
                }
                let raw = self.single(state, &Mechanism::Ecdsa, &hash, message, digest)?;
                der_ecdsa(&raw).ok_or_else(|| {
                    (
                        None,
                        format!(
                            "the token returned an ECDSA signature of {} bytes, which is not r||s of P-256, P-384 or P-521",
                            raw.len()
                        ),
                    )
                })
            }
            KeyKind::Other => Err((None, "is neither an RSA nor an EC key".into())),
        }
    }

    /// Signs `data` with `mechanism` in one part. For a key with `CKA_ALWAYS_AUTHENTICATE`
    /// the context-specific login comes between `C_SignInit` and `C_Sign`; through a module
    /// without a shared function list (p11-kit's proxy), the hash-and-sign mechanism is
    /// used instead, in several parts over `message`.
    fn single(
        &self,
        state: &mut State,
        mechanism: &Mechanism,
        data: &[u8],
        message: &[u8],
        digest: Digest,
    ) -> Result<Vec<u8>, (Option<CkError>, String)> {
        let slot = self.key.slot;
        let fail = |e: CkError| {
            let text = describe(&e);
            (Some(e), text)
        };
        let closed = || (None, "its session was closed".to_owned());
        let session = state.existing_session(slot).ok_or_else(closed)?;
        tracing::debug!(
            ?mechanism,
            always_authenticate = self.key.always_authenticate,
            "signing on the token"
        );
        if !self.key.always_authenticate {
            return session.sign(mechanism, self.key.handle, data).map_err(fail);
        }
        let raw = self.module.raw_sign();
        let multipart = match raw {
            Some(_) => None,
            None => Some(self.hashing_mechanism(digest).ok_or_else(|| {
                (
                    None,
                    format!(
                        "has CKA_ALWAYS_AUTHENTICATE, which needs C_Sign right after the context-specific login, and the module {} neither shares its function list (p11-kit's proxy gives each caller its own) nor offers the hash-and-sign mechanism for {}; give the token's own module with --pkcs11-lib",
                        self.module.name,
                        match self.key.kind {
                            KeyKind::Rsa => "RSA",
                            _ => "ECDSA",
                        }
                    ),
                )
            })?),
        };
        session
            .sign_init(multipart.as_ref().unwrap_or(mechanism), self.key.handle)
            .map_err(fail)?;
        if let Err(e) = self.context_login(state) {
            // Closing the session ends the operation left open; the next lookup opens a
            // new one and logs in again.
            state.close_session(slot);
            return Err((None, e));
        }
        let session = state.existing_session(slot).ok_or_else(closed)?;
        match raw {
            Some(raw) => raw.sign(session, data).map_err(fail),
            None => {
                session.sign_update(message).map_err(fail)?;
                session.sign_final().map_err(fail)
            }
        }
    }

    /// The context-specific login of a key with `CKA_ALWAYS_AUTHENTICATE`: the user PIN
    /// first under `--reuse-pin`, then a context PIN from its sources or the terminal.
    fn context_login(&self, state: &mut State) -> Result<(), String> {
        let env = |k: &str| std::env::var(k).ok();
        let name = format!("token \"{}\"", self.token);
        let try_pin = |state: &mut State, pin: &Pin| -> Result<bool, String> {
            if state.refused_before("context", pin.secret.expose()) {
                return Ok(false);
            }
            let session = state
                .existing_session(self.key.slot)
                .ok_or_else(|| "its session was closed".to_owned())?;
            let auth = AuthPin::from(pin.secret.expose().to_owned());
            match session.login(UserType::ContextSpecific, Some(&auth)) {
                Ok(()) => Ok(true),
                Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                    state.remember_refused("context", pin.secret.expose());
                    Ok(false)
                }
                Err(e) => Err(login_failure(&name, Some(pin), "context-specific", &e).to_string()),
            }
        };
        let mut refused = Vec::new();
        if self.pins.reuse_pin
            && let Some(pin) =
                pin::find(Kind::User, self.user_uri, self.pins, &env).map_err(|e| e.to_string())?
        {
            if try_pin(state, &pin)? {
                return Ok(());
            }
            refused.push(format!("the user PIN from {}", pin.origin));
        }
        let pin =
            match pin::find(Kind::Context, None, self.pins, &env).map_err(|e| e.to_string())? {
                Some(pin) => Some(pin),
                None if self.pins.prompt => pin::prompt(&format!(
                    "Please enter the context-specific PIN for {}: ",
                    self.key.describe(self.token)
                ))
                .map_err(|e| e.to_string())?,
                None => None,
            };
        match pin {
            Some(pin) => {
                if try_pin(state, &pin)? {
                    return Ok(());
                }
                refused.push(format!("the PIN from {}", pin.origin));
                Err(format!(
                    "needs a context-specific login (CKA_ALWAYS_AUTHENTICATE) and {name} refused {} as incorrect; check the PIN",
                    refused.join(" and ")
                ))
            }
            None if refused.is_empty() => Err(format!(
                "needs a context-specific PIN for each signature (CKA_ALWAYS_AUTHENTICATE), and none was given (and there is no terminal to ask on); {}",
                pin::how_to_give(Kind::Context)
            )),
            None => Err(format!(
                "needs a context-specific login (CKA_ALWAYS_AUTHENTICATE) and {name} refused {} as incorrect; {}",
                refused.join(" and "),
                pin::how_to_give(Kind::Context)
            )),
        }
    }
}

/// Raw `r || s` (as `CKM_ECDSA` returns it) re-encoded as DER, the curve told by length.
fn der_ecdsa(raw: &[u8]) -> Option<Vec<u8>> {
    Some(match raw.len() {
        64 => p256::ecdsa::Signature::from_slice(raw)
            .ok()?
            .to_der()
            .as_bytes()
            .to_vec(),
        96 => p384::ecdsa::Signature::from_slice(raw)
            .ok()?
            .to_der()
            .as_bytes()
            .to_vec(),
        132 => p521::ecdsa::Signature::from_slice(raw)
            .ok()?
            .to_der()
            .as_bytes()
            .to_vec(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_becomes_der() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        assert_eq!(
            der_ecdsa(&raw).unwrap(),
            vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]
        );
        assert!(der_ecdsa(&[1u8; 10]).is_none());
    }
}
