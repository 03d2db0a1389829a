//! Bad certificate and key input: every case exits with code 1, prints exactly one line on
//! stderr that names the input file and says what to do, prints nothing on stdout, and
//! never panics. Inputs are made with the `openssl` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use rolesanywhere_helper::identity::{Identity, IdentitySpec};

use crate::common::{helper, openssl, run};
use crate::identity_files::{Files, Kind, PASSWORD, Password, issue_leaf, pki, put, write_ca};

/// Words of an instruction: an error must contain at least one.
const HINTS: &[&str] = &[
    "give",
    "check",
    "use",
    "renew",
    "remove",
    "convert",
    "replace",
    "re-encrypt",
    "re-export",
    "export",
    "issue",
    "write",
];

/// Runs the command and asserts the refusal: exit code 1, one line on stderr naming
/// `input`, with a hint and every word of `about` (case-insensitive), empty stdout.
#[track_caller]
fn refused(case: &str, cmd: &mut Command, input: &Path, about: &[&str]) -> String {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}: exit status is {}, stderr: {stderr}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "{case}: stdout is not empty: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{case}: panicked: {stderr}");
    assert!(
        stderr.ends_with('\n') && stderr.matches('\n').count() == 1,
        "{case}: stderr is not exactly one line: {stderr:?}"
    );
    assert_line(case, &stderr, input, about);
    stderr
}

/// The message names `input`, says what to do, and mentions each of `about`.
#[track_caller]
fn assert_line(case: &str, line: &str, input: &Path, about: &[&str]) {
    let input = input.to_str().expect("utf-8 path");
    assert!(
        line.contains(input),
        "{case}: does not name {input}: {line}"
    );
    let lower = line.to_lowercase();
    assert!(
        HINTS.iter().any(|h| lower.contains(h)),
        "{case}: does not say what to do: {line}"
    );
    for word in about {
        assert!(
            lower.contains(&word.to_lowercase()),
            "{case}: does not mention {word:?}: {line}"
        );
    }
}

/// `sign-string` with a certificate and a key.
fn sign(cert: &Path, key: &Path, password: Password) -> Command {
    let mut cmd = helper();
    cmd.arg("sign-string")
        .arg("--certificate")
        .arg(cert)
        .arg("--private-key")
        .arg(key);
    password.apply(&mut cmd);
    cmd
}

/// `sign-string` with only `--private-key`, or only `--certificate` (combined, PKCS#12).
fn sign_one(flag: &str, path: &Path, password: Password) -> Command {
    let mut cmd = helper();
    cmd.arg("sign-string").arg(flag).arg(path);
    password.apply(&mut cmd);
    cmd
}

fn read_cert(path: &Path) -> Command {
    let mut cmd = helper();
    cmd.args(["read-certificate-data", "--certificate"])
        .arg(path);
    cmd
}

/// A P-256 leaf's files in a fresh directory.
fn setup() -> (tempfile::TempDir, Files<'static>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let leaf = leaf(Kind::Ec("P-256", 32));
    let files = Files::write(tmp.path(), leaf);
    (tmp, files)
}

fn leaf(kind: Kind) -> &'static crate::identity_files::Leaf {
    pki()
        .leaves
        .iter()
        .find(|l| l.kind.slug() == kind.slug())
        .expect("leaf of that kind")
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn missing_file() {
    let (tmp, f) = setup();
    let missing = path(tmp.path(), "no-such-file.pem");
    refused(
        "missing certificate",
        &mut sign(&missing, &f.key, Password::None),
        &missing,
        &["does not exist"],
    );
    refused(
        "missing key",
        &mut sign(&f.cert, &missing, Password::None),
        &missing,
        &["does not exist"],
    );
    refused(
        "missing key alone",
        &mut sign_one("--private-key", &missing, Password::None),
        &missing,
        &["does not exist"],
    );
    refused(
        "missing single-file certificate",
        &mut sign_one("--certificate", &missing, Password::None),
        &missing,
        &["does not exist"],
    );
    refused(
        "read-certificate-data of a missing file",
        &mut read_cert(&missing),
        &missing,
        &["does not exist"],
    );
    refused(
        "missing password file",
        &mut sign(&f.cert, &f.key, Password::File(&missing)),
        &missing,
        &[],
    );
}

#[test]
fn directory_instead_of_file() {
    let (tmp, f) = setup();
    let dir = tmp.path().join("a-directory");
    std::fs::create_dir(&dir).expect("mkdir");
    refused(
        "directory as certificate",
        &mut sign(&dir, &f.key, Password::None),
        &dir,
        &["directory"],
    );
    refused(
        "directory as key",
        &mut sign(&f.cert, &dir, Password::None),
        &dir,
        &["directory"],
    );
    refused(
        "read-certificate-data of a directory",
        &mut read_cert(&dir),
        &dir,
        &["directory"],
    );
    refused(
        "directory as password file",
        &mut sign(&f.cert, &f.key, Password::File(&dir)),
        &dir,
        &[],
    );
}

#[test]
fn empty_file() {
    let (tmp, f) = setup();
    let empty = put(tmp.path(), "empty.pem", b"");
    let blank = put(tmp.path(), "blank.pem", b"\n  \n");
    for file in [&empty, &blank] {
        refused(
            "empty certificate",
            &mut sign(file, &f.key, Password::None),
            file,
            &["empty"],
        );
        refused(
            "empty key",
            &mut sign(&f.cert, file, Password::None),
            file,
            &["empty"],
        );
        refused(
            "empty single-file certificate",
            &mut sign_one("--certificate", file, Password::None),
            file,
            &["empty"],
        );
        refused(
            "read-certificate-data of an empty file",
            &mut read_cert(file),
            file,
            &["empty"],
        );
    }
}

#[test]
fn truncated_pem() {
    let (tmp, f) = setup();
    let cert = &f.leaf.cert_pem;
    let key = &f.leaf.key_pem;
    let half_cert = put(tmp.path(), "half.crt.pem", &cert[..cert.len() / 2]);
    let half_key = put(tmp.path(), "half.key.pem", &key[..key.len() / 2]);
    refused(
        "certificate cut in half",
        &mut sign(&half_cert, &f.key, Password::None),
        &half_cert,
        &["truncated"],
    );
    refused(
        "read-certificate-data of a certificate cut in half",
        &mut read_cert(&half_cert),
        &half_cert,
        &["truncated"],
    );
    refused(
        "key cut in half",
        &mut sign(&f.cert, &half_key, Password::None),
        &half_key,
        &["truncated"],
    );
    refused(
        "key cut in half, alone",
        &mut sign_one("--private-key", &half_key, Password::None),
        &half_key,
        &["truncated"],
    );

    // Lines lost from the middle: the END line is there, the DER is short.
    let text = String::from_utf8_lossy(cert);
    let lines: Vec<&str> = text.lines().collect();
    let mut short: Vec<&str> = lines[..lines.len() / 2].to_vec();
    short.push(lines[lines.len() - 1]);
    let short_cert = put(tmp.path(), "short.crt.pem", short.join("\n").as_bytes());
    refused(
        "certificate with lines lost",
        &mut sign(&short_cert, &f.key, Password::None),
        &short_cert,
        &[],
    );
    let text = String::from_utf8_lossy(key);
    let lines: Vec<&str> = text.lines().collect();
    let mut short: Vec<&str> = lines[..lines.len() / 2].to_vec();
    short.push(lines[lines.len() - 1]);
    let short_key = put(tmp.path(), "short.key.pem", short.join("\n").as_bytes());
    refused(
        "key with lines lost",
        &mut sign(&f.cert, &short_key, Password::None),
        &short_key,
        &[],
    );
}

#[test]
fn garbage_der() {
    let (tmp, f) = setup();
    // Starts like a DER SEQUENCE, then nonsense.
    let mut bytes = vec![0x30, 0x82, 0x01, 0x00];
    bytes.extend((0u32..256).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let garbage = put(tmp.path(), "garbage.der", &bytes);
    refused(
        "garbage DER certificate",
        &mut sign(&garbage, &f.key, Password::None),
        &garbage,
        &[],
    );
    refused(
        "garbage DER key",
        &mut sign(&f.cert, &garbage, Password::None),
        &garbage,
        &[],
    );
    refused(
        "garbage DER key alone",
        &mut sign_one("--private-key", &garbage, Password::None),
        &garbage,
        &[],
    );
    refused(
        "garbage DER single-file certificate",
        &mut sign_one("--certificate", &garbage, Password::None),
        &garbage,
        &[],
    );
    refused(
        "read-certificate-data of garbage DER",
        &mut read_cert(&garbage),
        &garbage,
        &[],
    );
}

#[test]
fn wrong_password() {
    let (tmp, f) = setup();
    let passout = format!("pass:{PASSWORD}");
    let d = tmp.path();
    let pbkdf2 = f.dir.join("p256.pbkdf2.pem");
    let scrypt = f.dir.join("p256.scrypt.pem");
    let key = f.key.to_str().expect("utf-8");
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            key,
            "-v2",
            "aes-256-cbc",
            "-passout",
            &passout,
            "-out",
            "p256.pbkdf2.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            key,
            "-scrypt",
            "-passout",
            &passout,
            "-out",
            "p256.scrypt.pem",
        ],
    );
    let wrong_file = put(d, "wrong.txt", b"not the password\n");
    for (name, enc) in [("PBKDF2", &pbkdf2), ("scrypt", &scrypt)] {
        for password in [
            Password::Flag("not the password"),
            Password::Env("nope"),
            Password::File(&wrong_file),
        ] {
            refused(
                &format!("{name} key, wrong password by {password:?}"),
                &mut sign(&f.cert, enc, password),
                enc,
                &["password"],
            );
        }
        refused(
            &format!("{name} key, no password"),
            &mut sign(&f.cert, enc, Password::None),
            enc,
            &["password"],
        );
    }
    // The same key inside a combined key+certificate file.
    let mut combined = std::fs::read(&pbkdf2).expect("read");
    combined.extend(&f.leaf.cert_pem);
    let combined = put(d, "combined.pem", &combined);
    refused(
        "combined PEM with an encrypted key, wrong password",
        &mut sign_one(
            "--certificate",
            &combined,
            Password::Flag("not the password"),
        ),
        &combined,
        &["password is wrong"],
    );
    refused(
        "combined PEM with an encrypted key, no password",
        &mut sign_one("--certificate", &combined, Password::None),
        &combined,
        &["no password"],
    );
}

#[test]
fn password_given_for_an_unencrypted_key() {
    let (tmp, f) = setup();
    let d = tmp.path();
    let key = f.key.to_str().expect("utf-8");
    openssl(
        d,
        &["pkey", "-in", key, "-traditional", "-out", "p256.sec1.pem"],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            key,
            "-outform",
            "DER",
            "-out",
            "p256.p8.der",
        ],
    );
    let pw_file = put(d, "password.txt", PASSWORD.as_bytes());
    for (name, file) in [
        ("PKCS#8 PEM", f.key.clone()),
        ("SEC1 PEM", d.join("p256.sec1.pem")),
        ("PKCS#8 DER", d.join("p256.p8.der")),
    ] {
        for password in [
            Password::Flag(PASSWORD),
            Password::Env(PASSWORD),
            Password::File(&pw_file),
        ] {
            refused(
                &format!("{name}, password by {password:?}"),
                &mut sign(&f.cert, &file, password),
                &file,
                &["not encrypted"],
            );
        }
    }
    let mut combined = f.leaf.key_pem.clone();
    combined.extend(&f.leaf.cert_pem);
    let combined = put(d, "combined.pem", &combined);
    refused(
        "combined PEM with a plain key, password given",
        &mut sign_one("--certificate", &combined, Password::Flag(PASSWORD)),
        &combined,
        &["not encrypted"],
    );
}

#[test]
fn key_that_does_not_match_the_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let p256 = Files::write(d, leaf(Kind::Ec("P-256", 32)));
    let p384 = Files::write(d, leaf(Kind::Ec("P-384", 48)));
    let rsa2048 = Files::write(d, leaf(Kind::Rsa(2048)));
    let rsa3072 = Files::write(d, leaf(Kind::Rsa(3072)));
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.p256.key",
        ],
    );
    let other = d.join("other.p256.key");
    for (name, cert, key) in [
        ("P-384 key, P-256 certificate", &p256.cert, &p384.key),
        ("another P-256 key", &p256.cert, &other),
        (
            "RSA-2048 key, RSA-3072 certificate",
            &rsa3072.cert,
            &rsa2048.key,
        ),
        ("RSA key, EC certificate", &p256.cert, &rsa2048.key),
    ] {
        let line = refused(
            name,
            &mut sign(cert, key, Password::None),
            key,
            &["does not match"],
        );
        assert_line(name, &line, cert, &[]);
    }
    // A combined file whose key belongs to another certificate.
    let mut combined = std::fs::read(&p384.key).expect("read");
    combined.extend(&p256.leaf.cert_pem);
    let combined = put(d, "combined.pem", &combined);
    refused(
        "combined PEM, key of another certificate",
        &mut sign_one("--certificate", &combined, Password::None),
        &combined,
        &["does not match"],
    );
}

#[test]
fn unsupported_curve_secp256k1() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write_ca(d);
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp256k1",
            "-out",
            "k1.key",
        ],
    );
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "k1.key",
            "-traditional",
            "-out",
            "k1.sec1.pem",
        ],
    );
    let cert = issue_leaf(d, "k1.key", "leaf k1", "30");
    let key = d.join("k1.key");
    let sec1 = d.join("k1.sec1.pem");
    refused(
        "secp256k1 PKCS#8 key alone",
        &mut sign_one("--private-key", &key, Password::None),
        &key,
        &["secp256k1"],
    );
    refused(
        "secp256k1 SEC1 key alone",
        &mut sign_one("--private-key", &sec1, Password::None),
        &sec1,
        &["secp256k1"],
    );
    refused(
        "secp256k1 certificate and key",
        &mut sign(&cert, &key, Password::None),
        &cert,
        &["secp256k1"],
    );
    refused(
        "read-certificate-data of a secp256k1 certificate",
        &mut read_cert(&cert),
        &cert,
        &["secp256k1"],
    );
}

#[test]
fn rsa_1024() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write_ca(d);
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "rsa1024.key",
        ],
    );
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "rsa1024.key",
            "-traditional",
            "-out",
            "rsa1024.pkcs1.pem",
        ],
    );
    let cert = issue_leaf(d, "rsa1024.key", "leaf rsa1024", "30");
    let key = d.join("rsa1024.key");
    let pkcs1 = d.join("rsa1024.pkcs1.pem");
    refused(
        "RSA-1024 PKCS#8 key alone",
        &mut sign_one("--private-key", &key, Password::None),
        &key,
        &["1024"],
    );
    refused(
        "RSA-1024 PKCS#1 key alone",
        &mut sign_one("--private-key", &pkcs1, Password::None),
        &pkcs1,
        &["1024"],
    );
    refused(
        "RSA-1024 certificate and key",
        &mut sign(&cert, &key, Password::None),
        &key,
        &["1024"],
    );
}

#[test]
fn ca_certificate_as_leaf() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let cert = put(d, "inter.pem", &pki().inter_pem);
    let key = put(d, "inter.key", &pki().inter_key_pem);
    refused(
        "the intermediate CA as leaf",
        &mut sign(&cert, &key, Password::None),
        &cert,
        &["CA"],
    );
    // The usual mistake: `openssl req -x509` marks its certificate CA:TRUE by default.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "self.key",
            "-subj",
            "/CN=self-signed",
            "-days",
            "30",
            "-out",
            "self.pem",
        ],
    );
    let (cert, key) = (d.join("self.pem"), d.join("self.key"));
    refused(
        "a req -x509 self-signed certificate",
        &mut sign(&cert, &key, Password::None),
        &cert,
        &["CA"],
    );
}

#[test]
fn expired_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write_ca(d);
    let f = Files::write(d, leaf(Kind::Ec("P-256", 32)));
    let key = f.key.file_name().and_then(|n| n.to_str()).expect("utf-8");
    // `-days -1`: valid from now until a day ago, so already expired.
    let cert = issue_leaf(d, key, "expired leaf", "-1");
    refused(
        "expired certificate",
        &mut sign(&cert, &f.key, Password::None),
        &cert,
        &["expired"],
    );
}

/// No command of this issue takes `--intermediates`, so the bundle is checked through the
/// library: a bundle with a private key block is refused, naming the bundle, in one line.
#[test]
fn intermediates_bundle_with_a_private_key() {
    let (tmp, f) = setup();
    let mut bundle = pki().inter_pem.clone();
    bundle.extend(&f.leaf.key_pem);
    let bundle = put(tmp.path(), "bundle.pem", &bundle);
    let spec = IdentitySpec {
        certificate: Some(f.cert.clone()),
        private_key: Some(f.key.clone()),
        intermediates: Some(bundle.clone()),
        ..IdentitySpec::default()
    };
    let err = Identity::load(&spec, time::OffsetDateTime::now_utc())
        .expect_err("a bundle with a key must be refused")
        .to_string();
    assert!(!err.contains('\n'), "not one line: {err:?}");
    assert_line("bundle with a private key", &err, &bundle, &["PRIVATE KEY"]);
    let key_body = String::from_utf8_lossy(&f.leaf.key_pem);
    let secret_line = key_body.lines().nth(1).expect("key body");
    assert!(
        !err.contains(secret_line),
        "the error shows key material: {err}"
    );
}

#[test]
fn pkcs12_with_a_wrong_password() {
    let (tmp, f) = setup();
    let d = tmp.path();
    let passout = format!("pass:{PASSWORD}");
    let key = f.key.to_str().expect("utf-8");
    let cert = f.cert.to_str().expect("utf-8");
    openssl(
        d,
        &[
            "pkcs12", "-export", "-inkey", key, "-in", cert, "-passout", &passout, "-out", "id.p12",
        ],
    );
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            key,
            "-in",
            cert,
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
            "-passout",
            &passout,
            "-out",
            "legacy.p12",
        ],
    );
    let wrong_file = put(d, "wrong.txt", b"wrong\n");
    for p12 in [d.join("id.p12"), d.join("legacy.p12")] {
        for password in [
            Password::Flag("wrong"),
            Password::Env("wrong"),
            Password::File(&wrong_file),
        ] {
            refused(
                &format!("PKCS#12 {}, wrong password by {password:?}", p12.display()),
                &mut sign_one("--certificate", &p12, password),
                &p12,
                &["password"],
            );
        }
        refused(
            &format!("PKCS#12 {}, no password", p12.display()),
            &mut sign_one("--certificate", &p12, Password::None),
            &p12,
            &["password"],
        );
    }
}

#[test]
fn legacy_encrypted_pem_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let passout = format!("pass:{PASSWORD}");
    let rsa = Files::write(d, leaf(Kind::Rsa(2048)));
    let ec = Files::write(d, leaf(Kind::Ec("P-256", 32)));
    openssl(
        d,
        &[
            "rsa",
            "-in",
            rsa.key.to_str().expect("utf-8"),
            "-aes128",
            "-traditional",
            "-passout",
            &passout,
            "-out",
            "rsa.legacy.pem",
        ],
    );
    openssl(
        d,
        &[
            "ec",
            "-in",
            ec.key.to_str().expect("utf-8"),
            "-aes256",
            "-passout",
            &passout,
            "-out",
            "ec.legacy.pem",
        ],
    );
    for (files, name) in [(&rsa, "rsa.legacy.pem"), (&ec, "ec.legacy.pem")] {
        let key = d.join(name);
        let text = std::fs::read_to_string(&key).expect("read");
        assert!(
            text.contains("Proc-Type: 4,ENCRYPTED"),
            "openssl did not write legacy PEM encryption: {text}"
        );
        for password in [Password::None, Password::Flag(PASSWORD)] {
            refused(
                &format!("{name}, password by {password:?}"),
                &mut sign(&files.cert, &key, password),
                &key,
                &["legacy", "openssl pkcs8 -topk8"],
            );
        }
    }
}

#[test]
fn ed25519_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write_ca(d);
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.key"]);
    let cert = issue_leaf(d, "ed.key", "leaf ed25519", "30");
    let key = d.join("ed.key");
    refused(
        "Ed25519 key alone",
        &mut sign_one("--private-key", &key, Password::None),
        &key,
        &["Ed25519"],
    );
    refused(
        "Ed25519 certificate and key",
        &mut sign(&cert, &key, Password::None),
        &cert,
        &["Ed25519"],
    );
    refused(
        "read-certificate-data of an Ed25519 certificate",
        &mut read_cert(&cert),
        &cert,
        &["Ed25519"],
    );
}

#[test]
fn certificate_without_a_key() {
    let (tmp, f) = setup();
    let der = tmp.path().join("p256.crt.der");
    openssl(
        tmp.path(),
        &[
            "x509",
            "-in",
            f.cert.to_str().expect("utf-8"),
            "-outform",
            "DER",
            "-out",
            "p256.crt.der",
        ],
    );
    for cert in [&f.cert, &der] {
        refused(
            "certificate alone, no --private-key",
            &mut sign_one("--certificate", cert, Password::None),
            cert,
            &["no private key", "--private-key"],
        );
    }
}

/// Encryption schemes other than PBES2: the PKCS#12 PBE that `openssl pkcs8 -topk8` used by
/// default before OpenSSL 1.1. The error names the scheme and how to re-encrypt.
#[test]
fn key_encrypted_with_an_unsupported_scheme() {
    let (tmp, f) = setup();
    let passout = format!("pass:{PASSWORD}");
    let key = f.key.to_str().expect("utf-8");
    openssl(
        tmp.path(),
        &[
            "pkcs8",
            "-topk8",
            "-in",
            key,
            "-v1",
            "PBE-SHA1-3DES",
            "-passout",
            &passout,
            "-out",
            "pbe.pem",
        ],
    );
    let pbe = tmp.path().join("pbe.pem");
    refused(
        "PKCS#8 with PBE-SHA1-3DES",
        &mut sign(&f.cert, &pbe, Password::Flag(PASSWORD)),
        &pbe,
        &[
            "pbeWithSHAAnd3-KeyTripleDES-CBC",
            "not supported",
            "openssl pkcs8 -topk8 -v2",
        ],
    );
}

/// EC keys with the curve spelled out as parameters (`-param_enc explicit`), in PKCS#8
/// and SEC1: refused with the openssl command that converts them.
#[test]
fn ec_key_with_explicit_parameters() {
    let (tmp, f) = setup();
    let d = tmp.path();
    let key = f.key.to_str().expect("utf-8");
    openssl(
        d,
        &[
            "ec",
            "-in",
            key,
            "-param_enc",
            "explicit",
            "-out",
            "explicit.sec1.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "explicit.sec1.pem",
            "-out",
            "explicit.p8.pem",
        ],
    );
    for name in ["explicit.sec1.pem", "explicit.p8.pem"] {
        let path = d.join(name);
        refused(
            name,
            &mut sign(&f.cert, &path, Password::None),
            &path,
            &["explicit", "-param_enc named_curve"],
        );
    }
}

/// `--intermediates` on the command line (credential-process reads the identity before
/// any network call): a bundle holding a key is refused in one line naming the bundle.
#[test]
fn intermediates_bundle_with_a_private_key_on_the_command_line() {
    let (tmp, f) = setup();
    let mut bundle = pki().inter_pem.clone();
    bundle.extend(&f.leaf.key_pem);
    let bundle = put(tmp.path(), "bundle.pem", &bundle);
    let mut cmd = helper();
    cmd.arg("credential-process")
        .arg("--certificate")
        .arg(&f.cert)
        .arg("--private-key")
        .arg(&f.key)
        .arg("--intermediates")
        .arg(&bundle)
        .args([
            "--trust-anchor-arn",
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00000000-0000-0000-0000-000000000000",
            "--profile-arn",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/00000000-0000-0000-0000-000000000000",
            "--role-arn",
            "arn:aws:iam::123456789012:role/test",
            // Never reached; a closed local port in case it were.
            "--endpoint",
            "https://127.0.0.1:9",
        ]);
    refused(
        "credential-process --intermediates with a key block",
        &mut cmd,
        &bundle,
        &["PRIVATE KEY"],
    );
}

/// Makes `path` readable by everyone, as a careless copy would.
fn share(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn key_files_readable_by_others_are_refused_unless_allowed() {
    let (tmp, f) = setup();
    share(&f.key);
    refused(
        "shared key",
        &mut sign(&f.cert, &f.key, Password::None),
        &f.key,
        &["can be read by others (mode 0644)", "chmod 600"],
    );
    refused(
        "shared key alone",
        &mut sign_one("--private-key", &f.key, Password::None),
        &f.key,
        &["mode 0644"],
    );
    // With the flag: it works, with one warning line.
    let out = run(sign(&f.cert, &f.key, Password::None).arg("--allow-readable-key-files"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("can be read by others"), "{stderr}");
    // The certificate alone is public: no complaint about its mode.
    share(&f.cert);
    assert!(run(&mut read_cert(&f.cert)).status.success());

    // A combined key+certificate file and a PKCS#12 file hold the key too.
    let combined = path(tmp.path(), "combined.pem");
    let mut both = std::fs::read(&f.key).unwrap();
    both.extend(std::fs::read(&f.cert).unwrap());
    std::fs::write(&combined, both).unwrap();
    share(&combined);
    refused(
        "shared combined file",
        &mut sign_one("--certificate", &combined, Password::None),
        &combined,
        &["mode 0644"],
    );
    let p12 = path(tmp.path(), "shared.p12");
    openssl(
        tmp.path(),
        &[
            "pkcs12",
            "-export",
            "-inkey",
            f.key.to_str().unwrap(),
            "-in",
            f.cert.to_str().unwrap(),
            "-passout",
            &format!("pass:{PASSWORD}"),
            "-out",
            p12.to_str().unwrap(),
        ],
    );
    share(&p12);
    refused(
        "shared PKCS#12",
        &mut sign_one("--certificate", &p12, Password::Flag(PASSWORD)),
        &p12,
        &["mode 0644"],
    );

    // So does a password file.
    let password = path(tmp.path(), "password");
    std::fs::write(&password, PASSWORD).unwrap();
    share(&password);
    refused(
        "shared password file",
        &mut sign_one("--certificate", &p12, Password::File(&password)),
        &password,
        &["password file", "mode 0644"],
    );
}
