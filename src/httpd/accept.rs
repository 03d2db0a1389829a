//! The accept loop: one per listener, at most a fixed number of connections at once (per
//! [`Connections`], which several listeners may share), each served by its own task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::listener::{Listener, Peer};

/// How long to wait after a failed accept (out of descriptors, most often).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The least time between two warnings about failed accepts.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(60);

/// What every connection of a server shares: the bound on open connections (whose permits
/// also tell when all have closed) and the shutdown signal.
#[derive(Clone)]
pub struct Connections {
    pub limit: Arc<Semaphore>,
    pub stopping: watch::Receiver<bool>,
}

impl Connections {
    /// Waits until all `total` slots of `limit` are free, that is until every connection
    /// has closed, for at most `grace`. False if some were still open then.
    pub async fn drained(&self, total: usize, grace: Duration) -> bool {
        let all = u32::try_from(total).unwrap_or(u32::MAX);
        tokio::time::timeout(grace, self.limit.acquire_many(all))
            .await
            .is_ok()
    }
}

/// What a server does with an accepted connection: whatever comes before HTTP (a TLS
/// handshake), then [`serve_connection`](super::serve_connection) with its routes and
/// limits. `stopping` turns true when the server stops.
pub trait Handler: Send + Sync + 'static {
    fn connection<I>(
        &self,
        io: I,
        peer: Peer,
        stopping: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static;
}

/// Accepts connections until the future is dropped, at most `connections.limit` at once
/// (further clients wait in the kernel's backlog, costing nothing here).
pub async fn accept_loop<H>(listener: Listener, handler: Arc<H>, connections: Connections)
where
    H: Handler + ?Sized,
{
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
                spawn_connection(s, &handler, permit, &connections, Peer::Tcp(peer));
            }),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| {
                spawn_connection(s, &handler, permit, &connections, Peer::Unix);
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

/// Serves the connection on its own task, which gives its slot back when it ends.
fn spawn_connection<I, H>(
    io: I,
    handler: &Arc<H>,
    permit: OwnedSemaphorePermit,
    connections: &Connections,
    peer: Peer,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler + ?Sized,
{
    let handler = handler.clone();
    let stopping = connections.stopping.clone();
    tokio::spawn(async move {
        handler.connection(io, peer, stopping).await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    /// Writes one byte and holds the connection until the client closes it.
    struct Echo;

    impl Handler for Echo {
        async fn connection<I>(&self, mut io: I, _peer: Peer, _stopping: watch::Receiver<bool>)
        where
            I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        {
            let _ = io.write_all(b"!").await;
            let mut rest = Vec::new();
            let _ = io.read_to_end(&mut rest).await;
        }
    }

    async fn greeted(port: u16, wait: Duration) -> Option<TcpStream> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut byte = [0];
        match tokio::time::timeout(wait, stream.read_exact(&mut byte)).await {
            Ok(Ok(_)) => Some(stream),
            _ => None,
        }
    }

    #[tokio::test]
    async fn connections_past_the_bound_wait_for_a_free_slot() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_stop, stopping) = watch::channel(false);
        let connections = Connections {
            limit: Arc::new(Semaphore::new(2)),
            stopping,
        };
        let task = tokio::spawn(accept_loop(
            Listener::Tcp(listener),
            Arc::new(Echo),
            connections.clone(),
        ));
        let first = greeted(port, Duration::from_secs(5)).await.unwrap();
        let _second = greeted(port, Duration::from_secs(5)).await.unwrap();
        // The third waits in the backlog...
        let third = tokio::spawn(greeted(port, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!third.is_finished());
        assert!(!connections.drained(2, Duration::from_millis(100)).await);
        // ... until one closes.
        drop(first);
        assert!(third.await.unwrap().is_some());
        task.abort();
    }
}
