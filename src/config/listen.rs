//! Listener settings: addresses, passed sockets, hop limits, token-file groups.

use std::net::{IpAddr, SocketAddr};

use super::origin::{ConfigError, Sourced};
use super::plan::Endpoint;

/// A hop limit: 1 to 255.
pub fn hop_limit(value: &Sourced<u32>) -> Result<u32, ConfigError> {
    if (1..=255).contains(&value.value) {
        Ok(value.value)
    } else {
        Err(value.error(format!("{} is out of range; use 1 to 255", value.value)))
    }
}

/// An IP address, with or without the brackets of an IPv6 URL host.
pub fn ip(text: &Sourced<String>) -> Result<IpAddr, ConfigError> {
    let value = &text.value;
    let bare = value
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(value);
    bare.parse().map_err(|_| {
        text.error(format!(
            "{value:?} is not an IP address; use for example 127.0.0.1 or [::1]"
        ))
    })
}

/// `IP:PORT`, or `fd:NAME` for a socket passed by socket activation.
pub fn endpoint(text: &Sourced<String>, activated: &[String]) -> Result<Endpoint, ConfigError> {
    let value = &text.value;
    match value.strip_prefix("fd:") {
        Some(name) if activated.iter().any(|a| a == name) => {
            Ok(Endpoint::Activated(name.to_owned()))
        }
        Some(name) => Err(text.error(format!(
            "{value:?}: no socket named {name:?} was passed by socket activation{}",
            if activated.is_empty() {
                String::new()
            } else {
                format!(" (passed: {})", activated.join(", "))
            }
        ))),
        None => value.parse::<SocketAddr>().map(Endpoint::Tcp).map_err(|_| {
            text.error(format!(
                "{value:?} is not IP:PORT; use for example 127.0.0.1:9911 or [::1]:9911"
            ))
        }),
    }
}

/// A group given by name or number, as the ECS token file's group.
pub fn group(given: &Sourced<String>) -> Result<u32, ConfigError> {
    let group = &given.value;
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group.as_str())
        .map_err(|_| given.error(format!("{group:?} is not a group name")))?;
    // SAFETY: an all-zero `group` is a valid value of this plain C struct (null pointers).
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; getgrnam_r writes only into `entry` and
    // `buf` (whose length is passed) and sets `found` to `&entry` or null.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(given.error(format!("{group:?}: no group of that name on this system")));
    }
    Ok(entry.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn flag(value: &str) -> Sourced<String> {
        Sourced::new(value.to_owned(), Origin::Flag("--x"))
    }

    #[test]
    fn groups_resolve_by_name_and_number() {
        assert_eq!(group(&flag("0")).unwrap(), 0);
        assert_eq!(group(&flag("root")).unwrap(), 0);
        assert!(group(&flag("no-such-group-here")).is_err());
    }
}
