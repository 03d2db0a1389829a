//! What one CreateSession call asks for, and how to reach the service.

use std::path::PathBuf;
use std::time::Duration;

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
    /// The proxy to go through, from the environment.
    pub proxy: ProxyEnv,
}

/// The proxy settings of the environment, as Go's `ProxyFromEnvironment` (and so the
/// official helper) reads them: `HTTPS_PROXY` for an https endpoint, `HTTP_PROXY` for an
/// http one (each also in lower case), and `NO_PROXY`. `ALL_PROXY` is not one of them.
#[derive(Clone, Debug, Default)]
pub struct ProxyEnv {
    pub https: Option<String>,
    pub http: Option<String>,
    pub no_proxy: Option<String>,
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
            proxy: ProxyEnv::default(),
        }
    }
}
