//! One connection: HTTP/1 over the accepted stream, within the server's [`Limits`], until
//! the client closes it or the server stops.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::deadline::LastRequest;
use super::stall::StallLimit;

/// What one server allows each of its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long a client may take to send a request's head; see [`HeaderClock`].
    pub header_timeout: Duration,
    pub header_clock: HeaderClock,
    /// How long an answer may wait for the client to make room for it.
    pub stalled_write: Duration,
    /// The read buffer cap, which bounds the request head (at least 8 KiB).
    pub max_buf_size: usize,
}

/// When the header timeout runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderClock {
    /// From the previous request head (or the connection's opening), with one clock read
    /// per request and one timer per connection: for servers that answer at once, where
    /// it is the cheapest bound on slowloris and idle keep-alive clients alike.
    SinceLastRequest,
    /// Only while a head is being read (hyper's own timer, armed for every request): for
    /// servers whose answers may be held back on purpose for longer than the timeout.
    WhileReading,
}

/// Serves one connection until the client closes it, or until `stopping` turns true and
/// the request under way is answered; `peer` names the client in the logs.
pub async fn serve_connection<I, S, B, P>(
    io: I,
    service: S,
    limits: &Limits,
    mut stopping: watch::Receiver<bool>,
    peer: P,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    P: fmt::Display,
{
    let last_request = Arc::new(LastRequest::new());
    let service = Marked {
        inner: service,
        last_request: last_request.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.max_buf_size(limits.max_buf_size);
    let own_deadline = match limits.header_clock {
        HeaderClock::SinceLastRequest => {
            builder.header_read_timeout(None);
            Some(limits.header_timeout)
        }
        HeaderClock::WhileReading => {
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            None
        }
    };
    let connection = builder.serve_connection(
        TokioIo::new(StallLimit::new(io, limits.stalled_write)),
        service,
    );
    tokio::pin!(connection);
    let deadline = last_request.deadline(own_deadline);
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
                tracing::debug!(%peer, "connection closed: no complete request for {} s", limits.header_timeout.as_secs());
                return;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// The server's service, noting when each request head arrived for the header deadline.
struct Marked<S> {
    inner: S,
    last_request: Arc<LastRequest>,
}

impl<S: Service<R>, R> Service<R> for Marked<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> Self::Future {
        self.last_request.mark();
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const LIMITS: Limits = Limits {
        header_timeout: Duration::from_millis(400),
        header_clock: HeaderClock::SinceLastRequest,
        stalled_write: Duration::from_secs(10),
        max_buf_size: 16 * 1024,
    };

    /// Sends `request` to a server answering "hi", then reads until the server closes;
    /// returns what came and when the close came. `stop` tells the server to stop then.
    async fn exchange(
        limits: Limits,
        request: &[u8],
        stop: Option<Duration>,
    ) -> (String, Duration) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let (stopper, stopping) = watch::channel(false);
        let served = tokio::spawn(async move {
            let hello = hyper::service::service_fn(|_| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi"))))
            });
            serve_connection(server, hello, &limits, stopping, "test").await;
        });
        let started = std::time::Instant::now();
        let stop_later = async {
            if let Some(after) = stop {
                tokio::time::sleep(after).await;
                let _ = stopper.send(true);
            }
        };
        let read = async {
            client.write_all(request).await.unwrap();
            let mut out = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out)).await;
            (
                String::from_utf8_lossy(&out).into_owned(),
                started.elapsed(),
            )
        };
        let ((), answer) = tokio::join!(stop_later, read);
        served.await.unwrap();
        answer
    }

    #[tokio::test]
    async fn an_idle_connection_closes_after_the_header_timeout() {
        let (out, after) = exchange(LIMITS, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("hi"), "{out}");
        assert!(
            (Duration::from_millis(350)..Duration::from_secs(3)).contains(&after),
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn stopping_closes_an_idle_connection_at_once() {
        let limits = Limits {
            header_timeout: Duration::from_secs(30),
            ..LIMITS
        };
        let (out, after) = exchange(
            limits,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            Some(Duration::from_millis(100)),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(after < Duration::from_secs(3), "{after:?}");
    }

    #[tokio::test]
    async fn hypers_header_timer_closes_a_partial_head() {
        let limits = Limits {
            header_clock: HeaderClock::WhileReading,
            ..LIMITS
        };
        let (out, after) = exchange(limits, b"GET / HTTP/1.1\r\nHost:", None).await;
        assert!(!out.contains("200"), "{out}");
        assert!(
            (Duration::from_millis(350)..Duration::from_secs(3)).contains(&after),
            "{after:?}"
        );
    }
}
