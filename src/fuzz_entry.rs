//! Entry points for the fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which
//! cargo-fuzz sets). Each takes the fuzzer's bytes through the code that the commands and the
//! daemon run on the same kind of input, then checks what must hold whatever the input: no
//! panic anywhere, and on the serving paths, no credentials without the right token.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Parser as _;
use hyper::Request;
use hyper::http::{HeaderName, HeaderValue, Method, StatusCode};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::cli::{Cli, Command};
use crate::cmd::read_certificate_data::CertificateData;
use crate::config::{self, Clock, Env, Fs, Inputs};
use crate::credentials::Credentials;
use crate::identity::{self, file};
use crate::refresh::{self, Handle, State};
use crate::rolesanywhere::{self, CreateSessionError};
use crate::secret::Secret;
use crate::serve::http::Routes;
use crate::serve::metrics::{Metrics, Route};
use crate::serve::{RoleState, ServedRole, Site};

/// The password of the encrypted keys and PKCS#12 files among the seeds.
pub const PASSWORD: &str = "fuzz-password";

/// Stands for the IMDS session token in the request targets' inputs: the token is random,
/// so the harness issues one and puts it where this marker is.
pub const IMDS_TOKEN_MARKER: &[u8] = b"@IMDS_TOKEN@";

/// The ECS token of role `app` (roles `starting` and `stopped` have their own).
pub const ECS_TOKEN: &str = "fuzz-ecs-token-app";

/// The one host name, besides IP addresses and `localhost`, that the listener answers.
const ALLOWED_HOST: &str = "app.internal";

/// The secret access key served for role `app`; a reply may hold it only when the request
/// carried a valid token.
const SECRET_ACCESS_KEY: &str = "FUZZxSECRETxACCESSxKEYxDOxNOTxLEAK";

/// Certificate files and intermediates bundles: PEM (any blocks, text between them) or DER.
pub fn certificates(data: &[u8]) {
    let path = Path::new("fuzz.pem");
    if let Ok(Some(certs)) = file::certificates(file::Role::Certificate, path, data) {
        for cert in &certs {
            let _ = cert.describe();
            let _ = cert.public_key().fingerprint_bytes();
            let _ = serde_json::to_vec(&CertificateData::of(cert));
            // As the leaf checks word an expired or not yet valid certificate.
            let _ = identity::rfc3339(cert.not_before());
            let _ = identity::rfc3339(cert.not_after());
        }
        if let Some((leaf, others)) = certs.split_first() {
            let chain = identity::order_chain(leaf, others.to_vec());
            assert!(chain.len() <= others.len(), "the chain grew");
        }
    }
    let _ = file::parse_bundle(path, data);
    let _ = file::holds_private_key(data);
}

/// Private key files, with no password and with the seeds' password: PKCS#8 (plain and
/// encrypted), PKCS#1 and SEC1, as PEM or DER.
pub fn private_key(data: &[u8]) {
    let path = Path::new("fuzz.key");
    let password = Secret::from(PASSWORD.to_owned());
    for given in [None, Some(&password)] {
        if let Ok(key) = file::private_key(path, data, given) {
            let public = key.public_key();
            let _ = public.describe();
            let _ = public.fingerprint_bytes();
        }
    }
}

/// PKCS#12 files, with no password and with the seeds' password.
pub fn pkcs12(data: &[u8]) {
    let path = Path::new("fuzz.p12");
    let password = Secret::from(PASSWORD.to_owned());
    for given in [None, Some(&password)] {
        if let Ok((key, certs)) = file::pkcs12(path, data, given) {
            assert!(!certs.is_empty(), "a PKCS#12 identity with no certificate");
            let _ = key.public_key().describe();
        }
    }
}

/// The flags `ARGS...` parse to, with every default.
fn parsed(args: &[&str]) -> Command {
    let cli =
        Cli::try_parse_from(std::iter::once("rolesanywhere-helper").chain(args.iter().copied()))
            .expect("the flags parse");
    cli.command
}

/// The `serve` and `update` config file (TOML), with one passed socket named `sock`. The
/// file system holds that file only, so that a password file named in it is never read
/// from the real one (a FIFO would hang the target without saying anything about the
/// parser).
pub fn serve_config(data: &[u8]) {
    let path = Path::new("fuzz.toml");
    let inputs = Inputs {
        env: Env::fixed([("HOME", "/nonexistent")]),
        fs: Fs::Fake([(path.to_owned(), data.to_vec())].into_iter().collect()),
        clock: Clock::System,
    };
    let activated = ["sock".to_owned()];
    let Command::Serve(args) = parsed(&["serve", "--config", "fuzz.toml"]) else {
        unreachable!("serve parses as serve")
    };
    if let Ok(plan) = config::serve_plan(&args, &inputs, &activated) {
        assert!(!plan.roles.is_empty(), "a plan with no role");
        for listener in &plan.listeners {
            let indexes = listener.imds.iter().chain(&listener.ecs);
            for &i in indexes {
                assert!(
                    i < plan.roles.len(),
                    "a listener serves a role that is not there"
                );
            }
        }
        for (i, role) in plan.roles.iter().enumerate() {
            let served = plan
                .listeners
                .iter()
                .any(|l| l.imds == Some(i) || l.ecs.contains(&i));
            assert!(served, "role {} is served nowhere", role.name);
            assert!(
                plan.roles[..i].iter().all(|r| r.name != role.name),
                "role name {} is used twice",
                role.name
            );
        }
    }
    let Command::Update(args) = parsed(&["update", "--config", "fuzz.toml"]) else {
        unreachable!("update parses as update")
    };
    let _ = config::update_plan(&args, &inputs);
}

/// A listener as `serve` builds it, with fixed roles: `app` (credentials, over IMDS and
/// ECS), `starting` (no credentials yet, ECS) and `stopped` (failed for good, ECS).
struct Fixture {
    site: Site,
    imds_token: String,
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::111122223333:role/{name}")
}

fn served(name: &str, state: State) -> Arc<ServedRole> {
    Arc::new(ServedRole::new(
        name.to_owned(),
        RoleState::new(name.to_owned(), role_arn(name), Handle::fixed(state)),
    ))
}

fn ecs_token(role: &str) -> Secret {
    Secret::from(format!("fuzz-ecs-token-{role}"))
}

impl Fixture {
    fn new() -> Self {
        let now = OffsetDateTime::now_utc();
        let expiration = now + time::Duration::hours(1);
        let credentials = Credentials {
            access_key_id: "ASIAFUZZFUZZFUZZFUZZ".to_owned(),
            secret_access_key: Secret::from(SECRET_ACCESS_KEY.to_owned()),
            session_token: Secret::from("FUZZxSESSIONxTOKEN".to_owned()),
            expiration,
            expiration_text: identity::rfc3339(expiration),
            role_arn: role_arn("app"),
        };
        let app = served(
            "app",
            State::Ready {
                credentials: Arc::new(credentials),
                received: now,
                last_error: None,
            },
        );
        let starting = served(
            "starting",
            State::Starting {
                last_error: Some("connection refused".to_owned()),
            },
        );
        let stopped = served(
            "stopped",
            State::Stopped {
                error: "CreateSession refused (403 AccessDeniedException)".to_owned(),
            },
        );
        let ecs = [app.clone(), starting, stopped]
            .into_iter()
            .map(|role| {
                let token = ecs_token(&role.name);
                (crate::serve::ecs::path(&role.name), role, token)
            })
            .collect();
        let allowed_hosts = Arc::new(vec![ALLOWED_HOST.to_owned()]);
        let site = Site::new(
            allowed_hosts,
            Some(app),
            Site::new_tokens(),
            ecs,
            Arc::new(Metrics::default()),
        );
        let imds_token = site.issue_token(Duration::from_secs(21600));
        Self { site, imds_token }
    }

    /// `data` with every marker replaced by the issued IMDS token.
    fn with_token(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let mut rest = data;
        while !rest.is_empty() {
            if rest.starts_with(IMDS_TOKEN_MARKER) {
                out.extend_from_slice(self.imds_token.as_bytes());
                rest = &rest[IMDS_TOKEN_MARKER.len()..];
            } else {
                out.push(rest[0]);
                rest = &rest[1..];
            }
        }
        out
    }
}

/// Request heads (`METHOD TARGET`, then `Name: value` lines; a blank line ends each), built
/// with hyper's request builder and given to the listener's router one by one. Checks that
/// credentials and role names are answered only to a GET with the right token.
pub fn serve_route(data: &[u8]) {
    let fixture = Fixture::new();
    let data = fixture.with_token(data);
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(first) = lines.next() {
        if first.is_empty() {
            continue;
        }
        let mut words = first.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let (Some(method), Some(target)) = (words.next(), words.next()) else {
            lines.by_ref().take_while(|l| !l.is_empty()).for_each(drop);
            continue;
        };
        let mut builder = Request::builder().method(method).uri(target);
        for line in lines.by_ref().take_while(|l| !l.is_empty()) {
            let split = line.iter().position(|&b| b == b':');
            if let Some(colon) = split {
                let value = line[colon + 1..].trim_ascii_start();
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(&line[..colon]),
                    HeaderValue::from_bytes(value),
                ) {
                    builder = builder.header(name, value);
                }
            }
        }
        let Ok(request) = builder.body(()) else {
            continue;
        };
        let (route, reply) = fixture.site.route(&request);
        if std::env::var_os("FUZZ_SHOW").is_some() {
            eprintln!(
                "{} {} -> {:?} {}",
                request.method(),
                request.uri(),
                route,
                reply.status()
            );
        }
        check_reply(&fixture, &request, route, reply.status());
    }
}

/// What every reply of a credentials listener must respect.
fn check_reply(fixture: &Fixture, request: &Request<()>, route: Route, status: StatusCode) {
    let expected = [200, 400, 401, 403, 404, 405, 503];
    assert!(
        expected.contains(&status.as_u16()),
        "unexpected status {status}"
    );
    if status != StatusCode::OK {
        return;
    }
    let headers = request.headers();
    let path = request.uri().path();
    let hosts = headers.get_all(hyper::header::HOST).iter();
    let names = hosts
        .filter_map(|h| h.to_str().ok()?.parse::<hyper::http::uri::Authority>().ok())
        .map(|a| a.host().to_owned())
        .chain(request.uri().host().map(str::to_owned));
    for name in names {
        assert!(
            !rebindable(&name),
            "answered 200 to a request for the host {name:?}"
        );
    }
    match route {
        Route::Token => {
            assert_eq!(request.method(), Method::PUT, "a token for a non-PUT");
            assert!(
                !headers.contains_key("x-forwarded-for"),
                "a token via a proxy"
            );
        }
        Route::RoleList | Route::Credentials => {
            assert_eq!(request.method(), Method::GET);
            assert!(!headers.contains_key("x-forwarded-for"), "IMDS via a proxy");
            let token = headers.get("x-aws-ec2-metadata-token");
            assert_eq!(
                token.map(HeaderValue::as_bytes),
                Some(fixture.imds_token.as_bytes()),
                "IMDS answered 200 without the session token"
            );
        }
        Route::Ecs => {
            assert_eq!(request.method(), Method::GET);
            assert_eq!(path, "/ecs/app", "credentials for a role that has none");
            let given = headers.get(hyper::header::AUTHORIZATION);
            assert_eq!(
                given.map(HeaderValue::as_bytes),
                Some(ECS_TOKEN.as_bytes()),
                "ECS answered 200 without the role's token"
            );
        }
        Route::Other => panic!("200 for an unknown path {path:?}"),
    }
}

/// A DNS name that a web page could rebind to this host: one with a letter, not an IPv6
/// literal, and neither `localhost` nor the allowed name.
fn rebindable(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    !host.starts_with('[')
        && name.bytes().any(|b| b.is_ascii_alphabetic())
        && name != "localhost"
        && name != ALLOWED_HOST
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Raw bytes from a client, over an in-memory connection, to the HTTP/1 server with the
/// daemon's settings and the listener's real routes; the client then closes its side.
/// Checks that the secret access key reaches the client only when it sent a valid token.
pub fn serve_http(data: &[u8]) {
    let fixture = Fixture::new();
    let input = fixture.with_token(data);
    let has_token =
        contains(&input, ECS_TOKEN.as_bytes()) || contains(&input, fixture.imds_token.as_bytes());
    let routes: Arc<dyn Routes> = Arc::new(fixture.site);
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (_stop, stopping) = tokio::sync::watch::channel(false);
    let output = runtime().block_on(async move {
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let received = std::cell::Cell::new(0);
        let write = async {
            let _ = to_server.write_all(&input).await;
            // The daemon's server closes at once on EOF (no half-close), dropping requests
            // not yet answered: let it answer all it can before closing.
            let (mut last, mut quiet) = (0, 0);
            for _ in 0..10_000 {
                tokio::task::yield_now().await;
                if received.get() == last {
                    quiet += 1;
                    if quiet == 8 {
                        break;
                    }
                } else {
                    (last, quiet) = (received.get(), 0);
                }
            }
            let _ = to_server.shutdown().await;
        };
        let read = async {
            let mut output = Vec::new();
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = from_server.read(&mut buffer).await {
                output.extend_from_slice(&buffer[..n]);
                received.set(output.len());
            }
            output
        };
        let serve = crate::serve::http::serve_connection(server, routes, stopping, "fuzz");
        let ((), output, ()) = tokio::join!(write, read, serve);
        output
    });
    if std::env::var_os("FUZZ_SHOW").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&output));
    }
    if !has_token {
        assert!(
            !contains(&output, SECRET_ACCESS_KEY.as_bytes()),
            "credentials were served without a token"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A CreateSession answer: a first line `STATUS [X-Amzn-ErrorType value]`, then the body.
/// A 2xx body goes through the credentials parser and every rendering of the result (the
/// three JSON documents, the refresh schedule); any other through the error parser and the
/// message a user sees.
pub fn create_session_response(data: &[u8]) {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let first = String::from_utf8_lossy(first);
    let (status, header) = match first.split_once(' ') {
        Some((status, header)) => (status, Some(header.to_owned())),
        None => (first.as_ref(), None),
    };
    let Ok(status) = status.trim().parse::<u16>() else {
        return;
    };
    let requested = role_arn("fuzz");
    if (200..300).contains(&status) {
        match rolesanywhere::parse_credentials(status, body, &requested) {
            Ok(credentials) => render(credentials),
            Err(e) => {
                assert!(!e.is_transient());
                let _ = e.to_string();
            }
        }
        return;
    }
    let (error_type, message) = rolesanywhere::parse_error(header, body, status);
    let error = CreateSessionError::Service {
        status,
        error_type,
        message,
        request_id: Some("fuzz".to_owned()),
        attempts: 3,
        retry_after: None,
    };
    let _ = error.is_transient();
    let _ = error.to_string();
}

/// STS answers to AssumeRole (a role chain's hops): `STATUS`, a newline, then the body. A
/// 2xx answer yields credentials or an invalid-response error; any other its code and
/// message, which must be one line whatever the body held.
pub fn sts_response(data: &[u8]) {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(status) = String::from_utf8_lossy(first).trim().parse::<u16>() else {
        return;
    };
    let requested = role_arn("fuzz");
    if (200..300).contains(&status) {
        match crate::sts::answer::parse_assumed(status, body, &requested) {
            Ok(assumed) => {
                assert!(!assumed.credentials.access_key_id.is_empty());
                render(assumed.credentials);
            }
            Err(e) => {
                assert!(!e.is_transient());
                let _ = e.to_string();
            }
        }
        return;
    }
    let (code, message, _) = crate::sts::answer::parse_error(body, status);
    assert!(
        !code.contains('\n') && !message.contains('\n'),
        "{message:?}"
    );
}

/// Everything the daemon and `credential-process` do with credentials from the service.
fn render(credentials: Credentials) {
    let now = OffsetDateTime::now_utc();
    let _ = credentials.process_json();
    let _ = credentials.imds_json(now);
    let _ = credentials.ecs_json();
    let _ = credentials.seconds_left(now);
    let _ = refresh::refresh_delay(&credentials, now, now);
    let handle = Handle::fixed(State::Ready {
        credentials: Arc::new(credentials),
        received: now,
        last_error: None,
    });
    let _ = handle.current_with_receipt(now);
    let _ = handle.current(now + time::Duration::hours(13));
}

/// The PIN the `pkcs11_uri` seeds give as `pin-value`.
pub const PIN_MARKER: &str = "PINxMARKERx7f3a";

/// `pkcs11:` URIs (RFC 7512), as `--certificate`, `--private-key` and the config file take
/// them. Checks that a PIN given as `pin-value` appears in no message or rendering of the
/// URI, and that a URI the helper prints (`format`) reads back as the same token and object.
pub fn pkcs11_uri(data: &[u8]) {
    use crate::pkcs11::Pkcs11Uri;
    use crate::pkcs11::uri::redact;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<Pkcs11Uri>();
    let renderings = match &parsed {
        Ok(uri) => vec![uri.to_string(), format!("{uri:?}"), uri.format()],
        Err(e) => vec![e.to_string()],
    };
    if holds_the_pin_as_pin_value(text) {
        for shown in renderings.iter().chain([&redact(text)]) {
            assert!(!shown.contains(PIN_MARKER), "the PIN is shown: {shown:?}");
        }
    }
    if let Ok(uri) = parsed {
        let _ = uri.names_no_object();
        let printed = uri.format();
        let again = printed
            .parse::<Pkcs11Uri>()
            .unwrap_or_else(|e| panic!("{printed:?}, printed for {text:?}, does not parse: {e}"));
        let key = |u: &Pkcs11Uri| {
            (
                (u.token.clone(), u.manufacturer.clone(), u.model.clone()),
                (u.serial.clone(), u.slot_description.clone()),
                (u.slot_manufacturer.clone(), u.slot_id, u.id.clone()),
                (u.object.clone(), u.object_type),
            )
        };
        assert_eq!(key(&uri), key(&again), "{text:?} printed as {printed:?}");
    }
}

/// True when the marker PIN appears once in `text`, as a whole `pin-value=` attribute of
/// the path or the query.
fn holds_the_pin_as_pin_value(text: &str) -> bool {
    let attribute = format!("pin-value={PIN_MARKER}");
    let rest = text.strip_prefix("pkcs11:").unwrap_or(text);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    text.matches(PIN_MARKER).count() == 1
        && (path.split(';').any(|a| a == attribute) || query.split('&').any(|a| a == attribute))
}

/// `~/.aws/credentials` contents, as `update` rewrites them for profile `fuzz`: no panic; the
/// profile then holds exactly the new keys; rewriting with the same keys changes nothing;
/// a file without the profile keeps its bytes, with the section added after them.
pub fn credentials_file(data: &[u8]) {
    use crate::credfile::{ProfileKeys, profile_values, rewrite};
    let keys = ProfileKeys {
        access_key_id: "ASIAFUZZ",
        secret_access_key: "fuzz/secret+key",
        session_token: "fuzz-token==",
    };
    let want = [
        Some(keys.access_key_id.as_bytes()),
        Some(keys.secret_access_key.as_bytes()),
        Some(keys.session_token.as_bytes()),
    ];
    let once = rewrite(data, "fuzz", &keys);
    assert_eq!(
        profile_values(&once, "fuzz"),
        Some(want),
        "read back from {:?}",
        String::from_utf8_lossy(&once)
    );
    assert_eq!(
        rewrite(&once, "fuzz", &keys),
        once,
        "a second rewrite changed the file"
    );
    if profile_values(data, "fuzz").is_none() {
        assert!(once.starts_with(data), "the file's own bytes were changed");
    }
}
