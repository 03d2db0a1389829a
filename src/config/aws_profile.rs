//! The settings of the AWS shared config file (`~/.aws/config`) that the official helper
//! honours through the AWS SDK for Go, so that a setup relying on them keeps working: the
//! profile named by `AWS_PROFILE` (else `default`) of the file named by `AWS_CONFIG_FILE`
//! (else `~/.aws/config`), and in it `ca_bundle`, `endpoint_url`, the `rolesanywhere` and
//! `sts` `endpoint_url` of its `services` section, `max_attempts` and
//! `ignore_configured_endpoint_urls`. They come after the command line, the environment and
//! this tool's own config file.
//!
//! A file or profile that does not exist is no error (the official fails every call when
//! `AWS_PROFILE` names a missing profile; this tool has nothing to take from it, and goes
//! on); a file that `AWS_CONFIG_FILE` names but cannot be read is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::inputs::Inputs;
use super::origin::{ConfigError, FileSpot, Origin, Sourced};

/// The settings of one profile, each with its line.
#[derive(Clone, Debug, Default)]
pub struct AwsProfile {
    pub ca_bundle: Option<Sourced<PathBuf>>,
    /// The `rolesanywhere` entry of the profile's `services` section, else its own.
    pub endpoint_url: Option<Sourced<String>>,
    /// The `sts` entry of the profile's `services` section, else its own `endpoint_url`:
    /// where a role chain's AssumeRole goes.
    pub sts_endpoint_url: Option<Sourced<String>>,
    pub max_attempts: Option<Sourced<String>>,
    /// `ignore_configured_endpoint_urls = true`: endpoints from the environment and the
    /// file are not used.
    pub ignore_endpoints: Option<Sourced<bool>>,
}

/// A section of the file: its keys, and the keys of its sub-sections (`rolesanywhere =`
/// followed by indented lines), each with its line.
#[derive(Default)]
struct Section {
    keys: HashMap<String, (String, usize)>,
    nested: HashMap<String, HashMap<String, (String, usize)>>,
}

impl AwsProfile {
    /// The profile the environment names, from the file it names.
    pub fn load(inputs: &Inputs) -> Result<Self, ConfigError> {
        let env = &inputs.env;
        let named = env.nonempty("AWS_CONFIG_FILE");
        let path = match &named {
            Some(value) => match value.strip_prefix("~/") {
                Some(rest) => match env.nonempty("HOME") {
                    Some(home) => Path::new(&home).join(rest),
                    None => return Ok(Self::default()),
                },
                None => PathBuf::from(value),
            },
            None => match env.nonempty("HOME") {
                Some(home) => Path::new(&home).join(".aws/config"),
                None => return Ok(Self::default()),
            },
        };
        // `AWS_CONFIG_FILE=/dev/null` is the usual way to say "no config file".
        if path == Path::new("/dev/null") {
            return Ok(Self::default());
        }
        let bytes = match inputs.fs.read_config(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            // The default place of a HOME this process cannot read (a service run as
            // another user with the caller's environment) holds nothing for it; a file
            // named by AWS_CONFIG_FILE is meant to be read.
            Err(e) if named.is_none() => {
                tracing::debug!(file = %path.display(), error = %e, "the AWS config file cannot be read; not using it");
                return Ok(Self::default());
            }
            Err(e) => {
                return Err(ConfigError::File {
                    path,
                    line: None,
                    problem: format!("(the AWS config file) cannot be read: {e}"),
                });
            }
        };
        let profile = env
            .nonempty("AWS_PROFILE")
            .unwrap_or_else(|| "default".into());
        Ok(Self::parse(
            &String::from_utf8_lossy(&bytes),
            &path,
            &profile,
        ))
    }

    /// The settings of `profile` in `text`, the content of the file at `path`.
    pub fn parse(text: &str, path: &Path, profile: &str) -> Self {
        let sections = sections(text);
        let own = if profile == "default" {
            sections
                .get("default")
                .or_else(|| sections.get("profile default"))
        } else {
            sections.get(&format!("profile {profile}"))
        };
        let Some(own) = own else {
            return Self::default();
        };
        let origin = |key: &str, line: usize| {
            Origin::AwsProfile(Arc::new(FileSpot {
                path: path.to_owned(),
                line,
                key: key.to_owned(),
                role: Some(profile.to_owned()),
            }))
        };
        let value = |key: &str| {
            own.keys
                .get(key)
                .filter(|(v, _)| !v.is_empty())
                .map(|(v, line)| Sourced::new(v.clone(), origin(key, *line)))
        };
        let services = |service: &str| {
            own.keys
                .get("services")
                .and_then(|(name, _)| sections.get(&format!("services {name}")))
                .and_then(|s| s.nested.get(service))
                .and_then(|keys| keys.get("endpoint_url"))
                .filter(|(v, _)| !v.is_empty())
                .map(|(v, line)| {
                    Sourced::new(
                        v.clone(),
                        origin(&format!("services {service} endpoint_url"), *line),
                    )
                })
        };
        Self {
            ca_bundle: value("ca_bundle").map(|s| s.map(PathBuf::from)),
            endpoint_url: services("rolesanywhere").or_else(|| value("endpoint_url")),
            sts_endpoint_url: services("sts").or_else(|| value("endpoint_url")),
            max_attempts: value("max_attempts"),
            ignore_endpoints: value("ignore_configured_endpoint_urls")
                .map(|s| s.map(|v| v.eq_ignore_ascii_case("true"))),
        }
    }
}

/// The sections of an INI file as the SDKs read it: `[name]` headers, `key = value` lines,
/// `#` and `;` comments, and a key with an empty value followed by indented `key = value`
/// lines as its sub-section.
fn sections(text: &str) -> HashMap<String, Section> {
    let mut out: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    let mut parent: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
            parent = None;
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, trimmed.split_once('=')) else {
            continue;
        };
        let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
        let section = out.entry(section.clone()).or_default();
        let indented = raw.starts_with([' ', '\t']);
        match (&parent, indented) {
            (Some(parent), true) => {
                section
                    .nested
                    .entry(parent.clone())
                    .or_default()
                    .insert(key, (value, line));
            }
            _ if value.is_empty() => parent = Some(key),
            _ => {
                parent = None;
                section.keys.insert(key, (value, line));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
[default]
ca_bundle = /etc/ssl/corp.pem
max_attempts = 5

[profile dev]
endpoint_url = https://global.example
services = local
; a comment
[services local]
rolesanywhere =
  endpoint_url = https://ra.example
sts =
  endpoint_url = https://sts.example
";

    #[test]
    fn the_default_profile_and_its_lines() {
        let profile = AwsProfile::parse(FILE, Path::new("/c"), "default");
        let ca = profile.ca_bundle.unwrap();
        assert_eq!(ca.value, PathBuf::from("/etc/ssl/corp.pem"));
        assert_eq!(
            ca.error("x").to_string(),
            "AWS config file /c, line 2: profile \"default\": ca_bundle x"
        );
        assert_eq!(profile.max_attempts.unwrap().value, "5");
        assert!(profile.endpoint_url.is_none());
    }

    #[test]
    fn the_services_section_wins_over_the_profiles_endpoint() {
        let profile = AwsProfile::parse(FILE, Path::new("/c"), "dev");
        assert_eq!(profile.endpoint_url.unwrap().value, "https://ra.example");
        let sts = profile.sts_endpoint_url.unwrap();
        assert_eq!(sts.value, "https://sts.example");
        assert_eq!(
            sts.error("x").to_string(),
            "AWS config file /c, line 13: profile \"dev\": services sts endpoint_url x"
        );
        let without = FILE.replace("services = local\n", "");
        let profile = AwsProfile::parse(&without, Path::new("/c"), "dev");
        assert_eq!(
            profile.endpoint_url.unwrap().value,
            "https://global.example"
        );
        assert_eq!(
            profile.sts_endpoint_url.unwrap().value,
            "https://global.example"
        );
    }

    #[test]
    fn a_missing_profile_gives_nothing() {
        let profile = AwsProfile::parse(FILE, Path::new("/c"), "nope");
        assert!(profile.ca_bundle.is_none() && profile.endpoint_url.is_none());
    }
}
