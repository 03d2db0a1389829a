//! Amazon Resource Names, parsed far enough to check the three ARNs of a CreateSession
//! call before any request: their shape, their service, and their regions.

use std::fmt;

/// An ARN: `arn:partition:service:region:account:resource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

/// Why a string is not an ARN, worded like the SDK's errors so that they are recognisable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("it does not start with \"arn:\"")]
    Prefix,
    #[error("it has fewer than six ':'-separated sections")]
    Sections,
}

impl std::str::FromStr for Arn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("arn:").ok_or(ArnError::Prefix)?;
        let mut parts = rest.splitn(5, ':');
        let mut next = || parts.next().map(str::to_owned).ok_or(ArnError::Sections);
        Ok(Self {
            partition: next()?,
            service: next()?,
            region: next()?,
            account: next()?,
            resource: next()?,
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let a: Arn = "arn:aws:iam::123456789012:role/path/x".parse().unwrap();
        assert_eq!(a.service, "iam");
        assert_eq!(a.region, "");
        assert_eq!(a.resource, "role/path/x");
        assert_eq!(a.to_string(), "arn:aws:iam::123456789012:role/path/x");
        let t: Arn = "arn:aws-us-gov:rolesanywhere:us-gov-west-1:1:trust-anchor/a:b"
            .parse()
            .unwrap();
        assert_eq!(t.resource, "trust-anchor/a:b");
        assert_eq!("nope".parse::<Arn>(), Err(ArnError::Prefix));
        assert_eq!("arn:aws:iam:".parse::<Arn>(), Err(ArnError::Sections));
    }
}
