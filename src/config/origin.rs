//! Where a setting came from, so that every error can point at it: the flag, the
//! environment variable, or the config file's line and key.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The source of one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, such as `--session-duration`.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the config file: the file, the 1-based line, the key (within its role,
    /// when it is a role's).
    File(Arc<FileSpot>),
    /// A key of a profile of the AWS shared config file (`role` is the profile).
    AwsProfile(Arc<FileSpot>),
    /// Nothing gave it; the built-in default applies.
    Default(&'static str),
}

/// A place in the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpot {
    pub path: PathBuf,
    pub line: usize,
    pub key: String,
    /// The `[[role]]` the key is in.
    pub role: Option<String>,
}

impl FileSpot {
    fn describe(&self, f: &mut fmt::Formatter<'_>, file: &str, section: &str) -> fmt::Result {
        write!(f, "{file} {}", self.path.display())?;
        if self.line > 0 {
            write!(f, ", line {}", self.line)?;
        }
        f.write_str(": ")?;
        if let Some(name) = &self.role {
            write!(f, "{section} {name:?}: ")?;
        }
        f.write_str(&self.key)
    }
}

impl Origin {
    /// The name to put before a value in a message: `--session-duration`,
    /// `$AWS_CA_BUNDLE`, or `config file F, line N: role "r": session_duration`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Whether the value came from the config file.
    pub fn is_file(&self) -> bool {
        matches!(self, Self::File(_))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => f.write_str(flag),
            Self::Env(var) => write!(f, "${var}"),
            Self::File(spot) => spot.describe(f, "config file", "role"),
            Self::AwsProfile(spot) => spot.describe(f, "AWS config file", "profile"),
            Self::Default(what) => f.write_str(what),
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: Origin) -> Self {
        Self { value, origin }
    }

    /// The value turned into another, from the same origin.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced::new(f(self.value), self.origin)
    }

    /// An error about this value: `problem` follows the origin's name.
    pub fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::at(self.origin.clone(), problem)
    }
}

/// The first value present, in precedence order: the caller lists the command line,
/// then the environment, then the file.
pub fn first<T>(candidates: impl IntoIterator<Item = Option<Sourced<T>>>) -> Option<Sourced<T>> {
    candidates.into_iter().flatten().next()
}

/// A setting that cannot work: where it came from and what is wrong, as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that is wrong, named by its origin: `"{origin} {problem}"`.
    #[error("{origin} {problem}")]
    At { origin: Origin, problem: String },
    /// A problem of the config file as a whole (it cannot be read or parsed, it defines
    /// no role, two roles clash).
    #[error("config file {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    File {
        path: PathBuf,
        line: Option<usize>,
        problem: String,
    },
    /// Settings that do not go together, with no one value to blame.
    #[error("{0}")]
    Conflict(String),
    /// A secret file that must not be used (one others can read).
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

impl ConfigError {
    pub fn at(origin: Origin, problem: impl Into<String>) -> Self {
        Self::At {
            origin,
            problem: problem.into(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_origin() {
        let file = Origin::File(Arc::new(FileSpot {
            path: "/etc/ra.toml".into(),
            line: 7,
            key: "session_duration".into(),
            role: Some("billing".into()),
        }));
        assert_eq!(
            ConfigError::at(file, "5 is out of range").to_string(),
            "config file /etc/ra.toml, line 7: role \"billing\": session_duration 5 is out of range"
        );
        assert_eq!(
            ConfigError::at(Origin::Flag("--hop-limit"), "0 is out of range").to_string(),
            "--hop-limit 0 is out of range"
        );
        assert_eq!(
            ConfigError::at(Origin::Env("AWS_CA_BUNDLE"), "x").to_string(),
            "$AWS_CA_BUNDLE x"
        );
    }

    #[test]
    fn the_first_present_value_wins() {
        let flag = Some(Sourced::new(1, Origin::Flag("--a")));
        let env = Some(Sourced::new(2, Origin::Env("A")));
        assert_eq!(first([None, env.clone()]).unwrap().value, 2);
        assert_eq!(first([flag, env]).unwrap().value, 1);
        assert!(first::<u8>([None, None]).is_none());
    }
}
