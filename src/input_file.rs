//! The files an identity is read from (certificate, private key, intermediates, password):
//! what each is for, reading one within limits, and the guard on files that hold a secret
//! (also used for PKCS#11 PIN files).
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

    /// The file to give, for a fix ("give the private key file itself").
    fn file(self) -> String {
        match self {
            Self::PasswordFile => self.noun().to_owned(),
            _ => format!("{} file", self.noun()),
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

/// What to do about a file holding a private key (or its password, or a PIN) that every
/// local account can read: such a key is as good as shared with all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Readable {
    /// Refuse it, saying how to fix the mode (the default).
    #[default]
    Refuse,
    /// Use it, with a warning (`--allow-readable-key-files`).
    Warn,
}

/// Why a file cannot hold a secret (a key, a password, a PIN). The one rule for every such
/// file; each caller words it after its own name for the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// A directory: the wrong path, whatever its mode says.
    Directory,
    /// Others can read it (`mode & 0o004`): every local account has the secret.
    ReadableByOthers { mode: u32 },
}

impl Unfit {
    /// [`ErrorKind::NotAFile`] or [`ErrorKind::Exposed`]; neither passes by itself.
    pub fn kind(self) -> ErrorKind {
        match self {
            Self::Directory => ErrorKind::NotAFile,
            Self::ReadableByOthers { .. } => ErrorKind::Exposed,
        }
    }

    /// What is wrong, reading after the file's name.
    pub fn problem(self) -> String {
        match self {
            Self::Directory => "is a directory, not a file".into(),
            Self::ReadableByOthers { mode } => {
                format!("can be read by others (mode {mode:04o})")
            }
        }
    }

    /// What to do about the file at `path`, whose kind is `file` ("private key file").
    pub fn fix(self, path: &Path, file: &str) -> String {
        match self {
            Self::Directory => format!("give the {file} itself"),
            Self::ReadableByOthers { .. } => format!(
                "make it private with: chmod 600 {} (or pass --allow-readable-key-files to use it anyway)",
                path.display()
            ),
        }
    }
}

/// The guard on every file that holds a secret: refuses a directory, and a file others can
/// read unless `policy` says to warn (naming it a `noun` in the warning).
///
/// A file its group can read is used: the `root:ssl-cert` 0640 layout, where a key is
/// given to the services of one group on purpose, is common, and the official helper reads
/// it. A missing or unreadable file passes: the read that follows reports it in its own
/// words.
pub fn check_secret_file(path: &Path, noun: &str, policy: Readable) -> Result<(), Unfit> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        return Err(Unfit::Directory);
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o004 == 0 {
        return Ok(());
    }
    match policy {
        Readable::Warn => {
            tracing::warn!(file = %path.display(), mode = %format!("{mode:04o}"), "this {noun} can be read by others");
            Ok(())
        }
        Readable::Refuse => Err(Unfit::ReadableByOthers { mode }),
    }
}

/// Checks the secret-bearing file at `path` with [`check_secret_file`].
pub fn guard_secret(role: Role, path: &Path, policy: Readable) -> Result<(), IdentityError> {
    if role != Role::PasswordFile && !path.is_file() {
        // A device, FIFO or directory given as a certificate or key is reported by the
        // read ("is a character device, not a regular file"), which says more than its
        // mode would. A password file may be a pipe on purpose, and is guarded whatever
        // it is.
        return Ok(());
    }
    check_secret_file(path, role.noun(), policy).map_err(|unfit| {
        let problem = match unfit {
            Unfit::ReadableByOthers { .. } => format!("holds a secret but {}", unfit.problem()),
            Unfit::Directory => unfit.problem(),
        };
        role.error(unfit.kind(), path, problem, unfit.fix(path, &role.file()))
    })
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
            format!("give the {} itself", role.file()),
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
        for mode in [0o604, 0o644, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = guard_secret(Role::PrivateKey, &path, Readable::Refuse).unwrap_err();
            let text = error.to_string();
            assert!(
                text.contains(&format!(
                    "holds a secret but can be read by others (mode 0{mode:o}); make it private with: chmod 600"
                )),
                "{text}"
            );
            assert_eq!(error.kind(), ErrorKind::Exposed);
            assert!(!error.is_transient());
            assert!(guard_secret(Role::PrivateKey, &path, Readable::Warn).is_ok());
        }
    }

    /// The `root:ssl-cert` layout: a key its group can read, as the official helper takes it.
    #[test]
    fn secrets_only_the_group_can_read_are_used() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "x").unwrap();
        for mode in [0o600, 0o640, 0o660, 0o400, 0o440] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            for role in [Role::PrivateKey, Role::Certificate, Role::PasswordFile] {
                assert!(
                    guard_secret(role, &path, Readable::Refuse).is_ok(),
                    "{role:?} {mode:o}"
                );
            }
        }
    }

    /// A directory is the wrong path, whatever its mode: never "readable by others".
    #[test]
    fn a_directory_is_called_a_directory_whatever_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o755, 0o700] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let error = guard_secret(Role::PasswordFile, dir.path(), Readable::Refuse).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "password file {} is a directory, not a file; give the password file itself",
                    dir.path().display()
                )
            );
            assert_eq!(error.kind(), ErrorKind::NotAFile);
            assert_eq!(
                check_secret_file(dir.path(), "PIN file", Readable::Warn),
                Err(Unfit::Directory)
            );
        }
    }

    /// `/dev/zero` (mode 0666) given as a key is refused by the read as what it is, not
    /// by its mode; a password file, which may be a pipe, is guarded whatever it is.
    #[test]
    fn only_password_files_are_guarded_when_not_regular() {
        let zero = Path::new("/dev/zero");
        assert!(guard_secret(Role::PrivateKey, zero, Readable::Refuse).is_ok());
        let error = guard_secret(Role::PasswordFile, zero, Readable::Refuse).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("can be read by others (mode 0666)"),
            "{error}"
        );
    }
}
