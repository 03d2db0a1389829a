//! Building one CreateSession request: the query and JSON body, the SigV4-X509 headers,
//! and the signature by the identity's key. Each attempt builds its own, with its own
//! `X-Amz-Date`.

use serde::Serialize;
use time::OffsetDateTime;

use super::error::CreateSessionError;
use super::settings::SessionParams;
use crate::identity::Identity;
use crate::sigv4x509::{self, SessionRequest};
use crate::x509::SignatureError;

/// A signed request, ready to send.
pub(super) struct Signed {
    /// The sessions URL with the canonical query.
    pub url: String,
    /// `Authorization`, then every header the signature covers except `Host`, which the
    /// HTTP client sets from the same URL.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// How many certificates `X-Amz-X509-Chain` holds (for `--debug`).
    pub chain_len: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody<'a> {
    duration_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_session_name: Option<&'a str>,
}

/// Builds and signs the request for `params` to `sessions_url` (the URL without query)
/// on `base` (the endpoint, for `Host`). Signing runs off the async threads.
pub(super) async fn sign(
    identity: &Identity,
    params: &SessionParams,
    base: &reqwest::Url,
    sessions_url: &str,
    attempt: u32,
) -> Result<Signed, CreateSessionError> {
    let query = [
        ("profileArn", params.profile_arn.as_str()),
        ("roleArn", params.role_arn.as_str()),
        ("trustAnchorArn", params.trust_anchor_arn.as_str()),
    ];
    let body = serde_json::to_vec(&RequestBody {
        duration_seconds: params.duration_seconds,
        role_session_name: params.role_session_name.as_deref(),
    })
    .unwrap_or_default();
    let host = host_header(base);
    let amz_date = sigv4x509::amz_date(OffsetDateTime::now_utc());
    let chain: Vec<Vec<u8>> = identity.chain().iter().map(|c| c.der().to_vec()).collect();
    let request = SessionRequest {
        host: &host,
        region: &params.region,
        amz_date: &amz_date,
        query: &query,
        body: &body,
        leaf_der: identity.leaf().der(),
        chain_der: &chain,
    };
    let algorithm = identity.algorithm();
    let prepared = request.prepare(algorithm);
    tracing::debug!(attempt, canonical_request = %prepared.canonical_request.text, "canonical request");
    tracing::debug!(string_to_sign = %prepared.string_to_sign, "string to sign");
    let signature = identity
        .sign_off_thread(prepared.string_to_sign.as_bytes())
        .await
        .map_err(|e| match e {
            SignatureError::Unavailable(_) => CreateSessionError::SignUnavailable(e.to_string()),
            other => CreateSessionError::Sign(other.to_string()),
        })?;
    let authorization =
        prepared.authorization(algorithm, identity.leaf().serial_decimal(), &signature);
    let mut headers = Vec::with_capacity(prepared.headers.len());
    headers.push(("authorization", authorization));
    // reqwest sets Host itself, from the same URL the signature covers.
    headers.extend(
        prepared
            .headers
            .into_iter()
            .filter(|(name, _)| *name != "host"),
    );
    Ok(Signed {
        url: format!("{sessions_url}?{}", sigv4x509::canonical_query(query)),
        headers,
        body,
        chain_len: chain.len(),
    })
}

/// `Host` as sent: the host, with the port only when it is not the scheme's default.
fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_carries_only_a_port_that_is_not_the_default() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(host_header(&url("https://example.com/")), "example.com");
        assert_eq!(host_header(&url("https://example.com:443/")), "example.com");
        assert_eq!(
            host_header(&url("https://127.0.0.1:8443/x")),
            "127.0.0.1:8443"
        );
        assert_eq!(host_header(&url("http://[::1]:80/")), "[::1]");
    }
}
