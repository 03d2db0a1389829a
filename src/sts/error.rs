//! An AssumeRole hop that did not yield credentials, and whether trying again may help.

/// Why one hop of the role chain failed. Every variant names the role of the hop, so that
/// the one line a user sees says which hop of a chain went wrong.
#[derive(Debug, thiserror::Error)]
pub enum AssumeRoleError {
    /// STS answered with an error.
    #[error("{}", describe(.role_arn, *.status, .code, .message, .request_id.as_deref(), *.attempts))]
    Service {
        role_arn: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        attempts: u32,
    },
    /// STS could not be reached, or the connection broke or timed out.
    #[error("AssumeRole {role_arn}: cannot reach {url}: {cause} (after {attempts} attempt{}); check --sts-endpoint (or AWS_ENDPOINT_URL_STS), the network and any proxy settings", crate::refusal::plural(*.attempts))]
    Transport {
        role_arn: String,
        url: String,
        cause: String,
        attempts: u32,
    },
    /// The TLS handshake failed.
    #[error(
        "AssumeRole {role_arn}: TLS handshake with {url} failed: {cause}; if the endpoint uses a private CA, give its certificate with --ca-bundle FILE or AWS_CA_BUNDLE"
    )]
    Tls {
        role_arn: String,
        url: String,
        cause: String,
    },
    /// A 2xx answer without usable credentials.
    #[error("AssumeRole {role_arn}: STS answered {status} but {problem}")]
    InvalidResponse {
        role_arn: String,
        status: u16,
        problem: String,
    },
}

impl AssumeRoleError {
    /// True when a later attempt may succeed unchanged: the network, STS's own trouble
    /// (5xx, throttling), or a clock that is off. A refusal (no trust, an expired or unknown
    /// token, a bad parameter) needs someone to change something.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Service {
                status,
                code,
                message,
                ..
            } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "Throttling" | "ThrottlingException" | "RequestLimitExceeded"
                    )
                    || (code == "SignatureDoesNotMatch"
                        && message.to_ascii_lowercase().contains("signature expired"))
            }
            Self::Transport { .. } => true,
            Self::Tls { .. } | Self::InvalidResponse { .. } => false,
        }
    }
}

fn describe(
    role_arn: &str,
    status: u16,
    code: &str,
    message: &str,
    request_id: Option<&str>,
    attempts: u32,
) -> String {
    crate::refusal::line(
        &format!("AssumeRole {role_arn}"),
        &crate::refusal::Refusal {
            status,
            code,
            message,
            hint: hint(code, message),
            request_id,
            attempts,
        },
    )
}

/// What a user can do about STS's refusals.
fn hint(code: &str, message: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDenied" => {
            "the role's trust policy must allow sts:AssumeRole (and sts:SetSourceIdentity) by the previous role of the chain, with the external ID if it asks for one"
        }
        "ExpiredToken" => {
            "the previous credentials of the chain expired before they were used: check the host clock (NTP)"
        }
        "InvalidClientTokenId" => {
            "STS did not recognise the previous credentials of the chain: check that --sts-endpoint (or AWS_ENDPOINT_URL_STS) is in the same partition as the trust anchor"
        }
        "ValidationError" if message.to_ascii_lowercase().contains("chaining") => {
            "a session assumed by role chaining lasts at most 3600 seconds: lower --session-duration"
        }
        "ValidationError" => {
            "check --assume-role-arn, --assume-role-session-name and --assume-role-external-id"
        }
        "RegionDisabledException" => "activate STS in this region in the account's IAM settings",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: &str, message: &str) -> AssumeRoleError {
        AssumeRoleError::Service {
            role_arn: "arn:aws:iam::1:role/r".into(),
            status,
            code: code.into(),
            message: message.into(),
            request_id: Some("rid".into()),
            attempts: 1,
        }
    }

    #[test]
    fn refusals_read_as_one_line_naming_the_role() {
        for code in [
            "AccessDenied",
            "ExpiredToken",
            "InvalidClientTokenId",
            "ValidationError",
        ] {
            let e = refused(403, code, "no");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "AssumeRole arn:aws:iam::1:role/r refused (403 {code}): no - "
                )),
                "{text}"
            );
            assert!(text.ends_with("[request id rid]"), "{text}");
            assert!(!text.contains('\n'));
            assert!(!e.is_transient(), "{code}");
        }
    }

    #[test]
    fn what_is_transient() {
        assert!(refused(500, "InternalFailure", "x").is_transient());
        assert!(refused(400, "Throttling", "Rate exceeded").is_transient());
        assert!(refused(403, "SignatureDoesNotMatch", "Signature expired: 2020").is_transient());
        assert!(!refused(403, "SignatureDoesNotMatch", "does not match").is_transient());
    }
}
