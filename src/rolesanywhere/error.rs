//! What can go wrong: building a client ([`ClientError`], at start, from the settings) and
//! calling CreateSession ([`CreateSessionError`], which knows whether a retry may help).

use std::path::PathBuf;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "endpoint {0:?} is not a valid http(s) URL; give a URL such as https://rolesanywhere.us-east-1.amazonaws.com"
    )]
    Endpoint(String),
    #[error(
        "CA bundle {path} cannot be used ({source}); give a PEM file of CA certificates with --ca-bundle or AWS_CA_BUNDLE"
    )]
    CaBundle {
        path: PathBuf,
        #[source]
        source: CaBundleError,
    },
    /// rustls refused the protocol versions or the provider.
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] rustls::Error),
    /// The proxy of the environment is not a URL.
    #[error(
        "the proxy in ${name} cannot be used ({source}); give a URL such as http://proxy.example:3128"
    )]
    Proxy {
        name: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client could not be built on the TLS configuration.
    #[error("cannot set up TLS: {0}")]
    Http(#[source] reqwest::Error),
}

/// What is wrong with a CA bundle. The text reads after the file's name.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    /// Missing, unreadable, not a regular file (`/dev/zero`, a FIFO) or too large.
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Pem(#[source] crate::identity::pem::PemError),
    /// A CERTIFICATE block rustls cannot use as a trust root.
    #[error("{0}")]
    Certificate(#[source] rustls::Error),
    #[error("it holds no CERTIFICATE block")]
    NoCertificate,
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
        /// The `Retry-After` of the last answer, if it had one: a daemon pauses every role of
        /// the account and region that long after a throttled answer.
        retry_after: Option<std::time::Duration>,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {url}: {cause} (after {attempts} attempt{}); check the endpoint, the network and any proxy settings", crate::refusal::plural(*.attempts))]
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
    #[error("cannot connect to {url} within {seconds} s (after {attempts} attempt{}); check the endpoint and the network, or raise --connect-timeout", crate::refusal::plural(*.attempts))]
    ConnectTimeout {
        url: String,
        seconds: u64,
        attempts: u32,
    },
    /// No complete answer within the attempt timeout.
    #[error("no complete answer from {url} within {seconds} s (after {attempts} attempt{}); check the network, or raise --timeout", crate::refusal::plural(*.attempts))]
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
    /// The device holding the key (a TPM) failed or stayed busy; it may sign later.
    #[error("cannot sign the request: {0}")]
    SignUnavailable(String),
}

impl CreateSessionError {
    /// True when trying again later may succeed: the network, the service's own trouble
    /// (5xx, 429, 408), or a clock that is off. False when the service refused the request
    /// as such, or the answer, the TLS peer or the key is wrong: no retry can fix those.
    pub fn is_transient(&self) -> bool {
        match self {
            // A clock that is off (a host booting before NTP has synchronised it) heals by
            // itself: retry rather than give up.
            Self::Service { message, .. } if is_clock_skew(message) => true,
            Self::Service { status, .. } => !is_refusal_status(*status),
            Self::Tls { .. } | Self::InvalidResponse { .. } | Self::Sign(_) => false,
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::Timeout { .. }
            | Self::SignUnavailable(_) => true,
        }
    }
}

fn describe_refusal(
    status: &u16,
    error_type: &str,
    message: &str,
    request_id: Option<&str>,
    attempts: u32,
) -> String {
    crate::refusal::line(
        "CreateSession",
        &crate::refusal::Refusal {
            status: *status,
            code: error_type,
            message,
            hint: refusal_hint(error_type, message),
            request_id,
            attempts,
        },
    )
}

/// What a user can do about the service's known refusals.
fn refusal_hint(error_type: &str, message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    Some(if m.contains("untrusted signing certificate") {
        "the certificate does not chain to the trust anchor: check that the trust anchor holds your CA, and send intermediates with --intermediates or a fullchain certificate file"
    } else if is_clock_skew(&m) {
        "the host clock differs from the service's by more than 5 minutes: synchronise it (NTP)"
    } else if m.contains("invalid signature") {
        // The key was checked against the certificate before sending, so the likeliest
        // cause left is a scope the service does not expect.
        "the request was signed for a region that is not the trust anchor's, most likely: leave out --region or give the trust anchor's region, with an --endpoint in that region (the key was checked against the certificate before sending)"
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

/// Whether the service refused the request's date (more than 5 minutes off its clock).
fn is_clock_skew(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("signature expired") || m.contains("skew")
}

/// A 4xx that says the request itself is wrong: all but 429 (throttled) and 408 (timeout).
fn is_refusal_status(status: u16) -> bool {
    (400..500).contains(&status) && status != 429 && status != 408
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, message: &str) -> CreateSessionError {
        CreateSessionError::Service {
            status,
            error_type: "AccessDeniedException".into(),
            message: message.into(),
            request_id: None,
            attempts: 1,
            retry_after: None,
        }
    }

    #[test]
    fn refusal_reads_well() {
        let e = CreateSessionError::Service {
            status: 403,
            error_type: "AccessDeniedException".into(),
            message: "Untrusted Signing Certificate".into(),
            request_id: Some("r-1".into()),
            attempts: 1,
            retry_after: None,
        };
        let text = e.to_string();
        assert!(text.starts_with("CreateSession refused (403 AccessDeniedException): Untrusted Signing Certificate - the certificate does not chain"));
        assert!(text.ends_with("[request id r-1]"));
        assert!(!e.is_transient());
    }

    /// The key is checked against the certificate locally, so the hint leads with the
    /// region, the cause left.
    #[test]
    fn an_invalid_signature_points_at_the_region_first() {
        let text = service(403, "Invalid signature").to_string();
        let hint = text
            .strip_prefix("CreateSession refused (403 AccessDeniedException): Invalid signature - ")
            .unwrap();
        assert!(
            hint.starts_with("the request was signed for a region that is not the trust anchor's"),
            "{text}"
        );
        assert!(hint.find("--region") < hint.find("key"), "{text}");
    }

    #[test]
    fn what_is_transient() {
        for status in [500, 502, 503, 429, 408] {
            assert!(service(status, "x").is_transient(), "{status}");
        }
        for status in [400, 401, 403, 404, 413] {
            assert!(!service(status, "x").is_transient(), "{status}");
        }
        assert!(service(403, "Signature expired: 20200101T000000Z").is_transient());
        assert!(service(400, "clock skew too great").is_transient());
        let url = String::from("https://x");
        assert!(
            CreateSessionError::Connect {
                url: url.clone(),
                cause: "refused".into(),
                attempts: 3
            }
            .is_transient()
        );
        assert!(
            CreateSessionError::Timeout {
                url: url.clone(),
                seconds: 10,
                attempts: 3
            }
            .is_transient()
        );
        assert!(
            CreateSessionError::ConnectTimeout {
                url: url.clone(),
                seconds: 5,
                attempts: 3
            }
            .is_transient()
        );
        assert!(
            !CreateSessionError::Tls {
                url,
                cause: "bad certificate".into(),
                hint: ""
            }
            .is_transient()
        );
        assert!(
            !CreateSessionError::InvalidResponse {
                status: 201,
                problem: "empty".into()
            }
            .is_transient()
        );
        assert!(!CreateSessionError::Sign("no key".into()).is_transient());
        assert!(CreateSessionError::SignUnavailable("TPM busy".into()).is_transient());
    }
}
