//! `pki init`: the files, key modes, extensions as openssl reads them, and chains that
//! `openssl verify` accepts.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::common;

fn init(dir: &Path, extra: &[&str]) -> std::process::Output {
    common::run(common::helper().args(["pki", "init"]).arg(dir).args(extra))
}

fn text(dir: &Path, file: &str) -> String {
    String::from_utf8(common::openssl(
        dir,
        &["x509", "-in", file, "-noout", "-text"],
    ))
    .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn pki_init_with_intermediate_writes_a_verifiable_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let out = init(
        &dir,
        &[
            "--intermediate",
            "--key-type",
            "p256",
            "--cn",
            "host-a.example",
            "--days",
            "30",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["root-ca.key", "intermediate-ca.key", "leaf.key", "tls.key"] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    for cert in [
        "root-ca.pem",
        "intermediate-ca.pem",
        "leaf.pem",
        "leaf-chain.pem",
        "leaf-fullchain.pem",
        "tls.pem",
    ] {
        assert!(dir.join(cert).is_file(), "{cert}");
    }

    let root = text(&dir, "root-ca.pem");
    assert!(root.contains("CA:TRUE"), "{root}");
    assert!(root.contains("Certificate Sign, CRL Sign"), "{root}");
    let mid = text(&dir, "intermediate-ca.pem");
    assert!(mid.contains("CA:TRUE, pathlen:0"), "{mid}");
    assert!(mid.contains("Certificate Sign, CRL Sign"));
    let leaf = text(&dir, "leaf.pem");
    assert!(leaf.contains("Version: 3"), "{leaf}");
    assert!(leaf.contains("CA:FALSE"), "{leaf}");
    assert!(
        leaf.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
        "{leaf}"
    );
    assert!(leaf.contains("TLS Web Client Authentication"), "{leaf}");
    assert!(leaf.contains("CN = host-a.example"), "{leaf}");
    assert!(leaf.contains("ecdsa-with-SHA256"), "{leaf}");
    let tls = text(&dir, "tls.pem");
    assert!(
        tls.contains("IP Address:127.0.0.1")
            && tls.contains("IP Address:0:0:0:0:0:0:0:1")
            && tls.contains("DNS:localhost"),
        "{tls}"
    );
    assert!(tls.contains("TLS Web Server Authentication"), "{tls}");

    let verified = common::openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root-ca.pem",
            "-untrusted",
            "leaf-chain.pem",
            "leaf.pem",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&verified).trim(), "leaf.pem: OK");
    common::openssl(&dir, &["verify", "-CAfile", "root-ca.pem", "tls.pem"]);
    // Without the intermediate the leaf does not verify: the chain file is needed.
    let out = common::run(
        std::process::Command::new(common::require_tool("openssl"))
            .current_dir(&dir)
            .args(["verify", "-CAfile", "root-ca.pem", "leaf.pem"]),
    );
    assert!(!out.status.success());
    // The key matches the certificate.
    let from_key = common::openssl(&dir, &["pkey", "-in", "leaf.key", "-pubout"]);
    let from_cert = common::openssl(&dir, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);

    // Existing files are not replaced without --force.
    let again = init(&dir, &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = init(&dir, &["--force", "--intermediate"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(mode(&dir.join("leaf.key")), 0o600);
}

#[test]
fn pki_init_rsa_without_intermediate_verifies_against_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = init(dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("intermediate-ca.pem").exists() && !dir.join("leaf-chain.pem").exists());
    let leaf = text(dir, "leaf.pem");
    assert!(leaf.contains("Public-Key: (2048 bit)"), "{leaf}");
    assert!(leaf.contains("sha256WithRSAEncryption"), "{leaf}");
    assert!(leaf.contains("CA:FALSE") && leaf.contains("Digital Signature"));
    let verified = common::openssl(dir, &["verify", "-CAfile", "root-ca.pem", "leaf.pem"]);
    assert_eq!(String::from_utf8_lossy(&verified).trim(), "leaf.pem: OK");
    assert_eq!(
        std::fs::read_to_string(dir.join("leaf-fullchain.pem")).unwrap(),
        std::fs::read_to_string(dir.join("leaf.pem")).unwrap()
    );
    assert_eq!(mode(&dir.join("root-ca.key")), 0o600);
    // Certificates are created 0644 less the umask, which the test harness sets to 077
    // (tests/it/common); keys are 0600 whatever the umask.
    assert_eq!(mode(&dir.join("leaf.pem")), 0o644 & !0o077);
    let key = common::openssl(dir, &["pkey", "-in", "leaf.key", "-noout", "-text"]);
    assert!(String::from_utf8_lossy(&key).contains("2048 bit"));
}
