//! Regional failover: a source over the same role in several regions. The active region
//! is used until its endpoint has failed `after` times in a row with transient errors (not
//! throttling, which is the quota's answer, not an outage); then the next region is tried at
//! once. While another region is active, every fetch tries the primary first, so that the
//! role returns to it as soon as it answers; its calls are paced by the active region's
//! bucket. Credentials from any region are the same kind
//! of credentials for the SDKs; the log says which region serves.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use super::source::{CredentialSource, FetchError, Fetched};

/// One region: its name and its source.
pub struct Region {
    pub name: String,
    pub source: Arc<dyn CredentialSource>,
}

/// The sources of one role in its regions, the primary first.
pub struct FailoverSource {
    role: String,
    regions: Vec<Region>,
    after: u32,
    state: Mutex<Active>,
}

#[derive(Default)]
struct Active {
    index: usize,
    failures: u32,
}

impl FailoverSource {
    /// `regions` holds the primary first; `after` is at least 1.
    pub fn new(role: String, regions: Vec<Region>, after: u32) -> Self {
        Self {
            role,
            regions,
            after: after.max(1),
            state: Mutex::default(),
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, Active> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The region whose credentials are served now.
    pub fn active_region(&self) -> &str {
        let index = self
            .active()
            .index
            .min(self.regions.len().saturating_sub(1));
        self.regions.get(index).map_or("", |r| r.name.as_str())
    }
}

impl CredentialSource for FailoverSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
        Box::pin(async move {
            let Some(primary) = self.regions.first() else {
                return Err(FetchError::Task("no region to fetch from".into()));
            };
            let mut index = self.active().index;
            if index != 0
                && let Ok(fetched) = primary.source.fetch().await
            {
                *self.active() = Active::default();
                tracing::warn!(role = %self.role, region = %primary.name, "the primary region answers again; serving from it");
                return Ok(fetched);
            }
            loop {
                let region = &self.regions[index];
                let error = match region.source.fetch().await {
                    Ok(fetched) => {
                        self.active().failures = 0;
                        if index != 0 {
                            tracing::info!(role = %self.role, region = %region.name, "credentials from a failover region");
                        }
                        return Ok(fetched);
                    }
                    Err(error) => error,
                };
                if !error.is_transient() || error.is_throttling() {
                    return Err(error);
                }
                let mut active = self.active();
                active.failures += 1;
                if active.failures < self.after || index + 1 >= self.regions.len() {
                    return Err(error);
                }
                index += 1;
                *active = Active { index, failures: 0 };
                drop(active);
                tracing::warn!(role = %self.role, from = %region.name, to = %self.regions[index].name, failures = self.after, error = %error, "region failing; switching to the next region");
            }
        })
    }

    fn region(&self) -> Option<String> {
        Some(self.active_region().to_owned())
    }

    /// The active region's: its calls count against that region's quota, and its
    /// throttling says nothing about the primary's.
    fn quota_key(&self) -> String {
        let index = self.active().index;
        self.regions
            .get(index)
            .or(self.regions.first())
            .map(|r| r.source.quota_key())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A region's source that fails (503) while `down`.
    struct Endpoint {
        key: &'static str,
        down: AtomicBool,
    }

    impl CredentialSource for Endpoint {
        fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + '_>> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Err(super::super::source::refused(503, "ServiceUnavailable"));
                }
                let expiration = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
                Ok(super::super::source::expiring(self.key, expiration))
            })
        }

        fn quota_key(&self) -> String {
            self.key.into()
        }
    }

    #[tokio::test]
    async fn calls_count_against_the_active_regions_quota() {
        let primary = Arc::new(Endpoint {
            key: "111122223333/us-east-1",
            down: AtomicBool::new(true),
        });
        let second = Arc::new(Endpoint {
            key: "111122223333/us-west-2",
            down: AtomicBool::new(false),
        });
        let source = FailoverSource::new(
            "r".into(),
            vec![
                Region {
                    name: "us-east-1".into(),
                    source: primary.clone(),
                },
                Region {
                    name: "us-west-2".into(),
                    source: second,
                },
            ],
            2,
        );
        assert_eq!(source.quota_key(), "111122223333/us-east-1");
        assert!(source.fetch().await.is_err(), "one failure does not switch");
        let fetched = source.fetch().await.unwrap();
        assert_eq!(fetched.credentials.access_key_id, "111122223333/us-west-2");
        assert_eq!(source.quota_key(), "111122223333/us-west-2");
        assert_eq!(source.region().as_deref(), Some("us-west-2"));
        primary.down.store(false, Ordering::SeqCst);
        source.fetch().await.unwrap();
        assert_eq!(source.quota_key(), "111122223333/us-east-1");
    }
}
