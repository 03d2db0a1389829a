//! SigV4 (HMAC-SHA256) for the one request this crate sends to STS: `POST` of a
//! form-encoded body, signed with temporary credentials (so `X-Amz-Security-Token` is a
//! signed header). Written on the `hmac` and `sha2` crates the rest of the crate uses, and
//! cross-checked in the tests against the AWS SDK for Rust's `aws-sigv4` on the same
//! inputs: a signer of our own that disagreed with the SDK's would be wrong.
//!
//! Pure: no clock, no I/O. The caller passes the time.

use hmac::{KeyInit as _, Mac as _};
use sha2::Digest as _;
use time::OffsetDateTime;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The content type of the form body, as the AWS SDKs send it.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// What one signature covers.
pub struct SigningInput<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: &'a str,
    /// The region of the credential scope.
    pub region: &'a str,
    /// The `Host` header as the HTTP client sends it: the host, with `:port` when the port
    /// is not the scheme's default.
    pub host: &'a str,
    /// The URL path as sent (already percent-encoded), `/` when empty.
    pub path: &'a str,
    pub body: &'a [u8],
    pub time: OffsetDateTime,
}

/// The headers to send: `content-type`, `x-amz-date`, `x-amz-security-token` and
/// `authorization` (the HTTP client adds `host`, which is signed as given).
pub fn sign(input: &SigningInput<'_>) -> Vec<(&'static str, String)> {
    let amz_date = crate::sigv4x509::amz_date(input.time);
    let date = &amz_date[..8];
    let canonical = canonical_request(input, &amz_date);
    let scope = format!("{date}/{}/sts/aws4_request", input.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
    );
    let secret = zeroize::Zeroizing::new(format!("AWS4{}", input.secret_access_key));
    let mut key = mac(secret.as_bytes(), date.as_bytes());
    for part in [input.region, "sts", "aws4_request"] {
        key = mac(&key, part.as_bytes());
    }
    let signature = hex::encode(mac(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
        input.access_key_id
    );
    vec![
        ("content-type", FORM_CONTENT_TYPE.to_owned()),
        ("x-amz-date", amz_date),
        ("x-amz-security-token", input.session_token.to_owned()),
        ("authorization", authorization),
    ]
}

/// The signed headers, sorted.
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-security-token";

fn canonical_request(input: &SigningInput<'_>, amz_date: &str) -> String {
    let path = if input.path.is_empty() {
        "/"
    } else {
        input.path
    };
    format!(
        "POST\n{}\n\ncontent-type:{FORM_CONTENT_TYPE}\nhost:{}\nx-amz-date:{amz_date}\nx-amz-security-token:{}\n\n{SIGNED_HEADERS}\n{}",
        canonical_uri(path),
        input.host.trim(),
        input.session_token.trim(),
        hex::encode(sha2::Sha256::digest(input.body))
    )
}

/// The canonical URI of every service but S3: the path as sent, encoded once more, so that
/// each `%` of the sent path becomes `%25`; unreserved characters and `/` stay.
fn canonical_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `application/x-www-form-urlencoded` as the AWS query protocol writes it: everything but
/// `A-Z a-z 0-9 - _ . ~` percent-encoded (a space as `%20`).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The same request signed by the AWS SDK for Rust's `aws-sigv4`: its `Authorization`.
    fn sdk_authorization(input: &SigningInput<'_>, scheme_host_path: &str) -> String {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4::SigningParams;

        let identity = aws_credential_types::Credentials::new(
            input.access_key_id,
            input.secret_access_key,
            Some(input.session_token.to_owned()),
            None,
            "test",
        )
        .into();
        let seconds = u64::try_from(input.time.unix_timestamp()).unwrap();
        let params = SigningParams::builder()
            .identity(&identity)
            .region(input.region)
            .name("sts")
            .time(UNIX_EPOCH + Duration::from_secs(seconds))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [("content-type", FORM_CONTENT_TYPE), ("host", input.host)];
        let request = SignableRequest::new(
            "POST",
            scheme_host_path,
            headers.into_iter(),
            SignableBody::Bytes(input.body),
        )
        .unwrap();
        let (instructions, _signature) = sign(request, &params).unwrap().into_parts();
        let (headers, _params) = instructions.into_parts();
        let find = |name: &str| {
            headers
                .iter()
                .find(|h| h.name().eq_ignore_ascii_case(name))
                .map(|h| h.value().to_owned())
                .unwrap_or_else(|| panic!("aws-sigv4 set no {name}"))
        };
        assert_eq!(
            find("x-amz-security-token"),
            input.session_token,
            "the SDK sends the token"
        );
        find("authorization")
    }

    fn ours(input: &SigningInput<'_>) -> String {
        sign(input)
            .into_iter()
            .find(|(name, _)| *name == "authorization")
            .map(|(_, value)| value)
            .unwrap()
    }

    #[test]
    fn the_signature_is_the_aws_sdks_on_the_same_inputs() {
        let body = form_encode(&[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", "arn:aws:iam::444455556666:role/path/workload"),
            ("RoleSessionName", "host-1@example.com"),
            ("DurationSeconds", "3600"),
            ("ExternalId", "id with spaces/and:colons+plus=eq"),
        ]);
        let cases = [
            (
                "https://sts.eu-west-1.amazonaws.com/",
                "sts.eu-west-1.amazonaws.com",
                "/",
                "eu-west-1",
                1_720_265_939,
            ),
            (
                "https://127.0.0.1:8443/",
                "127.0.0.1:8443",
                "/",
                "us-east-1",
                1_700_000_000,
            ),
            (
                "https://[::1]:9000/prefix/sts",
                "[::1]:9000",
                "/prefix/sts",
                "cn-north-1",
                1_893_456_000,
            ),
            (
                "https://sts.example.com/a%20b",
                "sts.example.com",
                "/a%20b",
                "us-gov-west-1",
                1_000_000_000,
            ),
        ];
        for (url, host, path, region, at) in cases {
            for (key, secret, token) in [
                (
                    "ASIAEXAMPLE000000001",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "FwoGZXIvYXdzEBYaDH+token/with=chars",
                ),
                ("ASIAX", "s", "t"),
            ] {
                let input = SigningInput {
                    access_key_id: key,
                    secret_access_key: secret,
                    session_token: token,
                    region,
                    host,
                    path,
                    body: body.as_bytes(),
                    time: OffsetDateTime::from_unix_timestamp(at).unwrap(),
                };
                assert_eq!(
                    ours(&input),
                    sdk_authorization(&input, url),
                    "{url} {region}"
                );
            }
        }
        // And they differ when an input does: the comparison is not vacuous.
        let input = SigningInput {
            access_key_id: "ASIAX",
            secret_access_key: "s",
            session_token: "t",
            region: "us-east-1",
            host: "sts.us-east-1.amazonaws.com",
            path: "/",
            body: b"Action=AssumeRole",
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        };
        let other = SigningInput {
            secret_access_key: "S",
            ..input
        };
        assert_ne!(
            ours(&other),
            sdk_authorization(
                &SigningInput {
                    secret_access_key: "s",
                    ..other
                },
                "https://sts.us-east-1.amazonaws.com/"
            )
        );
    }

    #[test]
    fn form_encoding_escapes_all_but_unreserved() {
        assert_eq!(
            form_encode(&[("RoleSessionName", "a b+c/d@e=f,g.h-_~")]),
            "RoleSessionName=a%20b%2Bc%2Fd%40e%3Df%2Cg.h-_~"
        );
    }
}
