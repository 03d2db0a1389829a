//! Reading STS's answers: the credentials of an `AssumeRoleResponse`, the code and
//! message of an `ErrorResponse`.

use time::OffsetDateTime;

use super::error::AssumeRoleError;
use super::xml::leaf_texts;
use crate::credentials::Credentials;
use crate::secret::Secret;

/// What one hop yields.
#[derive(Debug)]
pub struct Assumed {
    pub credentials: Credentials,
    /// `arn:…:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub assumed_role_arn: Option<String>,
    /// The source identity the session carries (set by Roles Anywhere from the certificate,
    /// kept along the chain).
    pub source_identity: Option<String>,
}

const RESULT: &str = "AssumeRoleResponse/AssumeRoleResult";

/// The credentials of a 2xx answer; every member must be there.
pub fn parse_assumed(status: u16, body: &[u8], role_arn: &str) -> Result<Assumed, AssumeRoleError> {
    let invalid = |problem: String| AssumeRoleError::InvalidResponse {
        role_arn: role_arn.to_owned(),
        status,
        problem,
    };
    let text =
        std::str::from_utf8(body).map_err(|_| invalid("its body is not UTF-8 text".into()))?;
    let mut leaves =
        leaf_texts(text).ok_or_else(|| invalid("its body is not well-formed XML".into()))?;
    let mut take = |name: &str| leaves.remove(&format!("{RESULT}/{name}"));
    let mut need = |name: &str| {
        take(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid(format!("it lacks {RESULT}/{name}")))
    };
    let access_key_id = need("Credentials/AccessKeyId")?;
    let secret_access_key = Secret::from(need("Credentials/SecretAccessKey")?);
    let session_token = Secret::from(need("Credentials/SessionToken")?);
    let expiration_text = need("Credentials/Expiration")?;
    let assumed_role_arn = need("AssumedRoleUser/Arn").ok();
    let source_identity = need("SourceIdentity").ok();
    let expiration = OffsetDateTime::parse(
        &expiration_text,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()
    .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
    .ok_or_else(|| {
        invalid(format!(
            "its Expiration {expiration_text:?} is not an RFC 3339 time"
        ))
    })?;
    Ok(Assumed {
        credentials: Credentials {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
            expiration_text,
            role_arn: role_arn.to_owned(),
        },
        assumed_role_arn,
        source_identity,
    })
}

/// The code, message and request id of an error answer. A body that is not STS's XML
/// (a proxy's HTML page) still gives one line: its start, and the status as the code.
pub fn parse_error(body: &[u8], status: u16) -> (String, String, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let leaves = leaf_texts(&text).unwrap_or_default();
    // Each value on one line, whatever the body held.
    let get = |path: &str| {
        leaves
            .get(path)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty())
    };
    let code = get("ErrorResponse/Error/Code").unwrap_or_else(|| format!("HTTP{status}"));
    let message = get("ErrorResponse/Error/Message").unwrap_or_else(|| {
        let one_line: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect();
        if one_line.is_empty() {
            "(no message)".to_owned()
        } else {
            one_line
        }
    });
    (code, message, get("ErrorResponse/RequestId"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>CN=host-1</SourceIdentity>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s3-access-example</AssumedRoleId>
      <Arn>arn:aws:sts::444455556666:assumed-role/workload/s</Arn>
    </AssumedRoleUser>
    <Credentials>
      <SecretAccessKey>9drTJvcXLB89EXAMPLELB8923FB892xMFI</SecretAccessKey>
      <SessionToken>AQoXdzELDDY//////////wEaoAK1wvxJY12r2IrDFT2IvAzTCn3zHoZ7YNtpiQLF0MqZye/qwjzP2iEXAMPLE</SessionToken>
      <Expiration>2024-07-15T23:28:33.359Z</Expiration>
      <AccessKeyId>ASIAJEXAMPLEXEG2JICEA</AccessKeyId>
    </Credentials>
    <PackedPolicySize>8</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#;

    #[test]
    fn credentials_and_source_identity_are_read() {
        let a = parse_assumed(
            200,
            OK.as_bytes(),
            "arn:aws:iam::444455556666:role/workload",
        )
        .unwrap();
        assert_eq!(a.credentials.access_key_id, "ASIAJEXAMPLEXEG2JICEA");
        assert_eq!(
            a.credentials.secret_access_key.expose(),
            "9drTJvcXLB89EXAMPLELB8923FB892xMFI"
        );
        assert_eq!(a.credentials.expiration_text, "2024-07-15T23:28:33.359Z");
        assert_eq!(
            a.credentials.role_arn,
            "arn:aws:iam::444455556666:role/workload"
        );
        assert_eq!(a.source_identity.as_deref(), Some("CN=host-1"));
        assert_eq!(
            a.assumed_role_arn.as_deref(),
            Some("arn:aws:sts::444455556666:assumed-role/workload/s")
        );
    }

    #[test]
    fn incomplete_answers_are_refused_with_what_lacks() {
        let without = OK
            .replace("<SessionToken>", "<Other>")
            .replace("</SessionToken>", "</Other>");
        let e = parse_assumed(200, without.as_bytes(), "r").unwrap_err();
        assert!(e.to_string().contains("Credentials/SessionToken"), "{e}");
        let e = parse_assumed(200, b"{\"json\":1}", "r").unwrap_err();
        assert!(e.to_string().contains("not well-formed XML"), "{e}");
        let late = OK.replace("2024-07-15T23:28:33.359Z", "tomorrow");
        let e = parse_assumed(200, late.as_bytes(), "r").unwrap_err();
        assert!(e.to_string().contains("tomorrow"), "{e}");
    }

    #[test]
    fn errors_give_code_message_and_request_id() {
        let body = b"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token\n included in the request is expired</Message></Error><RequestId>r-9</RequestId></ErrorResponse>";
        let (code, message, rid) = parse_error(body, 400);
        assert_eq!(code, "ExpiredToken");
        assert_eq!(
            message,
            "The security token included in the request is expired"
        );
        assert_eq!(rid.as_deref(), Some("r-9"));
        let (code, message, rid) = parse_error(b"<html>\n<b>Bad gateway</b>\n</html>", 502);
        assert_eq!(code, "HTTP502");
        assert_eq!(message, "<html> <b>Bad gateway</b> </html>");
        assert!(rid.is_none());
        assert_eq!(parse_error(b"", 503).1, "(no message)");
        // Every part on one line, whatever the body held.
        let body = "<ErrorResponse><Error><Code>Access\nDenied</Code><Message>a\r\nb\u{2028}c</Message></Error><RequestId> r\n1 </RequestId></ErrorResponse>";
        let (code, message, rid) = parse_error(body.as_bytes(), 403);
        assert_eq!(
            (code.as_str(), rid.as_deref()),
            ("Access Denied", Some("r 1"))
        );
        assert_eq!(message, "a b c");
    }
}
