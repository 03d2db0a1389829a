//! The `Host` check of the credential listeners: a defence against DNS rebinding. A web
//! page in a browser on this host can rebind its own DNS name to 127.0.0.1 and then send
//! same-origin requests, custom headers and all, to the daemon; IMDS's token PUT does not
//! stop it. Such requests carry the page's name in `Host`, so only IP addresses and
//! `localhost` are answered, plus the names an operator allows (`--allow-host`, for
//! containers that reach the daemon by a service name).

use hyper::http::{StatusCode, Uri};

use super::asked::Asked;
use super::http::Reply;

/// The refusal to send for a request for `target` with these headers, or `None` if it may
/// be answered.
pub fn refusal(target: &Uri, asked: &Asked<'_>, allowed: &[String]) -> Option<Reply> {
    if asked.hosts > 1 {
        return Some(Reply::text(
            StatusCode::BAD_REQUEST,
            "a request has one Host header",
        ));
    }
    // The absolute form of the target names a host too. A Host value that is not visible
    // ASCII names no IP address, no localhost and no allowed name.
    let target_ok = target.host().is_none_or(|h| acceptable(h, allowed));
    let header_ok = asked.host.is_none_or(|h| {
        h.to_str()
            .is_ok_and(|value| acceptable(host_part(value), allowed))
    });
    if target_ok && header_ok {
        None
    } else {
        Some(Reply::text(
            StatusCode::FORBIDDEN,
            "Forbidden: the Host is neither an IP address nor localhost nor a name allowed with --allow-host",
        ))
    }
}

/// The host of a `Host` value, without the port and the brackets of an IPv6 literal.
fn host_part(value: &str) -> &str {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => value,
    }
}

fn acceptable(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = host.strip_suffix('.').unwrap_or(host);
    // An empty Host (allowed by HTTP/1.1 for targets without an authority) is never what a
    // browser sends.
    host.is_empty()
        || host.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    fn answered(host: Option<&str>, target: &str, allowed: &[&str]) -> bool {
        let mut builder = Request::builder().uri(target);
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let request = builder.body(()).unwrap();
        refusal(request.uri(), &Asked::read(request.headers()), &allowed).is_none()
    }

    #[test]
    fn ip_addresses_and_localhost_are_answered() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:9911",
            "169.254.169.254",
            "[::1]",
            "[::1]:9911",
            "[fd00:ec2::254]:80",
            "localhost",
            "LOCALHOST:9911",
            "localhost.",
            "",
        ] {
            assert!(answered(Some(host), "/latest/api/token", &[]), "{host}");
        }
        assert!(
            answered(None, "/latest/api/token", &[]),
            "no Host: not a browser"
        );
    }

    #[test]
    fn other_names_are_refused_unless_allowed() {
        for host in [
            "evil.example",
            "evil.example:9911",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!answered(Some(host), "/", &[]), "{host}");
        }
        assert!(answered(Some("helper:9911"), "/", &["helper"]));
        assert!(answered(Some("HELPER."), "/", &["helper"]));
        assert!(
            !answered(Some("127.0.0.1"), "http://evil.example/x", &[]),
            "absolute form"
        );
    }
}
