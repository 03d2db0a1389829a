//! The header deadline counted from the previous request, with one clock read per request
//! and one timer per connection. hyper's own header timeout arms and cancels a timer for
//! every request, which costs more than a daemon's routing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a connection last received a complete request head (or opened), for the header
/// timeout: a client gets `limit` to send each request's head, counted from the previous
/// request, so an idle keep-alive connection and a slowloris both close after it.
pub(super) struct LastRequest {
    opened: Instant,
    /// Milliseconds after `opened`.
    at: AtomicU64,
}

impl LastRequest {
    pub fn new() -> Self {
        Self {
            opened: Instant::now(),
            at: AtomicU64::new(0),
        }
    }

    pub fn mark(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at.store(ms, Ordering::Relaxed);
    }

    fn at(&self) -> Instant {
        self.opened + Duration::from_millis(self.at.load(Ordering::Relaxed))
    }

    /// Completes once `limit` has passed since the last request; sleeps until then, and
    /// again whenever a request arrived meanwhile. Without a limit, never completes.
    pub async fn deadline(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        loop {
            let due = self.at() + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_header_deadline_counts_from_the_last_request() {
        let last = LastRequest::new();
        let started = Instant::now();
        let deadline = last.deadline(Some(Duration::from_millis(300)));
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
    async fn without_a_limit_there_is_no_deadline() {
        let last = LastRequest::new();
        let ended = tokio::time::timeout(Duration::from_millis(300), last.deadline(None)).await;
        assert!(ended.is_err());
    }
}
