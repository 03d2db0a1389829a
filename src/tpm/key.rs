//! A TPM key ready to sign: where it is (a key file loaded under its parent at each
//! signature, or a persistent handle), its public key, and the password that authorises
//! it.
//!
//! The key is loaded for each signature and flushed after it, as the official helper does.
//! A signature is needed once per CreateSession (an hour or more apart in a daemon), and
//! a key kept loaded would hold one of the TPM's few object slots (three on many TPMs)
//! for that whole time, on a raw device or swtpm socket with no resource manager to
//! share them, and would be lost by a TPM reset or a suspend anyway.

use std::path::{Path, PathBuf};

use super::commands::{self, Signature};
use super::device::Device;
use super::device_path::DevicePath;
use super::error::TpmError;
use super::key_file::{self, KeyFile};
use super::public::{self, TpmPublic};
use super::rc::{self, Class};
use super::refused;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::secret::Secret;
use crate::x509::{Digest, PublicKey, SignatureError};

/// The TPM settings of an identity.
#[derive(Clone, Debug, Default)]
pub struct TpmOptions {
    /// `--private-key handle:0x81000101`: a persistent key.
    pub handle: Option<u32>,
    /// The key's password and where it came from.
    pub password: Option<TpmPassword>,
    /// `--no-tpm-key-password`: the key has none.
    pub no_password: bool,
    /// `$TPM_DEVICE`, when set.
    pub device: Option<PathBuf>,
    /// The flag or config-file key that gave a TPM setting, if one did: such a setting
    /// beside a key that is not in a TPM is refused, since it would change nothing.
    pub explicit: Option<String>,
}

/// A TPM key password and its origin, for messages (never the password itself).
#[derive(Clone, Debug)]
pub struct TpmPassword {
    pub secret: Secret,
    pub origin: String,
}

/// Where the key is.
#[derive(Clone, Debug)]
enum Source {
    File { path: PathBuf, key: KeyFile },
    Persistent(u32),
}

/// A TPM key, checked and ready to sign.
pub struct TpmKey {
    device: DevicePath,
    source: Source,
    public: TpmPublic,
    /// The authorisation value sent (empty for a key without a password), and where it
    /// came from.
    password: Secret,
    password_origin: String,
    /// What identifies the key for [`refused`]: its public area.
    identity: Vec<u8>,
}

impl std::fmt::Debug for TpmKey {
    /// The key and the device, without the key's blobs or its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TpmKey({}, {}, device {})",
            self.public.key.describe(),
            self.describe(),
            self.device.describe()
        )
    }
}

/// Hierarchies a key file's parent may name: owner, null, endorsement, platform.
const HIERARCHIES: [u32; 4] = [0x4000_0001, 0x4000_0007, 0x4000_000B, 0x4000_000C];

fn is_persistent(handle: u32) -> bool {
    handle >> 24 == 0x81
}

impl TpmKey {
    /// The key of a `TSS2 PRIVATE KEY` file (`der` is its block). The TPM is not used
    /// yet beyond checking that the device opens, so that a missing device is reported
    /// before any request.
    pub fn from_file(path: &Path, der: &[u8], options: &TpmOptions) -> Result<Self, IdentityError> {
        let input = format!("TPM key {}", path.display());
        let key = key_file::parse(der).map_err(|e| {
            let kind = match e {
                key_file::KeyFileError::Malformed(_) => ErrorKind::Malformed,
                _ => ErrorKind::Unsupported,
            };
            IdentityError::new(
                kind,
                &input,
                e.to_string(),
                "give a key made with tpm2-openssl (openssl genpkey -provider tpm2) or tpm2tss-genkey, without a policy",
            )
        })?;
        if !HIERARCHIES.contains(&key.parent) && !is_persistent(key.parent) {
            return Err(IdentityError::new(
                ErrorKind::Unsupported,
                &input,
                format!(
                    "has the parent 0x{:08x}, neither a hierarchy nor a persistent key",
                    key.parent
                ),
                "make the key under the owner hierarchy or a persistent parent (0x81...)",
            ));
        }
        let public = public_area(&key.public).map_err(|problem| {
            IdentityError::new(
                ErrorKind::Unsupported,
                &input,
                problem,
                "give an RSA or EC (P-256, P-384) signing key",
            )
        })?;
        let (password, password_origin) = file_password(&input, key.empty_auth, options)?;
        let device = device_path(&input, options)?;
        let this = Self {
            device,
            identity: key.public.clone(),
            source: Source::File {
                path: path.to_owned(),
                key,
            },
            public,
            password,
            password_origin,
        };
        this.check_attributes(&input)?;
        Device::open(&this.device).map_err(|e| tpm_error(&input, &e))?;
        Ok(this)
    }

    /// The persistent key at `handle`: its public key read from the TPM.
    pub fn persistent(handle: u32, options: &TpmOptions) -> Result<Self, IdentityError> {
        let input = format!("TPM key handle:0x{handle:08x}");
        if !is_persistent(handle) {
            return Err(IdentityError::new(
                ErrorKind::Usage,
                &input,
                "is not a persistent handle",
                "give the handle of a persistent key (0x81000000 to 0x81ffffff), as tpm2_evictcontrol made it",
            ));
        }
        let (password, password_origin) = match (&options.password, options.no_password) {
            (Some(given), _) => (given.secret.clone(), given.origin.clone()),
            (None, true) => (Secret::from(String::new()), String::new()),
            (None, false) => return Err(password_needed(&input, "may have a password")),
        };
        let device = device_path(&input, options)?;
        let mut tpm = Device::open(&device).map_err(|e| tpm_error(&input, &e))?;
        let public = commands::read_public(&mut tpm, handle).map_err(|e| match e {
            TpmError::Code { code, .. } if matches!(code & 0xBF, 0x8B | 0x84) => {
                IdentityError::new(
                    ErrorKind::ObjectAbsent,
                    &input,
                    format!(
                        "does not exist in the TPM at {} ({})",
                        tpm.describe(),
                        rc::describe(code)
                    ),
                    "make it persistent with tpm2_evictcontrol, or give the right handle",
                )
            }
            other => tpm_error(&input, &other),
        })?;
        let mut identity = handle.to_be_bytes().to_vec();
        identity.extend_from_slice(&public.key.fingerprint_bytes());
        let this = Self {
            device,
            source: Source::Persistent(handle),
            public,
            password,
            password_origin,
            identity,
        };
        this.check_attributes(&input)?;
        Ok(this)
    }

    /// Refuses keys a password session cannot make sign with.
    fn check_attributes(&self, input: &str) -> Result<(), IdentityError> {
        let a = self.public.attributes;
        let refuse = |problem: &str| {
            Err(IdentityError::new(
                ErrorKind::Unsupported,
                input,
                problem,
                "give a TPM signing key usable with a password (tpm2-openssl makes such keys)",
            ))
        };
        if a & public::ATTR_SIGN == 0 {
            return refuse("cannot sign (it is a decryption or storage key)");
        }
        if a & public::ATTR_RESTRICTED != 0 {
            return refuse("is a restricted signing key, which signs only digests the TPM made");
        }
        if let PublicKey::Rsa(key) = &self.public.key {
            use rsa::traits::PublicKeyParts as _;
            if usize::try_from(key.n().bits()).unwrap_or(0) < crate::x509::key::MIN_RSA_BITS {
                return Err(IdentityError::new(
                    ErrorKind::Unsupported,
                    input,
                    format!(
                        "is an {} key, below the {} bits IAM Roles Anywhere takes",
                        self.public.key.describe(),
                        crate::x509::key::MIN_RSA_BITS
                    ),
                    "make an RSA key of 2048 bits or more",
                ));
            }
        }
        if a & public::ATTR_USER_WITH_AUTH == 0 {
            return refuse(
                "is authorised by a policy only (userWithAuth is clear), which this helper does not support",
            );
        }
        Ok(())
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public.key
    }

    /// `TPM key /path` or `TPM key handle:0x81000101`, for messages.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File { path, .. } => format!("TPM key {}", path.display()),
            Source::Persistent(handle) => format!("TPM key handle:0x{handle:08x}"),
        }
    }

    /// Signs `message` hashed on the host with `digest`: RSASSA-PKCS1-v1_5 for RSA,
    /// ECDSA with the digest fitted to the curve for EC, DER-encoded, as a file key would.
    pub fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, SignatureError> {
        // A device that failed or stayed busy may sign later: a daemon retries that, and
        // only that (a refused password is permanent, see `ErrorKind::Password`).
        self.sign_checked(message, digest).map_err(|e| {
            if e.is_transient() {
                SignatureError::Unavailable(e.to_string())
            } else {
                SignatureError::Sign(e.to_string())
            }
        })
    }

    fn sign_checked(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, IdentityError> {
        let input = self.describe();
        let password = self.password.expose();
        if refused::contains(&self.identity, password) {
            return Err(IdentityError::new(
                ErrorKind::Password,
                &input,
                format!(
                    "had its password{} refused by the TPM before; it is not sent again, since each wrong attempt counts towards the TPM's lockout",
                    self.password_source()
                ),
                "correct the password and restart",
            ));
        }
        let hashed = digest.hash(message);
        let (scheme, hash, to_sign) = match &self.public.key {
            PublicKey::Rsa(_) => (public::ALG_RSASSA, hash_alg(digest), hashed),
            PublicKey::P256(_) => (public::ALG_ECDSA, public::ALG_SHA256, fit(&hashed, 32)),
            PublicKey::P384(_) => (public::ALG_ECDSA, public::ALG_SHA384, fit(&hashed, 48)),
            PublicKey::P521(_) => (public::ALG_ECDSA, public::ALG_SHA512, fit(&hashed, 64)),
            PublicKey::MlDsa(..) => {
                return Err(IdentityError::new(
                    ErrorKind::Unsupported,
                    &input,
                    "is an ML-DSA key, which TPM 2.0 does not have",
                    "give an RSA or EC key",
                ));
            }
        };
        tracing::debug!(key = %input, device = %self.device.describe(), public = %self.public.key.describe(), "signing in the TPM");
        let mut tpm = Device::open(&self.device).map_err(|e| tpm_error(&input, &e))?;
        let mut loaded = Vec::new();
        let signed = self.load_and_sign(&mut tpm, &mut loaded, &to_sign, scheme, hash);
        for handle in loaded.into_iter().rev() {
            commands::flush(&mut tpm, handle);
        }
        let signature = match signed {
            Ok(signature) => signature,
            Err(TpmError::Code { code, .. }) if rc::class(code) == Class::WrongPassword => {
                refused::insert(&self.identity, password);
                return Err(IdentityError::new(
                    ErrorKind::Password,
                    &input,
                    format!(
                        "was refused its password{} by the TPM ({}); it is not sent again, since each wrong attempt counts towards the TPM's lockout",
                        self.password_source(),
                        rc::describe(code)
                    ),
                    "correct the password",
                ));
            }
            Err(TpmError::Code { code, .. }) if rc::class(code) == Class::Lockout => {
                return Err(IdentityError::new(
                    ErrorKind::Password,
                    &input,
                    format!(
                        "cannot be used: the TPM is in dictionary-attack lockout after wrong passwords ({})",
                        rc::describe(code)
                    ),
                    "wait for the lockout to expire, or reset it with tpm2_dictionarylockout -c (needs the lockout password)",
                ));
            }
            Err(other) => return Err(tpm_error(&input, &other)),
        };
        let der = self.encode(signature).map_err(|problem| {
            IdentityError::new(ErrorKind::Device, &input, problem, "check the TPM")
        })?;
        // A signature made with the wrong digest label or the wrong key would be refused
        // by the service as an opaque "invalid signature": check it here instead.
        self.public.key.verify(message, digest, &der).map_err(|_| {
            IdentityError::new(
                ErrorKind::Device,
                &input,
                "made a signature that does not verify with its public key",
                "check the key and the TPM",
            )
        })?;
        Ok(der)
    }

    /// Loads the key if it is a file (under its parent, made first for a hierarchy), and
    /// signs. Every transient handle made is pushed to `loaded`, to be flushed.
    fn load_and_sign(
        &self,
        tpm: &mut Device,
        loaded: &mut Vec<u32>,
        digest: &[u8],
        scheme: u16,
        hash: u16,
    ) -> Result<Signature, TpmError> {
        let handle = match &self.source {
            Source::Persistent(handle) => *handle,
            Source::File { key, .. } => {
                let parent = if is_persistent(key.parent) {
                    key.parent
                } else {
                    let primary = commands::create_primary(tpm, key.parent)?;
                    tracing::debug!(
                        hierarchy = format!("0x{:08x}", key.parent),
                        "made the storage primary key"
                    );
                    loaded.push(primary);
                    primary
                };
                let handle = commands::load(tpm, parent, &key.private, &key.public)?;
                loaded.push(handle);
                handle
            }
        };
        commands::sign(tpm, handle, self.password.clone(), digest, scheme, hash)
    }

    /// The signature as the service takes it: the RSA bytes, or DER ECDSA.
    fn encode(&self, signature: Signature) -> Result<Vec<u8>, String> {
        let bad = |_| "returned a malformed ECDSA signature".to_owned();
        match (&self.public.key, signature) {
            (PublicKey::Rsa(_), Signature::Rsa(bytes)) => Ok(bytes),
            (PublicKey::P256(_), Signature::Ecdsa { r, s }) => {
                let rs = scalars(&r, &s, 32)?;
                Ok(p256::ecdsa::Signature::from_slice(&rs)
                    .map_err(bad)?
                    .to_der()
                    .as_bytes()
                    .to_vec())
            }
            (PublicKey::P384(_), Signature::Ecdsa { r, s }) => {
                let rs = scalars(&r, &s, 48)?;
                Ok(p384::ecdsa::Signature::from_slice(&rs)
                    .map_err(bad)?
                    .to_der()
                    .as_bytes()
                    .to_vec())
            }
            (PublicKey::P521(_), Signature::Ecdsa { r, s }) => {
                let rs = scalars(&r, &s, 66)?;
                Ok(p521::ecdsa::Signature::from_slice(&rs)
                    .map_err(bad)?
                    .to_der()
                    .as_bytes()
                    .to_vec())
            }
            _ => Err("returned a signature of another algorithm than its key's".into()),
        }
    }

    /// ` from --tpm-key-password-file /x`, or nothing for the empty password.
    fn password_source(&self) -> String {
        if self.password_origin.is_empty() {
            " (empty)".to_owned()
        } else {
            format!(" from {}", self.password_origin)
        }
    }
}

/// `r || s`, each left-padded to `size` bytes.
fn scalars(r: &[u8], s: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(2 * size);
    for v in [r, s] {
        let v = strip_zeros(v);
        if v.len() > size {
            return Err("returned an ECDSA scalar longer than its curve".into());
        }
        out.extend(std::iter::repeat_n(0, size - v.len()));
        out.extend_from_slice(v);
    }
    Ok(out)
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    &v[start..]
}

/// The digest fitted to `size` bytes, the curve's: left-padded with zeros when shorter
/// (a SHA-256 digest for P-384), its leftmost bytes when longer, which is what ECDSA
/// uses of a digest longer than the curve anyway. TPMs refuse a digest whose size is not
/// that of the hash it is labelled with, and the label follows the curve, as the
/// official helper chooses it.
fn fit(digest: &[u8], size: usize) -> Vec<u8> {
    if digest.len() >= size {
        return digest[..size].to_vec();
    }
    let mut out = vec![0; size - digest.len()];
    out.extend_from_slice(digest);
    out
}

fn hash_alg(digest: Digest) -> u16 {
    match digest {
        Digest::Sha256 => public::ALG_SHA256,
        Digest::Sha384 => public::ALG_SHA384,
        Digest::Sha512 => public::ALG_SHA512,
    }
}

/// The public area of a key file's `TPM2B_PUBLIC`, or what is wrong with it.
fn public_area(blob: &[u8]) -> Result<TpmPublic, String> {
    public::parse(blob.get(2..).unwrap_or_default()).map_err(|e| match e {
        public::PublicError::Malformed(m) => format!("has a public area that cannot be read: {m}"),
        public::PublicError::Unsupported(what) => what,
    })
}

/// The authorisation value of a key file's key, by the official helper's rules.
fn file_password(
    input: &str,
    empty_auth: bool,
    options: &TpmOptions,
) -> Result<(Secret, String), IdentityError> {
    match (&options.password, empty_auth, options.no_password) {
        (Some(given), true, _) => Err(IdentityError::new(
            ErrorKind::Password,
            input,
            format!(
                "has no password (emptyAuth), and one was given from {}",
                given.origin
            ),
            "drop the TPM key password",
        )),
        (Some(given), false, _) => Ok((given.secret.clone(), given.origin.clone())),
        (None, true, _) | (None, false, true) => Ok((Secret::from(String::new()), String::new())),
        (None, false, false) => Err(password_needed(
            input,
            "has a password (emptyAuth is not set)",
        )),
    }
}

fn password_needed(input: &str, problem: &str) -> IdentityError {
    IdentityError::new(
        ErrorKind::Password,
        input,
        format!("{problem} and none was given"),
        "give it with --tpm-key-password-file FILE, $ROLESANYWHERE_TPM_KEY_PASSWORD or the systemd credential tpm-key-password, or say it has none with --no-tpm-key-password",
    )
}

fn device_path(input: &str, options: &TpmOptions) -> Result<DevicePath, IdentityError> {
    DevicePath::resolve(options.device.clone(), Path::exists)
        .ok_or_else(|| tpm_error(input, &TpmError::NoDevice))
}

/// A TPM failure about the key `input`, as one line.
fn tpm_error(input: &str, error: &TpmError) -> IdentityError {
    IdentityError::new(
        error.kind(),
        input,
        format!("cannot be used: {error}"),
        error.fix(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_fitted_to_the_curve() {
        let d = [0xAB; 32];
        let p384 = fit(&d, 48);
        assert_eq!(p384.len(), 48);
        assert!(p384[..16].iter().all(|&b| b == 0));
        assert_eq!(&p384[16..], &d);
        assert_eq!(fit(&[0xCD; 64], 48), vec![0xCD; 48]);
        assert_eq!(fit(&d, 32), d.to_vec());
    }

    #[test]
    fn the_password_rules_of_key_files() {
        let given = TpmOptions {
            password: Some(TpmPassword {
                secret: Secret::from("1234".to_owned()),
                origin: "--tpm-key-password".into(),
            }),
            ..TpmOptions::default()
        };
        let none = TpmOptions::default();
        let declared = TpmOptions {
            no_password: true,
            ..TpmOptions::default()
        };
        let e = file_password("TPM key k", true, &given).unwrap_err();
        assert!(e.to_string().contains("has no password (emptyAuth)"), "{e}");
        assert_eq!(
            file_password("k", false, &given).unwrap().0.expose(),
            "1234"
        );
        assert_eq!(file_password("k", true, &none).unwrap().0.expose(), "");
        assert_eq!(file_password("k", false, &declared).unwrap().0.expose(), "");
        let e = file_password("TPM key k", false, &none).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Password);
        assert!(!e.is_transient());
    }

    #[test]
    fn scalars_are_padded_and_stripped() {
        let rs = scalars(&[0, 0, 1], &[2], 4).unwrap();
        assert_eq!(rs, vec![0, 0, 0, 1, 0, 0, 0, 2]);
        assert!(scalars(&[1; 5], &[1], 4).is_err());
    }
}
