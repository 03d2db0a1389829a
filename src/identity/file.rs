//! Certificates and private keys from files, in every format users bring: PEM or DER
//! certificates and bundles; PKCS#8 (plain and encrypted), PKCS#1 RSA and SEC1 EC keys;
//! combined key+certificate PEM; and PKCS#12.
//!
//! Each reader names the file and the fix in its errors, because a wrong path or format is
//! the most common first-run failure.

use std::io;
use std::path::Path;

use pkcs8::der::Decode as _;
use pkcs8::{DecodePrivateKey as _, PrivateKeyInfoRef};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use zeroize::Zeroizing;

use super::IdentityError;
use super::certificate::{Certificate, oid};
use super::key::{MIN_RSA_BITS, PrivateKey};
use super::pem;
use crate::secret::Secret;

/// What a file is for, named in every error about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Certificate,
    PrivateKey,
    Intermediates,
    PasswordFile,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::PrivateKey => "private key",
            Self::Intermediates => "intermediates bundle",
            Self::PasswordFile => "password file",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Self::Certificate => "--certificate",
            Self::PrivateKey => "--private-key",
            Self::Intermediates => "--intermediates",
            Self::PasswordFile => "--pkcs8-password-file",
        }
    }
}

/// What to do about a file holding a private key (or its password) that group or others
/// can read: such a key is as good as shared with every local account that can read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readable {
    /// Refuse it, saying how to fix the mode (the default).
    #[default]
    Refuse,
    /// Use it, with a warning (`--allow-readable-key-files`).
    Warn,
}

/// Checks that the secret-bearing file at `path` is readable by its owner only.
pub fn guard_secret(role: Role, path: &Path, policy: Readable) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        // The read that follows reports a missing or unreadable file in its own words.
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o044 == 0 {
        return Ok(());
    }
    match policy {
        Readable::Warn => {
            tracing::warn!(file = %path.display(), mode = %format!("{mode:04o}"), "this {} can be read by group or others", role.noun());
            Ok(())
        }
        Readable::Refuse => Err(file_error(
            role,
            path,
            format!("holds a secret but can be read by group or others (mode {mode:04o})"),
            format!(
                "make it private with: chmod 600 {} (or pass --allow-readable-key-files to use it anyway)",
                path.display()
            ),
        )),
    }
}

/// An error about one input file.
pub(crate) fn file_error(
    role: Role,
    path: &Path,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> IdentityError {
    IdentityError::new(format!("{} {}", role.noun(), path.display()), problem, fix)
}

/// Reads a whole input file, with the common mistakes (missing, a directory, empty)
/// reported in words. The bytes are zeroized on drop since key files hold secrets.
pub fn read(role: Role, path: &Path) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let fix = format!("check the {} path", role.flag());
    let meta = std::fs::metadata(path).map_err(|e| file_error(role, path, io_problem(&e), &fix))?;
    if meta.is_dir() {
        return Err(file_error(
            role,
            path,
            "is a directory, not a file",
            format!("give the {} file itself", role.noun()),
        ));
    }
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| file_error(role, path, io_problem(&e), &fix))?,
    );
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(file_error(
            role,
            path,
            "is empty",
            format!(
                "write the {} into it, or point {} at the right file",
                role.noun(),
                role.flag()
            ),
        ));
    }
    Ok(bytes)
}

fn io_problem(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "does not exist".into(),
        io::ErrorKind::PermissionDenied => "cannot be read (permission denied)".into(),
        _ => format!("cannot be read ({e})"),
    }
}

/// Every certificate of a PEM file (other blocks skipped) or the one certificate of a DER
/// file. `Ok(None)` means the file holds no certificate at all (it may be PKCS#12).
pub fn certificates(
    role: Role,
    path: &Path,
    bytes: &[u8],
) -> Result<Option<Vec<Certificate>>, IdentityError> {
    if pem::is_pem(bytes) {
        let blocks = pem::blocks(bytes).map_err(|e| {
            file_error(role, path, e.to_string(), "replace it with a complete copy")
        })?;
        let mut certs = Vec::new();
        for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
            certs.push(parse_certificate(role, path, &block.der)?);
        }
        return Ok(if certs.is_empty() { None } else { Some(certs) });
    }
    match Certificate::from_der(bytes) {
        Ok(cert) => Ok(Some(vec![cert])),
        Err(_) => Ok(None),
    }
}

fn parse_certificate(role: Role, path: &Path, der: &[u8]) -> Result<Certificate, IdentityError> {
    Certificate::from_der(der).map_err(|e| {
        file_error(
            role,
            path,
            format!("holds a certificate that cannot be used: {e}"),
            "give an X.509 certificate with an RSA or EC P-256/P-384/P-521 key",
        )
    })
}

/// An intermediates bundle: every PEM block must be a certificate (text between blocks
/// is fine), or the file is a single DER certificate.
pub fn bundle(path: &Path) -> Result<Vec<Certificate>, IdentityError> {
    let bytes = read(Role::Intermediates, path)?;
    parse_bundle(path, &bytes)
}

/// [`bundle`] for bytes already read from `path`.
pub(crate) fn parse_bundle(path: &Path, bytes: &[u8]) -> Result<Vec<Certificate>, IdentityError> {
    let role = Role::Intermediates;
    if !pem::is_pem(bytes) {
        return Certificate::from_der(bytes).map(|c| vec![c]).map_err(|_| {
            file_error(
                role,
                path,
                "is neither PEM nor a DER certificate",
                "give a PEM file of CERTIFICATE blocks",
            )
        });
    }
    let blocks = pem::blocks(bytes)
        .map_err(|e| file_error(role, path, e.to_string(), "replace it with a complete copy"))?;
    if let Some(other) = blocks.iter().find(|b| b.label != "CERTIFICATE") {
        return Err(file_error(
            role,
            path,
            format!(
                "holds a \"{}\" block; every block must be a CERTIFICATE",
                other.label
            ),
            "remove keys and other blocks from the bundle",
        ));
    }
    blocks
        .iter()
        .map(|b| parse_certificate(role, path, &b.der))
        .collect()
}

/// True when `bytes` are PEM with a private key block (of any kind, encrypted or not),
/// as a combined key+certificate file has.
pub fn holds_private_key(bytes: &[u8]) -> bool {
    pem::is_pem(bytes)
        && pem::blocks(bytes)
            .is_ok_and(|blocks| blocks.iter().any(|b| b.label.ends_with("PRIVATE KEY")))
}

/// The private key in a file: the first key block of a PEM file (certificates and
/// `EC PARAMETERS` blocks are skipped), or a DER key in any of the supported encodings.
pub fn private_key(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<PrivateKey, IdentityError> {
    let role = Role::PrivateKey;
    let err = |problem: String, fix: &str| file_error(role, path, problem, fix);
    if !pem::is_pem(bytes) {
        return der_key(bytes, password).map_err(|e| e.into_error(role, path));
    }
    let blocks =
        pem::blocks(bytes).map_err(|e| err(e.to_string(), "replace it with a complete copy"))?;
    let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
        let found: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
        let found = if found.is_empty() {
            "no PEM blocks".to_owned()
        } else {
            found.join(", ")
        };
        return Err(err(
            format!("holds no private key (found {found})"),
            "give the file that holds the PRIVATE KEY block",
        ));
    };
    if block.legacy_encrypted {
        return Err(err(
            "is encrypted with OpenSSL's legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which is not supported".into(),
            "convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW",
        ));
    }
    let parsed = match block.label.as_str() {
        "PRIVATE KEY" => refuse_password(password).and_then(|()| pkcs8_key(&block.der)),
        "ENCRYPTED PRIVATE KEY" => encrypted_pkcs8_key(&block.der, password),
        "RSA PRIVATE KEY" => refuse_password(password).and_then(|()| pkcs1_key(&block.der)),
        "EC PRIVATE KEY" => refuse_password(password).and_then(|()| sec1_key(&block.der)),
        other => Err(KeyProblem::Unsupported(format!("a \"{other}\" block"))),
    };
    parsed.map_err(|e| e.into_error(role, path))
}

/// A private key from PKCS#12 (PFX): the key, and every certificate in the file.
pub fn pkcs12(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<(PrivateKey, Vec<Certificate>), IdentityError> {
    let role = Role::Certificate;
    let given = password.map(Secret::expose).unwrap_or("");
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(bytes, given).map_err(|e| match e {
        p12_keystore::error::Error::MacError(_) if password.is_none() => file_error(
            role,
            path,
            "is a PKCS#12 file protected by a password",
            "give it with --pkcs8-password-file, $ROLESANYWHERE_PKCS8_PASSWORD or --pkcs8-password",
        ),
        p12_keystore::error::Error::MacError(_) => file_error(
            role,
            path,
            "is a PKCS#12 file and the password is wrong",
            "check the password",
        ),
        p12_keystore::error::Error::DerError(_) => file_error(
            role,
            path,
            "holds neither a PEM or DER certificate nor a PKCS#12 file",
            "give a PEM or DER certificate, or a .p12/.pfx file",
        ),
        other => file_error(
            role,
            path,
            format!("is a PKCS#12 file that cannot be read ({other})"),
            "re-export it with AES-256 and PBKDF2 (openssl pkcs12 -export defaults)",
        ),
    })?;
    let key = match archive.keys.as_slice() {
        [] => {
            return Err(file_error(
                role,
                path,
                "is a PKCS#12 file with no private key",
                "export the key together with the certificate",
            ));
        }
        [one] => pkcs8_key(one.key.as_der()).map_err(|e| e.into_error(role, path))?,
        _ => {
            return Err(file_error(
                role,
                path,
                "is a PKCS#12 file with more than one private key",
                "export a file with only the key for this host",
            ));
        }
    };
    let certs = archive
        .certs
        .iter()
        .map(|bag| parse_certificate(role, path, bag.cert.as_der()))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(file_error(
            role,
            path,
            "is a PKCS#12 file with no certificate",
            "export the certificate together with the key",
        ));
    }
    Ok((key, certs))
}

/// What went wrong with key bytes, before the file name is attached.
#[derive(Debug)]
enum KeyProblem {
    Unsupported(String),
    Malformed(String),
    WeakRsa(usize),
    Curve(String),
    /// An EC key whose curve is spelled out as parameters instead of named by OID.
    ExplicitCurve,
    PasswordNeeded,
    PasswordNotNeeded,
    WrongPassword,
    Encryption(String),
}

impl KeyProblem {
    fn into_error(self, role: Role, path: &Path) -> IdentityError {
        let (problem, fix): (String, String) = match self {
            Self::Unsupported(what) => (format!("holds {what}, which is not a supported key"), "use an RSA (2048 bits or more) or EC P-256/P-384/P-521 key".into()),
            Self::Malformed(why) => (format!("is not a readable private key ({why})"), "give a PEM or DER key in PKCS#8, PKCS#1 or SEC1 form".into()),
            Self::WeakRsa(bits) => (format!("holds an RSA key of {bits} bits, which is too short"), format!("use an RSA key of at least {MIN_RSA_BITS} bits, or EC P-256")),
            Self::Curve(name) => (format!("holds an EC key on curve {name}, which is not supported"), "use an EC key on P-256, P-384 or P-521".into()),
            Self::ExplicitCurve => ("holds an EC key with explicit curve parameters instead of a named curve, which is not supported".into(), "convert it with: openssl ec -in OLD -param_enc named_curve -out NEW".into()),
            Self::PasswordNeeded => ("holds an encrypted key and no password was given".into(), "give it with --pkcs8-password-file, $ROLESANYWHERE_PKCS8_PASSWORD or --pkcs8-password".into()),
            Self::PasswordNotNeeded => ("is not encrypted, but a password was given".into(), "remove --pkcs8-password, --pkcs8-password-file and $ROLESANYWHERE_PKCS8_PASSWORD".into()),
            Self::WrongPassword => ("could not be decrypted: the password is wrong".into(), "check the password".into()),
            Self::Encryption(what) => (format!("is encrypted with {what}, which is not supported"), "re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc".into()),
        };
        file_error(role, path, problem, fix)
    }
}

fn refuse_password(password: Option<&Secret>) -> Result<(), KeyProblem> {
    match password {
        Some(_) => Err(KeyProblem::PasswordNotNeeded),
        None => Ok(()),
    }
}

/// A DER key file: plain PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1, told apart by trying
/// each structure (they differ from their first elements on, so at most one parses).
fn der_key(der: &[u8], password: Option<&Secret>) -> Result<PrivateKey, KeyProblem> {
    if PrivateKeyInfoRef::from_der(der).is_ok() {
        refuse_password(password)?;
        return pkcs8_key(der);
    }
    if pkcs8::EncryptedPrivateKeyInfoRef::from_der(der).is_ok() {
        return encrypted_pkcs8_key(der, password);
    }
    if rsa::RsaPrivateKey::from_pkcs1_der(der).is_ok() {
        refuse_password(password)?;
        return pkcs1_key(der);
    }
    if sec1::EcPrivateKey::from_der(der).is_ok() {
        refuse_password(password)?;
        return sec1_key(der);
    }
    Err(KeyProblem::Malformed(
        "neither PEM nor a DER PKCS#8, PKCS#1 or SEC1 key".into(),
    ))
}

fn encrypted_pkcs8_key(der: &[u8], password: Option<&Secret>) -> Result<PrivateKey, KeyProblem> {
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

fn pkcs8_key(der: &[u8]) -> Result<PrivateKey, KeyProblem> {
    let info =
        PrivateKeyInfoRef::from_der(der).map_err(|e| KeyProblem::Malformed(e.to_string()))?;
    let algorithm = info.algorithm.oid.to_string();
    match algorithm.as_str() {
        oid::RSA_ENCRYPTION => {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| KeyProblem::Malformed(e.to_string()))?;
            checked_rsa(key)
        }
        oid::EC_PUBLIC_KEY => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map(|o| o.to_string())
                .map_err(|_| KeyProblem::ExplicitCurve)?;
            let bad = |e: pkcs8::Error| KeyProblem::Malformed(e.to_string());
            match curve.as_str() {
                oid::P256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::P256)
                    .map_err(bad),
                oid::P384 => p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::P384)
                    .map_err(bad),
                oid::P521 => p521::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(PrivateKey::P521)
                    .map_err(bad),
                other => Err(KeyProblem::Curve(oid::curve_name(other).to_owned())),
            }
        }
        other => Err(KeyProblem::Unsupported(format!(
            "an {} key",
            oid::algorithm_name(other)
        ))),
    }
}

fn pkcs1_key(der: &[u8]) -> Result<PrivateKey, KeyProblem> {
    let key = rsa::RsaPrivateKey::from_pkcs1_der(der)
        .map_err(|e| KeyProblem::Malformed(e.to_string()))?;
    checked_rsa(key)
}

fn checked_rsa(key: rsa::RsaPrivateKey) -> Result<PrivateKey, KeyProblem> {
    let bits = key.n().bits() as usize;
    if bits < MIN_RSA_BITS {
        return Err(KeyProblem::WeakRsa(bits));
    }
    Ok(PrivateKey::Rsa(Box::new(key)))
}

fn sec1_key(der: &[u8]) -> Result<PrivateKey, KeyProblem> {
    let parsed = sec1::EcPrivateKey::from_der(der).map_err(|e| {
        if sec1_has_explicit_parameters(der) {
            KeyProblem::ExplicitCurve
        } else {
            KeyProblem::Malformed(e.to_string())
        }
    })?;
    let curve = parsed
        .parameters
        .and_then(|p| p.named_curve())
        .map(|o| o.to_string())
        .ok_or(KeyProblem::ExplicitCurve)?;
    let bad = |e: p256::elliptic_curve::DecodeError| KeyProblem::Malformed(e.to_string());
    match curve.as_str() {
        oid::P256 => p256::SecretKey::from_sec1_der(der)
            .map(|k| PrivateKey::P256(k.into()))
            .map_err(bad),
        oid::P384 => p384::SecretKey::from_sec1_der(der)
            .map(|k| PrivateKey::P384(k.into()))
            .map_err(bad),
        oid::P521 => p521::SecretKey::from_sec1_der(der)
            .map(|k| PrivateKey::P521(k.into()))
            .map_err(bad),
        other => Err(KeyProblem::Curve(oid::curve_name(other).to_owned())),
    }
}

/// True when a SEC1 key that the `sec1` crate refused carries explicit curve parameters
/// (`[0]` holding a SEQUENCE rather than a named-curve OID), as
/// `openssl ec -param_enc explicit` writes; the crate only parses named curves.
fn sec1_has_explicit_parameters(der: &[u8]) -> bool {
    use x509_parser::der_parser::ber::BerObjectContent;
    let Ok((_, outer)) = x509_parser::der_parser::parse_der(der) else {
        return false;
    };
    let Ok(fields) = outer.as_sequence() else {
        return false;
    };
    fields.get(2).is_some_and(|f| {
        matches!(&f.content, BerObjectContent::Unknown(any)
            if any.tag().0 == 0 && any.data.first() == Some(&0x30))
    })
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
