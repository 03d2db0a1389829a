//! The HTTP side of the daemon: its limits on the shared server of [`crate::httpd`]
//! (listeners, the accept loop, connection bounds, graceful shutdown), the route interface,
//! and the small reply type the route modules build.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use hyper::{Request, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

pub use crate::httpd::{Connections, Listener, bind};
use crate::httpd::{Handler, HeaderClock, Limits, Peer};
use crate::refresh::Unavailable;

/// What each connection of the daemon may take. A client gets 10 s to send each request's
/// head, counted from the previous one (answers here take microseconds), and an answer
/// waits at most 10 s for the client to make room for it: a client that sends requests
/// but never reads would otherwise hold one of the `--max-connections` slots for ever. The
/// read buffer is capped at 16 KiB: requests here are a few hundred bytes, and a small cap
/// keeps a thousand idle connections cheap. The daemon socket keeps to the same time limits.
pub(crate) const LIMITS: Limits = Limits {
    header_timeout: Duration::from_secs(10),
    header_clock: HeaderClock::SinceLastRequest,
    stalled_write: Duration::from_secs(10),
    max_buf_size: 16 * 1024,
};

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

/// Accepts connections until the task is dropped, at most `connections.limit` at once
/// (further clients wait in the kernel's backlog, costing nothing here).
pub async fn accept_loop(listener: Listener, routes: Arc<dyn Routes>, connections: Connections) {
    crate::httpd::accept_loop(listener, routes, connections).await;
}

impl Handler for dyn Routes {
    fn connection<I>(
        &self,
        io: I,
        peer: Peer,
        stopping: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_routes(io, self, stopping, peer)
    }
}

/// Serves one connection until the client closes it, or until `stopping` turns true and
/// the request under way is answered.
#[cfg(fuzzing)]
pub(crate) async fn serve_connection<I>(
    io: I,
    routes: Arc<dyn Routes>,
    stopping: watch::Receiver<bool>,
    peer: &str,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_routes(io, &*routes, stopping, peer).await;
}

/// One connection, answered by `routes` with the daemon's limits.
fn serve_routes<'a, I, P>(
    io: I,
    routes: &'a dyn Routes,
    stopping: watch::Receiver<bool>,
    peer: P,
) -> impl Future<Output = ()> + Send + 'a
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: fmt::Display + Send + 'a,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let reply = routes.answer(&request);
        async move { Ok::<_, Infallible>(reply.into_response()) }
    });
    crate::httpd::serve_connection(io, service, &LIMITS, stopping, peer)
}
