//! STS for the credentials the emulator issued: GetCallerIdentity, the end-to-end proof
//! that a client received the access key, the secret and the token intact and signs with
//! them, and AssumeRole (role chaining, see [`super::assume_role`]).
//!
//! The request is ordinary SigV4 with HMAC-SHA256 (service `sts`, any region in the scope),
//! with `X-Amz-Security-Token` carrying the session token. Answers use the STS query-protocol
//! XML, including its error shape.

use hmac::{KeyInit as _, Mac as _};
use hyper::{HeaderMap, StatusCode};

use super::assume_role::{self, RoleTrust};
use super::sessions::{Session, SessionStore};
use super::sts_xml::{NAMESPACE, StsAnswer, error, xml_escape};
use super::verify::single_header;
use crate::sigv4x509;

/// The skew AWS SigV4 services accept for header-signed requests.
const MAX_SKEW: i64 = 15 * 60;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Answers `POST /` (or `GET /?Action=...`) as STS would, for a clock reading `now`:
/// the signature first (with the secret of the session the access key names), then the
/// action, GetCallerIdentity or AssumeRole.
#[allow(clippy::too_many_arguments)]
pub fn handle(
    sessions: &SessionStore,
    trust: &RoleTrust,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    rid: &str,
) -> StsAnswer {
    let (session, params) =
        match authenticate(sessions, method, path, query, headers, body, now, rid) {
            Ok(authenticated) => authenticated,
            Err(answer) => return answer,
        };
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    match action {
        "GetCallerIdentity" => caller_identity(&session, rid),
        "AssumeRole" => assume_role::answer(sessions, trust, &session, &params, now, rid),
        _ => error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!(
                "Could not find operation {action} for version 2011-06-15 (this emulator serves GetCallerIdentity and AssumeRole)"
            ),
            rid,
        ),
    }
}

/// The session whose credentials signed the request, and the request's parameters (query
/// and form body), once the signature, the token and the date are checked.
#[allow(clippy::too_many_arguments)]
fn authenticate(
    sessions: &SessionStore,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    rid: &str,
) -> Result<(Session, Vec<(String, String)>), StsAnswer> {
    let sig_mismatch = |m: &str| error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", m, rid);
    let bad_header = |_: super::errors::ServiceError| {
        error(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            "A header is malformed or repeated.",
            rid,
        )
    };

    let Some(authorization) = single_header(headers, "authorization").map_err(bad_header)? else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
            rid,
        ));
    };
    let auth = sigv4x509::parse_authorization(authorization).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            &format!("Authorization header: {e}"),
            rid,
        )
    })?;
    if auth.algorithm != "AWS4-HMAC-SHA256" {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            &format!("Unsupported AWS 'algorithm': '{}'", auth.algorithm),
            rid,
        ));
    }
    if auth.service != "sts" || auth.terminator != "aws4_request" {
        return Err(sig_mismatch(&format!(
            "Credential should be scoped to correct service: 'sts', not '{}/{}'",
            auth.service, auth.terminator
        )));
    }
    let invalid_token = || {
        error(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
            rid,
        )
    };
    let session = sessions.get(&auth.serial).ok_or_else(invalid_token)?;
    let token = single_header(headers, "x-amz-security-token")
        .map_err(bad_header)?
        .ok_or_else(invalid_token)?;
    // Compare digests, so that the time taken says nothing about the token's bytes.
    let digest = |b: &[u8]| <sha2::Sha256 as sha2::Digest>::digest(b);
    if digest(token.as_bytes()) != digest(session.session_token.as_bytes()) {
        return Err(invalid_token());
    }
    if now >= session.expiration {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ExpiredToken",
            "The security token included in the request is expired",
            rid,
        ));
    }
    let amz_date = single_header(headers, "x-amz-date")
        .map_err(bad_header)?
        .ok_or_else(|| sig_mismatch("The X-Amz-Date header is missing."))?;
    let time = sigv4x509::parse_amz_date(amz_date)
        .ok_or_else(|| sig_mismatch("X-Amz-Date is not YYYYMMDDTHHMMSSZ."))?;
    if (now - time.unix_timestamp()).abs() > MAX_SKEW {
        return Err(sig_mismatch(&format!(
            "Signature expired: {amz_date} is more than 15 minutes away from the server time."
        )));
    }
    if amz_date.get(..8) != Some(auth.date.as_str()) {
        return Err(sig_mismatch(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ));
    }
    for must in ["host", "x-amz-date", "x-amz-security-token"] {
        if !auth.signed_headers.iter().any(|h| h == must) {
            return Err(sig_mismatch(&format!("'{must}' must be a signed header.")));
        }
    }

    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let mut any = false;
        for value in headers.get_all(name.as_str()) {
            let value = value.to_str().map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "IncompleteSignature",
                    "A header is not visible ASCII.",
                    rid,
                )
            })?;
            pairs.push((name.as_str(), value));
            any = true;
        }
        if !any {
            return Err(sig_mismatch(&format!(
                "The signed header '{name}' was not received."
            )));
        }
    }
    let canonical_query = sigv4x509::canonical_query(sigv4x509::decode_query(query));
    let canonical = sigv4x509::canonical_request(method, path, &canonical_query, &pairs, body);
    let scope = format!("{}/{}/sts/aws4_request", auth.date, auth.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sigv4x509::hex_sha256(canonical.text.as_bytes())
    );
    let secret = zeroize::Zeroizing::new(format!("AWS4{}", session.secret_access_key.as_str()));
    let mut key = hmac(secret.as_bytes(), auth.date.as_bytes());
    for part in [auth.region.as_str(), "sts", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let mut mac =
        HmacSha256::new_from_slice(&key).map_err(|_| sig_mismatch("internal key error"))?;
    mac.update(string_to_sign.as_bytes());
    if canonical.signed_headers != auth.signed_headers.join(";")
        || mac.verify_slice(&auth.signature).is_err()
    {
        return Err(sig_mismatch(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }

    // Authenticated: now the action.
    let mut params = sigv4x509::decode_query(query);
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(sigv4x509::decode_query(&String::from_utf8_lossy(body)));
    }
    Ok((session, params))
}

fn caller_identity(session: &Session, rid: &str) -> StsAnswer {
    StsAnswer {
        status: StatusCode::OK,
        body: format!(
            "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{rid}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
            xml_escape(&session.assumed_role_arn),
            xml_escape(&session.assumed_role_id),
            xml_escape(&session.account),
        ),
        code: None,
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::sessions::Session;
    use zeroize::Zeroizing;

    /// Signs like any SigV4 client (the AWS documentation's algorithm), independently of the
    /// verifier's code path above except for the shared canonicalisation.
    fn sign(secret: &str, token: &str, date: &str, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:1".parse().unwrap());
        headers.insert("x-amz-date", date.parse().unwrap());
        headers.insert("x-amz-security-token", token.parse().unwrap());
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        let c = sigv4x509::canonical_request("POST", "/", "", &pairs, body);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{date}\n{}/us-west-2/sts/aws4_request\n{}",
            &date[..8],
            sigv4x509::hex_sha256(c.text.as_bytes())
        );
        let mut k = hmac(format!("AWS4{secret}").as_bytes(), &date.as_bytes()[..8]);
        for p in ["us-west-2", "sts", "aws4_request"] {
            k = hmac(&k, p.as_bytes());
        }
        let sig = hex::encode(hmac(&k, sts.as_bytes()));
        headers.insert(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=ASIATEST/{}/us-west-2/sts/aws4_request, SignedHeaders={}, Signature={sig}",
                &date[..8],
                c.signed_headers
            )
            .parse()
            .unwrap(),
        );
        headers
    }

    #[test]
    fn get_caller_identity_round_trip_and_errors() {
        let store = SessionStore::new(10);
        let now = 1_720_265_939;
        store.insert(
            Session {
                access_key_id: "ASIATEST".into(),
                secret_access_key: Zeroizing::new("secret".into()),
                session_token: Zeroizing::new("token".into()),
                expiration: now + 60,
                assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
                assumed_role_id: "AROAX:s".into(),
                account: "123456789012".into(),
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                source_identity: None,
            },
            now,
        );
        let body = b"Action=GetCallerIdentity&Version=2011-06-15";
        let date = "20240706T113859Z";
        let ok = handle(
            &store,
            &RoleTrust::default(),
            "POST",
            "/",
            "",
            &sign("secret", "token", date, body),
            body,
            now,
            "r",
        );
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        assert!(
            ok.body
                .contains("<Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>")
        );

        let bad = handle(
            &store,
            &RoleTrust::default(),
            "POST",
            "/",
            "",
            &sign("wrong", "token", date, body),
            body,
            now,
            "r",
        );
        assert_eq!(bad.code, Some("SignatureDoesNotMatch"));
        let bad = handle(
            &store,
            &RoleTrust::default(),
            "POST",
            "/",
            "",
            &sign("secret", "other", date, body),
            body,
            now,
            "r",
        );
        assert_eq!(bad.code, Some("InvalidClientTokenId"));
        let bad = handle(
            &store,
            &RoleTrust::default(),
            "POST",
            "/",
            "",
            &sign("secret", "token", date, body),
            b"Action=GetCallerIdentity",
            now,
            "r",
        );
        assert_eq!(bad.code, Some("SignatureDoesNotMatch"));
        let late = handle(
            &store,
            &RoleTrust::default(),
            "POST",
            "/",
            "",
            &sign("secret", "token", date, body),
            body,
            now + 61,
            "r",
        );
        assert_eq!(late.code, Some("ExpiredToken"));
        assert_eq!(late.status, StatusCode::BAD_REQUEST);
    }
}
