//! `credential-process` on the wire: for each input (key forms, chains, session settings,
//! region, endpoint, refusals), both programs' exit codes and stdout, and the request each
//! sent as the relay saw it (method, path, query, body, Content-Type, the certificate
//! headers, the Authorization algorithm, credential scope and signed headers) and as the
//! emulator judged it.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use rolesanywhere_helper::emulator::ReceivedRequest;
use rolesanywhere_helper::pki::KeyType;

use super::relay::Captured;
use super::{Peer, SIDES, Side, Stage, pem_base64, rows, show};
use crate::credential_process::credentials;

/// The headers whose signature the service needs; the rest of `SignedHeaders` is the
/// sender's business.
const MATTER: [&str; 5] = [
    "content-type",
    "host",
    "x-amz-date",
    "x-amz-x509",
    "x-amz-x509-chain",
];

/// What one program did with one input.
struct Sent {
    out: Output,
    captured: Vec<Captured>,
    received: Vec<ReceivedRequest>,
}

/// How the two requests must compare.
enum Wire {
    /// Field by field the same (and each program sent at least one).
    Same,
    /// Neither program sent anything.
    NoneSent,
    /// A documented difference, checked by the function.
    Differ(fn(&Stage, &Sent, &Sent)),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum On {
    /// RSA-2048 leaf issued by the root.
    Rsa,
    /// P-256 leaf issued by an intermediate.
    P256,
    /// P-384 leaf issued by an intermediate.
    P384,
}

struct Case {
    name: &'static str,
    on: On,
    flags: &'static str,
    official: i32,
    ours: i32,
    wire: Wire,
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let case = |name, on, flags, official, ours, wire| Case {
        name,
        on,
        flags,
        official,
        ours,
        wire,
    };
    use On::*;
    use Wire::*;
    vec![
        case("rsa pem", Rsa, "{pem}", 0, 0, Same),
        case("rsa pkcs1 key", Rsa, "--certificate {dir}/leaf.pem --private-key {dir}/legacy.key", 0, 0, Same),
        // official-helper.md §9.7: the official helper repeats the PKCS#12 leaf in
        // X-Amz-X509-Chain; ours sends no chain header for a PKCS#12 file without CAs.
        case("rsa legacy pkcs12", Rsa, "--certificate {dir}/legacy.p12", 0, 0, Differ(p12_leaf_not_repeated)),
        case("p256 pem with intermediates", P256, "{pem} {chain}", 0, 0, Same),
        case("p384 pem with intermediates", P384, "{pem} {chain}", 0, 0, Same),
        case("sec1 key", P256, "--certificate {dir}/leaf.pem --private-key {dir}/legacy.key {chain}", 0, 0, Same),
        case("encrypted pkcs8 key", P256, "--certificate {dir}/leaf.pem --private-key {dir}/enc.key --pkcs8-password pw {chain}", 0, 0, Same),
        case("wrong pkcs8 password", P256, "--certificate {dir}/leaf.pem --private-key {dir}/enc.key --pkcs8-password nope {chain}", 1, 1, NoneSent),
        case("password for a plain key", P256, "--certificate {dir}/leaf.pem --private-key {dir}/leaf.key --pkcs8-password pw {chain}", 1, 1, NoneSent),
        case("combined key and certificate", P256, "--certificate {dir}/combined.pem {chain}", 0, 0, Same),
        case("legacy pkcs12 with its CA", P256, "--certificate {dir}/legacy.p12", 0, 0, Differ(p12_leaf_not_repeated)),
        // README "Keys and certificates": PKCS#12 in OpenSSL 3's AES/PBKDF2 form, DER
        // certificates and fullchain files (the chain is sent) are accepted here only.
        case("modern pkcs12", P256, "--certificate {dir}/modern.p12", 1, 0, Differ(only_ours_sent)),
        case("der certificate", P256, "--certificate {dir}/leaf.der --private-key {dir}/leaf.key {chain}", 1, 0, Differ(only_ours_sent)),
        case("fullchain certificate", P256, "--certificate {dir}/leaf-fullchain.pem --private-key {dir}/leaf.key", 1, 0, Differ(fullchain_sends_the_chain)),
        case("role session name", P256, "{pem} {chain} --role-session-name conformance-1", 0, 0, Same),
        case("flag=value form", P256, "--certificate={dir}/leaf.pem --private-key={dir}/leaf.key --intermediates={dir}/leaf-chain.pem --role-session-name=eq", 0, 0, Same),
        case("shortest session", P256, "{pem} {chain} --session-duration 900", 0, 0, Same),
        case("longest session", P256, "{pem} {chain} --session-duration 43200", 0, 0, Same),
        case("a flag twice: the last wins", P256, "{pem} {chain} --session-duration 1000 --session-duration 2000", 0, 0, Same),
        // Ours checks the service's range before sending; the official helper sends the
        // value and the service refuses it.
        case("session below the range", P256, "{pem} {chain} --session-duration 60", 1, 1, Differ(only_official_sent)),
        case("region flag", P256, "{pem} {chain} --region us-east-1", 0, 0, Same),
        case("region of another endpoint", P256, "{pem} {chain} --region eu-west-1", 1, 1, Same),
        // README "Endpoint, region, TLS and proxies": the path /sessions is signed even
        // when the endpoint has a path prefix (the relay strips it, as a proxy would).
        case("endpoint with a path prefix", P256, "{pem} {chain} --endpoint {relay}/prefix", 0, 0, Same),
        case("key of another certificate", P256, "--certificate {dir}/leaf.pem --private-key {dir}/root-ca.key {chain}", 1, 1, Differ(only_official_sent)),
        case("missing key file", P256, "--certificate {dir}/leaf.pem --private-key {dir}/nowhere.key", 1, 1, NoneSent),
        case("certificate without key", P256, "--certificate {dir}/leaf.pem {chain}", 1, 1, NoneSent),
        case("key without certificate", P256, "--private-key {dir}/leaf.key", 1, 1, NoneSent),
        case("intermediates that are not certificates", P256, "--certificate {dir}/leaf.pem --private-key {dir}/leaf.key --intermediates {dir}/leaf.key", 1, 1, NoneSent),
    ]
}

#[test]
fn credential_process_requests_match_the_official_helper() {
    let Some(peer) = Peer::get() else { return };
    let mut failed = Vec::new();
    for on in [On::Rsa, On::P256, On::P384] {
        let stage = match on {
            On::Rsa => Stage::new(KeyType::Rsa2048, false),
            On::P256 => Stage::new(KeyType::P256, true),
            On::P384 => Stage::new(KeyType::P384, true),
        };
        let cases = cases().into_iter().filter(|c| c.on == on);
        failed.extend(rows(cases, |c| c.name, |c| run_case(&peer, &stage, c)));
    }
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}

#[test]
fn key_files_readable_by_the_group_but_not_by_others() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    for (name, mode) in [("group.key", 0o640), ("others.key", 0o604)] {
        let path = stage.dir().join(name);
        std::fs::copy(stage.dir().join("leaf.key"), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let key = |name, flags, ours, wire| Case {
        name,
        on: On::P256,
        flags,
        official: 0,
        ours,
        wire,
    };
    let cases = [
        // Being changed: a group-readable key (a service group's key) is accepted, as by
        // the official helper.
        key(
            "group-readable key",
            "--certificate {dir}/leaf.pem --private-key {dir}/group.key {chain}",
            0,
            Wire::Same,
        ),
        // README "Keys and certificates": a key file that others can read is refused.
        key(
            "others-readable key",
            "--certificate {dir}/leaf.pem --private-key {dir}/others.key {chain}",
            1,
            Wire::Differ(only_official_sent),
        ),
    ];
    let failed = rows(cases, |c| c.name, |c| run_case(&peer, &stage, c));
    assert!(failed.is_empty(), "rows that failed: {failed:?}");
}

fn run_case(peer: &Peer, stage: &Stage, case: Case) {
    let flags = case.flags.replace("{relay}", &stage.relay.url());
    let [official, ours] = SIDES.map(|side| send(peer, stage, side, &flags, &[]));
    check(stage, &case, &official, &ours);
}

/// Runs `side` with the stage's ARNs and endpoint and `flags`; what it sent.
fn send(peer: &Peer, stage: &Stage, side: Side, flags: &str, env: &[(&str, String)]) -> Sent {
    stage.clear();
    let out = peer.run(side, &stage.args("credential-process", flags), env);
    Sent {
        out,
        captured: stage.relay.take(),
        received: stage.setup.emulator.received(),
    }
}

fn check(stage: &Stage, case: &Case, official: &Sent, ours: &Sent) {
    let name = case.name;
    for (side, sent, code) in [
        ("official", official, case.official),
        ("ours", ours, case.ours),
    ] {
        assert_eq!(
            sent.out.status.code(),
            Some(code),
            "{name}: {side}: {}",
            show(&sent.out)
        );
        if code == 0 {
            credentials(&sent.out);
        } else {
            assert!(
                sent.out.stdout.is_empty(),
                "{name}: {side}: {}",
                show(&sent.out)
            );
        }
    }
    match case.wire {
        Wire::Same => same_requests(name, official, ours),
        Wire::NoneSent => {
            assert!(
                official.captured.is_empty(),
                "{name}: the official helper sent"
            );
            assert!(ours.captured.is_empty(), "{name}: ours sent");
        }
        Wire::Differ(differ) => differ(stage, official, ours),
    }
}

/// The two programs sent the same requests, in every part that matters.
fn same_requests(name: &str, official: &Sent, ours: &Sent) {
    let (a, b) = (&official.captured, &ours.captured);
    assert!(!a.is_empty(), "{name}: the official helper sent nothing");
    assert_eq!(a.len(), b.len(), "{name}: number of requests");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.method, "POST", "{name}");
        assert_eq!(x.method, y.method, "{name}: method");
        assert_eq!(x.target, y.target, "{name}: path and query");
        assert_eq!(x.body, y.body, "{name}: body");
        for header in ["content-type", "host", "x-amz-x509", "x-amz-x509-chain"] {
            assert_eq!(x.header(header), y.header(header), "{name}: {header}");
        }
        assert_eq!(x.header("content-type"), Some("application/json"), "{name}");
        assert!(
            x.header("x-amz-x509").is_some_and(|v| !v.is_empty()),
            "{name}"
        );
        let (ax, ay) = (authorization(x), authorization(y));
        assert_eq!(ax.algorithm, ay.algorithm, "{name}: algorithm");
        assert_eq!(ax.serial, ay.serial, "{name}: serial in Credential=");
        assert_eq!(ax.scope_tail, ay.scope_tail, "{name}: credential scope");
        assert_eq!(ax.matter, ay.matter, "{name}: signed headers that matter");
        // The official helper also signs the SDK's amz-sdk-invocation-id and
        // amz-sdk-request headers; ours sends neither and signs only what matters.
        assert_eq!(
            ax.extra,
            ["amz-sdk-invocation-id", "amz-sdk-request"]
                .map(str::to_owned)
                .into(),
            "{name}"
        );
        assert!(ay.extra.is_empty(), "{name}: ours signs {:?}", ay.extra);
    }
    let (ra, rb) = (&official.received, &ours.received);
    assert_eq!(ra.len(), rb.len(), "{name}: requests the emulator judged");
    for (sent, judged) in a.iter().zip(ra) {
        assert!(
            sent.path().ends_with("/sessions"),
            "{name}: {}",
            sent.target
        );
        assert_eq!(sent.query(), judged.query, "{name}: the query as sent");
    }
    for (x, y) in ra.iter().zip(rb) {
        assert_eq!(x.status, y.status, "{name}: emulator status");
        assert_eq!(x.error_type, y.error_type, "{name}: emulator error type");
        assert_eq!(x.query, y.query, "{name}: query");
        assert_eq!(x.body, y.body, "{name}: body");
        assert_eq!(x.chain_len, y.chain_len, "{name}: chain length");
        assert_eq!(x.serial, y.serial, "{name}: certificate serial");
    }
}

/// The parts of an `Authorization` header.
struct Authorization {
    algorithm: String,
    serial: String,
    /// `<region>/rolesanywhere/aws4_request`.
    scope_tail: String,
    /// The signed headers among [`MATTER`], and the others.
    matter: BTreeSet<String>,
    extra: BTreeSet<String>,
}

fn authorization(request: &Captured) -> Authorization {
    let value = request
        .header("authorization")
        .expect("an Authorization header");
    let (algorithm, rest) = value.split_once(' ').unwrap();
    let part = |key: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {value}"))
    };
    let credential: Vec<&str> = part("Credential=").split('/').collect();
    assert_eq!(credential.len(), 5, "{value}");
    let date = request.header("x-amz-date").expect("X-Amz-Date");
    assert!(date.len() == 16 && date.ends_with('Z'), "X-Amz-Date {date}");
    assert_eq!(
        credential[1],
        &date[..8],
        "the scope's date is X-Amz-Date's"
    );
    assert!(
        credential[0].bytes().all(|c| c.is_ascii_digit()),
        "decimal serial: {value}"
    );
    let signature = part("Signature=");
    assert!(
        signature
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{value}"
    );
    let (matter, extra) = part("SignedHeaders=")
        .split(';')
        .map(str::to_owned)
        .partition(|h| MATTER.contains(&h.as_str()));
    Authorization {
        algorithm: algorithm.to_owned(),
        serial: credential[0].to_owned(),
        scope_tail: credential[2..].join("/"),
        matter,
        extra,
    }
}

fn only_ours_sent(_: &Stage, official: &Sent, ours: &Sent) {
    assert!(official.captured.is_empty(), "the official helper sent");
    assert_eq!(ours.received.len(), 1);
    assert_eq!(ours.received[0].status, 201);
}

fn only_official_sent(_: &Stage, official: &Sent, ours: &Sent) {
    assert!(
        !official.captured.is_empty(),
        "the official helper sent nothing"
    );
    assert!(ours.captured.is_empty(), "ours sent");
}

/// The official helper sends the first certificate alone (and is refused); ours finds the
/// leaf and sends the rest as the chain.
fn fullchain_sends_the_chain(stage: &Stage, official: &Sent, ours: &Sent) {
    let [o] = &official.received[..] else {
        panic!("one official request")
    };
    assert_eq!((o.status, o.chain_len), (403, 0));
    let [r] = &ours.received[..] else {
        panic!("one request of ours")
    };
    assert_eq!((r.status, r.chain_len), (201, 1));
    let chain = ours.captured[0].header("x-amz-x509-chain");
    assert_eq!(
        chain,
        Some(pem_base64(&stage.dir().join("leaf-chain.pem")).as_str())
    );
}

/// The official helper repeats the leaf at the head of X-Amz-X509-Chain for PKCS#12 files;
/// ours sends the CA certificates of the file only (no header when there are none).
fn p12_leaf_not_repeated(stage: &Stage, official: &Sent, ours: &Sent) {
    let leaf = pem_base64(&stage.dir().join("leaf.pem"));
    let (o, r) = (&official.captured[0], &ours.captured[0]);
    assert_eq!(o.header("x-amz-x509"), Some(leaf.as_str()));
    assert_eq!(r.header("x-amz-x509"), Some(leaf.as_str()));
    let official_chain: Vec<&str> = o.header("x-amz-x509-chain").unwrap().split(',').collect();
    assert_eq!(
        official_chain[0], leaf,
        "the official helper repeats the leaf"
    );
    let rest = official_chain[1..].join(",");
    let ours_chain = r.header("x-amz-x509-chain").unwrap_or_default();
    assert_eq!(ours_chain, rest, "ours: the file's CA certificates only");
    assert_eq!(official.received[0].status, ours.received[0].status);
}

#[test]
fn debug_never_prints_the_credentials() {
    let Some(peer) = Peer::get() else { return };
    let stage = Stage::new(KeyType::P256, true);
    let flags = "{pem} {chain} --debug";
    let [official, ours] = SIDES.map(|side| send(&peer, &stage, side, flags, &[]));
    same_requests("--debug", &official, &ours);
    // official-helper.md §9.12: the official helper logs the response body, credentials
    // included; ours explains each step without a secret (README "Design": `--debug`).
    for (sent, leaks) in [(&official, true), (&ours, false)] {
        let json = credentials(&sent.out);
        let stderr = String::from_utf8_lossy(&sent.out.stderr);
        assert!(!stderr.is_empty(), "--debug explains on stderr");
        for secret in ["SecretAccessKey", "SessionToken"] {
            let value = json[secret].as_str().unwrap();
            assert_eq!(
                stderr.contains(value),
                leaks,
                "{secret} on stderr: {stderr}"
            );
        }
    }
}
