//! ML-DSA (FIPS 204) verification for the emulator, with the `fips204` crate.
//!
//! The client signs with RustCrypto's `ml-dsa`; verifying with a different implementation
//! means a bug shared by signer and verifier cannot make the emulator accept what AWS would
//! refuse. Requests (`AWS4-X509-MLDSA`) and certificates are both signed with pure ML-DSA over
//! the whole message and an empty context; the one algorithm OID per size names the key in a
//! SubjectPublicKeyInfo and the signature of a certificate or CRL alike (RFC 9881).

use fips204::traits::{SerDes as _, Verifier as _};

/// The three ML-DSA parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

impl Level {
    /// The parameter set of an `id-ml-dsa-*` OID (2.16.840.1.101.3.4.3.17/18/19).
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "2.16.840.1.101.3.4.3.17" => Some(Self::MlDsa44),
            "2.16.840.1.101.3.4.3.18" => Some(Self::MlDsa65),
            "2.16.840.1.101.3.4.3.19" => Some(Self::MlDsa87),
            _ => None,
        }
    }

    /// `ML-DSA-44` and so on, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::MlDsa44 => "ML-DSA-44",
            Self::MlDsa65 => "ML-DSA-65",
            Self::MlDsa87 => "ML-DSA-87",
        }
    }

    /// Verifies a pure ML-DSA `signature` over `message` with the empty context, for the
    /// encoded public key `key`. A key or signature of the wrong size for this parameter set
    /// fails like a bad signature.
    pub fn verify(self, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        macro_rules! check {
            ($set:ident) => {{
                use fips204::$set::{PK_LEN, PublicKey, SIG_LEN};
                let (Ok(key), Ok(signature)) = (
                    <[u8; PK_LEN]>::try_from(key),
                    <[u8; SIG_LEN]>::try_from(signature),
                ) else {
                    return false;
                };
                PublicKey::try_from_bytes(key).is_ok_and(|key| key.verify(message, &signature, &[]))
            }};
        }
        match self {
            Self::MlDsa44 => check!(ml_dsa_44),
            Self::MlDsa65 => check!(ml_dsa_65),
            Self::MlDsa87 => check!(ml_dsa_87),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fips204::traits::{KeyGen as _, Signer as _};

    /// A key pair from a fixed seed, and a deterministic signature of `message`.
    fn signed(level: Level, seed: u8, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        macro_rules! make {
            ($set:ident) => {{
                use fips204::$set::KG;
                let (pk, sk) = KG::keygen_from_seed(&[seed; 32]);
                let sig = sk.try_sign_with_seed(&[0; 32], message, &[]).unwrap();
                (pk.into_bytes().to_vec(), sig.to_vec())
            }};
        }
        match level {
            Level::MlDsa44 => make!(ml_dsa_44),
            Level::MlDsa65 => make!(ml_dsa_65),
            Level::MlDsa87 => make!(ml_dsa_87),
        }
    }

    const ALL: [Level; 3] = [Level::MlDsa44, Level::MlDsa65, Level::MlDsa87];

    #[test]
    fn each_size_verifies_and_a_flipped_byte_fails() {
        let message = b"AWS4-X509-MLDSA\n20240706T113859Z\nscope\nhash";
        for level in ALL {
            let (key, sig) = signed(level, 7, message);
            assert!(level.verify(&key, message, &sig), "{}", level.name());
            let mut bad = sig.clone();
            bad[sig.len() / 2] ^= 1;
            assert!(!level.verify(&key, message, &bad), "{}", level.name());
            assert!(!level.verify(&key, b"another message", &sig));
            let mut bad_key = key.clone();
            bad_key[40] ^= 1;
            assert!(!level.verify(&bad_key, message, &sig));
            let (other_key, _) = signed(level, 8, message);
            assert!(!level.verify(&other_key, message, &sig));
        }
    }

    #[test]
    fn a_nonempty_context_signature_fails() {
        use fips204::ml_dsa_44::KG;
        let (pk, sk) = KG::keygen_from_seed(&[1; 32]);
        let sig = sk.try_sign_with_seed(&[0; 32], b"m", b"ctx").unwrap();
        assert!(!Level::MlDsa44.verify(&pk.into_bytes(), b"m", &sig));
    }

    #[test]
    fn wrong_sizes_fail() {
        let (key44, sig44) = signed(Level::MlDsa44, 3, b"m");
        let (key65, sig65) = signed(Level::MlDsa65, 3, b"m");
        // A 44 key with a 65 signature, and the other way round.
        assert!(!Level::MlDsa44.verify(&key44, b"m", &sig65));
        assert!(!Level::MlDsa65.verify(&key65, b"m", &sig44));
        // A 44 pair presented as 65 or 87.
        assert!(!Level::MlDsa65.verify(&key44, b"m", &sig44));
        assert!(!Level::MlDsa87.verify(&key44, b"m", &sig44));
        assert!(!Level::MlDsa44.verify(&key44, b"m", &sig44[..sig44.len() - 1]));
        assert!(!Level::MlDsa44.verify(&[], b"m", &[]));
    }

    #[test]
    fn oids_name_the_three_sizes() {
        assert_eq!(
            Level::from_oid("2.16.840.1.101.3.4.3.17"),
            Some(Level::MlDsa44)
        );
        assert_eq!(
            Level::from_oid("2.16.840.1.101.3.4.3.18"),
            Some(Level::MlDsa65)
        );
        assert_eq!(
            Level::from_oid("2.16.840.1.101.3.4.3.19"),
            Some(Level::MlDsa87)
        );
        assert_eq!(Level::from_oid("2.16.840.1.101.3.4.3.20"), None);
    }
}
