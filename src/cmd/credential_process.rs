//! `credential-process`: one CreateSession, printed in the `credential_process` format
//! that the AWS CLI and SDKs read from `~/.aws/config`.

use time::OffsetDateTime;

use crate::cli::CredentialArgs;
use crate::config;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::rolesanywhere::Client;

pub fn run(args: &CredentialArgs) -> Result<()> {
    let settings = config::session_settings(args, |k| std::env::var(k).ok())?;
    tracing::debug!(
        endpoint = %settings.client.endpoint,
        from = settings.endpoint_source.describe(),
        region = %settings.params.region,
        "endpoint resolved"
    );
    if settings.client.insecure_skip_verify {
        tracing::warn!("--no-verify-ssl: the endpoint's TLS certificate is not verified");
    }
    let identity = Identity::load(&settings.identity, OffsetDateTime::now_utc())?;
    tracing::debug!(
        leaf = %identity.leaf().describe(),
        chain = identity.chain().len(),
        algorithm = %identity.algorithm(),
        "identity loaded"
    );
    let client = Client::new(settings.client.clone()).map_err(|e| Error::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    let credentials = runtime
        .block_on(client.create_session(&identity, &settings.params))
        .map_err(|e| Error::Other(e.to_string()))?;
    tracing::debug!(access_key_id = %credentials.access_key_id, expiration = %credentials.expiration_text, "credentials received");
    super::print(&credentials.process_json())
}
