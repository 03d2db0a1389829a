//! Which endpoints skip the proxy of the environment (`HTTPS_PROXY`, `HTTP_PROXY`).
//!
//! The official helper's HTTP client takes its proxy from Go's `ProxyFromEnvironment`,
//! which never proxies a request to `localhost` or to a loopback address, whatever
//! `NO_PROXY` says. A local relay, a test emulator or a port-forward on 127.0.0.1 is then
//! reached directly on a host whose environment names a corporate proxy (which could not
//! reach this host's loopback anyway). reqwest would send those through the proxy, so the
//! client is built without one for such an endpoint.

use std::net::IpAddr;

use reqwest::Url;

use super::error::ClientError;
use super::settings::ProxyEnv;

/// The proxy for requests to `base`: none for a loopback endpoint, else `HTTPS_PROXY` or
/// `HTTP_PROXY` by the endpoint's scheme, minus the hosts of `NO_PROXY`.
pub(super) fn for_endpoint(
    base: &Url,
    env: &ProxyEnv,
) -> Result<Option<reqwest::Proxy>, ClientError> {
    if never_proxied(base) {
        // As the official helper: the proxy is for the way out, never for this host.
        return Ok(None);
    }
    let (name, url) = match base.scheme() {
        "https" => ("HTTPS_PROXY", &env.https),
        _ => ("HTTP_PROXY", &env.http),
    };
    let Some(url) = url.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    let proxy = reqwest::Proxy::all(url).map_err(|source| ClientError::Proxy { name, source })?;
    Ok(Some(
        proxy.no_proxy(
            env.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string),
        ),
    ))
}

/// True for the hosts Go's `ProxyFromEnvironment` never proxies: the name `localhost`, and
/// loopback addresses (127.0.0.0/8, `::1`, and 127.0.0.0/8 mapped into IPv6).
pub(super) fn never_proxied(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // The URL parser has lowercased the name and written an IPv6 address in brackets.
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_and_loopback_addresses_are_never_proxied() {
        let never = |s: &str| never_proxied(&Url::parse(s).unwrap());
        for url in [
            "https://127.0.0.1:8443",
            "https://127.42.0.9",
            "http://localhost:9000/prefix",
            "https://LOCALHOST",
            "https://[::1]:443",
            "https://[::ffff:127.0.0.1]:8443",
        ] {
            assert!(never(url), "{url}");
        }
        for url in [
            "https://rolesanywhere.us-east-1.amazonaws.com",
            "https://10.0.0.1",
            "https://[::2]",
            "https://[::ffff:10.0.0.1]",
            "https://localhost.example.com",
            "https://my.localhost",
            "https://0.0.0.0",
        ] {
            assert!(!never(url), "{url}");
        }
    }
}
