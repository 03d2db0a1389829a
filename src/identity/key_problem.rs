//! What can be wrong with the bytes of a private key, before the file is named.

use std::path::Path;

use crate::identity_error::{ErrorKind, IdentityError};
use crate::input_file::Role;
use crate::x509::key::MIN_RSA_BITS;

/// What went wrong with key bytes, before the file name is attached.
#[derive(Debug)]
pub(super) enum KeyProblem {
    Unsupported(String),
    Malformed(String),
    WeakRsa(usize),
    Curve(String),
    /// An EC key whose curve is spelled out as parameters instead of named by OID.
    ExplicitCurve,
    PasswordNeeded,
    PasswordNotNeeded,
    WrongPassword,
    Encryption(String),
}

impl KeyProblem {
    /// The kind of error this problem is: only a password can be set right without
    /// changing the file, and none of them passes by itself.
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Malformed(_) => ErrorKind::Malformed,
            Self::PasswordNeeded | Self::PasswordNotNeeded | Self::WrongPassword => {
                ErrorKind::Password
            }
            Self::Unsupported(_)
            | Self::WeakRsa(_)
            | Self::Curve(_)
            | Self::ExplicitCurve
            | Self::Encryption(_) => ErrorKind::Unsupported,
        }
    }

    /// The error about the file at `path`, in `role`, that holds the key.
    pub(super) fn into_error(self, role: Role, path: &Path) -> IdentityError {
        let kind = self.kind();
        let (problem, fix): (String, String) = match self {
            Self::Unsupported(what) => (format!("holds {what}, which is not a supported key"), "use an RSA (2048 bits or more), EC P-256/P-384/P-521 or ML-DSA key".into()),
            Self::Malformed(why) => (format!("is not a readable private key ({why})"), "give a PEM or DER key in PKCS#8, PKCS#1 or SEC1 form".into()),
            Self::WeakRsa(bits) => (format!("holds an RSA key of {bits} bits, which is too short"), format!("use an RSA key of at least {MIN_RSA_BITS} bits, or EC P-256")),
            Self::Curve(name) => (format!("holds an EC key on curve {name}, which is not supported"), "use an EC key on P-256, P-384 or P-521".into()),
            Self::ExplicitCurve => ("holds an EC key with explicit curve parameters instead of a named curve, which is not supported".into(), "convert it with: openssl ec -in OLD -param_enc named_curve -out NEW".into()),
            Self::PasswordNeeded => ("holds an encrypted key and no password was given".into(), "give it with --pkcs8-password-file, $ROLESANYWHERE_PKCS8_PASSWORD or --pkcs8-password".into()),
            Self::PasswordNotNeeded => ("is not encrypted, but a password was given".into(), "remove --pkcs8-password, --pkcs8-password-file and $ROLESANYWHERE_PKCS8_PASSWORD".into()),
            Self::WrongPassword => ("could not be decrypted: the password is wrong".into(), "check the password".into()),
            Self::Encryption(what) => (format!("is encrypted with {what}, which is not supported"), "re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc".into()),
        };
        role.error(kind, path, problem, fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No problem with a key's bytes passes by itself; each keeps the text it had.
    #[test]
    fn key_problems_are_permanent() {
        let path = Path::new("/k.pem");
        let cases = [
            (
                KeyProblem::WrongPassword,
                ErrorKind::Password,
                "private key /k.pem could not be decrypted: the password is wrong; check the password",
            ),
            (
                KeyProblem::PasswordNeeded,
                ErrorKind::Password,
                "private key /k.pem holds an encrypted key and no password was given; give it with --pkcs8-password-file, $ROLESANYWHERE_PKCS8_PASSWORD or --pkcs8-password",
            ),
            (
                KeyProblem::Malformed("bad".into()),
                ErrorKind::Malformed,
                "private key /k.pem is not a readable private key (bad); give a PEM or DER key in PKCS#8, PKCS#1 or SEC1 form",
            ),
            (
                KeyProblem::WeakRsa(1024),
                ErrorKind::Unsupported,
                "private key /k.pem holds an RSA key of 1024 bits, which is too short; use an RSA key of at least 2048 bits, or EC P-256",
            ),
            (
                KeyProblem::Curve("secp256k1".into()),
                ErrorKind::Unsupported,
                "private key /k.pem holds an EC key on curve secp256k1, which is not supported; use an EC key on P-256, P-384 or P-521",
            ),
        ];
        for (problem, kind, text) in cases {
            let error = problem.into_error(Role::PrivateKey, path);
            assert_eq!(error.to_string(), text);
            assert_eq!(error.kind(), kind);
            assert!(!error.is_transient(), "{error}");
        }
    }
}
