//! The request headers the credential routes read, picked out in one pass over the request's
//! header list. Three or four hashed lookups by name cost more than all the rest of the
//! routing; a request carries a handful of headers, so one walk comparing names is cheaper.

use hyper::header::{AUTHORIZATION, HOST};
use hyper::http::{HeaderMap, HeaderName, HeaderValue};

/// The token TTL header, on the PUT and echoed on replies.
pub const TTL_HEADER: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
/// The token header on IMDS GETs.
pub const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");
/// Set by proxies: IMDS refuses any request that carries it.
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The headers the routes look at; each is the first of its name, as `HeaderMap::get`
/// would give it.
#[derive(Default)]
pub struct Asked<'a> {
    pub host: Option<&'a HeaderValue>,
    /// How many `Host` headers came (more than one is refused).
    pub hosts: usize,
    pub forwarded_for: bool,
    pub token: Option<&'a HeaderValue>,
    pub ttl: Option<&'a HeaderValue>,
    pub authorization: Option<&'a HeaderValue>,
}

impl<'a> Asked<'a> {
    pub fn read(headers: &'a HeaderMap) -> Self {
        let mut asked = Self::default();
        for (name, value) in headers {
            if name == HOST {
                asked.hosts += 1;
                asked.host.get_or_insert(value);
            } else if name == TOKEN_HEADER {
                asked.token.get_or_insert(value);
            } else if name == AUTHORIZATION {
                asked.authorization.get_or_insert(value);
            } else if name == FORWARDED_FOR {
                asked.forwarded_for = true;
            } else if name == TTL_HEADER {
                asked.ttl.get_or_insert(value);
            }
        }
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_of_each_name_and_counts_hosts() {
        let mut headers = HeaderMap::new();
        headers.append(HOST, HeaderValue::from_static("127.0.0.1"));
        headers.append(
            "X-AWS-EC2-Metadata-Token",
            HeaderValue::from_static("first"),
        );
        headers.append(TOKEN_HEADER, HeaderValue::from_static("second"));
        headers.append(HOST, HeaderValue::from_static("evil.example"));
        headers.append("accept", HeaderValue::from_static("*/*"));
        let asked = Asked::read(&headers);
        assert_eq!(asked.hosts, 2);
        assert_eq!(asked.host.unwrap(), "127.0.0.1");
        assert_eq!(asked.token.unwrap(), "first");
        assert!(!asked.forwarded_for && asked.ttl.is_none() && asked.authorization.is_none());

        headers.insert(FORWARDED_FOR, HeaderValue::from_static(""));
        headers.insert("authorization", HeaderValue::from_static("secret"));
        headers.insert(TTL_HEADER, HeaderValue::from_static("60"));
        let asked = Asked::read(&headers);
        assert!(asked.forwarded_for);
        assert_eq!(asked.authorization.unwrap(), "secret");
        assert_eq!(asked.ttl.unwrap(), "60");
    }
}
