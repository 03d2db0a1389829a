//! Role chaining: STS `AssumeRole` with the credentials of CreateSession (or of the
//! previous hop), so that a certificate trusted in one account reaches a role in another.
//!
//! One module per step: [`settings`] (the hops and the endpoint), `sign` (SigV4 for this
//! one request, on the crate's own `hmac` and `sha2`, cross-checked against the AWS SDK's
//! signer in its tests), `client` (sending, retrying), `xml` and `answer` (reading STS's
//! XML), and [`error`] (what went wrong, and whether trying again may help).
//!
//! Two limits of the service are applied before any request: a chained session lasts at
//! most one hour ([`settings::CHAINED_MAX_DURATION`], checked by the configuration), and
//! the source identity Roles Anywhere sets from the certificate carries along the chain
//! and cannot be changed, so no hop sends `SourceIdentity`.

pub(crate) mod answer;
mod client;
pub mod error;
pub mod settings;
mod sign;
mod xml;

pub use answer::Assumed;
pub use client::StsClient;
pub use error::AssumeRoleError;
pub use settings::{CHAINED_MAX_DURATION, ChainSettings, Hop};
