//! The diagnostic commands beside the official helper's: `read-certificate-data` prints the
//! same bytes; `sign-string` prints the same bytes for RSA (PKCS#1 v1.5 is deterministic)
//! and, for ECDSA, signatures in the same format that both verify against the certificate
//! over the official helper's fixed test string.

use rolesanywhere_helper::pki::KeyType;
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::{Peer, SIDES, Stage, args, rows, show};
use crate::common::openssl;

/// Runs both programs with `template` (see [`super::args`]) in `stage`'s folder; their
/// outputs.
fn both(peer: &Peer, stage: &Stage, template: &str) -> [std::process::Output; 2] {
    SIDES.map(|side| peer.run(side, &args(template, stage.dir()), &[]))
}

#[test]
fn read_certificate_data_prints_the_same_bytes() {
    let Some(peer) = Peer::get() else { return };
    for (key_type, intermediate) in [
        (KeyType::Rsa2048, false),
        (KeyType::P256, true),
        (KeyType::P384, true),
    ] {
        let stage = Stage::new(key_type, intermediate);
        #[rustfmt::skip]
        let cases: [(&'static str, &str, i32, i32); 9] = [
            ("pem", "read-certificate-data --certificate {dir}/leaf.pem", 0, 0),
            ("combined key and certificate", "read-certificate-data --certificate {dir}/combined.pem", 0, 0),
            // The official helper reads the first certificate of a bundle, as ours does
            // when there is no key to match.
            ("fullchain", "read-certificate-data --certificate {dir}/leaf-fullchain.pem", 0, 0),
            ("debug", "read-certificate-data --certificate {dir}/leaf.pem --debug", 0, 0),
            // README "Keys and certificates": DER certificates are read here only.
            ("der", "read-certificate-data --certificate {dir}/leaf.der", 1, 0),
            ("pkcs12", "read-certificate-data --certificate {dir}/legacy.p12", 1, 1),
            ("a key", "read-certificate-data --certificate {dir}/leaf.key", 1, 1),
            ("missing file", "read-certificate-data --certificate {dir}/nowhere.pem", 1, 1),
            ("no certificate", "read-certificate-data", 1, 1),
        ];
        let failed = rows(
            cases,
            |c| c.0,
            |(name, template, official, ours)| {
                let [o, r] = both(&peer, &stage, template);
                exits(name, [&o, &r], [official, ours]);
                if official == 0 && ours == 0 {
                    assert_eq!(o.stdout, r.stdout, "{name}: {} / {}", show(&o), show(&r));
                } else if ours == 0 {
                    // The same bytes as for the PEM form.
                    let [pem, _] = both(
                        &peer,
                        &stage,
                        "read-certificate-data --certificate {dir}/leaf.pem",
                    );
                    assert_eq!(pem.stdout, r.stdout, "{name}");
                } else {
                    assert!(r.stdout.is_empty(), "{name}: {}", show(&r));
                }
            },
        );
        assert!(
            failed.is_empty(),
            "{key_type:?}: rows that failed: {failed:?}"
        );
        // Decimal serial, no trailing newline, the documented key order.
        let [o, _] = both(
            &peer,
            &stage,
            "read-certificate-data --certificate {dir}/leaf.pem",
        );
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.starts_with(r#"{"keyType":""#) && text.ends_with("]}"),
            "{text}"
        );
    }
}

#[test]
fn sign_string_output_matches_and_verifies() {
    let Some(peer) = Peer::get() else { return };
    for (key_type, deterministic) in [
        (KeyType::Rsa2048, true),
        (KeyType::P256, false),
        (KeyType::P384, false),
    ] {
        let stage = Stage::new(key_type, false);
        let message = fixed_string(&stage);
        std::fs::write(stage.dir().join("message.bin"), &message).unwrap();
        openssl(
            stage.dir(),
            &[
                "x509",
                "-in",
                "leaf.pem",
                "-pubkey",
                "-noout",
                "-out",
                "public.pem",
            ],
        );
        let mut cases = Vec::new();
        for format in ["json", "text", "bin"] {
            for digest in ["SHA256", "SHA384", "SHA512"] {
                let flags = format!("--format {format} --digest {digest}");
                cases.push((format, digest, flags));
            }
        }
        // The defaults (json, SHA256), other key files, and --debug (nothing more on stdout).
        cases.push(("json", "SHA256", String::new()));
        cases.push(("text", "SHA256", "--format text --debug".into()));
        let keys = [
            "--certificate {dir}/leaf.pem --private-key {dir}/leaf.key",
            "--certificate {dir}/leaf.pem --private-key {dir}/enc.key --pkcs8-password pw",
            "--certificate {dir}/combined.pem",
        ];
        for key in keys {
            for (format, digest, flags) in &cases {
                let template = format!("sign-string {key} {flags}");
                let outs = both(&peer, &stage, &template);
                for out in &outs {
                    assert!(out.status.success(), "{template}: {}", show(out));
                    let signature = decode(format, &out.stdout);
                    verify(&stage, digest, &signature);
                }
                if deterministic {
                    assert_eq!(outs[0].stdout, outs[1].stdout, "{template}");
                }
            }
        }
    }
}

#[test]
fn sign_string_refusals() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, false);
    #[rustfmt::skip]
    let cases = [
        ("unknown format", "sign-string {pem} --format xml", 1, 1),
        ("lower-case digest", "sign-string {pem} --digest sha256", 1, 1),
        ("unknown digest", "sign-string {pem} --digest MD5", 1, 1),
        ("certificate without key", "sign-string --certificate {dir}/leaf.pem", 1, 1),
        ("nothing", "sign-string", 1, 1),
        ("wrong password", "sign-string --certificate {dir}/leaf.pem --private-key {dir}/enc.key --pkcs8-password no", 1, 1),
        // Ours signs with a key alone (the string holds the key's own public half) and
        // checks that a key matches its certificate; the official helper wants a
        // certificate and signs with any key.
        ("key without certificate", "sign-string --private-key {dir}/leaf.key", 1, 0),
        ("key of another certificate", "sign-string --certificate {dir}/leaf.pem --private-key {dir}/root-ca.key", 0, 1),
    ];
    let failed = rows(
        cases,
        |c| c.0,
        |(name, template, official, ours)| {
            let [o, r] = both(&peer, &stage, template);
            exits(name, [&o, &r], [official, ours]);
        },
    );
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}

/// The official helper's test string for the leaf's key: the text, "1", and SHA-256 of
/// "IAM RA" and the public key (the EC point, or the PKCS#1 RSAPublicKey).
fn fixed_string(stage: &Stage) -> Vec<u8> {
    let der = std::fs::read(stage.dir().join("leaf.der")).unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let public = &cert.public_key().subject_public_key.data;
    let hash = Sha256::new()
        .chain_update(b"IAM RA")
        .chain_update(public)
        .finalize();
    [
        b"AWS Roles Anywhere Credential Helper Signing Test".as_slice(),
        b"1",
        hash.as_slice(),
    ]
    .concat()
}

/// The raw signature in `stdout` printed as `format`.
fn decode(format: &str, stdout: &[u8]) -> Vec<u8> {
    let text = || String::from_utf8(stdout.to_vec()).unwrap();
    match format {
        "bin" => stdout.to_vec(),
        "text" => {
            let text = text();
            assert!(
                text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{text:?}"
            );
            hex::decode(text).unwrap()
        }
        _ => {
            let json: serde_json::Value = serde_json::from_slice(stdout).unwrap();
            assert!(!text().ends_with('\n'), "no trailing newline");
            hex::decode(json.as_str().expect("a JSON string")).unwrap()
        }
    }
}

/// openssl verifies `signature` over the fixed string with the certificate's key.
fn verify(stage: &Stage, digest: &str, signature: &[u8]) {
    std::fs::write(stage.dir().join("signature.bin"), signature).unwrap();
    let digest = format!("-{}", digest.to_ascii_lowercase());
    let out = openssl(
        stage.dir(),
        &[
            "dgst",
            &digest,
            "-verify",
            "public.pem",
            "-signature",
            "signature.bin",
            "message.bin",
        ],
    );
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
}

/// Asserts the exit codes of the official helper's run and ours.
fn exits(name: &str, [official, ours]: [&std::process::Output; 2], codes: [i32; 2]) {
    assert_eq!(
        official.status.code(),
        Some(codes[0]),
        "{name}: official: {}",
        show(official)
    );
    assert_eq!(
        ours.status.code(),
        Some(codes[1]),
        "{name}: ours: {}",
        show(ours)
    );
}
