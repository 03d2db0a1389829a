//! The HTTP side of the daemon: listeners (TCP with the reply hop limit, or sockets passed
//! by systemd, TCP or Unix), connections bounded in number, in header time and in how long
//! an answer may wait for its reader, graceful shutdown, and the small reply type the route
//! modules build.

use std::convert::Infallible;
use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::refresh::Unavailable;

/// How long a client may take to send a request's head, counted from the previous one.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an answer may wait for the client to make room for it: a client that sends
/// requests but never reads the answers would otherwise hold its connection, and one of
/// the `--max-connections` slots, for ever (the header timeout does not run while an answer
/// is being written).
const STALLED_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after a failed accept (out of descriptors, most often).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The least time between two warnings about failed accepts.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(60);
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
    body: Bytes,
    headers: HeaderMap,
}

impl Reply {
    pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Self {
            status,
            body: body.into(),
            headers,
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
            .header(header::ALLOW, HeaderValue::from_static(allow))
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
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
    // Failed accepts since the last warning, and when that was.
    let mut failed: u64 = 0;
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let Ok(permit) = connections.limit.clone().acquire_owned().await else {
            return;
        };
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, peer)| {
                // Each answer is one write; send it at once rather than after the client's
                // delayed acknowledgement of a previous one.
                let _ = s.set_nodelay(true);
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
            // Running out of descriptors is transient; back off instead of spinning, and say
            // so at most once a minute: a flood that holds every descriptor would otherwise
            // write ten lines a second for as long as it lasts.
            failed += 1;
            if warned.is_none_or(|at| at.elapsed() >= ACCEPT_WARNING_EVERY) {
                tracing::warn!(
                    error = %e,
                    failed,
                    "accept failed; retrying every 100 ms (once a minute at most in this log)"
                );
                failed = 0;
                warned = Some(tokio::time::Instant::now());
            }
            tokio::time::sleep(ACCEPT_RETRY).await;
        }
    }
}

fn spawn_connection<I>(
    io: I,
    routes: Arc<dyn Routes>,
    permit: OwnedSemaphorePermit,
    stopping: watch::Receiver<bool>,
    peer: String,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        serve_connection(io, routes, stopping, &peer).await;
        drop(permit);
    });
}

/// Serves one connection until the client closes it, or until `stopping` turns true and
/// the request under way is answered.
pub(crate) async fn serve_connection<I>(
    io: I,
    routes: Arc<dyn Routes>,
    mut stopping: watch::Receiver<bool>,
    peer: &str,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let last_request = Arc::new(LastRequest::new());
    let marker = last_request.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        marker.mark();
        let reply = routes.answer(&request);
        async move { Ok::<_, Infallible>(reply.into_response()) }
    });
    // No hyper timer: its header timeout arms and cancels a timer for every request, which
    // cost more than the routing. `LastRequest` enforces the same bound with one clock read
    // per request and one timer per connection.
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .max_buf_size(MAX_BUF_SIZE)
        .serve_connection(
            TokioIo::new(StallLimit::new(io, STALLED_WRITE_TIMEOUT)),
            service,
        );
    tokio::pin!(connection);
    let deadline = last_request.deadline(HEADER_READ_TIMEOUT);
    tokio::pin!(deadline);
    let mut stopped = *stopping.borrow_and_update();
    if stopped {
        connection.as_mut().graceful_shutdown();
    }
    let result = loop {
        tokio::select! {
            // In this order, without the random pick: the connection is polled far more often.
            biased;
            result = connection.as_mut() => break result,
            _ = stopping.changed(), if !stopped => {
                // Finish the request under way, then close; idle connections close now.
                stopped = true;
                connection.as_mut().graceful_shutdown();
            }
            () = deadline.as_mut() => {
                // Dropping the connection closes it, with nothing sent for a partial request.
                tracing::debug!(%peer, "connection closed: no complete request for {} s", HEADER_READ_TIMEOUT.as_secs());
                return;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// When a connection last received a complete request head (or opened), for the header
/// timeout: a client gets `limit` to send each request's head, counted from the previous
/// request, so an idle keep-alive connection and a slowloris both close after it.
struct LastRequest {
    opened: Instant,
    /// Milliseconds after `opened`.
    at: AtomicU64,
}

impl LastRequest {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            at: AtomicU64::new(0),
        }
    }

    fn mark(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at.store(ms, Ordering::Relaxed);
    }

    fn at(&self) -> Instant {
        self.opened + Duration::from_millis(self.at.load(Ordering::Relaxed))
    }

    /// Completes once `limit` has passed since the last request; sleeps until then, and
    /// again whenever a request arrived meanwhile.
    async fn deadline(&self, limit: Duration) {
        loop {
            let due = self.at() + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// A connection whose writes fail once one has made no progress for `limit`, so that hyper
/// drops a client that stopped reading. Any progress restarts the clock, as nginx's
/// `send_timeout` does; reads are untouched (the header timeout bounds those).
struct StallLimit<I> {
    io: I,
    limit: Duration,
    /// Running while a write or flush waits for room.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> StallLimit<I> {
    fn new(io: I, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    /// Passes a ready result through (and stops the clock); on `Pending`, starts the clock
    /// or fails once it has run out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if clock.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing of its answer for {} s",
                    limit.as_secs()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallLimit<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallLimit<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit() {
        let (near, _far) = tokio::io::duplex(64);
        let mut limited = StallLimit::new(near, Duration::from_millis(200));
        limited.write_all(&[1; 64]).await.unwrap();
        let started = std::time::Instant::now();
        let error = limited.write_all(&[2; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            (Duration::from_millis(200)..Duration::from_secs(2)).contains(&waited),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn the_header_deadline_counts_from_the_last_request() {
        let last = LastRequest::new();
        let started = Instant::now();
        let deadline = last.deadline(Duration::from_millis(300));
        tokio::pin!(deadline);
        tokio::select! {
            () = &mut deadline => panic!("the deadline passed before its time"),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        // A request at 200 ms moves the end to 500 ms.
        last.mark();
        deadline.await;
        let waited = started.elapsed();
        assert!(
            (Duration::from_millis(450)..Duration::from_secs(3)).contains(&waited),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut limited = StallLimit::new(near, Duration::from_millis(300));
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 16];
            while got < 160 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                got += far.read(&mut buf).await.unwrap();
            }
            got
        });
        // Ten times the buffer, each part waiting about 100 ms for room: 1 s in all, more
        // than three times the limit.
        limited.write_all(&[3; 160]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 160);
    }
}
