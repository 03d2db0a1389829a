//! Finding a certificate and its private key on a token, and signing with the key.
//!
//! The search follows the official helper (itself modelled on OpenConnect and
//! draft-woodhouse-cert-best-practice): the certificate first (without logging in, then
//! logged in if it is not public), then the private key that matches it, looked for by
//! the key URI, then by the certificate's `CKA_ID`, then by its label, and recognised by
//! its public key (the RSA modulus, or the EC point of the public-key object with the
//! same `CKA_ID`), or failing that by a probe signature checked against the certificate.
//! Three arrangements work: both on the token, a certificate file with a key on the token,
//! and a key URI alone, whose certificate is then found on the token from the key.

use std::sync::Arc;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType as CkKeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use time::OffsetDateTime;

use super::module::{Module, State, describe};
use super::pin::{self, Kind, Pin, PinOptions};
use super::uri::{ObjectType, Pkcs11Uri};
use crate::identity::key::SignatureError;
use crate::identity::{Certificate, Digest, IdentityError, PublicKey};

/// What to look for on a token, from the identity flags.
#[derive(Clone, Debug, Default)]
pub struct TokenSpec {
    /// `--certificate pkcs11:…`.
    pub certificate: Option<Pkcs11Uri>,
    /// `--private-key pkcs11:…`; without it the key is looked for from the certificate.
    pub private_key: Option<Pkcs11Uri>,
    /// The module: `module-path` of a URI, `--pkcs11-lib`, or p11-kit's proxy.
    pub module: String,
    pub pins: PinOptions,
}

impl TokenSpec {
    /// The URI whose `pin-value` or `pin-source` gives the user PIN: the key's, else the
    /// certificate's (both name the same token's PIN).
    fn pin_uri(&self) -> Option<&Pkcs11Uri> {
        let uris = [self.private_key.as_ref(), self.certificate.as_ref()];
        uris.into_iter()
            .flatten()
            .find(|u| u.pin_value.is_some() || u.pin_source.is_some())
            .or(self.private_key.as_ref())
            .or(self.certificate.as_ref())
    }
}

/// What was found.
pub struct Found {
    /// The certificate (from the token or from the file), if one was needed or found.
    pub certificate: Option<FoundCertificate>,
    pub key: TokenKey,
}

pub struct FoundCertificate {
    pub certificate: Certificate,
    /// How to name it in messages.
    pub input: String,
    /// The issuers of the certificate found on the same token, issuer first.
    pub issuers: Vec<Certificate>,
}

/// A key on a token, ready to sign while the module keeps the session it was found in.
pub struct TokenKey {
    module: Arc<Module>,
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

/// A failure, and whether re-initialising the module might cure it.
struct Failure {
    error: IdentityError,
    retry: bool,
}

impl From<IdentityError> for Failure {
    fn from(error: IdentityError) -> Self {
        Self {
            error,
            retry: false,
        }
    }
}

fn module_failure(module: &str, problem: String) -> IdentityError {
    let fix = if module == super::module::DEFAULT_MODULE {
        "install p11-kit's proxy module (Debian: p11-kit-modules) or give the module with --pkcs11-lib /path/to/module.so"
    } else {
        "check --pkcs11-lib or module-path in the URI"
    };
    IdentityError::new(format!("PKCS#11 module {module}"), problem, fix)
}

/// Runs `lookup` against the module with its lock held; if it fails in a way a changed
/// token explains and the module was in use before, re-initialises the module and tries
/// once more.
fn with_module<T>(
    spec: &TokenSpec,
    mut lookup: impl FnMut(&Arc<Module>, &mut State) -> Result<T, Failure>,
) -> Result<T, IdentityError> {
    let module = Module::load(&spec.module).map_err(|p| module_failure(&spec.module, p))?;
    let mut state = module.lock();
    if state.is_suspect() {
        state
            .reinitialize()
            .map_err(|p| module_failure(&spec.module, p))?;
    }
    let first = lookup(&module, &mut state);
    let outcome = match first {
        Err(Failure { retry: true, error }) if state.may_be_stale() => {
            tracing::debug!(%error, "token lookup failed; re-initialising the module and retrying");
            state
                .reinitialize()
                .map_err(|p| module_failure(&spec.module, p))?;
            lookup(&module, &mut state)
        }
        other => other,
    };
    state.used();
    outcome.map_err(|f| f.error)
}

/// Finds the key (and the certificate) `spec` describes. `file_certificates` are the
/// certificates of a `--certificate` file (the key must match one of them); without
/// them the certificate is looked for on the token, and is required if `need_certificate`.
pub fn find(
    spec: &TokenSpec,
    file_certificates: Option<(&[Certificate], &str)>,
    need_certificate: bool,
    now: OffsetDateTime,
) -> Result<Found, IdentityError> {
    let found = with_module(spec, |module, state| {
        let mut lookup = Lookup {
            module,
            state,
            spec,
        };
        lookup.find(file_certificates, need_certificate, now)
    })?;
    tracing::debug!(
        module = %spec.module,
        key = ?found.key,
        certificate = found.certificate.as_ref().map(|c| c.input.as_str()).unwrap_or("none"),
        issuers_on_token = found.certificate.as_ref().map_or(0, |c| c.issuers.len()),
        "PKCS#11 objects found"
    );
    Ok(found)
}

/// A certificate listed by `read-certificate-data`.
pub struct Listed {
    pub der: Vec<u8>,
    /// A URI that names it.
    pub uri: String,
}

/// Every certificate matching `spec.certificate`, on every matching token. Private
/// certificates are included when the user PIN is available.
pub fn list(spec: &TokenSpec) -> Result<Vec<Listed>, IdentityError> {
    with_module(spec, |module, state| {
        let mut lookup = Lookup {
            module,
            state,
            spec,
        };
        lookup.list()
    })
}

/// A token in a slot, with the facts URIs match on.
#[derive(Clone, Debug)]
struct SlotView {
    slot: Slot,
    label: String,
    manufacturer: String,
    model: String,
    serial: String,
    slot_description: String,
    slot_manufacturer: String,
    login_required: bool,
    protected_path: bool,
}

impl SlotView {
    fn name(&self) -> String {
        format!("token \"{}\"", self.label)
    }

    fn uri(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.label.clone()),
            manufacturer: Some(self.manufacturer.clone()),
            model: Some(self.model.clone()),
            serial: Some(self.serial.clone()),
            ..Pkcs11Uri::default()
        }
    }
}

/// A certificate object.
struct CertObject {
    der: Vec<u8>,
    id: Vec<u8>,
    label: String,
}

impl CertObject {
    fn describe(&self, token: &str) -> String {
        format!(
            "certificate {} on token \"{token}\"",
            object_name(&self.label, &self.id)
        )
    }
}

/// A private key object and what it tells about itself.
#[derive(Clone, Debug)]
struct KeyObject {
    slot: u64,
    handle: ObjectHandle,
    kind: KeyKind,
    id: Vec<u8>,
    label: String,
    always_authenticate: bool,
    /// RSA modulus and public exponent, when readable.
    rsa: Option<(Vec<u8>, Vec<u8>)>,
    /// The curve OID (DER) of an EC key, when readable.
    ec_params: Option<Vec<u8>>,
}

impl KeyObject {
    fn describe(&self, token: &str) -> String {
        format!(
            "private key {} on token \"{token}\"",
            object_name(&self.label, &self.id)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec,
    Other,
}

/// `"label" (id %01)` for messages.
fn object_name(label: &str, id: &[u8]) -> String {
    let id: String = id.iter().map(|b| format!("%{b:02X}")).collect();
    match (label.is_empty(), id.is_empty()) {
        (false, false) => format!("\"{label}\" (id {id})"),
        (false, true) => format!("\"{label}\""),
        (true, false) => format!("with id {id}"),
        (true, true) => "without label or id".into(),
    }
}

/// Which curve a DER `ECParameters` (a named-curve OID) names.
fn curve_of(params: &[u8]) -> Option<&'static str> {
    match params {
        [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => Some("P-256"),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22] => Some("P-384"),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23] => Some("P-521"),
        _ => None,
    }
}

fn curve_of_public(public: &PublicKey) -> Option<&'static str> {
    match public {
        PublicKey::P256(_) => Some("P-256"),
        PublicKey::P384(_) => Some("P-384"),
        PublicKey::P521(_) => Some("P-521"),
        PublicKey::Rsa(_) => None,
    }
}

struct Lookup<'a> {
    module: &'a Arc<Module>,
    state: &'a mut State,
    spec: &'a TokenSpec,
}

fn pkcs11_error(input: &str, error: &CkError) -> Failure {
    Failure {
        error: IdentityError::new(
            input,
            format!("could not be read ({})", describe(error)),
            "check that the token is present; the lookup is retried at the next attempt",
        ),
        retry: true,
    }
}

impl Lookup<'_> {
    /// The tokens matching `uri`'s token, slot and library attributes.
    fn slots(&mut self, uri: &Pkcs11Uri) -> Result<Vec<SlotView>, Failure> {
        let ctx = self.state.ctx().clone();
        let module = format!("PKCS#11 module {}", self.module.name);
        if uri.library_manufacturer.is_some()
            || uri.library_description.is_some()
            || uri.library_version.is_some()
        {
            let info = ctx
                .get_library_info()
                .map_err(|e| pkcs11_error(&module, &e))?;
            let version = info.library_version();
            let matches = uri
                .library_manufacturer
                .as_deref()
                .is_none_or(|m| m == info.manufacturer_id())
                && uri
                    .library_description
                    .as_deref()
                    .is_none_or(|d| d == info.library_description())
                && uri
                    .library_version
                    .is_none_or(|v| v == (version.major(), version.minor()));
            if !matches {
                return Ok(Vec::new());
            }
        }
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
            let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
            if eq(&uri.token, &view.label)
                && eq(&uri.manufacturer, &view.manufacturer)
                && eq(&uri.model, &view.model)
                && eq(&uri.serial, &view.serial)
                && eq(&uri.slot_description, &view.slot_description)
                && eq(&uri.slot_manufacturer, &view.slot_manufacturer)
                && uri.slot_id.is_none_or(|id| id == slot.id())
            {
                found.push(view);
            }
        }
        Ok(found)
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

    fn no_token(&mut self, uri: &Pkcs11Uri, flag: &str) -> Failure {
        let present = self.all_tokens();
        Failure {
            error: IdentityError::new(
                format!("{flag} {uri}"),
                format!(
                    "matches no token of the PKCS#11 module {} ({present})",
                    self.module.name
                ),
                "check token=, serial= and slot-id= in the URI, and that the token is present (or the module with --pkcs11-lib)",
            ),
            retry: true,
        }
    }

    /// Logs the long-lived session on `slot` in as the user, if the token requires it and
    /// it is not logged in yet. The PIN is read now and wiped when this returns.
    fn login(&mut self, view: &SlotView) -> Result<(), Failure> {
        let name = view.name();
        let session = self
            .state
            .session(view.slot)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let info = session
            .get_session_info()
            .map_err(|e| pkcs11_error(&name, &e))?;
        if !matches!(
            info.session_state(),
            SessionState::RoPublic | SessionState::RwPublic
        ) || !view.login_required
        {
            return Ok(());
        }
        let env = |k: &str| std::env::var(k).ok();
        let pin_failure =
            |e: pin::PinError| IdentityError::new(format!("{name}:"), e.problem, e.fix);
        let pin = pin::find(Kind::User, self.spec.pin_uri(), &self.spec.pins, &env)
            .map_err(pin_failure)?;
        let pin = match pin {
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
                name,
                "needs the user PIN for its private objects, and none was given (and there is no terminal to ask on)",
                pin::how_to_give(Kind::User),
            )
            .into());
        }
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

    /// Certificate objects on `slot` whose label and id match (all when `None`).
    fn certificates(
        &mut self,
        view: &SlotView,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<CertObject>, Failure> {
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
            let attributes = session
                .get_attributes(
                    handle,
                    &[
                        AttributeType::Value,
                        AttributeType::Id,
                        AttributeType::Label,
                    ],
                )
                .map_err(|e| pkcs11_error(&name, &e))?;
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
            if !object.der.is_empty() {
                found.push(object);
            }
        }
        Ok(found)
    }

    /// Private key objects on `slot` whose label and id match (all when `None`).
    fn keys(
        &mut self,
        view: &SlotView,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<KeyObject>, Failure> {
        let name = view.name();
        let session = self
            .state
            .session(view.slot)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let template = search_template(vec![Attribute::Class(ObjectClass::PRIVATE_KEY)], label, id);
        let handles = session
            .find_objects(&template)
            .map_err(|e| pkcs11_error(&name, &e))?;
        let mut found = Vec::with_capacity(handles.len());
        for handle in handles {
            // One attribute a time: a token refusing one (a sensitive or unknown
            // attribute) must not hide the others.
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
                KeyKind::Rsa => {
                    bytes(AttributeType::Modulus).zip(bytes(AttributeType::PublicExponent))
                }
                _ => None,
            };
            let ec_params = match kind {
                KeyKind::Ec => bytes(AttributeType::EcParams),
                _ => None,
            };
            found.push(KeyObject {
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
            });
        }
        Ok(found)
    }

    /// The key's public key from the token: the RSA modulus and exponent of the private
    /// key, or the EC point of the public-key object with the same `CKA_ID`.
    fn public_key(&mut self, view: &SlotView, key: &KeyObject) -> Option<PublicKey> {
        match key.kind {
            KeyKind::Rsa => {
                let (n, e) = key.rsa.as_ref()?;
                rsa_public_key(n, e)
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
    fn key_matches(
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
    fn probe(
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

    /// The signing mechanisms the token offers, asked one by one (listing them all makes
    /// the crate log every mechanism it has no name for).
    fn mechanisms(&mut self, view: &SlotView) -> Mechanisms {
        let ctx = self.state.ctx().clone();
        let mut answered = false;
        let mut offers = |kind: MechanismType| match ctx.get_mechanism_info(view.slot, kind) {
            Ok(info) => {
                answered = true;
                info.sign()
            }
            Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {
                answered = true;
                false
            }
            Err(_) => false,
        };
        let mut found = Mechanisms {
            known: false,
            rsa_pkcs: offers(MechanismType::RSA_PKCS),
            sha_rsa: [
                offers(MechanismType::SHA256_RSA_PKCS),
                offers(MechanismType::SHA384_RSA_PKCS),
                offers(MechanismType::SHA512_RSA_PKCS),
            ],
            ecdsa: offers(MechanismType::ECDSA),
            ecdsa_sha: [
                offers(MechanismType::ECDSA_SHA256),
                offers(MechanismType::ECDSA_SHA384),
                offers(MechanismType::ECDSA_SHA512),
            ],
        };
        found.known = answered;
        found
    }

    fn token_key(
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

    fn find(
        &mut self,
        file_certificates: Option<(&[Certificate], &str)>,
        need_certificate: bool,
        now: OffsetDateTime,
    ) -> Result<Found, Failure> {
        let spec = self.spec;
        if let Some(uri) = &spec.certificate
            && file_certificates.is_none()
        {
            return self.find_from_certificate(uri);
        }
        let Some(key_uri) = &spec.private_key else {
            return Err(IdentityError::new(
                "no --private-key",
                "was given for a certificate file",
                "give the key's pkcs11: URI with --private-key",
            )
            .into());
        };
        refuse_type(key_uri, ObjectType::PrivateKey, "--private-key")?;
        let view = self.one_slot(key_uri, "--private-key", None)?;
        self.login(&view)?;
        let keys = self.keys(&view, key_uri.object.as_deref(), key_uri.id.as_deref())?;
        let mechanisms = self.mechanisms(&view);
        if let Some((certificates, path)) = file_certificates {
            return self.key_for_file(&view, key_uri, keys, certificates, path, mechanisms);
        }
        let key = self.single_key(&view, key_uri, keys)?;
        self.certificate_from_key(&view, key, need_certificate, now, mechanisms)
    }

    /// The one token `uri` names; `prefer` wins when several match and it is among them.
    fn one_slot(
        &mut self,
        uri: &Pkcs11Uri,
        flag: &str,
        prefer: Option<&SlotView>,
    ) -> Result<SlotView, Failure> {
        let slots = self.slots(uri)?;
        if let Some(prefer) = prefer
            && slots.iter().any(|s| s.slot == prefer.slot)
        {
            return Ok(prefer.clone());
        }
        match slots.len() {
            0 => Err(self.no_token(uri, flag)),
            1 => Ok(slots.into_iter().next().expect("one slot")),
            n => {
                let names: Vec<String> = slots.iter().map(SlotView::name).collect();
                Err(IdentityError::new(
                    format!("{flag} {uri}"),
                    format!("matches {n} tokens ({})", names.join(", ")),
                    "add token= or serial= to the URI to choose one",
                )
                .into())
            }
        }
    }

    /// Mode 1: the certificate on the token, then its key.
    fn find_from_certificate(&mut self, uri: &Pkcs11Uri) -> Result<Found, Failure> {
        refuse_type(uri, ObjectType::Certificate, "--certificate")?;
        let slots = self.slots(uri)?;
        if slots.is_empty() {
            return Err(self.no_token(uri, "--certificate"));
        }
        let mut matches: Vec<(SlotView, CertObject)> = Vec::new();
        for view in &slots {
            for cert in self.certificates(view, uri.object.as_deref(), uri.id.as_deref())? {
                matches.push((view.clone(), cert));
            }
        }
        if matches.is_empty() && slots.len() == 1 {
            // Not public: look again logged in.
            self.login(&slots[0])?;
            for cert in self.certificates(&slots[0], uri.object.as_deref(), uri.id.as_deref())? {
                matches.push((slots[0].clone(), cert));
            }
        }
        let (view, object) = match matches.len() {
            0 => {
                let tokens: Vec<String> = slots.iter().map(SlotView::name).collect();
                return Err(Failure {
                    error: IdentityError::new(
                        format!("--certificate {uri}"),
                        format!("matches no certificate on {}", tokens.join(", ")),
                        format!(
                            "check object= and id= (id is the percent-encoded CKA_ID, such as id=%01); list them with: read-certificate-data --certificate '{}'",
                            slots[0].uri().format()
                        ),
                    ),
                    retry: true,
                });
            }
            1 => matches.pop().expect("one match"),
            n => {
                let names: Vec<String> =
                    matches.iter().map(|(v, c)| c.describe(&v.label)).collect();
                return Err(IdentityError::new(
                    format!("--certificate {uri}"),
                    format!("matches {n} certificates ({})", names.join(", ")),
                    "add object= or id= to the URI to choose one",
                )
                .into());
            }
        };
        let input = object.describe(&view.label);
        let certificate = Certificate::from_der(&object.der).map_err(|e| {
            IdentityError::new(
                &input,
                format!("cannot be used: {e}"),
                "store an X.509 certificate with an RSA or EC P-256/P-384/P-521 key",
            )
        })?;
        let public = certificate.public_key().clone();

        // The key: on the certificate's token unless the key URI names another.
        let explicit = self.spec.private_key.clone();
        let key_view = match &explicit {
            Some(key_uri) => {
                refuse_type(key_uri, ObjectType::PrivateKey, "--private-key")?;
                self.one_slot(key_uri, "--private-key", Some(&view))?
            }
            None => view.clone(),
        };
        self.login(&key_view)?;
        let mechanisms = self.mechanisms(&key_view);
        let mut searches: Vec<(Option<String>, Option<Vec<u8>>)> = Vec::new();
        match &explicit {
            Some(key_uri) => searches.push((key_uri.object.clone(), key_uri.id.clone())),
            None => {
                if !uri.names_no_object() {
                    searches.push((uri.object.clone(), uri.id.clone()));
                }
                if !object.id.is_empty() {
                    searches.push((None, Some(object.id.clone())));
                }
                if !object.label.is_empty() {
                    searches.push((Some(object.label.clone()), None));
                }
                if uri.names_no_object() {
                    searches.push((None, None));
                }
            }
        }
        let mut probe_errors = Vec::new();
        let mut seen_any = false;
        for (label, id) in searches {
            let keys = self.keys(&key_view, label.as_deref(), id.as_deref())?;
            seen_any |= !keys.is_empty();
            for key in keys {
                if self.key_matches(&key_view, &key, &public, &mechanisms, &mut probe_errors) {
                    let issuers = self.issuers(&view, &certificate)?;
                    let key = self.token_key(&key_view, key, public, mechanisms);
                    return Ok(Found {
                        certificate: Some(FoundCertificate {
                            certificate,
                            input,
                            issuers,
                        }),
                        key,
                    });
                }
            }
        }
        let key_input = match &explicit {
            Some(key_uri) => format!("--private-key {key_uri}"),
            None => format!("--certificate {uri}"),
        };
        let problem = match (seen_any, probe_errors.first()) {
            (_, Some(e)) => {
                format!("gives no usable key for {input}: signing a probe failed ({e})")
            }
            (true, None) => format!("matches no private key that belongs to {input}"),
            (false, None) => format!("matches no private key on {}", key_view.name()),
        };
        Err(Failure {
            error: IdentityError::new(
                key_input,
                problem,
                "store the certificate's key on the token with the certificate's CKA_ID, or give its URI with --private-key",
            ),
            retry: !seen_any,
        })
    }

    /// Mode 2: a certificate file and a key URI; the key must match one certificate of
    /// the file (the first one that any key matches is the leaf).
    fn key_for_file(
        &mut self,
        view: &SlotView,
        key_uri: &Pkcs11Uri,
        keys: Vec<KeyObject>,
        certificates: &[Certificate],
        path: &str,
        mechanisms: Mechanisms,
    ) -> Result<Found, Failure> {
        if keys.is_empty() {
            return Err(Failure {
                error: IdentityError::new(
                    format!("--private-key {key_uri}"),
                    format!("matches no private key on {}", view.name()),
                    "check object= and id= in the URI (id is the percent-encoded CKA_ID, such as id=%01)",
                ),
                retry: true,
            });
        }
        let mut probe_errors = Vec::new();
        for certificate in certificates {
            let public = certificate.public_key();
            for key in &keys {
                if self.key_matches(view, key, public, &mechanisms, &mut probe_errors) {
                    let key = self.token_key(view, key.clone(), public.clone(), mechanisms);
                    return Ok(Found {
                        certificate: Some(FoundCertificate {
                            certificate: certificate.clone(),
                            input: format!("certificate {path}"),
                            issuers: Vec::new(),
                        }),
                        key,
                    });
                }
            }
        }
        let what = match keys.as_slice() {
            [one] => one.describe(&view.label),
            many => format!("none of the {} private keys it matches", many.len()),
        };
        let problem = match probe_errors.first() {
            Some(e) => format!("gives {what}, and signing a probe failed ({e})"),
            None => format!(
                "gives {what}, which does not match the certificate {} in {path}",
                certificates
                    .first()
                    .map(Certificate::describe)
                    .unwrap_or_default()
            ),
        };
        Err(IdentityError::new(
            format!("--private-key {key_uri}"),
            problem,
            "give the key and the certificate that were issued together",
        )
        .into())
    }

    /// The one key of `keys`, or an error naming all of them.
    fn single_key(
        &mut self,
        view: &SlotView,
        key_uri: &Pkcs11Uri,
        mut keys: Vec<KeyObject>,
    ) -> Result<KeyObject, Failure> {
        match keys.len() {
            0 => Err(Failure {
                error: IdentityError::new(
                    format!("--private-key {key_uri}"),
                    format!("matches no private key on {}", view.name()),
                    "check object= and id= in the URI (id is the percent-encoded CKA_ID, such as id=%01)",
                ),
                retry: true,
            }),
            1 => Ok(keys.pop().expect("one key")),
            n => {
                let names: Vec<String> =
                    keys.iter().map(|k| object_name(&k.label, &k.id)).collect();
                Err(IdentityError::new(
                    format!("--private-key {key_uri}"),
                    format!(
                        "matches {n} private keys on {} ({})",
                        view.name(),
                        names.join(", ")
                    ),
                    "add object= or id= to the URI to choose one",
                )
                .into())
            }
        }
    }

    /// Mode 3: a key URI alone; its certificate is looked for on the same token (by the
    /// key's `CKA_ID` first, then among all), and must be there if `need_certificate`.
    fn certificate_from_key(
        &mut self,
        view: &SlotView,
        key: KeyObject,
        need_certificate: bool,
        now: OffsetDateTime,
        mechanisms: Mechanisms,
    ) -> Result<Found, Failure> {
        let own = self.public_key(view, &key);
        let mut candidates: Vec<(CertObject, Certificate)> = Vec::new();
        let by_id = if key.id.is_empty() {
            Vec::new()
        } else {
            self.certificates(view, None, Some(&key.id))?
        };
        for pass in [by_id, self.certificates(view, None, None)?] {
            let parsed: Vec<(CertObject, Certificate)> = pass
                .into_iter()
                .filter_map(|o| Certificate::from_der(&o.der).ok().map(|c| (o, c)))
                .collect();
            let matching: Vec<(CertObject, Certificate)> = match &own {
                Some(public) => parsed
                    .into_iter()
                    .filter(|(_, c)| c.public_key() == public)
                    .collect(),
                None => {
                    let publics: Vec<PublicKey> =
                        parsed.iter().map(|(_, c)| c.public_key().clone()).collect();
                    if publics.is_empty() {
                        Vec::new()
                    } else {
                        // One probe, checked against each certificate's key.
                        let probe = self.probe(view, &key, &mechanisms, &publics).ok().flatten();
                        match probe {
                            Some(i) => {
                                let want = publics[i].clone();
                                parsed
                                    .into_iter()
                                    .filter(|(_, c)| *c.public_key() == want)
                                    .collect()
                            }
                            None => Vec::new(),
                        }
                    }
                }
            };
            if !matching.is_empty() {
                candidates = matching;
                break;
            }
        }
        // Several certificates for one key (a renewal kept beside the old one): the one
        // valid now that expires last.
        candidates.sort_by_key(|(_, c)| {
            let valid = c.not_before() <= now && now <= c.not_after();
            (valid, c.not_after())
        });
        let chosen = candidates.pop();
        let public = match (&chosen, own) {
            (Some((_, c)), _) => c.public_key().clone(),
            (None, Some(public)) if !need_certificate => public,
            (None, _) => {
                let what = key.describe(&view.label);
                let problem = if need_certificate {
                    "has no matching certificate on the token".to_owned()
                } else {
                    "has neither a certificate nor a public-key object on the token to tell its public key".to_owned()
                };
                return Err(IdentityError::new(
                    what,
                    problem,
                    "store the certificate on the token (with the key's CKA_ID), or give it with --certificate FILE",
                )
                .into());
            }
        };
        let certificate = match chosen {
            Some((object, certificate)) => {
                let issuers = self.issuers(view, &certificate)?;
                Some(FoundCertificate {
                    certificate,
                    input: object.describe(&view.label),
                    issuers,
                })
            }
            None => None,
        };
        let key = self.token_key(view, key, public, mechanisms);
        Ok(Found { certificate, key })
    }

    /// The certificates on the token that really issued `leaf` (their key verifies its
    /// signature), then their issuers, up to but not including a self-signed root: the
    /// chain to send. Unrelated certificates on the token are left out.
    fn issuers(
        &mut self,
        view: &SlotView,
        leaf: &Certificate,
    ) -> Result<Vec<Certificate>, Failure> {
        let pool: Vec<Certificate> = self
            .certificates(view, None, None)?
            .into_iter()
            .filter_map(|o| Certificate::from_der(&o.der).ok())
            .collect();
        let mut chain: Vec<Certificate> = Vec::new();
        let mut current = leaf.clone();
        while chain.len() <= crate::identity::MAX_CHAIN {
            let Some(issuer) = pool
                .iter()
                .find(|c| *c != &current && !chain.contains(c) && current.is_issued_by(c))
            else {
                break;
            };
            if issuer.is_self_signed() {
                break;
            }
            chain.push(issuer.clone());
            current = issuer.clone();
        }
        Ok(chain)
    }

    /// `read-certificate-data`: every matching certificate on every matching token.
    fn list(&mut self) -> Result<Vec<Listed>, Failure> {
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

fn refuse_type(uri: &Pkcs11Uri, want: ObjectType, flag: &str) -> Result<(), Failure> {
    match uri.object_type {
        Some(kind) if kind != want => Err(IdentityError::new(
            format!("{flag} {uri}"),
            format!(
                "has type={}, but {flag} needs type={}",
                kind.as_str(),
                want.as_str()
            ),
            format!("write type={} or leave type out", want.as_str()),
        )
        .into()),
        _ => Ok(()),
    }
}

/// A PIN not sent again because the token refused it before.
fn refused_again(name: &str, pin: &Pin, which: &str) -> Failure {
    Failure {
        error: IdentityError::new(
            name,
            format!(
                "refused the {which} PIN from {} as incorrect before; it is not sent again, since each wrong attempt counts towards locking the token",
                pin.origin
            ),
            "correct the PIN there; the corrected PIN is used at the next attempt",
        ),
        retry: false,
    }
}

/// A wrong, locked or refused PIN, in words.
fn login_failure(name: &str, pin: Option<&Pin>, which: &str, error: &CkError) -> Failure {
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
    Failure {
        error: IdentityError::new(name, problem, fix),
        retry: false,
    }
}

/// The signing mechanisms a token offers.
#[derive(Clone, Copy, Debug)]
struct Mechanisms {
    /// The token answered; when it did not, every mechanism is tried (a refusal then
    /// shows as `CKR_MECHANISM_INVALID`).
    known: bool,
    rsa_pkcs: bool,
    /// CKM_SHA256/384/512_RSA_PKCS.
    sha_rsa: [bool; 3],
    ecdsa: bool,
    /// CKM_ECDSA_SHA256/384/512.
    ecdsa_sha: [bool; 3],
}

impl Mechanisms {
    fn offers(&self, listed: bool) -> bool {
        !self.known || listed
    }
}

fn digest_name(digest: Digest) -> &'static str {
    match digest {
        Digest::Sha256 => "SHA256",
        Digest::Sha384 => "SHA384",
        Digest::Sha512 => "SHA512",
    }
}

fn digest_index(digest: Digest) -> usize {
    match digest {
        Digest::Sha256 => 0,
        Digest::Sha384 => 1,
        Digest::Sha512 => 2,
    }
}

/// The PKCS#1 v1.5 `DigestInfo` prefix of each digest, for `CKM_RSA_PKCS`.
fn digest_info(digest: Digest) -> &'static [u8] {
    match digest {
        Digest::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        Digest::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        Digest::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// Why signing on the token failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SignFailure(String);

/// One signature with a key object, whatever its kind and `CKA_ALWAYS_AUTHENTICATE`.
struct Signer<'a> {
    module: &'a Module,
    key: &'a KeyObject,
    mechanisms: &'a Mechanisms,
    pins: &'a PinOptions,
    user_uri: Option<&'a Pkcs11Uri>,
    token: &'a str,
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

    fn sign(
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
                Err(e) => Err(login_failure(&name, Some(pin), "context-specific", &e)
                    .error
                    .to_string()),
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

/// An RSA public key from its modulus and exponent bytes.
fn rsa_public_key(n: &[u8], e: &[u8]) -> Option<PublicKey> {
    use der::Encode as _;
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    let encoded = pkcs1::RsaPublicKey {
        modulus: der::asn1::UintRef::new(n).ok()?,
        public_exponent: der::asn1::UintRef::new(e).ok()?,
    }
    .to_der()
    .ok()?;
    rsa::RsaPublicKey::from_pkcs1_der(&encoded)
        .ok()
        .map(PublicKey::Rsa)
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

    #[test]
    fn object_names() {
        assert_eq!(object_name("k", &[1, 0xab]), "\"k\" (id %01%AB)");
        assert_eq!(object_name("", &[2]), "with id %02");
        assert_eq!(object_name("", &[]), "without label or id");
    }

    #[test]
    fn curves_by_oid() {
        assert_eq!(
            curve_of(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
            Some("P-384")
        );
        assert_eq!(curve_of(&[0x06, 0x01, 0x00]), None);
    }
}
