//! A verifying local emulator of IAM Roles Anywhere `CreateSession`, with STS
//! `GetCallerIdentity` and `AssumeRole` (role chaining) for the credentials it issues.
//!
//! It checks requests as the real service does (signing-spec §2.7, §3, §4): the SigV4-X509
//! signature over the canonical request rebuilt from what arrived, the certificate path from
//! the leaf through an unordered `X-Amz-X509-Chain` pool to a trust anchor, validity,
//! revocation by imported CRLs, the profile and its roles. Refusals carry the status,
//! `X-Amzn-ErrorType` and message of the real service, plus the precise reason in
//! `X-Emulator-Reason`.
//!
//! It shares only the pure canonicalisation of [`crate::sigv4x509`] with the client: it parses
//! certificates and checks signatures with its own code (RSA with ring, ML-DSA-44/65/87 with
//! `fips204`), so a client bug cannot hide behind the same bug here.
//!
//! Tests start it in process with [`Emulator::start`]; people run `rolesanywhere-helper
//! emulate`. Both offer fault injection ([`Faults`], or `POST /_emulator/faults` from a
//! loopback peer, see [`faults`]) and the request log ([`Emulator::received`], or
//! `GET /_emulator/received`).

mod answer;
mod assume_role;
mod chain;
mod config;
mod create_session;
mod errors;
pub mod faults;
mod ids;
mod mldsa;
mod routes;
mod server;
mod session_route;
mod sessions;
mod signature;
mod state;
mod sts;
mod sts_xml;
mod throttle;
mod tls;
mod verify;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    EmulatorConfig, ProfileConfig, RoleTrustConfig, TlsMode, TrustAnchorConfig, pem_certificates,
};
pub use errors::{EmulatorError, INVALID_SIGNATURE, SIGNATURE_EXPIRED, UNTRUSTED_CERTIFICATE};
pub use faults::Faults;
pub use state::{ReceivedRequest, VerifiedSignature};

/// A running emulator. Dropping it stops the listener; [`Emulator::shutdown`] also waits for
/// open connections to finish.
pub struct Emulator {
    url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    state: Arc<state::State>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Checks `config`, binds (127.0.0.1 and a free port unless set) and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let state = Arc::new(state::State::new(&config)?);
        let (acceptor, ca_pem) = match &config.tls {
            TlsMode::Http => (None, None),
            TlsMode::SelfMade => {
                let identity = tls::self_made()?;
                let ca = identity.ca_pem.clone();
                (Some(tls::acceptor(identity)?), ca)
            }
            TlsMode::Given { cert_pem, key_pem } => {
                (Some(tls::acceptor(tls::given(cert_pem, key_pem)?)?), None)
            }
        };
        let wanted = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: wanted.to_string(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: wanted.to_string(),
                source,
            })?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let host = match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(
            listener,
            acceptor,
            Arc::clone(&state),
            stopped,
        ));
        Ok(Emulator {
            url: format!("{scheme}://{host}:{}", addr.port()),
            addr,
            ca_pem,
            state,
            stop,
            task: Some(task),
        })
    }

    /// The base URL, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA of the self-made TLS certificate (`None` with HTTP or a given
    /// certificate).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Fault injection for the CreateSession route.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Every CreateSession request received so far (at most the last 10,000), oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.state.received()
    }

    /// Forgets the request log.
    pub fn clear_received(&self) {
        self.state.clear_received();
    }

    /// How many issued sessions STS can still check.
    pub fn issued_sessions(&self) -> usize {
        self.state.sessions.len()
    }

    /// Stops accepting, lets open connections finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
