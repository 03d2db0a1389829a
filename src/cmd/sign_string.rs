//! `sign-string`: signs the official helper's fixed test string, so that a key (and the
//! way it is stored) can be checked without any network call.

use sha2::{Digest as _, Sha256};

use crate::cli::{DigestArg, FormatArg, SignStringArgs};
use crate::config::{self, Inputs};
use crate::error::Result;
use crate::identity::{Digest, Identity, PublicKey, Signer};

/// The version byte of the test string (`SIGN_STRING_TEST_VERSION` upstream).
const TEST_VERSION: &str = "1";

/// `"AWS Roles Anywhere Credential Helper Signing Test" || "1" || SHA256("IAM RA" || pubkey)`,
/// where the hash is appended as 32 raw bytes. For ML-DSA the official helper appends no
/// hash at all (checked against its signatures), so neither does this.
pub fn fixed_string(public: &PublicKey) -> Vec<u8> {
    let mut out = b"AWS Roles Anywhere Credential Helper Signing Test".to_vec();
    out.extend_from_slice(TEST_VERSION.as_bytes());
    if matches!(public, PublicKey::MlDsa(..)) {
        return out;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"IAM RA");
    hasher.update(public.fingerprint_bytes());
    out.extend_from_slice(&hasher.finalize());
    out
}

pub fn run(args: &SignStringArgs, inputs: &Inputs) -> Result<()> {
    let mut spec = config::from_key_flags(&args.key, inputs)?;
    spec.allow_prompt();
    let now = inputs.clock.now();
    // With a certificate, the whole identity is loaded and checked (key match, validity);
    // with a key alone, as upstream allows, only the key is read (a token key's public
    // half then comes from a certificate or public-key object on the token).
    let key_only = match &spec.token {
        Some(token) => token.certificate.is_none() && spec.certificate.is_none(),
        None => spec.certificate.is_none() && spec.private_key.is_some(),
    };
    let key: Signer = if key_only {
        Signer::load_key_only(&spec, now)?
    } else {
        Identity::load(&spec, now)?.signer().clone()
    };
    let digest = match args.digest {
        DigestArg::Sha256 => Digest::Sha256,
        DigestArg::Sha384 => Digest::Sha384,
        DigestArg::Sha512 => Digest::Sha512,
    };
    tracing::debug!(key = ?key, ?digest, "signing the fixed test string");
    let signature = key.sign(&fixed_string(&key.public_key()), digest)?;
    let hex = hex::encode(&signature);
    match args.format {
        FormatArg::Json => super::print(format!("\"{hex}\"").as_bytes()),
        FormatArg::Text => super::print(hex.as_bytes()),
        FormatArg::Bin => super::print(&signature),
    }
}
