//! Finding a certificate and its private key on a token, and signing with the key.
//!
//! The search follows the official helper (itself modelled on OpenConnect and
//! draft-woodhouse-cert-best-practice): the certificate first (without logging in, then
//! logged in if it is not public), then the private key that matches it, looked for by
//! the key URI, then by the certificate's `CKA_ID`, then by its label, and recognised by
//! its public key (the RSA modulus, or the EC point of the public-key object with the
//! same `CKA_ID`), or failing that by a probe signature checked against the certificate.
//! Three arrangements work: both on the token, a certificate file with a key on the token,
//! and a key URI alone, whose certificate is then found on the token from the key.
//!
//! The steps build on one another in this order: [`spec`] (what to look for), `lookup`
//! (the locked module and the retry after re-initialising), `slots` and `objects` (what
//! the token holds), `login`, `signing`, `matching` (which key is the certificate's),
//! then the arrangements (`from_certificate`, `from_key`), [`search`] and [`listing`].

mod errors;
pub mod found;
mod from_certificate;
mod from_key;
mod issuers;
pub mod key;
pub mod listing;
mod login;
mod lookup;
mod matching;
mod mechanisms;
mod objects;
pub mod search;
mod signing;
mod slots;
pub mod spec;

pub use found::{Found, FoundCertificate};
pub use key::TokenKey;
pub use listing::{Listed, list};
pub use search::find;
pub use spec::TokenSpec;
