//! What a lookup finds: the key, and the certificate when one was needed or found.

use super::key::TokenKey;
use crate::x509::Certificate;

/// What was found.
pub struct Found {
    /// The certificate (from the token or from the file), if one was needed or found.
    pub certificate: Option<FoundCertificate>,
    pub key: TokenKey,
}

/// The leaf certificate of a key found on a token.
pub struct FoundCertificate {
    pub certificate: Certificate,
    /// How to name it in messages.
    pub input: String,
    /// The issuers of the certificate found on the same token, issuer first.
    pub issuers: Vec<Certificate>,
}
