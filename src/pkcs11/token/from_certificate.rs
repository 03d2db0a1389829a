//! A certificate URI: the certificate on the token, then the private key that matches it,
//! looked for by the key URI, else by the certificate URI's object attributes, the
//! certificate's `CKA_ID`, its label, and finally among all keys of the token.

use super::errors::{refuse_mldsa, refuse_type};
use super::found::{Found, FoundCertificate};
use super::lookup::Lookup;
use super::mechanisms::Mechanisms;
use super::objects::CertObject;
use super::slots::SlotView;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::uri::{ObjectType, Pkcs11Uri};
use crate::x509::Certificate;

/// One `C_FindObjects` for keys: by label, by id, both, or neither.
type KeySearch = (Option<String>, Option<Vec<u8>>);

impl Lookup<'_> {
    /// The certificate `uri` names on the token, then its key.
    pub(super) fn find_from_certificate(
        &mut self,
        uri: &Pkcs11Uri,
    ) -> Result<Found, IdentityError> {
        refuse_type(uri, ObjectType::Certificate, "--certificate")?;
        let (view, object) = self.certificate_object(uri)?;
        let input = object.describe(&view.label);
        let certificate = Certificate::from_der(&object.der).map_err(|e| {
            IdentityError::new(
                ErrorKind::from(&e),
                &input,
                format!("cannot be used: {e}"),
                "store an X.509 certificate with an RSA or EC P-256/P-384/P-521 key",
            )
        })?;
        refuse_mldsa(&certificate, &input)?;

        // The key: on the certificate's token unless the key URI names another.
        let explicit = self.spec.private_key.clone();
        let key_view = match &explicit {
            Some(key_uri) => {
                refuse_type(key_uri, ObjectType::PrivateKey, "--private-key")?;
                self.one_slot(key_uri, "--private-key", Some(&view))?
            }
            None => view.clone(),
        };
        self.login(&key_view)?;
        let mechanisms = Mechanisms::of(self.state.ctx(), key_view.slot);
        let searches = key_searches(explicit.as_ref(), uri, &object);
        let public = certificate.public_key().clone();
        let mut probe_errors = Vec::new();
        let mut seen_any = false;
        for (label, id) in searches {
            let keys = self.keys(&key_view, label.as_deref(), id.as_deref())?;
            seen_any |= !keys.is_empty();
            for key in keys {
                if self.key_matches(&key_view, &key, &public, &mechanisms, &mut probe_errors) {
                    let issuers = self.issuers(&view, &certificate)?;
                    let key = self.token_key(&key_view, key, public, mechanisms);
                    return Ok(Found {
                        certificate: Some(FoundCertificate {
                            certificate,
                            input,
                            issuers,
                        }),
                        key,
                    });
                }
            }
        }
        let key_input = match &explicit {
            Some(key_uri) => format!("--private-key {key_uri}"),
            None => format!("--certificate {uri}"),
        };
        Err(no_key_for(
            key_input,
            &input,
            &key_view,
            seen_any,
            probe_errors.first(),
        ))
    }

    /// The one certificate object `uri` names, and its token: looked for without logging
    /// in, then (on a single token) logged in, in case it is not public.
    fn certificate_object(
        &mut self,
        uri: &Pkcs11Uri,
    ) -> Result<(SlotView, CertObject), IdentityError> {
        let slots = self.slots(uri)?;
        if slots.is_empty() {
            return Err(self.no_token(uri, "--certificate"));
        }
        let mut matches: Vec<(SlotView, CertObject)> = Vec::new();
        for view in &slots {
            for cert in self.certificates(view, uri.object.as_deref(), uri.id.as_deref())? {
                matches.push((view.clone(), cert));
            }
        }
        if matches.is_empty() && slots.len() == 1 {
            // Not public: look again logged in.
            self.login(&slots[0])?;
            for cert in self.certificates(&slots[0], uri.object.as_deref(), uri.id.as_deref())? {
                matches.push((slots[0].clone(), cert));
            }
        }
        match matches.len() {
            0 => {
                let tokens: Vec<String> = slots.iter().map(SlotView::name).collect();
                Err(IdentityError::new(
                    ErrorKind::ObjectAbsent,
                    format!("--certificate {uri}"),
                    format!("matches no certificate on {}", tokens.join(", ")),
                    format!(
                        "check object= and id= (id is the percent-encoded CKA_ID, such as id=%01); list them with: read-certificate-data --certificate '{}'",
                        slots[0].uri().format()
                    ),
                ))
            }
            1 => Ok(matches.remove(0)),
            n => {
                let names: Vec<String> =
                    matches.iter().map(|(v, c)| c.describe(&v.label)).collect();
                Err(IdentityError::new(
                    ErrorKind::Usage,
                    format!("--certificate {uri}"),
                    format!("matches {n} certificates ({})", names.join(", ")),
                    "add object= or id= to the URI to choose one",
                ))
            }
        }
    }
}

/// Where to look for the key of the certificate `object` that `uri` named: the key URI's
/// label and id when one is given; else the certificate URI's, the certificate's id, its
/// label, and, when the URI named no object, every key.
fn key_searches(
    explicit: Option<&Pkcs11Uri>,
    uri: &Pkcs11Uri,
    object: &CertObject,
) -> Vec<KeySearch> {
    if let Some(key_uri) = explicit {
        return vec![(key_uri.object.clone(), key_uri.id.clone())];
    }
    let mut searches = Vec::new();
    if !uri.names_no_object() {
        searches.push((uri.object.clone(), uri.id.clone()));
    }
    if !object.id.is_empty() {
        searches.push((None, Some(object.id.clone())));
    }
    if !object.label.is_empty() {
        searches.push((Some(object.label.clone()), None));
    }
    if uri.names_no_object() {
        searches.push((None, None));
    }
    searches
}

/// No key on `key_view`'s token belongs to the certificate `certificate`: none was found
/// at all (perhaps not yet: [`ErrorKind::ObjectAbsent`]), those found belong to another
/// certificate, or a probe signature could not be made to tell.
fn no_key_for(
    key_input: String,
    certificate: &str,
    key_view: &SlotView,
    seen_any: bool,
    probe_error: Option<&String>,
) -> IdentityError {
    let (kind, problem) = match (seen_any, probe_error) {
        (_, Some(e)) => (
            ErrorKind::Usage,
            format!("gives no usable key for {certificate}: signing a probe failed ({e})"),
        ),
        (true, None) => (
            ErrorKind::Mismatch,
            format!("matches no private key that belongs to {certificate}"),
        ),
        (false, None) => (
            ErrorKind::ObjectAbsent,
            format!("matches no private key on {}", key_view.name()),
        ),
    };
    IdentityError::new(
        kind,
        key_input,
        problem,
        "store the certificate's key on the token with the certificate's CKA_ID, or give its URI with --private-key",
    )
}
