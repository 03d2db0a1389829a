//! Where token PINs come from. None of these sources needs a terminal, so a daemon or a
//! `credential_process` run by an SDK can log in:
//!
//! 1. the URI: `pin-value=…`, or `pin-source=file:/path` (a bare path works too);
//! 2. `--pkcs11-pin-file FILE`;
//! 3. `$ROLESANYWHERE_PKCS11_PIN`;
//! 4. the systemd credential `pkcs11-pin` (`$CREDENTIALS_DIRECTORY`, from
//!    `LoadCredential=` or `LoadCredentialEncrypted=`).
//!
//! The context-specific PIN of a key with `CKA_ALWAYS_AUTHENTICATE` has its own file flag,
//! variable and credential (`--pkcs11-context-pin-file`, `$ROLESANYWHERE_PKCS11_CONTEXT_PIN`,
//! `pkcs11-context-pin`), or is the user PIN under `--reuse-pin`.
//!
//! PIN files are guarded as key files are ([`check_secret_file`]): one that others can read
//! is refused (only a warning with `--allow-readable-key-files`), one its group can read is
//! used, and a directory is called one.
//!
//! Interactive commands may also ask on `/dev/tty`, as the official helper does. A PIN is
//! read when a login needs it and wiped from memory right after (files and the terminal
//! are read into zeroizing buffers; the variable's copy is wiped, the environment itself
//! is the process's).

use std::io::{self, BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::uri::Pkcs11Uri;
use crate::identity_error::ErrorKind;
use crate::input_file::{Readable, check_secret_file};
use crate::secret::Secret;

/// The variable that may hold the user PIN.
pub const PIN_ENV: &str = "ROLESANYWHERE_PKCS11_PIN";
/// The variable that may hold the context-specific PIN.
pub const CONTEXT_PIN_ENV: &str = "ROLESANYWHERE_PKCS11_CONTEXT_PIN";
/// The systemd credential name of the user PIN.
pub const PIN_CREDENTIAL: &str = "pkcs11-pin";
/// The systemd credential name of the context-specific PIN.
pub const CONTEXT_PIN_CREDENTIAL: &str = "pkcs11-context-pin";

/// The PIN settings besides the URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinOptions {
    /// `--pkcs11-pin-file`.
    pub pin_file: Option<PathBuf>,
    /// `--pkcs11-context-pin-file`.
    pub context_pin_file: Option<PathBuf>,
    /// `--reuse-pin`: the user PIN is tried first as the context-specific PIN.
    pub reuse_pin: bool,
    /// The command may ask on the terminal when no other source has a PIN.
    pub prompt: bool,
    /// What to do about a PIN file that others can read.
    pub readable: Readable,
}

/// Why no PIN could be had from a source that was given: what is wrong, and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; {fix}")]
pub struct PinError {
    /// [`ErrorKind::Unavailable`] for a PIN file that is missing or unreadable now,
    /// [`ErrorKind::Exposed`] for one others can read, [`ErrorKind::NotAFile`] for a
    /// directory, [`ErrorKind::Usage`] otherwise.
    pub kind: ErrorKind,
    pub problem: String,
    pub fix: String,
}

impl PinError {
    fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::of(ErrorKind::Usage, problem, fix)
    }

    fn of(kind: ErrorKind, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            kind,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// A PIN and where it came from (for messages; never the PIN itself).
pub struct Pin {
    pub secret: Secret,
    pub origin: String,
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pin([redacted] from {})", self.origin)
    }
}

/// Which PIN is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Context,
}

impl Kind {
    fn env(self) -> &'static str {
        match self {
            Self::User => PIN_ENV,
            Self::Context => CONTEXT_PIN_ENV,
        }
    }

    fn credential(self) -> &'static str {
        match self {
            Self::User => PIN_CREDENTIAL,
            Self::Context => CONTEXT_PIN_CREDENTIAL,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Self::User => "--pkcs11-pin-file",
            Self::Context => "--pkcs11-context-pin-file",
        }
    }
}

/// The first PIN found without a terminal, or `None`. `uri` is consulted for the user
/// PIN only (RFC 7512's `pin-value` and `pin-source` are the token's user PIN).
pub fn find(
    kind: Kind,
    uri: Option<&Pkcs11Uri>,
    options: &PinOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Pin>, PinError> {
    if kind == Kind::User
        && let Some(uri) = uri
    {
        if let Some(pin) = &uri.pin_value {
            return nonempty(pin.clone(), "pin-value in the URI".into()).map(Some);
        }
        if let Some(source) = &uri.pin_source {
            let path = pin_source_path(source)?;
            let via = "pin-source in the URI";
            let origin = format!("the file {} ({via})", path.display());
            guard(&path, via, options.readable)?;
            return read_file(&path, &origin).map(Some);
        }
    }
    let file = match kind {
        Kind::User => options.pin_file.as_ref(),
        Kind::Context => options.context_pin_file.as_ref(),
    };
    if let Some(path) = file {
        let origin = format!("the file {} ({})", path.display(), kind.flag());
        guard(path, kind.flag(), options.readable)?;
        return read_file(path, &origin).map(Some);
    }
    if let Some(value) = env(kind.env()) {
        let value = Zeroizing::new(value);
        return nonempty(
            Secret::from(value.as_str().to_owned()),
            format!("${}", kind.env()),
        )
        .map(Some);
    }
    if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = Path::new(&dir).join(kind.credential());
        if path.is_file() {
            let origin = format!("the systemd credential {}", kind.credential());
            return read_file(&path, &origin).map(Some);
        }
    }
    Ok(None)
}

/// Where to look, for an error that says how to give a PIN.
pub fn how_to_give(kind: Kind) -> String {
    match kind {
        Kind::User => format!(
            "give the user PIN with pin-source=file:/path or pin-value= in the URI, {}, ${} or the systemd credential {}",
            Kind::User.flag(),
            PIN_ENV,
            PIN_CREDENTIAL
        ),
        Kind::Context => format!(
            "give --reuse-pin if it is the user PIN, or give it with {}, ${} or the systemd credential {}",
            Kind::Context.flag(),
            CONTEXT_PIN_ENV,
            CONTEXT_PIN_CREDENTIAL
        ),
    }
}

/// The path of a `pin-source`: a `file:` URI or a plain path. Commands (`|program`) and
/// other schemes are refused.
fn pin_source_path(source: &str) -> Result<PathBuf, PinError> {
    let use_file = "use pin-source=file:/absolute/path";
    if let Some(rest) = source.strip_prefix("file:") {
        let path = match rest.strip_prefix("//") {
            Some(after) => match after.find('/') {
                Some(0) => after,
                Some(i) if &after[..i] == "localhost" => &after[i..],
                _ => {
                    return Err(PinError::new(
                        format!("pin-source {source:?} names a remote host"),
                        use_file,
                    ));
                }
            },
            None => rest,
        };
        let path = path.split(['?', '#']).next().unwrap_or(path);
        if path.is_empty() {
            return Err(PinError::new(
                format!("pin-source {source:?} names no file"),
                use_file,
            ));
        }
        return Ok(PathBuf::from(path));
    }
    if source.starts_with('|') {
        return Err(PinError::new(
            format!("pin-source {source:?} runs a program, which this helper does not do"),
            "store the PIN in a file readable by this user only and use pin-source=file:/path",
        ));
    }
    if let Some((scheme, _)) = source.split_once(':')
        && !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err(PinError::new(
            format!("pin-source {source:?} has the scheme {scheme}:, which is not supported"),
            use_file,
        ));
    }
    Ok(PathBuf::from(source))
}

/// The guard of key files, for the PIN file at `path` given `via` a flag or the URI.
fn guard(path: &Path, via: &str, readable: Readable) -> Result<(), PinError> {
    check_secret_file(path, "PIN file", readable).map_err(|unfit| {
        PinError::of(
            unfit.kind(),
            format!(
                "the PIN file {} ({via}) {}",
                path.display(),
                unfit.problem()
            ),
            unfit.fix(path, "PIN file"),
        )
    })
}

/// A PIN file: its content less one trailing line ending.
fn read_file(path: &Path, origin: &str) -> Result<Pin, PinError> {
    let secret = Secret::from_file(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => "does not exist".to_owned(),
            io::ErrorKind::PermissionDenied => "cannot be read (permission denied)".to_owned(),
            _ => format!("cannot be read ({e})"),
        };
        // A missing or unreadable PIN file may appear or become readable, as a key file may.
        let kind = if crate::files::may_pass(&e) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Usage
        };
        PinError::of(kind, format!("the PIN in {origin} {why}"), "check the path")
    })?;
    nonempty(secret, origin.to_owned())
}

fn nonempty(secret: Secret, origin: String) -> Result<Pin, PinError> {
    if secret.expose().is_empty() {
        return Err(PinError::new(
            format!("the PIN from {origin} is empty"),
            "write the PIN there",
        ));
    }
    Ok(Pin { secret, origin })
}

/// Asks on the controlling terminal with echo off. `Ok(None)` when the process has no
/// terminal (a daemon, a `setsid` child, a CI job).
pub fn prompt(question: &str) -> Result<Option<Pin>, PinError> {
    let tty = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(tty) => tty,
        Err(_) => return Ok(None),
    };
    let fail = |e: io::Error| {
        PinError::new(
            format!("the PIN could not be read from the terminal ({e})"),
            how_to_give(Kind::User),
        )
    };
    let mut writer = tty.try_clone().map_err(fail)?;
    let line = {
        // Echo goes off before the question shows, so nothing typed after it is echoed.
        let _echo = EchoOff::new(&tty);
        write!(writer, "{question}").map_err(fail)?;
        writer.flush().map_err(fail)?;
        let mut line = Zeroizing::new(String::new());
        io::BufReader::new(&tty)
            .read_line(&mut line)
            .map_err(fail)?;
        line
    };
    let _ = writeln!(writer);
    let text = line.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(PinError::new(
            "no PIN was typed at the terminal",
            "type the PIN",
        ));
    }
    Ok(Some(Pin {
        secret: Secret::from(text.to_owned()),
        origin: "the terminal".into(),
    }))
}

/// Terminal echo switched off while alive.
struct EchoOff {
    fd: i32,
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new(tty: &std::fs::File) -> Self {
        use std::os::fd::AsRawFd as _;
        let fd = tty.as_raw_fd();
        // SAFETY: `termios` is plain data; tcgetattr fills it for a valid descriptor and
        // reports failure otherwise, in which case it is not used.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Self { fd, saved: None };
        }
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHONL);
        quiet.c_lflag |= libc::ICANON;
        // SAFETY: a valid descriptor and a termios derived from its own settings.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        Self {
            fd,
            saved: Some(saved),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, saved) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A PIN file as it must be: readable by its owner only.
    fn private(path: &Path, content: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn order_uri_then_flag_then_variable_then_credential() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin");
        private(&file, "1111\n");
        private(&dir.path().join(PIN_CREDENTIAL), "3333");
        let creds = dir.path().to_str().unwrap().to_owned();
        let env = move |k: &str| match k {
            PIN_ENV => Some("2222".to_owned()),
            "CREDENTIALS_DIRECTORY" => Some(creds.clone()),
            _ => None,
        };
        let with_file = PinOptions {
            pin_file: Some(file.clone()),
            ..PinOptions::default()
        };
        let uri: Pkcs11Uri = "pkcs11:token=t?pin-value=0000".parse().unwrap();
        let pin = |uri: Option<&Pkcs11Uri>,
                   options: &PinOptions,
                   env: &dyn Fn(&str) -> Option<String>| {
            find(Kind::User, uri, options, env)
                .unwrap()
                .map(|p| (p.secret.expose().to_owned(), p.origin))
        };
        assert_eq!(pin(Some(&uri), &with_file, &env).unwrap().0, "0000");
        let (value, origin) = pin(None, &with_file, &env).unwrap();
        assert_eq!(value, "1111");
        assert!(origin.contains("--pkcs11-pin-file"), "{origin}");
        let (value, origin) = pin(None, &PinOptions::default(), &env).unwrap();
        assert_eq!(
            (value.as_str(), origin.as_str()),
            ("2222", "$ROLESANYWHERE_PKCS11_PIN")
        );
        let only_creds = |k: &str| {
            if k == "CREDENTIALS_DIRECTORY" {
                env(k)
            } else {
                None
            }
        };
        let (value, origin) = pin(None, &PinOptions::default(), &only_creds).unwrap();
        assert_eq!(value, "3333");
        assert!(origin.contains(PIN_CREDENTIAL), "{origin}");
        assert!(pin(None, &PinOptions::default(), &no_env).is_none());
    }

    #[test]
    fn context_pin_has_its_own_sources_and_ignores_the_uri() {
        let uri: Pkcs11Uri = "pkcs11:?pin-value=0000".parse().unwrap();
        let env = |k: &str| (k == CONTEXT_PIN_ENV).then(|| "9999".to_owned());
        let pin = find(Kind::Context, Some(&uri), &PinOptions::default(), &env)
            .unwrap()
            .unwrap();
        assert_eq!(pin.secret.expose(), "9999");
        assert!(
            find(Kind::Context, Some(&uri), &PinOptions::default(), &no_env)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn pin_source_forms() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p");
        private(&file, "4321\r\n");
        let path = file.to_str().unwrap();
        for source in [
            format!("file:{path}"),
            format!("file://{path}"),
            format!("file://localhost{path}"),
            path.to_owned(),
        ] {
            let encoded = source.replace('/', "%2F");
            let uri: Pkcs11Uri = format!("pkcs11:?pin-source={encoded}").parse().unwrap();
            let pin = find(Kind::User, Some(&uri), &PinOptions::default(), &no_env)
                .unwrap_or_else(|e| panic!("{source}: {e}"))
                .unwrap();
            assert_eq!(pin.secret.expose(), "4321", "{source}");
        }
        for (source, want) in [
            ("|/bin/echo 1234", "runs a program"),
            ("env:PIN", "scheme env:"),
            ("file://host/etc/pin", "remote host"),
            ("file:", "names no file"),
        ] {
            let uri = Pkcs11Uri {
                pin_source: Some(source.into()),
                ..Pkcs11Uri::default()
            };
            let error = find(Kind::User, Some(&uri), &PinOptions::default(), &no_env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(want), "{source}: {error}");
        }
    }

    #[test]
    fn unreadable_and_empty_pins_are_errors_without_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PinOptions {
            pin_file: Some(dir.path().join("nope")),
            ..PinOptions::default()
        };
        let error = find(Kind::User, None, &missing, &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("does not exist") && error.contains("--pkcs11-pin-file"),
            "{error}"
        );
        // A PIN file may appear later, as a key file may.
        let kind = find(Kind::User, None, &missing, &no_env).unwrap_err().kind;
        assert!(kind.is_transient(), "{kind:?}");
        let empty = dir.path().join("empty");
        private(&empty, "\n");
        let options = PinOptions {
            pin_file: Some(empty),
            ..PinOptions::default()
        };
        let error = find(Kind::User, None, &options, &no_env).unwrap_err();
        assert!(error.to_string().contains("is empty"), "{error}");
        assert!(!error.kind.is_transient(), "{error}");
    }

    #[test]
    fn pin_files_others_can_read_are_refused_unless_allowed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin");
        std::fs::write(&file, "2468").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut options = PinOptions {
            pin_file: Some(file.clone()),
            ..PinOptions::default()
        };
        let error = find(Kind::User, None, &options, &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("(--pkcs11-pin-file) can be read by others (mode 0644); make it private with: chmod 600"),
            "{error}"
        );
        let kind = find(Kind::User, None, &options, &no_env).unwrap_err().kind;
        assert_eq!(kind, ErrorKind::Exposed);
        options.readable = Readable::Warn;
        assert!(find(Kind::User, None, &options, &no_env).unwrap().is_some());
        options.readable = Readable::Refuse;
        // Readable by its group only (root:ssl-cert 0640): used, as a key file is.
        for mode in [0o600, 0o640, 0o660] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                find(Kind::User, None, &options, &no_env).unwrap().is_some(),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn a_directory_as_pin_file_is_called_a_directory() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o700] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let options = PinOptions {
                pin_file: Some(dir.path().to_path_buf()),
                ..PinOptions::default()
            };
            let error = find(Kind::User, None, &options, &no_env).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "the PIN file {} (--pkcs11-pin-file) is a directory, not a file; give the PIN file itself",
                    dir.path().display()
                )
            );
            assert_eq!(error.kind, ErrorKind::NotAFile);
        }
    }

    #[test]
    fn debug_never_shows_the_pin() {
        let pin = Pin {
            secret: Secret::from("5678".to_owned()),
            origin: "x".into(),
        };
        assert!(!format!("{pin:?}").contains("5678"));
    }
}
