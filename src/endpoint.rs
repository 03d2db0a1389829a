//! Which URL a CreateSession request goes to.
//!
//! Precedence, most specific first: `--endpoint`, then `AWS_ENDPOINT_URL_ROLESANYWHERE`,
//! then `AWS_ENDPOINT_URL`, then the partition's host for the region (FIPS when asked).
//! The official helper lets the environment variable override `--endpoint`; here a flag
//! typed on the command line wins, as it does for every other setting.

/// The partition DNS suffix for a region, from the region's name (the same table the SDKs
/// use). Unknown names fall back to the `aws` partition, as the SDKs do.
pub fn dns_suffix(region: &str) -> &'static str {
    let starts = |p: &str| region.starts_with(p);
    if starts("cn-") {
        "amazonaws.com.cn"
    } else if starts("us-isob-") {
        "sc2s.sgov.gov"
    } else if starts("us-isof-") {
        "csp.hci.ic.gov"
    } else if starts("us-iso-") {
        "c2s.ic.gov"
    } else if starts("eu-isoe-") {
        "cloud.adc-e.uk"
    } else {
        // aws and aws-us-gov share the suffix.
        "amazonaws.com"
    }
}

/// The service URL for `region`: `https://rolesanywhere[-fips].<region>.<suffix>`.
pub fn default_url(region: &str, fips: bool) -> String {
    let service = if fips {
        "rolesanywhere-fips"
    } else {
        "rolesanywhere"
    };
    format!("https://{service}.{region}.{}", dns_suffix(region))
}

/// Where the endpoint came from, for `--debug` and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    ServiceEnv,
    GlobalEnv,
    Partition,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Flag => "--endpoint",
            Self::ServiceEnv => "AWS_ENDPOINT_URL_ROLESANYWHERE",
            Self::GlobalEnv => "AWS_ENDPOINT_URL",
            Self::Partition => "the region's default endpoint",
        }
    }
}

/// Resolves the endpoint from the flag, an environment lookup, the region and FIPS.
pub fn resolve(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    region: &str,
    fips: bool,
) -> (String, Source) {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    if let Some(url) = flag.filter(|s| !s.is_empty()) {
        return (url.to_owned(), Source::Flag);
    }
    if let Some(url) = nonempty(env("AWS_ENDPOINT_URL_ROLESANYWHERE")) {
        return (url, Source::ServiceEnv);
    }
    if let Some(url) = nonempty(env("AWS_ENDPOINT_URL")) {
        return (url, Source::GlobalEnv);
    }
    (default_url(region, fips), Source::Partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert_eq!(
            default_url("us-east-2", false),
            "https://rolesanywhere.us-east-2.amazonaws.com"
        );
        assert_eq!(
            default_url("us-east-1", true),
            "https://rolesanywhere-fips.us-east-1.amazonaws.com"
        );
        assert_eq!(
            default_url("cn-north-1", false),
            "https://rolesanywhere.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            default_url("us-gov-west-1", true),
            "https://rolesanywhere-fips.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            default_url("us-iso-east-1", false),
            "https://rolesanywhere.us-iso-east-1.c2s.ic.gov"
        );
    }

    #[test]
    fn precedence() {
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL_ROLESANYWHERE" => Some("https://svc".to_owned()),
            "AWS_ENDPOINT_URL" => Some("https://global".to_owned()),
            _ => None,
        };
        assert_eq!(
            resolve(Some("https://flag"), env, "us-east-1", false),
            ("https://flag".into(), Source::Flag)
        );
        assert_eq!(
            resolve(None, env, "us-east-1", false),
            ("https://svc".into(), Source::ServiceEnv)
        );
        let only_global = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "https://global".to_owned());
        assert_eq!(
            resolve(None, only_global, "us-east-1", false).1,
            Source::GlobalEnv
        );
        assert_eq!(
            resolve(None, |_| None, "eu-west-1", true).0,
            "https://rolesanywhere-fips.eu-west-1.amazonaws.com"
        );
    }
}
