//! The IMDSv2 subset that SDK credential providers use: a session token, the role name and
//! the role's credentials, at the root paths (the JavaScript SDK drops any path prefix of
//! the endpoint, so one listener serves one role).
//!
//! Status codes follow EC2 where SDKs depend on them: 400 for a missing or bad token TTL
//! (SDKs raise it, where a 403/404/405 on the PUT would make them fall back to IMDSv1),
//! 401 for a missing, unknown or expired token, 403 for any request through a proxy
//! (`X-Forwarded-For`), 405 for a wrong method, 404 for everything else, including
//! `security-credentials-extended`, so SDKs fall back to the plain path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::http::{HeaderMap, Method, StatusCode};
use time::OffsetDateTime;

use super::ServedRole;
use super::http::{Reply, unavailable};
use super::metrics::Route;

/// The token TTL header, on the PUT and echoed on replies.
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// The token header on GETs.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// EC2's bounds on a token's lifetime, in seconds.
pub const MAX_TTL: u64 = 21600;

const TOKEN_PATH: &str = "/latest/api/token";
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials";

/// Issued session tokens and their expiry. Bounded: when full, expired tokens go first,
/// then the one that expires soonest, so a client that floods the PUT evicts tokens but
/// cannot grow memory.
pub struct TokenStore {
    tokens: Mutex<HashMap<String, Instant>>,
    capacity: usize,
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
            tokens: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// A new random token valid for `ttl`.
    pub fn issue(&self, ttl: Duration, now: Instant) -> String {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator works");
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() >= self.capacity {
            tokens.retain(|_, expiry| *expiry > now);
        }
        if tokens.len() >= self.capacity
            && let Some(soonest) = tokens
                .iter()
                .min_by_key(|(_, expiry)| **expiry)
                .map(|(t, _)| t.clone())
        {
            tokens.remove(&soonest);
            tracing::debug!("token store full: evicted the token that expires soonest");
        }
        tokens.insert(token.clone(), now + ttl);
        token
    }

    /// The seconds the token has left, or why it is refused.
    pub fn check(&self, token: Option<&str>, now: Instant) -> Result<u64, TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match tokens.get(token) {
            Some(expiry) if *expiry > now => Ok(expiry.duration_since(now).as_secs()),
            Some(_) => {
                tokens.remove(token);
                Err(TokenError::Invalid)
            }
            None => Err(TokenError::Invalid),
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).len()
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
    headers: &HeaderMap,
) -> Reply {
    if headers.contains_key("x-forwarded-for") {
        return Reply::text(StatusCode::FORBIDDEN, "Forbidden");
    }
    let now = Instant::now();
    if path == TOKEN_PATH {
        if method != Method::PUT {
            return Reply::method_not_allowed("PUT");
        }
        return match parse_ttl(headers) {
            Some(ttl) => {
                let token = tokens.issue(Duration::from_secs(ttl), now);
                Reply::text(StatusCode::OK, token).header(TTL_HEADER, ttl.to_string())
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
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    let left = match tokens.check(token, now) {
        Ok(left) => left,
        Err(TokenError::Missing) => {
            return Reply::text(StatusCode::UNAUTHORIZED, "no token provided");
        }
        Err(TokenError::Invalid) => {
            return Reply::text(StatusCode::UNAUTHORIZED, "invalid or expired token");
        }
    };
    let reply = match target {
        None => Reply::text(StatusCode::OK, state.imds_name.clone()),
        Some(_) => match state.handle.current_with_receipt(OffsetDateTime::now_utc()) {
            Ok((credentials, received)) => Reply::bytes(
                StatusCode::OK,
                "text/plain",
                credentials.imds_json(received),
            ),
            Err(why) => unavailable(&role.name, &why),
        },
    };
    reply.header(TTL_HEADER, left.to_string())
}

/// The requested TTL: digits only (no sign, no spaces), 1 to 21600.
fn parse_ttl(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get(TTL_HEADER)?.to_str().ok()?;
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
    fn a_full_store_evicts_the_soonest_expiring_token() {
        let store = TokenStore::new(3);
        let now = Instant::now();
        let short = store.issue(Duration::from_secs(5), now);
        let long: Vec<String> = (0..2)
            .map(|i| store.issue(Duration::from_secs(100 + i), now))
            .collect();
        let newest = store.issue(Duration::from_secs(50), now);
        assert_eq!(store.len(), 3);
        assert_eq!(store.check(Some(&short), now), Err(TokenError::Invalid));
        for token in long.iter().chain([&newest]) {
            assert!(store.check(Some(token), now).is_ok());
        }
    }

    #[test]
    fn ttl_must_be_plain_digits_in_range() {
        let ttl = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(TTL_HEADER, v.parse().unwrap());
            parse_ttl(&headers)
        };
        assert_eq!(ttl("1"), Some(1));
        assert_eq!(ttl("21600"), Some(21600));
        for bad in ["0", "21601", "-1", "+5", " 5", "5s", "", "999999999999"] {
            assert_eq!(ttl(bad), None, "{bad:?}");
        }
        assert_eq!(parse_ttl(&HeaderMap::new()), None);
    }
}
