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

/// The IMDS credentials document, in the key order EC2 itself uses.
#[derive(Serialize)]
struct ImdsDocument<'a> {
    #[serde(rename = "Code")]
    code: &'a str,
    #[serde(rename = "LastUpdated")]
    last_updated: String,
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "AccessKeyId")]
    access_key_id: &'a str,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: &'a str,
    #[serde(rename = "Token")]
    token: &'a str,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// The ECS container-credentials document.
#[derive(Serialize)]
struct EcsDocument<'a> {
    #[serde(rename = "AccessKeyId")]
    access_key_id: &'a str,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: &'a str,
    #[serde(rename = "Token")]
    token: &'a str,
    #[serde(rename = "Expiration")]
    expiration: String,
    #[serde(rename = "RoleArn")]
    role_arn: &'a str,
}

impl Credentials {
    /// The IMDS `security-credentials/<role>` document. `Expiration` and `LastUpdated` are
    /// `YYYY-MM-DDTHH:MM:SSZ`, the one format botocore's static-stability path parses;
    /// `received` is when the daemon got them.
    pub fn imds_json(&self, received: OffsetDateTime) -> Vec<u8> {
        let doc = ImdsDocument {
            code: "Success",
            last_updated: crate::identity::rfc3339(received),
            kind: "AWS-HMAC",
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            token: self.session_token.expose(),
            expiration: crate::identity::rfc3339(self.expiration),
        };
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// The ECS container-credentials document.
    pub fn ecs_json(&self) -> Vec<u8> {
        let doc = EcsDocument {
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose(),
            token: self.session_token.expose(),
            expiration: crate::identity::rfc3339(self.expiration),
            role_arn: &self.role_arn,
        };
        serde_json::to_vec(&doc).unwrap_or_default()
    }

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
    fn imds_json_is_in_ec2_order() {
        let received = time::macros::datetime!(2025-12-11 15:34:25.123 UTC);
        assert_eq!(
            String::from_utf8(sample().imds_json(received)).unwrap(),
            r#"{"Code":"Success","LastUpdated":"2025-12-11T15:34:25Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t/+=","Token":"t0k\"en","Expiration":"2025-12-11T16:34:25Z"}"#
        );
    }

    #[test]
    fn ecs_json_names_the_role() {
        assert_eq!(
            String::from_utf8(sample().ecs_json()).unwrap(),
            r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t/+=","Token":"t0k\"en","Expiration":"2025-12-11T16:34:25Z","RoleArn":"arn:aws:iam::1:role/r"}"#
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("s3cr3t") && !text.contains("t0k"));
        assert!(text.contains("ASIAEXAMPLE"));
    }
}
