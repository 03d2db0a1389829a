//! ML-DSA (FIPS 204) keys: the three parameter sets, the PKCS#8 private-key encodings and the
//! one signature the helper makes, "pure" ML-DSA over the whole message with an empty
//! context, deterministic, as the official helper signs (`AWS4-X509-MLDSA`).
//!
//! The private key inside PKCS#8 is a CHOICE (draft-ietf-lamps-dilithium-certificates):
//! `seed [0] OCTET STRING`, `expandedKey OCTET STRING`, or `both SEQUENCE { seed,
//! expandedKey }` (OpenSSL 3.5's default, the only form the official helper reads). The
//! `ml-dsa` crate's own decoder takes the seed form only, so the CHOICE is decoded here. A
//! seed is always preferred: the key is rebuilt from it, and in "both" the expanded half
//! must equal the seed's expansion, or the file is refused as inconsistent.

#![allow(deprecated)] // `from_expanded`/`to_expanded`: the only way to read an expanded-only key

use std::fmt;

use der::asn1::OctetStringRef;
use der::{Decode as _, Reader as _, SliceReader, Tag, TagNumber};
use ml_dsa::signature::SignatureEncoding as _;
use ml_dsa::{ExpandedSigningKey, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Signature, VerifyingKey};
use zeroize::Zeroizing;

/// One of the three ML-DSA parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MlDsaLevel {
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

impl MlDsaLevel {
    /// The parameter set of an algorithm OID (2.16.840.1.101.3.4.3.17/18/19).
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            super::oid::ML_DSA_44 => Some(Self::MlDsa44),
            super::oid::ML_DSA_65 => Some(Self::MlDsa65),
            super::oid::ML_DSA_87 => Some(Self::MlDsa87),
            _ => None,
        }
    }

    /// `ML-DSA-44`, `ML-DSA-65` or `ML-DSA-87`: the official helper's `keyType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MlDsa44 => "ML-DSA-44",
            Self::MlDsa65 => "ML-DSA-65",
            Self::MlDsa87 => "ML-DSA-87",
        }
    }

    /// The length of an expanded private key of this set (FIPS 204 table 2).
    pub fn expanded_len(self) -> usize {
        match self {
            Self::MlDsa44 => 2560,
            Self::MlDsa65 => 4032,
            Self::MlDsa87 => 4896,
        }
    }
}

impl fmt::Display for MlDsaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ML-DSA private key in its expanded form (what signing uses), of one parameter set.
/// The `ml-dsa` key types zeroize themselves on drop.
#[derive(Clone)]
pub enum MlDsaKey {
    MlDsa44(Box<ExpandedSigningKey<MlDsa44>>),
    MlDsa65(Box<ExpandedSigningKey<MlDsa65>>),
    MlDsa87(Box<ExpandedSigningKey<MlDsa87>>),
}

impl fmt::Debug for MlDsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MlDsaKey({}, [redacted])", self.level())
    }
}

/// Which encoding of the PKCS#8 CHOICE a key came in, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlDsaEncoding {
    Seed,
    Expanded,
    Both,
}

/// Why the private-key bytes of an ML-DSA PKCS#8 key were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MlDsaKeyError {
    #[error("its ML-DSA private key is not a seed, an expanded key, or both: {0}")]
    Malformed(String),
    #[error("its ML-DSA seed is {0} bytes, not 32")]
    SeedLength(usize),
    #[error("its expanded {0} key is {1} bytes, not {2}")]
    ExpandedLength(MlDsaLevel, usize, usize),
    #[error("its expanded ML-DSA key is not a valid encoding")]
    ExpandedInvalid,
    #[error("its expanded ML-DSA key does not match the seed beside it")]
    Inconsistent,
}

/// Builds the expanded key of one parameter set from a seed or from an expanded encoding,
/// checking that the two agree when both are given.
fn build<P: MlDsaParams>(
    level: MlDsaLevel,
    seed: Option<&[u8]>,
    expanded: Option<&[u8]>,
) -> Result<ExpandedSigningKey<P>, MlDsaKeyError> {
    let from_expanded = |bytes: &[u8]| -> Result<ExpandedSigningKey<P>, MlDsaKeyError> {
        let want = level.expanded_len();
        let encoded = Zeroizing::new(
            ml_dsa::ExpandedSigningKeyBytes::<P>::try_from(bytes)
                .map_err(|_| MlDsaKeyError::ExpandedLength(level, bytes.len(), want))?,
        );
        // The crate warns that decoding does not validate and may panic on a crafted
        // encoding: the coefficients that can be out of range are checked first, a panic
        // is still caught, and the key must encode back to the same bytes.
        if !secret_coefficients_in_range(level, bytes) {
            return Err(MlDsaKeyError::ExpandedInvalid);
        }
        let key = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ExpandedSigningKey::<P>::from_expanded(&encoded)
        }))
        .map_err(|_| MlDsaKeyError::ExpandedInvalid)?;
        if Zeroizing::new(key.to_expanded()).as_slice() != bytes {
            return Err(MlDsaKeyError::ExpandedInvalid);
        }
        Ok(key)
    };
    match (seed, expanded) {
        (Some(seed), expanded) => {
            // The copies of secret bytes made here are zeroized when they go.
            let seed = Zeroizing::new(
                ml_dsa::B32::try_from(seed).map_err(|_| MlDsaKeyError::SeedLength(seed.len()))?,
            );
            let key = ExpandedSigningKey::<P>::from_seed(&seed);
            if let Some(bytes) = expanded {
                if bytes.len() != level.expanded_len() {
                    return Err(MlDsaKeyError::ExpandedLength(
                        level,
                        bytes.len(),
                        level.expanded_len(),
                    ));
                }
                if Zeroizing::new(key.to_expanded()).as_slice() != bytes {
                    return Err(MlDsaKeyError::Inconsistent);
                }
            }
            Ok(key)
        }
        (None, Some(bytes)) => from_expanded(bytes),
        (None, None) => Err(MlDsaKeyError::Malformed("empty".into())),
    }
}

/// True when every coefficient of `s1` and `s2` in an expanded key (FIPS 204 `skEncode`:
/// `rho || K || tr || s1 || s2 || t0`) is at most 2η, the range `skDecode` accepts: η = 2
/// packs 3 bits, η = 4 packs 4 bits per coefficient, least significant bit first. (`t0`
/// packs 13 bits, every value of which is valid.)
fn secret_coefficients_in_range(level: MlDsaLevel, bytes: &[u8]) -> bool {
    let (k, l, eta) = match level {
        MlDsaLevel::MlDsa44 => (4, 4, 2u32),
        MlDsaLevel::MlDsa65 => (6, 5, 4),
        MlDsaLevel::MlDsa87 => (8, 7, 2),
    };
    let bits = if eta == 2 { 3 } else { 4 };
    let start = 32 + 32 + 64;
    let len = (k + l) * 256 * bits / 8;
    let Some(packed) = bytes.get(start..start + len) else {
        return false;
    };
    let mask = (1u32 << bits) - 1;
    let (mut acc, mut held) = (0u32, 0usize);
    for &byte in packed {
        acc |= u32::from(byte) << held;
        held += 8;
        while held >= bits {
            if acc & mask > 2 * eta {
                return false;
            }
            acc >>= bits;
            held -= bits;
        }
    }
    true
}

/// The seed and the expanded key present in a private-key CHOICE, and which form it was.
type Choice<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, MlDsaEncoding);

/// The three alternatives of the private-key CHOICE, as borrowed slices.
fn split_choice(inner: &[u8]) -> Result<Choice<'_>, MlDsaKeyError> {
    let bad = |e: der::Error| MlDsaKeyError::Malformed(e.to_string());
    let mut reader = SliceReader::new(inner).map_err(bad)?;
    let tag = reader.peek_tag().map_err(bad)?;
    let parts = match tag {
        Tag::ContextSpecific {
            constructed: false,
            number: TagNumber(0),
        } => {
            let header = der::Header::decode(&mut reader).map_err(bad)?;
            let seed = reader.read_slice(header.length()).map_err(bad)?;
            (Some(seed), None, MlDsaEncoding::Seed)
        }
        Tag::OctetString => {
            let expanded = <&OctetStringRef>::decode(&mut reader).map_err(bad)?;
            (None, Some(expanded.as_bytes()), MlDsaEncoding::Expanded)
        }
        Tag::Sequence => {
            let (seed, expanded) = reader
                .sequence(|r| {
                    let seed = <&OctetStringRef>::decode(r)?;
                    let expanded = <&OctetStringRef>::decode(r)?;
                    Ok::<_, der::Error>((seed.as_bytes(), expanded.as_bytes()))
                })
                .map_err(bad)?;
            (Some(seed), Some(expanded), MlDsaEncoding::Both)
        }
        other => return Err(MlDsaKeyError::Malformed(format!("unexpected tag {other}"))),
    };
    reader.finish().map_err(bad)?;
    Ok(parts)
}

impl MlDsaKey {
    /// The key in the `privateKey` OCTET STRING contents of a PKCS#8 `PrivateKeyInfo` whose
    /// algorithm is `level`, with the encoding it came in.
    pub fn from_pkcs8_inner(
        level: MlDsaLevel,
        inner: &[u8],
    ) -> Result<(Self, MlDsaEncoding), MlDsaKeyError> {
        let (seed, expanded, encoding) = split_choice(inner)?;
        let key = match level {
            MlDsaLevel::MlDsa44 => Self::MlDsa44(Box::new(build(level, seed, expanded)?)),
            MlDsaLevel::MlDsa65 => Self::MlDsa65(Box::new(build(level, seed, expanded)?)),
            MlDsaLevel::MlDsa87 => Self::MlDsa87(Box::new(build(level, seed, expanded)?)),
        };
        Ok((key, encoding))
    }

    /// The key derived from a 32-byte seed (FIPS 204 `ML-DSA.KeyGen_internal`).
    pub fn from_seed(level: MlDsaLevel, seed: &[u8]) -> Result<Self, MlDsaKeyError> {
        Ok(match level {
            MlDsaLevel::MlDsa44 => Self::MlDsa44(Box::new(build(level, Some(seed), None)?)),
            MlDsaLevel::MlDsa65 => Self::MlDsa65(Box::new(build(level, Some(seed), None)?)),
            MlDsaLevel::MlDsa87 => Self::MlDsa87(Box::new(build(level, Some(seed), None)?)),
        })
    }

    /// The parameter set.
    pub fn level(&self) -> MlDsaLevel {
        match self {
            Self::MlDsa44(_) => MlDsaLevel::MlDsa44,
            Self::MlDsa65(_) => MlDsaLevel::MlDsa65,
            Self::MlDsa87(_) => MlDsaLevel::MlDsa87,
        }
    }

    /// The encoded public key (FIPS 204 `pkEncode`), as in a certificate's
    /// SubjectPublicKeyInfo.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match self {
            Self::MlDsa44(k) => k.verifying_key().encode().to_vec(),
            Self::MlDsa65(k) => k.verifying_key().encode().to_vec(),
            Self::MlDsa87(k) => k.verifying_key().encode().to_vec(),
        }
    }

    /// Pure ML-DSA over `message` with an empty context, deterministic (no fresh
    /// randomness), as the official helper signs.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ml_dsa::Error> {
        Ok(match self {
            Self::MlDsa44(k) => k.sign_deterministic(message, &[])?.to_vec(),
            Self::MlDsa65(k) => k.sign_deterministic(message, &[])?.to_vec(),
            Self::MlDsa87(k) => k.sign_deterministic(message, &[])?.to_vec(),
        })
    }
}

/// True when `signature` is a valid pure ML-DSA signature (empty context) over `message`
/// by the encoded public key `public` of parameter set `level`.
pub fn verify(level: MlDsaLevel, public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    fn check<P: MlDsaParams>(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Ok(encoded) = ml_dsa::EncodedVerifyingKey::<P>::try_from(public) else {
            return false;
        };
        let Ok(sig) = Signature::<P>::try_from(signature) else {
            return false;
        };
        VerifyingKey::<P>::decode(&encoded).verify_with_context(message, &[], &sig)
    }
    match level {
        MlDsaLevel::MlDsa44 => check::<MlDsa44>(public, message, signature),
        MlDsaLevel::MlDsa65 => check::<MlDsa65>(public, message, signature),
        MlDsaLevel::MlDsa87 => check::<MlDsa87>(public, message, signature),
    }
}

/// True when `public` has the length of an encoded public key of `level` (1312, 1952 or
/// 2592 bytes), the one check a certificate's key can get before it is used.
pub fn public_key_fits(level: MlDsaLevel, public: &[u8]) -> bool {
    let want = match level {
        MlDsaLevel::MlDsa44 => 1312,
        MlDsaLevel::MlDsa65 => 1952,
        MlDsaLevel::MlDsa87 => 2592,
    };
    public.len() == want
}
