//! The emulator's shared state: the checked configuration, the caches, the issued sessions,
//! the faults and the request log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;

use super::assume_role::RoleTrust;
use super::chain::{AnchorCerts, BoundedCache, Cert, Crl, ValidPath};
use super::config::{EmulatorConfig, MAX_DURATION, ProfileConfig};
use super::errors::EmulatorError;
use super::faults::Faults;
use super::sessions::SessionStore;
use super::throttle::Throttle;

/// How many CreateSession requests the log keeps (the oldest go first).
const LOG_CAPACITY: usize = 10_000;
/// How many issued sessions STS can check.
const SESSION_CAPACITY: usize = 200_000;
/// Parsed leaves and validated paths kept.
const CACHE_CAPACITY: usize = 4096;

/// A trust anchor ready for path building.
#[derive(Debug)]
pub struct Anchor {
    pub arn: Option<String>,
    pub certs: AnchorCerts,
    pub enabled: bool,
}

/// One CreateSession call as the emulator saw it, for tests that need to know which
/// certificate was used and how many attempts arrived. No secret is kept.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The decimal serial of the `X-Amz-X509` certificate (or, if it could not be parsed,
    /// the serial claimed in `Credential=`).
    pub serial: Option<String>,
    /// The answer's status; 0 when the connection was dropped on purpose.
    pub status: u16,
    /// `X-Amzn-ErrorType` of a refusal.
    pub error_type: Option<String>,
    /// Why it was refused, in detail.
    pub reason: Option<String>,
    /// The injected fault, if any: `drop`, `fail`, `malformed`.
    pub fault: Option<String>,
    /// The raw query string.
    pub query: String,
    /// The body as received (lossy UTF-8).
    pub body: String,
    /// The `SignedHeaders` list of `Authorization`.
    pub signed_headers: Vec<String>,
    /// How many certificates `X-Amz-X509-Chain` held.
    pub chain_len: usize,
    /// `x-amzn-RequestId` of the answer.
    pub request_id: String,
    /// When it arrived (real time, RFC 3339).
    pub received_at: String,
    /// For a request whose signature verified: the string to sign the emulator rebuilt and
    /// the signature, hex-encoded.
    pub verified: Option<VerifiedSignature>,
}

/// What a verified request signature covered, for tests that check it independently.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub string_to_sign: String,
    pub signature_hex: String,
}

/// Everything the request handlers share.
pub struct State {
    pub region: String,
    pub anchors: Vec<Anchor>,
    pub profiles: Vec<ProfileConfig>,
    pub crls: Vec<Arc<Crl>>,
    pub min_duration: u32,
    pub clock: Option<OffsetDateTime>,
    pub max_skew: i64,
    pub faults: Faults,
    pub throttle: Throttle,
    pub sessions: SessionStore,
    /// Who may assume which role with STS AssumeRole.
    pub trust: RoleTrust,
    pub leaves: BoundedCache<Cert>,
    pub paths: BoundedCache<ValidPath>,
    log: Mutex<VecDeque<ReceivedRequest>>,
}

impl State {
    /// Checks a configuration and builds the state. Every certificate and CRL is parsed here
    /// so that a bad file stops the start with a clear message.
    pub fn new(config: &EmulatorConfig) -> Result<Self, EmulatorError> {
        let bad = EmulatorError::Config;
        if config.trust_anchors.is_empty() {
            return Err(bad("at least one trust anchor is needed".into()));
        }
        let mut anchors = Vec::with_capacity(config.trust_anchors.len());
        for a in &config.trust_anchors {
            let certs = AnchorCerts::new(&a.certificates_der).map_err(|e| {
                bad(format!(
                    "trust anchor {}: {e}",
                    a.arn.as_deref().unwrap_or("(any ARN)")
                ))
            })?;
            anchors.push(Anchor {
                arn: a.arn.clone(),
                certs,
                enabled: a.enabled,
            });
        }
        let mut crls = Vec::with_capacity(config.crls_der.len());
        for der in &config.crls_der {
            crls.push(Arc::new(
                Crl::from_der(der).map_err(|e| bad(format!("CRL {e}")))?,
            ));
        }
        for p in &config.profiles {
            if !(config.min_duration_seconds..=MAX_DURATION).contains(&p.duration_seconds) {
                return Err(bad(format!(
                    "profile {}: durationSeconds {} is outside {}..{MAX_DURATION}",
                    p.arn, p.duration_seconds, config.min_duration_seconds
                )));
            }
        }
        for r in &config.roles {
            if let Some(d) = r.duration_seconds
                && !(config.min_duration_seconds..=3600).contains(&d)
            {
                return Err(bad(format!(
                    "role {}: durationSeconds {d} is outside {}..3600 (allowShortSessions lowers the minimum)",
                    r.arn, config.min_duration_seconds
                )));
            }
        }
        if config.min_duration_seconds == 0 || config.min_duration_seconds > MAX_DURATION {
            return Err(bad(format!(
                "the minimum durationSeconds {} is outside 1..{MAX_DURATION}",
                config.min_duration_seconds
            )));
        }
        Ok(Self {
            region: config.region.clone(),
            anchors,
            profiles: config.profiles.clone(),
            crls,
            min_duration: config.min_duration_seconds,
            clock: config.clock,
            max_skew: config.max_skew_seconds,
            faults: Faults::with_expiry_skew(config.expiry_skew_seconds),
            throttle: Throttle::new(config.max_tps, config.throttle_retry_after),
            sessions: SessionStore::new(SESSION_CAPACITY),
            trust: RoleTrust {
                roles: config.roles.clone(),
                min_duration: config.min_duration_seconds,
            },
            leaves: BoundedCache::new(CACHE_CAPACITY),
            paths: BoundedCache::new(CACHE_CAPACITY),
            log: Mutex::new(VecDeque::new()),
        })
    }

    /// The emulator's "now", Unix seconds: the fixed clock when set.
    pub fn now(&self) -> i64 {
        self.clock
            .unwrap_or_else(OffsetDateTime::now_utc)
            .unix_timestamp()
    }

    /// Appends to the request log, dropping the oldest entry when full.
    pub fn record(&self, entry: ReceivedRequest) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// A copy of the request log, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_received(&self) {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
