//! Which URL a CreateSession request goes to.
//!
//! The configuration layer picks the first of `--endpoint`, `AWS_ENDPOINT_URL_ROLESANYWHERE`,
//! `AWS_ENDPOINT_URL` and the config file's `endpoint`; without any, the partition's host for
//! the region (FIPS when asked), made here. The official helper lets the environment
//! variable override `--endpoint`; here a flag typed on the command line wins, as it does
//! for every other setting.

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
}
