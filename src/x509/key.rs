//! Private and public keys of the kinds IAM Roles Anywhere accepts, and the one signing
//! primitive the helper needs: sign a message with a chosen SHA-2 digest.
//!
//! RSA signs PKCS#1 v1.5 with blinding (an RNG is always passed, which defends against
//! timing attacks such as Marvin); ECDSA signs a host-computed digest, hedged with fresh
//! randomness on top of RFC 6979, and returns DER, as the service expects.

use std::fmt;

use ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::mldsa::{self, MlDsaKey, MlDsaLevel};
use crate::sigv4x509::Algorithm;

/// The smallest RSA modulus accepted: 2048 bits, the floor of current CA/B and NIST rules.
pub const MIN_RSA_BITS: usize = 2048;

/// A SHA-2 digest for `sign-string --digest`; requests are always signed with SHA-256.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// The digest of `message`.
    pub fn hash(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// Why a signature could not be made or was not valid.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("the signature does not verify")]
    Invalid,
    #[error("the {0} key cannot make or check {1} signatures")]
    WrongAlgorithm(&'static str, &'static str),
    /// The device that holds the key (a TPM) failed or stayed busy: a later attempt may
    /// succeed.
    #[error("signing failed: {0}")]
    Unavailable(String),
}

/// The curve or modulus family of a key, as `read-certificate-data` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ec,
    MlDsa(MlDsaLevel),
}

impl KeyType {
    /// `"RSA"`, `"EC"` or `"ML-DSA-44|65|87"`, the official helper's `keyType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa => "RSA",
            Self::Ec => "EC",
            Self::MlDsa(level) => level.as_str(),
        }
    }

    /// The request signing algorithm for keys of this type.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::RsaSha256,
            Self::Ec => Algorithm::EcdsaSha256,
            Self::MlDsa(_) => Algorithm::MlDsa,
        }
    }
}

/// A private key held in memory. Every variant zeroizes its secret parts on drop (the
/// RustCrypto key types implement `ZeroizeOnDrop`), and `Debug` never prints them.
#[derive(Clone)]
pub enum PrivateKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    MlDsa(MlDsaKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({}, [redacted])",
            self.public_key().describe()
        )
    }
}

impl PrivateKey {
    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            Self::P256(k) => PublicKey::P256(*k.verifying_key()),
            Self::P384(k) => PublicKey::P384(*k.verifying_key()),
            Self::P521(k) => PublicKey::P521(*k.verifying_key()),
            Self::MlDsa(k) => PublicKey::MlDsa(k.level(), k.public_key_bytes()),
        }
    }

    /// Signs `message` hashed with `digest`: PKCS#1 v1.5 for RSA, DER ECDSA for EC. ML-DSA
    /// signs the message itself (pure, empty context, deterministic) and, like the official
    /// helper, ignores `digest`.
    pub fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignatureError> {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let fail = |e: ecdsa::Error| SignatureError::Sign(e.to_string());
        match self {
            Self::Rsa(key) => {
                let key = (**key).clone();
                let sig = match digest {
                    Digest::Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
                        .try_sign_with_rng(&mut rng, message)
                        .map(|s| s.to_vec()),
                    Digest::Sha384 => rsa::pkcs1v15::SigningKey::<Sha384>::new(key)
                        .try_sign_with_rng(&mut rng, message)
                        .map(|s| s.to_vec()),
                    Digest::Sha512 => rsa::pkcs1v15::SigningKey::<Sha512>::new(key)
                        .try_sign_with_rng(&mut rng, message)
                        .map(|s| s.to_vec()),
                };
                sig.map_err(|e| SignatureError::Sign(e.to_string()))
            }
            Self::P256(key) => {
                let sig: p256::ecdsa::DerSignature = key
                    .sign_prehash_with_rng(&mut rng, &digest.hash(message))
                    .map_err(fail)?;
                Ok(sig.to_vec())
            }
            Self::P384(key) => {
                let sig: p384::ecdsa::DerSignature = key
                    .sign_prehash_with_rng(&mut rng, &digest.hash(message))
                    .map_err(fail)?;
                Ok(sig.to_vec())
            }
            Self::P521(key) => {
                let sig: p521::ecdsa::DerSignature = key
                    .sign_prehash_with_rng(&mut rng, &digest.hash(message))
                    .map_err(fail)?;
                Ok(sig.to_vec())
            }
            Self::MlDsa(key) => key
                .sign(message)
                .map_err(|e| SignatureError::Sign(e.to_string())),
        }
    }
}

/// A public key from a certificate or derived from a private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    /// The parameter set and the encoded key (FIPS 204 `pkEncode`).
    MlDsa(MlDsaLevel, Vec<u8>),
}

impl PublicKey {
    /// An RSA public key from its big-endian modulus and exponent, as a token or a TPM
    /// gives them; `None` when they do not make a valid key.
    pub fn rsa_from_parts(n: &[u8], e: &[u8]) -> Option<Self> {
        use der::Encode as _;
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        let encoded = pkcs1::RsaPublicKey {
            modulus: der::asn1::UintRef::new(n).ok()?,
            public_exponent: der::asn1::UintRef::new(e).ok()?,
        }
        .to_der()
        .ok()?;
        rsa::RsaPublicKey::from_pkcs1_der(&encoded)
            .ok()
            .map(Self::Rsa)
    }

    /// RSA, EC or an ML-DSA parameter set.
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::Rsa(_) => KeyType::Rsa,
            Self::MlDsa(level, _) => KeyType::MlDsa(*level),
            _ => KeyType::Ec,
        }
    }

    /// A short human description, e.g. `RSA-2048` or `EC P-384`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(k) => format!("RSA-{}", k.n().bits()),
            Self::P256(_) => "EC P-256".into(),
            Self::P384(_) => "EC P-384".into(),
            Self::P521(_) => "EC P-521".into(),
            Self::MlDsa(level, _) => level.as_str().into(),
        }
    }

    /// The bytes the official helper hashes into the `sign-string` test string: the PKCS#1
    /// `RSAPublicKey` DER for RSA, the uncompressed point `04 || X || Y` for EC, nothing for
    /// other keys (ML-DSA), as upstream's `sign-string` hashes only those two.
    pub fn fingerprint_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa(k) => k
                .to_pkcs1_der()
                .map(|d| d.as_bytes().to_vec())
                .unwrap_or_default(),
            Self::P256(k) => k.to_sec1_point(false).as_bytes().to_vec(),
            Self::P384(k) => k.to_sec1_point(false).as_bytes().to_vec(),
            Self::P521(k) => k.to_sec1_point(false).as_bytes().to_vec(),
            Self::MlDsa(..) => Vec::new(),
        }
    }

    /// Verifies a signature over `message` hashed with `digest`, in the form
    /// [`PrivateKey::sign`] makes (raw PKCS#1 v1.5 for RSA, DER for ECDSA, FIPS 204 bytes
    /// for ML-DSA, whose `digest` is ignored).
    pub fn verify(
        &self,
        message: &[u8],
        digest: Digest,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let ok = match self {
            Self::Rsa(key) => {
                let sig = rsa::pkcs1v15::Signature::try_from(signature)
                    .map_err(|_| SignatureError::Invalid)?;
                let key = key.clone();
                match digest {
                    Digest::Sha256 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key).verify(message, &sig)
                    }
                    Digest::Sha384 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key).verify(message, &sig)
                    }
                    Digest::Sha512 => {
                        rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key).verify(message, &sig)
                    }
                }
                .is_ok()
            }
            Self::P256(key) => p256::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest.hash(message), &sig).is_ok()),
            Self::P384(key) => p384::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest.hash(message), &sig).is_ok()),
            Self::P521(key) => p521::ecdsa::DerSignature::try_from(signature)
                .is_ok_and(|sig| key.verify_prehash(&digest.hash(message), &sig).is_ok()),
            Self::MlDsa(level, public) => mldsa::verify(*level, public, message, signature),
        };
        if ok {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}
