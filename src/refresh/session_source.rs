//! The source of credentials that credential-process, serve and update run: the identity,
//! then CreateSession, then each role of the chain in order (STS AssumeRole), so that a
//! refresh always renews the whole chain from the certificate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use time::OffsetDateTime;

use super::source::{CredentialSource, FetchError, Fetched};
use crate::config::SessionSettings;
use crate::credentials::Credentials;
use crate::identity::Identity;
use crate::rolesanywhere::{Client, ClientError};
use crate::sts::{ChainSettings, StsClient};

/// The production source: re-reads the certificate and key files (so a renewed
/// certificate is used without a restart), or looks the objects up again on their token
/// (re-opening the session if the token went away), calls CreateSession, and assumes the
/// roles of the chain.
pub struct SessionSource {
    pub identity: crate::identity::IdentitySpec,
    pub params: crate::rolesanywhere::SessionParams,
    pub client: Client,
    /// The roles to assume after CreateSession, with their STS client.
    pub chain: Option<(ChainSettings, StsClient)>,
}

impl SessionSource {
    /// The source for one role's settings: its CreateSession client and, for a chain, its
    /// STS client.
    pub fn new(settings: &SessionSettings) -> Result<Self, ClientError> {
        let client = Client::new(settings.client.clone())?;
        let chain = match &settings.chain {
            Some(chain) => {
                tracing::debug!(endpoint = %chain.client.endpoint, region = %chain.region, hops = chain.hops.len(), "role chain: STS endpoint resolved");
                let sts = StsClient::new(chain.client.clone(), chain.region.clone())?;
                Some((chain.clone(), sts))
            }
            None => None,
        };
        Ok(Self {
            identity: settings.identity.clone(),
            params: settings.params.clone(),
            client,
            chain,
        })
    }

    /// CreateSession with `identity`, then each hop of the chain with the credentials of
    /// the one before: the credentials to hand out are the last ones.
    pub async fn credentials(&self, identity: &Identity) -> Result<Credentials, FetchError> {
        let mut credentials = self
            .client
            .create_session(identity, &self.params)
            .await
            .map_err(|e| FetchError::CreateSession(Arc::new(e)))?;
        let Some((chain, sts)) = &self.chain else {
            return Ok(credentials);
        };
        for hop in &chain.hops {
            let assumed = sts
                .assume_role(&credentials, hop, chain.duration_seconds)
                .await
                .map_err(|e| FetchError::AssumeRole(Arc::new(e)))?;
            tracing::debug!(
                role = %hop.role_arn,
                assumed = assumed.assumed_role_arn.as_deref().unwrap_or("-"),
                source_identity = assumed.source_identity.as_deref().unwrap_or("-"),
                expiration = %assumed.credentials.expiration_text,
                "role assumed"
            );
            credentials = assumed.credentials;
        }
        Ok(credentials)
    }
}

impl CredentialSource for SessionSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
        Box::pin(async move {
            // Off the async threads: a key on a token may take a while to find and log in
            // to (a smart card, a network HSM).
            let spec = self.identity.clone();
            let identity = tokio::task::spawn_blocking(move || {
                Identity::load(&spec, OffsetDateTime::now_utc())
            })
            .await
            .map_err(|e| FetchError::Task(e.to_string()))?
            .map_err(|e| FetchError::Identity(Arc::new(e)))?;
            let credentials = self.credentials(&identity).await?;
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
