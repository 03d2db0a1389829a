//! The emulator on the shared server of [`crate::httpd`]: TLS (rustls) before HTTP, the
//! routes of [`super::routes`], and its limits.
//!
//! Limits keep a misbehaving client from exhausting the process: headers and bodies of at
//! most 64 KiB, 1024 connections at once, 10 s for the TLS handshake, 30 s to send each
//! request's head (not counting the time an answer is held back by the `delay` fault), and
//! 30 s for a client to make room for an answer. Shutdown is graceful: the listener closes,
//! connections finish their current request, for at most 5 s.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::routes::route;
use super::state::State;
use crate::httpd::{self, Connections, Handler, HeaderClock, Limits, Listener, Peer};

const MAX_CONNECTIONS: usize = 1024;
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The read buffer, which bounds the request head. An ML-DSA-87 request with the largest
/// chain the service takes (five intermediates) carries about 70 KB of headers: 10 KB per
/// certificate in `X-Amz-X509` and `X-Amz-X509-Chain`, 9.3 KB of `Authorization`. hyper
/// refuses a head once its buffer reaches this size, whatever sizes the reads came in, so
/// the cap needs room above 70 KB. Bodies keep their own limit (`routes::MAX_REQUEST`).
const MAX_HEAD: usize = 96 * 1024;

/// The header time runs only while a head is being read: the `delay` and `slow_body`
/// faults hold answers back for up to 10 minutes, and a keep-alive client waiting for one
/// must not be cut off.
const LIMITS: Limits = Limits {
    header_timeout: Duration::from_secs(30),
    header_clock: HeaderClock::WhileReading,
    stalled_write: Duration::from_secs(30),
    max_buf_size: MAX_HEAD,
};

/// Accepts connections until `shutdown` turns true, then drains them.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Connections {
        limit: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        stopping: shutdown.clone(),
    };
    let server = Arc::new(Server { tls, state });
    // The accept loop, and with it the listener, ends when shutdown starts.
    tokio::select! {
        () = httpd::accept_loop(Listener::Tcp(listener), server, connections.clone()) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
    // Each connection also ends itself once DRAIN_TIMEOUT has passed (see `connection`).
    connections.drained(MAX_CONNECTIONS, DRAIN_TIMEOUT).await;
}

/// What every connection of one emulator shares.
struct Server {
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
}

impl Handler for Server {
    /// The TLS handshake, if any, then HTTP; cut short `DRAIN_TIMEOUT` after shutdown
    /// starts, so that a stop never waits on a request held back by a fault.
    async fn connection<I>(&self, io: I, peer: Peer, stopping: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let drain = drain_ended(stopping.clone());
        let served = async {
            match &self.tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(io)).await {
                        Ok(Ok(stream)) => self.http(stream, peer, stopping).await,
                        Ok(Err(e)) => {
                            tracing::debug!("emulator: TLS handshake with {peer} failed: {e}")
                        }
                        Err(_) => tracing::debug!("emulator: TLS handshake with {peer} timed out"),
                    }
                }
                None => self.http(io, peer, stopping).await,
            }
        };
        tokio::select! {
            () = served => {}
            () = drain => {
                tracing::debug!("emulator: connection with {peer} closed at shutdown");
            }
        }
    }
}

impl Server {
    async fn http<I>(&self, io: I, peer: Peer, stopping: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = &self.state;
        let service =
            hyper::service::service_fn(move |req| async move { route(state, peer, req).await });
        httpd::serve_connection(io, service, &LIMITS, stopping, peer).await;
    }
}

/// Completes `DRAIN_TIMEOUT` after shutdown started (or the emulator went away).
async fn drain_ended(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
    tokio::time::sleep(DRAIN_TIMEOUT).await;
}
