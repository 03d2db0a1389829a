//! The error of loading an identity, from files or from a token: a line a user can act on,
//! and a kind that tells a daemon whether waiting may cure it.
//!
//! The daemon loads its identity again at every refresh. A failure that may go away by
//! itself (a key file on a mount that comes up late, a token not yet plugged in) is worth
//! retrying with backoff; one that needs a person (a wrong password, a key that does not
//! match its certificate) is not, and stopping with the message says so sooner. The
//! [`ErrorKind`] of each error decides which, so that no caller parses the text.

use crate::x509::CertificateError;

/// What went wrong, in the classes that decide retrying. See [`ErrorKind::is_transient`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A certificate, key, chain or PIN file that does not exist or cannot be read now
    /// (`NotFound`, `PermissionDenied`): a mount that comes late, a file being renewed or a
    /// permission fixed may cure it ([`crate::files::may_pass`]).
    Unavailable,
    /// A certificate that is not valid yet: the clock passing its notBefore cures it
    /// (a certificate issued seconds ago to a host whose clock lags a little).
    NotYetValid,
    /// No token matches, or the module cannot be initialised: the token may be plugged
    /// in, or the device or service behind the module come up, later. Also a TPM device
    /// that does not exist (yet: a driver loading at boot, swtpm starting).
    TokenAbsent,
    /// The token holds no certificate or key that matches: the module may not see the
    /// objects yet (a token being provisioned, or re-created under a running process).
    ObjectAbsent,
    /// A PKCS#11 call failed on the device: a session that cannot be opened, a token
    /// removed mid-way, a device error. Re-opening the session later may succeed. Also a
    /// TPM that fails or stays busy (`TPM_RC_RETRY` beyond the retries of one command).
    Device,
    /// A path that leads to no usable file: not a regular file (a device, a FIFO, a
    /// directory), larger than any such file is, or unreadable for a reason other than
    /// absence or permission (a loop of symbolic links, an I/O error). The wrong path, or
    /// a fault that needs a person, stays so.
    NotAFile,
    /// Content that cannot be read as what it should be: bad PEM or DER, an empty file, a
    /// file without the certificate or key it should hold.
    Malformed,
    /// A well-formed key or certificate of a kind the service or this helper does not
    /// take: an algorithm, curve, key size or key encryption scheme.
    Unsupported,
    /// The password of a key or PKCS#12 file is missing, wrong, or given for a key that
    /// has none; or a TPM refused a key's password (or is in lockout): each wrong attempt
    /// counts towards the TPM's lockout, so it is never retried.
    Password,
    /// The private key does not belong to the certificate.
    Mismatch,
    /// A certificate the service would refuse: a CA certificate as leaf, a keyUsage
    /// without digitalSignature, an expired certificate, a chain that is too long.
    Refused,
    /// A file holding a secret that other accounts can read (mode o+r).
    Exposed,
    /// The token refused the PIN or the login (incorrect, locked, not acceptable), or the
    /// PIN was refused before and is not sent again: each attempt counts towards locking.
    PinRefused,
    /// Flags or URIs that cannot work: a missing flag, a URI of the wrong type or one that
    /// matches several objects, a module that cannot be loaded, no PIN source.
    Usage,
}

impl ErrorKind {
    /// True when the failure may go away without anyone changing the configuration or
    /// the files, so that a daemon should retry rather than stop. Only absence is: of a
    /// file, a token, an object, a working device, or of the time a certificate starts.
    /// Everything malformed or refused stays so until a person acts.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Unavailable
                | Self::NotYetValid
                | Self::TokenAbsent
                | Self::ObjectAbsent
                | Self::Device
        )
    }
}

/// An error a user can act on: which input, what is wrong with it, what to do. It reads
/// as one line, `"{input} {problem}; {fix}"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} {problem}; {fix}")]
pub struct IdentityError {
    kind: ErrorKind,
    input: String,
    problem: String,
    fix: String,
}

impl IdentityError {
    pub fn new(
        kind: ErrorKind,
        input: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            input: input.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when retrying later may succeed; see [`ErrorKind::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

impl From<&CertificateError> for ErrorKind {
    /// A certificate whose key the service does not take is [`ErrorKind::Unsupported`];
    /// one that does not parse is [`ErrorKind::Malformed`].
    fn from(error: &CertificateError) -> Self {
        match error {
            CertificateError::UnsupportedKey(_) => Self::Unsupported,
            CertificateError::Parse(_)
            | CertificateError::TrailingData
            | CertificateError::BadKey(_) => Self::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_unchanged_by_the_kind() {
        let error = IdentityError::new(
            ErrorKind::Unavailable,
            "certificate /x",
            "does not exist",
            "check the --certificate path",
        );
        assert_eq!(
            error.to_string(),
            "certificate /x does not exist; check the --certificate path"
        );
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn only_absence_is_transient() {
        for kind in [
            ErrorKind::Unavailable,
            ErrorKind::NotYetValid,
            ErrorKind::TokenAbsent,
            ErrorKind::ObjectAbsent,
            ErrorKind::Device,
        ] {
            assert!(kind.is_transient(), "{kind:?}");
        }
        for kind in [
            ErrorKind::NotAFile,
            ErrorKind::Malformed,
            ErrorKind::Unsupported,
            ErrorKind::Password,
            ErrorKind::Mismatch,
            ErrorKind::Refused,
            ErrorKind::Exposed,
            ErrorKind::PinRefused,
            ErrorKind::Usage,
        ] {
            assert!(!kind.is_transient(), "{kind:?}");
        }
    }
}
