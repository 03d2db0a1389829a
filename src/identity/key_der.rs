//! Private keys from their DER encodings once any encryption is off: PKCS#8, PKCS#1 (RSA)
//! and SEC1 (EC), with the checks the service would otherwise fail on (an RSA key under
//! 2048 bits, a curve other than P-256, P-384 and P-521).

use pkcs8::der::Decode as _;
use pkcs8::{DecodePrivateKey as _, PrivateKeyInfoRef};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;

use super::key_problem::KeyProblem;
use crate::x509::key::{MIN_RSA_BITS, PrivateKey};
use crate::x509::mldsa::{MlDsaKey, MlDsaLevel};
use crate::x509::oid;

/// A plain PKCS#8 `PrivateKeyInfo`.
pub(super) fn pkcs8_key(der: &[u8]) -> Result<PrivateKey, KeyProblem> {
    let info =
        PrivateKeyInfoRef::from_der(der).map_err(|e| KeyProblem::Malformed(e.to_string()))?;
    let algorithm = info.algorithm.oid.to_string();
    match algorithm.as_str() {
        oid::RSA_ENCRYPTION => {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| KeyProblem::Malformed(e.to_string()))?;
            checked_rsa(key)
        }
        oid::EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map(|o| o.to_string())
                .map_err(|_| KeyProblem::ExplicitCurve)?;
            let bad = |e: pkcs8::Error| KeyProblem::Malformed(e.to_string());
            match curve.as_str() {
                oid::P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::P256)
                    .map_err(bad),
                oid::P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::P384)
                    .map_err(bad),
                oid::P521 => p521::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::P521)
                    .map_err(bad),
                other => Err(KeyProblem::Curve(oid::curve_name(other).to_owned())),
            }
        }
        other => match MlDsaLevel::from_oid(other) {
            Some(level) => mldsa_key(level, &info),
            None => Err(KeyProblem::Unsupported(format!(
                "an {} key",
                oid::algorithm_name(other)
            ))),
        },
    }
}

/// An ML-DSA PKCS#8 key in any of its three encodings (seed, expanded, both); the
/// parameters must be absent.
fn mldsa_key(level: MlDsaLevel, info: &PrivateKeyInfoRef<'_>) -> Result<PrivateKey, KeyProblem> {
    if info.algorithm.parameters.is_some() {
        return Err(KeyProblem::Malformed(format!(
            "its {level} algorithm identifier has parameters"
        )));
    }
    MlDsaKey::from_pkcs8_inner(level, info.private_key.as_bytes())
        .map(|(key, _)| PrivateKey::MlDsa(key))
        .map_err(|e| KeyProblem::Malformed(e.to_string()))
}

/// A PKCS#1 `RSAPrivateKey`.
pub(super) fn pkcs1_key(der: &[u8]) -> Result<PrivateKey, KeyProblem> {
    let key = rsa::RsaPrivateKey::from_pkcs1_der(der)
        .map_err(|e| KeyProblem::Malformed(e.to_string()))?;
    checked_rsa(key)
}

fn checked_rsa(key: rsa::RsaPrivateKey) -> Result<PrivateKey, KeyProblem> {
    let bits = key.n().bits() as usize;
    if bits < MIN_RSA_BITS {
        return Err(KeyProblem::WeakRsa(bits));
    }
    Ok(PrivateKey::Rsa(Box::new(key)))
}

/// A SEC1 `ECPrivateKey` on a named curve.
pub(super) fn sec1_key(der: &[u8]) -> Result<PrivateKey, KeyProblem> {
    let parsed = sec1::EcPrivateKey::from_der(der).map_err(|e| {
        if sec1_has_explicit_parameters(der) {
            KeyProblem::ExplicitCurve
        } else {
            KeyProblem::Malformed(e.to_string())
        }
    })?;
    let curve = parsed
        .parameters
        .and_then(|p| p.named_curve())
        .map(|o| o.to_string())
        .ok_or(KeyProblem::ExplicitCurve)?;
    let bad = |e: p256::elliptic_curve::DecodeError| KeyProblem::Malformed(e.to_string());
    match curve.as_str() {
        oid::P256 => p256::SecretKey::from_sec1_der(der)
            .map(|k| PrivateKey::P256(k.into()))
            .map_err(bad),
        oid::P384 => p384::SecretKey::from_sec1_der(der)
            .map(|k| PrivateKey::P384(k.into()))
            .map_err(bad),
        oid::P521 => p521::SecretKey::from_sec1_der(der)
            .map(|k| PrivateKey::P521(k.into()))
            .map_err(bad),
        other => Err(KeyProblem::Curve(oid::curve_name(other).to_owned())),
    }
}

/// True when a SEC1 key that the `sec1` crate refused carries explicit curve parameters
/// (`[0]` holding a SEQUENCE rather than a named-curve OID), as
/// `openssl ec -param_enc explicit` writes; the crate only parses named curves.
fn sec1_has_explicit_parameters(der: &[u8]) -> bool {
    use x509_parser::der_parser::ber::BerObjectContent;
    let Ok((_, outer)) = x509_parser::der_parser::parse_der(der) else {
        return false;
    };
    let Ok(fields) = outer.as_sequence() else {
        return false;
    };
    fields.get(2).is_some_and(|f| {
        matches!(&f.content, BerObjectContent::Unknown(any)
            if any.tag().0 == 0 && any.data.first() == Some(&0x30))
    })
}
