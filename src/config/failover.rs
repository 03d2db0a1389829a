//! Regional failover of one role (config file only): further regions, each with its trust
//! anchor and profile ARNs (and optionally an endpoint), tried in order after the active
//! region's endpoint has failed `failover_after` times in a row with transient errors.
//!
//! ```toml
//! [[role]]
//! name = "app"
//! # ... the primary region's ARNs ...
//! failover_after = 3
//! failover = [
//!   { trust_anchor_arn = "arn:aws:rolesanywhere:us-west-2:111122223333:trust-anchor/...",
//!     profile_arn = "arn:aws:rolesanywhere:us-west-2:111122223333:profile/..." },
//! ]
//! ```

use super::file::FailoverEntry;
use super::origin::{ConfigError, Sourced};
use super::session::SessionSettings;
use crate::arn::Arn;

/// Transient failures in a row before the next region is tried, unless configured.
pub const DEFAULT_FAILOVER_AFTER: u32 = 3;

/// The validated failover of a role: the settings of each further region, in order.
#[derive(Clone, Debug)]
pub struct FailoverPlan {
    pub after: u32,
    /// Region name and settings of each further region.
    pub regions: Vec<(String, SessionSettings)>,
}

/// The failover plan of a role whose primary settings are `primary`.
pub fn failover_plan(
    primary: &SessionSettings,
    entries: Option<Sourced<Vec<FailoverEntry>>>,
    after: Option<Sourced<u32>>,
) -> Result<Option<FailoverPlan>, ConfigError> {
    let Some(entries) = entries else {
        if let Some(after) = after {
            return Err(after.error("needs failover = [...] with the further regions"));
        }
        return Ok(None);
    };
    let after_value = match &after {
        Some(a) if !(1..=100).contains(&a.value) => {
            return Err(a.error("must be a number of failures from 1 to 100"));
        }
        Some(a) => a.value,
        None => DEFAULT_FAILOVER_AFTER,
    };
    let mut regions = Vec::with_capacity(entries.value.len());
    for entry in &entries.value {
        let parse = |text: &str, what: &str, resource: &str| -> Result<Arn, ConfigError> {
            let arn: Arn = text
                .parse()
                .map_err(|e| entries.error(format!("{what} {text:?}: {e}")))?;
            if arn.service != "rolesanywhere" || !arn.resource.starts_with(resource) {
                return Err(entries.error(format!(
                    "{what} {text:?} is not a Roles Anywhere {resource} ARN"
                )));
            }
            Ok(arn)
        };
        let anchor = parse(&entry.trust_anchor_arn, "trust_anchor_arn", "trust-anchor/")?;
        let profile = parse(&entry.profile_arn, "profile_arn", "profile/")?;
        if anchor.region != profile.region || anchor.region.is_empty() {
            return Err(entries.error(format!(
                "the trust anchor and profile of a failover region must name the same region ({} and {})",
                anchor.region, profile.region
            )));
        }
        if anchor.region == primary.params.region {
            return Err(entries.error(format!(
                "region {} is the role's own; failover regions must differ",
                anchor.region
            )));
        }
        let mut settings = primary.clone();
        settings.params.trust_anchor_arn = entry.trust_anchor_arn.clone();
        settings.params.profile_arn = entry.profile_arn.clone();
        settings.params.region = anchor.region.clone();
        settings.client.endpoint = entry
            .endpoint
            .clone()
            .unwrap_or_else(|| crate::endpoint::default_url(&anchor.region, false));
        regions.push((anchor.region, settings));
    }
    if regions.is_empty() {
        return Err(entries.error("is empty; list at least one further region, or leave it out"));
    }
    Ok(Some(FailoverPlan {
        after: after_value,
        regions,
    }))
}
