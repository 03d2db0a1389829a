//! SigV4-X509: the request signature IAM Roles Anywhere expects on `CreateSession`.
//!
//! These are pure functions with no I/O, shared by the client (which signs) and the
//! emulator (which rebuilds the same bytes to verify). Everything here is byte-exact with
//! the official helper; `tests/it/kat.rs` holds the known-answer proof.
//!
//! The scheme is SigV4 with the HMAC replaced by an X.509 private key:
//!
//! ```text
//! CanonicalRequest = POST \n /sessions \n query \n headers \n \n signed-headers \n hex(sha256(body))
//! StringToSign     = algorithm \n x-amz-date \n yyyymmdd/region/rolesanywhere/aws4_request \n hex(sha256(CanonicalRequest))
//! Authorization    = algorithm Credential=<decimal serial>/<scope>, SignedHeaders=<list>, Signature=<hex>
//! ```

use std::fmt;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// The signing name of the service in the credential scope.
pub const SERVICE: &str = "rolesanywhere";
/// The last element of the credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// The path of the one operation this protocol serves.
pub const SESSIONS_PATH: &str = "/sessions";
/// The content type every known client sends and signs.
pub const CONTENT_TYPE: &str = "application/json";

/// How the string to sign is signed; named after the leaf certificate's key type.
///
/// The digest is SHA-256 on every curve and modulus size: the name does not follow the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 over SHA-256; the signature is the raw modulus-length value.
    RsaSha256,
    /// ECDSA over SHA-256 on P-256, P-384 and P-521; the signature is DER `SEQUENCE { r, s }`.
    EcdsaSha256,
    /// Pure ML-DSA (FIPS 204) over the string to sign itself, empty context, deterministic,
    /// for all three parameter sets; the signature is the raw FIPS 204 encoding.
    MlDsa,
}

impl Algorithm {
    /// The name on the wire, first word of the `Authorization` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaSha256 => "AWS4-X509-RSA-SHA256",
            Self::EcdsaSha256 => "AWS4-X509-ECDSA-SHA256",
            Self::MlDsa => "AWS4-X509-MLDSA",
        }
    }

    /// The algorithm of a wire name, if it is one this crate knows.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "AWS4-X509-RSA-SHA256" => Some(Self::RsaSha256),
            "AWS4-X509-ECDSA-SHA256" => Some(Self::EcdsaSha256),
            "AWS4-X509-MLDSA" => Some(Self::MlDsa),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` in UTC, the form of `X-Amz-Date`.
pub fn amz_date(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// Parses an `X-Amz-Date` value back into a time, for the verifier's skew check.
pub fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// SigV4 URI encoding: keeps `A-Z a-z 0-9 - _ . ~`, writes every other byte as `%XY`
/// (uppercase hex). A space becomes `%20`, never `+`.
pub fn uri_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
        }
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes a raw query string (`a=b&c=d`, percent-encoded, `+` as space as in HTML forms)
/// into name/value pairs in received order. Malformed escapes are kept literally, as
/// servers commonly do, so that the signature check (not the parser) rejects them.
pub fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical query: each name and value URI-encoded, sorted by encoded name and then
/// by encoded value (raw bytes), joined as `k=v` with `&`. Empty for no parameters.
pub fn canonical_query<N, V>(params: impl IntoIterator<Item = (N, V)>) -> String
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    let mut encoded: Vec<(String, String)> = params
        .into_iter()
        .map(|(n, v)| (uri_encode(n.as_ref()), uri_encode(v.as_ref())))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A header value as it appears in the canonical request: trimmed at both ends, with each
/// run of spaces and tabs folded into one space.
pub fn canonical_header_value(value: &str) -> String {
    value
        .split([' ', '\t'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lowercase hex SHA-256, the form every hash takes in SigV4.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The canonical request and the signed-headers list that goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// The whole canonical request text.
    pub text: String,
    /// The lowercase header names, sorted, joined with `;`.
    pub signed_headers: String,
}

/// Builds the canonical request. `headers` are the signed headers as (name, value) pairs in
/// any order and letter case; a name given twice has its values joined with `,` in the order
/// given, as SigV4 requires.
pub fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> CanonicalRequest {
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = canonical_header_value(value);
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));

    let signed_headers = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut text = String::with_capacity(512);
    text.push_str(method);
    text.push('\n');
    text.push_str(path);
    text.push('\n');
    text.push_str(canonical_query);
    text.push('\n');
    for (name, value) in &merged {
        text.push_str(name);
        text.push(':');
        text.push_str(value);
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&signed_headers);
    text.push('\n');
    text.push_str(&hex_sha256(payload));
    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// `YYYYMMDD/region/rolesanywhere/aws4_request`.
pub fn credential_scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/{SERVICE}/{TERMINATOR}")
}

/// The string to sign, with no trailing newline.
pub fn string_to_sign(
    algorithm: Algorithm,
    amz_date: &str,
    region: &str,
    canonical_request: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    format!(
        "{}\n{}\n{}\n{}",
        algorithm.as_str(),
        amz_date,
        credential_scope(date, region),
        hex_sha256(canonical_request.as_bytes())
    )
}

/// The `Authorization` header value: one space after the algorithm, `", "` between fields.
pub fn authorization(
    algorithm: Algorithm,
    serial_decimal: &str,
    amz_date: &str,
    region: &str,
    signed_headers: &str,
    signature: &[u8],
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    format!(
        "{} Credential={}/{}, SignedHeaders={}, Signature={}",
        algorithm.as_str(),
        serial_decimal,
        credential_scope(date, region),
        signed_headers,
        hex::encode(signature)
    )
}

/// Standard base64 (padded, no line breaks) of a DER certificate: the `X-Amz-X509` value.
pub fn certificate_header(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// The `X-Amz-X509-Chain` value: each certificate in standard base64, joined by a bare `,`.
pub fn chain_header<D: AsRef<[u8]>>(chain: &[D]) -> String {
    chain
        .iter()
        .map(|der| certificate_header(der.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Everything about one CreateSession request that the signature covers.
#[derive(Clone, Debug)]
pub struct SessionRequest<'a> {
    /// The `Host` header exactly as sent, with the port when it is not the default.
    pub host: &'a str,
    /// The region of the credential scope (the plain region, also for FIPS hosts).
    pub region: &'a str,
    /// `X-Amz-Date`, see [`amz_date`].
    pub amz_date: &'a str,
    /// Query parameters, decoded (they are encoded here).
    pub query: &'a [(&'a str, &'a str)],
    /// The body bytes exactly as sent.
    pub body: &'a [u8],
    /// DER of the leaf certificate.
    pub leaf_der: &'a [u8],
    /// DER of each chain certificate, in the order they are sent; empty for none.
    pub chain_der: &'a [Vec<u8>],
}

/// A request made ready for signing: its headers, and the string the key must sign.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    /// Headers to send, in the order to send them (`Authorization` comes from
    /// [`PreparedRequest::authorization`]).
    pub headers: Vec<(&'static str, String)>,
    /// The canonical request (kept for `--debug` and for tests).
    pub canonical_request: CanonicalRequest,
    /// The exact bytes to sign.
    pub string_to_sign: String,
    amz_date: String,
    region: String,
}

impl SessionRequest<'_> {
    /// Builds the signed headers and the string to sign. Signs exactly
    /// `content-type;host;x-amz-date;x-amz-x509[;x-amz-x509-chain]`, the set every service
    /// version accepts.
    pub fn prepare(&self, algorithm: Algorithm) -> PreparedRequest {
        let mut headers: Vec<(&'static str, String)> = vec![
            ("content-type", CONTENT_TYPE.to_owned()),
            ("host", self.host.to_owned()),
            ("x-amz-date", self.amz_date.to_owned()),
            ("x-amz-x509", certificate_header(self.leaf_der)),
        ];
        if !self.chain_der.is_empty() {
            headers.push(("x-amz-x509-chain", chain_header(self.chain_der)));
        }
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let canonical = canonical_request(
            "POST",
            SESSIONS_PATH,
            &canonical_query(self.query.iter().copied()),
            &pairs,
            self.body,
        );
        let string_to_sign = string_to_sign(algorithm, self.amz_date, self.region, &canonical.text);
        PreparedRequest {
            headers,
            canonical_request: canonical,
            string_to_sign,
            amz_date: self.amz_date.to_owned(),
            region: self.region.to_owned(),
        }
    }
}

impl PreparedRequest {
    /// The `Authorization` header for a signature over [`PreparedRequest::string_to_sign`].
    pub fn authorization(
        &self,
        algorithm: Algorithm,
        serial_decimal: &str,
        signature: &[u8],
    ) -> String {
        authorization(
            algorithm,
            serial_decimal,
            &self.amz_date,
            &self.region,
            &self.canonical_request.signed_headers,
            signature,
        )
    }
}

/// The parts of a received `Authorization` header, for verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The first word, as received (it may name no algorithm this crate knows).
    pub algorithm: String,
    /// `Credential` split on `/`: serial, date, region, service, terminator.
    pub serial: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    /// The signed header names, as listed.
    pub signed_headers: Vec<String>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

/// Why an `Authorization` header could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error("the Authorization header has no algorithm and fields")]
    Shape,
    #[error("the Authorization header lacks the {0} field")]
    MissingField(&'static str),
    #[error("the Credential field must have five parts separated by '/'")]
    Credential,
    #[error("the Signature field is not hex")]
    SignatureHex,
}

/// Parses `ALGORITHM Credential=a/b/c/d/e, SignedHeaders=x;y, Signature=hex`. The fields are
/// split on `,` and trimmed (the SigV4 norm), and may come in any order.
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, AuthorizationError> {
    let (algorithm, rest) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthorizationError::Shape)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let field = field.trim();
        if let Some(v) = field.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = field.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = field.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or(AuthorizationError::MissingField("Credential"))?;
    let signed = signed.ok_or(AuthorizationError::MissingField("SignedHeaders"))?;
    let signature = signature.ok_or(AuthorizationError::MissingField("Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [serial, date, region, service, terminator] = parts.as_slice() else {
        return Err(AuthorizationError::Credential);
    };
    Ok(ParsedAuthorization {
        algorithm: algorithm.to_owned(),
        serial: (*serial).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        terminator: (*terminator).to_owned(),
        signed_headers: signed.split(';').map(str::to_owned).collect(),
        signature: hex::decode(signature).map_err(|_| AuthorizationError::SignatureHex)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(
            uri_encode("arn:aws:iam::291738886548:role/x"),
            "arn%3Aaws%3Aiam%3A%3A291738886548%3Arole%2Fx"
        );
        assert_eq!(uri_encode("a b+c~"), "a%20b%2Bc~");
        assert_eq!(uri_encode("é"), "%C3%A9");
    }

    #[test]
    fn query_round_trips_and_sorts() {
        let decoded = decode_query("b=2&a=x%2Fy&a=%41&c");
        assert_eq!(canonical_query(decoded), "a=A&a=x%2Fy&b=2&c=");
        assert_eq!(canonical_query(Vec::<(&str, &str)>::new()), "");
        assert_eq!(decode_query("x=%zz%4"), vec![("x".into(), "%zz%4".into())]);
    }

    #[test]
    fn header_values_fold() {
        assert_eq!(canonical_header_value("  a   b\t c  "), "a b c");
    }

    #[test]
    fn repeated_headers_join_in_order() {
        let c = canonical_request(
            "POST",
            "/",
            "",
            &[("X-B", "2"), ("x-a", "1"), ("x-b", "1")],
            b"",
        );
        assert!(c.text.contains("x-a:1\nx-b:2,1\n\nx-a;x-b\n"));
    }

    #[test]
    fn dates_round_trip() {
        let t = time::macros::datetime!(2024-07-06 11:38:59 UTC);
        assert_eq!(amz_date(t), "20240706T113859Z");
        assert_eq!(parse_amz_date("20240706T113859Z"), Some(t));
        assert_eq!(parse_amz_date("2024-07-06"), None);
    }

    #[test]
    fn authorization_parses_back() {
        let header = authorization(
            Algorithm::EcdsaSha256,
            "21",
            "20240706T113859Z",
            "us-east-2",
            "host;x-amz-date",
            &[0xab, 0x01],
        );
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(parsed.algorithm, "AWS4-X509-ECDSA-SHA256");
        assert_eq!(parsed.serial, "21");
        assert_eq!(parsed.date, "20240706");
        assert_eq!(parsed.region, "us-east-2");
        assert_eq!(parsed.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(parsed.signature, vec![0xab, 0x01]);
        assert_eq!(
            parse_authorization("nothing"),
            Err(AuthorizationError::Shape)
        );
        assert_eq!(
            parse_authorization("A Credential=1/2/3, SignedHeaders=h, Signature=00"),
            Err(AuthorizationError::Credential)
        );
    }
}
