//! The emulator over real HTTPS: the known-answer requests, positive paths, faults and the
//! request log. The helpers here (a test PKI made with rcgen, a signing client, an HTTPS
//! client trusting the emulator's CA) are shared with the other `emulator_*` modules.
//!
//! Requests are signed with the client-side `identity` key code and `sigv4x509::prepare`,
//! as a client would; the emulator verifies them with its own code.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rolesanywhere_helper::emulator::{Emulator, EmulatorConfig, ProfileConfig};
use rolesanywhere_helper::identity::key::{Digest, PrivateKey};
use rolesanywhere_helper::sigv4x509::{self, Algorithm, SessionRequest};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common;

pub const REGION: &str = "us-east-1";
pub const TA: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-1";
pub const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p-1";
pub const ROLE: &str = "arn:aws:iam::123456789012:role/dev-role";

// ---------------------------------------------------------------------------------------
// A test PKI.

/// A CA made with rcgen (P-256 unless said otherwise).
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pub der: Vec<u8>,
    pub pem: String,
}

/// How to issue a test certificate.
pub struct CertSpec {
    pub cn: &'static str,
    pub ca: bool,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: u64,
}

impl Default for CertSpec {
    fn default() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            cn: "test-leaf",
            ca: false,
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(30),
            serial: 4660, // 0x1234
        }
    }
}

fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(path_len.map_or(
        BasicConstraints::Unconstrained,
        BasicConstraints::Constrained,
    ));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    p.serial_number = Some(SerialNumber::from_slice(&[0x42, cn.len() as u8]));
    p
}

impl TestCa {
    pub fn root(cn: &str) -> Self {
        let params = ca_params(cn, None);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            params,
            key,
        }
    }

    pub fn intermediate(&self, cn: &str) -> Self {
        let params = ca_params(cn, Some(0));
        let key = KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        Self {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            params,
            key,
        }
    }

    /// The CA's key as PKCS#8 PEM (for openssl).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a P-256 certificate and returns it as a signing identity.
    pub fn issue(&self, spec: CertSpec) -> TestIdentity {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, spec.cn);
        p.is_ca = if spec.ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        p.key_usages = spec.key_usages;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = spec.not_before;
        p.not_after = spec.not_after;
        p.serial_number = Some(SerialNumber::from_slice(&spec.serial.to_be_bytes()));
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = p
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        TestIdentity::new(cert.der().to_vec(), &key.serialize_pem(), Vec::new())
    }

    /// A CRL signed by this CA revoking `serial`.
    pub fn crl_revoking(&self, serial: u64) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial.to_be_bytes()),
                revocation_time: now - time::Duration::minutes(5),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&Issuer::from_params(&self.params, &self.key))
            .unwrap()
            .der()
            .to_vec()
    }
}

// ---------------------------------------------------------------------------------------
// A signing client.

/// A leaf, its chain and its key: signs CreateSession requests as a client would.
pub struct TestIdentity {
    pub leaf_der: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    key: PrivateKey,
    pub serial: String,
    pub algorithm: Algorithm,
}

/// The parts of a request to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    pub fn set_header(&mut self, name: &str, value: &str) {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
                return;
            }
        }
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
}

impl TestIdentity {
    pub fn new(leaf_der: Vec<u8>, key_pem: &str, chain: Vec<Vec<u8>>) -> Self {
        let key = rolesanywhere_helper::identity::file::private_key(
            Path::new("test key"),
            key_pem.as_bytes(),
            None,
        )
        .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        let serial = cert.tbs_certificate.serial.to_str_radix(10);
        let algorithm = match key {
            PrivateKey::Rsa(_) => Algorithm::RsaSha256,
            _ => Algorithm::EcdsaSha256,
        };
        Self {
            leaf_der,
            chain,
            key,
            serial,
            algorithm,
        }
    }

    pub fn with_chain(mut self, chain: Vec<Vec<u8>>) -> Self {
        self.chain = chain;
        self
    }

    /// Signs `POST /sessions` with the ARNs in the query (as the official helper does).
    pub fn request(&self, emu: &Emulator, at: OffsetDateTime, body: &str) -> Outgoing {
        self.request_with(
            &host(emu),
            REGION,
            at,
            &[
                ("profileArn", PROFILE),
                ("roleArn", ROLE),
                ("trustAnchorArn", TA),
            ],
            body,
        )
    }

    pub fn request_with(
        &self,
        host: &str,
        region: &str,
        at: OffsetDateTime,
        query: &[(&str, &str)],
        body: &str,
    ) -> Outgoing {
        let amz_date = sigv4x509::amz_date(at);
        let prepared = SessionRequest {
            host,
            region,
            amz_date: &amz_date,
            query,
            body: body.as_bytes(),
            leaf_der: &self.leaf_der,
            chain_der: &self.chain,
        }
        .prepare(self.algorithm);
        let signature = self
            .key
            .sign(prepared.string_to_sign.as_bytes(), Digest::Sha256)
            .unwrap();
        let mut headers: Vec<(String, String)> = prepared
            .headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        headers.push((
            "authorization".into(),
            prepared.authorization(self.algorithm, &self.serial, &signature),
        ));
        let q = sigv4x509::canonical_query(query.iter().copied());
        Outgoing {
            path_and_query: if q.is_empty() {
                "/sessions".into()
            } else {
                format!("/sessions?{q}")
            },
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    /// Signs `string_to_sign` with the key (for hand-built requests).
    pub fn sign(&self, string_to_sign: &str) -> Vec<u8> {
        self.key
            .sign(string_to_sign.as_bytes(), Digest::Sha256)
            .unwrap()
    }
}

pub fn host(emu: &Emulator) -> String {
    format!("127.0.0.1:{}", emu.addr().port())
}

pub const BODY: &str = r#"{"durationSeconds":3600}"#;

// ---------------------------------------------------------------------------------------
// Starting emulators.

/// An emulator trusting `anchor` for any ARN of us-east-1.
pub async fn start(anchor_pem: &str) -> Emulator {
    Emulator::start(EmulatorConfig::single_anchor(anchor_pem, REGION).unwrap())
        .await
        .unwrap()
}

/// An emulator with the anchor bound to [`TA`] and one profile [`PROFILE`] holding [`ROLE`].
pub async fn start_with_profile(
    anchor_pem: &str,
    edit: impl FnOnce(&mut ProfileConfig),
) -> Emulator {
    let mut config = EmulatorConfig::single_anchor(anchor_pem, REGION).unwrap();
    config.trust_anchors[0].arn = Some(TA.into());
    let mut profile = ProfileConfig {
        arn: PROFILE.into(),
        role_arns: vec![ROLE.into()],
        duration_seconds: 3600,
        accept_role_session_name: false,
        enabled: true,
    };
    edit(&mut profile);
    config.profiles = vec![profile];
    Emulator::start(config).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// An HTTPS client that trusts the emulator's CA.

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn error_type(&self) -> &str {
        self.headers
            .get("x-amzn-errortype")
            .map_or("", |v| v.to_str().unwrap())
    }
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    pub fn reason(&self) -> &str {
        self.headers
            .get("x-emulator-reason")
            .map_or("", |v| v.to_str().unwrap())
    }
    /// Asserts a refusal: status, error type, message and (part of) the detailed reason.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, error_type: &str, message: &str, reason_part: &str) {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "body {text}, reason {}", self.reason());
        assert_eq!(self.error_type(), error_type, "body {text}");
        assert_eq!(self.message(), message, "reason {}", self.reason());
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/json"
        );
        assert!(self.headers.contains_key("x-amzn-requestid"));
        let reason = if self.reason().is_empty() {
            self.message()
        } else {
            self.reason().to_owned()
        };
        assert!(
            reason.contains(reason_part),
            "reason {reason:?} lacks {reason_part:?}"
        );
    }
}

fn tls_connector(emu: &Emulator) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = emu
        .ca_pem()
        .expect("the emulator made its own TLS certificate");
    let ders = rolesanywhere_helper::emulator::EmulatorConfig::single_anchor(&pem, REGION)
        .unwrap()
        .trust_anchors
        .remove(0)
        .certificates_der;
    for der in ders {
        roots
            .add(rustls_pki_types::CertificateDer::from(der))
            .unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_stream(emu: &Emulator) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(emu.addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
        .unwrap()
        .to_owned();
    tls_connector(emu).connect(name, tcp).await.unwrap()
}

/// Sends one request over a new HTTPS connection (the CA is verified, as a client must).
pub async fn send(emu: &Emulator, method: &str, req: &Outgoing) -> Reply {
    let stream = tls_stream(emu).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(&req.path_and_query);
    for (n, v) in &req.headers {
        builder = builder.header(n, v);
    }
    let reply = sender
        .send_request(
            builder
                .body(Full::new(Bytes::from(req.body.clone())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let headers = reply.headers().clone();
    let body = reply
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn post(emu: &Emulator, req: &Outgoing) -> Reply {
    send(emu, "POST", req).await
}

/// Writes raw HTTP/1.1 bytes over TLS and returns the raw answer (the server closes).
pub async fn send_raw(emu: &Emulator, bytes: &[u8]) -> String {
    let mut stream = tls_stream(emu).await;
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

// ---------------------------------------------------------------------------------------
// Known-answer requests.

fn kat() -> Value {
    serde_json::from_slice(&std::fs::read(common::kat_dir().join("vectors.json")).unwrap()).unwrap()
}

fn kat_pem(name: &str) -> String {
    std::fs::read_to_string(common::kat_dir().join(name)).unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}

async fn kat_emulator(anchor: &str, at: &str) -> Emulator {
    let mut config = EmulatorConfig::single_anchor(&kat_pem(anchor), "us-east-2").unwrap();
    config.clock = Some(sigv4x509::parse_amz_date(at).unwrap());
    Emulator::start(config).await.unwrap()
}

/// The KAT RSA request exactly as the official helper sent it.
fn kat_rsa_request() -> Outgoing {
    let v = &kat()["rsa"];
    let leaf = pem_der(&kat_pem(v["certificate"].as_str().unwrap()));
    Outgoing {
        path_and_query: format!("/sessions?{}", v["canonical_query"].as_str().unwrap()),
        headers: vec![
            (
                "content-type".into(),
                v["content_type"].as_str().unwrap().into(),
            ),
            ("host".into(), v["host"].as_str().unwrap().into()),
            (
                "x-amz-date".into(),
                v["x_amz_date"].as_str().unwrap().into(),
            ),
            ("x-amz-x509".into(), sigv4x509::certificate_header(&leaf)),
            (
                "authorization".into(),
                v["authorization"].as_str().unwrap().into(),
            ),
        ],
        body: v["body"].as_str().unwrap().as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn kat_rsa_request_is_accepted() {
    let emu = kat_emulator("rsa-root.crt", "20240706T113859Z").await;
    let reply = post(&emu, &kat_rsa_request()).await;
    assert_eq!(
        reply.status,
        201,
        "{}: {}",
        reply.reason(),
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json"
    );
    let json = reply.json();
    let set = &json["credentialSet"][0];
    let creds = &set["credentials"];
    let key_id = creds["accessKeyId"].as_str().unwrap();
    assert!(key_id.starts_with("ASIA") && key_id.len() == 20, "{key_id}");
    assert_eq!(creds["secretAccessKey"].as_str().unwrap().len(), 40);
    assert!(creds["sessionToken"].as_str().unwrap().len() > 100);
    assert_eq!(creds["expiration"], "2024-07-06T12:38:59Z");
    assert_eq!(
        set["roleArn"],
        "arn:aws:iam::291738886548:role/rolesanywhere1"
    );
    assert_eq!(set["sourceIdentity"], "CN=alice-cert.domain.com");
    assert_eq!(set["packedPolicySize"], 0);
    // Default role session name: the serial (21) in lowercase hex.
    assert_eq!(
        set["assumedRoleUser"]["arn"],
        "arn:aws:sts::291738886548:assumed-role/rolesanywhere1/15"
    );
    assert!(
        set["assumedRoleUser"]["assumedRoleId"]
            .as_str()
            .unwrap()
            .ends_with(":15")
    );
    assert!(
        json["subjectArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:rolesanywhere:us-east-2:291738886548:subject/")
    );
    let log = emu.received();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].serial.as_deref(), Some("21"));
    assert_eq!(log[0].status, 201);
    assert_eq!(
        log[0].signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-x509"]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn kat_rsa_request_is_refused_when_any_signed_byte_changes() {
    let emu = kat_emulator("rsa-root.crt", "20240706T113859Z").await;
    let original = kat_rsa_request();
    let mut variants: Vec<(String, Outgoing)> = Vec::new();
    // Each body byte.
    for i in 0..original.body.len() {
        let mut r = original.clone();
        r.body[i] = if r.body[i] == b'1' { b'2' } else { b'1' };
        variants.push((format!("body byte {i}"), r));
    }
    // Signed header values, at the start, middle and end.
    for name in ["content-type", "host", "x-amz-date", "x-amz-x509"] {
        let value = original.header(name).to_owned();
        for at in [0, value.len() / 2, value.len() - 2] {
            let mut bytes = value.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let mut r = original.clone();
            r.set_header(name, std::str::from_utf8(&bytes).unwrap());
            variants.push((format!("{name} byte {at}"), r));
        }
    }
    // The query (each ARN), the path and the signature.
    for (from, to) in [
        ("profile%2F6f49", "profile%2F6f48"),
        ("role%2Frolesanywhere1", "role%2Frolesanywhere2"),
        ("trust-anchor%2Fa545", "trust-anchor%2Fa546"),
    ] {
        let mut r = original.clone();
        r.path_and_query = r.path_and_query.replace(from, to);
        variants.push((format!("query {to}"), r));
    }
    let mut r = original.clone();
    let auth = r
        .header("authorization")
        .replace("Signature=500d", "Signature=500e");
    r.set_header("authorization", &auth);
    variants.push(("signature".into(), r));

    for (what, request) in &variants {
        let reply = post(&emu, request).await;
        assert_eq!(reply.status, 403, "{what} was accepted");
        assert_eq!(reply.error_type(), "AccessDeniedException", "{what}");
        assert_eq!(
            reply.message(),
            "Invalid signature",
            "{what}: {}",
            reply.reason()
        );
    }
    // And the original still passes: the refusals were about the changes.
    assert_eq!(post(&emu, &original).await.status, 201);
    emu.shutdown().await;
}

#[tokio::test]
async fn kat_ecdsa_p384_request_is_accepted_with_sha256() {
    let v = kat();
    let (rsa, ec) = (&v["rsa"], &v["ecdsa_p384_verify_only"]);
    let leaf = pem_der(&kat_pem(ec["certificate"].as_str().unwrap()));
    let query = rsa["canonical_query"].as_str().unwrap().replace(
        "a545a1fc-5d86-4032-8f4c-61cdd6ff92da",
        "1cb4e36e-e4ad-4bbb-9b37-fdafb2cbe4fe",
    );
    let date = ec["x_amz_date"].as_str().unwrap();
    let request = Outgoing {
        path_and_query: format!("/sessions?{query}"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("host".into(), "127.0.0.1:8080".into()),
            ("x-amz-date".into(), date.into()),
            ("x-amz-x509".into(), sigv4x509::certificate_header(&leaf)),
            (
                "authorization".into(),
                format!(
                    "AWS4-X509-ECDSA-SHA256 Credential=3/20240706/us-east-2/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature={}",
                    ec["signature_der_hex"].as_str().unwrap()
                ),
            ),
        ],
        body: rsa["body"].as_str().unwrap().as_bytes().to_vec(),
    };
    let emu = kat_emulator("ec-root.crt", date).await;
    let reply = post(&emu, &request).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    assert_eq!(
        reply.json()["credentialSet"][0]["assumedRoleUser"]["arn"],
        "arn:aws:sts::291738886548:assumed-role/rolesanywhere1/3"
    );
    emu.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Positive paths.

#[tokio::test]
async fn arns_in_the_json_body_and_chunked_bodies_are_accepted() {
    let root = TestCa::root("body root");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let body = serde_json::json!({"durationSeconds": 900, "profileArn": PROFILE, "roleArn": ROLE, "trustAnchorArn": TA}).to_string();
    let mut req = id.request_with(&host(&emu), REGION, now(), &[], &body);
    req.set_header("content-type", "application/x-amz-json-1.0");
    // Content-Type is signed: changing it after signing breaks the signature.
    let reply = post(&emu, &req).await;
    reply.assert_refused(
        403,
        "AccessDeniedException",
        "Invalid signature",
        "signature does not verify",
    );
    let signed = id.request_with(&host(&emu), REGION, now(), &[], &body);
    let reply = post(&emu, &signed).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    let exp = reply.json()["credentialSet"][0]["credentials"]["expiration"]
        .as_str()
        .unwrap()
        .to_owned();
    let exp = OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339).unwrap();
    assert!((exp - now() - time::Duration::seconds(900)).abs() < time::Duration::seconds(5));

    // The same request, body sent chunked: the emulator hashes the de-chunked bytes.
    let mut raw = format!("POST {} HTTP/1.1\r\n", signed.path_and_query);
    for (n, v) in &signed.headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    let (a, b) = body.split_at(10);
    raw.push_str(&format!(
        "{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    ));
    let answer = send_raw(&emu, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // ARNs in both places with different values.
    let q = [("roleArn", "arn:aws:iam::123456789012:role/other")];
    let both = id.request_with(&host(&emu), REGION, now(), &q, &body);
    post(&emu, &both).await.assert_refused(
        400,
        "ValidationException",
        "roleArn is given in the query string and in the body with different values",
        "different",
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unordered_chain_with_extra_copies_builds_to_the_anchor() {
    let root = TestCa::root("chain root");
    let mid = root.intermediate("chain intermediate");
    let leaf = mid.issue(CertSpec {
        cn: "chained",
        ..CertSpec::default()
    });
    // Pool: the root copy first, then the leaf copy, then the intermediate.
    let pool = vec![root.der.clone(), leaf.leaf_der.clone(), mid.der.clone()];
    let id = leaf.with_chain(pool);
    let emu = start(&root.pem).await;
    let reply = post(&emu, &id.request(&emu, now(), BODY)).await;
    assert_eq!(reply.status, 201, "{}", reply.reason());
    let set = &reply.json()["credentialSet"][0];
    assert_eq!(set["sourceIdentity"], "CN=chained");
    assert_eq!(
        set["assumedRoleUser"]["arn"],
        "arn:aws:sts::123456789012:assumed-role/dev-role/1234"
    );
    assert_eq!(emu.received()[0].chain_len, 3);
    // A second call is served from the chain cache and still verified.
    assert_eq!(post(&emu, &id.request(&emu, now(), BODY)).await.status, 201);
    let mut tampered = id.request(&emu, now(), BODY);
    tampered.body = br#"{"durationSeconds":3601}"#.to_vec();
    assert_eq!(post(&emu, &tampered).await.status, 403);
    emu.shutdown().await;
}

#[tokio::test]
async fn short_sessions_when_allowed_and_source_identity_rules() {
    let root = TestCa::root("short root");
    let mut config = EmulatorConfig::single_anchor(&root.pem, REGION).unwrap();
    config.min_duration_seconds = 1;
    let emu = Emulator::start(config).await.unwrap();
    // No CN: source identity is ID=<hex serial> padded to even length (291 -> ID=0123).
    let id = root.issue(CertSpec {
        cn: "",
        serial: 291,
        ..CertSpec::default()
    });
    let reply = post(&emu, &id.request(&emu, now(), r#"{"durationSeconds":20}"#)).await;
    // An empty CN still leaves a non-empty subject (CN=""), so the request passes.
    assert_eq!(reply.status, 201, "{}", reply.reason());
    let set = &reply.json()["credentialSet"][0];
    assert_eq!(set["sourceIdentity"], "ID=0123");
    let exp = set["credentials"]["expiration"].as_str().unwrap();
    let exp = OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339).unwrap();
    assert!((exp - now() - time::Duration::seconds(20)).abs() < time::Duration::seconds(5));
    emu.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Faults and the request log.

#[tokio::test]
async fn faults_fail_delay_drop_and_malform_then_clear() {
    let root = TestCa::root("fault root");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;

    emu.faults().fail_next(2, 503);
    for _ in 0..2 {
        let r = post(&emu, &id.request(&emu, now(), BODY)).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.error_type(), "ServiceUnavailableException");
    }
    assert_eq!(post(&emu, &id.request(&emu, now(), BODY)).await.status, 201);

    emu.faults().fail_next_retry_after(1, 429, 7);
    let r = post(&emu, &id.request(&emu, now(), BODY)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_type(), "ThrottlingException");
    assert_eq!(r.headers.get("retry-after").unwrap(), "7");

    emu.faults().malformed_next(1);
    let r = post(&emu, &id.request(&emu, now(), BODY)).await;
    assert_eq!(r.status, 201);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    emu.faults().drop_next(1);
    let req = id.request(&emu, now(), BODY);
    let mut raw = format!("POST {} HTTP/1.1\r\n", req.path_and_query);
    for (n, v) in &req.headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str(&format!("content-length: {}\r\n\r\n{BODY}", BODY.len()));
    assert_eq!(
        send_raw(&emu, raw.as_bytes()).await,
        "",
        "the connection closes without an answer"
    );

    emu.faults().delay(Duration::from_millis(600));
    let started = std::time::Instant::now();
    assert_eq!(post(&emu, &id.request(&emu, now(), BODY)).await.status, 201);
    assert!(started.elapsed() >= Duration::from_millis(600));
    emu.faults().clear();

    let log = emu.received();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 201, 429, 201, 0, 201]);
    assert!(log.iter().all(|r| r.serial.as_deref() == Some("4660")));
    assert_eq!(log[5].fault.as_deref(), Some("drop"));
    assert_eq!(log[4].fault.as_deref(), Some("malformed"));
    emu.shutdown().await;
}

#[tokio::test]
async fn control_routes_set_faults_and_list_requests_over_http() {
    let root = TestCa::root("control root");
    let id = root.issue(CertSpec::default());
    let emu = start(&root.pem).await;
    let order = |body: &str| Outgoing {
        path_and_query: "/_emulator/faults".into(),
        headers: vec![
            ("host".into(), host(&emu)),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.as_bytes().to_vec(),
    };
    assert_eq!(
        post(
            &emu,
            &order(r#"{"action":"fail_next","count":1,"status":500}"#)
        )
        .await
        .status,
        200
    );
    let r = post(&emu, &order(r#"{"action":"explode"}"#)).await;
    assert_eq!(r.status, 400);
    assert_eq!(post(&emu, &id.request(&emu, now(), BODY)).await.status, 500);
    assert_eq!(post(&emu, &id.request(&emu, now(), BODY)).await.status, 201);
    let list = Outgoing {
        path_and_query: "/_emulator/received".into(),
        headers: vec![("host".into(), host(&emu))],
        body: Vec::new(),
    };
    let r = send(&emu, "GET", &list).await;
    let entries = r.json();
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(entries[0]["status"], 500);
    assert_eq!(entries[1]["serial"], "4660");
    // Anything else is the unauthenticated 404.
    let r = send(
        &emu,
        "GET",
        &Outgoing {
            path_and_query: "/".into(),
            ..list
        },
    )
    .await;
    assert_eq!(r.status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let root = TestCa::root("size root");
    let emu = start(&root.pem).await;
    let big = Outgoing {
        path_and_query: "/sessions".into(),
        headers: vec![("host".into(), host(&emu))],
        body: vec![b' '; 70 * 1024],
    };
    assert_eq!(post(&emu, &big).await.status, 413);
    emu.shutdown().await;
}
