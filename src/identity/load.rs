//! An identity loaded and checked: the leaf certificate, the chain to send with it, and
//! the key that signs, from files or from a token.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;

use super::certificates::{bundle, certificates};
use super::checks::{check_chain_length, check_leaf};
use super::key_and_certificates::{key_and_certificates, leaf_for_key};
use super::signer::Signer;
use super::spec::IdentitySpec;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::{Role, file_error, read};
use crate::pkcs11::token::found::FoundCertificate;
use crate::pkcs11::token::search;
use crate::pkcs11::token::spec::TokenSpec;
use crate::sigv4x509::Algorithm;
use crate::x509::{Certificate, Digest, KeyType, SignatureError, order_chain};

/// A certificate, its chain, and the private key that matches it.
#[derive(Clone, Debug)]
pub struct Identity {
    leaf: Certificate,
    chain: Vec<Certificate>,
    signer: Signer,
}

impl Identity {
    /// Loads and checks an identity, valid at `now`. A failure says which input is wrong
    /// and how; [`IdentityError::is_transient`] tells whether trying again later may do.
    pub fn load(spec: &IdentitySpec, now: OffsetDateTime) -> Result<Self, IdentityError> {
        if let Some(token) = &spec.token {
            return Self::load_token(spec, token, now);
        }
        let (signer, certs, cert_path) = key_and_certificates(spec)?;
        let (leaf, others) = leaf_for_key(spec, &signer, certs, &cert_path)?;
        let source = format!("certificate {}", cert_path.display());
        Self::assemble(spec, leaf, others, signer, &source, now)
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
        if let Some(path) = &spec.intermediates {
            others.extend(bundle(path)?);
        }
        let chain = order_chain(&leaf, others);
        check_chain_length(&leaf, &chain)?;
        check_leaf(&leaf, source, now)?;
        Ok(Self {
            leaf,
            chain,
            signer,
        })
    }

    /// A key on a token, with its certificate from the token (and the token's
    /// certificates that issued it as the chain) or from a `--certificate` file.
    fn load_token(
        spec: &IdentitySpec,
        token: &TokenSpec,
        now: OffsetDateTime,
    ) -> Result<Self, IdentityError> {
        let from_file = match &spec.certificate {
            Some(path) => Some((
                certificate_file_for_token(path)?,
                path.display().to_string(),
            )),
            None => None,
        };
        let found = search::find(
            token,
            from_file.as_ref().map(|(c, p)| (c.as_slice(), p.as_str())),
            true,
            now,
        )?;
        let Some(FoundCertificate {
            certificate: leaf,
            input,
            issuers,
        }) = found.certificate
        else {
            return Err(IdentityError::new(
                ErrorKind::ObjectAbsent,
                "the key on the token",
                "has no certificate",
                "give --certificate",
            ));
        };
        let others = match from_file {
            Some((certs, _)) => certs.into_iter().filter(|c| *c != leaf).collect(),
            None => issuers,
        };
        let signer = Signer::Token(Arc::new(found.key));
        Self::assemble(spec, leaf, others, signer, &input, now)
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
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        self.signer.sign(message, Digest::Sha256)
    }

    /// [`Self::sign`] on tokio's blocking pool. The daemons answer every client from one
    /// async thread, and a signature takes milliseconds (RSA-4096 in software) to hundreds
    /// of them (a smart card): no client should wait for it.
    pub async fn sign_off_thread(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let signer = self.signer.clone();
        let message = message.to_vec();
        tokio::task::spawn_blocking(move || signer.sign(&message, Digest::Sha256))
            .await
            .unwrap_or_else(|e| {
                Err(SignatureError::Sign(format!(
                    "the signing thread failed: {e}"
                )))
            })
    }
}

/// The certificates of a `--certificate` file given for a key on a token.
/// An ML-DSA certificate is refused: ML-DSA keys are read from files only, as upstream.
pub(super) fn certificate_file_for_token(path: &Path) -> Result<Vec<Certificate>, IdentityError> {
    let bytes = read(Role::Certificate, path)?;
    let certs = certificates(Role::Certificate, path, &bytes)?.ok_or_else(|| {
        file_error(
            Role::Certificate,
            path,
            "holds no certificate",
            "give the PEM or DER certificate of the key on the token",
        )
    })?;
    if let Some(KeyType::MlDsa(level)) = certs.first().map(|c| c.public_key().key_type()) {
        return Err(Role::Certificate.error(
            ErrorKind::Unsupported,
            path,
            format!(
                "holds an {level} certificate, and ML-DSA keys on a PKCS#11 token are not supported"
            ),
            "give the ML-DSA key as a file with --private-key",
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;

    use super::*;
    use crate::input_file::Readable;

    /// A P-256 leaf certificate and its key in a fresh directory, the key private.
    struct Files {
        dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    fn files(adjust: impl FnOnce(&mut rcgen::CertificateParams)) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["host.example".into()]).unwrap();
        adjust(&mut params);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let files = Files {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            dir,
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        write_private(&files.key, key.serialize_pem().as_bytes());
        files
    }

    fn write_private(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn spec(cert: &Path, key: &Path) -> IdentitySpec {
        IdentitySpec {
            certificate: Some(cert.to_owned()),
            private_key: Some(key.to_owned()),
            readable_key_files: Readable::Refuse,
            ..IdentitySpec::default()
        }
    }

    fn load(spec: &IdentitySpec) -> Result<Identity, IdentityError> {
        Identity::load(spec, OffsetDateTime::now_utc())
    }

    #[test]
    fn a_matching_pair_loads() {
        let f = files(|_| ());
        let identity = load(&spec(&f.cert, &f.key)).unwrap();
        assert!(identity.chain().is_empty());
    }

    /// `/dev/zero`, a FIFO no one writes to and a 2 GB sparse file, each given as
    /// `--certificate`, `--private-key` and `--intermediates`: one line naming the file
    /// and the problem, returned at once, and not worth retrying.
    #[test]
    fn devices_fifos_and_huge_files_are_refused_for_every_flag() {
        let f = files(|_| ());
        let fifo = f.dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let sparse = f.dir.path().join("sparse.pem");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(2 * 1024 * 1024 * 1024)
            .unwrap();
        std::fs::set_permissions(&sparse, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bad = [
            (
                PathBuf::from("/dev/zero"),
                "is a character device, not a regular file",
            ),
            (fifo, "is a FIFO, not a regular file"),
            (
                sparse,
                "holds 2147483648 bytes or more, above the limit of 1048576 bytes",
            ),
        ];
        for (path, problem) in &bad {
            let as_cert = spec(path, &f.key);
            let as_key = spec(&f.cert, path);
            let as_chain = IdentitySpec {
                intermediates: Some(path.clone()),
                ..spec(&f.cert, &f.key)
            };
            for (given, noun) in [
                (as_cert, "certificate"),
                (as_key, "private key"),
                (as_chain, "intermediates bundle"),
            ] {
                let error = load(&given).unwrap_err();
                let text = error.to_string();
                let start = format!("{noun} {} {problem}", path.display());
                assert!(text.starts_with(&start), "{text}");
                assert!(!text.contains('\n'), "{text}");
                assert!(!error.is_transient(), "{text}");
            }
        }
    }

    #[test]
    fn a_missing_file_is_transient_for_every_flag() {
        let f = files(|_| ());
        let missing = f.dir.path().join("not-yet.pem");
        let cases = [
            spec(&missing, &f.key),
            spec(&f.cert, &missing),
            IdentitySpec {
                intermediates: Some(missing.clone()),
                ..spec(&f.cert, &f.key)
            },
        ];
        for given in cases {
            let error = load(&given).unwrap_err();
            assert!(error.to_string().contains("does not exist"), "{error}");
            assert_eq!(error.kind(), ErrorKind::Unavailable);
            assert!(error.is_transient(), "{error}");
        }
    }

    #[test]
    fn malformed_and_refused_inputs_are_permanent() {
        let f = files(|_| ());
        let other = files(|_| ());
        let truncated = f.dir.path().join("truncated.pem");
        std::fs::write(&truncated, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let with_password = IdentitySpec {
            password: Some(crate::secret::Secret::from("pw".to_owned())),
            ..spec(&f.cert, &f.key)
        };
        let exposed = f.dir.path().join("exposed.pem");
        std::fs::copy(&f.key, &exposed).unwrap();
        std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cases = [
            (
                spec(&truncated, &f.key),
                ErrorKind::Malformed,
                "with no END line",
            ),
            (with_password, ErrorKind::Password, "a password was given"),
            (
                spec(&f.cert, &other.key),
                ErrorKind::Mismatch,
                "does not match",
            ),
            (spec(&f.cert, &exposed), ErrorKind::Exposed, "mode 0644"),
        ];
        for (given, kind, problem) in cases {
            let error = load(&given).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
            assert_eq!(error.kind(), kind, "{error}");
            assert!(!error.is_transient(), "{error}");
        }
    }

    #[test]
    fn certificates_the_service_refuses_are_permanent_one_not_valid_yet_is_not() {
        let ca = files(|p| p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained));
        let error = load(&spec(&ca.cert, &ca.key)).unwrap_err();
        assert!(error.to_string().contains("is a CA certificate"), "{error}");
        assert!(!error.is_transient());
        let expired = files(|p| p.not_after = rcgen::date_time_ymd(2000, 1, 1));
        let error = load(&spec(&expired.cert, &expired.key)).unwrap_err();
        assert!(
            error.to_string().contains("expired at 2000-01-01"),
            "{error}"
        );
        assert!(!error.is_transient());
        let early = files(|p| p.not_before = rcgen::date_time_ymd(4000, 1, 1));
        let error = load(&spec(&early.cert, &early.key)).unwrap_err();
        assert!(
            error.to_string().contains("is not valid before 4000-01-01"),
            "{error}"
        );
        assert!(error.is_transient());
    }
}
