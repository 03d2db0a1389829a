//! The IMDSv2 subset that SDK credential providers use: a session token, the role name and
//! the role's credentials, at the root paths (the JavaScript SDK drops any path prefix of
//! the endpoint, so one listener serves one role).
//!
//! Status codes follow EC2 where SDKs depend on them: 400 for a missing or bad token TTL
//! (SDKs raise it, where a 403/404/405 on the PUT would make them fall back to IMDSv1),
//! 401 for a missing, unknown or expired token, 403 for any request through a proxy
//! (`X-Forwarded-For`), 405 for a wrong method, 404 for everything else, including
//! `security-credentials-extended`, so SDKs fall back to the plain path.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hyper::http::{HeaderValue, Method, StatusCode};

use super::asked::{Asked, TTL_HEADER};
use super::http::{Reply, unavailable};
use super::metrics::Route;
use super::role::ServedRole;
use crate::refresh::Unavailable;

/// EC2's bounds on a token's lifetime, in seconds.
pub const MAX_TTL: u64 = 21600;

const TOKEN_PATH: &str = "/latest/api/token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials";

/// Issued session tokens and their expiry, bounded in number. When full, the oldest token
/// that was never used goes first, then the oldest used one: a local client flooding the
/// PUT churns only tokens nobody presented, and the SDKs' tokens in use survive. Every
/// operation is O(1) amortised, so a flood costs no scan of the store.
pub struct TokenStore {
    inner: Mutex<Tokens>,
    capacity: usize,
}

struct Entry {
    expiry: Instant,
    used: bool,
}

#[derive(Default)]
struct Tokens {
    map: HashMap<String, Entry>,
    /// Issue order of tokens not used yet; entries for tokens since used or gone are
    /// skipped when popped and dropped by `compact`.
    unused: VecDeque<String>,
    /// First-use order of used tokens, likewise.
    used: VecDeque<String>,
}

impl Tokens {
    /// Removes one token: the oldest unused, else the oldest used.
    fn evict_one(&mut self) {
        for want_used in [false, true] {
            let queue = if want_used {
                &mut self.used
            } else {
                &mut self.unused
            };
            while let Some(token) = queue.pop_front() {
                if self.map.get(&token).is_some_and(|e| e.used == want_used) {
                    self.map.remove(&token);
                    return;
                }
            }
        }
    }

    /// Drops stale queue entries once they outnumber the live tokens, keeping the queues
    /// bounded by the store's size.
    fn compact(&mut self, capacity: usize) {
        if self.unused.len() + self.used.len() > 2 * capacity + 16 {
            let map = &self.map;
            self.unused.retain(|t| map.get(t).is_some_and(|e| !e.used));
            self.used.retain(|t| map.get(t).is_some_and(|e| e.used));
        }
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Invalid,
}

impl TokenStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Tokens::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tokens> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new random token valid for `ttl`.
    pub fn issue(&self, ttl: Duration, now: Instant) -> String {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator works");
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut tokens = self.lock();
        while tokens.map.len() >= self.capacity {
            tokens.evict_one();
        }
        tokens.map.insert(
            token.clone(),
            Entry {
                expiry: now + ttl,
                used: false,
            },
        );
        tokens.unused.push_back(token.clone());
        tokens.compact(self.capacity);
        token
    }

    /// The seconds the token has left, or why it is refused.
    pub fn check(&self, token: Option<&str>, now: Instant) -> Result<u64, TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let mut tokens = self.lock();
        let Some(entry) = tokens.map.get_mut(token) else {
            return Err(TokenError::Invalid);
        };
        if entry.expiry <= now {
            tokens.map.remove(token);
            return Err(TokenError::Invalid);
        }
        let left = entry.expiry.duration_since(now).as_secs();
        if !std::mem::replace(&mut entry.used, true) {
            tokens.used.push_back(token.to_owned());
            tokens.compact(self.capacity);
        }
        Ok(left)
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `path` is one this module answers (everything under `/latest/`).
pub fn owns(path: &str) -> bool {
    path.starts_with("/latest/")
}

/// The metrics label of an IMDS path.
pub fn route(path: &str) -> Route {
    match path.strip_prefix(CREDENTIALS_PATH) {
        _ if path == TOKEN_PATH => Route::Token,
        Some("" | "/") => Route::RoleList,
        Some(_) => Route::Credentials,
        None => Route::Other,
    }
}

/// Answers one IMDS request for `role` (the listener's IMDS role).
pub fn handle(
    role: &ServedRole,
    tokens: &TokenStore,
    method: &Method,
    path: &str,
    asked: &Asked<'_>,
) -> Reply {
    if asked.forwarded_for {
        return Reply::text(StatusCode::FORBIDDEN, "Forbidden");
    }
    let now = Instant::now();
    if path == TOKEN_PATH {
        if method != Method::PUT {
            return Reply::method_not_allowed("PUT");
        }
        return match asked.ttl.and_then(parse_ttl) {
            Some(ttl) => {
                let token = tokens.issue(Duration::from_secs(ttl), now);
                Reply::text(StatusCode::OK, token).header(TTL_HEADER, HeaderValue::from(ttl))
            }
            None => Reply::text(
                StatusCode::BAD_REQUEST,
                "the x-aws-ec2-metadata-token-ttl-seconds header must be a whole number of seconds from 1 to 21600",
            ),
        };
    }
    let Some(rest) = path.strip_prefix(CREDENTIALS_PATH) else {
        return Reply::not_found();
    };
    let state = role.state();
    let target = match rest {
        "" | "/" => None,
        _ => match rest
            .strip_prefix('/')
            .map(|r| r.strip_suffix('/').unwrap_or(r))
        {
            Some(name) if name == state.imds_name => Some(name),
            _ => return Reply::not_found(),
        },
    };
    if method != Method::GET {
        return Reply::method_not_allowed("GET");
    }
    let token = asked.token.and_then(|v| v.to_str().ok());
    let left = match tokens.check(token, now) {
        Ok(left) => left,
        Err(TokenError::Missing) => {
            return Reply::text(StatusCode::UNAUTHORIZED, "no token provided");
        }
        Err(TokenError::Invalid) => {
            return Reply::text(StatusCode::UNAUTHORIZED, "invalid or expired token");
        }
    };
    let reply = match (target, state.documents(SystemTime::now())) {
        // Before the first credentials, as EC2 answers an instance that has no role yet:
        // SDKs then look elsewhere at once instead of retrying.
        (_, Err(why @ Unavailable::NotYet(_))) => not_yet(&role.name, &why),
        (None, _) => Reply::text(StatusCode::OK, state.imds_name.clone()),
        (Some(_), Ok(documents)) => {
            Reply::bytes(StatusCode::OK, "text/plain", documents.imds.clone())
        }
        (Some(_), Err(why)) => unavailable(&role.name, &why),
    };
    reply.header(TTL_HEADER, HeaderValue::from(left))
}

/// 404 with the reason as JSON: the role has no credentials yet.
fn not_yet(role: &str, why: &Unavailable) -> Reply {
    let body = serde_json::json!({
        "Code": "CredentialsNotYetAvailable",
        "Message": format!("role {role}: {why}"),
    });
    Reply::bytes(StatusCode::NOT_FOUND, "application/json", body.to_string())
}

/// The requested TTL: digits only (no sign, no spaces), 1 to 21600.
fn parse_ttl(value: &HeaderValue) -> Option<u64> {
    let text = value.to_str().ok()?;
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ttl: u64 = text.parse().ok()?;
    (1..=MAX_TTL).contains(&ttl).then_some(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_unknown_ones_are_refused() {
        let store = TokenStore::new(8);
        let now = Instant::now();
        let token = store.issue(Duration::from_secs(10), now);
        assert_eq!(store.check(Some(&token), now), Ok(10));
        assert_eq!(
            store.check(Some(&token), now + Duration::from_secs(10)),
            Err(TokenError::Invalid)
        );
        assert_eq!(store.check(Some("nope"), now), Err(TokenError::Invalid));
        assert_eq!(store.check(None, now), Err(TokenError::Missing));
    }

    #[test]
    fn a_flood_of_unused_tokens_never_evicts_one_in_use() {
        let store = TokenStore::new(3);
        let now = Instant::now();
        let in_use = store.issue(Duration::from_secs(60), now);
        assert!(store.check(Some(&in_use), now).is_ok());
        let mut flood = Vec::new();
        for _ in 0..1000 {
            flood.push(store.issue(Duration::from_secs(60), now));
        }
        assert_eq!(store.len(), 3);
        assert!(
            store.check(Some(&in_use), now).is_ok(),
            "the used token survives"
        );
        // The newest unused ones are kept, the oldest went first.
        assert!(store.check(Some(&flood[999]), now).is_ok());
        assert!(store.check(Some(&flood[998]), now).is_ok());
        assert_eq!(store.check(Some(&flood[0]), now), Err(TokenError::Invalid));
        let queued = {
            let tokens = store.lock();
            tokens.unused.len() + tokens.used.len()
        };
        assert!(queued <= 2 * 3 + 16, "queues stay bounded: {queued}");
    }

    #[test]
    fn when_all_are_used_the_oldest_used_goes() {
        let store = TokenStore::new(2);
        let now = Instant::now();
        let first = store.issue(Duration::from_secs(60), now);
        let second = store.issue(Duration::from_secs(60), now);
        for t in [&first, &second] {
            assert!(store.check(Some(t), now).is_ok());
        }
        let third = store.issue(Duration::from_secs(60), now);
        assert_eq!(store.check(Some(&first), now), Err(TokenError::Invalid));
        assert!(store.check(Some(&second), now).is_ok());
        assert!(store.check(Some(&third), now).is_ok());
    }

    #[test]
    fn ttl_must_be_plain_digits_in_range() {
        let ttl = |v: &str| parse_ttl(&HeaderValue::from_str(v).unwrap());
        assert_eq!(ttl("1"), Some(1));
        assert_eq!(ttl("21600"), Some(21600));
        for bad in ["0", "21601", "-1", "+5", " 5", "5s", "", "999999999999"] {
            assert_eq!(ttl(bad), None, "{bad:?}");
        }
    }
}
