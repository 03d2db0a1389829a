//! Finding the key (and the certificate) the identity flags name on a token, in one of
//! three arrangements: both on the token, a certificate file with a key on the token, or
//! a key URI alone, whose certificate is then found on the token from the key.

use time::OffsetDateTime;

use super::errors::refuse_type;
use super::found::Found;
use super::lookup::{Lookup, with_module};
use super::mechanisms::Mechanisms;
use super::spec::TokenSpec;
use crate::identity_error::{ErrorKind, IdentityError};
use crate::pkcs11::uri::ObjectType;
use crate::x509::Certificate;

/// Finds the key (and the certificate) `spec` describes. `file_certificates` are the
/// certificates of a `--certificate` file (the key must match one of them); without
/// them the certificate is looked for on the token, and is required if `need_certificate`.
pub fn find(
    spec: &TokenSpec,
    file_certificates: Option<(&[Certificate], &str)>,
    need_certificate: bool,
    now: OffsetDateTime,
) -> Result<Found, IdentityError> {
    let found = with_module(spec, |lookup| {
        lookup.find(file_certificates, need_certificate, now)
    })?;
    tracing::debug!(
        module = %spec.module,
        key = ?found.key,
        certificate = found.certificate.as_ref().map(|c| c.input.as_str()).unwrap_or("none"),
        issuers_on_token = found.certificate.as_ref().map_or(0, |c| c.issuers.len()),
        "PKCS#11 objects found"
    );
    Ok(found)
}

impl Lookup<'_> {
    /// One lookup: from the certificate URI when there is one and no certificate file,
    /// else from the key URI.
    fn find(
        &mut self,
        file_certificates: Option<(&[Certificate], &str)>,
        need_certificate: bool,
        now: OffsetDateTime,
    ) -> Result<Found, IdentityError> {
        let spec = self.spec;
        if let Some(uri) = &spec.certificate
            && file_certificates.is_none()
        {
            return self.find_from_certificate(uri);
        }
        let Some(key_uri) = &spec.private_key else {
            return Err(IdentityError::new(
                ErrorKind::Usage,
                "no --private-key",
                "was given for a certificate file",
                "give the key's pkcs11: URI with --private-key",
            ));
        };
        refuse_type(key_uri, ObjectType::PrivateKey, "--private-key")?;
        let view = self.one_slot(key_uri, "--private-key", None)?;
        self.login(&view)?;
        let keys = self.keys(&view, key_uri.object.as_deref(), key_uri.id.as_deref())?;
        let mechanisms = Mechanisms::of(self.state.ctx(), view.slot);
        if let Some((certificates, path)) = file_certificates {
            return self.key_for_file(&view, key_uri, keys, certificates, path, mechanisms);
        }
        let key = self.single_key(&view, key_uri, keys)?;
        self.certificate_from_key(&view, key, need_certificate, now, mechanisms)
    }
}
