//! Telling which private key on a token belongs to a certificate: by the public facts
//! the token gives (the RSA modulus, or the EC point of the public-key object with the same
//! `CKA_ID`), or failing that by a probe signature checked against the certificate's key.

use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass};

use super::lookup::Lookup;
use super::mechanisms::Mechanisms;
use super::objects::{KeyKind, KeyObject};
use super::signing::Signer;
use super::slots::SlotView;
use crate::x509::{Digest, PublicKey};

/// Which curve a DER `ECParameters` (a named-curve OID) names.
fn curve_of(params: &[u8]) -> Option<&'static str> {
    match params {
        [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => Some("P-256"),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22] => Some("P-384"),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23] => Some("P-521"),
        _ => None,
    }
}

/// The curve of an EC public key, in [`curve_of`]'s names; `None` for RSA.
fn curve_of_public(public: &PublicKey) -> Option<&'static str> {
    match public {
        PublicKey::P256(_) => Some("P-256"),
        PublicKey::P384(_) => Some("P-384"),
        PublicKey::P521(_) => Some("P-521"),
        PublicKey::Rsa(_) | PublicKey::MlDsa(..) => None,
    }
}

impl Lookup<'_> {
    /// The key's public key from the token: the RSA modulus and exponent of the private
    /// key, or the EC point of the public-key object with the same `CKA_ID`.
    pub(super) fn public_key(&mut self, view: &SlotView, key: &KeyObject) -> Option<PublicKey> {
        match key.kind {
            KeyKind::Rsa => {
                let (n, e) = key.rsa.as_ref()?;
                PublicKey::rsa_from_parts(n, e)
            }
            KeyKind::Ec => {
                if key.id.is_empty() {
                    return None;
                }
                let session = self.state.session(view.slot).ok()?;
                let handles = session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        Attribute::KeyType(CkKeyType::EC),
                        Attribute::Id(key.id.clone()),
                    ])
                    .ok()?;
                handles.into_iter().find_map(|handle| {
                    let attributes = session
                        .get_attributes(handle, &[AttributeType::EcParams, AttributeType::EcPoint])
                        .ok()?;
                    let mut params = None;
                    let mut point = None;
                    for attribute in attributes {
                        match attribute {
                            Attribute::EcParams(v) => params = Some(v),
                            Attribute::EcPoint(v) => point = Some(v),
                            _ => {}
                        }
                    }
                    if key.ec_params.is_some() && key.ec_params != params {
                        return None;
                    }
                    ec_public_key(curve_of(&params?)?, &point?)
                })
            }
            KeyKind::Other => None,
        }
    }

    /// Whether `key` is the private half of `public`: decided from the token's public
    /// facts when it has them, else by a probe signature.
    pub(super) fn key_matches(
        &mut self,
        view: &SlotView,
        key: &KeyObject,
        public: &PublicKey,
        mechanisms: &Mechanisms,
        probe_errors: &mut Vec<String>,
    ) -> bool {
        let kind_ok = matches!(
            (key.kind, public),
            (KeyKind::Rsa, PublicKey::Rsa(_))
                | (
                    KeyKind::Ec,
                    PublicKey::P256(_) | PublicKey::P384(_) | PublicKey::P521(_)
                )
        );
        if !kind_ok {
            return false;
        }
        if let Some(params) = &key.ec_params
            && curve_of(params) != curve_of_public(public)
        {
            return false;
        }
        if let Some(own) = self.public_key(view, key) {
            return own == *public;
        }
        match self.probe(view, key, mechanisms, std::slice::from_ref(public)) {
            Ok(matched) => matched.is_some(),
            Err(e) => {
                probe_errors.push(e);
                false
            }
        }
    }

    /// Signs a random probe with `key` and returns the index of the first of `publics`
    /// that verifies it.
    pub(super) fn probe(
        &mut self,
        view: &SlotView,
        key: &KeyObject,
        mechanisms: &Mechanisms,
        publics: &[PublicKey],
    ) -> Result<Option<usize>, String> {
        let mut probe = b"rolesanywhere-helper key probe ".to_vec();
        probe.extend_from_slice(&getrandom::u64().unwrap_or_default().to_be_bytes());
        let signer = Signer {
            module: self.module,
            key,
            mechanisms,
            pins: &self.spec.pins,
            user_uri: self.spec.pin_uri(),
            token: &view.label,
        };
        let signature = signer
            .sign(self.state, &probe, Digest::Sha256)
            .map_err(|e| e.to_string())?;
        Ok(publics
            .iter()
            .position(|p| p.verify(&probe, Digest::Sha256, &signature).is_ok()))
    }
}

/// An EC public key from a `CKA_EC_POINT`: the DER OCTET STRING PKCS#11 specifies, or the
/// bare point some tokens return.
fn ec_public_key(curve: &str, point: &[u8]) -> Option<PublicKey> {
    let bare = match point {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && len & 0x80 == 0 => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        other => other,
    };
    match curve {
        "P-256" => p256::ecdsa::VerifyingKey::from_sec1_bytes(bare)
            .ok()
            .map(PublicKey::P256),
        "P-384" => p384::ecdsa::VerifyingKey::from_sec1_bytes(bare)
            .ok()
            .map(PublicKey::P384),
        "P-521" => p521::ecdsa::VerifyingKey::from_sec1_bytes(bare)
            .ok()
            .map(PublicKey::P521),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_by_oid() {
        assert_eq!(
            curve_of(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
            Some("P-384")
        );
        assert_eq!(curve_of(&[0x06, 0x01, 0x00]), None);
    }
}
