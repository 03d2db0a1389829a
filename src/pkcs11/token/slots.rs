//! The tokens a URI names: its token, slot and library attributes matched against what
//! the module shows.

use cryptoki::slot::Slot;

use super::errors::pkcs11_error;
use super::lookup::Lookup;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::uri::Pkcs11Uri;

/// A token in a slot, with the facts URIs match on.
#[derive(Clone, Debug)]
pub(super) struct SlotView {
    pub(super) slot: Slot,
    pub(super) label: String,
    manufacturer: String,
    model: String,
    serial: String,
    slot_description: String,
    slot_manufacturer: String,
    pub(super) login_required: bool,
    pub(super) protected_path: bool,
}

impl SlotView {
    /// `token "label"`, for messages.
    pub(super) fn name(&self) -> String {
        format!("token \"{}\"", self.label)
    }

    /// A URI that names this token.
    pub(super) fn uri(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.label.clone()),
            manufacturer: Some(self.manufacturer.clone()),
            model: Some(self.model.clone()),
            serial: Some(self.serial.clone()),
            ..Pkcs11Uri::default()
        }
    }

    /// True when every token and slot attribute `uri` gives is this token's.
    fn matches(&self, uri: &Pkcs11Uri) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&uri.token, &self.label)
            && eq(&uri.manufacturer, &self.manufacturer)
            && eq(&uri.model, &self.model)
            && eq(&uri.serial, &self.serial)
            && eq(&uri.slot_description, &self.slot_description)
            && eq(&uri.slot_manufacturer, &self.slot_manufacturer)
            && uri.slot_id.is_none_or(|id| id == self.slot.id())
    }
}

impl Lookup<'_> {
    /// The tokens matching `uri`'s token, slot and library attributes.
    pub(super) fn slots(&mut self, uri: &Pkcs11Uri) -> Result<Vec<SlotView>, IdentityError> {
        if !self.library_matches(uri)? {
            return Ok(Vec::new());
        }
        let ctx = self.state.ctx().clone();
        let module = format!("PKCS#11 module {}", self.module.name);
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| pkcs11_error(&module, &e))?;
        let mut found = Vec::new();
        for slot in slots {
            let (Ok(slot_info), Ok(token)) = (ctx.get_slot_info(slot), ctx.get_token_info(slot))
            else {
                // A slot whose token cannot be read now (being removed, or gone from
                // the module's view) matches nothing; a retry re-initialises.
                tracing::debug!(
                    slot = slot.id(),
                    "skipping a slot whose token cannot be read"
                );
                continue;
            };
            if !token.token_initialized() {
                continue;
            }
            let view = SlotView {
                slot,
                label: token.label().to_owned(),
                manufacturer: token.manufacturer_id().to_owned(),
                model: token.model().to_owned(),
                serial: token.serial_number().to_owned(),
                slot_description: slot_info.slot_description().to_owned(),
                slot_manufacturer: slot_info.manufacturer_id().to_owned(),
                login_required: token.login_required(),
                protected_path: token.protected_authentication_path(),
            };
            if view.matches(uri) {
                found.push(view);
            }
        }
        Ok(found)
    }

    /// True when `uri` names no library attribute, or the module's match.
    fn library_matches(&mut self, uri: &Pkcs11Uri) -> Result<bool, IdentityError> {
        if uri.library_manufacturer.is_none()
            && uri.library_description.is_none()
            && uri.library_version.is_none()
        {
            return Ok(true);
        }
        let module = format!("PKCS#11 module {}", self.module.name);
        let info = self
            .state
            .ctx()
            .get_library_info()
            .map_err(|e| pkcs11_error(&module, &e))?;
        let version = info.library_version();
        Ok(uri
            .library_manufacturer
            .as_deref()
            .is_none_or(|m| m == info.manufacturer_id())
            && uri
                .library_description
                .as_deref()
                .is_none_or(|d| d == info.library_description())
            && uri
                .library_version
                .is_none_or(|v| v == (version.major(), version.minor())))
    }

    /// Every token's name, for "matches no token" messages.
    fn all_tokens(&mut self) -> String {
        let ctx = self.state.ctx().clone();
        let names: Vec<String> = ctx
            .get_slots_with_token()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|slot| ctx.get_token_info(slot).ok())
            .filter(|t| t.token_initialized())
            .map(|t| format!("\"{}\"", t.label()))
            .collect();
        if names.is_empty() {
            "the module shows no token".into()
        } else {
            format!("tokens present: {}", names.join(", "))
        }
    }

    /// No token matches `uri` (given with `flag`): it may not be plugged in yet.
    pub(super) fn no_token(&mut self, uri: &Pkcs11Uri, flag: &str) -> IdentityError {
        let present = self.all_tokens();
        IdentityError::new(
            ErrorKind::TokenAbsent,
            format!("{flag} {uri}"),
            format!(
                "matches no token of the PKCS#11 module {} ({present})",
                self.module.name
            ),
            "check token=, serial= and slot-id= in the URI, and that the token is present (or the module with --pkcs11-lib)",
        )
    }

    /// The one token `uri` names; `prefer` wins when several match and it is among them.
    pub(super) fn one_slot(
        &mut self,
        uri: &Pkcs11Uri,
        flag: &str,
        prefer: Option<&SlotView>,
    ) -> Result<SlotView, IdentityError> {
        let mut slots = self.slots(uri)?;
        if let Some(prefer) = prefer
            && slots.iter().any(|s| s.slot == prefer.slot)
        {
            return Ok(prefer.clone());
        }
        match slots.len() {
            0 => Err(self.no_token(uri, flag)),
            1 => Ok(slots.remove(0)),
            n => {
                let names: Vec<String> = slots.iter().map(SlotView::name).collect();
                Err(IdentityError::new(
                    ErrorKind::Usage,
                    format!("{flag} {uri}"),
                    format!("matches {n} tokens ({})", names.join(", ")),
                    "add token= or serial= to the URI to choose one",
                ))
            }
        }
    }
}
