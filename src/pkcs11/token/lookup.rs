//! A lookup on a module: the module, its locked state and what to look for, with one
//! retry after re-initialising the module when a changed token may explain a failure.

use std::sync::Arc;

use super::errors::{module_failure, stale_view_may_explain};
use super::spec::TokenSpec;
use crate::identity_error::IdentityError;
use crate::pkcs11::module::{Module, State};

/// What every step of a lookup works with. The state stays locked for the whole lookup,
/// so that no other thread uses the sessions meanwhile.
pub(super) struct Lookup<'a> {
    pub(super) module: &'a Arc<Module>,
    pub(super) state: &'a mut State,
    pub(super) spec: &'a TokenSpec,
}

/// Runs `lookup` against the module with its lock held; if it fails in a way a changed
/// token explains and the module was in use before, re-initialises the module and tries
/// once more.
pub(super) fn with_module<T>(
    spec: &TokenSpec,
    mut lookup: impl FnMut(&mut Lookup<'_>) -> Result<T, IdentityError>,
) -> Result<T, IdentityError> {
    let module = Module::load(&spec.module).map_err(|e| module_failure(&spec.module, &e))?;
    let mut state = module.lock();
    if state.is_suspect() {
        state
            .reinitialize()
            .map_err(|e| module_failure(&spec.module, &e))?;
    }
    let mut run = |state: &mut State| {
        lookup(&mut Lookup {
            module: &module,
            state,
            spec,
        })
    };
    let outcome = match run(&mut state) {
        Err(error) if stale_view_may_explain(&error) && state.may_be_stale() => {
            tracing::debug!(%error, "token lookup failed; re-initialising the module and retrying");
            state
                .reinitialize()
                .map_err(|e| module_failure(&spec.module, &e))?;
            run(&mut state)
        }
        other => other,
    };
    state.used();
    outcome
}
