//! Passwords a TPM refused, remembered for the life of the process so that a daemon never
//! sends the same wrong password twice: each wrong attempt counts towards the TPM's
//! dictionary-attack lockout (swtpm and many TPMs lock after a handful), which would then
//! refuse every key of the host, not only this one.
//!
//! Only keyed digests are kept, under a key random to the process, never the password.

use std::sync::{LazyLock, Mutex};

struct Refused {
    key: [u8; 32],
    digests: Vec<[u8; 32]>,
}

static REFUSED: LazyLock<Mutex<Refused>> = LazyLock::new(|| {
    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&getrandom::u64().unwrap_or_default().to_le_bytes());
    }
    Mutex::new(Refused {
        key,
        digests: Vec::new(),
    })
});

fn digest(key: &[u8; 32], object: &[u8], password: &str) -> Option<[u8; 32]> {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(key).ok()?;
    mac.update(
        &u64::try_from(object.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    mac.update(object);
    mac.update(password.as_bytes());
    Some(mac.finalize().into_bytes().into())
}

/// True when the TPM refused `password` for the key `object` (its public area) before.
pub fn contains(object: &[u8], password: &str) -> bool {
    let Ok(refused) = REFUSED.lock() else {
        return false;
    };
    digest(&refused.key, object, password).is_some_and(|d| refused.digests.contains(&d))
}

/// Remembers that the TPM refused `password` for `object`.
pub fn insert(object: &[u8], password: &str) {
    let Ok(mut refused) = REFUSED.lock() else {
        return;
    };
    if let Some(d) = digest(&refused.key, object, password)
        && !refused.digests.contains(&d)
    {
        refused.digests.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_password_is_remembered_per_key() {
        assert!(!contains(b"key-a", "1234"));
        insert(b"key-a", "1234");
        assert!(contains(b"key-a", "1234"));
        assert!(!contains(b"key-b", "1234"));
        assert!(!contains(b"key-a", "12345"));
    }
}
