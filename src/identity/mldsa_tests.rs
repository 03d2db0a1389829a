//! ML-DSA file keys against the fixtures in `tests/data/mldsa/` (made by `make.py` there
//! with pyca `cryptography` and dilithium-py, not by this crate): every size in every
//! PKCS#8 encoding, encrypted keys, refused keys, and a known-answer signature.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::certificates::certificates;
use super::private_key::private_key;
use super::{Identity, IdentitySpec};
use crate::input_file::{Readable, Role};
use crate::secret::Secret;
use crate::sigv4x509::Algorithm;
use crate::x509::mldsa::{MlDsaEncoding, MlDsaKey, MlDsaLevel};
use crate::x509::{Digest, KeyType, PrivateKey, PublicKey};

const SIZES: [(u32, MlDsaLevel); 3] = [
    (44, MlDsaLevel::MlDsa44),
    (65, MlDsaLevel::MlDsa65),
    (87, MlDsaLevel::MlDsa87),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mldsa")
        .join(name)
}

fn key(name: &str, password: Option<&str>) -> Result<PrivateKey, String> {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap();
    let password = password.map(|p| Secret::from(p.to_owned()));
    private_key(&path, &bytes, password.as_ref()).map_err(|e| e.to_string())
}

fn cert_key(size: u32) -> PublicKey {
    let path = fixture(&format!("mldsa{size}-cert.pem"));
    let bytes = std::fs::read(&path).unwrap();
    let certs = certificates(Role::Certificate, &path, &bytes)
        .unwrap()
        .unwrap();
    certs[0].public_key().clone()
}

/// The PKCS#8 `privateKey` contents of a PEM fixture, for the encoding check.
fn inner(name: &str) -> (MlDsaLevel, Vec<u8>) {
    use pkcs8::der::Decode as _;
    let text = std::fs::read(fixture(name)).unwrap();
    let blocks = crate::x509::pem::blocks(&text).unwrap();
    let info = pkcs8::PrivateKeyInfoRef::from_der(&blocks[0].der).unwrap();
    let level = MlDsaLevel::from_oid(&info.algorithm.oid.to_string()).unwrap();
    (level, info.private_key.as_bytes().to_vec())
}

#[test]
fn every_size_in_every_encoding_matches_its_certificate_and_signs() {
    for (size, level) in SIZES {
        let public = cert_key(size);
        assert_eq!(public.key_type(), KeyType::MlDsa(level));
        assert_eq!(public.key_type().algorithm(), Algorithm::MlDsa);
        for (encoding, want) in [
            ("seed", MlDsaEncoding::Seed),
            ("expanded", MlDsaEncoding::Expanded),
            ("both", MlDsaEncoding::Both),
        ] {
            let name = format!("mldsa{size}-{encoding}.pem");
            let (oid_level, bytes) = inner(&name);
            assert_eq!(oid_level, level);
            let (_, got) = MlDsaKey::from_pkcs8_inner(level, &bytes).unwrap();
            assert_eq!(got, want, "{name}");
            let key = key(&name, None).unwrap();
            assert_eq!(key.public_key(), public, "{name}");
            let message = b"string to sign";
            let signature = key.sign(message, Digest::Sha256).unwrap();
            // Deterministic, and the digest is not used.
            assert_eq!(signature, key.sign(message, Digest::Sha512).unwrap());
            public.verify(message, Digest::Sha256, &signature).unwrap();
            assert!(public.verify(b"other", Digest::Sha256, &signature).is_err());
        }
    }
}

#[test]
fn encrypted_keys_need_their_password() {
    for (size, _) in SIZES {
        let name = format!("mldsa{size}-seed-aes256.pem");
        let key = key(&name, Some("password")).unwrap();
        assert_eq!(key.public_key(), cert_key(size));
        let wrong = key_err(&name, Some("wrong"));
        assert!(wrong.contains("password is wrong"), "{wrong}");
        let none = key_err(&name, None);
        assert!(none.contains("no password was given"), "{none}");
    }
}

fn key_err(name: &str, password: Option<&str>) -> String {
    match key(name, password) {
        Ok(_) => panic!("{name} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn a_both_key_whose_halves_disagree_is_refused() {
    for (size, _) in SIZES {
        let err = key_err(&format!("mldsa{size}-both-mismatch.pem"), None);
        assert!(err.contains("does not match the seed beside it"), "{err}");
    }
}

#[test]
fn malformed_private_keys_are_refused_without_panicking() {
    let level = MlDsaLevel::MlDsa44;
    let (_, expanded) = inner("mldsa44-expanded.pem");
    let body = &expanded[4..]; // OCTET STRING header 04 82 0a 00
    assert_eq!(body.len(), level.expanded_len());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "not a seed"),
        (vec![0x80, 0x02, 1, 2], "seed is 2 bytes"),
        (vec![0x02, 0x01, 0x00], "unexpected tag"),
        ([&[0x04, 0x03], &body[..3]].concat(), "is 3 bytes, not 2560"),
        // Every byte 0xff: coefficients out of range, which must not re-encode the same.
        (
            [&expanded[..4], &vec![0xff; body.len()][..]].concat(),
            "not a valid encoding",
        ),
        ([&expanded[..], &[0]].concat(), "not a seed"),
    ];
    for (bytes, want) in cases {
        let err = MlDsaKey::from_pkcs8_inner(level, &bytes)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    // An ML-DSA-65 body under the ML-DSA-44 OID has the wrong length.
    let (_, other) = inner("mldsa65-expanded.pem");
    let err = MlDsaKey::from_pkcs8_inner(level, &other).unwrap_err();
    assert!(err.to_string().contains("not 2560"), "{err}");
}

#[test]
fn known_answer_signatures_equal_the_reference_implementation() {
    let kat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("kat.json")).unwrap()).unwrap();
    let message = hex::decode(kat["message"].as_str().unwrap()).unwrap();
    for (_, level) in SIZES {
        let entry = &kat[level.as_str()];
        let seed = hex::decode(entry["seed"].as_str().unwrap()).unwrap();
        let want = hex::decode(entry["signature"].as_str().unwrap()).unwrap();
        let key = MlDsaKey::from_seed(level, &seed).unwrap();
        assert_eq!(key.sign(&message).unwrap(), want, "{level}");
        let public = PublicKey::MlDsa(level, key.public_key_bytes());
        public.verify(&message, Digest::Sha256, &want).unwrap();
    }
}

fn private_copy(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::copy(fixture(name), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn load(cert: &str, key: &str) -> Result<Identity, String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = IdentitySpec {
        certificate: Some(fixture(cert)),
        private_key: Some(private_copy(dir.path(), key)),
        readable_key_files: Readable::Refuse,
        ..IdentitySpec::default()
    };
    Identity::load(&spec, OffsetDateTime::now_utc()).map_err(|e| e.to_string())
}

#[test]
fn an_identity_loads_and_signs_requests_with_aws4_x509_mldsa() {
    for (size, level) in SIZES {
        let identity = load(
            &format!("mldsa{size}-cert.pem"),
            &format!("mldsa{size}-both.pem"),
        )
        .unwrap();
        assert_eq!(identity.algorithm(), Algorithm::MlDsa);
        assert_eq!(identity.algorithm().as_str(), "AWS4-X509-MLDSA");
        let signature = identity.sign(b"string to sign").unwrap();
        let public = identity.leaf().public_key();
        assert_eq!(public.key_type(), KeyType::MlDsa(level));
        public
            .verify(b"string to sign", Digest::Sha256, &signature)
            .unwrap();
    }
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let Err(err) = load("mldsa44-cert.pem", "mldsa65-seed.pem") else {
        panic!("an ML-DSA-65 key was accepted for an ML-DSA-44 certificate");
    };
    assert!(err.contains("does not match the certificate"), "{err}");
    let Err(err) = load("mldsa44-cert.pem", "mldsa44-both-mismatch.pem") else {
        panic!("an inconsistent key was accepted");
    };
    assert!(err.contains("does not match the seed"), "{err}");
}

#[test]
fn an_mldsa_certificate_for_a_key_on_a_token_is_refused() {
    let err = super::load::certificate_file_for_token(&fixture("mldsa87-cert.pem"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "holds an ML-DSA-87 certificate, and ML-DSA keys on a PKCS#11 token are not supported"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
