//! What the configuration layer reads from the world, passed in rather than reached for:
//! the environment, the file system and the clock. The commands pass the real ones;
//! `demo` passes an empty environment (its daemon must not pick up the user's
//! `AWS_ENDPOINT_URL`), and tests pass fixed ones.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::files;
use crate::secret::Secret;

/// Environment variables.
#[derive(Clone, Debug, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// Exactly these variables, and no others.
    Fixed(HashMap<String, String>),
}

impl Env {
    /// No variables at all.
    pub fn empty() -> Self {
        Self::Fixed(HashMap::new())
    }

    /// These variables only.
    pub fn fixed<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::Fixed(
            vars.into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The variable's value if it is set and valid Unicode.
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Self::Process => std::env::var(name).ok(),
            Self::Fixed(vars) => vars.get(name).cloned(),
        }
    }

    /// The variable's value if it is set to something other than blanks.
    pub fn nonempty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }
}

/// The files the layer reads itself: the config file and secret files.
#[derive(Clone, Debug, Default)]
pub enum Fs {
    /// The real file system.
    #[default]
    Real,
    /// Only these files exist.
    Fake(HashMap<PathBuf, Vec<u8>>),
}

impl Fs {
    /// The config file: a regular file of at most [`files::MAX_CONFIG_FILE`] bytes.
    pub fn read_config(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Self::Real => files::read_regular(path, files::MAX_CONFIG_FILE).map(|b| b.to_vec()),
            Self::Fake(files) => files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    /// A password or PIN file (see [`Secret::from_file`]).
    pub fn read_secret(&self, path: &Path) -> io::Result<Secret> {
        match self {
            Self::Real => Secret::from_file(path),
            Self::Fake(files) => files
                .get(path)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
                .and_then(|bytes| Secret::from_file_bytes(bytes)),
        }
    }

    /// Whether a regular file is at `path`.
    pub fn is_file(&self, path: &Path) -> bool {
        match self {
            Self::Real => path.is_file(),
            Self::Fake(files) => files.contains_key(path),
        }
    }
}

/// The time, for the checks that depend on it (certificate validity).
#[derive(Clone, Copy, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(OffsetDateTime),
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Self::System => OffsetDateTime::now_utc(),
            Self::Fixed(t) => *t,
        }
    }
}

/// Everything the layer reads from outside the command line.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub env: Env,
    pub fs: Fs,
    pub clock: Clock,
}

impl Inputs {
    /// The process's environment, the real file system and the system clock.
    pub fn real() -> Self {
        Self::default()
    }

    /// A systemd credential passed with `LoadCredential=NAME:...`, if there is one.
    pub fn systemd_credential(&self, name: &str) -> Option<PathBuf> {
        let dir = self.env.get("CREDENTIALS_DIRECTORY")?;
        let path = Path::new(&dir).join(name);
        self.fs.is_file(&path).then_some(path)
    }
}
