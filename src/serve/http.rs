//! The HTTP side of the daemon: listeners (TCP with the reply hop limit, or sockets passed
//! by systemd, TCP or Unix), connections bounded in number and in header time, graceful
//! shutdown, and the small reply type the route modules build.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::http::{HeaderValue, Response, StatusCode};
use hyper::{Request, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::refresh::Unavailable;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection read buffer cap: requests here are a few hundred bytes, and a small cap
/// keeps a thousand idle connections cheap.
const MAX_BUF_SIZE: usize = 16 * 1024;

/// What answers requests on a listener.
pub trait Routes: Send + Sync + 'static {
    fn answer(&self, request: &Request<Incoming>) -> Reply;
}

/// A response under construction.
pub struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self::bytes(status, "text/plain", body.into())
    }

    pub fn not_found() -> Self {
        Self::text(StatusCode::NOT_FOUND, "Not Found")
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
            .header("allow", allow.to_owned())
    }

    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// 503 with a JSON `Code`/`Message` body: SDKs retry a 5xx, and the Rust SDK shows the
/// message. The message says why (the last CreateSession error), never a secret.
pub fn unavailable(role: &str, why: &Unavailable) -> Reply {
    let body = serde_json::json!({
        "Code": "CredentialsUnavailable",
        "Message": format!("role {role}: {why}"),
    });
    Reply::bytes(
        StatusCode::SERVICE_UNAVAILABLE,
        "application/json",
        body.to_string(),
    )
}

/// A listening socket of either kind.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The local TCP address, if a TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(_) => None,
        }
    }
}

/// Listens on `addr` with the IP TTL (IPv4) or unicast hop limit (IPv6) of every reply
/// packet set to `hops`, as `--hop-limit` asks (1 keeps replies from crossing a router,
/// EC2's IMDSv2 default for containers). Set on the listening socket, it covers the
/// SYN-ACK too, and accepted connections inherit it at no cost per connection.
pub fn bind(addr: SocketAddr, hops: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_unicast_hops_v6(hops)?;
        // IPv4 clients of a dual-stack socket bound to [::] reply over IPv4.
        let _ = socket.set_ttl_v4(hops);
    } else {
        socket.set_ttl_v4(hops)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// What every connection of a daemon shares: the bound on open connections (whose permits
/// also tell when all have closed) and the shutdown signal.
#[derive(Clone)]
pub struct Connections {
    pub limit: Arc<Semaphore>,
    pub stopping: watch::Receiver<bool>,
}

/// Accepts connections until the task is dropped, at most `limit` at once (further
/// clients wait in the kernel's backlog, costing nothing here).
pub async fn accept_loop(listener: Listener, routes: Arc<dyn Routes>, connections: Connections) {
    loop {
        let Ok(permit) = connections.limit.clone().acquire_owned().await else {
            return;
        };
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, peer)| {
                spawn_connection(
                    s,
                    routes.clone(),
                    permit,
                    connections.stopping.clone(),
                    peer.to_string(),
                )
            }),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| {
                spawn_connection(
                    s,
                    routes.clone(),
                    permit,
                    connections.stopping.clone(),
                    "unix".into(),
                )
            }),
        };
        if let Err(e) = accepted {
            // Running out of descriptors is transient; back off instead of spinning.
            tracing::warn!(error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn spawn_connection<I>(
    io: I,
    routes: Arc<dyn Routes>,
    permit: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
    peer: String,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let reply = routes.answer(&request);
            async move { Ok::<_, Infallible>(reply.into_response()) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_BUF_SIZE)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let result = if *stopping.borrow_and_update() {
            connection.as_mut().graceful_shutdown();
            connection.await
        } else {
            tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    // Finish the request under way, then close; idle connections close now.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
        drop(permit);
    });
}
