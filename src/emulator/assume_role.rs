//! STS AssumeRole with a session the emulator issued: role chaining.
//!
//! The signature, token and date are checked before this runs (see [`super::sts`]). Here:
//! the parameters as STS validates them, the chaining limit (every session the emulator
//! issues is a role session, so every AssumeRole is chained and lasts at most one hour),
//! the trust of the role ([`RoleTrustConfig`]), and the source identity, which the new
//! session inherits and which no request may change. Refusals use STS's codes:
//! `ValidationError` (400) and `AccessDenied` (403).

use hyper::StatusCode;

use super::config::RoleTrustConfig;
use super::sessions::{self, Session, SessionStore};
use super::sts_xml::{NAMESPACE, StsAnswer, error, xml_escape};
use crate::arn::Arn;

/// The one-hour limit of a session assumed by role chaining.
const CHAINED_MAX: i64 = 3600;
/// STS's `DurationSeconds` when none is given.
const DEFAULT_DURATION: i64 = 3600;

/// Who may assume which role.
#[derive(Clone, Debug, Default)]
pub struct RoleTrust {
    /// The roles; when empty, any session may assume any role.
    pub roles: Vec<RoleTrustConfig>,
    /// The shortest `DurationSeconds` accepted (900 unless short sessions are allowed).
    pub min_duration: u32,
}

/// Answers AssumeRole for `caller`, with the request's `params`.
pub fn answer(
    sessions: &SessionStore,
    trust: &RoleTrust,
    caller: &Session,
    params: &[(String, String)],
    now: i64,
    rid: &str,
) -> StsAnswer {
    match assume(sessions, trust, caller, params, now, rid) {
        Ok(answer) | Err(answer) => answer,
    }
}

fn assume(
    sessions: &SessionStore,
    trust: &RoleTrust,
    caller: &Session,
    params: &[(String, String)],
    now: i64,
    rid: &str,
) -> Result<StsAnswer, StsAnswer> {
    let get = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let invalid = |m: &str| error(StatusCode::BAD_REQUEST, "ValidationError", m, rid);
    let role_arn = get("RoleArn").ok_or_else(|| {
        invalid("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
    })?;
    let role: Arn = role_arn
        .parse()
        .ok()
        .filter(|a: &Arn| a.service == "iam" && a.resource.starts_with("role/"))
        .ok_or_else(|| invalid(&format!("{role_arn} is invalid")))?;
    let session_name = get("RoleSessionName").ok_or_else(|| {
        invalid("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
    })?;
    let name_ok = (2..=64).contains(&session_name.len())
        && session_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if !name_ok {
        return Err(invalid(&format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    let duration = match get("DurationSeconds") {
        None => DEFAULT_DURATION,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| invalid(&format!("DurationSeconds {text:?} is not a number")))?,
    };
    if duration > CHAINED_MAX {
        return Err(invalid(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration < i64::from(trust.min_duration) {
        return Err(invalid(&format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {}",
            trust.min_duration
        )));
    }
    let denied = || {
        error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.assumed_role_arn
            ),
            rid,
        )
    };
    let role_config = if trust.roles.is_empty() {
        None
    } else {
        let config = trust
            .roles
            .iter()
            .find(|r| r.arn == role_arn)
            .ok_or_else(denied)?;
        if !config.trusted_role_arns.contains(&caller.role_arn) {
            return Err(denied());
        }
        if let Some(wanted) = &config.external_id
            && get("ExternalId") != Some(wanted.as_str())
        {
            return Err(denied());
        }
        Some(config)
    };
    // The source identity persists along the chain: a request may repeat it, not change it.
    if let Some(asked) = get("SourceIdentity")
        && caller
            .source_identity
            .as_deref()
            .is_some_and(|s| s != asked)
    {
        return Err(denied());
    }
    let source_identity = caller
        .source_identity
        .clone()
        .or_else(|| get("SourceIdentity").map(str::to_owned));
    let duration = role_config
        .and_then(|c| c.duration_seconds)
        .map_or(duration, i64::from);

    let role_name = role.resource.rsplit('/').next().unwrap_or(&role.resource);
    let assumed_role_arn = format!(
        "arn:{}:sts::{}:assumed-role/{role_name}/{session_name}",
        role.partition, role.account
    );
    let assumed_role_id = format!("{}:{session_name}", sessions::role_id(role_arn));
    let (access_key_id, secret, token) = sessions::new_credentials().map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            &format!("the system random generator failed: {e}"),
            rid,
        )
    })?;
    let expiration = now + duration;
    let source_element = source_identity
        .as_deref()
        .map(|s| format!("    <SourceIdentity>{}</SourceIdentity>\n", xml_escape(s)))
        .unwrap_or_default();
    let body = format!(
        "<AssumeRoleResponse xmlns=\"{NAMESPACE}\">\n  <AssumeRoleResult>\n{source_element}    <AssumedRoleUser>\n      <AssumedRoleId>{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>{access_key_id}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>\n    <PackedPolicySize>0</PackedPolicySize>\n  </AssumeRoleResult>\n  <ResponseMetadata>\n    <RequestId>{rid}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n",
        xml_escape(&assumed_role_id),
        xml_escape(&assumed_role_arn),
        xml_escape(&secret),
        xml_escape(&token),
        super::chain::rfc3339(expiration),
    );
    sessions.insert(
        Session {
            access_key_id,
            secret_access_key: secret,
            session_token: token,
            expiration,
            assumed_role_arn,
            assumed_role_id,
            account: role.account.clone(),
            role_arn: role_arn.to_owned(),
            source_identity,
        },
        now,
    );
    Ok(StsAnswer {
        status: StatusCode::OK,
        body,
        code: None,
    })
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    const CENTRAL: &str = "arn:aws:iam::111122223333:role/central";
    const WORKLOAD: &str = "arn:aws:iam::444455556666:role/workload";
    const NOW: i64 = 1_720_265_939;

    fn caller() -> Session {
        Session {
            access_key_id: "ASIACALLER".into(),
            secret_access_key: Zeroizing::new("s".into()),
            session_token: Zeroizing::new("t".into()),
            expiration: NOW + 600,
            assumed_role_arn: "arn:aws:sts::111122223333:assumed-role/central/host".into(),
            assumed_role_id: "AROAX:host".into(),
            account: "111122223333".into(),
            role_arn: CENTRAL.into(),
            source_identity: Some("CN=host-1".into()),
        }
    }

    fn trust(external_id: Option<&str>) -> RoleTrust {
        RoleTrust {
            roles: vec![RoleTrustConfig {
                arn: WORKLOAD.into(),
                trusted_role_arns: vec![CENTRAL.into()],
                external_id: external_id.map(str::to_owned),
                duration_seconds: None,
            }],
            min_duration: 900,
        }
    }

    fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        [
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", WORKLOAD),
            ("RoleSessionName", "chained"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn a_trusted_role_gets_a_session_that_keeps_the_source_identity() {
        let store = SessionStore::new(10);
        let ok = answer(&store, &trust(None), &caller(), &params(&[]), NOW, "r");
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        assert!(
            ok.body
                .contains("<SourceIdentity>CN=host-1</SourceIdentity>")
        );
        assert!(
            ok.body
                .contains("<Arn>arn:aws:sts::444455556666:assumed-role/workload/chained</Arn>")
        );
        let key = ok
            .body
            .split("<AccessKeyId>")
            .nth(1)
            .and_then(|rest| rest.split("</AccessKeyId>").next())
            .unwrap();
        let issued = store.get(key).unwrap();
        assert_eq!(issued.role_arn, WORKLOAD);
        assert_eq!(issued.source_identity.as_deref(), Some("CN=host-1"));
        assert_eq!(issued.expiration, NOW + 3600);
    }

    #[test]
    fn refusals_carry_stss_codes() {
        let store = SessionStore::new(10);
        let code = |trust: &RoleTrust, caller: &Session, extra: &[(&str, &str)]| {
            answer(&store, trust, caller, &params(extra), NOW, "r")
        };
        let long = code(&trust(None), &caller(), &[("DurationSeconds", "3601")]);
        assert_eq!(long.code, Some("ValidationError"));
        assert_eq!(long.status, StatusCode::BAD_REQUEST);
        assert!(long.body.contains("role chaining"), "{}", long.body);

        let stranger = Session {
            role_arn: "arn:aws:iam::111122223333:role/other".into(),
            ..caller()
        };
        let denied = code(&trust(None), &stranger, &[]);
        assert_eq!(denied.code, Some("AccessDenied"));
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert!(denied.body.contains("is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444455556666:role/workload"));

        assert_eq!(
            code(&trust(Some("x")), &caller(), &[]).code,
            Some("AccessDenied")
        );
        assert_eq!(
            code(&trust(Some("x")), &caller(), &[("ExternalId", "y")]).code,
            Some("AccessDenied")
        );
        assert_eq!(
            code(&trust(Some("x")), &caller(), &[("ExternalId", "x")]).code,
            None
        );
        assert_eq!(
            code(&trust(None), &caller(), &[("SourceIdentity", "CN=other")]).code,
            Some("AccessDenied")
        );
        assert_eq!(
            code(&trust(None), &caller(), &[("RoleSessionName", "a b")]).code,
            Some("ValidationError")
        );
        assert_eq!(
            code(&trust(None), &caller(), &[("DurationSeconds", "60")]).code,
            Some("ValidationError")
        );
        // No roles configured: anyone may assume anything.
        assert_eq!(code(&RoleTrust::default(), &stranger, &[]).code, None);
    }
}
