//! The certificate and private key objects on a token, found by label and id, with what
//! each tells about itself.

use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType as CkKeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::Session;

use super::errors::pkcs11_error;
use super::lookup::Lookup;
use super::slots::SlotView;
use crate::identity_error::IdentityError;

/// A certificate object.
pub(super) struct CertObject {
    pub(super) der: Vec<u8>,
    pub(super) id: Vec<u8>,
    pub(super) label: String,
}

impl CertObject {
    /// `certificate "label" (id %01) on token "t"`, for messages.
    pub(super) fn describe(&self, token: &str) -> String {
        format!(
            "certificate {} on token \"{token}\"",
            object_name(&self.label, &self.id)
        )
    }
}

/// A private key object and what it tells about itself.
#[derive(Clone, Debug)]
pub(super) struct KeyObject {
    pub(super) slot: u64,
    pub(super) handle: ObjectHandle,
    pub(super) kind: KeyKind,
    pub(super) id: Vec<u8>,
    pub(super) label: String,
    pub(super) always_authenticate: bool,
    /// RSA modulus and public exponent, when readable.
    pub(super) rsa: Option<(Vec<u8>, Vec<u8>)>,
    /// The curve OID (DER) of an EC key, when readable.
    pub(super) ec_params: Option<Vec<u8>>,
}

impl KeyObject {
    /// `private key "label" (id %01) on token "t"`, for messages.
    pub(super) fn describe(&self, token: &str) -> String {
        format!(
            "private key {} on token \"{token}\"",
            object_name(&self.label, &self.id)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    Rsa,
    Ec,
    Other,
}

/// `"label" (id %01)` for messages.
pub(super) fn object_name(label: &str, id: &[u8]) -> String {
    let id: String = id.iter().map(|b| format!("%{b:02X}")).collect();
    match (label.is_empty(), id.is_empty()) {
        (false, false) => format!("\"{label}\" (id {id})"),
        (false, true) => format!("\"{label}\""),
        (true, false) => format!("with id {id}"),
        (true, true) => "without label or id".into(),
    }
}

/// A `C_FindObjects` template: `base`, narrowed by label and id when given.
fn search_template(
    mut template: Vec<Attribute>,
    label: Option<&str>,
    id: Option<&[u8]>,
) -> Vec<Attribute> {
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = id {
        template.push(Attribute::Id(id.to_vec()));
    }
    template
}

impl Lookup<'_> {
    /// Certificate objects on `slot` whose label and id match (all when `None`).
    pub(super) fn certificates(
        &mut self,
        view: &SlotView,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<CertObject>, IdentityError> {
        let name = view.name();
        let session = self
            .state
            .session(view.slot)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let template = search_template(
            vec![
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
            ],
            label,
            id,
        );
        let handles = session
            .find_objects(&template)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let mut found = Vec::with_capacity(handles.len());
        for handle in handles {
            let object =
                certificate_object(session, handle).map_err(|e| pkcs11_error(&name, &e))?;
            if !object.der.is_empty() {
                found.push(object);
            }
        }
        Ok(found)
    }

    /// Private key objects on `slot` whose label and id match (all when `None`).
    pub(super) fn keys(
        &mut self,
        view: &SlotView,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<KeyObject>, IdentityError> {
        let name = view.name();
        let session = self
            .state
            .session(view.slot)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let template = search_template(vec![Attribute::Class(ObjectClass::PRIVATE_KEY)], label, id);
        let handles = session
            .find_objects(&template)
            .map_err(|e| pkcs11_error(&name, &e))?;
        Ok(handles
            .into_iter()
            .map(|handle| key_object(session, view, handle))
            .collect())
    }
}

/// The value, id and label of a certificate object.
fn certificate_object(
    session: &Session,
    handle: ObjectHandle,
) -> Result<CertObject, cryptoki::error::Error> {
    let attributes = session.get_attributes(
        handle,
        &[
            AttributeType::Value,
            AttributeType::Id,
            AttributeType::Label,
        ],
    )?;
    let mut object = CertObject {
        der: Vec::new(),
        id: Vec::new(),
        label: String::new(),
    };
    for attribute in attributes {
        match attribute {
            Attribute::Value(v) => object.der = v,
            Attribute::Id(v) => object.id = v,
            Attribute::Label(v) => object.label = String::from_utf8_lossy(&v).into_owned(),
            _ => {}
        }
    }
    Ok(object)
}

/// What a private key object tells about itself, asked one attribute at a time: a token
/// refusing one (a sensitive or unknown attribute) must not hide the others.
fn key_object(session: &Session, view: &SlotView, handle: ObjectHandle) -> KeyObject {
    let get = |kind: AttributeType| {
        session
            .get_attributes(handle, &[kind])
            .ok()
            .and_then(|mut v| v.pop())
    };
    let kind = match get(AttributeType::KeyType) {
        Some(Attribute::KeyType(t)) if t == CkKeyType::RSA => KeyKind::Rsa,
        Some(Attribute::KeyType(t)) if t == CkKeyType::EC => KeyKind::Ec,
        _ => KeyKind::Other,
    };
    let bytes = |kind: AttributeType| match get(kind) {
        Some(Attribute::Id(v) | Attribute::Label(v) | Attribute::Modulus(v))
        | Some(Attribute::PublicExponent(v) | Attribute::EcParams(v)) => Some(v),
        _ => None,
    };
    let rsa = match kind {
        KeyKind::Rsa => bytes(AttributeType::Modulus).zip(bytes(AttributeType::PublicExponent)),
        _ => None,
    };
    let ec_params = match kind {
        KeyKind::Ec => bytes(AttributeType::EcParams),
        _ => None,
    };
    KeyObject {
        slot: view.slot.id(),
        handle,
        kind,
        id: bytes(AttributeType::Id).unwrap_or_default(),
        label: bytes(AttributeType::Label)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default(),
        always_authenticate: matches!(
            get(AttributeType::AlwaysAuthenticate),
            Some(Attribute::AlwaysAuthenticate(true))
        ),
        rsa,
        ec_params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert_eq!(object_name("k", &[1, 0xab]), "\"k\" (id %01%AB)");
        assert_eq!(object_name("", &[2]), "with id %02");
        assert_eq!(object_name("", &[]), "without label or id");
    }
}
