//! Signature checks: the request signature of SigV4-X509 and the signatures inside
//! certificates and CRLs.
//!
//! RSA goes through `ring` and ECDSA through the RustCrypto curve crates. The client signs
//! with RustCrypto's `rsa`; verifying RSA with a different implementation means a bug shared
//! by signer and verifier cannot make the emulator accept what AWS would refuse. ML-DSA goes
//! through [`super::mldsa`] (the `fips204` crate; the client uses RustCrypto's `ml-dsa`).

use ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use x509_parser::prelude::SubjectPublicKeyInfo;

use super::mldsa::Level;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// A public key the emulator can verify with, copied out of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// The PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// An uncompressed or compressed SEC1 point on P-256.
    P256(Vec<u8>),
    /// A SEC1 point on P-384.
    P384(Vec<u8>),
    /// A SEC1 point on P-521.
    P521(Vec<u8>),
    /// An encoded ML-DSA public key of the given parameter set.
    MlDsa(Level, Vec<u8>),
    /// Any other key (Ed25519, other curves): named by its algorithm OID.
    Unsupported(String),
}

impl PublicKey {
    /// The key of a SubjectPublicKeyInfo.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let alg = spki.algorithm.algorithm.to_id_string();
        let bits = spki.subject_public_key.data.to_vec();
        if alg == OID_RSA {
            return Self::Rsa(bits);
        }
        if alg == OID_EC {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            return match curve.as_str() {
                OID_P256 => Self::P256(bits),
                OID_P384 => Self::P384(bits),
                OID_P521 => Self::P521(bits),
                other => Self::Unsupported(format!("EC curve {other}")),
            };
        }
        if let Some(level) = Level::from_oid(&alg) {
            // RFC 9881: the parameters field is absent for every ML-DSA OID.
            if spki.algorithm.parameters.is_some() {
                return Self::Unsupported(format!("{} with parameters", level.name()));
            }
            return Self::MlDsa(level, bits);
        }
        Self::Unsupported(alg)
    }

    /// `RSA`, `EC` or the unsupported algorithm, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(_) => "RSA".into(),
            Self::P256(_) => "EC P-256".into(),
            Self::P384(_) => "EC P-384".into(),
            Self::P521(_) => "EC P-521".into(),
            Self::MlDsa(level, _) => level.name().into(),
            Self::Unsupported(what) => format!("unsupported key {what}"),
        }
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(&self) -> bool {
        matches!(self, Self::Rsa(_))
    }

    /// Whether this is an EC key on a supported curve.
    pub fn is_ec(&self) -> bool {
        matches!(self, Self::P256(_) | Self::P384(_) | Self::P521(_))
    }

    /// Whether this is an ML-DSA key of any size.
    pub fn is_mldsa(&self) -> bool {
        matches!(self, Self::MlDsa(..))
    }

    /// Verifies `signature` over `message` hashed with `hash`: PKCS#1 v1.5 for RSA, DER
    /// `Ecdsa-Sig-Value` for EC. ML-DSA ignores `hash`: pure ML-DSA signs the whole message
    /// (empty context). Returns false for any malformed input.
    pub fn verify(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Rsa(der) => {
                let alg: &dyn ring::signature::VerificationAlgorithm = match hash {
                    Hash::Sha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    Hash::Sha384 => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
                    Hash::Sha512 => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
                };
                ring::signature::UnparsedPublicKey::new(alg, der)
                    .verify(message, signature)
                    .is_ok()
            }
            Self::P256(point) => {
                let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
                    return false;
                };
                p256::ecdsa::DerSignature::try_from(signature)
                    .is_ok_and(|sig| key.verify_prehash(&hash.digest(message), &sig).is_ok())
            }
            Self::P384(point) => {
                let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
                    return false;
                };
                p384::ecdsa::DerSignature::try_from(signature)
                    .is_ok_and(|sig| key.verify_prehash(&hash.digest(message), &sig).is_ok())
            }
            Self::P521(point) => {
                let Ok(key) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
                    return false;
                };
                p521::ecdsa::DerSignature::try_from(signature)
                    .is_ok_and(|sig| key.verify_prehash(&hash.digest(message), &sig).is_ok())
            }
            Self::MlDsa(level, key) => level.verify(key, message, signature),
            Self::Unsupported(_) => false,
        }
    }
}

/// The SHA-2 digests certificates may be signed with (requests always use SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// How a certificate or CRL is signed, from its `signatureAlgorithm` OID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSignature {
    /// `sha{256,384,512}WithRSAEncryption`.
    Rsa(Hash),
    /// `ecdsa-with-SHA{256,384,512}`.
    Ecdsa(Hash),
    /// `id-ml-dsa-{44,65,87}`: the issuer's key must be of the same size.
    MlDsa(Level),
    /// MD5 or SHA-1: refused whatever the key (named for the message).
    Weak(&'static str),
    /// Anything else this emulator cannot check (RSA-PSS, Ed25519): its OID.
    Unsupported(String),
}

impl CertSignature {
    /// The algorithm named by a `signatureAlgorithm` OID.
    pub fn from_oid(oid: &str) -> Self {
        match oid {
            "1.2.840.113549.1.1.11" => Self::Rsa(Hash::Sha256),
            "1.2.840.113549.1.1.12" => Self::Rsa(Hash::Sha384),
            "1.2.840.113549.1.1.13" => Self::Rsa(Hash::Sha512),
            "1.2.840.10045.4.3.2" => Self::Ecdsa(Hash::Sha256),
            "1.2.840.10045.4.3.3" => Self::Ecdsa(Hash::Sha384),
            "1.2.840.10045.4.3.4" => Self::Ecdsa(Hash::Sha512),
            "1.2.840.113549.1.1.4" => Self::Weak("md5WithRSAEncryption"),
            "1.2.840.113549.1.1.2" => Self::Weak("md2WithRSAEncryption"),
            "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => Self::Weak("sha1WithRSAEncryption"),
            "1.2.840.10045.4.1" => Self::Weak("ecdsa-with-SHA1"),
            "1.2.840.10040.4.3" => Self::Weak("dsa-with-SHA1"),
            other => match Level::from_oid(other) {
                Some(level) => Self::MlDsa(level),
                None => Self::Unsupported(other.to_owned()),
            },
        }
    }

    /// Checks a signature made by `issuer` over `tbs`, or says why not.
    pub fn verify(&self, issuer: &PublicKey, tbs: &[u8], signature: &[u8]) -> Result<(), String> {
        let ok = match (self, issuer) {
            (Self::Rsa(hash), PublicKey::Rsa(_)) => issuer.verify(*hash, tbs, signature),
            (Self::Ecdsa(hash), key) if key.is_ec() => issuer.verify(*hash, tbs, signature),
            (Self::MlDsa(level), PublicKey::MlDsa(key_level, _)) if level == key_level => {
                issuer.verify(Hash::Sha256, tbs, signature)
            }
            (Self::Weak(name), _) => {
                return Err(format!(
                    "is signed with {name}; MD5 and SHA-1 signatures are refused"
                ));
            }
            (Self::Unsupported(oid), _) => {
                return Err(format!(
                    "uses signature algorithm {oid}, which this emulator cannot check"
                ));
            }
            (_, key) => {
                return Err(format!(
                    "has a signature algorithm that does not fit its issuer's {} key",
                    key.describe()
                ));
            }
        };
        if ok {
            Ok(())
        } else {
            Err("has a signature that does not verify with its issuer's key".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_algorithms_are_refused_before_any_key_work() {
        let key = PublicKey::Rsa(vec![0; 10]);
        let err = CertSignature::from_oid("1.2.840.113549.1.1.5")
            .verify(&key, b"tbs", b"sig")
            .unwrap_err();
        assert!(err.contains("SHA-1"), "{err}");
        assert!(
            CertSignature::from_oid("1.2.840.113549.1.1.4")
                .verify(&key, b"", b"")
                .unwrap_err()
                .contains("md5")
        );
    }

    #[test]
    fn mldsa_signature_oids_need_a_key_of_the_same_size() {
        let alg = CertSignature::from_oid("2.16.840.1.101.3.4.3.18");
        assert_eq!(alg, CertSignature::MlDsa(Level::MlDsa65));
        let key44 = PublicKey::MlDsa(Level::MlDsa44, vec![0; 1312]);
        let err = alg.verify(&key44, b"tbs", b"sig").unwrap_err();
        assert!(
            err.contains("does not fit its issuer's ML-DSA-44 key"),
            "{err}"
        );
        let err = alg
            .verify(&PublicKey::P256(vec![4; 65]), b"tbs", b"sig")
            .unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
        let key65 = PublicKey::MlDsa(Level::MlDsa65, vec![0; 1952]);
        let err = alg.verify(&key65, b"tbs", &[0; 3309]).unwrap_err();
        assert!(err.contains("does not verify"), "{err}");
        assert!(key65.is_mldsa() && !key65.is_ec() && !key65.is_rsa());
        assert_eq!(key65.describe(), "ML-DSA-65");
    }

    #[test]
    fn mismatched_key_and_algorithm_fail() {
        let key = PublicKey::P256(vec![4; 65]);
        let err = CertSignature::Rsa(Hash::Sha256)
            .verify(&key, b"tbs", b"sig")
            .unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
        assert!(!PublicKey::Rsa(vec![1, 2, 3]).verify(Hash::Sha256, b"m", b"s"));
        assert!(!PublicKey::P384(vec![1, 2, 3]).verify(Hash::Sha256, b"m", b"s"));
    }
}
