//! The files an identity is read from (certificate, private key, intermediates, password):
//! what each is for, reading one within limits, and the guard on files that hold a secret.
//!
//! Every error about such a file reads "{role} {path} {problem}; {fix}", e.g. "certificate
//! /dev/zero is a character device, not a regular file; give the certificate file", since
//! a wrong path or format is the most common first-run failure.

use std::io;
use std::path::Path;

use zeroize::Zeroizing;

use crate::files::{self, MAX_IDENTITY_FILE};
use crate::identity_error::{ErrorKind, IdentityError};

/// What a file is for, named in every error about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Certificate,
    PrivateKey,
    Intermediates,
    PasswordFile,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::PrivateKey => "private key",
            Self::Intermediates => "intermediates bundle",
            Self::PasswordFile => "password file",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Self::Certificate => "--certificate",
            Self::PrivateKey => "--private-key",
            Self::Intermediates => "--intermediates",
            Self::PasswordFile => "--pkcs8-password-file",
        }
    }

    /// An error of `kind` about the file at `path` in this role.
    pub fn error(
        self,
        kind: ErrorKind,
        path: &Path,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> IdentityError {
        IdentityError::new(
            kind,
            format!("{} {}", self.noun(), path.display()),
            problem,
            fix,
        )
    }
}

/// An error about what one input file holds ([`ErrorKind::Malformed`]); [`Role::error`]
/// gives the other kinds.
pub fn file_error(
    role: Role,
    path: &Path,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> IdentityError {
    role.error(ErrorKind::Malformed, path, problem, fix)
}

/// What to do about a file holding a private key (or its password) that group or others
/// can read: such a key is as good as shared with every local account that can read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readable {
    /// Refuse it, saying how to fix the mode (the default).
    #[default]
    Refuse,
    /// Use it, with a warning (`--allow-readable-key-files`).
    Warn,
}

/// Checks that the secret-bearing file at `path` is readable by its owner only.
pub fn guard_secret(role: Role, path: &Path, policy: Readable) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        // The read that follows reports a missing or unreadable file in its own words.
        return Ok(());
    };
    if !meta.is_file() && role != Role::PasswordFile {
        // So does it a device, FIFO or directory given as a certificate or key ("is a
        // character device, not a regular file"), which says more than its mode would.
        // A password file may be a pipe on purpose, and is guarded whatever it is.
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o044 == 0 {
        return Ok(());
    }
    match policy {
        Readable::Warn => {
            tracing::warn!(file = %path.display(), mode = %format!("{mode:04o}"), "this {} can be read by group or others", role.noun());
            Ok(())
        }
        Readable::Refuse => Err(role.error(
            ErrorKind::Exposed,
            path,
            format!("holds a secret but can be read by group or others (mode {mode:04o})"),
            format!(
                "make it private with: chmod 600 {} (or pass --allow-readable-key-files to use it anyway)",
                path.display()
            ),
        )),
    }
}

/// Reads a whole certificate, key, intermediates or PKCS#12 file, at most
/// [`MAX_IDENTITY_FILE`] bytes and only if it is a regular file (so that `/dev/zero` or a
/// FIFO given by mistake is an error, not a read that never ends), with the common
/// mistakes (missing, a directory, empty) reported in words. The bytes are zeroized on
/// drop since key files hold secrets.
pub fn read(role: Role, path: &Path) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let bytes =
        files::read_regular(path, MAX_IDENTITY_FILE).map_err(|e| read_error(role, path, &e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(file_error(
            role,
            path,
            "is empty",
            format!(
                "write the {} into it, or point {} at the right file",
                role.noun(),
                role.flag()
            ),
        ));
    }
    Ok(bytes)
}

/// The error of [`files::read_regular`] about `path`, worded for its role.
fn read_error(role: Role, path: &Path, error: &io::Error) -> IdentityError {
    let check_path = format!("check the {} path", role.flag());
    match error.kind() {
        io::ErrorKind::NotFound => {
            role.error(ErrorKind::Unavailable, path, "does not exist", check_path)
        }
        io::ErrorKind::PermissionDenied => role.error(
            ErrorKind::Unavailable,
            path,
            "cannot be read (permission denied)",
            check_path,
        ),
        io::ErrorKind::InvalidInput if path.is_dir() => role.error(
            ErrorKind::NotAFile,
            path,
            "is a directory, not a file",
            format!("give the {} file itself", role.noun()),
        ),
        io::ErrorKind::InvalidInput => role.error(
            ErrorKind::NotAFile,
            path,
            error.to_string(),
            format!("give the {} file", role.noun()),
        ),
        io::ErrorKind::FileTooLarge => {
            role.error(ErrorKind::NotAFile, path, error.to_string(), check_path)
        }
        _ if files::may_pass(error) => role.error(
            ErrorKind::Unavailable,
            path,
            format!("cannot be read ({error})"),
            check_path,
        ),
        _ => role.error(
            ErrorKind::NotAFile,
            path,
            format!("cannot be read ({error})"),
            check_path,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three paths that must not be read whole: an endless device, a FIFO that no
    /// writer opens, and a 2 GB sparse file; with the problem each must be reported as.
    fn hostile_files(dir: &Path) -> Vec<(std::path::PathBuf, &'static str)> {
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let sparse = dir.join("sparse");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(2 * 1024 * 1024 * 1024)
            .unwrap();
        vec![
            (
                "/dev/zero".into(),
                "is a character device, not a regular file",
            ),
            (fifo, "is a FIFO, not a regular file"),
            (
                sparse,
                "holds 2147483648 bytes or more, above the limit of 1048576 bytes for this file",
            ),
        ]
    }

    #[test]
    fn devices_fifos_and_huge_files_are_refused_in_one_line_for_every_role() {
        let dir = tempfile::tempdir().unwrap();
        for (path, problem) in hostile_files(dir.path()) {
            for (role, noun, fix) in [
                (Role::Certificate, "certificate", "certificate file"),
                (Role::PrivateKey, "private key", "private key file"),
                (
                    Role::Intermediates,
                    "intermediates bundle",
                    "intermediates bundle file",
                ),
            ] {
                let error = read(role, &path).unwrap_err();
                let text = error.to_string();
                let start = format!("{noun} {} {problem}; ", path.display());
                assert!(text.starts_with(&start), "{text}");
                assert!(!text.contains('\n'), "{text}");
                if !problem.starts_with("holds") {
                    assert!(text.ends_with(&format!("; give the {fix}")), "{text}");
                }
                assert_eq!(error.kind(), ErrorKind::NotAFile);
                assert!(!error.is_transient(), "{text}");
            }
        }
    }

    #[test]
    fn a_missing_file_is_transient_and_a_directory_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = read(Role::Certificate, &missing).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "certificate {} does not exist; check the --certificate path",
                missing.display()
            )
        );
        assert!(error.is_transient());
        let error = read(Role::PrivateKey, dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "private key {} is a directory, not a file; give the private key file itself",
                dir.path().display()
            )
        );
        assert!(!error.is_transient());
    }

    #[test]
    fn an_empty_file_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blank.pem");
        std::fs::write(&path, "\n \n").unwrap();
        let error = read(Role::Intermediates, &path).unwrap_err();
        assert!(error.to_string().ends_with(
            "is empty; write the intermediates bundle into it, or point --intermediates at the right file"
        ));
        assert_eq!(error.kind(), ErrorKind::Malformed);
        assert!(!error.is_transient());
    }

    #[test]
    fn secrets_others_can_read_are_refused_for_good() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = guard_secret(Role::PrivateKey, &path, Readable::Refuse).unwrap_err();
        assert!(error.to_string().contains("(mode 0640)"), "{error}");
        assert_eq!(error.kind(), ErrorKind::Exposed);
        assert!(!error.is_transient());
        assert!(guard_secret(Role::PrivateKey, &path, Readable::Warn).is_ok());
    }

    /// `/dev/zero` (mode 0666) given as a key is refused by the read as what it is, not
    /// by its mode; a password file, which may be a pipe, is guarded whatever it is.
    #[test]
    fn only_password_files_are_guarded_when_not_regular() {
        let zero = Path::new("/dev/zero");
        assert!(guard_secret(Role::PrivateKey, zero, Readable::Refuse).is_ok());
        let error = guard_secret(Role::PasswordFile, zero, Readable::Refuse).unwrap_err();
        assert!(error.to_string().contains("(mode 0666)"), "{error}");
    }
}
