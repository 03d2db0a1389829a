//! The service's CreateSession quota, enforced (`emulate --max-tps N`): at most N requests
//! per account in any one-second window (the emulator serves one region, so the account is
//! the whole key); the rest are answered 429 `ThrottlingException`, with `Retry-After` when
//! configured. Throttled requests do not count against the window, as with the service.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The quota, and the requests inside the current window by account.
#[derive(Debug)]
pub struct Throttle {
    max_per_second: Option<u32>,
    retry_after: Option<u32>,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// How many accounts the throttle tracks before it forgets idle ones.
const MAX_ACCOUNTS: usize = 10_000;

impl Throttle {
    pub fn new(max_per_second: Option<u32>, retry_after: Option<u32>) -> Self {
        Self {
            max_per_second,
            retry_after,
            windows: Mutex::default(),
        }
    }

    /// `Ok` when a request of `account` arriving now is within the quota (and counts it);
    /// otherwise the `Retry-After` seconds to answer with, if any.
    pub fn admit(&self, account: &str) -> Result<(), Option<u32>> {
        let Some(max) = self.max_per_second else {
            return Ok(());
        };
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_ACCOUNTS && !windows.contains_key(account) {
            windows.retain(|_, w| w.back().is_some_and(|&t| now - t < Duration::from_secs(1)));
        }
        let window = windows.entry(account.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() >= max as usize {
            return Err(self.retry_after);
        }
        window.push_back(now);
        Ok(())
    }
}

/// The account of a CreateSession request: from the trust anchor ARN in the query string
/// or the JSON body; empty when neither names one (the request is refused later anyway).
pub fn account_of(query: &str, body: &[u8]) -> String {
    let from_query = crate::sigv4x509::decode_query(query)
        .into_iter()
        .find(|(name, _)| name == "trustAnchorArn")
        .map(|(_, value)| value);
    let arn = from_query.or_else(|| {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()?
            .get("trustAnchorArn")?
            .as_str()
            .map(str::to_owned)
    });
    arn.and_then(|a| a.split(':').nth(4).map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_per_second_and_account() {
        let t = Throttle::new(Some(3), Some(2));
        for _ in 0..3 {
            assert_eq!(t.admit("1"), Ok(()));
        }
        assert_eq!(t.admit("1"), Err(Some(2)));
        assert_eq!(t.admit("2"), Ok(()), "another account has its own quota");
        std::thread::sleep(Duration::from_millis(1010));
        assert_eq!(t.admit("1"), Ok(()));
        assert_eq!(Throttle::new(None, None).admit("1"), Ok(()));
    }

    #[test]
    fn the_account_comes_from_the_trust_anchor_arn() {
        let arn = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/x";
        assert_eq!(
            account_of(
                &format!("trustAnchorArn={}", arn.replace(':', "%3A")),
                b"{}"
            ),
            "111122223333"
        );
        let body = format!(r#"{{"trustAnchorArn":"{arn}"}}"#);
        assert_eq!(account_of("", body.as_bytes()), "111122223333");
        assert_eq!(account_of("", b"not json"), "");
    }
}
