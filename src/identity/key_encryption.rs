//! Encrypted PKCS#8 keys: decryption with the password, and the refusals that come
//! first (a scheme the `pkcs5` crate does not know, a key-derivation cost that would panic,
//! exhaust memory or run for hours).

use pkcs8::der::Decode as _;

use super::key_der::pkcs8_key;
use super::key_problem::KeyProblem;
use crate::secret::Secret;
use crate::x509::key::PrivateKey;

/// An encrypted PKCS#8 key (PBES2: PBKDF2 or scrypt), decrypted with `password`.
pub(super) fn encrypted_pkcs8_key(
    der: &[u8],
    password: Option<&Secret>,
) -> Result<PrivateKey, KeyProblem> {
    let info =
        pkcs8::EncryptedPrivateKeyInfoRef::from_der(der).map_err(
            |e| match encryption_algorithm(der) {
                Some(oid) => KeyProblem::Encryption(pbe_name(&oid)),
                None => KeyProblem::Malformed(e.to_string()),
            },
        )?;
    check_kdf_cost(&info.encryption_algorithm)?;
    let password = password.ok_or(KeyProblem::PasswordNeeded)?;
    let plain =
        info.decrypt(password.expose().as_bytes())
            .map_err(|e| match e {
                // The structure parsed above, so an ASN.1 error here is about the plaintext:
                // a wrong password that happened to leave valid CBC padding (about one time
                // in 256) decrypts to bytes that are not DER.
                pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::DecryptFailed)
                | pkcs8::Error::Asn1(_) => KeyProblem::WrongPassword,
                pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid })
                | pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
                    oid,
                }) => KeyProblem::Encryption(format!("algorithm {oid}")),
                pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::NoPbes1CryptSupport) => {
                    KeyProblem::Encryption("PBES1 (a legacy scheme)".into())
                }
                other => KeyProblem::Encryption(other.to_string()),
            })?;
    // A wrong password that happens to leave valid padding yields garbage, not a key.
    pkcs8_key(plain.as_bytes()).map_err(|e| match e {
        KeyProblem::Malformed(_) => KeyProblem::WrongPassword,
        other => other,
    })
}

/// The most PBKDF2 iterations an encrypted key may ask for. OpenSSL writes 2048 by default
/// and current advice stays below 1.3 million; a key file asking for 4 billion would make
/// every read of it take hours.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most memory scrypt may take (128 · r · N bytes): 1 GiB, as N = 2^20 with r = 8 does.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// The most scrypt lanes (p), each one a whole memory-hard pass.
const MAX_SCRYPT_PARALLELISM: u16 = 16;

/// Refuses key-derivation parameters before anything is derived when deriving would panic
/// (scrypt with N = 0, inside the `pkcs5` crate), abort the process on an allocation larger
/// than any machine has, or run for hours.
fn check_kdf_cost(scheme: &pkcs5::EncryptionScheme) -> Result<(), KeyProblem> {
    let pkcs5::EncryptionScheme::Pbes2(params) = scheme else {
        return Ok(());
    };
    match &params.kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(pbkdf2) if pbkdf2.iteration_count > MAX_PBKDF2_ITERATIONS => {
            Err(KeyProblem::Encryption(format!(
                "PBKDF2 with {} iterations (at most {MAX_PBKDF2_ITERATIONS} are accepted)",
                pbkdf2.iteration_count
            )))
        }
        pkcs5::pbes2::Kdf::Scrypt(scrypt) => {
            let n = scrypt.cost_parameter;
            let memory = 128u64
                .checked_mul(n)
                .and_then(|m| m.checked_mul(u64::from(scrypt.block_size)));
            let acceptable = n >= 2
                && n.is_power_of_two()
                && memory.is_some_and(|m| m <= MAX_SCRYPT_MEMORY)
                && scrypt.parallelization <= MAX_SCRYPT_PARALLELISM;
            if acceptable {
                Ok(())
            } else {
                Err(KeyProblem::Encryption(format!(
                    "scrypt with N = {n}, r = {}, p = {} (N must be a power of two from 2, with at most 1 GiB of memory and p = {MAX_SCRYPT_PARALLELISM})",
                    scrypt.block_size, scrypt.parallelization
                )))
            }
        }
        _ => Ok(()),
    }
}

/// The encryption algorithm OID of an `EncryptedPrivateKeyInfo` the `pkcs5` crate cannot
/// parse. Such keys are well-formed but use a scheme it does not know, such as the PKCS#12
/// PBE that `openssl pkcs8 -topk8` chose by default before OpenSSL 1.1; telling them apart
/// from corrupt files lets the error say how to re-encrypt instead of "malformed".
fn encryption_algorithm(der: &[u8]) -> Option<String> {
    let (rest, outer) = x509_parser::der_parser::parse_der(der).ok()?;
    let fields = outer.as_sequence().ok()?;
    let algorithm = fields.first()?.as_sequence().ok()?;
    let oid = algorithm.first()?.as_oid().ok()?.to_id_string();
    (rest.is_empty() && fields.len() == 2 && fields[1].as_slice().is_ok()).then_some(oid)
}

/// A readable name for a password-based encryption OID, for error messages.
fn pbe_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.12.1.3" => "pbeWithSHAAnd3-KeyTripleDES-CBC (PKCS#12 PBE)",
        "1.2.840.113549.1.12.1.6" => "pbeWithSHAAnd40BitRC2-CBC (PKCS#12 PBE)",
        "1.2.840.113549.1.12.1.1" => "pbeWithSHAAnd128BitRC4 (PKCS#12 PBE)",
        "1.2.840.113549.1.5.3" => "pbeWithMD5AndDES-CBC (PBES1)",
        "1.2.840.113549.1.5.10" => "pbeWithSHA1AndDES-CBC (PBES1)",
        other => return format!("the password-based encryption {other}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    /// Ciphertext that decrypts with valid padding to bytes that are not a key is what a wrong
    /// password produces about once in 256 tries; it must read as a wrong password.
    #[test]
    fn garbage_plaintext_reads_as_a_wrong_password() {
        let scheme = pkcs5::EncryptionScheme::from(
            pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(1000, b"saltsalt", [7; 16])
                .unwrap(),
        );
        let ciphertext = scheme.encrypt("pw", b"this is not DER at all").unwrap();
        let info = pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: scheme,
            encrypted_data: der::asn1::OctetString::new(ciphertext).unwrap(),
        };
        let der = info.to_der().unwrap();
        let password = Secret::from("pw".to_owned());
        let problem = encrypted_pkcs8_key(&der, Some(&password)).unwrap_err();
        assert!(matches!(problem, KeyProblem::WrongPassword), "{problem:?}");
    }

    /// An encrypted key whose PBES2 parameters are `kdf` applied to a valid set.
    fn encrypted_with(
        mut params: pkcs5::pbes2::Parameters,
        kdf: impl FnOnce(&mut pkcs5::pbes2::Kdf),
    ) -> Vec<u8> {
        kdf(&mut params.kdf);
        pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: params.into(),
            encrypted_data: der::asn1::OctetString::new(vec![0; 32]).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    fn scrypt_key(n: u64, r: u16, p: u16) -> Vec<u8> {
        let valid = pkcs5::scrypt::Params::new(10, 8, 1).unwrap();
        let params =
            pkcs5::pbes2::Parameters::generate_scrypt_aes256cbc(valid, b"saltsalt", [7; 16])
                .unwrap();
        encrypted_with(params, |kdf| {
            let pkcs5::pbes2::Kdf::Scrypt(scrypt) = kdf else {
                unreachable!("scrypt parameters")
            };
            (
                scrypt.cost_parameter,
                scrypt.block_size,
                scrypt.parallelization,
            ) = (n, r, p);
        })
    }

    fn refused_encryption(der: &[u8]) -> String {
        let password = Secret::from("pw".to_owned());
        match encrypted_pkcs8_key(der, Some(&password)) {
            Err(KeyProblem::Encryption(what)) => what,
            other => panic!("not refused as an encryption: {:?}", other.map(|_| "a key")),
        }
    }

    /// scrypt with N = 0 made the `pkcs5` crate panic (it takes log2 of N).
    #[test]
    fn scrypt_with_n_zero_is_refused_not_a_panic() {
        let what = refused_encryption(&scrypt_key(0, 8, 1));
        assert!(
            what.starts_with("scrypt with N = 0, r = 8, p = 1"),
            "{what}"
        );
    }

    /// scrypt with N = 2^40 asked for 128 TiB at once, which aborts the process.
    #[test]
    fn scrypt_beyond_1_gib_or_16_lanes_is_refused() {
        refused_encryption(&scrypt_key(1 << 40, 8, 1));
        refused_encryption(&scrypt_key(1 << 21, 8, 1));
        refused_encryption(&scrypt_key(1 << 10, 8, 17));
        refused_encryption(&scrypt_key(1 << 10, u16::MAX, 1));
        // Within the limits the key is decrypted (here: garbage, so a wrong password).
        let password = Secret::from("pw".to_owned());
        let problem = encrypted_pkcs8_key(&scrypt_key(1 << 10, 8, 1), Some(&password));
        assert!(
            matches!(problem, Err(KeyProblem::WrongPassword)),
            "{problem:?}"
        );
    }

    /// 4 billion PBKDF2 iterations would take hours on every read of the key.
    #[test]
    fn pbkdf2_beyond_10_million_iterations_is_refused() {
        let params =
            pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(1000, b"saltsalt", [7; 16])
                .unwrap();
        let der = encrypted_with(params, |kdf| {
            let pkcs5::pbes2::Kdf::Pbkdf2(pbkdf2) = kdf else {
                unreachable!("PBKDF2 parameters")
            };
            pbkdf2.iteration_count = MAX_PBKDF2_ITERATIONS + 1;
        });
        let what = refused_encryption(&der);
        assert!(what.contains("10000001 iterations"), "{what}");
    }
}
