//! A key URI: with a certificate file, the key must match one of its certificates; alone,
//! its certificate is looked for on the same token.

use time::OffsetDateTime;

use super::found::{Found, FoundCertificate};
use super::lookup::Lookup;
use super::mechanisms::Mechanisms;
use super::objects::{CertObject, KeyObject, object_name};
use super::slots::SlotView;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::uri::Pkcs11Uri;
use crate::x509::{Certificate, PublicKey};

/// The key URI found nothing on the token: perhaps not yet.
fn no_key(view: &SlotView, key_uri: &Pkcs11Uri) -> IdentityError {
    IdentityError::new(
        ErrorKind::ObjectAbsent,
        format!("--private-key {key_uri}"),
        format!("matches no private key on {}", view.name()),
        "check object= and id= in the URI (id is the percent-encoded CKA_ID, such as id=%01)",
    )
}

impl Lookup<'_> {
    /// A certificate file and a key URI; the key must match one certificate of the file
    /// (the first one that any key matches is the leaf).
    pub(super) fn key_for_file(
        &mut self,
        view: &SlotView,
        key_uri: &Pkcs11Uri,
        keys: Vec<KeyObject>,
        certificates: &[Certificate],
        path: &str,
        mechanisms: Mechanisms,
    ) -> Result<Found, IdentityError> {
        if keys.is_empty() {
            return Err(no_key(view, key_uri));
        }
        let mut probe_errors = Vec::new();
        for certificate in certificates {
            let public = certificate.public_key();
            for key in &keys {
                if self.key_matches(view, key, public, &mechanisms, &mut probe_errors) {
                    let key = self.token_key(view, key.clone(), public.clone(), mechanisms);
                    return Ok(Found {
                        certificate: Some(FoundCertificate {
                            certificate: certificate.clone(),
                            input: format!("certificate {path}"),
                            issuers: Vec::new(),
                        }),
                        key,
                    });
                }
            }
        }
        let what = match keys.as_slice() {
            [one] => one.describe(&view.label),
            many => format!("none of the {} private keys it matches", many.len()),
        };
        let (kind, problem) = match probe_errors.first() {
            Some(e) => (
                ErrorKind::Usage,
                format!("gives {what}, and signing a probe failed ({e})"),
            ),
            None => (
                ErrorKind::Mismatch,
                format!(
                    "gives {what}, which does not match the certificate {} in {path}",
                    certificates
                        .first()
                        .map(Certificate::describe)
                        .unwrap_or_default()
                ),
            ),
        };
        Err(IdentityError::new(
            kind,
            format!("--private-key {key_uri}"),
            problem,
            "give the key and the certificate that were issued together",
        ))
    }

    /// The one key of `keys`, or an error naming all of them.
    pub(super) fn single_key(
        &mut self,
        view: &SlotView,
        key_uri: &Pkcs11Uri,
        mut keys: Vec<KeyObject>,
    ) -> Result<KeyObject, IdentityError> {
        match keys.len() {
            0 => Err(no_key(view, key_uri)),
            1 => Ok(keys.remove(0)),
            n => {
                let names: Vec<String> =
                    keys.iter().map(|k| object_name(&k.label, &k.id)).collect();
                Err(IdentityError::new(
                    ErrorKind::Usage,
                    format!("--private-key {key_uri}"),
                    format!(
                        "matches {n} private keys on {} ({})",
                        view.name(),
                        names.join(", ")
                    ),
                    "add object= or id= to the URI to choose one",
                ))
            }
        }
    }

    /// A key URI alone; its certificate is looked for on the same token (by the key's
    /// `CKA_ID` first, then among all), and must be there if `need_certificate`. Of
    /// several certificates for the key (a renewal kept beside the old one), the one
    /// valid now that expires last.
    pub(super) fn certificate_from_key(
        &mut self,
        view: &SlotView,
        key: KeyObject,
        need_certificate: bool,
        now: OffsetDateTime,
        mechanisms: Mechanisms,
    ) -> Result<Found, IdentityError> {
        let own = self.public_key(view, &key);
        let mut candidates = self.certificates_of_key(view, &key, own.as_ref(), &mechanisms)?;
        candidates.sort_by_key(|(_, c)| {
            let valid = c.not_before() <= now && now <= c.not_after();
            (valid, c.not_after())
        });
        let chosen = candidates.pop();
        let public = match (&chosen, own) {
            (Some((_, c)), _) => c.public_key().clone(),
            (None, Some(public)) if !need_certificate => public,
            (None, _) => return Err(no_certificate_for(&key, view, need_certificate)),
        };
        let certificate = match chosen {
            Some((object, certificate)) => {
                let issuers = self.issuers(view, &certificate)?;
                Some(FoundCertificate {
                    certificate,
                    input: object.describe(&view.label),
                    issuers,
                })
            }
            None => None,
        };
        let key = self.token_key(view, key, public, mechanisms);
        Ok(Found { certificate, key })
    }

    /// The certificates on the token whose public key is `key`'s: among those with the
    /// key's `CKA_ID` first, else among all. Without the key's public key from the token,
    /// one probe signature is checked against each certificate's key.
    fn certificates_of_key(
        &mut self,
        view: &SlotView,
        key: &KeyObject,
        own: Option<&PublicKey>,
        mechanisms: &Mechanisms,
    ) -> Result<Vec<(CertObject, Certificate)>, IdentityError> {
        let by_id = if key.id.is_empty() {
            Vec::new()
        } else {
            self.certificates(view, None, Some(&key.id))?
        };
        for pass in [by_id, self.certificates(view, None, None)?] {
            let parsed: Vec<(CertObject, Certificate)> = pass
                .into_iter()
                .filter_map(|o| Certificate::from_der(&o.der).ok().map(|c| (o, c)))
                .collect();
            let public = match own {
                Some(public) => Some(public.clone()),
                None => self.probed_public_key(view, key, mechanisms, &parsed),
            };
            let matching: Vec<(CertObject, Certificate)> = match public {
                Some(public) => parsed
                    .into_iter()
                    .filter(|(_, c)| *c.public_key() == public)
                    .collect(),
                None => Vec::new(),
            };
            if !matching.is_empty() {
                return Ok(matching);
            }
        }
        Ok(Vec::new())
    }

    /// The public key, among those of `parsed`, that verifies a probe signature of `key`.
    fn probed_public_key(
        &mut self,
        view: &SlotView,
        key: &KeyObject,
        mechanisms: &Mechanisms,
        parsed: &[(CertObject, Certificate)],
    ) -> Option<PublicKey> {
        let publics: Vec<PublicKey> = parsed.iter().map(|(_, c)| c.public_key().clone()).collect();
        if publics.is_empty() {
            return None;
        }
        let index = self.probe(view, key, mechanisms, &publics).ok().flatten()?;
        publics.into_iter().nth(index)
    }
}

/// The key found has no certificate on the token (and, when none is needed, no
/// public-key object to tell its public key either). The module may not show it yet.
fn no_certificate_for(key: &KeyObject, view: &SlotView, need_certificate: bool) -> IdentityError {
    let problem = if need_certificate {
        "has no matching certificate on the token"
    } else {
        "has neither a certificate nor a public-key object on the token to tell its public key"
    };
    IdentityError::new(
        ErrorKind::ObjectAbsent,
        key.describe(&view.label),
        problem,
        "store the certificate on the token (with the key's CKA_ID), or give it with --certificate FILE",
    )
}
