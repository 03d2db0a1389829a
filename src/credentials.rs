//! Temporary AWS credentials, and the JSON shapes in which each delivery path hands them
//! over: `credential_process` output, the IMDS credentials document, and the ECS one.
//!
//! A [`Credentials`] that exists is complete: the secret parts are [`Secret`]s (zeroized,
//! redacted in `Debug`), and the expiry is a parsed time, so no caller can serve a
//! half-filled or undated set.

use serde::Serialize;
use time::OffsetDateTime;

use crate::secret::Secret;

/// One set of role credentials from CreateSession.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    /// When the credentials stop working.
    pub expiration: OffsetDateTime,
    /// The service's `expiration` string, verbatim: `credential_process` output repeats it
    /// byte for byte, as the official helper does.
    pub expiration_text: String,
    /// The role the credentials belong to.
    pub role_arn: String,
}

/// `credential_process` output, field order included.
#[derive(Serialize)]
struct ProcessOutput<'a> {
    #[serde(rename = "Version")]
    version: u8,
    #[serde(rename = "AccessKeyId")]
    access_key_id: &'a str,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: &'a str,
    #[serde(rename = "SessionToken")]
    session_token: &'a str,
    #[serde(rename = "Expiration")]
    expiration: &'a str,
}

impl Credentials {
    /// The compact JSON that `credential_process` prints, with no trailing newline:
    /// `{"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…,"Expiration":…}`.
    pub fn process_json(&self) -> Vec<u8> {
        let out = ProcessOutput {
            version: 1,
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            session_token: self.session_token.expose(),
            expiration: &self.expiration_text,
        };
        // Serialising a struct of strings cannot fail.
        serde_json::to_vec(&out).unwrap_or_default()
    }

    /// Seconds of validity left at `now` (negative once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expiration - now).whole_seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::from("s3cr3t/+=".to_owned()),
            session_token: Secret::from("t0k\"en".to_owned()),
            expiration: time::macros::datetime!(2025-12-11 16:34:25 UTC),
            expiration_text: "2025-12-11T16:34:25Z".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
        }
    }

    #[test]
    fn process_json_is_exact() {
        assert_eq!(
            String::from_utf8(sample().process_json()).unwrap(),
            r#"{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t/+=","SessionToken":"t0k\"en","Expiration":"2025-12-11T16:34:25Z"}"#
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("s3cr3t") && !text.contains("t0k"));
        assert!(text.contains("ASIAEXAMPLE"));
    }
}
