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
use crate::x509::{Certificate, Digest, SignatureError, order_chain};

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
        let (key, certs, cert_path) = key_and_certificates(spec)?;
        let (leaf, others) = leaf_for_key(spec, &key, certs, &cert_path)?;
        let source = format!("certificate {}", cert_path.display());
        let signer = Signer::File(Arc::new(key));
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
fn certificate_file_for_token(path: &Path) -> Result<Vec<Certificate>, IdentityError> {
    let bytes = read(Role::Certificate, path)?;
    certificates(Role::Certificate, path, &bytes)?.ok_or_else(|| {
        file_error(
            Role::Certificate,
            path,
            "holds no certificate",
            "give the PEM or DER certificate of the key on the token",
        )
    })
}
