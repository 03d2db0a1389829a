//! The chain on the token: the certificates that issued a leaf found there.

use super::lookup::Lookup;
use super::slots::SlotView;
use crate::identity_error::IdentityError;
use crate::x509::{Certificate, MAX_CHAIN};

impl Lookup<'_> {
    /// The certificates on the token that really issued `leaf` (their key verifies its
    /// signature), then their issuers, up to but not including a self-signed root: the
    /// chain to send. Unrelated certificates on the token are left out.
    pub(super) fn issuers(
        &mut self,
        view: &SlotView,
        leaf: &Certificate,
    ) -> Result<Vec<Certificate>, IdentityError> {
        let pool: Vec<Certificate> = self
            .certificates(view, None, None)?
            .into_iter()
            .filter_map(|o| Certificate::from_der(&o.der).ok())
            .collect();
        let mut chain: Vec<Certificate> = Vec::new();
        let mut current = leaf.clone();
        while chain.len() <= MAX_CHAIN {
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
}
