//! `credential-process`: one CreateSession (and the roles of the chain after it), printed
//! in the `credential_process` format that the AWS CLI and SDKs read from `~/.aws/config`.

use crate::cli::CredentialArgs;
use crate::config::{self, Inputs};
use crate::error::Result;
use crate::identity::Identity;
use crate::refresh::SessionSource;

pub fn run(args: &CredentialArgs, inputs: &Inputs) -> Result<()> {
    let settings = config::credential_process(args, inputs)?;
    tracing::debug!(
        endpoint = %settings.client.endpoint,
        from = %settings.endpoint_source,
        region = %settings.params.region,
        "endpoint resolved"
    );
    if settings.client.insecure_skip_verify {
        tracing::warn!("--no-verify-ssl: the endpoint's TLS certificate is not verified");
    }
    let identity = Identity::load(&settings.identity, inputs.clock.now())?;
    tracing::debug!(
        leaf = %identity.leaf().describe(),
        chain = identity.chain().len(),
        algorithm = %identity.algorithm(),
        "identity loaded"
    );
    let source = SessionSource::new(&settings)?;
    let credentials = super::runtime()?.block_on(source.credentials(&identity))?;
    tracing::debug!(access_key_id = %credentials.access_key_id, expiration = %credentials.expiration_text, "credentials received");
    super::print(&credentials.process_json())
}
