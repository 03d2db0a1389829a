//! Hostile local clients against the IMDS and ECS listeners of `serve`, over raw TCP:
//! oversized headers and bodies, slowloris and clients that never read their answers,
//! connection floods, request smuggling, bytes that are not HTTP/1.1, path tricks in role
//! names, odd Host headers, guessed and expired IMDS tokens and wrong ECS tokens. Each test
//! prints what it measured (statuses, timings, the daemon's resident memory before and after)
//! and checks that the daemon answers as it should, stays up, and keeps its memory bounded.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::credential_process::Setup;
use crate::serve_daemon::{Daemon, http, imds_token};

const ROLE_NAME: &str = "onprem-app";
const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials";
const TTL: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "x-aws-ec2-metadata-token";
/// The most the daemon's resident memory may grow over one test.
const RSS_GROWTH_KIB: u64 = 10 * 1024;
/// The daemon's header read timeout (src/serve/http.rs).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// A daemon with both endpoints, and what the tests read about it.

struct Target {
    d: Daemon,
    ecs_token: String,
    _setup: Setup,
    _token_file: PathBuf,
}

impl Target {
    /// `serve` with IMDS and ECS (and `flags`), ready.
    fn start(flags: &[&str]) -> Self {
        Self::start_with(flags, None)
    }

    /// Like `start`, with at most `descriptors` open files when given.
    fn start_with(flags: &[&str], descriptors: Option<u64>) -> Self {
        let setup = Setup::new(KeyType::P256, false);
        let token_file = setup.path("ecs-token");
        let mut cmd = setup.leaf_subcommand("serve");
        cmd.arg("--ecs-token-file").arg(&token_file).args(flags);
        if let Some(n) = descriptors {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: setrlimit is async-signal-safe and reads only the local struct.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let d = Daemon::start(cmd);
        let ecs_token = std::fs::read_to_string(&token_file).unwrap();
        Self {
            d,
            ecs_token,
            _setup: setup,
            _token_file: token_file,
        }
    }

    fn port(&self) -> u16 {
        self.d.port
    }

    fn rss_kib(&self) -> u64 {
        status_field(self.d.pid(), "VmRSS:")
    }

    fn threads(&self) -> u64 {
        status_field(self.d.pid(), "Threads:")
    }

    /// Whether the process is still running (not gone, not a zombie).
    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.d.pid()))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().chars().next())
            })
            .flatten()
            .is_some_and(|state| state != 'Z' && state != 'X')
    }

    /// The IMDS credentials with a fresh token: status and access key id.
    fn credentials(&self) -> (u16, String) {
        let token = imds_token(self.port());
        let reply = http(
            ("127.0.0.1", self.port()),
            "GET",
            &format!("{CREDENTIALS}/{ROLE_NAME}"),
            &[(TOKEN, &token)],
        );
        let key = if reply.status == 200 {
            reply.json()["AccessKeyId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        } else {
            String::new()
        };
        (reply.status, key)
    }

    /// After the abuse: still running, still serving, memory growth within bounds.
    fn check_healthy(&self, what: &str, rss_before: u64) {
        let rss_after = self.rss_kib();
        eprintln!(
            "{what}: daemon RSS {rss_before} KiB before, {rss_after} KiB after (+{} KiB; bound {RSS_GROWTH_KIB} KiB)",
            rss_after.saturating_sub(rss_before)
        );
        assert!(
            self.alive(),
            "{what}: the daemon is gone:\n{}",
            self.d.log()
        );
        assert_eq!(self.credentials().0, 200, "{what}: no longer serving");
        assert!(
            rss_after <= rss_before + RSS_GROWTH_KIB,
            "{what}: RSS grew from {rss_before} to {rss_after} KiB"
        );
        let log = self.d.log();
        assert!(
            !log.contains("panicked"),
            "{what}: the daemon panicked:\n{log}"
        );
    }
}

fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Raw exchanges.

/// A request with exactly these header lines (no Host unless given), ending the head.
fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// What came back on one connection.
#[derive(Debug)]
struct Exchange {
    /// The statuses of the complete answers, in order.
    statuses: Vec<u16>,
    bodies: Vec<String>,
    /// The daemon closed the connection (EOF or reset) within the wait.
    closed: bool,
    /// Bytes of the request the kernel accepted before the daemon closed.
    written: usize,
    elapsed: Duration,
}

/// Sends `bytes` (from another thread, so that a daemon that answers early and closes is
/// heard) and reads until the daemon closes or `wait` passes without data.
fn exchange(port: u16, bytes: Vec<u8>, wait: Duration) -> Exchange {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to serve");
    exchange_on(stream, bytes, wait)
}

fn exchange_on(stream: TcpStream, bytes: Vec<u8>, wait: Duration) -> Exchange {
    let started = Instant::now();
    let mut writer = stream.try_clone().unwrap();
    writer.set_write_timeout(Some(wait)).unwrap();
    let sender = std::thread::spawn(move || {
        let mut written = 0;
        for chunk in bytes.chunks(64 * 1024) {
            match writer.write(chunk) {
                Ok(n) if n == chunk.len() => written += n,
                Ok(n) => {
                    written += n;
                    // Finish a short write, or give up on an error.
                    match writer.write_all(&chunk[n..]) {
                        Ok(()) => written += chunk.len() - n,
                        Err(_) => break,
                    }
                }
                Err(_) => break,
            }
        }
        written
    });
    let (raw, closed) = read_all(stream, wait);
    let written = sender.join().unwrap();
    let (statuses, bodies) = parse_answers(&raw);
    Exchange {
        statuses,
        bodies,
        closed,
        written,
        elapsed: started.elapsed(),
    }
}

/// Reads until EOF or reset (closed) or until `wait` passes without data.
fn read_all(mut stream: TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (raw, true),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return (raw, true);
            }
            Err(_) => return (raw, false),
        }
    }
}

/// The complete answers in `raw`: statuses and bodies (by Content-Length).
fn parse_answers(mut raw: &[u8]) -> (Vec<u16>, Vec<String>) {
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let Some(status) = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
        else {
            break;
        };
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let rest = &raw[end + 4..];
        let body = &rest[..length.min(rest.len())];
        statuses.push(status);
        bodies.push(String::from_utf8_lossy(body).into_owned());
        raw = &rest[body.len()..];
    }
    (statuses, bodies)
}

/// A keep-alive connection for many requests in a row.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to serve");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads its answer: status and body.
    fn ask(&mut self, bytes: &[u8]) -> (u16, String) {
        self.stream.write_all(bytes).unwrap();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let length = head
                    .split("\r\n")
                    .filter_map(|l| l.split_once(':'))
                    .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let body =
                        String::from_utf8_lossy(&self.buf[end + 4..end + 4 + length]).into_owned();
                    self.buf.drain(..end + 4 + length);
                    return (status, body);
                }
            }
            let n = self.stream.read(&mut chunk).expect("an answer");
            assert!(n > 0, "the daemon closed a keep-alive connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The median of some durations.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Deterministic bytes that are not HTTP.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Oversized headers and a huge token.

#[test]
fn oversized_headers_and_a_huge_token_get_431_and_a_close() {
    let t = Target::start(&[]);
    let port = t.port();
    let token = imds_token(port);
    let rss_before = t.rss_kib();
    let huge = "A".repeat(100 * 1024);
    let mega = "B".repeat(1024 * 1024);
    let under = "C".repeat(15 * 1024);
    let role_path = format!("{CREDENTIALS}/{ROLE_NAME}");
    let ecs_path = format!("/ecs/{ROLE_NAME}");
    let padding: Vec<(String, String)> = (0..200)
        .map(|i| (format!("X-Pad-{i}"), "y".into()))
        .collect();
    let padding: Vec<(&str, &str)> = padding
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let long_target = format!("{CREDENTIALS}/{}", "a".repeat(20 * 1024));
    fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        [("Host", "127.0.0.1"), ("Connection", "close")]
            .iter()
            .chain(extra)
            .copied()
            .collect()
    }
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "IMDS token of 100 KiB",
            request("GET", &role_path, &with(&[(TOKEN, &huge)])),
            &[431],
        ),
        (
            "IMDS token of 15 KiB (under the 16 KiB read buffer)",
            request("GET", &role_path, &with(&[(TOKEN, &under)])),
            &[401],
        ),
        (
            "ECS Authorization of 100 KiB",
            request("GET", &ecs_path, &with(&[("Authorization", &huge)])),
            &[431],
        ),
        (
            "token TTL header of 100 KiB",
            request("PUT", "/latest/api/token", &with(&[(TTL, &huge)])),
            &[431],
        ),
        (
            "one header of 1 MiB",
            request(
                "GET",
                &role_path,
                &with(&[("X-Pad", &mega), (TOKEN, &token)]),
            ),
            &[431],
        ),
        ("200 headers", request("GET", &role_path, &padding), &[431]),
        (
            "request target of 20 KiB",
            request("GET", &long_target, &with(&[(TOKEN, &token)])),
            &[414, 431],
        ),
    ];
    for (what, bytes, expected) in &cases {
        let sent = bytes.len();
        let x = exchange(port, bytes.clone(), Duration::from_secs(5));
        eprintln!(
            "{what}: {sent} bytes sent -> statuses {:?}, closed {}, {:.1} ms",
            x.statuses,
            x.closed,
            x.elapsed.as_secs_f64() * 1000.0
        );
        assert_eq!(x.statuses.len(), 1, "{what}: {x:?}");
        assert!(expected.contains(&x.statuses[0]), "{what}: {x:?}");
        assert!(x.closed, "{what}: the connection stays open: {x:?}");
    }

    // Many at once: 16 clients, 20 huge tokens each.
    let started = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                let bytes = cases[0].1.clone();
                scope.spawn(move || {
                    (0..20)
                        .flat_map(|_| {
                            exchange(port, bytes.clone(), Duration::from_secs(5)).statuses
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    eprintln!(
        "320 requests with a 100 KiB token from 16 clients at once: {} answered 431 in {:.2} s",
        statuses.iter().filter(|s| **s == 431).count(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(statuses.len(), 320);
    assert!(statuses.iter().all(|s| *s == 431), "{statuses:?}");
    t.check_healthy("oversized headers", rss_before);
}

// ---------------------------------------------------------------------------------------
// Oversized bodies.

#[test]
fn oversized_bodies_are_not_read_and_the_connection_closes() {
    let t = Target::start(&[]);
    let port = t.port();
    let rss_before = t.rss_kib();
    const SEND: usize = 32 * 1024 * 1024;
    let mut fixed = request(
        "PUT",
        "/latest/api/token",
        &[
            ("Host", "127.0.0.1"),
            (TTL, "60"),
            ("Content-Length", "10737418240"),
        ],
    );
    fixed.extend(std::iter::repeat_n(b'x', SEND));
    let mut chunked = request(
        "PUT",
        "/latest/api/token",
        &[
            ("Host", "127.0.0.1"),
            (TTL, "60"),
            ("Transfer-Encoding", "chunked"),
        ],
    );
    let chunk = [b"10000\r\n".as_slice(), &[b'y'; 0x10000], b"\r\n"].concat();
    while chunked.len() < SEND {
        chunked.extend_from_slice(&chunk);
    }
    let mut ecs = request(
        "GET",
        &format!("/ecs/{ROLE_NAME}"),
        &[
            ("Host", "127.0.0.1"),
            ("Authorization", &t.ecs_token),
            ("Content-Length", "1073741824"),
        ],
    );
    ecs.extend(std::iter::repeat_n(b'z', SEND));
    let mut post = request(
        "POST",
        "/latest/api/token",
        &[
            ("Host", "127.0.0.1"),
            (TTL, "60"),
            ("Content-Length", "1073741824"),
        ],
    );
    post.extend(std::iter::repeat_n(b'w', SEND));
    for (what, bytes, expected) in [
        ("token PUT declaring 10 GiB, 32 MiB sent", fixed, 200),
        (
            "token PUT with an endless chunked body, 32 MiB sent",
            chunked,
            200,
        ),
        ("ECS GET declaring 1 GiB, 32 MiB sent", ecs, 200),
        ("token POST declaring 1 GiB, 32 MiB sent", post, 405),
    ] {
        let x = exchange(port, bytes, Duration::from_secs(5));
        eprintln!(
            "{what}: statuses {:?}, closed {}, {:.1} MiB of it accepted before the close, {:.1} ms",
            x.statuses,
            x.closed,
            x.written as f64 / (1024.0 * 1024.0),
            x.elapsed.as_secs_f64() * 1000.0
        );
        assert_eq!(x.statuses, [expected], "{what}: {x:?}");
        assert!(x.closed, "{what}: the connection stays open");
        assert!(
            x.written < SEND,
            "{what}: the daemon read the whole body ({} bytes)",
            x.written
        );
        assert!(x.elapsed < Duration::from_secs(5), "{what}: {x:?}");
    }
    t.check_healthy("oversized bodies", rss_before);
}

// ---------------------------------------------------------------------------------------
// Slowloris, idle connections, and clients that never read their answers.

/// Connects, sends `prefix`, then one byte of `drip` every `every` until the daemon closes;
/// how long after connecting it closed, and whether anything came back.
fn slowloris(port: u16, prefix: &[u8], drip: Option<Duration>) -> (Duration, usize) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    stream.write_all(prefix).unwrap();
    let reader = stream.try_clone().unwrap();
    let dripper = drip.map(|every| {
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            while writer.write_all(b"a").is_ok() && started.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(every);
            }
        })
    });
    let (raw, closed) = read_all(reader, Duration::from_secs(30));
    let elapsed = started.elapsed();
    assert!(closed, "still open after {elapsed:?}");
    let _ = stream.shutdown(Shutdown::Both);
    if let Some(d) = dripper {
        d.join().unwrap();
    }
    (elapsed, raw.len())
}

/// Pipelines requests without reading until the daemon stops reading them; the bytes sent.
fn never_read(port: u16) -> (TcpStream, usize) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nonblocking(true).unwrap();
    let requests = b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(256);
    let mut sent = 0;
    let mut blocked_since: Option<Instant> = None;
    loop {
        match stream.write(&requests) {
            Ok(n) => {
                sent += n;
                blocked_since = None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the daemon closed before it stopped reading: {e}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
    (stream, sent)
}

#[test]
fn slowloris_and_clients_that_never_read_are_cut_off() {
    let t = Target::start(&[]);
    // A second daemon with two slots, held by clients that never read their answers.
    let small = Target::start(&["--max-connections", "2"]);
    let port = t.port();
    let rss_before = t.rss_kib();
    let within =
        HEADER_TIMEOUT - Duration::from_millis(500)..HEADER_TIMEOUT + Duration::from_secs(3);
    std::thread::scope(|scope| {
        let idle = scope.spawn(|| slowloris(port, b"", None));
        let partial = scope.spawn(|| {
            slowloris(
                port,
                format!("GET {CREDENTIALS}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").as_bytes(),
                Some(Duration::from_millis(500)),
            )
        });
        let line =
            scope.spawn(|| slowloris(port, b"GET /latest/meta-da", Some(Duration::from_secs(1))));
        let after_answer = scope.spawn(|| {
            let mut c = Conn::open(port);
            let (status, _) = c.ask(&request(
                "PUT",
                "/latest/api/token",
                &[("Host", "127.0.0.1"), (TTL, "60"), ("Content-Length", "0")],
            ));
            assert_eq!(status, 200);
            let answered = Instant::now();
            let (_, closed) = read_all(c.stream, Duration::from_secs(30));
            assert!(closed);
            answered.elapsed()
        });
        let starved = scope.spawn(|| {
            let (a, sent_a) = never_read(small.port());
            let (b, sent_b) = never_read(small.port());
            let stalled = Instant::now();
            // Both slots are held: a third client waits until the daemon gives up on them.
            let x = exchange(
                small.port(),
                request(
                    "PUT",
                    "/latest/api/token",
                    &[
                        ("Host", "127.0.0.1"),
                        (TTL, "60"),
                        ("Content-Length", "0"),
                        ("Connection", "close"),
                    ],
                ),
                Duration::from_secs(20),
            );
            let waited = stalled.elapsed();
            let (_, a_closed) = read_all(a, Duration::from_secs(2));
            let (_, b_closed) = read_all(b, Duration::from_secs(2));
            (sent_a + sent_b, waited, x.statuses, a_closed && b_closed)
        });
        // Meanwhile the daemon serves everyone else at once.
        std::thread::sleep(Duration::from_secs(3));
        let asked = Instant::now();
        assert_eq!(t.credentials().0, 200);
        let served_in = asked.elapsed();

        let (idle_closed, idle_bytes) = idle.join().unwrap();
        let (partial_closed, partial_bytes) = partial.join().unwrap();
        let (line_closed, line_bytes) = line.join().unwrap();
        let after_answer = after_answer.join().unwrap();
        let (sent, waited, statuses, readers_closed) = starved.join().unwrap();
        eprintln!(
            "idle connection closed after {:.1} s ({idle_bytes} bytes back); headers dripped at 2 bytes/s closed after {:.1} s ({partial_bytes} bytes back); request line dripped at 1 byte/s closed after {:.1} s ({line_bytes} bytes back); keep-alive connection idle after an answer closed after {:.1} s; header timeout {} s",
            idle_closed.as_secs_f64(),
            partial_closed.as_secs_f64(),
            line_closed.as_secs_f64(),
            after_answer.as_secs_f64(),
            HEADER_TIMEOUT.as_secs()
        );
        eprintln!(
            "credentials served in {:.1} ms during the slowloris",
            served_in.as_secs_f64() * 1000.0
        );
        eprintln!(
            "two clients pipelined {:.1} MiB of requests without reading, holding both slots of --max-connections 2: a third client was answered {statuses:?} after {:.1} s; the two closed by the daemon: {readers_closed}",
            sent as f64 / (1024.0 * 1024.0),
            waited.as_secs_f64()
        );
        for (what, took, bytes) in [
            ("idle", idle_closed, idle_bytes),
            ("dripped headers", partial_closed, partial_bytes),
            ("dripped request line", line_closed, line_bytes),
        ] {
            assert!(within.contains(&took), "{what}: closed after {took:?}");
            assert_eq!(bytes, 0, "{what}: an answer to an incomplete request");
        }
        assert!(within.contains(&after_answer), "{after_answer:?}");
        assert!(served_in < Duration::from_secs(2), "{served_in:?}");
        assert_eq!(statuses, [200]);
        assert!(
            readers_closed,
            "the clients that never read are still connected"
        );
        assert!(
            waited > HEADER_TIMEOUT / 2 && waited < HEADER_TIMEOUT + Duration::from_secs(5),
            "the third client waited {waited:?}"
        );
    });
    t.check_healthy("slowloris", rss_before);
    assert!(small.alive());
    assert_eq!(small.credentials().0, 200);
}

// ---------------------------------------------------------------------------------------
// Connection floods.

/// The port of the ops listener, from the daemon's startup lines.
fn ops_port(t: &Target) -> u16 {
    t.d.log()
        .split("Health and metrics: http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the ops address in the log")
}

/// The status of `GET /healthz`, if one comes within `wait`.
fn healthz(port: u16, wait: Duration) -> Option<u16> {
    let x = exchange(
        port,
        request(
            "GET",
            "/healthz",
            &[("Host", "127.0.0.1"), ("Connection", "close")],
        ),
        wait,
    );
    x.statuses.first().copied()
}

#[test]
fn a_connection_flood_waits_for_free_slots_and_the_daemon_stays_healthy() {
    const LIMIT: usize = 50;
    let t = Target::start(&["--max-connections", &LIMIT.to_string()]);
    let port = t.port();
    let rss_before = t.rss_kib();
    let threads_before = t.threads();

    // What a held slot costs at most: 15 KiB of a request head that never ends (just under
    // the 16 KiB read buffer), on every slot.
    let unfinished = format!(
        "GET {CREDENTIALS}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}",
        "p".repeat(15 * 1024)
    );
    let heavy: Vec<TcpStream> = (0..LIMIT)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(unfinished.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss_heavy = t.rss_kib();
    drop(heavy);
    std::thread::sleep(Duration::from_millis(300));
    let per_slot = rss_heavy.saturating_sub(rss_before) / LIMIT as u64;

    let mut held: Vec<TcpStream> = (0..LIMIT)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut next = TcpStream::connect(("127.0.0.1", port)).unwrap();
    next.write_all(&request(
        "PUT",
        "/latest/api/token",
        &[
            ("Host", "127.0.0.1"),
            (TTL, "60"),
            ("Content-Length", "0"),
            ("Connection", "close"),
        ],
    ))
    .unwrap();
    next.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut first = [0u8; 1];
    let waited = next.read(&mut first);
    assert!(
        waited.is_err(),
        "connection {} was served while {LIMIT} were open: {waited:?}",
        LIMIT + 1
    );

    // One slot frees: the waiting client is served at once.
    drop(held.remove(0));
    let freed = Instant::now();
    let (raw, _) = read_all(next, Duration::from_secs(5));
    let served_after = freed.elapsed();
    let (statuses, _) = parse_answers(&raw);

    // Ten times the limit more, all waiting in the kernel's queue.
    let rss_held = t.rss_kib();
    let flood: Vec<TcpStream> = (0..10 * LIMIT)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let rss_flood = t.rss_kib();
    let threads_flood = t.threads();
    let alive_during = t.alive();
    drop(flood);
    drop(held);

    let recovered = Instant::now();
    let (status, _) = t.credentials();
    let recovered_in = recovered.elapsed();

    // With an ops listener, /healthz shares the limit: what a health check sees meanwhile.
    let with_ops = Target::start(&[
        "--max-connections",
        &LIMIT.to_string(),
        "--ops-listen",
        "127.0.0.1:0",
    ]);
    let ops = ops_port(&with_ops);
    let flood: Vec<TcpStream> = (0..2 * LIMIT)
        .map(|_| TcpStream::connect(("127.0.0.1", with_ops.port())).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let checks: Vec<Option<u16>> = (0..3)
        .map(|_| healthz(ops, Duration::from_secs(1)))
        .collect();
    drop(flood);
    let ops_after = healthz(ops, Duration::from_secs(5));

    eprintln!(
        "--max-connections {LIMIT}: with {LIMIT} idle connections open, connection {} got nothing in 1.5 s; served {statuses:?} {:.1} ms after one closed",
        LIMIT + 1,
        served_after.as_secs_f64() * 1000.0
    );
    eprintln!(
        "{LIMIT} slots each holding 15 KiB of an unfinished request head: RSS {rss_before} -> {rss_heavy} KiB, about {per_slot} KiB a slot, so about {} MiB at the default --max-connections 4096",
        per_slot * 4096 / 1024
    );
    eprintln!(
        "RSS {rss_before} KiB before, {rss_held} KiB with {LIMIT} held, {rss_flood} KiB with {} more queued; threads {threads_before} -> {threads_flood}; after the flood: credentials {status} in {:.1} ms",
        10 * LIMIT,
        recovered_in.as_secs_f64() * 1000.0
    );
    eprintln!(
        "/healthz of a daemon with --ops-listen while {} connections flood its credentials port (the ops listener has its own limit): {checks:?} (None: no answer within 1 s); after the flood: {ops_after:?}",
        2 * LIMIT
    );
    assert_eq!(
        checks,
        [Some(200); 3],
        "health checks are answered during a flood"
    );
    assert_eq!(statuses, [200]);
    assert!(served_after < Duration::from_secs(1), "{served_after:?}");
    assert!(
        rss_heavy <= rss_before + RSS_GROWTH_KIB,
        "{rss_before} -> {rss_heavy} KiB"
    );
    assert!(alive_during);
    assert!(
        rss_flood <= rss_before + RSS_GROWTH_KIB,
        "{rss_before} -> {rss_flood} KiB"
    );
    assert_eq!(
        threads_flood, threads_before,
        "threads grew under the flood"
    );
    assert_eq!(status, 200);
    assert!(recovered_in < Duration::from_secs(2), "{recovered_in:?}");
    assert_eq!(ops_after, Some(200));
    t.check_healthy("connection flood", rss_before);
}

#[test]
fn a_descriptor_limit_below_the_connection_bound_caps_it_and_refreshes_still_work() {
    // The default --max-connections (4096) above the process's descriptor limit, as under a
    // service manager's default soft limit of 1024, scaled down: the daemon keeps the bound
    // below the limit, so a flood can never take the descriptors a refresh needs.
    const DESCRIPTORS: u64 = 64;
    let t = Target::start_with(&[], Some(DESCRIPTORS));
    let port = t.port();
    let rss_before = t.rss_kib();
    assert!(
        t.d.log().contains("the open-file limit leaves room for"),
        "the cap is announced: {}",
        t.d.log()
    );
    let flood: Vec<TcpStream> = (0..2 * DESCRIPTORS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let open = std::fs::read_dir(format!("/proc/{}/fd", t.d.pid()))
        .map(|d| d.count())
        .unwrap();
    // A refresh during the flood: SIGHUP makes the daemon read its files and call
    // CreateSession at once.
    // SAFETY: kill() has no memory effects.
    unsafe { libc::kill(t.d.pid() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.d.log().contains("role reloaded") {
        assert!(
            Instant::now() < deadline,
            "no refresh during the flood: {}",
            t.d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive_during = t.alive();
    drop(flood);
    let released = Instant::now();
    let (status, _) = t.credentials();
    let recovered_in = released.elapsed();
    eprintln!(
        "{} connections against a daemon limited to {DESCRIPTORS} descriptors: {open} descriptors open, a refresh succeeded meanwhile, 'accept failed' logged {} times; after the flood: credentials {status} in {:.1} ms",
        2 * DESCRIPTORS,
        t.d.log().matches("accept failed").count(),
        recovered_in.as_secs_f64() * 1000.0
    );
    assert!(alive_during);
    assert!((open as u64) < DESCRIPTORS, "{open} descriptors open");
    assert!(!t.d.log().contains("accept failed"), "{}", t.d.log());
    assert_eq!(status, 200);
    assert!(recovered_in < Duration::from_secs(3), "{recovered_in:?}");
    t.check_healthy("descriptor limit", rss_before);
}

// ---------------------------------------------------------------------------------------
// Request smuggling.

#[test]
fn request_smuggling_gets_one_answer_then_a_close_or_a_400() {
    let t = Target::start(&[]);
    let port = t.port();
    let rss_before = t.rss_kib();
    let smuggled = format!("GET {CREDENTIALS}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let head = |extra: &[(&str, &str)]| {
        let mut headers = vec![("Host", "127.0.0.1"), (TTL, "60")];
        headers.extend_from_slice(extra);
        String::from_utf8(request("PUT", "/latest/api/token", &headers)).unwrap()
    };
    let ecs_head = |extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("Host", "127.0.0.1"),
            ("Authorization", t.ecs_token.as_str()),
        ];
        headers.extend_from_slice(extra);
        String::from_utf8(request("GET", &format!("/ecs/{ROLE_NAME}"), &headers)).unwrap()
    };
    let body = format!("0\r\n\r\n{smuggled}");
    let cl = body.len().to_string();
    let cases: Vec<(&str, String, &[u16], bool)> = vec![
        (
            "Content-Length then Transfer-Encoding, a request after the last chunk",
            format!(
                "{}{body}",
                head(&[("Content-Length", &cl), ("Transfer-Encoding", "chunked")])
            ),
            &[200],
            true,
        ),
        (
            "Transfer-Encoding then Content-Length",
            format!(
                "{}{body}",
                head(&[("Transfer-Encoding", "chunked"), ("Content-Length", &cl)])
            ),
            &[200],
            true,
        ),
        (
            "Content-Length 0 with Transfer-Encoding, on the ECS path",
            format!(
                "{}{body}",
                ecs_head(&[("Content-Length", "0"), ("Transfer-Encoding", "chunked")])
            ),
            &[200],
            true,
        ),
        (
            "two different Content-Lengths",
            format!(
                "{}ab{smuggled}",
                head(&[("Content-Length", "2"), ("Content-Length", "40")])
            ),
            &[400],
            true,
        ),
        (
            "Transfer-Encoding not ending in chunked",
            format!(
                "{}{body}",
                head(&[
                    ("Transfer-Encoding", "chunked, identity"),
                    ("Content-Length", &cl)
                ])
            ),
            &[400],
            true,
        ),
        (
            "Transfer-Encoding: xchunked",
            format!(
                "{}{body}",
                head(&[("Transfer-Encoding", "xchunked"), ("Content-Length", &cl)])
            ),
            &[400],
            true,
        ),
        (
            "a space before the colon of Transfer-Encoding",
            format!(
                "PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n{TTL}: 60\r\nTransfer-Encoding : chunked\r\nContent-Length: {cl}\r\n\r\n{body}"
            ),
            &[400],
            true,
        ),
        (
            "Transfer-Encoding folded onto a second line",
            format!(
                "PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n{TTL}: 60\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: {cl}\r\n\r\n{body}"
            ),
            &[400],
            true,
        ),
        (
            "Content-Length with a sign",
            format!("{}{body}", head(&[("Content-Length", &format!("+{cl}"))])),
            &[400],
            true,
        ),
        (
            "Content-Length beyond 64 bits",
            format!(
                "{}{body}",
                head(&[("Content-Length", "99999999999999999999999")])
            ),
            &[400],
            true,
        ),
        (
            "a chunk size that is not hex, a request after it",
            format!(
                "{}zz\r\n{smuggled}",
                head(&[("Transfer-Encoding", "chunked")])
            ),
            &[200],
            true,
        ),
        (
            "control: two plain pipelined requests get two answers",
            format!(
                "{}{}",
                head(&[("Content-Length", "0")]),
                String::from_utf8(request(
                    "GET",
                    &format!("{CREDENTIALS}/"),
                    &[("Host", "127.0.0.1"), ("Connection", "close")]
                ))
                .unwrap()
            ),
            &[200, 401],
            true,
        ),
    ];
    for (what, bytes, expected, must_close) in cases {
        let x = exchange(port, bytes.into_bytes(), Duration::from_secs(3));
        eprintln!("{what}: statuses {:?}, closed {}", x.statuses, x.closed);
        assert_eq!(x.statuses, expected, "{what}: {x:?}");
        if must_close {
            assert!(x.closed, "{what}: the connection stays open");
        }
    }
    t.check_healthy("request smuggling", rss_before);
}

// ---------------------------------------------------------------------------------------
// Bytes that are not HTTP/1.1.

#[test]
fn non_http_bytes_and_an_http2_preface_get_400_or_a_close() {
    let t = Target::start(&[]);
    let port = t.port();
    let rss_before = t.rss_kib();
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // An empty SETTINGS frame, as a client sends right after the preface.
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let mut client_hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    client_hello.extend(noise(508, 7));
    let h2c = request(
        "GET",
        &format!("{CREDENTIALS}/"),
        &[
            ("Host", "127.0.0.1"),
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ],
    );
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("HTTP/2 preface and SETTINGS", preface),
        ("TLS ClientHello", client_hello),
        ("64 KiB of random bytes", noise(64 * 1024, 42)),
        ("4 KiB of NUL bytes", vec![0; 4096]),
        ("an SSH banner", b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
        ("HTTP/0.9", b"GET /\r\n\r\n".to_vec()),
        (
            "HTTP/3.0 in the request line",
            b"GET / HTTP/3.0\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        ),
        (
            "a NUL byte in the path",
            format!("GET {CREDENTIALS}/{ROLE_NAME}\0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .into_bytes(),
        ),
        (
            "a header line without a colon",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n".to_vec(),
        ),
        ("40000 empty lines", b"\r\n".repeat(20_000)),
    ];
    let mut worst = Duration::ZERO;
    for (what, bytes) in &payloads {
        let x = exchange(port, bytes.clone(), Duration::from_secs(3));
        worst = worst.max(x.elapsed);
        eprintln!(
            "{what} ({} bytes): statuses {:?}, closed {}, {:.1} ms",
            bytes.len(),
            x.statuses,
            x.closed,
            x.elapsed.as_secs_f64() * 1000.0
        );
        assert!(x.closed, "{what}: the connection stays open: {x:?}");
        assert!(
            x.statuses.is_empty() || matches!(x.statuses.as_slice(), [400 | 431 | 505]),
            "{what}: {x:?}"
        );
    }
    // An h2c upgrade is answered as plain HTTP/1.1, never switched.
    let x = exchange(port, h2c, Duration::from_secs(1));
    eprintln!("h2c upgrade request: statuses {:?}", x.statuses);
    assert_eq!(x.statuses, [401], "{x:?}");

    // All of them again, 16 clients at once, 10 rounds.
    let started = Instant::now();
    let closed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16)
            .map(|i| {
                let payloads = &payloads;
                scope.spawn(move || {
                    (0..10)
                        .filter(|round| {
                            let (_, bytes) = &payloads[(i + round) % payloads.len()];
                            exchange(port, bytes.clone(), Duration::from_secs(3)).closed
                        })
                        .count()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .sum::<usize>()
    });
    eprintln!(
        "160 of these from 16 clients at once: {closed} closed by the daemon in {:.2} s; slowest single answer {:.1} ms",
        started.elapsed().as_secs_f64(),
        worst.as_secs_f64() * 1000.0
    );
    assert_eq!(closed, 160);
    t.check_healthy("non-HTTP bytes", rss_before);
}

// ---------------------------------------------------------------------------------------
// Role names with path tricks.

#[test]
fn role_names_with_dot_dot_encoded_slashes_and_nul_get_404() {
    let t = Target::start(&[]);
    let port = t.port();
    let token = imds_token(port);
    let imds = [
        format!("{CREDENTIALS}/../security-credentials/{ROLE_NAME}"),
        format!("{CREDENTIALS}/{ROLE_NAME}/.."),
        format!("{CREDENTIALS}/{ROLE_NAME}/../{ROLE_NAME}"),
        format!("{CREDENTIALS}/./{ROLE_NAME}"),
        format!("{CREDENTIALS}/%2e%2e/{ROLE_NAME}"),
        format!("{CREDENTIALS}/{ROLE_NAME}%2f"),
        format!("{CREDENTIALS}/{ROLE_NAME}%2F"),
        format!("{CREDENTIALS}%2f{ROLE_NAME}"),
        format!("{CREDENTIALS}/%2f{ROLE_NAME}"),
        format!("{CREDENTIALS}/{ROLE_NAME}%00"),
        format!("{CREDENTIALS}/{ROLE_NAME}%00.json"),
        format!("{CREDENTIALS}/{}", ROLE_NAME.to_uppercase()),
        format!("{CREDENTIALS}/{ROLE_NAME}//"),
        format!("{CREDENTIALS}//{ROLE_NAME}"),
        format!("{CREDENTIALS}/{ROLE_NAME}/extra"),
        format!("{CREDENTIALS}/{ROLE_NAME}%20"),
        format!("{CREDENTIALS}/{ROLE_NAME};x"),
        "/latest/api/token/../token".to_owned(),
        "/latest/meta-data/iam/../iam/security-credentials/".to_owned(),
    ];
    let ecs = [
        format!("/ecs/../ecs/{ROLE_NAME}"),
        format!("/ecs/%2e%2e/ecs/{ROLE_NAME}"),
        format!("/ecs/{ROLE_NAME}%00"),
        format!("/ecs/{ROLE_NAME}%2f"),
        format!("/ecs%2f{ROLE_NAME}"),
        format!("/ecs/{ROLE_NAME}/"),
        format!("/ecs//{ROLE_NAME}"),
        format!("/ecs/{ROLE_NAME}/.."),
        format!("/ecs/{}", ROLE_NAME.to_uppercase()),
        format!("/latest/../ecs/{ROLE_NAME}"),
    ];
    let mut statuses = Vec::new();
    for path in &imds {
        let reply = http(("127.0.0.1", port), "GET", path, &[(TOKEN, &token)]);
        statuses.push(reply.status);
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
    }
    for path in &ecs {
        let reply = http(
            ("127.0.0.1", port),
            "GET",
            path,
            &[("Authorization", &t.ecs_token)],
        );
        statuses.push(reply.status);
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
    }
    // A raw NUL byte is not a valid request target at all.
    let raw = exchange(
        port,
        format!(
            "GET /ecs/{ROLE_NAME}\0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
            t.ecs_token
        )
        .into_bytes(),
        Duration::from_secs(3),
    );
    eprintln!(
        "{} IMDS and {} ECS paths with '..', '.', '%2e%2e', '%2f', '%00', case, '//' and suffixes: all {:?}; a raw NUL in the path: {:?}",
        imds.len(),
        ecs.len(),
        {
            let mut s = statuses.clone();
            s.dedup();
            s
        },
        raw.statuses
    );
    assert_eq!(raw.statuses, [400]);
    // The real paths still answer.
    assert_eq!(t.credentials().0, 200);
    let ok = http(
        ("127.0.0.1", port),
        "GET",
        &format!("/ecs/{ROLE_NAME}"),
        &[("Authorization", &t.ecs_token)],
    );
    assert_eq!(ok.status, 200);
}

// ---------------------------------------------------------------------------------------
// Odd Host headers.

#[test]
fn host_headers_other_than_addresses_and_localhost_are_refused() {
    // A page that rebinds its DNS name to 127.0.0.1 sends its own name as Host: refused,
    // unless the operator allowed that name (--allow-host).
    let t = Target::start(&["--allow-host", "helper.internal"]);
    let port = t.port();
    let token = imds_token(port);
    let role_path = format!("{CREDENTIALS}/{ROLE_NAME}");
    let ecs_path = format!("/ecs/{ROLE_NAME}");
    let key_of = |x: &Exchange| -> Option<String> {
        let body = x.bodies.first()?;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        json["AccessKeyId"].as_str().map(str::to_owned)
    };
    let (_, baseline) = t.credentials();
    let long_host = "h".repeat(8 * 1024);
    // (what, the Host headers sent, the status expected)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let hosts: Vec<Case> = vec![
        ("Host: evil.example", vec![("Host", "evil.example")], 403),
        (
            "Host: 127.0.0.1.nip.io",
            vec![("Host", "127.0.0.1.nip.io")],
            403,
        ),
        ("Host: 8 KiB long", vec![("Host", long_host.as_str())], 403),
        (
            "two Host headers",
            vec![("Host", "127.0.0.1"), ("Host", "evil.example")],
            400,
        ),
        (
            "Host: 169.254.169.254",
            vec![("Host", "169.254.169.254")],
            200,
        ),
        ("Host: [::1]:1", vec![("Host", "[::1]:1")], 200),
        ("Host: localhost.", vec![("Host", "localhost.")], 200),
        (
            "Host: helper.internal:80 (allowed)",
            vec![("Host", "helper.internal:80")],
            200,
        ),
        ("no Host header", vec![], 200),
        ("an empty Host", vec![("Host", "")], 200),
    ];
    let mut outcomes = Vec::new();
    for (what, host, expected) in &hosts {
        let mut headers = host.clone();
        headers.push((TOKEN, &token));
        headers.push(("Connection", "close"));
        let imds = exchange(
            port,
            request("GET", &role_path, &headers),
            Duration::from_secs(3),
        );
        let mut headers = host.clone();
        headers.push(("Authorization", &t.ecs_token));
        headers.push(("Connection", "close"));
        let ecs = exchange(
            port,
            request("GET", &ecs_path, &headers),
            Duration::from_secs(3),
        );
        let mut headers = host.clone();
        headers.extend([
            (TTL, "60"),
            ("Content-Length", "0"),
            ("Connection", "close"),
        ]);
        let put = exchange(
            port,
            request("PUT", "/latest/api/token", &headers),
            Duration::from_secs(3),
        );
        outcomes.push(format!(
            "{what}: IMDS {:?}, ECS {:?}, token PUT {:?}",
            imds.statuses, ecs.statuses, put.statuses
        ));
        for (route, x) in [("IMDS", &imds), ("ECS", &ecs), ("token PUT", &put)] {
            assert_eq!(x.statuses, [*expected], "{what}, {route}: {x:?}");
        }
        if *expected == 200 {
            assert_eq!(key_of(&imds).as_deref(), Some(baseline.as_str()), "{what}");
            assert_eq!(key_of(&ecs).as_deref(), Some(baseline.as_str()), "{what}");
        }
    }
    // The absolute form of the target names a host too.
    let absolute = exchange(
        port,
        request(
            "GET",
            &format!("http://evil.example{role_path}"),
            &[
                ("Host", "127.0.0.1"),
                (TOKEN, &token),
                ("Connection", "close"),
            ],
        ),
        Duration::from_secs(3),
    );
    outcomes.push(format!(
        "absolute-form target http://evil.example/...: {:?}",
        absolute.statuses
    ));
    for line in &outcomes {
        eprintln!("{line}");
    }
    assert_eq!(absolute.statuses, [403]);
}

// ---------------------------------------------------------------------------------------
// IMDS tokens: guessed, malformed, expired, and a flood of new ones.

#[test]
fn guessed_malformed_and_expired_imds_tokens_get_401() {
    let t = Target::start(&["--ops-listen", "127.0.0.1:0"]);
    let port = t.port();
    let role_path = format!("{CREDENTIALS}/{ROLE_NAME}");
    let get = |token: &str| request("GET", &role_path, &[("Host", "127.0.0.1"), (TOKEN, token)]);
    let real = imds_token(port);
    let rss_before = t.rss_kib();

    // Guesses of the right shape: 43 URL-safe base64 characters.
    const GUESSES: usize = 2000;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut c = Conn::open(port);
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..GUESSES {
        let guess: String = noise(43, i as u64 + 1)
            .iter()
            .map(|b| alphabet[usize::from(*b) % 64] as char)
            .collect();
        if c.ask(&get(&guess)).0 == 401 {
            refused += 1;
        }
    }
    let guessing = started.elapsed();

    // Near misses and odd shapes.
    let mut flipped = real.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let odd = [
        ("one character changed", flipped),
        ("one character short", real[..real.len() - 1].to_owned()),
        ("one character more", format!("{real}A")),
        ("upper-cased", real.to_uppercase()),
        ("with a Bearer prefix", format!("Bearer {real}")),
        ("empty", String::new()),
        ("a single character", "A".into()),
        ("15 KiB", "T".repeat(15 * 1024)),
        ("non-ASCII bytes", "tok\u{e9}n\u{1f512}".into()),
    ];
    let mut odd_statuses = Vec::new();
    for (what, token) in &odd {
        let (status, _) = c.ask(&get(token));
        odd_statuses.push(status);
        assert_eq!(status, 401, "token {what}");
    }
    // Another daemon's token is no token here.
    let other = Target::start(&[]);
    let foreign = imds_token(other.port());
    assert_eq!(c.ask(&get(&foreign)).0, 401, "another daemon's token");

    // Expiry: a 1-second token works at once and is refused 1.2 s later.
    let short = http(
        ("127.0.0.1", port),
        "PUT",
        "/latest/api/token",
        &[(TTL, "1")],
    )
    .body;
    let fresh = c.ask(&get(&short)).0;
    std::thread::sleep(Duration::from_millis(1200));
    let expired = c.ask(&get(&short)).0;

    // A flood of new tokens: the store stays bounded and the token in use survives.
    assert_eq!(c.ask(&get(&real)).0, 200);
    let unused_before = imds_token(port);
    let put = request(
        "PUT",
        "/latest/api/token",
        &[
            ("Host", "127.0.0.1"),
            (TTL, "21600"),
            ("Content-Length", "0"),
        ],
    );
    const FLOOD: usize = 6000;
    let started = Instant::now();
    for _ in 0..FLOOD {
        assert_eq!(c.ask(&put).0, 200);
    }
    let flooding = started.elapsed();
    let in_use_after = c.ask(&get(&real)).0;
    let unused_after = c.ask(&get(&unused_before)).0;
    let metrics = http(("127.0.0.1", ops_port(&t)), "GET", "/metrics", &[]).body;
    let stored: u64 = metrics
        .lines()
        .find(|l| l.starts_with("rolesanywhere_imds_tokens"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .expect("rolesanywhere_imds_tokens in /metrics");

    eprintln!(
        "{GUESSES} random well-formed tokens: {refused} refused with 401 in {:.2} s ({:.0} µs each)",
        guessing.as_secs_f64(),
        guessing.as_secs_f64() * 1e6 / GUESSES as f64
    );
    eprintln!(
        "near misses and odd shapes ({}): {odd_statuses:?}; another daemon's token: 401",
        odd.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", ")
    );
    eprintln!("a 1 s token: {fresh} at once, {expired} after 1.2 s");
    eprintln!(
        "{FLOOD} token PUTs in {:.2} s: the store holds {stored}; the token in use before: {in_use_after}; an unused one from before: {unused_after}",
        flooding.as_secs_f64()
    );
    assert_eq!(refused, GUESSES);
    assert_eq!((fresh, expired), (200, 401));
    assert_eq!(in_use_after, 200, "the flood evicted the token in use");
    assert!(stored <= 4096, "the token store holds {stored}");
    t.check_healthy("IMDS tokens", rss_before);
}

// ---------------------------------------------------------------------------------------
// ECS tokens.

#[test]
fn wrong_ecs_tokens_get_403_and_a_missing_one_401() {
    let t = Target::start(&[]);
    let port = t.port();
    let path = format!("/ecs/{ROLE_NAME}");
    let token = t.ecs_token.clone();
    let get = |auth: Option<&str>| {
        let mut headers = vec![("Host", "127.0.0.1")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        request("GET", &path, &headers)
    };
    let change = |i: usize| {
        let mut b = token.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let last = token.len() - 1;
    let cases = [
        ("first character changed", change(0)),
        ("middle character changed", change(token.len() / 2)),
        ("last character changed", change(last)),
        ("one character short", token[..last].to_owned()),
        ("one character more", format!("{token}A")),
        ("upper-cased", token.to_uppercase()),
        ("with a Bearer prefix", format!("Bearer {token}")),
        ("twice", format!("{token}{token}")),
        ("empty", String::new()),
        ("the IMDS token", imds_token(port)),
        ("4 KiB", "Q".repeat(4096)),
    ];
    let mut c = Conn::open(port);
    let (missing, _) = c.ask(&get(None));
    let mut seen = Vec::new();
    for (what, wrong) in &cases {
        let (status, body) = c.ask(&get(Some(wrong)));
        seen.push(status);
        assert_eq!(status, 403, "{what}: {body}");
        assert!(!body.contains("AccessKeyId"), "{what}");
    }
    let (ok, body) = c.ask(&get(Some(&token)));
    assert_eq!(ok, 200, "{body}");

    // Timing, for the record: the comparison is constant-time by construction
    // (`subtle::ConstantTimeEq` in src/serve/ecs.rs); over loopback the network and the
    // scheduler dominate, so these figures are reported, not asserted.
    let time = |c: &mut Conn, auth: &str| {
        let bytes = get(Some(auth));
        let samples: Vec<Duration> = (0..300)
            .map(|_| {
                let started = Instant::now();
                c.ask(&bytes);
                started.elapsed()
            })
            .collect();
        median(samples)
    };
    let (first, near, right) = (change(0), change(last), token.clone());
    let _ = time(&mut c, &first);
    let t_first = time(&mut c, &first);
    let t_last = time(&mut c, &near);
    let t_right = time(&mut c, &right);
    eprintln!(
        "missing Authorization: {missing}; {} wrong tokens ({}): {seen:?}; the right one: {ok}",
        cases.len(),
        cases.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", ")
    );
    eprintln!(
        "median answer time over 300 requests: wrong first character {:.1} µs, wrong last character {:.1} µs, right token {:.1} µs (not asserted: loopback noise dominates; the compare is subtle::ConstantTimeEq)",
        t_first.as_secs_f64() * 1e6,
        t_last.as_secs_f64() * 1e6,
        t_right.as_secs_f64() * 1e6
    );
    assert_eq!(missing, 401);
}
