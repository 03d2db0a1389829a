//! The user login of a token's long-lived session, with the PIN from the first source
//! that has one (or the terminal, for the commands a person runs).

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{SessionState, UserType};
use cryptoki::types::AuthPin;

use super::errors::{login_failure, pkcs11_error, refused_again};
use super::lookup::Lookup;
use super::slots::SlotView;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::pin::{self, Kind, Pin, PinError};

impl Lookup<'_> {
    /// Logs the long-lived session on `slot` in as the user, if the token requires it and
    /// it is not logged in yet. The PIN is read now and wiped when this returns.
    pub(super) fn login(&mut self, view: &SlotView) -> Result<(), IdentityError> {
        let name = view.name();
        if !self.needs_login(view)? {
            return Ok(());
        }
        let pin = self.user_pin(view)?;
        if let Some(pin) = &pin
            && self.state.refused_before("user", pin.secret.expose())
        {
            return Err(refused_again(&name, pin, "user"));
        }
        let session = self
            .state
            .session(view.slot)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let outcome = match &pin {
            Some(pin) => {
                let auth = AuthPin::from(pin.secret.expose().to_owned());
                session.login(UserType::User, Some(&auth))
            }
            None => session.login(UserType::User, None),
        };
        match outcome {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => {
                if let (Some(pin), CkError::Pkcs11(RvError::PinIncorrect, _)) = (&pin, &e) {
                    self.state.remember_refused("user", pin.secret.expose());
                }
                Err(login_failure(&name, pin.as_ref(), "user", &e))
            }
        }
    }

    /// True when the token wants a login and the session is not logged in yet.
    fn needs_login(&mut self, view: &SlotView) -> Result<bool, IdentityError> {
        let name = view.name();
        let session = self
            .state
            .session(view.slot)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let info = session
            .get_session_info()
            .map_err(|e| pkcs11_error(&name, &e))?;
        let public = matches!(
            info.session_state(),
            SessionState::RoPublic | SessionState::RwPublic
        );
        Ok(public && view.login_required)
    }

    /// The user PIN: from its sources, else the terminal if the command may ask; `None`
    /// for a token with a protected authentication path (a PIN pad), which asks itself.
    fn user_pin(&mut self, view: &SlotView) -> Result<Option<Pin>, IdentityError> {
        let name = view.name();
        let pin_failure =
            |e: PinError| IdentityError::new(e.kind, format!("{name}:"), e.problem, e.fix);
        let env = |k: &str| std::env::var(k).ok();
        let found = pin::find(Kind::User, self.spec.pin_uri(), &self.spec.pins, &env)
            .map_err(pin_failure)?;
        let pin = match found {
            Some(pin) => Some(pin),
            None if view.protected_path => None,
            None if self.spec.pins.prompt => pin::prompt(&format!(
                "Please enter your user PIN for token \"{}\": ",
                view.label
            ))
            .map_err(pin_failure)?,
            None => None,
        };
        if pin.is_none() && !view.protected_path {
            return Err(IdentityError::new(
                ErrorKind::Usage,
                name,
                "needs the user PIN for its private objects, and none was given (and there is no terminal to ask on)",
                pin::how_to_give(Kind::User),
            ));
        }
        Ok(pin)
    }
}
