//! Reading the service's answer: the credentials of a 2xx, the error type and message of
//! anything else.

use serde::Deserialize;
use time::OffsetDateTime;

use super::error::CreateSessionError;
use crate::credentials::Credentials;
use crate::secret::Secret;

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
}
