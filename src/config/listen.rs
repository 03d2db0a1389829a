//! Listener settings: addresses, passed sockets, hop limits.

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
