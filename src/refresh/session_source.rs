//! The source of credentials that serve and update run: the identity, then CreateSession.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

use super::source::{CredentialSource, FetchError, Fetched};

/// The production source: re-reads the certificate and key files (so a renewed
/// certificate is used without a restart), or looks the objects up again on their token
/// (re-opening the session if the token went away), and calls CreateSession.
pub struct SessionSource {
    pub identity: crate::identity::IdentitySpec,
    pub params: crate::rolesanywhere::SessionParams,
    pub client: crate::rolesanywhere::Client,
}

impl CredentialSource for SessionSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
        Box::pin(async move {
            // Off the async threads: a key on a token may take a while to find and log in
            // to (a smart card, a network HSM).
            let spec = self.identity.clone();
            let identity = tokio::task::spawn_blocking(move || {
                crate::identity::Identity::load(&spec, OffsetDateTime::now_utc())
            })
            .await
            .map_err(|e| FetchError::Task(e.to_string()))?
            .map_err(|e| FetchError::Identity(Arc::new(e)))?;
            let credentials = self
                .client
                .create_session(&identity, &self.params)
                .await
                .map_err(|e| FetchError::CreateSession(Arc::new(e)))?;
            Ok(Fetched {
                credentials,
                serial: identity.leaf().serial_decimal().to_owned(),
                certificate_not_after: Some(identity.leaf().not_after()),
            })
        })
    }

    fn region(&self) -> Option<String> {
        Some(self.params.region.clone())
    }

    fn quota_key(&self) -> String {
        super::source::quota_key_of(&self.params.trust_anchor_arn, &self.params.region)
    }
}
