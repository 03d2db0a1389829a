//! The signing mechanisms a token offers, and the digest facts signing needs.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use crate::x509::Digest;

/// The signing mechanisms a token offers.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mechanisms {
    /// The token answered; when it did not, every mechanism is tried (a refusal then
    /// shows as `CKR_MECHANISM_INVALID`).
    pub(super) known: bool,
    pub(super) rsa_pkcs: bool,
    /// CKM_SHA256/384/512_RSA_PKCS.
    pub(super) sha_rsa: [bool; 3],
    pub(super) ecdsa: bool,
    /// CKM_ECDSA_SHA256/384/512.
    pub(super) ecdsa_sha: [bool; 3],
}

impl Mechanisms {
    /// The signing mechanisms of the token in `slot`, asked one by one (listing them all
    /// makes the crate log every mechanism it has no name for).
    pub(super) fn of(ctx: &Pkcs11, slot: Slot) -> Self {
        let mut answered = false;
        let mut offers = |kind: MechanismType| match ctx.get_mechanism_info(slot, kind) {
            Ok(info) => {
                answered = true;
                info.sign()
            }
            Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {
                answered = true;
                false
            }
            Err(_) => false,
        };
        let mut found = Self {
            known: false,
            rsa_pkcs: offers(MechanismType::RSA_PKCS),
            sha_rsa: [
                offers(MechanismType::SHA256_RSA_PKCS),
                offers(MechanismType::SHA384_RSA_PKCS),
                offers(MechanismType::SHA512_RSA_PKCS),
            ],
            ecdsa: offers(MechanismType::ECDSA),
            ecdsa_sha: [
                offers(MechanismType::ECDSA_SHA256),
                offers(MechanismType::ECDSA_SHA384),
                offers(MechanismType::ECDSA_SHA512),
            ],
        };
        found.known = answered;
        found
    }

    /// Whether a mechanism may be tried: it is listed, or the token did not answer.
    pub(super) fn offers(&self, listed: bool) -> bool {
        !self.known || listed
    }
}

/// `SHA256` and the like, as in mechanism names.
pub(super) fn digest_name(digest: Digest) -> &'static str {
    match digest {
        Digest::Sha256 => "SHA256",
        Digest::Sha384 => "SHA384",
        Digest::Sha512 => "SHA512",
    }
}

/// The index of `digest` in [`Mechanisms::sha_rsa`] and [`Mechanisms::ecdsa_sha`].
pub(super) fn digest_index(digest: Digest) -> usize {
    match digest {
        Digest::Sha256 => 0,
        Digest::Sha384 => 1,
        Digest::Sha512 => 2,
    }
}

/// The PKCS#1 v1.5 `DigestInfo` prefix of each digest, for `CKM_RSA_PKCS`.
pub(super) fn digest_info(digest: Digest) -> &'static [u8] {
    match digest {
        Digest::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        Digest::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        Digest::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}
