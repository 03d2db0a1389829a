//! `credential-process`: one CreateSession (and the roles of the chain after it), printed
//! in the `credential_process` format that the AWS CLI and SDKs read from `~/.aws/config`;
//! or, with `--daemon-socket`, the same output asked of a running `serve` (see
//! [`super::daemon_client`]).

use crate::cli::{CredentialArgs, CredentialProcessArgs};
use crate::config::{self, Inputs};
use crate::error::Result;
use crate::identity::Identity;
use crate::refresh::SessionSource;

pub fn run(args: &CredentialProcessArgs, inputs: &Inputs) -> Result<()> {
    let Some(client) = config::daemon_client(args)? else {
        return direct(&args.credentials, inputs);
    };
    match super::daemon_client::ask(&client) {
        Ok(answer) => super::print(&answer),
        Err(e) if e.is_not_there() && client.fallback_direct => {
            tracing::debug!(error = %e, "no daemon; making the direct call");
            direct(&args.credentials, inputs)
        }
        Err(e) => Err(e.into()),
    }
}

/// The direct call: the identity, one CreateSession, the output.
fn direct(args: &CredentialArgs, inputs: &Inputs) -> Result<()> {
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
