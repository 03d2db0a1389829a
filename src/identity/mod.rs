//! Where the certificate and the private key live, and the checks that make a pair usable.
//!
//! An [`Identity`] is a leaf certificate, the chain to send with it, and the key that signs.
//! Loading one reports every problem the service would otherwise answer with an opaque
//! "Invalid signature" or "Untrusted Signing Certificate": a key that does not match the
//! certificate, a CA certificate used as a leaf, an expired certificate, a weak key.

pub mod certificate;
pub mod file;
pub mod key;
pub mod pem;

use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

pub use certificate::Certificate;
pub use key::{Digest, KeyType, PrivateKey, PublicKey};

use crate::pkcs11::{TokenKey, TokenSpec};
use crate::secret::Secret;
use crate::sigv4x509::Algorithm;
use file::Role;

/// The service's limit on `X-Amz-X509-Chain`.
pub const MAX_CHAIN: usize = 5;

/// An error a user can act on: which input, what is wrong with it, what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} {problem}; {fix}")]
pub struct IdentityError {
    input: String,
    problem: String,
    fix: String,
}

impl IdentityError {
    pub fn new(
        input: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            input: input.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Where to find an identity: the file flags of the official helper, and the objects on
/// a PKCS#11 token when `--certificate` or `--private-key` is a `pkcs11:` URI.
#[derive(Clone, Debug, Default)]
pub struct IdentitySpec {
    /// `--certificate`: PEM/DER certificate, fullchain PEM, combined key+certificate PEM,
    /// or PKCS#12.
    pub certificate: Option<PathBuf>,
    /// `--private-key`; when absent the key is looked for in the certificate file.
    pub private_key: Option<PathBuf>,
    /// `--intermediates`: a PEM bundle sent as the chain.
    pub intermediates: Option<PathBuf>,
    /// Password of an encrypted PKCS#8 key or a PKCS#12 file.
    pub password: Option<Secret>,
    /// Whether a key file that group or others can read is refused or only warned about.
    pub readable_key_files: file::Readable,
    /// The key (and perhaps the certificate) on a token; `certificate` may still name a
    /// certificate file for a key on a token.
    pub token: Option<TokenSpec>,
}

impl IdentitySpec {
    /// Lets a token ask for its PINs on the terminal when no other source has them: for
    /// the commands a person runs, not for the daemons.
    pub fn allow_prompt(&mut self) {
        if let Some(token) = &mut self.token {
            token.pins.prompt = true;
        }
    }
}

/// The private key that signs: in memory from a file, or on a token. Cloning shares the
/// key (no second copy of the secret in memory), so that a signature can be made on
/// another thread.
#[derive(Clone, Debug)]
pub enum Signer {
    File(Arc<PrivateKey>),
    Token(Arc<TokenKey>),
}

impl Signer {
    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::File(key) => key.public_key(),
            Self::Token(key) => key.public_key().clone(),
        }
    }

    /// Signs `message` hashed with `digest`: PKCS#1 v1.5 for RSA, DER ECDSA for EC.
    pub fn sign(&self, message: &[u8], digest: Digest) -> Result<Vec<u8>, key::SignatureError> {
        match self {
            Self::File(key) => key.sign(message, digest),
            Self::Token(key) => key.sign(message, digest),
        }
    }

    /// The key alone, without a certificate, as `sign-string --private-key` allows.
    pub fn load_key_only(spec: &IdentitySpec, now: OffsetDateTime) -> Result<Self, IdentityError> {
        if let Some(token) = &spec.token {
            let found = crate::pkcs11::token::find(token, None, false, now)?;
            return Ok(Self::Token(Arc::new(found.key)));
        }
        let Some(key_path) = &spec.private_key else {
            return Err(IdentityError::new(
                "no --private-key",
                "was given",
                "give --private-key FILE, or --certificate for a file that holds the key",
            ));
        };
        file::guard_secret(Role::PrivateKey, key_path, spec.readable_key_files)?;
        let bytes = file::read(Role::PrivateKey, key_path)?;
        file::private_key(key_path, &bytes, spec.password.as_ref()).map(|k| Self::File(Arc::new(k)))
    }
}

/// A certificate, its chain, and the private key that matches it.
#[derive(Clone, Debug)]
pub struct Identity {
    leaf: Certificate,
    chain: Vec<Certificate>,
    signer: Signer,
}

impl Identity {
    /// Loads and checks an identity, valid at `now`.
    pub fn load(spec: &IdentitySpec, now: OffsetDateTime) -> Result<Self, IdentityError> {
        if let Some(token) = &spec.token {
            return Self::load_token(spec, token, now);
        }
        let (key, certs, cert_path) = load_key_and_certificates(spec)?;
        let public = key.public_key();
        let Some(leaf_index) = certs.iter().position(|c| *c.public_key() == public) else {
            let key_path = spec.private_key.as_deref().unwrap_or(&cert_path);
            let what = if certs.len() == 1 {
                format!(
                    "does not match the certificate {} in {}",
                    certs[0].describe(),
                    cert_path.display()
                )
            } else {
                format!(
                    "matches none of the {} certificates in {}",
                    certs.len(),
                    cert_path.display()
                )
            };
            return Err(IdentityError::new(
                format!("private key {} ({})", key_path.display(), public.describe()),
                what,
                "give the key and the certificate that were issued together",
            ));
        };
        let mut others = certs;
        let leaf = others.remove(leaf_index);
        let source = format!("certificate {}", cert_path.display());
        Self::assemble(
            spec,
            leaf,
            others,
            Signer::File(Arc::new(key)),
            &source,
            now,
        )
    }

    /// The leaf, the chain (the other certificates given, then `--intermediates`), checked.
    fn assemble(
        spec: &IdentitySpec,
        leaf: Certificate,
        mut others: Vec<Certificate>,
        signer: Signer,
        source: &str,
        now: OffsetDateTime,
    ) -> Result<Self, IdentityError> {
        if let Some(bundle) = &spec.intermediates {
            others.extend(file::bundle(bundle)?);
        }
        let chain = order_chain(&leaf, others);
        if chain.len() > MAX_CHAIN {
            return Err(IdentityError::new(
                format!("certificate chain for {}", leaf.describe()),
                format!(
                    "has {} certificates; the service accepts at most {MAX_CHAIN}",
                    chain.len()
                ),
                "send only the intermediates between the leaf and the trust anchor",
            ));
        }
        let identity = Self {
            leaf,
            chain,
            signer,
        };
        identity.check_leaf(source, now)?;
        Ok(identity)
    }

    /// A key on a token, with its certificate from the token (and the token's
    /// certificates that issued it as the chain) or from a `--certificate` file.
    fn load_token(
        spec: &IdentitySpec,
        token: &TokenSpec,
        now: OffsetDateTime,
    ) -> Result<Self, IdentityError> {
        let from_file = match &spec.certificate {
            Some(path) => {
                let bytes = file::read(Role::Certificate, path)?;
                let Some(certs) = file::certificates(Role::Certificate, path, &bytes)? else {
                    return Err(file::file_error(
                        Role::Certificate,
                        path,
                        "holds no certificate",
                        "give the PEM or DER certificate of the key on the token",
                    ));
                };
                Some((certs, path.display().to_string()))
            }
            None => None,
        };
        let found = crate::pkcs11::token::find(
            token,
            from_file.as_ref().map(|(c, p)| (c.as_slice(), p.as_str())),
            true,
            now,
        )?;
        let Some(certificate) = found.certificate else {
            return Err(IdentityError::new(
                "the key on the token",
                "has no certificate",
                "give --certificate",
            ));
        };
        let leaf = certificate.certificate;
        let others = match from_file {
            Some((certs, _)) => certs.into_iter().filter(|c| *c != leaf).collect(),
            None => certificate.issuers,
        };
        let signer = Signer::Token(Arc::new(found.key));
        Self::assemble(spec, leaf, others, signer, &certificate.input, now)
    }

    fn check_leaf(&self, source: &str, now: OffsetDateTime) -> Result<(), IdentityError> {
        let leaf = &self.leaf;
        let input = format!("{source} {}", leaf.describe());
        if leaf.is_ca() {
            return Err(IdentityError::new(
                input,
                "is a CA certificate (basicConstraints CA:TRUE) and cannot sign requests",
                "give the end-entity certificate your CA issued for this host",
            ));
        }
        if leaf.allows_digital_signature() == Some(false) {
            return Err(IdentityError::new(
                input,
                "has a keyUsage without digitalSignature, which the service requires",
                "issue a certificate with keyUsage digitalSignature",
            ));
        }
        if now > leaf.not_after() {
            return Err(IdentityError::new(
                input,
                format!("expired at {}", rfc3339(leaf.not_after())),
                "renew the certificate",
            ));
        }
        if now < leaf.not_before() {
            return Err(IdentityError::new(
                input,
                format!("is not valid before {}", rfc3339(leaf.not_before())),
                "check the host clock, or wait until the certificate becomes valid",
            ));
        }
        Ok(())
    }

    /// The end-entity certificate, sent as `X-Amz-X509`.
    pub fn leaf(&self) -> &Certificate {
        &self.leaf
    }

    /// The intermediates, issuer of the leaf first, sent as `X-Amz-X509-Chain`.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The request signing algorithm, from the key type.
    pub fn algorithm(&self) -> Algorithm {
        self.leaf.public_key().key_type().algorithm()
    }

    /// The private key.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Signs a string to sign for a request (always SHA-256).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, key::SignatureError> {
        self.signer.sign(message, Digest::Sha256)
    }

    /// [`Self::sign`] on tokio's blocking pool. The daemons answer every client from one
    /// async thread, and a signature takes milliseconds (RSA-4096 in software) to hundreds
    /// of them (a smart card): no client should wait for it.
    pub async fn sign_off_thread(&self, message: &[u8]) -> Result<Vec<u8>, key::SignatureError> {
        let signer = self.signer.clone();
        let message = message.to_vec();
        tokio::task::spawn_blocking(move || signer.sign(&message, Digest::Sha256))
            .await
            .unwrap_or_else(|e| {
                Err(key::SignatureError::Sign(format!(
                    "the signing thread failed: {e}"
                )))
            })
    }
}

/// RFC 3339 in UTC with whole seconds, e.g. `2026-01-02T03:04:05Z`: the form SDKs parse
/// most strictly (botocore wants exactly `%Y-%m-%dT%H:%M:%SZ`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// Reads the key and every certificate offered for the leaf, following the official
/// helper's rules: no `--private-key` means the certificate file also holds the key
/// (combined PEM or PKCS#12).
fn load_key_and_certificates(
    spec: &IdentitySpec,
) -> Result<(PrivateKey, Vec<Certificate>, PathBuf), IdentityError> {
    let Some(cert_path) = spec.certificate.clone() else {
        return Err(IdentityError::new(
            "no --certificate",
            "was given",
            "give --certificate FILE (and --private-key FILE unless the certificate file holds the key); operating-system certificate stores are not available on Linux",
        ));
    };
    let cert_bytes = file::read(Role::Certificate, &cert_path)?;
    let certs = file::certificates(Role::Certificate, &cert_path, &cert_bytes)?;
    let key_path = spec.private_key.as_deref();
    match (certs, key_path) {
        (Some(certs), Some(key_path)) => {
            file::guard_secret(Role::PrivateKey, key_path, spec.readable_key_files)?;
            let key_bytes = file::read(Role::PrivateKey, key_path)?;
            let key = file::private_key(key_path, &key_bytes, spec.password.as_ref())?;
            Ok((key, certs, cert_path))
        }
        (Some(certs), None) => {
            if !file::holds_private_key(&cert_bytes) {
                return Err(file::file_error(
                    Role::Certificate,
                    &cert_path,
                    "holds a certificate but no private key",
                    "give the key with --private-key FILE",
                ));
            }
            // A combined file does hold a key: its own error (wrong or missing password,
            // weak key, unsupported curve) is the one the user can act on.
            file::guard_secret(Role::Certificate, &cert_path, spec.readable_key_files)?;
            let key = file::private_key(&cert_path, &cert_bytes, spec.password.as_ref())?;
            Ok((key, certs, cert_path))
        }
        (None, None) if !pem::is_pem(&cert_bytes) => {
            if spec.intermediates.is_some() {
                return Err(file::file_error(
                    Role::Certificate,
                    &cert_path,
                    "is PKCS#12 and --intermediates was given",
                    "put the whole chain in the PKCS#12 file and drop --intermediates",
                ));
            }
            file::guard_secret(Role::Certificate, &cert_path, spec.readable_key_files)?;
            let (key, certs) = file::pkcs12(&cert_path, &cert_bytes, spec.password.as_ref())?;
            Ok((key, certs, cert_path))
        }
        (None, _) => Err(file::file_error(
            Role::Certificate,
            &cert_path,
            if pem::is_pem(&cert_bytes) {
                "holds no CERTIFICATE block"
            } else {
                "is neither a PEM nor a DER certificate"
            },
            "give the X.509 certificate file (PEM or DER), or a PKCS#12 file without --private-key",
        )),
    }
}

/// Orders the chain to send: the leaf's issuer first, then its issuer, and so on; any
/// certificate off that path follows in the order given. Duplicates and copies of the
/// leaf are dropped, since they only lengthen the header.
pub(crate) fn order_chain(leaf: &Certificate, pool: Vec<Certificate>) -> Vec<Certificate> {
    let mut pool: Vec<Certificate> = pool.into_iter().fold(Vec::new(), |mut kept, c| {
        if c != *leaf && !kept.contains(&c) {
            kept.push(c);
        }
        kept
    });
    let mut ordered = Vec::with_capacity(pool.len());
    let mut current_issuer = leaf.issuer().to_owned();
    let mut current_subject = leaf.subject().to_owned();
    while current_issuer != current_subject {
        let Some(i) = pool.iter().position(|c| c.subject() == current_issuer) else {
            break;
        };
        let next = pool.remove(i);
        current_issuer = next.issuer().to_owned();
        current_subject = next.subject().to_owned();
        ordered.push(next);
    }
    ordered.extend(pool);
    ordered
}
