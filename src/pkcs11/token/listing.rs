//! `read-certificate-data` of a `pkcs11:` URI: every matching certificate on every
//! matching token, each with a URI that names it.

use super::lookup::{Lookup, with_module};
use super::spec::TokenSpec;
use crate::identity_error::IdentityError;
use crate::pkcs11::pin::{self, Kind};
use crate::pkcs11::uri::ObjectType;

/// A certificate listed by `read-certificate-data`.
pub struct Listed {
    pub der: Vec<u8>,
    /// A URI that names it.
    pub uri: String,
}

/// Every certificate matching `spec.certificate`, on every matching token. Private
/// certificates are included when the user PIN is available.
pub fn list(spec: &TokenSpec) -> Result<Vec<Listed>, IdentityError> {
    with_module(spec, |lookup| lookup.list())
}

impl Lookup<'_> {
    fn list(&mut self) -> Result<Vec<Listed>, IdentityError> {
        let Some(uri) = self.spec.certificate.clone() else {
            return Ok(Vec::new());
        };
        let slots = self.slots(&uri)?;
        let mut listed = Vec::new();
        for view in &slots {
            let mut objects = self.certificates(view, uri.object.as_deref(), uri.id.as_deref())?;
            if objects.is_empty() && slots.len() == 1 {
                let env = |k: &str| std::env::var(k).ok();
                let has_pin = pin::find(Kind::User, Some(&uri), &self.spec.pins, &env)
                    .ok()
                    .flatten()
                    .is_some();
                // Private certificates only with a PIN at hand: a listing never prompts.
                if has_pin {
                    self.login(view)?;
                    objects = self.certificates(view, uri.object.as_deref(), uri.id.as_deref())?;
                }
            }
            for object in objects {
                let mut named = view.uri();
                named.id = (!object.id.is_empty()).then(|| object.id.clone());
                named.object = (!object.label.is_empty()).then(|| object.label.clone());
                named.object_type = Some(ObjectType::Certificate);
                listed.push(Listed {
                    der: object.der,
                    uri: named.format(),
                });
            }
        }
        Ok(listed)
    }
}
