//! Credentials the emulator issued, kept so that STS GetCallerIdentity can check requests
//! signed with them.
//!
//! The store is bounded: expired sessions are evicted first, then the ones that expire
//! soonest, so a load test cannot grow it without limit.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use base64::Engine as _;
use zeroize::Zeroizing;

/// One issued session.
#[derive(Clone)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// Unix seconds.
    pub expiration: i64,
    /// `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`.
    pub assumed_role_arn: String,
    /// `AROA...:<session>`.
    pub assumed_role_id: String,
    pub account: String,
    /// The role of the session: what a trust policy names.
    pub role_arn: String,
    /// Set by CreateSession from the certificate; carried to every session assumed with
    /// this one, and never changed.
    pub source_identity: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("source_identity", &self.source_identity)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Session>,
    by_expiry: BTreeSet<(i64, String)>,
}

/// The bounded store of issued sessions.
pub struct SessionStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl SessionStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `session`, evicting expired sessions (as of `now`) and, when still full, the
    /// ones that expire soonest.
    pub fn insert(&self, session: Session, now: i64) {
        let mut inner = self.lock();
        while let Some(first) = inner.by_expiry.first().cloned() {
            if first.0 > now && inner.by_key.len() < self.capacity {
                break;
            }
            inner.by_expiry.remove(&first);
            inner.by_key.remove(&first.1);
        }
        inner
            .by_expiry
            .insert((session.expiration, session.access_key_id.clone()));
        inner.by_key.insert(session.access_key_id.clone(), session);
    }

    /// The session of an access key id, expired or not (the caller decides).
    pub fn get(&self, access_key_id: &str) -> Option<Session> {
        self.lock().by_key.get(access_key_id).cloned()
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }
}

const UPPER_ALNUM: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Random bytes from the operating system.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// `len` characters of `alphabet`, uniformly (rejection sampling keeps the bias out).
fn random_text(alphabet: &[u8], len: usize) -> Result<String, getrandom::Error> {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes(len * 2)? {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// A new set of secret parts: `ASIA` + 16 uppercase alphanumerics, a 40-character secret
/// key, and a long base64 session token.
pub fn new_credentials() -> Result<(String, Zeroizing<String>, Zeroizing<String>), getrandom::Error>
{
    let access_key_id = format!("ASIA{}", random_text(UPPER_ALNUM, 16)?);
    let secret = Zeroizing::new(random_text(SECRET_ALPHABET, 40)?);
    let token_bytes = Zeroizing::new(random_bytes(240)?);
    let token = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*token_bytes));
    Ok((access_key_id, secret, token))
}

/// The role id AWS shows for a role (`AROA` + 17 characters), stable for one role ARN.
pub fn role_id(role_arn: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(role_arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(UPPER_ALNUM[usize::from(*b) % UPPER_ALNUM.len()]))
        .collect();
    format!("AROA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(key: &str, expiration: i64) -> Session {
        Session {
            access_key_id: key.into(),
            secret_access_key: Zeroizing::new("s".into()),
            session_token: Zeroizing::new("t".into()),
            expiration,
            assumed_role_arn: String::new(),
            assumed_role_id: String::new(),
            account: String::new(),
            role_arn: String::new(),
            source_identity: None,
        }
    }

    #[test]
    fn credentials_have_the_aws_shape() {
        let (id, secret, token) = new_credentials().unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("ASIA"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(secret.len(), 40);
        assert!(token.len() > 300);
        assert_ne!(new_credentials().unwrap().0, id);
        assert!(role_id("arn:aws:iam::1:role/x").starts_with("AROA"));
        assert_eq!(role_id("arn:aws:iam::1:role/x").len(), 21);
    }

    #[test]
    fn store_is_bounded_and_evicts_expired_first() {
        let store = SessionStore::new(2);
        store.insert(session("a", 100), 0);
        store.insert(session("b", 50), 0);
        store.insert(session("c", 200), 0);
        assert_eq!(store.len(), 2);
        assert!(store.get("b").is_none(), "the soonest to expire goes first");
        store.insert(session("d", 300), 150);
        assert!(store.get("a").is_none(), "expired sessions are evicted");
        assert!(store.get("c").is_some() && store.get("d").is_some());
        assert!(!format!("{:?}", store.get("c").unwrap()).contains("secret_access_key"));
    }
}
