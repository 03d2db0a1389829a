//! The client: one HTTP connection pool per endpoint, the attempts of a call, and what a
//! failed transport means for the user.

use std::fmt;

use super::answer::{parse_credentials, parse_error};
use super::error::{ClientError, CreateSessionError};
use super::request;
use super::retry::{self, Failure};
use super::settings::{ClientConfig, SessionParams};
use crate::credentials::Credentials;
use crate::identity::Identity;
use crate::sigv4x509;

/// The CreateSession client. Cheap to clone; keeps its connection pool across calls.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    config: ClientConfig,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.base.as_str())
            .finish()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let (http, base) = http_client(&config)?;
        Ok(Self { http, base, config })
    }

    /// The URL requests go to, without the query.
    pub fn sessions_url(&self) -> String {
        let mut url = self.base.clone();
        let path = format!(
            "{}{}",
            url.path().trim_end_matches('/'),
            sigv4x509::SESSIONS_PATH
        );
        url.set_path(&path);
        url.set_query(None);
        url.to_string()
    }

    /// Calls CreateSession, retrying transient failures.
    pub async fn create_session(
        &self,
        identity: &Identity,
        params: &SessionParams,
    ) -> Result<Credentials, CreateSessionError> {
        let max = self.config.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let failure = match self.attempt(identity, params, attempt).await {
                Ok(creds) => return Ok(creds),
                Err(Failure { error, .. }) if !error.is_transient() || attempt >= max => {
                    return Err(error);
                }
                Err(failure) => failure,
            };
            let delay = retry::delay(attempt, failure.retry_after);
            tracing::debug!(attempt, error = %failure.error, delay_ms = delay.as_millis() as u64, "CreateSession attempt failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        identity: &Identity,
        params: &SessionParams,
        attempt: u32,
    ) -> Result<Credentials, Failure> {
        let signed =
            request::sign(identity, params, &self.base, &self.sessions_url(), attempt).await?;
        let mut builder = self.http.post(&signed.url);
        for (name, value) in &signed.headers {
            builder = builder.header(*name, value);
        }
        tracing::debug!(attempt, url = %signed.url, serial = identity.leaf().serial_decimal(), chain = signed.chain_len, "sending CreateSession");
        let response = builder
            .body(signed.body)
            .send()
            .await
            .map_err(|e| self.transport_failure(e, attempt))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let answer = capped_body(response)
            .await
            .map_err(|e| self.transport_failure(e, attempt))?;
        let bytes = &answer.body;
        tracing::debug!(
            attempt,
            status,
            bytes = bytes.len(),
            "CreateSession answered"
        );
        if (200..300).contains(&status) {
            if answer.cut {
                return Err(CreateSessionError::InvalidResponse {
                    status,
                    problem: too_long(),
                }
                .into());
            }
            return Ok(parse_credentials(status, bytes, &params.role_arn)?);
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (error_type, message) = parse_error(header("x-amzn-errortype"), bytes, status);
        let retry_after = retry::retry_after(header("retry-after").as_deref());
        Err(Failure {
            retry_after,
            error: CreateSessionError::Service {
                status,
                error_type,
                message,
                request_id: header("x-amzn-requestid"),
                attempts: attempt,
                retry_after,
            },
        })
    }

    fn transport_failure(&self, e: reqwest::Error, attempt: u32) -> Failure {
        let url = self.sessions_url();
        if let Some(tls) = find_tls_error(&e) {
            let hint = if matches!(tls, rustls::Error::InvalidCertificate(_)) {
                "if the endpoint uses a private CA, give its certificate with --ca-bundle FILE or AWS_CA_BUNDLE"
            } else {
                "check that the endpoint speaks TLS 1.2 or later"
            };
            return Failure::of(CreateSessionError::Tls {
                url,
                cause: tls.to_string(),
                hint,
            });
        }
        Failure::of(if e.is_connect() && e.is_timeout() {
            CreateSessionError::ConnectTimeout {
                url,
                seconds: self.config.connect_timeout.as_secs(),
                attempts: attempt,
            }
        } else if e.is_timeout() {
            CreateSessionError::Timeout {
                url,
                seconds: self.config.attempt_timeout.as_secs(),
                attempts: attempt,
            }
        } else {
            CreateSessionError::Connect {
                url,
                cause: root_cause(&e),
                attempts: attempt,
            }
        })
    }
}

/// The most bytes of an answer that are read. CreateSession's and STS's answers are a few
/// kilobytes; an endpoint (or something posing as one) that sends more is cut off there
/// rather than allowed to fill the memory of every host that calls it.
pub const MAX_ANSWER: usize = 256 * 1024;

/// An answer's body, at most [`MAX_ANSWER`] bytes of it.
pub struct CappedBody {
    pub body: Vec<u8>,
    /// Whether there was more (the rest is not read; the connection is dropped).
    pub cut: bool,
}

/// Reads the body of `response` up to [`MAX_ANSWER`] bytes. An error answer that was cut
/// still says what it can from its start; a success that was cut is not a success.
pub async fn capped_body(mut response: reqwest::Response) -> Result<CappedBody, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(CappedBody { body, cut: true });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(CappedBody { body, cut: false })
}

/// What a 2xx answer longer than [`MAX_ANSWER`] is.
pub fn too_long() -> String {
    format!("its body is longer than {} KiB", MAX_ANSWER / 1024)
}

/// The HTTP client for `config`'s endpoint, and that endpoint parsed: TLS with the
/// configured trust, the environment's proxy (none for a loopback endpoint), the timeouts,
/// no redirects. CreateSession and the STS calls of a role chain share these settings.
pub fn http_client(config: &ClientConfig) -> Result<(reqwest::Client, reqwest::Url), ClientError> {
    let base = reqwest::Url::parse(&config.endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| ClientError::Endpoint(config.endpoint.clone()))?;
    let tls = super::tls::config(config)?;
    // Only the proxy the settings name: reqwest alone would also read ALL_PROXY, which
    // the official helper ignores.
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(proxy) = super::proxy::for_endpoint(&base, &config.proxy)? {
        builder = builder.proxy(proxy);
    }
    let http = builder
        .use_preconfigured_tls(tls)
        .connect_timeout(config.connect_timeout)
        .timeout(config.attempt_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rolesanywhere-helper/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ClientError::Http)?;
    Ok((http, base))
}

/// The rustls error behind a request failure, if any. It sits inside nested `io::Error`s,
/// whose `source()` skips the wrapped error, so those are opened explicitly.
pub fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            return find_tls_error(inner);
        }
        current = err.source();
    }
    None
}

pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    // rustls words a peer that hung up as a missing close_notify and adds a documentation
    // link; the user needs to know only that no answer came.
    if text.contains("close_notify") {
        return "the connection was closed without an answer".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sessions_url_keeps_the_endpoint_path_and_drops_its_query() {
        let client = |endpoint: &str| Client::new(ClientConfig::new(endpoint)).unwrap();
        assert_eq!(
            client("https://rolesanywhere.us-east-1.amazonaws.com").sessions_url(),
            "https://rolesanywhere.us-east-1.amazonaws.com/sessions"
        );
        assert_eq!(
            client("http://127.0.0.1:9000/prefix/?x=1").sessions_url(),
            "http://127.0.0.1:9000/prefix/sessions"
        );
        let error = Client::new(ClientConfig::new("ftp://example.com")).unwrap_err();
        assert!(matches!(error, ClientError::Endpoint(_)), "{error}");
    }

    #[test]
    fn a_tls_error_is_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = std::io::Error::other(std::io::Error::other(tls));
        assert!(matches!(
            find_tls_error(&wrapped),
            Some(rustls::Error::InvalidCertificate(_))
        ));
        assert!(find_tls_error(&std::io::Error::other("plain")).is_none());
    }
}
