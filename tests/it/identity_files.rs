//! Identities from files made by the `openssl` CLI, in every key type and file format the
//! helper reads, checked against openssl itself: `sign-string` signatures must verify with
//! `openssl dgst -verify` over a test string computed here from openssl's own view of the
//! public key, and `read-certificate-data` must print openssl's DER and serial.
//!
//! The PKI (a root, an intermediate, one end-entity leaf per key type) is generated once per
//! test run and shared; each test writes the files it needs into its own temporary
//! directory. Cases run in loops and every failing case is named in the failure message.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use rolesanywhere_helper::identity::{Identity, IdentitySpec};
use rolesanywhere_helper::secret::Secret;
use sha2::{Digest as _, Sha256};

use crate::common::{helper, openssl, require_tool, run};

/// The password of every encrypted key and PKCS#12 file in these tests.
pub(crate) const PASSWORD: &str = "Tr0ub4dor&3 horse";

/// `basicConstraints` and `keyUsage` of a proper end-entity certificate.
const LEAF_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
                        keyUsage=critical,digitalSignature\n\
                        extendedKeyUsage=clientAuth\n\
                        subjectKeyIdentifier=hash\n\
                        authorityKeyIdentifier=keyid\n";

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE,pathlen:0\n\
                      keyUsage=critical,keyCertSign,cRLSign\n\
                      subjectKeyIdentifier=hash\n\
                      authorityKeyIdentifier=keyid\n";

/// The key types IAM Roles Anywhere accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Rsa(u32),
    /// OpenSSL's curve name, and the length in bytes of one coordinate.
    Ec(&'static str, usize),
}

pub(crate) const KINDS: [Kind; 6] = [
    Kind::Rsa(2048),
    Kind::Rsa(3072),
    Kind::Rsa(4096),
    Kind::Ec("P-256", 32),
    Kind::Ec("P-384", 48),
    Kind::Ec("P-521", 66),
];

impl Kind {
    pub(crate) fn slug(self) -> String {
        match self {
            Self::Rsa(bits) => format!("rsa{bits}"),
            Self::Ec(curve, _) => curve.replace('-', "").to_lowercase(),
        }
    }

    fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa(_))
    }

    /// The `keyType` of `read-certificate-data`.
    fn key_type(self) -> &'static str {
        if self.is_rsa() { "RSA" } else { "EC" }
    }

    /// The name `openssl ecparam -name` knows the curve by.
    fn ecparam_name(self) -> &'static str {
        match self {
            Self::Ec("P-256", _) => "prime256v1",
            Self::Ec("P-384", _) => "secp384r1",
            Self::Ec("P-521", _) => "secp521r1",
            other => panic!("{other:?} has no EC parameters"),
        }
    }
}

/// An end-entity certificate and its key, as openssl made them.
pub(crate) struct Leaf {
    pub(crate) kind: Kind,
    /// PKCS#8 PEM, as `openssl genpkey` writes it.
    pub(crate) key_pem: Vec<u8>,
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) pub_pem: Vec<u8>,
    /// The `sign-string` test string for this key, computed from openssl's output.
    message: Vec<u8>,
}

/// A root, an intermediate that issues every leaf, and one leaf per key type.
pub(crate) struct Pki {
    pub(crate) root_pem: Vec<u8>,
    pub(crate) inter_pem: Vec<u8>,
    pub(crate) inter_key_pem: Vec<u8>,
    pub(crate) leaves: Vec<Leaf>,
}

/// The shared PKI, generated on first use.
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

fn make_pki() -> Pki {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "root.key",
            "-subj",
            "/CN=Identity Test Root",
            "-days",
            "3650",
            "-out",
            "root.pem",
        ],
    );
    std::fs::write(d.join("ca.ext"), CA_EXT).expect("write ca.ext");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "inter.key",
            "-subj",
            "/CN=Identity Test Intermediate",
            "-out",
            "inter.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-extfile",
            "ca.ext",
            "-days",
            "3650",
            "-out",
            "inter.pem",
        ],
    );
    std::fs::write(d.join("leaf.ext"), LEAF_EXT).expect("write leaf.ext");
    // Key generation dominates (RSA-4096 most of all): one thread per key type.
    let leaves = std::thread::scope(|s| {
        let handles: Vec<_> = KINDS
            .iter()
            .map(|&k| s.spawn(move || make_leaf(d, k)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    Pki {
        root_pem: read(&d.join("root.pem")),
        inter_pem: read(&d.join("inter.pem")),
        inter_key_pem: read(&d.join("inter.key")),
        leaves,
    }
}

fn make_leaf(d: &Path, kind: Kind) -> Leaf {
    let slug = kind.slug();
    let key = format!("{slug}.key");
    match kind {
        Kind::Rsa(bits) => openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-out",
                &key,
            ],
        ),
        Kind::Ec(curve, _) => openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
                "-out",
                &key,
            ],
        ),
    };
    let cert = issue_leaf(d, &key, &format!("leaf {slug}"), "365");
    let public = format!("{slug}.pub");
    openssl(d, &["pkey", "-in", &key, "-pubout", "-out", &public]);
    Leaf {
        kind,
        key_pem: read(&d.join(&key)),
        cert_pem: read(&cert),
        pub_pem: read(&d.join(&public)),
        message: test_string(d, kind, &public),
    }
}

/// Issues an end-entity certificate for the key file `key` (relative to `d`) from the
/// intermediate in `d` (`inter.pem`, `inter.key`, `leaf.ext`), valid for `days` from now
/// (negative: already expired). Returns the certificate's path.
pub(crate) fn issue_leaf(d: &Path, key: &str, cn: &str, days: &str) -> PathBuf {
    let stem = cn.replace(' ', "-");
    let csr = format!("{stem}.csr");
    let cert = format!("{stem}.crt");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            key,
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &csr,
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-extfile",
            "leaf.ext",
            "-days",
            days,
            "-out",
            &cert,
        ],
    );
    d.join(cert)
}

/// `"AWS Roles Anywhere Credential Helper Signing Test" || "1" || SHA256("IAM RA" || pubkey)`
/// with `pubkey` taken from openssl: the PKCS#1 `RSAPublicKey` DER, or the uncompressed
/// point `04 || X || Y` (the tail of the SubjectPublicKeyInfo DER).
fn test_string(d: &Path, kind: Kind, public: &str) -> Vec<u8> {
    let pubkey = match kind {
        Kind::Rsa(_) => openssl(
            d,
            &[
                "rsa",
                "-pubin",
                "-in",
                public,
                "-RSAPublicKey_out",
                "-outform",
                "DER",
            ],
        ),
        Kind::Ec(_, coord) => {
            let spki = openssl(d, &["ec", "-pubin", "-in", public, "-outform", "DER"]);
            let point = spki[spki.len() - (1 + 2 * coord)..].to_vec();
            assert_eq!(
                point[0], 0x04,
                "{kind:?}: openssl's SPKI does not end in an uncompressed point"
            );
            point
        }
    };
    let mut hash = Sha256::new();
    hash.update(b"IAM RA");
    hash.update(&pubkey);
    let mut message = b"AWS Roles Anywhere Credential Helper Signing Test1".to_vec();
    message.extend_from_slice(&hash.finalize());
    message
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Writes `bytes` to `dir/name` and returns the path.
pub(crate) fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Writes the intermediate, its key and the leaf extensions into `dir`, for [`issue_leaf`].
pub(crate) fn write_ca(dir: &Path) {
    let pki = pki();
    put(dir, "inter.pem", &pki.inter_pem);
    put(dir, "inter.key", &pki.inter_key_pem);
    put(dir, "leaf.ext", LEAF_EXT.as_bytes());
}

/// One leaf's files in a test's directory.
pub(crate) struct Files<'a> {
    pub(crate) leaf: &'a Leaf,
    pub(crate) slug: String,
    pub(crate) dir: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) public: PathBuf,
    message: PathBuf,
}

impl<'a> Files<'a> {
    pub(crate) fn write(dir: &Path, leaf: &'a Leaf) -> Self {
        let slug = leaf.kind.slug();
        Self {
            leaf,
            dir: dir.to_owned(),
            key: put(dir, &format!("{slug}.key.pem"), &leaf.key_pem),
            cert: put(dir, &format!("{slug}.crt.pem"), &leaf.cert_pem),
            public: put(dir, &format!("{slug}.pub.pem"), &leaf.pub_pem),
            message: put(dir, &format!("{slug}.msg"), &leaf.message),
            slug,
        }
    }

    /// The path of a file named after this leaf, e.g. `p256.<suffix>`.
    fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", self.slug))
    }

    /// Runs openssl in the test directory with `{key}`, `{cert}` and `{out}` replaced
    /// by this leaf's key, certificate and `self.path(out)`; returns that output path.
    fn openssl_to(&self, out: &str, args: &[&str]) -> PathBuf {
        let out_path = self.path(out);
        let key = self.key.to_str().expect("utf-8 path");
        let cert = self.cert.to_str().expect("utf-8 path");
        let out_str = out_path.to_str().expect("utf-8 path");
        let args: Vec<&str> = args
            .iter()
            .map(|a| match *a {
                "{key}" => key,
                "{cert}" => cert,
                "{out}" => out_str,
                other => other,
            })
            .collect();
        openssl(&self.dir, &args);
        out_path
    }

    /// `openssl dgst -<digest> -verify`: does `signature` verify over the test string?
    fn verify(&self, digest: &str, signature: &[u8]) -> Result<(), String> {
        let sig = put(&self.dir, &format!("{}.sig", self.slug), signature);
        let out = run(Command::new(require_tool("openssl"))
            .arg("dgst")
            .arg(format!("-{}", digest.to_lowercase()))
            .arg("-verify")
            .arg(&self.public)
            .arg("-signature")
            .arg(&sig)
            .arg(&self.message));
        if out.status.success() && out.stdout.starts_with(b"Verified OK") {
            Ok(())
        } else {
            Err(format!(
                "openssl does not verify the {digest} signature ({} bytes): {}{}",
                signature.len(),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Where `sign-string` gets the password from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Password<'a> {
    None,
    Flag(&'a str),
    Env(&'a str),
    File(&'a Path),
}

impl Password<'_> {
    pub(crate) fn apply(self, cmd: &mut Command) {
        match self {
            Self::None => {}
            Self::Flag(p) => {
                cmd.arg("--pkcs8-password").arg(p);
            }
            Self::Env(p) => {
                cmd.env("ROLESANYWHERE_PKCS8_PASSWORD", p);
            }
            Self::File(path) => {
                cmd.arg("--pkcs8-password-file").arg(path);
            }
        }
    }
}

/// Runs `sign-string` with `files` (`--certificate`/`--private-key` and friends); returns
/// stdout, or what went wrong.
fn sign_string(
    files: &[&str],
    password: Password,
    digest: &str,
    format: &str,
) -> Result<Vec<u8>, String> {
    let mut cmd = helper();
    cmd.arg("sign-string")
        .args(files)
        .args(["--digest", digest, "--format", format]);
    password.apply(&mut cmd);
    let out = run(&mut cmd);
    if !out.status.success() {
        return Err(format!(
            "sign-string failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if !out.stderr.is_empty() {
        return Err(format!(
            "sign-string wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// Collects the outcome of many cases, so that one run names every failing case.
struct Cases {
    failures: Vec<String>,
    passed: usize,
}

impl Cases {
    fn new() -> Self {
        Self {
            failures: Vec::new(),
            passed: 0,
        }
    }

    fn check(&mut self, case: impl AsRef<str>, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{}: {why}", case.as_ref())),
        }
    }

    /// Fails unless every case passed and at least `expected` cases ran.
    fn finish(self, expected: usize) {
        assert!(
            self.failures.is_empty(),
            "{} of {} cases failed:\n  {}",
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n  ")
        );
        assert!(
            self.passed >= expected,
            "only {} cases ran, expected {expected}",
            self.passed
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The PEM labels of a file, in order.
fn pem_labels(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("-----BEGIN ")?
                .strip_suffix("-----")
                .map(str::to_owned)
        })
        .collect()
}

/// The tag of the element after the version INTEGER of a DER private key: `0x30` for
/// PKCS#8 (AlgorithmIdentifier), `0x02` for PKCS#1 (the modulus), `0x04` for SEC1
/// (the private key OCTET STRING). Tells the three encodings apart without a parser.
fn der_key_form(der: &[u8]) -> u8 {
    assert_eq!(der[0], 0x30, "not a DER SEQUENCE");
    let mut i = 2 + if der[1] & 0x80 != 0 {
        (der[1] & 0x7f) as usize
    } else {
        0
    };
    assert_eq!(der[i], 0x02, "no version INTEGER");
    i += 2 + der[i + 1] as usize;
    der[i]
}

/// A password source for case number `i`, cycling through all three.
fn password_source<'a>(i: usize, pw_file: &'a Path) -> Password<'a> {
    match i % 3 {
        0 => Password::Flag(PASSWORD),
        1 => Password::Env(PASSWORD),
        _ => Password::File(pw_file),
    }
}

/// Unencrypted key formats: PKCS#8 PEM and DER, PKCS#1 RSA and SEC1 EC (PEM and DER, SEC1
/// with and without the `EC PARAMETERS` block `openssl ecparam -genkey` writes), a key
/// without any certificate, a combined key+certificate PEM in both orders, and a DER
/// certificate.
#[test]
fn sign_string_verifies_for_plain_key_formats() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cases = Cases::new();
    for leaf in &pki().leaves {
        let f = Files::write(tmp.path(), leaf);
        let kind = leaf.kind;
        let key = path_str(&f.key);
        let cert = path_str(&f.cert);

        // `openssl pkey -outform DER` writes PKCS#1/SEC1 in OpenSSL 3.0; pkcs8 writes PKCS#8.
        let p8_der = f.openssl_to(
            "p8.der",
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", "{key}", "-outform", "DER", "-out", "{out}",
            ],
        );
        assert_eq!(
            der_key_form(&read(&p8_der)),
            0x30,
            "{kind:?}: openssl did not write PKCS#8 DER"
        );
        let trad_pem = f.openssl_to(
            "trad.pem",
            &["pkey", "-in", "{key}", "-traditional", "-out", "{out}"],
        );
        let want_label = if kind.is_rsa() {
            "RSA PRIVATE KEY"
        } else {
            "EC PRIVATE KEY"
        };
        assert_eq!(
            pem_labels(&read(&trad_pem)),
            [want_label],
            "{kind:?}: openssl -traditional"
        );
        let trad_der = f.openssl_to(
            "trad.der",
            &["pkey", "-in", "{key}", "-outform", "DER", "-out", "{out}"],
        );
        let want_form = if kind.is_rsa() { 0x02 } else { 0x04 };
        assert_eq!(
            der_key_form(&read(&trad_der)),
            want_form,
            "{kind:?}: openssl -traditional DER"
        );
        let cert_der = f.openssl_to(
            "crt.der",
            &["x509", "-in", "{cert}", "-outform", "DER", "-out", "{out}"],
        );

        let mut variants: Vec<(String, String)> = vec![
            ("PKCS#8 PEM".into(), key.into()),
            ("PKCS#8 DER".into(), path_str(&p8_der).into()),
            (format!("{want_label} PEM"), path_str(&trad_pem).into()),
            (format!("{want_label} DER"), path_str(&trad_der).into()),
        ];
        if !kind.is_rsa() {
            let params = openssl(&f.dir, &["ecparam", "-name", kind.ecparam_name()]);
            let mut with_params = params;
            with_params.extend(read(&trad_pem));
            let p = put(&f.dir, &format!("{}.params.pem", f.slug), &with_params);
            assert_eq!(
                pem_labels(&with_params),
                ["EC PARAMETERS", "EC PRIVATE KEY"]
            );
            variants.push((
                "EC PARAMETERS + EC PRIVATE KEY PEM".into(),
                path_str(&p).into(),
            ));
        }
        for (format, key_path) in &variants {
            for (mode, args) in [
                (
                    "with the PEM certificate",
                    vec!["--certificate", cert, "--private-key", key_path],
                ),
                (
                    "with the DER certificate",
                    vec![
                        "--certificate",
                        path_str(&cert_der),
                        "--private-key",
                        key_path,
                    ],
                ),
                ("alone", vec!["--private-key", key_path]),
            ] {
                let outcome = sign_string(&args, Password::None, "SHA256", "bin")
                    .and_then(|sig| f.verify("SHA256", &sig));
                cases.check(format!("{kind:?} {format} key {mode}"), outcome);
            }
        }

        let mut key_then_cert = leaf.key_pem.clone();
        key_then_cert.extend(&leaf.cert_pem);
        let mut cert_then_key = leaf.cert_pem.clone();
        cert_then_key.extend(read(&trad_pem));
        for (name, bytes) in [
            ("PKCS#8 key + certificate", key_then_cert),
            ("certificate + traditional key", cert_then_key),
        ] {
            let p = put(&f.dir, &format!("{}.combined.pem", f.slug), &bytes);
            let outcome = sign_string(
                &["--certificate", path_str(&p)],
                Password::None,
                "SHA256",
                "bin",
            )
            .and_then(|sig| f.verify("SHA256", &sig));
            cases.check(
                format!("{kind:?} combined PEM ({name}), no --private-key"),
                outcome,
            );
        }

        // As files arrive from Windows hosts: a byte order mark and CRLF line endings, and
        // the certificate as `openssl x509 -text` prints it (text before the block).
        let windows = |bytes: &[u8]| {
            let mut out = "\u{feff}".as_bytes().to_vec();
            out.extend(
                String::from_utf8_lossy(bytes)
                    .replace('\n', "\r\n")
                    .as_bytes(),
            );
            out
        };
        let text_cert = openssl(&f.dir, &["x509", "-in", cert, "-text"]);
        let bom_cert = put(&f.dir, &format!("{}.bom.crt", f.slug), &windows(&text_cert));
        let bom_key = put(
            &f.dir,
            &format!("{}.bom.key", f.slug),
            &windows(&leaf.key_pem),
        );
        let outcome = sign_string(
            &[
                "--certificate",
                path_str(&bom_cert),
                "--private-key",
                path_str(&bom_key),
            ],
            Password::None,
            "SHA256",
            "bin",
        )
        .and_then(|sig| f.verify("SHA256", &sig));
        cases.check(
            format!("{kind:?} BOM + CRLF key, `x509 -text` certificate"),
            outcome,
        );
    }
    // 6 types x (4 formats x 3 modes) + 3 EC x 3 modes (EC PARAMETERS) + 6 x 2 combined
    // + 6 Windows-style.
    cases.finish(6 * 12 + 3 * 3 + 6 * 2 + 6);
}

/// An empty password means no password, from every source (upstream: "zero-length
/// passwords mean no password"), so an unencrypted key still loads.
#[test]
fn empty_password_means_no_password() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let leaf = pki()
        .leaves
        .iter()
        .find(|l| l.kind.slug() == "p256")
        .expect("P-256 leaf");
    let f = Files::write(tmp.path(), leaf);
    let empty = put(tmp.path(), "empty.txt", b"");
    let newline = put(tmp.path(), "newline.txt", b"\n");
    let files = [
        "--certificate",
        path_str(&f.cert),
        "--private-key",
        path_str(&f.key),
    ];
    let mut cases = Cases::new();
    for password in [
        Password::Flag(""),
        Password::Env(""),
        Password::File(&empty),
        Password::File(&newline),
    ] {
        let outcome =
            sign_string(&files, password, "SHA256", "bin").and_then(|sig| f.verify("SHA256", &sig));
        cases.check(format!("empty password by {password:?}"), outcome);
    }
    cases.finish(4);
}

/// Encrypted PKCS#8: PBES2 with AES-128/192/256-CBC and PBKDF2 HMAC-SHA1/256/384/512, and
/// scrypt, for every key type; the password from the flag, the environment and a file in
/// turn. Also a DER encrypted key and a combined PEM with an encrypted key.
#[test]
fn sign_string_verifies_for_encrypted_pkcs8() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw_file = put(
        tmp.path(),
        "password.txt",
        format!("{PASSWORD}\n").as_bytes(),
    );
    let passout = format!("pass:{PASSWORD}");
    let mut cases = Cases::new();
    let mut n = 0;
    for leaf in &pki().leaves {
        let f = Files::write(tmp.path(), leaf);
        let kind = leaf.kind;
        let cert = path_str(&f.cert);
        let mut schemes: Vec<(String, Vec<&str>)> = Vec::new();
        for cipher in ["aes-128-cbc", "aes-192-cbc", "aes-256-cbc"] {
            for prf in [
                "hmacWithSHA1",
                "hmacWithSHA256",
                "hmacWithSHA384",
                "hmacWithSHA512",
            ] {
                schemes.push((
                    format!("PBES2 {cipher} PBKDF2 {prf}"),
                    vec!["-v2", cipher, "-v2prf", prf],
                ));
            }
        }
        schemes.push(("PBES2 aes-256-cbc scrypt".into(), vec!["-scrypt"]));
        for (name, scheme) in &schemes {
            let mut args = vec!["pkcs8", "-topk8", "-in", "{key}", "-passout", &passout];
            args.extend(scheme);
            args.extend(["-out", "{out}"]);
            let enc = f.openssl_to("enc.pem", &args);
            assert_eq!(
                pem_labels(&read(&enc)),
                ["ENCRYPTED PRIVATE KEY"],
                "{kind:?} {name}"
            );
            let password = password_source(n, &pw_file);
            n += 1;
            let outcome = sign_string(
                &["--certificate", cert, "--private-key", path_str(&enc)],
                password,
                "SHA256",
                "bin",
            )
            .and_then(|sig| f.verify("SHA256", &sig));
            cases.check(
                format!("{kind:?} encrypted PKCS#8 {name}, password by {password:?}"),
                outcome,
            );
        }

        let enc_der = f.openssl_to(
            "enc.der",
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "{key}",
                "-passout",
                &passout,
                "-v2",
                "aes-256-cbc",
                "-outform",
                "DER",
                "-out",
                "{out}",
            ],
        );
        let password = password_source(n, &pw_file);
        n += 1;
        let outcome = sign_string(
            &["--certificate", cert, "--private-key", path_str(&enc_der)],
            password,
            "SHA256",
            "bin",
        )
        .and_then(|sig| f.verify("SHA256", &sig));
        cases.check(
            format!("{kind:?} encrypted PKCS#8 DER, password by {password:?}"),
            outcome,
        );

        let enc = f.openssl_to(
            "enc.pem",
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "{key}",
                "-passout",
                &passout,
                "-v2",
                "aes-256-cbc",
                "-out",
                "{out}",
            ],
        );
        let mut combined = read(&enc);
        combined.extend(&leaf.cert_pem);
        let combined = put(&f.dir, &format!("{}.enc-combined.pem", f.slug), &combined);
        let password = password_source(n, &pw_file);
        n += 1;
        let outcome = sign_string(
            &["--certificate", path_str(&combined)],
            password,
            "SHA256",
            "bin",
        )
        .and_then(|sig| f.verify("SHA256", &sig));
        cases.check(
            format!("{kind:?} combined PEM with an encrypted key, password by {password:?}"),
            outcome,
        );
    }
    cases.finish(6 * 15);
}

/// PKCS#12 as `--certificate` with no `--private-key`: OpenSSL 3's default (PBES2 AES-256,
/// PBKDF2, SHA-256 MAC) with a password and with an empty one, `-legacy` (RC2/3DES, SHA-1
/// MAC), and the 3DES/SHA-1 form the official helper's fixtures use. Each carries the
/// intermediate too.
#[test]
fn sign_string_verifies_for_pkcs12() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw_file = put(tmp.path(), "password.txt", PASSWORD.as_bytes());
    let inter = put(tmp.path(), "inter.pem", &pki().inter_pem);
    let mut cases = Cases::new();
    let mut n = 0;
    for leaf in &pki().leaves {
        let f = Files::write(tmp.path(), leaf);
        let kind = leaf.kind;
        let passout = format!("pass:{PASSWORD}");
        let forms: [(&str, Vec<&str>, bool); 5] = [
            (
                "OpenSSL 3 default, password",
                vec!["-passout", &passout],
                true,
            ),
            (
                "OpenSSL 3 default, empty password",
                vec!["-passout", "pass:"],
                false,
            ),
            (
                "-legacy, password",
                vec!["-legacy", "-passout", &passout],
                true,
            ),
            (
                "3DES + SHA-1 MAC, empty password",
                vec![
                    "-certpbe",
                    "PBE-SHA1-3DES",
                    "-keypbe",
                    "PBE-SHA1-3DES",
                    "-macalg",
                    "sha1",
                    "-passout",
                    "pass:",
                ],
                false,
            ),
            (
                "3DES + SHA-1 MAC, password",
                vec![
                    "-certpbe",
                    "PBE-SHA1-3DES",
                    "-keypbe",
                    "PBE-SHA1-3DES",
                    "-macalg",
                    "sha1",
                    "-passout",
                    &passout,
                ],
                true,
            ),
        ];
        for (name, opts, with_password) in forms {
            let mut args = vec![
                "pkcs12",
                "-export",
                "-inkey",
                "{key}",
                "-in",
                "{cert}",
                "-certfile",
                path_str(&inter),
            ];
            args.extend(opts);
            args.extend(["-out", "{out}"]);
            let p12 = f.openssl_to("p12", &args);
            let password = if with_password {
                n += 1;
                password_source(n, &pw_file)
            } else {
                Password::None
            };
            let outcome = sign_string(
                &["--certificate", path_str(&p12)],
                password,
                "SHA256",
                "bin",
            )
            .and_then(|sig| f.verify("SHA256", &sig));
            cases.check(
                format!("{kind:?} PKCS#12 {name}, password by {password:?}"),
                outcome,
            );
        }
    }
    cases.finish(6 * 5);
}

/// A fullchain PEM as `--certificate` (leaf then intermediate, and the leaf last after the
/// intermediate and root): the leaf is the certificate that matches the key, the rest is
/// the chain. Checked through `sign-string` and through the library, which also shows the
/// chain that would be sent; `--intermediates` is checked through the library (no command
/// of this issue takes it).
#[test]
fn fullchain_and_intermediates_pick_the_leaf_and_build_the_chain() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let d = tmp.path();
    let inter = put(d, "inter.pem", &pki.inter_pem);
    let mut bundle = b"# the intermediate, then the root\n".to_vec();
    bundle.extend(&pki.inter_pem);
    bundle.extend(b"\ncomment between blocks\n");
    bundle.extend(&pki.root_pem);
    let bundle = put(d, "bundle.pem", &bundle);
    let inter_der = pem_body_der(&pki.inter_pem);
    let root_der = pem_body_der(&pki.root_pem);
    let now = time::OffsetDateTime::now_utc();
    let mut cases = Cases::new();
    for leaf in &pki.leaves {
        let f = Files::write(d, leaf);
        let kind = leaf.kind;
        let leaf_der = pem_body_der(&leaf.cert_pem);
        let mut leaf_first = leaf.cert_pem.clone();
        leaf_first.extend(&pki.inter_pem);
        let mut leaf_last = pki.inter_pem.clone();
        leaf_last.extend(&pki.root_pem);
        leaf_last.extend(&leaf.cert_pem);
        for (name, bytes, want_chain) in [
            ("leaf first", leaf_first, vec![inter_der.clone()]),
            (
                "leaf last",
                leaf_last,
                vec![inter_der.clone(), root_der.clone()],
            ),
        ] {
            let chain_file = put(d, &format!("{}.fullchain.pem", f.slug), &bytes);
            let outcome = sign_string(
                &[
                    "--certificate",
                    path_str(&chain_file),
                    "--private-key",
                    path_str(&f.key),
                ],
                Password::None,
                "SHA256",
                "bin",
            )
            .and_then(|sig| f.verify("SHA256", &sig));
            cases.check(
                format!("{kind:?} sign-string with a fullchain PEM, {name}"),
                outcome,
            );

            let spec = IdentitySpec {
                certificate: Some(chain_file.clone()),
                private_key: Some(f.key.clone()),
                ..IdentitySpec::default()
            };
            cases.check(
                format!("{kind:?} Identity::load of a fullchain PEM, {name}"),
                chain_is(&spec, now, &leaf_der, &want_chain),
            );
        }
        for (name, bundle, want_chain) in [
            ("the intermediate", &inter, vec![inter_der.clone()]),
            (
                "intermediate + root with comments",
                &bundle,
                vec![inter_der.clone(), root_der.clone()],
            ),
        ] {
            let spec = IdentitySpec {
                certificate: Some(f.cert.clone()),
                private_key: Some(f.key.clone()),
                intermediates: Some(bundle.clone()),
                ..IdentitySpec::default()
            };
            cases.check(
                format!("{kind:?} Identity::load with --intermediates of {name}"),
                chain_is(&spec, now, &leaf_der, &want_chain),
            );
        }
        // PKCS#12 with the root and the intermediate: the leaf is the key's certificate
        // (not the first bag), the others are the chain, issuer first, without the leaf.
        let p12 = f.openssl_to(
            "chain.p12",
            &[
                "pkcs12",
                "-export",
                "-inkey",
                "{key}",
                "-in",
                "{cert}",
                "-certfile",
                path_str(&bundle),
                "-passout",
                "pass:",
                "-out",
                "{out}",
            ],
        );
        let spec = IdentitySpec {
            certificate: Some(p12),
            ..IdentitySpec::default()
        };
        cases.check(
            format!("{kind:?} Identity::load of a PKCS#12 file with the chain"),
            chain_is(
                &spec,
                now,
                &leaf_der,
                &[inter_der.clone(), root_der.clone()],
            ),
        );
    }
    cases.finish(6 * 7);
}

fn chain_is(
    spec: &IdentitySpec,
    now: time::OffsetDateTime,
    leaf: &[u8],
    chain: &[Vec<u8>],
) -> Result<(), String> {
    let identity = Identity::load(spec, now).map_err(|e| format!("does not load: {e}"))?;
    if identity.leaf().der() != leaf {
        return Err(format!("picked the wrong leaf: {:?}", identity.leaf()));
    }
    let got: Vec<&[u8]> = identity.chain().iter().map(|c| c.der()).collect();
    if got != chain.iter().map(Vec::as_slice).collect::<Vec<_>>() {
        return Err(format!(
            "chain is {:?}, expected {} certificates (issuer first)",
            identity.chain(),
            chain.len()
        ));
    }
    Ok(())
}

/// The DER of a one-block PEM file, decoded here rather than by the crate.
fn pem_body_der(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body is base64")
}

/// `--digest SHA256|SHA384|SHA512` for every key type, in every output format: `bin` is the
/// raw signature, `text` its lowercase hex, `json` that hex in quotes, none with a trailing
/// newline; `json` is the default. RSA signatures are deterministic, so for RSA the three
/// formats must also carry the same signature. A tampered signature must not verify, which
/// shows that the openssl check can fail.
#[test]
fn sign_string_digests_and_output_formats() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cases = Cases::new();
    for leaf in &pki().leaves {
        let f = Files::write(tmp.path(), leaf);
        let kind = leaf.kind;
        let files = [
            "--certificate",
            path_str(&f.cert),
            "--private-key",
            path_str(&f.key),
        ];
        for digest in ["SHA256", "SHA384", "SHA512"] {
            let outcome = (|| {
                let bin = sign_string(&files, Password::None, digest, "bin")?;
                f.verify(digest, &bin)?;
                let mut tampered = bin.clone();
                let last = tampered.len() - 1;
                tampered[last / 2] ^= 0x01;
                if f.verify(digest, &tampered).is_ok() {
                    return Err("a tampered signature verifies: the check is broken".into());
                }
                let text = sign_string(&files, Password::None, digest, "text")?;
                let text =
                    String::from_utf8(text).map_err(|_| "text output is not UTF-8".to_owned())?;
                let from_text =
                    lower_hex(&text).map_err(|e| format!("text output {text:?}: {e}"))?;
                f.verify(digest, &from_text)
                    .map_err(|e| format!("text output: {e}"))?;
                let json = sign_string(&files, Password::None, digest, "json")?;
                let json =
                    String::from_utf8(json).map_err(|_| "json output is not UTF-8".to_owned())?;
                let inner = json
                    .strip_prefix('"')
                    .and_then(|j| j.strip_suffix('"'))
                    .ok_or_else(|| format!("json output {json:?} is not a quoted string"))?;
                let from_json =
                    lower_hex(inner).map_err(|e| format!("json output {json:?}: {e}"))?;
                f.verify(digest, &from_json)
                    .map_err(|e| format!("json output: {e}"))?;
                if serde_json::from_str::<String>(&json).ok().as_deref() != Some(inner) {
                    return Err(format!("json output {json:?} is not a JSON string"));
                }
                if kind.is_rsa() && (from_text != bin || from_json != bin) {
                    return Err("RSA text/json/bin outputs differ for the same message".into());
                }
                Ok(())
            })();
            cases.check(format!("{kind:?} --digest {digest}"), outcome);
        }
        // No --format and no --digest: JSON, SHA-256.
        let mut cmd = helper();
        cmd.arg("sign-string").args(files);
        let out = run(&mut cmd);
        let outcome = if !out.status.success() {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        } else {
            let json = String::from_utf8_lossy(&out.stdout);
            json.strip_prefix('"')
                .and_then(|j| j.strip_suffix('"'))
                .ok_or_else(|| format!("default output {json:?} is not JSON"))
                .and_then(|h| lower_hex(h).map_err(|e| format!("default output: {e}")))
                .and_then(|sig| f.verify("SHA256", &sig))
        };
        cases.check(format!("{kind:?} defaults (json, SHA256)"), outcome);
    }
    cases.finish(6 * 4);
}

/// Decodes strictly lowercase hex with no whitespace (no trailing newline).
fn lower_hex(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty()
        || !s.len().is_multiple_of(2)
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("not lowercase hex without whitespace".into());
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect())
}

/// `read-certificate-data` prints exactly the official helper's JSON, with openssl's DER and
/// serial, for PEM, DER and fullchain PEM certificates (whose first block is the one read).
#[test]
fn read_certificate_data_matches_openssl() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cases = Cases::new();
    for leaf in &pki().leaves {
        let f = Files::write(tmp.path(), leaf);
        let kind = leaf.kind;
        let der_path = f.openssl_to(
            "crt.der",
            &["x509", "-in", "{cert}", "-outform", "DER", "-out", "{out}"],
        );
        let der = read(&der_path);
        let serial = String::from_utf8(openssl(
            &f.dir,
            &["x509", "-in", path_str(&f.cert), "-noout", "-serial"],
        ))
        .expect("utf-8");
        let serial_hex = serial
            .trim()
            .strip_prefix("serial=")
            .expect("openssl prints serial=HEX");
        let t = kind.key_type();
        let want = format!(
            r#"{{"keyType":"{t}","certificateData":"{}","serialNumber":"{}","supportedAlgorithms":["{t}SHA256","{t}SHA384","{t}SHA512"]}}"#,
            base64::engine::general_purpose::STANDARD.encode(&der),
            hex_to_decimal(serial_hex),
        );
        let mut fullchain = leaf.cert_pem.clone();
        fullchain.extend(&pki().inter_pem);
        let fullchain = put(&f.dir, &format!("{}.fullchain.pem", f.slug), &fullchain);
        for (name, path) in [
            ("PEM", &f.cert),
            ("DER", &der_path),
            ("fullchain PEM", &fullchain),
        ] {
            let out = run(helper()
                .args(["read-certificate-data", "--certificate"])
                .arg(path));
            let outcome = if !out.status.success() || !out.stderr.is_empty() {
                Err(format!(
                    "failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ))
            } else if out.stdout != want.as_bytes() {
                Err(format!(
                    "printed\n    {}\n  expected\n    {want}",
                    String::from_utf8_lossy(&out.stdout)
                ))
            } else {
                Ok(())
            };
            cases.check(
                format!("{kind:?} read-certificate-data of a {name} certificate"),
                outcome,
            );
        }
    }
    cases.finish(6 * 3);
}

/// Base 16 to base 10 for any length, independent of the crate's own conversion.
fn hex_to_decimal(hex: &str) -> String {
    let mut digits: Vec<u32> = vec![0]; // base 10, least significant first
    for c in hex.chars() {
        let mut carry = c.to_digit(16).expect("hex digit");
        for d in &mut digits {
            let x = *d * 16 + carry;
            *d = x % 10;
            carry = x / 10;
        }
        while carry > 0 {
            digits.push(carry % 10);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().fold(String::new(), |mut s, d| {
        let _ = write!(s, "{d}");
        s
    })
}

#[test]
fn hex_to_decimal_converts() {
    assert_eq!(hex_to_decimal("00"), "0");
    assert_eq!(hex_to_decimal("FF"), "255");
    assert_eq!(hex_to_decimal("0100"), "256");
    assert_eq!(
        hex_to_decimal("FFFFFFFFFFFFFFFFFF"),
        "4722366482869645213695"
    );
}

/// The secret of a key as `openssl pkey -text` prints it (`priv:` for EC,
/// `privateExponent:` for RSA), as lowercase hex without a leading zero byte.
fn private_scalar_hex(dir: &Path, key: &Path) -> String {
    let text = String::from_utf8(openssl(
        dir,
        &["pkey", "-in", path_str(key), "-noout", "-text"],
    ))
    .expect("utf-8");
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.starts_with("priv:") || l.starts_with("privateExponent:")));
    lines.next().expect("openssl -text prints the private part");
    let hex: String = lines
        .take_while(|l| l.starts_with(' '))
        .flat_map(|l| l.chars().filter(char::is_ascii_hexdigit))
        .collect();
    hex.trim_start_matches("00").to_lowercase()
}

/// `Debug` of a loaded identity, its key, its spec and the password shows no key material
/// and no password, for an RSA and an EC key loaded from encrypted PKCS#8.
#[test]
fn debug_output_holds_no_secret() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cases = Cases::new();
    for leaf in pki()
        .leaves
        .iter()
        .filter(|l| matches!(l.kind, Kind::Rsa(2048) | Kind::Ec("P-256", _)))
    {
        let f = Files::write(tmp.path(), leaf);
        let kind = leaf.kind;
        let passout = format!("pass:{PASSWORD}");
        let enc = f.openssl_to(
            "enc.pem",
            &[
                "pkcs8",
                "-topk8",
                "-in",
                "{key}",
                "-passout",
                &passout,
                "-v2",
                "aes-256-cbc",
                "-out",
                "{out}",
            ],
        );
        let spec = IdentitySpec {
            certificate: Some(f.cert.clone()),
            private_key: Some(enc.clone()),
            password: Some(Secret::from(PASSWORD.to_owned())),
            ..IdentitySpec::default()
        };
        let identity = Identity::load(&spec, time::OffsetDateTime::now_utc())
            .unwrap_or_else(|e| panic!("{kind:?} does not load: {e}"));
        let scalar = private_scalar_hex(&f.dir, &f.key);
        // At least 24 bytes: a P-256 scalar is 32, less its leading zero bytes (one in 256
        // keys starts with one), and 24 bytes are still no accident in any output.
        assert!(
            scalar.len() >= 48,
            "{kind:?}: private part {scalar:?} too short to search for"
        );
        let key_body: Vec<String> = [read(&f.key), read(&enc)]
            .iter()
            .flat_map(|pem| {
                String::from_utf8_lossy(pem)
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let secret = Secret::from(PASSWORD.to_owned());
        for (what, debug) in [
            ("Identity", format!("{identity:?}")),
            ("Identity (pretty)", format!("{identity:#?}")),
            ("PrivateKey", format!("{:?}", identity.signer())),
            ("PrivateKey (pretty)", format!("{:#?}", identity.signer())),
            ("IdentitySpec", format!("{spec:?}")),
            ("Secret", format!("{secret:?}")),
        ] {
            let mut leaks = Vec::new();
            if debug.contains(PASSWORD) {
                leaks.push("the password".to_owned());
            }
            let lower = debug.to_lowercase().replace([':', ' ', '\n'], "");
            if lower.contains(&scalar[..32]) {
                leaks.push("the private scalar/exponent in hex".to_owned());
            }
            if let Some(line) = key_body
                .iter()
                .find(|l| l.len() >= 16 && debug.contains(l.as_str()))
            {
                leaks.push(format!("a PEM body line of the key ({line})"));
            }
            let outcome = if leaks.is_empty() && debug.contains("redacted") {
                Ok(())
            } else if leaks.is_empty() {
                Err(format!("does not say it is redacted: {debug}"))
            } else {
                Err(format!("Debug shows {}: {debug}", leaks.join(", ")))
            };
            cases.check(format!("{kind:?} {what}"), outcome);
        }
    }
    cases.finish(2 * 6);
}
