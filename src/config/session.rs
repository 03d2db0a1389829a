//! A role's CreateSession settings, validated: the ARNs and their regions, the duration
//! and session name, the endpoint and how to reach it. Every check here runs before any
//! key is read or any request is sent.

use std::time::Duration;

use super::identity::identity_spec;
use super::inputs::Inputs;
use super::origin::{ConfigError, Origin, Sourced};
use super::role::RoleSources;
use crate::arn::Arn;
use crate::endpoint;
use crate::identity::IdentitySpec;
use crate::rolesanywhere::{ClientConfig, ProxyEnv, SessionParams};
use crate::sts::{CHAINED_MAX_DURATION, ChainSettings, Hop};

/// The service's bounds on `durationSeconds`.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 900..=43200;
/// The official helper's session duration.
pub const DEFAULT_DURATION: i64 = 3600;
/// Seconds to wait for a connection, unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 5;
/// Seconds one attempt may take, unless configured.
pub const DEFAULT_TIMEOUT: u64 = 10;

/// The attempts one CreateSession may take (`AWS_MAX_ATTEMPTS`, `max_attempts`): enough
/// for any outage a retry can ride out, never a storm against a quota a fleet shares.
pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;

/// Everything a CreateSession call needs, validated.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub identity: IdentitySpec,
    pub params: SessionParams,
    pub client: ClientConfig,
    /// Where the endpoint came from, for `--debug`.
    pub endpoint_source: Origin,
    /// The roles to assume after CreateSession, if any.
    pub chain: Option<ChainSettings>,
    /// The STS endpoint a chain goes to (resolved also without one, for `--debug` and the
    /// precedence tests), and where it came from.
    pub sts_endpoint: String,
    pub sts_endpoint_source: Origin,
}

impl SessionSettings {
    /// The last component of the ARN of the role whose credentials are handed out (the
    /// last hop's in a chain): the name IMDS lists and, without a config file, the ECS
    /// path uses.
    pub fn role_name(&self) -> String {
        let arn = self.served_role_arn();
        arn.rsplit('/').next().unwrap_or(arn).to_owned()
    }

    /// The ARN of the role whose credentials are handed out: the last hop's in a chain.
    pub fn served_role_arn(&self) -> &str {
        self.chain
            .as_ref()
            .and_then(|c| c.hops.last())
            .map_or(&self.params.role_arn, |h| &h.role_arn)
    }
}

/// Validates one role's settings.
pub fn session_settings(
    role: &RoleSources,
    inputs: &Inputs,
) -> Result<SessionSettings, ConfigError> {
    let trust_anchor = required_arn(
        role,
        &role.trust_anchor_arn,
        ("--trust-anchor-arn", "trust_anchor_arn"),
        "rolesanywhere",
        "trust-anchor/",
    )?;
    let profile = required_arn(
        role,
        &role.profile_arn,
        ("--profile-arn", "profile_arn"),
        "rolesanywhere",
        "profile/",
    )?;
    let role_arn = required_arn(
        role,
        &role.role_arn,
        ("--role-arn", "role_arn"),
        "iam",
        "role/",
    )?;
    if trust_anchor.value.region != profile.value.region {
        return Err(profile.error(format!(
            "{}: trust anchor and profile regions don't match ({} and {}); use the profile of the trust anchor's region",
            profile.value, trust_anchor.value.region, profile.value.region
        )));
    }
    let region = role
        .region
        .as_ref()
        .map(|r| r.value.clone())
        .unwrap_or_else(|| trust_anchor.value.region.clone());
    if region.is_empty() {
        return Err(trust_anchor.error("names no region; give --region"));
    }
    let duration = role
        .session_duration
        .clone()
        .unwrap_or_else(|| Sourced::new(DEFAULT_DURATION, Origin::Default("the session duration")));
    if !DURATION_RANGE.contains(&duration.value) {
        return Err(duration.error(format!(
            "{} is out of range; the service accepts 900 to 43200 seconds (15 minutes to 12 hours)",
            duration.value
        )));
    }
    if let Some(name) = &role.role_session_name {
        check_session_name(name)?;
    }
    if !role.assume_roles.is_empty() && duration.value > i64::from(CHAINED_MAX_DURATION) {
        return Err(duration.error(format!(
            "{} is above {CHAINED_MAX_DURATION} seconds, the longest session of a role assumed by role chaining (--assume-role-arn); give {CHAINED_MAX_DURATION} or less",
            duration.value
        )));
    }
    let fips = role.use_fips_endpoint.as_ref().is_some_and(|f| f.value);
    let (url, endpoint_source) = match &role.endpoint {
        Some(given) => (given.value.clone(), given.origin.clone()),
        None => (
            endpoint::default_url(&region, fips),
            Origin::Default("the region's default endpoint"),
        ),
    };
    let identity = identity_spec(role, inputs)?;
    let mut client = ClientConfig::new(url);
    client.ca_bundle = role.ca_bundle.as_ref().map(|s| s.value.clone());
    client.insecure_skip_verify = role.no_verify_ssl;
    let seconds = |value: &Option<Sourced<u64>>, default: u64| {
        Duration::from_secs(value.as_ref().map_or(default, |s| s.value).max(1))
    };
    client.connect_timeout = seconds(&role.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    client.attempt_timeout = seconds(&role.timeout, DEFAULT_TIMEOUT);
    client.proxy = proxy_env(&inputs.env);
    if let Some(given) = &role.max_attempts {
        client.max_attempts = given
            .value
            .trim()
            .parse()
            .ok()
            .filter(|n| MAX_ATTEMPTS.contains(n))
            .ok_or_else(|| {
                given.error(format!(
                    "{:?} is not a number of attempts; use a whole number from 1 to {}",
                    given.value,
                    MAX_ATTEMPTS.end()
                ))
            })?;
    }
    let (sts_endpoint, sts_endpoint_source) = match &role.sts_endpoint {
        Some(given) => (given.value.clone(), given.origin.clone()),
        None => (
            crate::sts::settings::default_url(&region, fips),
            Origin::Default("the region's STS endpoint"),
        ),
    };
    let chain = chain_settings(
        role,
        &trust_anchor.value,
        &region,
        ClientConfig {
            endpoint: sts_endpoint.clone(),
            ..client.clone()
        },
        u32::try_from(duration.value).unwrap_or(CHAINED_MAX_DURATION),
    )?;
    Ok(SessionSettings {
        identity,
        params: SessionParams {
            trust_anchor_arn: trust_anchor.value.to_string(),
            profile_arn: profile.value.to_string(),
            role_arn: role_arn.value.to_string(),
            duration_seconds: u32::try_from(duration.value).unwrap_or(3600),
            role_session_name: role.role_session_name.as_ref().map(|s| s.value.clone()),
            region,
        },
        client,
        endpoint_source,
        chain,
        sts_endpoint,
        sts_endpoint_source,
    })
}

/// The role chain, checked: each role ARN in the trust anchor's partition, the session
/// names and external IDs as STS accepts them. STS is reached with the same trust, proxy
/// and timeouts as CreateSession.
fn chain_settings(
    role: &RoleSources,
    trust_anchor: &Arn,
    region: &str,
    client: ClientConfig,
    duration_seconds: u32,
) -> Result<Option<ChainSettings>, ConfigError> {
    if role.assume_roles.is_empty() {
        return Ok(None);
    }
    let mut hops = Vec::with_capacity(role.assume_roles.len());
    for hop in &role.assume_roles {
        let arn = parse_arn(&hop.role_arn, "iam", "role/")?;
        if arn.value.partition != trust_anchor.partition {
            return Err(hop.role_arn.error(format!(
                "is in partition {} but the trust anchor is in {}; STS cannot chain across partitions",
                arn.value.partition, trust_anchor.partition
            )));
        }
        if let Some(name) = &hop.role_session_name {
            check_session_name(name)?;
        }
        if let Some(id) = &hop.external_id {
            let valid = (2..=1224).contains(&id.value.len())
                && id
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
            if !valid {
                return Err(id.error(
                    "is not a valid external ID; use 2 to 1224 characters from letters, digits and _+=,.@:/-",
                ));
            }
        }
        hops.push(Hop {
            role_arn: arn.value.to_string(),
            role_session_name: hop.role_session_name.as_ref().map(|s| s.value.clone()),
            external_id: hop.external_id.as_ref().map(|s| s.value.clone()),
        });
    }
    let valid_url = reqwest::Url::parse(&client.endpoint)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if let (false, Some(given)) = (valid_url, &role.sts_endpoint) {
        return Err(given.error(format!(
            "{:?} is not a valid http(s) URL; give a URL such as https://sts.{region}.amazonaws.com",
            given.value
        )));
    }
    Ok(Some(ChainSettings {
        hops,
        duration_seconds,
        region: region.to_owned(),
        client,
    }))
}

fn check_session_name(name: &Sourced<String>) -> Result<(), ConfigError> {
    let valid = (2..=64).contains(&name.value.len())
        && name
            .value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(name.error(format!(
            "{:?} is not a valid session name; use 2 to 64 characters from letters, digits and _+=,.@-",
            name.value
        )))
    }
}

fn required_arn(
    role: &RoleSources,
    value: &Option<Sourced<String>>,
    (flag, key): (&'static str, &str),
    service: &str,
    resource_prefix: &str,
) -> Result<Sourced<Arn>, ConfigError> {
    let Some(given) = value.as_ref().filter(|v| !v.value.is_empty()) else {
        return Err(ConfigError::at(
            role.absent(flag, key),
            "is required; give the ARN",
        ));
    };
    parse_arn(given, service, resource_prefix)
}

/// `given` as an ARN of `service` whose resource starts with `resource_prefix`.
fn parse_arn(
    given: &Sourced<String>,
    service: &str,
    resource_prefix: &str,
) -> Result<Sourced<Arn>, ConfigError> {
    let arn: Arn = given
        .value
        .parse()
        .map_err(|e| given.error(format!("{:?} is not an ARN: {e}", given.value)))?;
    if arn.service != service
        || !arn.resource.starts_with(resource_prefix)
        || arn.resource.len() == resource_prefix.len()
    {
        return Err(given.error(format!(
            "{:?} is not a {service} {} ARN (arn:PARTITION:{service}:REGION:ACCOUNT:{resource_prefix}ID)",
            given.value,
            resource_prefix.trim_end_matches('/')
        )));
    }
    Ok(Sourced::new(arn, given.origin.clone()))
}

/// The proxy variables, upper case first as Go reads them.
fn proxy_env(env: &super::inputs::Env) -> ProxyEnv {
    let either = |upper: &str, lower: &str| env.nonempty(upper).or_else(|| env.nonempty(lower));
    ProxyEnv {
        https: either("HTTPS_PROXY", "https_proxy"),
        http: either("HTTP_PROXY", "http_proxy"),
        no_proxy: either("NO_PROXY", "no_proxy"),
    }
}
