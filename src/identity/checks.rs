//! The checks on a leaf certificate and its chain that spare a call the service would
//! answer with an opaque "Untrusted Signing Certificate": the certificate must be an
//! end-entity certificate allowed to sign, valid now, with a chain the service accepts.

use time::OffsetDateTime;

use crate::identity_error::{ErrorKind, IdentityError};
use crate::x509::{Certificate, MAX_CHAIN};

/// Checks that `leaf`, named in messages as `source`, can sign requests at `now`.
pub fn check_leaf(
    leaf: &Certificate,
    source: &str,
    now: OffsetDateTime,
) -> Result<(), IdentityError> {
    let input = format!("{source} {}", leaf.describe());
    if leaf.is_ca() {
        return Err(IdentityError::new(
            ErrorKind::Refused,
            input,
            "is a CA certificate (basicConstraints CA:TRUE) and cannot sign requests",
            "give the end-entity certificate your CA issued for this host",
        ));
    }
    if leaf.allows_digital_signature() == Some(false) {
        return Err(IdentityError::new(
            ErrorKind::Refused,
            input,
            "has a keyUsage without digitalSignature, which the service requires",
            "issue a certificate with keyUsage digitalSignature",
        ));
    }
    if now > leaf.not_after() {
        return Err(IdentityError::new(
            ErrorKind::Refused,
            input,
            format!("expired at {}", rfc3339(leaf.not_after())),
            "renew the certificate",
        ));
    }
    if now < leaf.not_before() {
        return Err(IdentityError::new(
            ErrorKind::NotYetValid,
            input,
            format!("is not valid before {}", rfc3339(leaf.not_before())),
            "check the host clock, or wait until the certificate becomes valid",
        ));
    }
    Ok(())
}

/// Checks that the chain sent with `leaf` is within the service's limit.
pub fn check_chain_length(leaf: &Certificate, chain: &[Certificate]) -> Result<(), IdentityError> {
    if chain.len() > MAX_CHAIN {
        return Err(IdentityError::new(
            ErrorKind::Refused,
            format!("certificate chain for {}", leaf.describe()),
            format!(
                "has {} certificates; the service accepts at most {MAX_CHAIN}",
                chain.len()
            ),
            "send only the intermediates between the leaf and the trust anchor",
        ));
    }
    Ok(())
}

/// RFC 3339 in UTC with whole seconds, e.g. `2026-01-02T03:04:05Z`: the form SDKs parse
/// most strictly (botocore wants exactly `%Y-%m-%dT%H:%M:%SZ`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate valid from `not_before` to `not_after`.
    fn certificate(ca: bool, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Certificate {
        let mut params = rcgen::CertificateParams::new(vec!["host.example".into()]).unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Certificate::from_der(params.self_signed(&key).unwrap().der()).unwrap()
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2030-06-01 00:00 UTC)
    }

    #[test]
    fn a_leaf_valid_now_passes() {
        let leaf = certificate(false, (2030, 1, 1), (2031, 1, 1));
        assert_eq!(check_leaf(&leaf, "certificate c.pem", now()), Ok(()));
    }

    #[test]
    fn refused_certificates_are_permanent() {
        let ca = certificate(true, (2030, 1, 1), (2031, 1, 1));
        let expired = certificate(false, (2029, 1, 1), (2030, 1, 1));
        for (leaf, problem) in [
            (ca, "is a CA certificate"),
            (expired, "expired at 2030-01-01T00:00:00Z"),
        ] {
            let error = check_leaf(&leaf, "certificate c.pem", now()).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
            assert_eq!(error.kind(), ErrorKind::Refused);
            assert!(!error.is_transient(), "{error}");
        }
    }

    /// A certificate issued a moment ago to a host whose clock lags becomes valid by
    /// itself: worth retrying.
    #[test]
    fn a_certificate_not_valid_yet_is_transient() {
        let early = certificate(false, (2030, 7, 1), (2031, 1, 1));
        let error = check_leaf(&early, "certificate c.pem", now()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is not valid before 2030-07-01T00:00:00Z; check the host clock"),
            "{error}"
        );
        assert!(error.is_transient());
    }

    #[test]
    fn a_chain_longer_than_the_service_takes_is_refused() {
        let leaf = certificate(false, (2030, 1, 1), (2031, 1, 1));
        let chain: Vec<Certificate> = (0..=MAX_CHAIN)
            .map(|_| certificate(true, (2030, 1, 1), (2031, 1, 1)))
            .collect();
        assert!(check_chain_length(&leaf, &chain[..MAX_CHAIN]).is_ok());
        let error = check_chain_length(&leaf, &chain).unwrap_err();
        assert!(error.to_string().contains("has 6 certificates"), "{error}");
        assert!(!error.is_transient());
    }
}
