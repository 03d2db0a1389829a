//! The negative matrix of issue 3: one test per refusal, each asserting the status,
//! `X-Amzn-ErrorType`, message, and the emulator's detailed reason.

use rcgen::KeyUsagePurpose;
use rolesanywhere_helper::emulator::{Emulator, EmulatorConfig};
use rolesanywhere_helper::sigv4x509::{self, Algorithm};

use crate::common;
use crate::emulator::*;

const UNTRUSTED: &str = "Untrusted Signing Certificate";
const INVALID: &str = "Invalid signature";
const DENIED: &str = "AccessDeniedException";

#[tokio::test]
async fn unknown_trust_anchor_arn_is_not_found() {
    let root = TestCa::root("anchor root");
    let id = root.issue(CertSpec::default());
    let emu = start_with_profile(&root.pem, |_| {}).await;
    let other = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/unknown";
    let req = id.request_with(
        &host(&emu),
        REGION,
        now(),
        &[
            ("profileArn", PROFILE),
            ("roleArn", ROLE),
            ("trustAnchorArn", other),
        ],
        BODY,
    );
    post(&emu, &req).await.assert_refused(
        404,
        "ResourceNotFoundException",
        &format!("Trust anchor {other} does not exist"),
        "does not exist",
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn leaf_from_an_unknown_ca_is_untrusted() {
    let trusted = TestCa::root("trusted root");
    let stranger = TestCa::root("stranger root");
    let id = stranger.issue(CertSpec::default());
    let emu = start(&trusted.pem).await;
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, UNTRUSTED, "no trust chain");
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_intermediate_is_untrusted() {
    let root = TestCa::root("root m");
    let mid = root.intermediate("intermediate m");
    let id = mid.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, UNTRUSTED, "is an intermediate missing?");
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_leaf_is_untrusted() {
    let root = TestCa::root("root e");
    let t = now();
    let id = root.issue(CertSpec {
        not_before: t - time::Duration::days(10),
        not_after: t - time::Duration::days(1),
        ..CertSpec::default()
    });
    let emu = start(&root.pem).await;
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, UNTRUSTED, "expired at");
    emu.shutdown().await;
}

#[tokio::test]
async fn ca_certificate_as_leaf_is_untrusted() {
    let root = TestCa::root("root c");
    let id = root.issue(CertSpec {
        ca: true,
        key_usages: vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ],
        ..CertSpec::default()
    });
    let emu = start(&root.pem).await;
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, UNTRUSTED, "is a CA certificate");
    emu.shutdown().await;
}

#[tokio::test]
async fn sha1_signed_leaf_is_untrusted() {
    let root = TestCa::root("root s");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &root.pem).unwrap();
    std::fs::write(dir.path().join("ca.key"), root.key_pem()).unwrap();
    std::fs::write(
        dir.path().join("ext.cnf"),
        "[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    common::openssl(
        dir.path(),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "leaf.sec1",
        ],
    );
    common::openssl(
        dir.path(),
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "leaf.sec1",
            "-out",
            "leaf.key",
        ],
    );
    common::openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=sha1-leaf",
            "-out",
            "leaf.csr",
        ],
    );
    common::openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-sha1",
            "-days",
            "30",
            "-set_serial",
            "777",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "v3",
            "-outform",
            "DER",
            "-out",
            "leaf.der",
        ],
    );
    let text = String::from_utf8(common::openssl(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "leaf.der", "-noout", "-text",
        ],
    ))
    .unwrap();
    assert!(
        text.contains("sha1WithRSAEncryption") || text.contains("ecdsa-with-SHA1"),
        "{text}"
    );
    let id = TestIdentity::new(
        std::fs::read(dir.path().join("leaf.der")).unwrap(),
        &std::fs::read_to_string(dir.path().join("leaf.key")).unwrap(),
        Vec::new(),
    );
    let emu = start(&root.pem).await;
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, UNTRUSTED, "SHA-1 signatures are refused");
    emu.shutdown().await;
}

#[tokio::test]
async fn six_minutes_of_skew_is_signature_expired() {
    let root = TestCa::root("root k");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let late = id.request(&emu, now() - time::Duration::minutes(6), BODY);
    post(&emu, &late)
        .await
        .assert_refused(403, DENIED, "Signature expired", "at most 300 s");
    let early = id.request(&emu, now() + time::Duration::minutes(6), BODY);
    post(&emu, &early).await.assert_refused(
        403,
        DENIED,
        "Signature expired",
        "away from the server time",
    );
    // Four minutes is within the window.
    assert_eq!(
        post(
            &emu,
            &id.request(&emu, now() - time::Duration::minutes(4), BODY)
        )
        .await
        .status,
        201
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn changed_body_is_invalid_signature() {
    let root = TestCa::root("root b");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let mut req = id.request(&emu, now(), BODY);
    req.body = br#"{"durationSeconds":43200}"#.to_vec();
    post(&emu, &req)
        .await
        .assert_refused(403, DENIED, INVALID, "signature does not verify");
    emu.shutdown().await;
}

#[tokio::test]
async fn changed_signed_header_is_invalid_signature() {
    let root = TestCa::root("root h");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let mut req = id.request(&emu, now(), BODY);
    req.set_header("content-type", "application/json; charset=utf-8");
    post(&emu, &req)
        .await
        .assert_refused(403, DENIED, INVALID, "signature does not verify");
    // An unsigned header may change freely.
    let mut req = id.request(&emu, now(), BODY);
    req.set_header("user-agent", "anything");
    assert_eq!(post(&emu, &req).await.status, 201);
    emu.shutdown().await;
}

#[tokio::test]
async fn serial_mismatch_is_invalid_signature() {
    let root = TestCa::root("root n");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let mut req = id.request(&emu, now(), BODY);
    let auth = req
        .header("authorization")
        .replace("Credential=4660/", "Credential=4661/");
    req.set_header("authorization", &auth);
    post(&emu, &req).await.assert_refused(
        403,
        DENIED,
        INVALID,
        "Credential serial 4661 is not the serial 4660",
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_algorithm_name_is_invalid_signature() {
    let root = TestCa::root("root a");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    // The name the Python library derives from a SHA-384-signed certificate.
    let mut req = id.request(&emu, now(), BODY);
    let auth = req
        .header("authorization")
        .replace("AWS4-X509-ECDSA-SHA256", "AWS4-X509-ECDSA-SHA384");
    req.set_header("authorization", &auth);
    post(&emu, &req).await.assert_refused(
        403,
        DENIED,
        INVALID,
        "is not AWS4-X509-RSA-SHA256 or AWS4-X509-ECDSA-SHA256",
    );
    // The RSA name with an EC key.
    let mut req = id.request(&emu, now(), BODY);
    let auth = req
        .header("authorization")
        .replace("AWS4-X509-ECDSA-SHA256", "AWS4-X509-RSA-SHA256");
    req.set_header("authorization", &auth);
    post(&emu, &req).await.assert_refused(
        403,
        DENIED,
        INVALID,
        "does not fit the certificate's EC P-256 key",
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn x509_header_not_signed_is_invalid_signature() {
    let root = TestCa::root("root x");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    // Signed correctly, but over content-type, host and x-amz-date only.
    let host = host(&emu);
    let amz_date = sigv4x509::amz_date(now());
    let query = sigv4x509::canonical_query([
        ("profileArn", PROFILE),
        ("roleArn", ROLE),
        ("trustAnchorArn", TA),
    ]);
    let x509 = sigv4x509::certificate_header(&id.leaf_der);
    let headers = [
        ("content-type", "application/json"),
        ("host", host.as_str()),
        ("x-amz-date", amz_date.as_str()),
    ];
    let canonical =
        sigv4x509::canonical_request("POST", "/sessions", &query, &headers, BODY.as_bytes());
    let sts = sigv4x509::string_to_sign(Algorithm::EcdsaSha256, &amz_date, REGION, &canonical.text);
    let auth = sigv4x509::authorization(
        Algorithm::EcdsaSha256,
        &id.serial,
        &amz_date,
        REGION,
        &canonical.signed_headers,
        &id.sign(&sts),
    );
    let req = Outgoing {
        path_and_query: format!("/sessions?{query}"),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .chain([
                ("x-amz-x509".to_owned(), x509),
                ("authorization".to_owned(), auth),
            ])
            .collect(),
        body: BODY.as_bytes().to_vec(),
    };
    post(&emu, &req).await.assert_refused(
        403,
        DENIED,
        INVALID,
        "x-amz-x509 is not in SignedHeaders",
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn duration_of_100_seconds_is_a_validation_error() {
    let root = TestCa::root("root d");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let req = id.request(&emu, now(), r#"{"durationSeconds":100}"#);
    post(&emu, &req).await.assert_refused(
        400,
        "ValidationException",
        "1 validation error detected: Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
        "durationSeconds",
    );
    let req = id.request(&emu, now(), r#"{"durationSeconds":43201}"#);
    assert_eq!(post(&emu, &req).await.status, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn malformed_arn_is_a_validation_error() {
    let root = TestCa::root("root r");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let bad = "arn:aws:iam::123456789012:user/not-a-role";
    let req = id.request_with(
        &host(&emu),
        REGION,
        now(),
        &[
            ("profileArn", PROFILE),
            ("roleArn", bad),
            ("trustAnchorArn", TA),
        ],
        BODY,
    );
    post(&emu, &req).await.assert_refused(
        400,
        "ValidationException",
        &format!("1 validation error detected: Value '{bad}' at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws(-[^:]+)?:iam(:.*){{2}}(:role.*)"),
        "roleArn",
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn leaf_revoked_by_crl_is_untrusted() {
    let root = TestCa::root("root v");
    let revoked = root.issue(CertSpec {
        serial: 9001,
        ..CertSpec::default()
    });
    let fine = root.issue(CertSpec {
        serial: 9002,
        ..CertSpec::default()
    });
    let mut config = EmulatorConfig::single_anchor(&root.pem, REGION).unwrap();
    config.add_crl(&root.crl_revoking(9001)).unwrap();
    let emu = Emulator::start(config).await.unwrap();
    post(&emu, &revoked.request(&emu, now(), BODY))
        .await
        .assert_refused(
            403,
            DENIED,
            UNTRUSTED,
            "(serial 9001) is revoked by the CRL",
        );
    assert_eq!(
        post(&emu, &fine.request(&emu, now(), BODY)).await.status,
        201
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn disabled_profile_is_access_denied() {
    let root = TestCa::root("root p");
    let id = root.issue(CertSpec::default());
    let emu = start_with_profile(&root.pem, |p| p.enabled = false).await;
    let msg = format!("Profile {PROFILE} is disabled");
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, &msg, "disabled");
    emu.shutdown().await;
}

#[tokio::test]
async fn role_not_in_profile_is_access_denied() {
    let root = TestCa::root("root o");
    let id = root.issue(CertSpec::default());
    let emu = start_with_profile(&root.pem, |p| {
        p.role_arns = vec!["arn:aws:iam::123456789012:role/other".into()]
    })
    .await;
    let msg = format!("Unable to assume role for {ROLE}: the role is not in profile {PROFILE}");
    post(&emu, &id.request(&emu, now(), BODY))
        .await
        .assert_refused(403, DENIED, &msg, "not in profile");
    emu.shutdown().await;
}

#[tokio::test]
async fn role_session_name_when_not_accepted_is_access_denied() {
    let root = TestCa::root("root q");
    let id = root.issue(CertSpec::default());
    let body = r#"{"durationSeconds":3600,"roleSessionName":"my-session"}"#;
    let emu = start_with_profile(&root.pem, |_| {}).await;
    post(&emu, &id.request(&emu, now(), body))
        .await
        .assert_refused(
            403,
            DENIED,
            "Not authorized to set roleSessionName.",
            "roleSessionName",
        );
    emu.shutdown().await;
    // Accepted when the profile says so, and used in the assumed-role ARN.
    let emu = start_with_profile(&root.pem, |p| p.accept_role_session_name = true).await;
    let reply = post(&emu, &id.request(&emu, now(), body)).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    assert_eq!(
        reply.json()["credentialSet"][0]["assumedRoleUser"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/dev-role/my-session"
    );
    // The profile's 3600 s caps a longer request.
    let reply = post(
        &emu,
        &id.request(&emu, now(), r#"{"durationSeconds":7200}"#),
    )
    .await;
    let exp = reply.json()["credentialSet"][0]["credentials"]["expiration"]
        .as_str()
        .unwrap()
        .to_owned();
    let exp =
        time::OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339).unwrap();
    assert!((exp - now() - time::Duration::seconds(3600)).abs() < time::Duration::seconds(5));
    emu.shutdown().await;
}
