//! The CreateSession client: build the request, sign it with the identity, send it over
//! rustls, retry what is worth retrying, and turn the answer into [`Credentials`] or into
//! an error that says what the service refused and what to do about it.
//!
//! Retries follow the AWS SDKs' standard mode: at most 3 attempts, full-jitter exponential
//! backoff, on 5xx, 429 (honouring `Retry-After`) and connection failures; never on other
//! 4xx, which no retry can fix. Every attempt is signed afresh, with a new `X-Amz-Date`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::identity::Identity;
use crate::secret::Secret;
use crate::sigv4x509::{self, SessionRequest};

/// The parameters of one CreateSession call.
#[derive(Clone, Debug)]
pub struct SessionParams {
    pub trust_anchor_arn: String,
    pub profile_arn: String,
    pub role_arn: String,
    /// 900..=43200; checked by the caller's configuration.
    pub duration_seconds: u32,
    pub role_session_name: Option<String>,
    /// The region of the credential scope (the plain region, also for FIPS endpoints).
    pub region: String,
}

/// How to reach the service.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://rolesanywhere.us-east-1.amazonaws.com`; `/sessions` is
    /// appended to its path.
    pub endpoint: String,
    /// Extra trusted CA certificates (PEM), on top of the system roots.
    pub ca_bundle: Option<PathBuf>,
    /// Skip TLS certificate verification (`--no-verify-ssl`). Never use in production.
    pub insecure_skip_verify: bool,
    pub connect_timeout: Duration,
    /// Limit for one attempt, from connecting to the last byte of the answer.
    pub attempt_timeout: Duration,
    pub max_attempts: u32,
}

impl ClientConfig {
    /// Defaults for `endpoint`: 5 s to connect, 10 s per attempt, 3 attempts.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            ca_bundle: None,
            insecure_skip_verify: false,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 3,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "endpoint {0:?} is not a valid http(s) URL; give a URL such as https://rolesanywhere.us-east-1.amazonaws.com"
    )]
    Endpoint(String),
    #[error(
        "CA bundle {path} cannot be used ({problem}); give a PEM file of CA certificates with --ca-bundle or AWS_CA_BUNDLE"
    )]
    CaBundle { path: PathBuf, problem: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// A CreateSession call that did not yield credentials.
#[derive(Debug, thiserror::Error)]
pub enum CreateSessionError {
    /// The service answered with an error status.
    #[error("{}", describe_refusal(.status, .error_type, .message, .request_id.as_deref(), *.attempts))]
    Service {
        status: u16,
        error_type: String,
        message: String,
        request_id: Option<String>,
        attempts: u32,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {url}: {cause} (after {attempts} attempt{}); check the endpoint, the network and any proxy settings", plural(*.attempts))]
    Connect {
        url: String,
        cause: String,
        attempts: u32,
    },
    /// The TLS handshake failed, most often because the server's CA is not trusted.
    #[error("TLS handshake with {url} failed: {cause}; {hint}")]
    Tls {
        url: String,
        cause: String,
        hint: &'static str,
    },
    /// No connection within the connect timeout.
    #[error("cannot connect to {url} within {seconds} s (after {attempts} attempt{}); check the endpoint and the network, or raise --connect-timeout", plural(*.attempts))]
    ConnectTimeout {
        url: String,
        seconds: u64,
        attempts: u32,
    },
    /// No complete answer within the attempt timeout.
    #[error("no complete answer from {url} within {seconds} s (after {attempts} attempt{}); check the network, or raise --timeout", plural(*.attempts))]
    Timeout {
        url: String,
        seconds: u64,
        attempts: u32,
    },
    /// A 2xx answer that does not hold usable credentials.
    #[error("CreateSession answered {status} but {problem}")]
    InvalidResponse { status: u16, problem: String },
    /// The key could not sign.
    #[error("cannot sign the request: {0}")]
    Sign(String),
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn describe_refusal(
    status: &u16,
    error_type: &str,
    message: &str,
    request_id: Option<&str>,
    attempts: u32,
) -> String {
    let verb = if *status >= 500 || *status == 429 {
        "failed"
    } else {
        "refused"
    };
    let mut out = format!("CreateSession {verb} ({status} {error_type}): {message}");
    if let Some(hint) = refusal_hint(error_type, message) {
        out.push_str(" - ");
        out.push_str(hint);
    }
    if attempts > 1 {
        out.push_str(&format!(" (after {attempts} attempts)"));
    }
    if let Some(id) = request_id {
        out.push_str(&format!(" [request id {id}]"));
    }
    out
}

/// What a user can do about the service's known refusals.
fn refusal_hint(error_type: &str, message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    Some(if m.contains("untrusted signing certificate") {
        "the certificate does not chain to the trust anchor: check that the trust anchor holds your CA, and send intermediates with --intermediates or a fullchain certificate file"
    } else if is_clock_skew(&m) {
        "the host clock differs from the service's by more than 5 minutes: synchronise it (NTP)"
    } else if m.contains("invalid signature") {
        "check that the private key belongs to the certificate, and that --region matches the trust anchor"
    } else if m.contains("rolesessionname") {
        "the profile does not accept a role session name: drop --role-session-name or enable acceptRoleSessionName on the profile"
    } else if error_type == "ResourceNotFoundException" {
        "check the trust anchor and profile ARNs and the region"
    } else if error_type == "ValidationException" {
        "check the ARNs and --session-duration (900 to 43200)"
    } else {
        return None;
    })
}

impl CreateSessionError {
    /// True when no retry can help (the service refused the request as such).
    pub fn is_permanent(&self) -> bool {
        match self {
            // A clock that is off (a host booting before NTP has synchronised it) heals by
            // itself: retry rather than give up.
            Self::Service { message, .. } if is_clock_skew(message) => false,
            Self::Service { status, .. } => is_permanent_status(*status),
            Self::Tls { .. } | Self::InvalidResponse { .. } | Self::Sign(_) => true,
            Self::Connect { .. } | Self::ConnectTimeout { .. } | Self::Timeout { .. } => false,
        }
    }
}

/// Whether the service refused the request's date (more than 5 minutes off its clock).
fn is_clock_skew(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("signature expired") || m.contains("skew")
}

fn is_permanent_status(status: u16) -> bool {
    (400..500).contains(&status) && status != 429 && status != 408
}

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
        let base = reqwest::Url::parse(&config.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| ClientError::Endpoint(config.endpoint.clone()))?;
        let tls = tls_config(&config)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.attempt_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rolesanywhere-helper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
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
            let outcome = self.attempt(identity, params, attempt).await;
            let err = match outcome {
                Ok(creds) => return Ok(creds),
                Err(Failure { error, .. }) if error.is_permanent() || attempt >= max => {
                    return Err(error);
                }
                Err(failure) => failure,
            };
            let delay = backoff(attempt, err.retry_after);
            tracing::debug!(attempt, error = %err.error, delay_ms = delay.as_millis() as u64, "CreateSession attempt failed; retrying");
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
        let host = host_header(&self.base);
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
            .map_err(|e| Failure::final_(CreateSessionError::Sign(e.to_string())))?;
        let authorization =
            prepared.authorization(algorithm, identity.leaf().serial_decimal(), &signature);

        let url = format!(
            "{}?{}",
            self.sessions_url(),
            sigv4x509::canonical_query(query)
        );
        let mut builder = self.http.post(&url).header("authorization", authorization);
        for (name, value) in &prepared.headers {
            // reqwest sets Host itself, from the same URL the signature covers.
            if *name != "host" {
                builder = builder.header(*name, value);
            }
        }
        tracing::debug!(attempt, %url, serial = identity.leaf().serial_decimal(), chain = chain.len(), "sending CreateSession");
        let response = builder
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_failure(e, attempt))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_failure(e, attempt))?;
        tracing::debug!(
            attempt,
            status,
            bytes = bytes.len(),
            "CreateSession answered"
        );
        if (200..300).contains(&status) {
            return parse_credentials(status, &bytes, &params.role_arn).map_err(Failure::final_);
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (error_type, message) = parse_error(header("x-amzn-errortype"), &bytes, status);
        Err(Failure {
            retry_after: header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            error: CreateSessionError::Service {
                status,
                error_type,
                message,
                request_id: header("x-amzn-requestid"),
                attempts: attempt,
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
            return Failure::final_(CreateSessionError::Tls {
                url,
                cause: tls.to_string(),
                hint,
            });
        }
        let error = if e.is_connect() && e.is_timeout() {
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
        };
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// One failed attempt, with the server's `Retry-After` if it sent one.
struct Failure {
    error: CreateSessionError,
    retry_after: Option<Duration>,
}

impl Failure {
    fn final_(error: CreateSessionError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// Full-jitter backoff: a random wait up to `min(5 s, 200 ms × 2^(attempt-1))`, or the
/// server's `Retry-After` (capped at 20 s) when that is longer.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let ceiling_ms = 200u64.saturating_mul(1 << (attempt - 1).min(10)).min(5_000);
    let jitter = Duration::from_millis(getrandom::u64().unwrap_or(0) % (ceiling_ms + 1));
    match retry_after {
        Some(wait) => wait.min(Duration::from_secs(20)).max(jitter),
        None => jitter,
    }
}

/// `Host` as sent: the host, with the port only when it is not the scheme's default.
fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody<'a> {
    duration_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_session_name: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseBody {
    #[serde(default)]
    credential_set: Vec<CredentialEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialEntry {
    credentials: Option<WireCredentials>,
    role_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expiration: Option<String>,
}

/// Reads `credentialSet[0].credentials` from a 2xx answer; every member must be present.
pub fn parse_credentials(
    status: u16,
    body: &[u8],
    requested_role: &str,
) -> Result<Credentials, CreateSessionError> {
    let invalid = |problem: &str| CreateSessionError::InvalidResponse {
        status,
        problem: problem.to_owned(),
    };
    let parsed: ResponseBody =
        serde_json::from_slice(body).map_err(|_| invalid("its body is not the expected JSON"))?;
    let entry = parsed.credential_set.into_iter().next().ok_or_else(|| {
        invalid("its credentialSet is empty (unable to obtain temporary security credentials)")
    })?;
    let wire = entry
        .credentials
        .ok_or_else(|| invalid("its credentialSet holds no credentials"))?;
    let need = |v: Option<String>, name: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(&format!("its credentials lack {name}")))
    };
    let access_key_id = need(wire.access_key_id, "accessKeyId")?;
    let secret_access_key = Secret::from(need(wire.secret_access_key, "secretAccessKey")?);
    let session_token = Secret::from(need(wire.session_token, "sessionToken")?);
    let expiration_text = need(wire.expiration, "expiration")?;
    let expiration = OffsetDateTime::parse(
        &expiration_text,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| {
        invalid(&format!(
            "its expiration {expiration_text:?} is not an RFC 3339 time"
        ))
    })?;
    // Kept in UTC, as every rendering writes it. A time whose offset carries it past the
    // last representable instant in UTC (`9999-12-31T23:59:59-01:00`) cannot be, and would
    // panic where it is rendered.
    let expiration = expiration
        .checked_to_offset(time::UtcOffset::UTC)
        .ok_or_else(|| {
            invalid(&format!(
                "its expiration {expiration_text:?} is out of range"
            ))
        })?;
    Ok(Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
        expiration_text,
        role_arn: entry.role_arn.unwrap_or_else(|| requested_role.to_owned()),
    })
}

/// The error type and message of an error answer, found as the SDKs find them: the
/// `X-Amzn-ErrorType` header first (less any `:…` suffix and `…#` prefix), then the body's
/// `code` or `__type`; the message from `message` or `Message`.
pub fn parse_error(header: Option<String>, body: &[u8], status: u16) -> (String, String) {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| json.get(*n).and_then(|v| v.as_str()).map(str::to_owned))
    };
    let sanitize = |t: String| {
        let t = t.split(':').next().unwrap_or_default();
        t.rsplit('#').next().unwrap_or_default().trim().to_owned()
    };
    let error_type = header
        .map(sanitize)
        .filter(|t| !t.is_empty())
        .or_else(|| field(&["code", "__type"]).map(sanitize))
        .unwrap_or_else(|| format!("HTTP{status}"));
    let message = field(&["message", "Message"]).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            "(no message)".to_owned()
        } else {
            text.chars().take(200).collect()
        }
    });
    (error_type, message)
}

/// The rustls error behind a request failure, if any. It sits inside nested `io::Error`s,
/// whose `source()` skips the wrapped error, so those are opened explicitly.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
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

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
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

/// rustls with the ring provider, TLS 1.2 and 1.3, trusting the system roots plus the
/// CA bundle.
fn tls_config(config: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    if config.insecure_skip_verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(insecure::AcceptAnything(
                provider,
            )))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: the bundle may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &config.ca_bundle {
        let bad = |problem: String| ClientError::CaBundle {
            path: path.clone(),
            problem,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let blocks = crate::identity::pem::blocks(&bytes).map_err(|e| bad(e.to_string()))?;
        let mut added = 0;
        for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
            roots
                .add(rustls_pki_types::CertificateDer::from(block.der.to_vec()))
                .map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("it holds no CERTIFICATE block".into()));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

mod insecure {
    //! `--no-verify-ssl`: accepts any server certificate. Signatures over the handshake are
    //! still checked, so only the identity of the server goes unverified.
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub struct AcceptAnything(pub std::sync::Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnything {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_sanitised() {
        let (t, m) = parse_error(
            Some("AccessDeniedException:http://x".into()),
            br#"{"message":"Invalid signature"}"#,
            403,
        );
        assert_eq!(
            (t.as_str(), m.as_str()),
            ("AccessDeniedException", "Invalid signature")
        );
        let (t, m) = parse_error(
            None,
            br#"{"__type":"aws#ValidationException","Message":"bad"}"#,
            400,
        );
        assert_eq!((t.as_str(), m.as_str()), ("ValidationException", "bad"));
        let (t, m) = parse_error(None, b"oops", 502);
        assert_eq!((t.as_str(), m.as_str()), ("HTTP502", "oops"));
    }

    #[test]
    fn refusal_reads_well() {
        let e = CreateSessionError::Service {
            status: 403,
            error_type: "AccessDeniedException".into(),
            message: "Untrusted Signing Certificate".into(),
            request_id: Some("r-1".into()),
            attempts: 1,
        };
        let text = e.to_string();
        assert!(text.starts_with("CreateSession refused (403 AccessDeniedException): Untrusted Signing Certificate - the certificate does not chain"));
        assert!(text.ends_with("[request id r-1]"));
        assert!(e.is_permanent());
    }

    /// Found while writing the `create_session_response` fuzz target, which reproduces it:
    /// an expiration whose offset puts it past year 9999 in UTC parsed, then panicked when
    /// rendered for IMDS, ECS or the logs.
    #[test]
    fn an_expiration_past_year_9999_in_utc_is_refused() {
        let body = |expiration: &str| {
            format!(
                r#"{{"credentialSet":[{{"credentials":{{"accessKeyId":"A","secretAccessKey":"s","sessionToken":"t","expiration":"{expiration}"}}}}]}}"#
            )
        };
        let error = parse_credentials(201, body("9999-12-31T23:59:59-01:00").as_bytes(), "r")
            .unwrap_err()
            .to_string();
        assert!(error.contains("out of range"), "{error}");
        // The last instant that exists in UTC is fine, whatever its offset.
        let c = parse_credentials(201, body("9999-12-31T22:59:59-01:00").as_bytes(), "r").unwrap();
        assert_eq!(c.expiration_text, "9999-12-31T22:59:59-01:00");
        let ecs = String::from_utf8(c.ecs_json()).unwrap();
        assert!(
            ecs.contains(r#""Expiration":"9999-12-31T23:59:59Z""#),
            "{ecs}"
        );
    }

    #[test]
    fn credentials_need_every_member() {
        let ok = br#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"S","sessionToken":"T","expiration":"2030-01-01T00:00:00Z"},"roleArn":"arn:r"}],"subjectArn":"x"}"#;
        let c = parse_credentials(201, ok, "arn:q").unwrap();
        assert_eq!(c.access_key_id, "A");
        assert_eq!(c.expiration_text, "2030-01-01T00:00:00Z");
        assert_eq!(c.role_arn, "arn:r");
        for bad in [
            &br#"{"credentialSet":[]}"#[..],
            br#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"S","sessionToken":"T"}}]}"#,
            br#"{"credentialSet":[{"credentials":{"accessKeyId":"A","secretAccessKey":"S","sessionToken":"T","expiration":"soon"}}]}"#,
            b"not json",
        ] {
            assert!(parse_credentials(201, bad, "arn:q").is_err());
        }
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in 1..6 {
            assert!(backoff(attempt, None) <= Duration::from_secs(5));
        }
        assert!(backoff(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(999))),
            Duration::from_secs(20)
        );
    }
}
