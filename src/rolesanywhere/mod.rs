//! The CreateSession client: build the request, sign it with the identity, send it over
//! rustls, retry what is worth retrying, and turn the answer into
//! [`Credentials`](crate::credentials::Credentials) or into an error that says what the
//! service refused and what to do about it.
//!
//! Retries follow the AWS SDKs' standard mode: at most 3 attempts, full-jitter exponential
//! backoff, on 5xx, 429 (honouring `Retry-After`) and connection failures; never on other
//! 4xx, which no retry can fix. Every attempt is signed afresh, with a new `X-Amz-Date`.
//!
//! One module per step: [`settings`] (what to call and how), `request` (the signed
//! request), `client` (sending it, and the failures of the transport), `retry` (the wait
//! between attempts), `answer` (reading the service's answer), `tls` (whom to trust),
//! `proxy` (which endpoints skip the environment's proxy), and [`error`] (what went wrong,
//! and whether trying again may help).

mod answer;
mod client;
pub mod error;
mod proxy;
mod request;
mod retry;
pub mod settings;
mod tls;

pub use answer::{parse_credentials, parse_error};
pub use client::{
    Client, MAX_ANSWER, capped_body, find_tls_error, http_client, root_cause, too_long,
};
pub use error::{CaBundleError, ClientError, CreateSessionError};
pub use settings::{ClientConfig, ProxyEnv, SessionParams};
