//! What a role chain asks for: the roles to assume in order after CreateSession, and how to
//! reach STS.

use crate::rolesanywhere::ClientConfig;

/// The longest session STS gives a role assumed with role credentials ("role chaining").
pub const CHAINED_MAX_DURATION: u32 = 3600;

/// One AssumeRole hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub role_arn: String,
    /// `RoleSessionName`; a name made of the time is sent when none is given (STS requires
    /// one).
    pub role_session_name: Option<String>,
    /// `ExternalId`, for a trust policy that asks for one.
    pub external_id: Option<String>,
}

/// The hops after CreateSession, and the STS endpoint they go to.
#[derive(Clone, Debug)]
pub struct ChainSettings {
    /// In order: the first is assumed with CreateSession's credentials, each next one with
    /// the previous hop's. Never empty.
    pub hops: Vec<Hop>,
    /// `DurationSeconds` of every hop: at most [`CHAINED_MAX_DURATION`].
    pub duration_seconds: u32,
    /// The region of the credential scope: the trust anchor's.
    pub region: String,
    /// The STS endpoint, with the same trust, proxy and timeouts as CreateSession.
    pub client: ClientConfig,
}

/// STS's regional endpoint: `https://sts[-fips].<region>.<partition suffix>`.
pub fn default_url(region: &str, fips: bool) -> String {
    let service = if fips { "sts-fips" } else { "sts" };
    format!(
        "https://{service}.{region}.{}",
        crate::endpoint::dns_suffix(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_endpoints_by_partition() {
        assert_eq!(
            default_url("eu-west-1", false),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            default_url("us-east-2", true),
            "https://sts-fips.us-east-2.amazonaws.com"
        );
        assert_eq!(
            default_url("cn-northwest-1", false),
            "https://sts.cn-northwest-1.amazonaws.com.cn"
        );
        assert_eq!(
            default_url("us-gov-west-1", true),
            "https://sts-fips.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            default_url("us-iso-east-1", false),
            "https://sts.us-iso-east-1.c2s.ic.gov"
        );
    }
}
