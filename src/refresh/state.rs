//! What readers of a refresher see: the published state, the handle they read it through,
//! and when credentials stop being worth handing out.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::credentials::Credentials;

/// Counters and facts about one refresher, for health reports and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub successes: AtomicU64,
    pub transient_failures: AtomicU64,
    pub permanent_failures: AtomicU64,
    /// Unix time at which the last used certificate expires; 0 until known.
    pub certificate_not_after: AtomicI64,
    /// The region whose endpoint issued the credentials served now, when the source
    /// knows it (it changes with regional failover).
    pub region: std::sync::Mutex<Option<String>>,
}

impl Stats {
    /// The region of the credentials served now, if known.
    pub fn region(&self) -> Option<String> {
        self.region
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Seconds until the certificate last used expires, once one has been used.
    pub fn certificate_seconds_left(&self, now: OffsetDateTime) -> Option<i64> {
        let not_after = self.certificate_not_after.load(Ordering::Relaxed);
        (not_after != 0).then(|| not_after - now.unix_timestamp())
    }
}

/// What readers see.
#[derive(Clone, Debug)]
pub enum State {
    /// No credentials yet; the first fetch is under way or being retried.
    Starting { last_error: Option<String> },
    /// Credentials, with when they were received (to know their lifetime).
    Ready {
        credentials: Arc<Credentials>,
        received: OffsetDateTime,
        last_error: Option<String>,
    },
    /// The first fetch failed permanently; the refresher has stopped.
    Stopped { error: String },
}

/// Why a reader gets no credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("credentials are not available yet{}", .0.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotYet(Option<String>),
    #[error("credentials expire too soon to hand out and refreshing them failed: {0}")]
    Stale(String),
    #[error("credentials could not be obtained: {0}")]
    Stopped(String),
}

/// The reading side: cheap to clone, one per listener.
#[derive(Clone, Debug)]
pub struct Handle {
    rx: watch::Receiver<State>,
    stats: Arc<Stats>,
}

impl Handle {
    /// The handle of a refresher that publishes on the sender of `rx`.
    pub(super) fn new(rx: watch::Receiver<State>, stats: Arc<Stats>) -> Self {
        Self { rx, stats }
    }

    /// The credentials to hand out now, if they are still worth handing out.
    pub fn current(&self, now: OffsetDateTime) -> Result<Arc<Credentials>, Unavailable> {
        self.current_with_receipt(now)
            .map(|(credentials, _)| credentials)
    }

    /// Like [`current`](Self::current), with when the credentials were received (IMDS
    /// reports it as `LastUpdated`).
    pub fn current_with_receipt(
        &self,
        now: OffsetDateTime,
    ) -> Result<(Arc<Credentials>, OffsetDateTime), Unavailable> {
        match &*self.rx.borrow() {
            State::Starting { last_error } => Err(Unavailable::NotYet(last_error.clone())),
            State::Stopped { error } => Err(Unavailable::Stopped(error.clone())),
            State::Ready {
                credentials,
                received,
                last_error,
            } => {
                if servable(credentials, *received, now) {
                    Ok((credentials.clone(), *received))
                } else {
                    Err(Unavailable::Stale(
                        last_error
                            .clone()
                            .unwrap_or_else(|| "no refresh has succeeded".into()),
                    ))
                }
            }
        }
    }

    /// Whether `credentials` are the ones published now, for readers that cache what they
    /// derive from them (no lock beyond the channel's, no time arithmetic).
    pub fn holds(&self, credentials: &Arc<Credentials>) -> bool {
        matches!(&*self.rx.borrow(), State::Ready { credentials: c, .. } if Arc::ptr_eq(c, credentials))
    }

    /// The raw state, for health reports.
    pub fn state(&self) -> State {
        self.rx.borrow().clone()
    }

    /// The refresher's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the refresher task is still running (it ends only after a permanent failure
    /// at start, or when every handle is gone); the watchdog pings only while all are.
    pub fn alive(&self) -> bool {
        self.rx.has_changed().is_ok()
    }

    /// Waits until the first fetch has succeeded or failed permanently.
    pub async fn first(&mut self) -> Result<Arc<Credentials>, Unavailable> {
        self.newer_than(None).await
    }

    /// Waits for credentials other than `previous` (any, if `None`): what a writer of the
    /// credentials file needs after each refresh. Fails only when the refresher stopped.
    pub async fn newer_than(
        &mut self,
        previous: Option<&Arc<Credentials>>,
    ) -> Result<Arc<Credentials>, Unavailable> {
        loop {
            match &*self.rx.borrow_and_update() {
                State::Ready { credentials, .. }
                    if previous.is_none_or(|p| !Arc::ptr_eq(p, credentials)) =>
                {
                    return Ok(credentials.clone());
                }
                State::Stopped { error } => return Err(Unavailable::Stopped(error.clone())),
                State::Ready { .. } | State::Starting { .. } => {}
            }
            if self.rx.changed().await.is_err() {
                return Err(Unavailable::Stopped("the refresher ended".into()));
            }
        }
    }
}

#[cfg(any(test, fuzzing))]
impl Handle {
    /// A handle whose state never changes (no refresher behind it), for the fuzz targets
    /// and tests.
    pub(crate) fn fixed(state: State) -> Self {
        let (_tx, rx) = watch::channel(state);
        Self {
            rx,
            stats: Arc::default(),
        }
    }
}

/// The floor of remaining validity below which credentials are not handed out:
/// `min(5 minutes, 10 % of the lifetime)`.
pub fn floor(lifetime: time::Duration) -> time::Duration {
    std::cmp::min(time::Duration::minutes(5), lifetime / 10)
}

fn servable(credentials: &Credentials, received: OffsetDateTime, now: OffsetDateTime) -> bool {
    now < serve_until(credentials, received)
}

/// The instant from which credentials received at `received` are no longer handed out:
/// [`floor`] before they expire.
pub fn serve_until(credentials: &Credentials, received: OffsetDateTime) -> OffsetDateTime {
    credentials.expiration - floor(credentials.expiration - received)
}
