//! The daemon socket's protocol, shared by `serve --daemon-socket` (the server) and
//! `credential-process --daemon-socket` (the client). It is kept tiny so that the client
//! needs nothing but a blocking Unix stream: no runtime, no TLS, no identity.
//!
//! One request per connection:
//!
//! - the client sends one line, `CREDENTIALS\n` (the socket's only role) or
//!   `CREDENTIALS <role>\n`, at most [`MAX_REQUEST`] bytes;
//! - the server answers either the `credential_process` JSON, byte for byte what a direct
//!   `credential-process` prints (it begins with `{`, no trailing newline), or one line
//!   `ERROR <message>\n`; then it closes the connection, so the answer ends at EOF.
//!
//! A peer the allow list refuses gets the `ERROR` line before it has sent anything.

use std::io;
use std::path::PathBuf;

/// The longest request line, newline included: the verb and a role name (64 bytes at
/// most) fit with room to spare.
pub const MAX_REQUEST: usize = 256;
/// The longest answer a client reads: credentials are about 1.5 KB (the session token
/// most of it), so this is far above real answers and still bounds a broken server.
pub const MAX_ANSWER: usize = 64 * 1024;

const VERB: &str = "CREDENTIALS";
const ERROR: &str = "ERROR ";

/// The request line for `role` (`None`: the socket's only role).
pub fn request(role: Option<&str>) -> Vec<u8> {
    match role {
        Some(role) => format!("{VERB} {role}\n").into_bytes(),
        None => format!("{VERB}\n").into_bytes(),
    }
}

/// The role a request line (without its newline) asks for: `Ok(None)` for the socket's
/// only role; an error in words for the client otherwise.
pub fn parse_request(line: &[u8]) -> Result<Option<&str>, &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "the request is not UTF-8")?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let rest = line
        .strip_prefix(VERB)
        .ok_or("unknown request; send CREDENTIALS [ROLE]")?;
    if rest.is_empty() {
        return Ok(None);
    }
    let role = rest
        .strip_prefix(' ')
        .ok_or("unknown request; send CREDENTIALS [ROLE]")?;
    if !valid_role(role) {
        return Err("the role name must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Ok(Some(role))
}

/// Whether `name` can be a role's name: 1 to 64 letters, digits, '.', '_' or '-' (the
/// rule of the config file's role names).
pub fn valid_role(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The error answer: one line, whatever `message` holds.
pub fn error_line(message: &str) -> Vec<u8> {
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{ERROR}{flat}\n").into_bytes()
}

/// What a client makes of an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The `credential_process` JSON, to print as it is.
    Credentials(&'a [u8]),
    /// The daemon's one-line refusal or error.
    Error(&'a str),
}

/// Reads a complete answer. JSON is checked to be one whole object, so that an answer cut
/// short (a daemon stopping mid-write) is never printed as credentials.
pub fn parse_answer(bytes: &[u8]) -> Result<Answer<'_>, &'static str> {
    if bytes.first() == Some(&b'{') {
        return match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes) {
            Ok(_) => Ok(Answer::Credentials(bytes)),
            Err(_) => Err("the daemon's answer is not complete JSON"),
        };
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the daemon's answer is not UTF-8")?;
    match text.strip_prefix(ERROR) {
        Some(message) => Ok(Answer::Error(message.trim_end())),
        None if text.is_empty() => Err("the daemon closed the connection without an answer"),
        None => Err("the daemon's answer is not in this protocol"),
    }
}

/// Why the client got no credentials from the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Nothing answers at the socket: no file, nobody listening, or no permission to
    /// connect. `--fallback-direct` then makes the direct call.
    #[error(
        "no credential daemon at {}: {source} (start `serve --daemon-socket`, or add --fallback-direct)",
        path.display()
    )]
    NotThere { path: PathBuf, source: io::Error },
    /// The connection broke, timed out, or the answer made no sense.
    #[error("the credential daemon at {}: {problem}", path.display())]
    Broken { path: PathBuf, problem: String },
    /// The daemon answered with an error (a refused peer, an unknown role, no
    /// credentials yet).
    #[error("the credential daemon at {}: {message}", path.display())]
    Answered { path: PathBuf, message: String },
}

impl DaemonError {
    /// Whether the daemon is simply not there (the case `--fallback-direct` covers).
    pub fn is_not_there(&self) -> bool {
        matches!(self, Self::NotThere { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_a_role_or_none() {
        assert_eq!(request(None), b"CREDENTIALS\n");
        assert_eq!(request(Some("billing")), b"CREDENTIALS billing\n");
        assert_eq!(parse_request(b"CREDENTIALS"), Ok(None));
        assert_eq!(parse_request(b"CREDENTIALS\r"), Ok(None));
        assert_eq!(parse_request(b"CREDENTIALS billing"), Ok(Some("billing")));
        for bad in [
            &b"GET / HTTP/1.1"[..],
            b"CREDENTIALS ",
            b"CREDENTIALSx",
            b"CREDENTIALS a b",
            b"CREDENTIALS ../x",
            b"\xff",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        let long = format!("CREDENTIALS {}", "a".repeat(65));
        assert!(parse_request(long.as_bytes()).is_err());
    }

    #[test]
    fn answers_are_whole_json_or_one_error_line() {
        let json = br#"{"Version":1,"AccessKeyId":"A"}"#;
        assert_eq!(parse_answer(json), Ok(Answer::Credentials(&json[..])));
        assert!(parse_answer(br#"{"Version":1,"Acc"#).is_err());
        assert_eq!(
            parse_answer(&error_line("uid 5 is not\nallowed")),
            Ok(Answer::Error("uid 5 is not allowed"))
        );
        assert!(parse_answer(b"").is_err());
        assert!(parse_answer(b"HTTP/1.1 400").is_err());
    }
}
