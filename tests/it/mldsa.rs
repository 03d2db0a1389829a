//! ML-DSA file keys through the binary: `read-certificate-data` and `sign-string` on the
//! fixtures of `tests/data/mldsa/` (made by `make.py` there with pyca `cryptography`), and,
//! when the official helper is there (see [`crate::conformance`]), byte for byte against it:
//! ML-DSA signatures are deterministic.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rolesanywhere_helper::x509::{Certificate, Digest};

use crate::common;
use crate::conformance::{Peer, Side};

const SIZES: [u32; 3] = [44, 65, 87];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mldsa")
        .join(name)
}

/// A copy of a key fixture with mode 0600, which both programs accept without a flag.
fn private_copy(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::copy(fixture(name), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

fn arg(name: &str) -> String {
    fixture(name).display().to_string()
}

#[test]
fn read_certificate_data_names_the_parameter_set() {
    let peer = Peer::get();
    for size in SIZES {
        let args = [
            "read-certificate-data".to_owned(),
            "--certificate".to_owned(),
            arg(&format!("mldsa{size}-cert.pem")),
        ];
        let out = common::run(common::helper().args(&args));
        let json = common::json_stdout(&out, "read-certificate-data");
        let name = format!("ML-DSA-{size}");
        assert_eq!(json["keyType"], name.as_str());
        assert_eq!(json["supportedAlgorithms"], serde_json::json!([name]));
        assert_eq!(json["serialNumber"], (2000 + size).to_string().as_str());
        if let Some(peer) = &peer {
            let official = peer.run(Side::Official, &args, &[]);
            assert!(official.status.success(), "{official:?}");
            assert_eq!(
                official.stdout, out.stdout,
                "read-certificate-data ML-DSA-{size}"
            );
        }
    }
}

#[test]
fn sign_string_is_pure_deterministic_mldsa_as_the_official_helper_signs() {
    let peer = Peer::get();
    let dir = tempfile::tempdir().unwrap();
    let fixed = b"AWS Roles Anywhere Credential Helper Signing Test1";
    for size in SIZES {
        let cert = arg(&format!("mldsa{size}-cert.pem"));
        let der = rolesanywhere_helper::x509::pem::blocks(&std::fs::read(&cert).unwrap())
            .unwrap()
            .remove(0)
            .der;
        let public = Certificate::from_der(&der).unwrap().public_key().clone();
        let mut seen = Vec::new();
        for (encoding, digest) in [
            ("seed", "SHA256"),
            ("expanded", "SHA384"),
            ("both", "SHA512"),
        ] {
            let key = private_copy(dir.path(), &format!("mldsa{size}-{encoding}.pem"));
            let args: Vec<String> = [
                "sign-string",
                "--certificate",
                &cert,
                "--private-key",
                &key,
                "--digest",
                digest,
                "--format",
                "bin",
            ]
            .map(str::to_owned)
            .to_vec();
            let ours = common::run_ok(common::helper().args(&args));
            // The test string carries no key hash for ML-DSA, and the digest is not used.
            public.verify(fixed, Digest::Sha256, &ours).unwrap();
            seen.push(ours.clone());
            if let Some(peer) = &peer {
                // The official helper reads the "both" encoding only.
                let mut official_args = args.clone();
                official_args[4] = private_copy(dir.path(), &format!("mldsa{size}-both.pem"));
                let official = peer.run(Side::Official, &official_args, &[]);
                assert!(official.status.success(), "{official:?}");
                assert_eq!(official.stdout, ours, "ML-DSA-{size} {encoding}");
                let again = peer.run(Side::Ours, &args, &[]).stdout;
                assert_eq!(again, ours, "ML-DSA-{size} {encoding}: not deterministic");
            }
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "ML-DSA-{size}");
    }
}

#[test]
fn a_both_key_with_a_foreign_expanded_half_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = private_copy(dir.path(), "mldsa65-both-mismatch.pem");
    let out = common::run(common::helper().args([
        "sign-string",
        "--certificate",
        &arg("mldsa65-cert.pem"),
        "--private-key",
        &key,
    ]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not match the seed beside it"),
        "{stderr}"
    );
}

/// `credential-process` with an ML-DSA leaf issued through an ML-DSA intermediate (the dev
/// PKI of `pki init --key-type ml-dsa-*`), against the emulator, which verifies ML-DSA with an
/// implementation other than the client's: credentials for each size.
#[test]
fn credential_process_gets_credentials_with_each_ml_dsa_size() {
    use rolesanywhere_helper::pki::KeyType;
    for key_type in [KeyType::MlDsa44, KeyType::MlDsa65, KeyType::MlDsa87] {
        let setup = crate::credential_process::Setup::new(key_type, true);
        let out = common::run(
            setup
                .leaf_command()
                .arg("--intermediates")
                .arg(setup.path("intermediate-ca.pem")),
        );
        crate::credential_process::credentials(&out);
        let received = setup.emulator.received();
        assert_eq!(received.len(), 1, "{key_type:?}");
        assert_eq!(received[0].status, 201, "{key_type:?}: {received:?}");
    }
}
