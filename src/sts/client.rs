//! The AssumeRole client: one hop of a role chain, signed with the previous hop's
//! credentials, over the same HTTPS stack (trust, proxy, timeouts) as CreateSession.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::answer::{Assumed, parse_assumed, parse_error};
use super::error::AssumeRoleError;
use super::settings::Hop;
use super::sign::{SigningInput, form_encode, sign};
use crate::credentials::Credentials;
use crate::rolesanywhere::{
    ClientConfig, ClientError, capped_body, find_tls_error, http_client, root_cause, too_long,
};

/// The ceiling of the first wait between attempts; it doubles with each failed attempt.
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The ceiling of any wait.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The STS client. Cheap to clone; keeps its connection pool across calls.
#[derive(Clone)]
pub struct StsClient {
    http: reqwest::Client,
    base: reqwest::Url,
    config: ClientConfig,
    /// The region of the credential scope.
    region: String,
}

impl fmt::Debug for StsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsClient")
            .field("endpoint", &self.base.as_str())
            .field("region", &self.region)
            .finish()
    }
}

impl StsClient {
    pub fn new(config: ClientConfig, region: impl Into<String>) -> Result<Self, ClientError> {
        let (http, base) = http_client(&config)?;
        Ok(Self {
            http,
            base,
            config,
            region: region.into(),
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Assumes `hop.role_arn` with `previous`, for `duration_seconds`, retrying transient
    /// failures (at most the configured attempts, full-jitter backoff between them).
    pub async fn assume_role(
        &self,
        previous: &Credentials,
        hop: &Hop,
        duration_seconds: u32,
    ) -> Result<Assumed, AssumeRoleError> {
        let session_name = hop.role_session_name.clone().unwrap_or_else(|| {
            format!(
                "rolesanywhere-helper-{}",
                OffsetDateTime::now_utc().unix_timestamp()
            )
        });
        let duration = duration_seconds.to_string();
        let mut pairs = vec![
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", hop.role_arn.as_str()),
            ("RoleSessionName", session_name.as_str()),
            ("DurationSeconds", duration.as_str()),
        ];
        if let Some(id) = &hop.external_id {
            pairs.push(("ExternalId", id.as_str()));
        }
        let body = form_encode(&pairs);
        let max = self.config.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.attempt(previous, hop, &body, attempt).await {
                Ok(assumed) => return Ok(assumed),
                Err(e) if !e.is_transient() || attempt >= max => return Err(e),
                Err(e) => {
                    let delay = crate::backoff::full_jitter(FIRST_WAIT, MAX_WAIT, attempt);
                    tracing::debug!(attempt, error = %e, delay_ms = delay.as_millis() as u64, "AssumeRole attempt failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        previous: &Credentials,
        hop: &Hop,
        body: &str,
        attempt: u32,
    ) -> Result<Assumed, AssumeRoleError> {
        let host = match self.base.port() {
            Some(port) => format!("{}:{port}", self.base.host_str().unwrap_or_default()),
            None => self.base.host_str().unwrap_or_default().to_owned(),
        };
        let headers = sign(&SigningInput {
            access_key_id: &previous.access_key_id,
            secret_access_key: previous.secret_access_key.expose(),
            session_token: previous.session_token.expose(),
            region: &self.region,
            host: &host,
            path: self.base.path(),
            body: body.as_bytes(),
            time: OffsetDateTime::now_utc(),
        });
        let mut builder = self.http.post(self.base.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        tracing::debug!(attempt, url = %self.base, role = %hop.role_arn, "sending AssumeRole");
        let response = builder
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| self.transport(&hop.role_arn, e, attempt))?;
        let status = response.status().as_u16();
        let answer = capped_body(response)
            .await
            .map_err(|e| self.transport(&hop.role_arn, e, attempt))?;
        let bytes = &answer.body;
        tracing::debug!(attempt, status, bytes = bytes.len(), "AssumeRole answered");
        if (200..300).contains(&status) {
            if answer.cut {
                return Err(AssumeRoleError::InvalidResponse {
                    role_arn: hop.role_arn.clone(),
                    status,
                    problem: too_long(),
                });
            }
            return parse_assumed(status, bytes, &hop.role_arn);
        }
        let (code, message, request_id) = parse_error(bytes, status);
        Err(AssumeRoleError::Service {
            role_arn: hop.role_arn.clone(),
            status,
            code,
            message,
            request_id,
            attempts: attempt,
        })
    }

    fn transport(&self, role_arn: &str, e: reqwest::Error, attempts: u32) -> AssumeRoleError {
        let url = self.base.to_string();
        if let Some(tls) = find_tls_error(&e) {
            return AssumeRoleError::Tls {
                role_arn: role_arn.to_owned(),
                url,
                cause: tls.to_string(),
            };
        }
        let cause = if e.is_connect() && e.is_timeout() {
            format!(
                "no connection within {} s",
                self.config.connect_timeout.as_secs()
            )
        } else if e.is_timeout() {
            format!(
                "no complete answer within {} s",
                self.config.attempt_timeout.as_secs()
            )
        } else {
            root_cause(&e)
        };
        AssumeRoleError::Transport {
            role_arn: role_arn.to_owned(),
            url,
            cause,
            attempts,
        }
    }
}
