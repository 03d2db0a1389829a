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

/// Verifies each `(certificate, string to sign, signature hex)` with pyca `cryptography`:
/// ML-DSA from another implementation than the client's (RustCrypto) and the emulator's
/// (`fips204`). Pure ML-DSA, empty context.
fn pyca_verifies(checks: &[(PathBuf, String, String)]) {
    let input: Vec<serde_json::Value> = checks
        .iter()
        .map(|(cert, sts, sig)| serde_json::json!([cert, sts, sig]))
        .collect();
    let script = r#"
import json, sys
from cryptography import x509
for cert, sts, sig in json.load(sys.stdin):
    key = x509.load_pem_x509_certificate(open(cert, "rb").read()).public_key()
    key.verify(bytes.fromhex(sig), sts.encode())
    print(type(key).__name__)
"#;
    let out = common::run_with_input(
        std::process::Command::new(common::python())
            .arg("-c")
            .arg(script),
        serde_json::to_string(&input).unwrap().as_bytes(),
    );
    assert!(
        out.status.success(),
        "pyca refused a signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = String::from_utf8(out.stdout).unwrap();
    assert_eq!(names.lines().count(), checks.len(), "{names}");
    assert!(names.lines().all(|n| n.contains("MLDSA")), "{names}");
}

/// Keys and certificates made by pyca `cryptography` (and the "both" and expanded encodings
/// assembled from its seed), each encoding and an AES-256 encrypted key, for each size:
/// credentials from the emulator, and the signature of every request verifies with pyca on
/// its own over the string to sign the emulator rebuilt.
#[test]
fn pyca_keys_in_every_encoding_get_credentials_and_pyca_verifies_each_request() {
    use crate::credential_process::{Setup, credentials};
    let mut checks = Vec::new();
    for size in SIZES {
        let ca = std::fs::read_to_string(fixture(&format!("mldsa{size}-ca.pem"))).unwrap();
        let setup = Setup::trusting(&ca);
        let cert = fixture(&format!("mldsa{size}-cert.pem"));
        for encoding in ["seed", "expanded", "both", "seed-aes256"] {
            let key = private_copy(setup.dir.path(), &format!("mldsa{size}-{encoding}.pem"));
            let mut cmd = setup.command();
            cmd.arg("--certificate")
                .arg(&cert)
                .args(["--private-key", &key]);
            if encoding.ends_with("aes256") {
                cmd.env("ROLESANYWHERE_PKCS8_PASSWORD", "password");
            }
            let json = credentials(&common::run(&mut cmd));
            assert!(
                json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
                "ML-DSA-{size} {encoding}"
            );
        }
        let received = setup.emulator.received();
        assert_eq!(received.len(), 4, "ML-DSA-{size}: {received:?}");
        for r in received {
            assert_eq!(r.status, 201, "ML-DSA-{size}: {r:?}");
            let v = r.verified.expect("a verified request keeps its signature");
            assert!(v.string_to_sign.starts_with("AWS4-X509-MLDSA\n"));
            checks.push((cert.clone(), v.string_to_sign, v.signature_hex));
        }
    }
    pyca_verifies(&checks);
}

/// A key that does not belong to the certificate is refused before any request: another
/// size's key, and a "both" key whose expanded half is another key's.
#[test]
fn an_mldsa_key_for_another_certificate_is_refused_before_any_request() {
    use crate::credential_process::{Setup, failure};
    let ca = std::fs::read_to_string(fixture("mldsa65-ca.pem")).unwrap();
    let setup = Setup::trusting(&ca);
    for (key, expected) in [
        ("mldsa44-seed.pem", "does not match"),
        ("mldsa87-both.pem", "does not match"),
        (
            "mldsa65-both-mismatch.pem",
            "does not match the seed beside it",
        ),
    ] {
        let key = private_copy(setup.dir.path(), key);
        let mut cmd = setup.command();
        cmd.arg("--certificate")
            .arg(fixture("mldsa65-cert.pem"))
            .args(["--private-key", &key]);
        let message = failure(&common::run(&mut cmd));
        assert!(message.contains(expected), "{key}: {message}");
    }
    assert!(setup.emulator.received().is_empty());
}

/// The AWS CLI, with `credential_process` running this helper on an ML-DSA-87 key (the
/// largest request), signs `sts get-caller-identity` with the credentials it received.
#[test]
fn aws_cli_signs_with_credentials_from_an_mldsa_key() {
    use crate::credential_process::{PROFILE, REGION, ROLE, Setup, TA};
    let ca = std::fs::read_to_string(fixture("mldsa87-ca.pem")).unwrap();
    let setup = Setup::trusting(&ca);
    let key = private_copy(setup.dir.path(), "mldsa87-both.pem");
    let config = setup.path("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile pq]\nregion = {REGION}\ncredential_process = {} credential-process --certificate {} --private-key {key} --trust-anchor-arn {TA} --profile-arn {PROFILE} --role-arn {ROLE} --endpoint {}\n",
            common::bin().display(),
            fixture("mldsa87-cert.pem").display(),
            setup.emulator.url()
        ),
    )
    .unwrap();
    let identity = setup.caller_identity("pq", setup.aws_env(&config));
    let arn = identity["Arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::111122223333:assumed-role/onprem-app/"),
        "{arn}"
    );
    let received = setup.emulator.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0]
            .verified
            .as_ref()
            .is_some_and(|v| v.string_to_sign.starts_with("AWS4-X509-MLDSA\n"))
    );
}
