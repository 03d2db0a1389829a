//! CreateSession after authentication: the request parameters, the trust anchor and chain,
//! the profile and role, and the issued session (signing-spec §1.2, §3.1 and §4).

use serde_json::{Map, Value, json};

use super::chain::{self, Cert};
use super::config::{MAX_DURATION, ProfileConfig};
use super::errors::ServiceError;
use super::sessions::{self, Session};
use super::state::State;
use super::verify::Authenticated;
use crate::sigv4x509;

/// The longest ARN the API accepts.
const MAX_ARN: usize = 1011;

/// The three ARNs and the optional members of a request.
#[derive(Debug, Default)]
struct Params {
    profile_arn: Option<String>,
    role_arn: Option<String>,
    trust_anchor_arn: Option<String>,
    duration_seconds: Option<i64>,
    role_session_name: Option<String>,
}

/// A parsed ARN.
#[derive(Debug)]
struct Arn<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

/// Answers an authenticated CreateSession: the 201 body, or the refusal.
pub fn create_session(
    state: &State,
    auth: &Authenticated,
    query: &str,
    body: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    let now = state.now();
    let params = params(query, body)?;
    let profile_arn = required(params.profile_arn.as_deref(), "profileArn")?;
    let role_arn = required(params.role_arn.as_deref(), "roleArn")?;
    let anchor_arn = required(params.trust_anchor_arn.as_deref(), "trustAnchorArn")?;
    let profile = parse_arn(profile_arn, "profileArn", "rolesanywhere", "profile/")?;
    let role = parse_arn(role_arn, "roleArn", "iam", "role/")?;
    let anchor = parse_arn(
        anchor_arn,
        "trustAnchorArn",
        "rolesanywhere",
        "trust-anchor/",
    )?;
    if let Some(d) = params.duration_seconds {
        let min = i64::from(state.min_duration);
        if d < min {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            )));
        }
        if d > i64::from(MAX_DURATION) {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {MAX_DURATION}"
            )));
        }
    }
    if let Some(name) = &params.role_session_name {
        check_session_name(name)?;
    }
    for (what, arn, text) in [
        ("Trust anchor", &anchor, anchor_arn),
        ("Profile", &profile, profile_arn),
    ] {
        if arn.region != state.region {
            return Err(ServiceError::not_found(format!(
                "{what} {text} is not in region {}, the region of this endpoint",
                state.region
            )));
        }
    }

    // The trust anchor and the chain.
    let (index, trust_anchor) = state
        .anchors
        .iter()
        .enumerate()
        .find(|(_, a)| a.arn.as_deref() == Some(anchor_arn))
        .or_else(|| {
            state
                .anchors
                .iter()
                .enumerate()
                .find(|(_, a)| a.arn.is_none())
        })
        .ok_or_else(|| {
            ServiceError::not_found(format!("Trust anchor {anchor_arn} does not exist"))
        })?;
    if !trust_anchor.enabled {
        return Err(ServiceError::access_denied(format!(
            "Trust anchor {anchor_arn} is disabled"
        )));
    }
    let mut key = Vec::with_capacity(auth.leaf_b64.len() + 64);
    key.extend_from_slice(&(index as u64).to_be_bytes());
    key.extend_from_slice(auth.leaf_b64.as_bytes());
    key.push(b'\n');
    key.extend_from_slice(auth.chain_b64.as_deref().unwrap_or("").as_bytes());
    let path = state
        .paths
        .get_or_try(&key, || {
            auth.leaf.check_leaf_profile()?;
            let pool = chain_pool(auth.chain_b64.as_deref())?;
            chain::build_path(&auth.leaf, &pool, &trust_anchor.certs, &state.crls)
        })
        .map_err(ServiceError::untrusted)?;
    path.check_validity(now).map_err(ServiceError::untrusted)?;

    // The profile and the role.
    let implicit;
    let profile_config: &ProfileConfig = if state.profiles.is_empty() {
        implicit = ProfileConfig {
            arn: profile_arn.to_owned(),
            role_arns: vec![role_arn.to_owned()],
            duration_seconds: MAX_DURATION,
            accept_role_session_name: true,
            enabled: true,
        };
        &implicit
    } else {
        state
            .profiles
            .iter()
            .find(|p| p.arn == profile_arn)
            .ok_or_else(|| {
                ServiceError::not_found(format!("Profile {profile_arn} does not exist"))
            })?
    };
    if !profile_config.enabled {
        return Err(ServiceError::access_denied(format!(
            "Profile {profile_arn} is disabled"
        )));
    }
    if !profile_config.role_arns.iter().any(|r| r == role_arn) {
        return Err(ServiceError::access_denied(format!(
            "Unable to assume role for {role_arn}: the role is not in profile {profile_arn}"
        )));
    }
    if params.role_session_name.is_some() && !profile_config.accept_role_session_name {
        return Err(ServiceError::access_denied(
            "Not authorized to set roleSessionName.",
        ));
    }
    let duration = params
        .duration_seconds
        .unwrap_or(i64::from(profile_config.duration_seconds))
        .min(i64::from(profile_config.duration_seconds));

    // The session.
    let session_name = params
        .role_session_name
        .clone()
        .unwrap_or_else(|| auth.leaf.serial_hex.clone());
    let role_name = role.resource.rsplit('/').next().unwrap_or(role.resource);
    let assumed_role_arn = format!(
        "arn:{}:sts::{}:assumed-role/{role_name}/{session_name}",
        role.partition, role.account
    );
    let assumed_role_id = format!("{}:{session_name}", sessions::role_id(role_arn));
    let (access_key_id, secret, token) = sessions::new_credentials().map_err(|e| {
        ServiceError::other(
            super::errors::ErrorKind::InternalServer,
            format!("the system random generator failed: {e}"),
        )
    })?;
    let expiration = now + duration + state.faults.expiry_skew_seconds();
    let source = source_identity(&auth.leaf);
    let body = json!({
        "credentialSet": [{
            "assumedRoleUser": { "arn": assumed_role_arn, "assumedRoleId": assumed_role_id },
            "credentials": {
                "accessKeyId": access_key_id,
                "expiration": chain::rfc3339(expiration),
                "secretAccessKey": secret.as_str(),
                "sessionToken": token.as_str(),
            },
            "packedPolicySize": 0,
            "roleArn": role_arn,
            "sourceIdentity": source,
        }],
        "subjectArn": format!(
            "arn:{}:rolesanywhere:{}:{}:subject/{}",
            profile.partition, state.region, profile.account, subject_id(&auth.leaf)
        ),
    });
    state.sessions.insert(
        Session {
            access_key_id,
            secret_access_key: secret,
            session_token: token,
            expiration,
            assumed_role_arn,
            assumed_role_id,
            account: role.account.to_owned(),
            role_arn: role_arn.to_owned(),
            source_identity: Some(source),
        },
        now,
    );
    serde_json::to_vec(&body)
        .map_err(|e| ServiceError::other(super::errors::ErrorKind::InternalServer, e.to_string()))
}

/// The certificates of `X-Amz-X509-Chain`: base64 DER joined by `,`, at most five.
fn chain_pool(header: Option<&str>) -> Result<Vec<Cert>, String> {
    let Some(header) = header else {
        return Ok(Vec::new());
    };
    let parts: Vec<&str> = header
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() > chain::MAX_CHAIN {
        return Err(format!(
            "X-Amz-X509-Chain holds {} certificates; at most {} are accepted",
            parts.len(),
            chain::MAX_CHAIN
        ));
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Cert::from_base64(p).map_err(|e| format!("X-Amz-X509-Chain certificate {} {e}", i + 1))
        })
        .collect()
}

/// The ARNs from the query string and the JSON body, and the body's optional members.
fn params(query: &str, body: &[u8]) -> Result<Params, ServiceError> {
    let mut p = Params::default();
    for (name, value) in sigv4x509::decode_query(query) {
        let slot = match name.as_str() {
            "profileArn" => &mut p.profile_arn,
            "roleArn" => &mut p.role_arn,
            "trustAnchorArn" => &mut p.trust_anchor_arn,
            _ => continue,
        };
        if slot.is_some() {
            return Err(ServiceError::validation(format!(
                "{name} appears more than once in the query string"
            )));
        }
        *slot = Some(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ServiceError::validation("The request body is not UTF-8 JSON"))?;
    if text.trim().is_empty() {
        return Ok(p);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ServiceError::validation(format!("The request body is not valid JSON: {e}"))
    })?;
    let Value::Object(members) = value else {
        return Err(ServiceError::validation(
            "The request body must be a JSON object",
        ));
    };
    for (name, slot) in [
        ("profileArn", &mut p.profile_arn),
        ("roleArn", &mut p.role_arn),
        ("trustAnchorArn", &mut p.trust_anchor_arn),
    ] {
        let Some(from_body) = string_member(&members, name)? else {
            continue;
        };
        match slot {
            Some(from_query) if *from_query != from_body => {
                return Err(ServiceError::validation(format!(
                    "{name} is given in the query string and in the body with different values"
                )));
            }
            _ => *slot = Some(from_body),
        }
    }
    p.duration_seconds = match members.get("durationSeconds") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ServiceError::validation(format!("durationSeconds must be an integer, not {v}"))
        })?),
    };
    p.role_session_name = string_member(&members, "roleSessionName")?;
    if let Some(props) = members.get("instanceProperties") {
        check_instance_properties(props)?;
    }
    Ok(p)
}

fn string_member(members: &Map<String, Value>, name: &str) -> Result<Option<String>, ServiceError> {
    match members.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ServiceError::validation(format!(
            "{name} must be a string, not {other}"
        ))),
    }
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ServiceError> {
    value.ok_or_else(|| {
        ServiceError::validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` with the rules of the API model
/// for this member, stricter where the model is loose (a 12-digit account, a named resource).
fn parse_arn<'a>(
    text: &'a str,
    member: &str,
    service: &str,
    resource_prefix: &str,
) -> Result<Arn<'a>, ServiceError> {
    let invalid = || {
        let pattern = match member {
            "roleArn" => "arn:aws(-[^:]+)?:iam(:.*){2}(:role.*)",
            "profileArn" => "arn:aws(-[^:]+)?:rolesanywhere(:.*){2}(:profile/.*)",
            _ => "arn:aws(-[^:]+)?:rolesanywhere(:.*){2}(:trust-anchor/.*)",
        };
        ServiceError::validation(format!(
            "1 validation error detected: Value '{text}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        ))
    };
    if text.is_empty() || text.len() > MAX_ARN {
        return Err(invalid());
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [arn, partition, svc, region, account, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    let partition_ok = *partition == "aws"
        || partition.strip_prefix("aws-").is_some_and(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        });
    let region_ok = if service == "iam" {
        region.is_empty()
    } else {
        !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let name = resource.strip_prefix(resource_prefix).unwrap_or("");
    if *arn != "arn"
        || !partition_ok
        || *svc != service
        || !region_ok
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
        || name.is_empty()
        || name.ends_with('/')
        || name.bytes().any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(invalid());
    }
    Ok(Arn {
        partition,
        region,
        account,
        resource,
    })
}

/// STS rules for a role session name: 2 to 64 characters of `[\w+=,.@-]`.
fn check_session_name(name: &str) -> Result<(), ServiceError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::validation(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64 and match [\\w+=,.@-]*"
        )))
    }
}

/// At most 50 string entries, each key and value 1 to 200 characters.
fn check_instance_properties(value: &Value) -> Result<(), ServiceError> {
    let Value::Object(map) = value else {
        return Err(ServiceError::validation(
            "instanceProperties must be a JSON object",
        ));
    };
    if map.len() > 50 {
        return Err(ServiceError::validation(
            "instanceProperties holds more than 50 entries",
        ));
    }
    for (k, v) in map {
        let Value::String(v) = v else {
            return Err(ServiceError::validation(format!(
                "instanceProperties.{k} must be a string"
            )));
        };
        let len_ok = |s: &str| (1..=200).contains(&s.chars().count());
        if !len_ok(k) || !len_ok(v) {
            return Err(ServiceError::validation(
                "instanceProperties keys and values must be 1 to 200 characters",
            ));
        }
    }
    Ok(())
}

/// The source identity of signing-spec §4: `CN=<cn>` up to 61 characters, the bare CN for
/// 62 to 64, otherwise `ID=<hex serial>` padded to an even length (our choice for longer CNs).
pub fn source_identity(leaf: &Cert) -> String {
    match leaf.common_name.as_deref() {
        Some(cn) if !cn.is_empty() && cn.chars().count() <= 61 => format!("CN={cn}"),
        Some(cn) if !cn.is_empty() && cn.chars().count() <= 64 => cn.to_owned(),
        _ => {
            let hex = &leaf.serial_hex;
            if hex.len() % 2 == 1 {
                format!("ID=0{hex}")
            } else {
                format!("ID={hex}")
            }
        }
    }
}

/// A stable UUID-shaped id for the certificate's subject (the real service keys subjects by
/// the subject name).
fn subject_id(leaf: &Cert) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(leaf.subject.as_bytes());
    super::ids::uuid_shaped(&d[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_checked() {
        assert!(
            parse_arn(
                "arn:aws:iam::123456789012:role/x",
                "roleArn",
                "iam",
                "role/"
            )
            .is_ok()
        );
        assert!(
            parse_arn(
                "arn:aws:iam::123456789012:role/path/x",
                "roleArn",
                "iam",
                "role/"
            )
            .is_ok()
        );
        let a = parse_arn(
            "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:profile/p",
            "profileArn",
            "rolesanywhere",
            "profile/",
        )
        .unwrap();
        assert_eq!(
            (a.partition, a.region, a.account),
            ("aws-cn", "cn-north-1", "123456789012")
        );
        for bad in [
            "",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "not-an-arn",
        ] {
            let e = parse_arn(bad, "roleArn", "iam", "role/").unwrap_err();
            assert_eq!(e.kind, super::super::errors::ErrorKind::Validation, "{bad}");
        }
    }

    #[test]
    fn body_and_query_must_agree() {
        let q = "roleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fa";
        let p = params(
            q,
            br#"{"roleArn":"arn:aws:iam::123456789012:role/a","durationSeconds":900}"#,
        )
        .unwrap();
        assert_eq!(
            p.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/a")
        );
        assert_eq!(p.duration_seconds, Some(900));
        let e = params(q, br#"{"roleArn":"arn:aws:iam::123456789012:role/b"}"#).unwrap_err();
        assert!(e.message.contains("different values"));
        assert!(params("", b"[1]").is_err());
        assert!(params("", br#"{"durationSeconds":"x"}"#).is_err());
        assert!(params(&format!("{q}&{q}"), b"").is_err());
        assert!(params("", b"").unwrap().role_arn.is_none());
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert!(check_session_name("ok.name@x").is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name("has space").is_err());
        assert!(check_session_name(&"x".repeat(65)).is_err());
    }
}
