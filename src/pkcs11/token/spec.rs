//! What to look for on a token, from the identity flags.

use crate::pkcs11::pin::PinOptions;
use crate::pkcs11::uri::Pkcs11Uri;

/// What to look for on a token, from the identity flags.
#[derive(Clone, Debug, Default)]
pub struct TokenSpec {
    /// `--certificate pkcs11:…`.
    pub certificate: Option<Pkcs11Uri>,
    /// `--private-key pkcs11:…`; without it the key is looked for from the certificate.
    pub private_key: Option<Pkcs11Uri>,
    /// The module: `module-path` of a URI, `--pkcs11-lib`, or p11-kit's proxy.
    pub module: String,
    pub pins: PinOptions,
}

impl TokenSpec {
    /// The URI whose `pin-value` or `pin-source` gives the user PIN: the key's, else the
    /// certificate's (both name the same token's PIN).
    pub(super) fn pin_uri(&self) -> Option<&Pkcs11Uri> {
        let uris = [self.private_key.as_ref(), self.certificate.as_ref()];
        uris.into_iter()
            .flatten()
            .find(|u| u.pin_value.is_some() || u.pin_source.is_some())
            .or(self.private_key.as_ref())
            .or(self.certificate.as_ref())
    }
}
