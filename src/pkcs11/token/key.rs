//! A key found on a token, kept to sign for as long as the module keeps its session.

use std::sync::Arc;

use super::lookup::Lookup;
use super::mechanisms::Mechanisms;
use super::objects::KeyObject;
use super::signing::Signer;
use super::slots::SlotView;
use crate::pkcs11::module::Module;
use crate::pkcs11::pin::PinOptions;
use crate::pkcs11::uri::Pkcs11Uri;
use crate::x509::{Digest, PublicKey, SignatureError};

/// A key on a token, ready to sign while the module keeps the session it was found in.
pub struct TokenKey {
    module: Arc<Module>,
    /// The module's generation when the key was found: a re-initialisation since voids
    /// its handle.
    generation: u64,
    key: KeyObject,
    mechanisms: Mechanisms,
    public: PublicKey,
    pins: PinOptions,
    user_uri: Option<Pkcs11Uri>,
    token: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenKey({}, {}, module {})",
            self.public.describe(),
            self.key.describe(&self.token),
            self.module.name
        )
    }
}

impl TokenKey {
    /// The public key (from the certificate, or from the token).
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` hashed with `digest`: PKCS#1 v1.5 for RSA, DER ECDSA for EC, as a
    /// file key would.
    pub fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignatureError> {
        let mut state = self.module.lock();
        if state.generation() != self.generation || state.existing_session(self.key.slot).is_none()
        {
            return Err(SignatureError::Sign(format!(
                "the session with token \"{}\" was reset; the key is looked up again at the next attempt",
                self.token
            )));
        }
        let signer = Signer {
            module: &self.module,
            key: &self.key,
            mechanisms: &self.mechanisms,
            pins: &self.pins,
            user_uri: self.user_uri.as_ref(),
            token: &self.token,
        };
        signer
            .sign(&mut state, message, digest)
            .map_err(|e| SignatureError::Sign(e.to_string()))
    }
}

impl Lookup<'_> {
    /// The key object `key` on `view`'s token, kept with what signing needs.
    pub(super) fn token_key(
        &mut self,
        view: &SlotView,
        key: KeyObject,
        public: PublicKey,
        mechanisms: Mechanisms,
    ) -> TokenKey {
        TokenKey {
            module: self.module.clone(),
            generation: self.state.generation(),
            key,
            mechanisms,
            public,
            pins: self.spec.pins.clone(),
            user_uri: self.spec.pin_uri().cloned(),
            token: view.label.clone(),
        }
    }
}
