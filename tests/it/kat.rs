//! Known-answer tests: `tests/data/kat/vectors.json`, captured from the official helper's
//! real requests. A signer that does not reproduce them byte for byte is wrong.

use rolesanywhere_helper::identity::file::Readable;
use rolesanywhere_helper::identity::{Certificate, Digest, Identity, IdentitySpec};
use rolesanywhere_helper::sigv4x509::{self, Algorithm, SessionRequest};
use serde_json::Value;

use crate::common::kat_dir;

fn vectors() -> Value {
    let text = std::fs::read_to_string(kat_dir().join("vectors.json")).expect("read vectors.json");
    serde_json::from_str(&text).expect("vectors.json is JSON")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key} missing"))
}

fn kat_identity(cert: &str, key: &str) -> Identity {
    let spec = IdentitySpec {
        certificate: Some(kat_dir().join(cert)),
        private_key: Some(kat_dir().join(key)),
        // The published vectors' key is world-readable on purpose.
        readable_key_files: Readable::Warn,
        ..IdentitySpec::default()
    };
    // The KAT certificates are valid until 2034; sign as of the capture date.
    Identity::load(&spec, time::macros::datetime!(2024-07-06 11:38:59 UTC))
        .expect("KAT identity loads")
}

/// Everything the RSA vector pins down, computed by the crate for the given inputs.
struct Signed {
    canonical_query: String,
    payload_hash: String,
    canonical_request_hash: String,
    string_to_sign: String,
    authorization: String,
}

fn sign_rsa_vector(identity: &Identity, amz_date: &str, region: &str) -> Signed {
    sign_rsa_vector_as(identity, identity.leaf(), amz_date, region)
}

/// The RSA vector's request carrying `leaf`, signed by `signer`'s key.
fn sign_rsa_vector_as(
    signer: &Identity,
    leaf: &Certificate,
    amz_date: &str,
    region: &str,
) -> Signed {
    let v = &vectors()["rsa"];
    let q = &v["query"];
    let query = [
        ("profileArn", s(q, "profileArn")),
        ("roleArn", s(q, "roleArn")),
        ("trustAnchorArn", s(q, "trustAnchorArn")),
    ];
    let body = s(v, "body").as_bytes();
    let request = SessionRequest {
        host: s(v, "host"),
        region,
        amz_date,
        query: &query,
        body,
        leaf_der: leaf.der(),
        chain_der: &[],
    };
    let prepared = request.prepare(signer.algorithm());
    let signature = signer
        .sign(prepared.string_to_sign.as_bytes())
        .expect("sign");
    let text = &prepared.canonical_request.text;
    Signed {
        canonical_query: text.lines().nth(2).unwrap_or_default().to_owned(),
        payload_hash: text.lines().last().unwrap_or_default().to_owned(),
        canonical_request_hash: sigv4x509::hex_sha256(text.as_bytes()),
        string_to_sign: prepared.string_to_sign.clone(),
        authorization: prepared.authorization(
            signer.algorithm(),
            leaf.serial_decimal(),
            &signature,
        ),
    }
}

#[test]
fn rsa_vector_is_reproduced_byte_for_byte() {
    let v = &vectors()["rsa"];
    let identity = kat_identity(s(v, "certificate"), s(v, "private_key"));
    assert_eq!(identity.algorithm(), Algorithm::RsaSha256);
    assert_eq!(identity.leaf().serial_decimal(), s(v, "serial_decimal"));

    let got = sign_rsa_vector(&identity, s(v, "x_amz_date"), s(v, "region"));
    assert_eq!(got.canonical_query, s(v, "canonical_query"));
    assert_eq!(got.payload_hash, s(v, "payload_sha256"));
    assert_eq!(got.canonical_request_hash, s(v, "canonical_request_sha256"));
    assert_eq!(got.string_to_sign, s(v, "string_to_sign"));
    assert_eq!(got.authorization, s(v, "authorization"));
    assert!(
        got.authorization
            .contains(&format!("SignedHeaders={},", s(v, "signed_headers")))
    );
}

#[test]
fn rsa_vector_changes_with_each_input() {
    let v = &vectors()["rsa"];
    let expected = s(v, "authorization");
    let identity = kat_identity(s(v, "certificate"), s(v, "private_key"));

    let other_date = sign_rsa_vector(&identity, "20240706T113900Z", s(v, "region"));
    assert_ne!(
        other_date.authorization, expected,
        "a changed date must change the signature"
    );

    let other_region = sign_rsa_vector(&identity, s(v, "x_amz_date"), "us-east-1");
    assert_ne!(
        other_region.authorization, expected,
        "a changed region must change the signature"
    );

    // A different key and certificate: an openssl-made RSA-2048 pair.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    crate::common::openssl(p, &["genrsa", "-out", "k.pem", "2048"]);
    crate::common::openssl(
        p,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "k.pem",
            "-subj",
            "/CN=other",
            "-days",
            "30",
            "-out",
            "c.pem",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ],
    );
    let spec = IdentitySpec {
        certificate: Some(p.join("c.pem")),
        private_key: Some(p.join("k.pem")),
        ..IdentitySpec::default()
    };
    let other =
        Identity::load(&spec, time::OffsetDateTime::now_utc()).expect("openssl identity loads");
    let other_both = sign_rsa_vector(&other, s(v, "x_amz_date"), s(v, "region"));
    assert_ne!(
        other_both.authorization, expected,
        "another key and certificate must change the signature"
    );

    // The same key with another certificate changes the signed x-amz-x509 header and the
    // serial, so the header differs even though the key is the same.
    let same_key = kat_identity(s(v, "certificate"), s(v, "private_key"));
    let request_with_other_cert =
        sign_rsa_vector_as(&same_key, other.leaf(), s(v, "x_amz_date"), s(v, "region"))
            .authorization;
    assert_ne!(
        request_with_other_cert, expected,
        "another certificate must change the signature"
    );
}

#[test]
fn ecdsa_p384_vector_verifies_with_sha256_only() {
    let v = &vectors()["ecdsa_p384_verify_only"];
    let pem = std::fs::read(kat_dir().join(s(v, "certificate"))).unwrap();
    let der = rolesanywhere_helper::identity::pem::blocks(&pem)
        .unwrap()
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .expect("a CERTIFICATE block");
    let cert = Certificate::from_der(&der.der).unwrap();
    assert_eq!(cert.serial_decimal(), s(v, "serial_decimal"));
    assert_eq!(cert.public_key().describe(), "EC P-384");

    let sts = s(v, "string_to_sign");
    assert!(sts.ends_with(s(v, "string_to_sign_last_line")));
    let sig = hex::decode(s(v, "signature_der_hex")).unwrap();
    cert.public_key()
        .verify(sts.as_bytes(), Digest::Sha256, &sig)
        .expect("the official helper's P-384 signature verifies with SHA-256");
    assert!(
        cert.public_key()
            .verify(sts.as_bytes(), Digest::Sha384, &sig)
            .is_err(),
        "not with SHA-384"
    );

    let mut tampered = sts.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(
        cert.public_key()
            .verify(&tampered, Digest::Sha256, &sig)
            .is_err(),
        "a changed byte fails"
    );
}

#[test]
fn serials_print_in_decimal() {
    let v = &vectors()["serial_to_decimal"];
    let dir = tempfile::tempdir().unwrap();
    for (hex_serial, decimal) in v.as_object().unwrap() {
        let serial = hex_serial.replace(':', "");
        let p = dir.path();
        crate::common::openssl(
            p,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "k.pem",
            ],
        );
        crate::common::openssl(
            p,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                "k.pem",
                "-subj",
                "/CN=serial",
                "-days",
                "1",
                "-set_serial",
                &format!("0x{serial}"),
                "-outform",
                "DER",
                "-out",
                "c.der",
            ],
        );
        let cert = Certificate::from_der(&std::fs::read(p.join("c.der")).unwrap()).unwrap();
        assert_eq!(
            cert.serial_decimal(),
            decimal.as_str().unwrap(),
            "serial {hex_serial}"
        );
    }
}
