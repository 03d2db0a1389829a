//! A PKCS#11 module, loaded and initialised once per process and shared by every identity
//! that uses it, with one long-lived session per token.
//!
//! Everything that touches the module goes through one lock, so signatures are serialised
//! and no session is used by two threads at once. When a token changes under the process
//! (removed, re-initialised, its sessions closed), the next lookup [re-initialises]
//! (`State::reinitialize`) the whole module: some modules, SoftHSM among them, only see a
//! re-created token after `C_Finalize` and `C_Initialize`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

/// The module loaded when neither `--pkcs11-lib` nor `module-path` names one: p11-kit's
/// proxy, which offers every module registered with p11-kit, found through the dynamic
/// loader's search path.
pub const DEFAULT_MODULE: &str = "p11-kit-proxy.so";

/// Why a module cannot be used. `Display` reads after the module's name ("cannot be
/// loaded (...)").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// The library cannot be loaded, or is no PKCS#11 module: a wrong path or a module
    /// that is not installed, which stays so until a person acts.
    #[error("{0}")]
    Load(String),
    /// `C_Initialize` failed: the device or the service behind the module (a card
    /// reader daemon, a network HSM) may not be up yet.
    #[error("{0}")]
    Initialize(String),
}

/// A loaded module.
pub struct Module {
    /// The path as given, for messages.
    pub name: String,
    state: Mutex<State>,
    /// `C_Sign` from a function list that every caller shares, if the module has one.
    raw_sign: OnceLock<Option<RawSign>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Module({})", self.name)
    }
}

/// What the lock protects.
pub struct State {
    ctx: Pkcs11,
    /// Bumped by every re-initialisation: object handles of an older generation are void.
    generation: u64,
    /// One session per slot, kept open (and logged in) between uses.
    sessions: HashMap<u64, Session>,
    /// Set when an operation failed in a way that suggests the token went away; the next
    /// lookup then starts with a re-initialisation.
    suspect: bool,
    /// True until the first lookup through this module is over: a failure then is not
    /// cured by re-initialising what was just initialised.
    fresh: bool,
    refused: RefusedPins,
}

/// Keyed digests of the PINs a token refused, so that a daemon does not send the same
/// wrong PIN at every refresh until the token locks. The key is random per process.
struct RefusedPins {
    key: [u8; 32],
    digests: Vec<[u8; 32]>,
}

impl RefusedPins {
    fn new() -> Self {
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&getrandom::u64().unwrap_or_default().to_le_bytes());
        }
        Self {
            key,
            digests: Vec::new(),
        }
    }

    fn contains(&self, which: &str, pin: &str) -> bool {
        self.digest(which, pin)
            .is_some_and(|d| self.digests.contains(&d))
    }

    fn insert(&mut self, which: &str, pin: &str) {
        if let Some(digest) = self.digest(which, pin)
            && !self.digests.contains(&digest)
        {
            self.digests.push(digest);
        }
    }

    fn digest(&self, which: &str, pin: &str) -> Option<[u8; 32]> {
        use hmac::{KeyInit as _, Mac as _};
        let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(&self.key).ok()?;
        mac.update(which.as_bytes());
        mac.update(&[0]);
        mac.update(pin.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }
}

/// Modules loaded so far, by the name they were loaded with.
fn registry() -> &'static Mutex<Vec<Arc<Module>>> {
    static MODULES: OnceLock<Mutex<Vec<Arc<Module>>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(Vec::new()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Module {
    /// The module at `name` (a path, or a file name the dynamic loader finds), loaded and
    /// initialised on first use.
    pub fn load(name: &str) -> Result<Arc<Module>, ModuleError> {
        let mut modules = lock(registry());
        if let Some(module) = modules.iter().find(|m| m.name == name) {
            return Ok(module.clone());
        }
        let ctx = Pkcs11::new(name).map_err(|e| {
            ModuleError::Load(match e {
                CkError::LibraryLoading(e) => format!("cannot be loaded ({e})"),
                other => format!("is not a PKCS#11 module ({})", describe(&other)),
            })
        })?;
        initialize(&ctx).map_err(|e| {
            ModuleError::Initialize(format!("cannot be initialised ({})", describe(&e)))
        })?;
        let module = Arc::new(Module {
            name: name.to_owned(),
            state: Mutex::new(State {
                ctx,
                generation: 0,
                sessions: HashMap::new(),
                suspect: false,
                fresh: true,
                refused: RefusedPins::new(),
            }),
            raw_sign: OnceLock::new(),
        });
        modules.push(module.clone());
        Ok(module)
    }

    /// The module's state, locked.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `C_Sign` of a function list shared by every caller of the module, which lets a
    /// signature follow a context-specific login (the `cryptoki` release in use signs
    /// only with `C_SignInit` and `C_Sign` together, or in several parts). Modules whose
    /// `C_GetFunctionList` hands each caller its own instance (p11-kit's proxy) have none.
    pub fn raw_sign(&self) -> Option<&RawSign> {
        self.raw_sign
            .get_or_init(|| RawSign::load(&self.name))
            .as_ref()
    }
}

impl State {
    pub fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True when a failure now may be cured by re-initialising: the module was in use
    /// before this lookup, or an operation since failed as if the token went away.
    pub fn may_be_stale(&self) -> bool {
        !self.fresh
    }

    pub fn is_suspect(&self) -> bool {
        self.suspect
    }

    /// Marks the end of a lookup.
    pub fn used(&mut self) {
        self.fresh = false;
    }

    /// Notes a failure that suggests the token or session went away.
    pub fn note_failure(&mut self, error: &CkError) {
        if is_loss(error) {
            self.suspect = true;
        }
    }

    /// True when `pin` was refused as incorrect before in this process, for a login of
    /// the kind `which` (the user PIN, or a context-specific one).
    pub fn refused_before(&self, which: &str, pin: &str) -> bool {
        self.refused.contains(which, pin)
    }

    /// Remembers that `pin` was refused as incorrect for a login of the kind `which`.
    pub fn remember_refused(&mut self, which: &str, pin: &str) {
        self.refused.insert(which, pin);
    }

    /// The long-lived session on `slot`, opened if needed.
    pub fn session(&mut self, slot: Slot) -> Result<&Session, CkError> {
        if !self.sessions.contains_key(&slot.id()) {
            let session = self.ctx.open_ro_session(slot)?;
            self.sessions.insert(slot.id(), session);
        }
        self.sessions.get(&slot.id()).ok_or(CkError::Pkcs11(
            RvError::SessionHandleInvalid,
            cryptoki::context::Function::OpenSession,
        ))
    }

    /// The open session on `slot`, if any; never opens one.
    pub fn existing_session(&self, slot: u64) -> Option<&Session> {
        self.sessions.get(&slot)
    }

    /// Closes the session on `slot` (ending any operation left in it).
    pub fn close_session(&mut self, slot: u64) {
        self.sessions.remove(&slot);
    }

    /// Closes every session, finalises the module and initialises it again, so that it
    /// scans its tokens afresh. Handles found before are void afterwards.
    pub fn reinitialize(&mut self) -> Result<(), ModuleError> {
        tracing::info!("re-initialising the PKCS#11 module to find the token again");
        self.sessions.clear();
        let _ = self.ctx.clone().finalize();
        self.generation += 1;
        self.suspect = false;
        initialize(&self.ctx).map_err(|e| {
            ModuleError::Initialize(format!("cannot be initialised again ({})", describe(&e)))
        })
    }
}

/// True for the return values that mean the session, the token or the module's view of
/// it is gone, so that looking everything up again may succeed.
pub fn is_loss(error: &CkError) -> bool {
    matches!(
        error,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::GeneralError,
            _
        )
    )
}

/// `CKR_PIN_INCORRECT` from `C_Login` and the like: the `CKR_` name and the function, in
/// place of the crate's long descriptions.
pub fn describe(error: &CkError) -> String {
    match error {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {}", rv_name(*rv)),
        other => other.to_string(),
    }
}

/// The `CKR_…` name of a return value.
pub fn rv_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut name = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A module's own `C_Sign`, through a function list that all its callers share.
pub struct RawSign {
    /// Keeps the library mapped for as long as the pointer is used.
    _library: cryptoki_sys::Pkcs11,
    sign: unsafe extern "C" fn(
        cryptoki_sys::CK_SESSION_HANDLE,
        *mut cryptoki_sys::CK_BYTE,
        cryptoki_sys::CK_ULONG,
        *mut cryptoki_sys::CK_BYTE,
        *mut cryptoki_sys::CK_ULONG,
    ) -> cryptoki_sys::CK_RV,
}

impl RawSign {
    fn load(name: &str) -> Option<RawSign> {
        // SAFETY: loading the library that `cryptoki` already loaded runs no new
        // initialisers; C_GetFunctionList only writes the list pointer.
        unsafe {
            let library = cryptoki_sys::Pkcs11::new(name).ok()?;
            let get = *library.C_GetFunctionList.as_ref().ok()?;
            let mut first: *mut cryptoki_sys::CK_FUNCTION_LIST = std::ptr::null_mut();
            let mut second: *mut cryptoki_sys::CK_FUNCTION_LIST = std::ptr::null_mut();
            if get(&mut first) != cryptoki_sys::CKR_OK || get(&mut second) != cryptoki_sys::CKR_OK {
                return None;
            }
            // A module that returns a new list per call keeps a separate state (and
            // separate sessions) behind each; only a shared list reaches our sessions.
            if first.is_null() || first != second {
                return None;
            }
            let sign = (*first).C_Sign?;
            Some(RawSign {
                _library: library,
                sign,
            })
        }
    }

    /// `C_Sign` on an operation already started with `C_SignInit` in `session`.
    pub fn sign(&self, session: &Session, data: &[u8]) -> Result<Vec<u8>, CkError> {
        let function = cryptoki::context::Function::Sign;
        let length = cryptoki_sys::CK_ULONG::try_from(data.len())?;
        let mut size: cryptoki_sys::CK_ULONG = 0;
        // SAFETY: the session handle belongs to this module's shared state; the data
        // pointer and length describe `data`; a null output asks for the size.
        let rv = unsafe {
            (self.sign)(
                session.handle(),
                data.as_ptr().cast_mut(),
                length,
                std::ptr::null_mut(),
                &mut size,
            )
        };
        cryptoki::error::Rv::from(rv).into_result(function)?;
        let mut signature = vec![0u8; usize::try_from(size)?];
        // SAFETY: as above, with an output buffer of the size the module asked for.
        let rv = unsafe {
            (self.sign)(
                session.handle(),
                data.as_ptr().cast_mut(),
                length,
                signature.as_mut_ptr(),
                &mut size,
            )
        };
        cryptoki::error::Rv::from(rv).into_result(function)?;
        signature.truncate(usize::try_from(size)?);
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_by_their_ckr_names() {
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            rv_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        let e = CkError::Pkcs11(RvError::DeviceRemoved, cryptoki::context::Function::Sign);
        assert_eq!(describe(&e), "C_Sign returned CKR_DEVICE_REMOVED");
        assert!(is_loss(&e));
        assert!(!is_loss(&CkError::Pkcs11(
            RvError::PinIncorrect,
            cryptoki::context::Function::Login
        )));
    }

    #[test]
    fn refused_pins_are_remembered_per_kind_and_not_in_clear() {
        let mut refused = RefusedPins::new();
        assert!(!refused.contains("user", "1234"));
        refused.insert("user", "1234");
        assert!(refused.contains("user", "1234"));
        assert!(!refused.contains("context", "1234"));
        assert!(!refused.contains("user", "12345"));
        let other = RefusedPins::new();
        assert_ne!(refused.digest("user", "1234"), other.digest("user", "1234"));
    }

    #[test]
    fn a_missing_module_is_reported() {
        let error = Module::load("/nonexistent/libnothing.so").unwrap_err();
        assert!(matches!(error, ModuleError::Load(_)), "{error:?}");
        assert!(
            error.to_string().starts_with("cannot be loaded ("),
            "{error}"
        );
    }
}
