//! Authentication of a CreateSession request: signing-spec §2.7, steps 1 to 7.
//!
//! The canonical request is rebuilt from what arrived (method, path, query, the headers named
//! in `SignedHeaders` with their received values, the de-chunked body) with the shared pure
//! functions of [`crate::sigv4x509`], and the signature is checked against the key of the
//! certificate in `X-Amz-X509`. Whether that certificate is trusted is decided afterwards
//! (chain building needs the trust anchor ARN, which may be in the body).

use std::sync::Arc;

use hyper::HeaderMap;

use super::chain::{BoundedCache, Cert};
use super::errors::ServiceError;
use super::signature::Hash;
use crate::sigv4x509;

/// The request signature algorithms the emulator verifies, by their wire names. The emulator
/// keeps its own list (rather than the client's [`sigv4x509::Algorithm`]) so that it checks
/// what the service accepts, whatever the client can sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    RsaSha256,
    EcdsaSha256,
    /// Pure ML-DSA of any size, over the whole string to sign.
    MlDsa,
}

impl Scheme {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "AWS4-X509-RSA-SHA256" => Some(Self::RsaSha256),
            "AWS4-X509-ECDSA-SHA256" => Some(Self::EcdsaSha256),
            "AWS4-X509-MLDSA" => Some(Self::MlDsa),
            _ => None,
        }
    }
}

/// The string to sign of signing-spec §2.5 for the algorithm named `name`.
fn string_to_sign(name: &str, amz_date: &str, region: &str, canonical_request: &str) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    format!(
        "{name}\n{amz_date}\n{}\n{}",
        sigv4x509::credential_scope(date, region),
        sigv4x509::hex_sha256(canonical_request.as_bytes())
    )
}

/// What the emulator received, as the signature covers it.
pub struct Received<'a> {
    pub method: &'a str,
    /// The path as received (percent-encoding kept).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The body after de-chunking.
    pub body: &'a [u8],
}

/// A request whose signature verified with the key of its leaf certificate.
#[derive(Debug)]
pub struct Authenticated {
    pub leaf: Arc<Cert>,
    /// The `X-Amz-X509` value, the key of the chain cache.
    pub leaf_b64: String,
    /// The `X-Amz-X509-Chain` value, when sent.
    pub chain_b64: Option<String>,
    /// The string to sign rebuilt from what was received, and the signature that verified
    /// over it: kept in the request log so that tests can check the signature with another
    /// implementation. Neither is a secret.
    pub string_to_sign: String,
    pub signature: Vec<u8>,
}

/// One header value as text, or a refusal naming it.
pub fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, ServiceError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ServiceError::invalid_signature(format!(
            "the {name} header is sent more than once"
        )));
    }
    first.to_str().map(Some).map_err(|_| {
        ServiceError::invalid_signature(format!("the {name} header is not visible ASCII"))
    })
}

fn deny(reason: impl Into<String>) -> ServiceError {
    ServiceError::invalid_signature(reason)
}

/// Verifies the signature of a CreateSession request for a server in `region` whose clock
/// reads `now` (Unix seconds). Parsed leaf certificates are cached by their base64 text.
pub fn authenticate(
    req: &Received<'_>,
    region: &str,
    now: i64,
    max_skew: i64,
    leaves: &BoundedCache<Cert>,
) -> Result<Authenticated, ServiceError> {
    // 1. Authorization.
    let authorization = single_header(req.headers, "authorization")?
        .ok_or_else(|| deny("the Authorization header is missing"))?;
    let auth = sigv4x509::parse_authorization(authorization).map_err(|e| deny(format!("{e}")))?;
    let scheme = Scheme::from_name(&auth.algorithm).ok_or_else(|| {
        deny(format!(
            "the algorithm {:?} is not AWS4-X509-RSA-SHA256 or AWS4-X509-ECDSA-SHA256 or AWS4-X509-MLDSA",
            auth.algorithm,
        ))
    })?;
    if auth.service != sigv4x509::SERVICE || auth.terminator != sigv4x509::TERMINATOR {
        return Err(deny(format!(
            "the credential scope ends in {}/{}, not {}/{}",
            auth.service,
            auth.terminator,
            sigv4x509::SERVICE,
            sigv4x509::TERMINATOR
        )));
    }

    // 2. The leaf certificate and its serial.
    let leaf_b64 = single_header(req.headers, "x-amz-x509")?
        .ok_or_else(|| deny("the X-Amz-X509 header is missing"))?;
    let leaf = leaves
        .get_or_try(leaf_b64.as_bytes(), || Cert::from_base64(leaf_b64))
        .map_err(|e| deny(format!("the X-Amz-X509 certificate {e}")))?;
    if auth.serial != leaf.serial_decimal {
        return Err(deny(format!(
            "the Credential serial {} is not the serial {} of the X-Amz-X509 certificate",
            auth.serial, leaf.serial_decimal
        )));
    }

    // 3. The algorithm must fit the key.
    let fits = match scheme {
        Scheme::RsaSha256 => leaf.key.is_rsa(),
        Scheme::EcdsaSha256 => leaf.key.is_ec(),
        Scheme::MlDsa => leaf.key.is_mldsa(),
    };
    if !fits {
        return Err(deny(format!(
            "the algorithm {} does not fit the certificate's {} key",
            auth.algorithm,
            leaf.key.describe()
        )));
    }

    // 4. Date and region of the scope.
    let amz_date = single_header(req.headers, "x-amz-date")?
        .ok_or_else(|| deny("the X-Amz-Date header is missing"))?;
    let request_time = sigv4x509::parse_amz_date(amz_date)
        .ok_or_else(|| deny(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if amz_date.get(..8) != Some(auth.date.as_str()) {
        return Err(deny(format!(
            "the Credential date {} is not the date of X-Amz-Date {amz_date}",
            auth.date
        )));
    }
    if auth.region != region {
        return Err(deny(format!(
            "the Credential region {} is not this endpoint's region {region}",
            auth.region
        )));
    }

    // 5. The headers that must be signed.
    let chain_b64 = single_header(req.headers, "x-amz-x509-chain")?;
    let mut must = vec!["host", "x-amz-date", "x-amz-x509"];
    if chain_b64.is_some() {
        must.push("x-amz-x509-chain");
    }
    for name in must {
        if !auth.signed_headers.iter().any(|h| h == name) {
            return Err(deny(format!("{name} is not in SignedHeaders")));
        }
    }

    // 6. Clock skew.
    let skew = (now - request_time.unix_timestamp()).abs();
    if skew > max_skew {
        return Err(ServiceError::signature_expired(format!(
            "X-Amz-Date {amz_date} is {skew} s away from the server time {}; at most {max_skew} s is accepted",
            sigv4x509::amz_date(
                time::OffsetDateTime::from_unix_timestamp(now)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            )
        )));
    }

    // 7. The canonical request from the received values, and the signature.
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len() + 2);
    for name in &auth.signed_headers {
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(deny(format!(
                "SignedHeaders holds {name:?}, not a lowercase header name"
            )));
        }
        let values = req.headers.get_all(name.as_str());
        let mut any = false;
        for value in values {
            let value = value
                .to_str()
                .map_err(|_| deny(format!("the signed header {name} is not visible ASCII")))?;
            pairs.push((name.as_str(), value));
            any = true;
        }
        if !any {
            return Err(deny(format!("the signed header {name} was not received")));
        }
    }
    let query = sigv4x509::canonical_query(sigv4x509::decode_query(req.query));
    let canonical = sigv4x509::canonical_request(req.method, req.path, &query, &pairs, req.body);
    if canonical.signed_headers != auth.signed_headers.join(";") {
        return Err(deny(format!(
            "SignedHeaders {:?} is not sorted and free of repeats",
            auth.signed_headers.join(";")
        )));
    }
    let string_to_sign = string_to_sign(&auth.algorithm, amz_date, region, &canonical.text);
    if !leaf
        .key
        .verify(Hash::Sha256, string_to_sign.as_bytes(), &auth.signature)
    {
        return Err(deny(
            "the signature does not verify with the X-Amz-X509 certificate's key over the canonical request rebuilt from what was received",
        ));
    }
    Ok(Authenticated {
        leaf_b64: leaf_b64.to_owned(),
        leaf,
        chain_b64: chain_b64.map(str::to_owned),
        string_to_sign,
        signature: auth.signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_to_sign_is_the_clients_for_every_shared_name() {
        for alg in [
            sigv4x509::Algorithm::RsaSha256,
            sigv4x509::Algorithm::EcdsaSha256,
        ] {
            assert_eq!(
                string_to_sign(alg.as_str(), "20240706T113859Z", "eu-west-1", "canonical"),
                sigv4x509::string_to_sign(alg, "20240706T113859Z", "eu-west-1", "canonical")
            );
        }
        let mldsa = string_to_sign("AWS4-X509-MLDSA", "20240706T113859Z", "eu-west-1", "c");
        assert!(mldsa.starts_with("AWS4-X509-MLDSA\n20240706T113859Z\n20240706/eu-west-1/"));
    }

    #[test]
    fn schemes_by_name() {
        assert_eq!(Scheme::from_name("AWS4-X509-MLDSA"), Some(Scheme::MlDsa));
        assert_eq!(
            Scheme::from_name("AWS4-X509-RSA-SHA256"),
            Some(Scheme::RsaSha256)
        );
        assert_eq!(
            Scheme::from_name("AWS4-X509-ECDSA-SHA256"),
            Some(Scheme::EcdsaSha256)
        );
        assert_eq!(Scheme::from_name("AWS4-X509-MLDSA-65"), None);
        assert_eq!(Scheme::from_name("aws4-x509-mldsa"), None);
    }
}
