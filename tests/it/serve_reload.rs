//! `serve --config` reloaded on SIGHUP: each edit of the file takes effect as a whole
//! (roles and listeners come and go, the allowed Host names change), while a client of a
//! role that stays sees no failed request; a burst of SIGHUPs costs no descriptors or
//! memory and ends on the last file written; a file edited into something invalid is
//! refused with one line, and everything goes on as before.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rolesanywhere_helper::pki::KeyType;

use crate::common::helper;
use crate::credential_process::{Setup, free_port};
use crate::serve_config::role_toml;
use crate::serve_daemon::{Daemon, Response, imds_token};
use crate::systemd::signal;

/// The role every version of the file has, unchanged.
const STEADY: &str = "steady";
/// The role that the edits add, move and remove.
const EXTRA: &str = "extra";
/// How long an edit may take to show after its SIGHUP: every role of the new file gets a
/// new session first.
const RELOAD_WITHIN: Duration = Duration::from_secs(20);
const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials/";
/// The Host name allowed at first, and the one an edit allows instead.
const BEFORE: &str = "before.internal";
const AFTER: &str = "after.internal";
/// The message of a refused reload.
const REFUSED: &str = "reload refused, nothing changed";

/// What a version of the config file says, besides the steady role that all have.
#[derive(Clone, Debug)]
struct Shape {
    /// The IMDS port of the extra role (which is also served over ECS), if it is served.
    extra: Option<u16>,
    allowed_hosts: Vec<String>,
}

impl Shape {
    fn new(extra: Option<u16>, allowed_host: &str) -> Self {
        Self {
            extra,
            allowed_hosts: vec![allowed_host.to_owned()],
        }
    }
}

/// A daemon serving the config file that the test rewrites: the steady role on its own
/// IMDS port and on the ECS port, the extra role where the file says.
struct Bench {
    setup: Setup,
    config: PathBuf,
    /// The steady role's IMDS port.
    imds: u16,
    /// The ECS listener's port (`bind`).
    ecs: u16,
    daemon: Daemon,
}

impl Bench {
    fn start(shape: &Shape) -> Self {
        let setup = Setup::new(KeyType::P256, false);
        let config = setup.path("serve.toml");
        let (imds, ecs) = (free_port(), free_port());
        let text = config_text(&setup, imds, ecs, shape);
        write_atomically(&config, &text);
        let mut cmd = helper();
        cmd.args(["serve", "--config"]).arg(&config);
        let daemon = Daemon::start(cmd);
        Self {
            setup,
            config,
            imds,
            ecs,
            daemon,
        }
    }

    fn text(&self, shape: &Shape) -> String {
        config_text(&self.setup, self.imds, self.ecs, shape)
    }

    /// Rewrites the file as `text` and sends SIGHUP.
    fn reload_text(&self, text: &str) {
        write_atomically(&self.config, text);
        signal(self.daemon.pid(), libc::SIGHUP);
    }

    fn token_file(&self, role: &str) -> PathBuf {
        self.setup.path(&format!("{role}.token"))
    }

    /// The ECS token of `role`, as its clients read it.
    fn ecs_token(&self, role: &str) -> Result<String, String> {
        std::fs::read_to_string(self.token_file(role))
            .map_err(|e| format!("{}: {e}", self.token_file(role).display()))
    }

    /// The access key served to `role` over ECS, asked with `host` as the Host.
    fn ecs_key(&self, role: &str, host: &str) -> Result<String, String> {
        let token = self.ecs_token(role)?;
        let reply = get(
            self.ecs,
            host,
            &format!("/ecs/{role}"),
            &[("Authorization", &token)],
        )?;
        access_key(&reply)
    }

    /// Waits until `check` passes; the failure says what was still wrong, with the log.
    fn eventually(&self, what: &str, check: impl Fn() -> Result<(), String>) {
        let deadline = Instant::now() + RELOAD_WITHIN;
        loop {
            match check() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("{what}: {e}\n--- log:\n{}", self.daemon.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The number of lines of the log that contain `text`.
    fn logged(&self, text: &str) -> usize {
        self.daemon
            .log()
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }

    /// Waits until every reload started has finished (one role reloaded each, as the
    /// file has one role then) and no other began for half a second.
    fn settled(&self) {
        self.eventually("the reloads to finish", || {
            let count = || {
                (
                    self.logged("SIGHUP: reloading"),
                    self.logged("role reloaded"),
                )
            };
            let before = count();
            std::thread::sleep(Duration::from_millis(500));
            match count() {
                now if now == before && now.0 == now.1 => Ok(()),
                (started, finished) => Err(format!("{started} started, {finished} finished")),
            }
        });
    }
}

/// The config file for `shape`.
fn config_text(setup: &Setup, imds: u16, ecs: u16, shape: &Shape) -> String {
    let served = |role: &str, port: u16| {
        format!(
            "imds = \"127.0.0.1:{port}\"\necs_token_file = \"{}\"",
            setup.path(&format!("{role}.token")).display()
        )
    };
    let mut text = format!(
        "bind = \"127.0.0.1:{ecs}\"\nallowed_hosts = {:?}\n\n{}",
        shape.allowed_hosts,
        role_toml(setup, STEADY, &served(STEADY, imds)),
    );
    if let Some(port) = shape.extra {
        text.push_str(&role_toml(setup, EXTRA, &served(EXTRA, port)));
    }
    text
}

/// Writes `text` beside `path` and renames it over it, as configuration tools do, so that
/// a reload never reads half a file.
fn write_atomically(path: &std::path::Path, text: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A client connection that stays open between requests, as SDKs keep theirs, and that
/// reports every fault as an error rather than a panic, so that a background client can
/// count them.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(port: u16) -> Result<Self, String> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connect to port {port}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        Ok(Self(BufReader::new(stream)))
    }

    /// Sends one request with `host` as the Host, and reads its answer.
    fn send(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "PUT" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        self.0
            .get_mut()
            .write_all(head.as_bytes())
            .map_err(|e| format!("{method} {path}: cannot send: {e}"))?;
        self.read()
            .map_err(|e| format!("{method} {path}: no answer: {e}"))
    }

    /// One response, its body delimited by `Content-Length`.
    fn read(&mut self) -> Result<Response, String> {
        let mut line = String::new();
        let mut next_line = |line: &mut String| {
            line.clear();
            match self.0.read_line(line) {
                Ok(0) => Err("the connection was closed".to_owned()),
                Ok(_) => Ok(line.trim_end().to_owned()),
                Err(e) => Err(e.to_string()),
            }
        };
        let status_line = next_line(&mut line)?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not a status line: {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let header = next_line(&mut line)?;
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or("no Content-Length")?;
        let mut body = vec![0; length];
        self.0.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(Response {
            status,
            headers,
            body: String::from_utf8(body).map_err(|e| e.to_string())?,
        })
    }
}

/// A GET on a new connection.
fn get(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
    Conn::open(port)?.send("GET", host, path, headers)
}

/// The access key of a 200 answer with credentials.
fn access_key(reply: &Response) -> Result<String, String> {
    if reply.status != 200 {
        return Err(format!("{} {}", reply.status, reply.body));
    }
    serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|json| json["AccessKeyId"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("no credentials in {:?}", reply.body))
}

/// The role served over IMDS at `port`, asked as SDKs do (a token, the role's name, its
/// credentials), and the access key served.
fn imds_role(port: u16) -> Result<(String, String), String> {
    let token = Conn::open(port)?.send(
        "PUT",
        "localhost",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
    )?;
    let header = [("X-aws-ec2-metadata-token", token.body.as_str())];
    let name = get(port, "localhost", CREDENTIALS, &header)?;
    if name.status != 200 {
        return Err(format!("role list: {} {}", name.status, name.body));
    }
    let reply = get(
        port,
        "localhost",
        &format!("{CREDENTIALS}{}", name.body),
        &header,
    )?;
    Ok((name.body, access_key(&reply)?))
}

/// Nothing listens on `port` any more.
fn refuses(port: u16) -> Result<(), String> {
    match TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => Err(format!("port {port} still accepts connections")),
        Err(_) => Ok(()),
    }
}

/// The extra role is served: over IMDS at `port` and over ECS, the same credentials, not
/// the steady role's.
fn extra_served_at(bench: &Bench, port: u16) -> Result<(), String> {
    let (name, imds_key) = imds_role(port)?;
    if name != EXTRA {
        return Err(format!("port {port} serves {name:?}"));
    }
    let ecs_key = bench.ecs_key(EXTRA, "localhost")?;
    let steady_key = bench.ecs_key(STEADY, "localhost")?;
    match (imds_key == ecs_key, imds_key == steady_key) {
        (true, false) => Ok(()),
        _ => Err(format!(
            "IMDS {imds_key}, ECS {ecs_key}, steady role {steady_key}"
        )),
    }
}

/// The answer to a request for the steady role's ECS credentials with `host` as the Host
/// has `status`.
fn host_answered(bench: &Bench, host: &str, status: u16) -> Result<(), String> {
    let token = bench.ecs_token(STEADY)?;
    let reply = get(
        bench.ecs,
        host,
        &format!("/ecs/{STEADY}"),
        &[("Authorization", &token)],
    )?;
    if reply.status == status {
        Ok(())
    } else {
        Err(format!("Host {host}: {} {}", reply.status, reply.body))
    }
}

/// What a client of the steady role saw.
#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    failures: usize,
    /// The first failures, for the report.
    first: Vec<String>,
}

impl Tally {
    fn count(&mut self, what: &str, result: Result<String, String>) {
        self.requests += 1;
        if let Err(e) = result {
            self.failures += 1;
            if self.first.len() < 5 {
                self.first.push(format!("{what}: {e}"));
            }
        }
    }
}

/// A client of the steady role, in the background until stopped: one IMDS token, then
/// over and over its credentials on a connection kept open, on a new connection, and
/// over ECS with the token read once from its file.
struct Hammer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Tally>,
}

impl Hammer {
    fn start(bench: &Bench) -> Self {
        let (imds, ecs) = (bench.imds, bench.ecs);
        let imds_token = imds_token(imds);
        let ecs_token = bench.ecs_token(STEADY).expect("the steady role's token");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let path = format!("{CREDENTIALS}{STEADY}");
            let imds_header = [("X-aws-ec2-metadata-token", imds_token.as_str())];
            let ecs_header = [("Authorization", ecs_token.as_str())];
            let mut tally = Tally::default();
            let mut kept: Option<Conn> = None;
            while !stopped.load(Ordering::SeqCst) {
                // A failure on the kept connection is counted, and the next round opens
                // a new one.
                let result = match kept.take().map_or_else(|| Conn::open(imds), Ok) {
                    Ok(mut conn) => {
                        let result = conn.send("GET", "localhost", &path, &imds_header);
                        if result.is_ok() {
                            kept = Some(conn);
                        }
                        result
                    }
                    Err(e) => Err(e),
                };
                tally.count("IMDS, kept connection", result.and_then(|r| access_key(&r)));
                let result = get(imds, "localhost", &path, &imds_header);
                tally.count("IMDS, new connection", result.and_then(|r| access_key(&r)));
                let result = get(ecs, "localhost", &format!("/ecs/{STEADY}"), &ecs_header);
                tally.count("ECS", result.and_then(|r| access_key(&r)));
                std::thread::sleep(Duration::from_millis(5));
            }
            tally
        });
        Self { stop, thread }
    }

    /// Stops the client; what it saw.
    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the client thread")
    }
}

/// Asserts that a client saw only answers, and enough of them to mean something.
fn no_failures(tally: &Tally, at_least: usize) {
    assert_eq!(
        tally.failures, 0,
        "{} of {} requests failed, first: {:#?}",
        tally.failures, tally.requests, tally.first
    );
    assert!(
        tally.requests >= at_least,
        "only {} requests were made",
        tally.requests
    );
}

/// A check that an edit took effect.
type Check = fn(&Bench, &Ports) -> Result<(), String>;

/// The ports the extra role moves between.
struct Ports {
    first: u16,
    second: u16,
}

#[test]
fn each_edit_takes_effect_and_a_steady_role_never_fails() {
    let ports = Ports {
        first: free_port(),
        second: free_port(),
    };
    let bench = Bench::start(&Shape::new(None, BEFORE));
    host_answered(&bench, BEFORE, 200).unwrap();
    let hammer = Hammer::start(&bench);

    let steps: [(&str, Shape, Check); 4] = [
        (
            "a role added",
            Shape::new(Some(ports.first), BEFORE),
            |b, p| extra_served_at(b, p.first),
        ),
        (
            "its listener moved",
            Shape::new(Some(ports.second), BEFORE),
            |b, p| {
                refuses(p.first)?;
                extra_served_at(b, p.second)
            },
        ),
        (
            "allowed_hosts changed",
            Shape::new(Some(ports.second), AFTER),
            |b, _| {
                host_answered(b, AFTER, 200)?;
                host_answered(b, BEFORE, 403)
            },
        ),
        ("the role removed", Shape::new(None, AFTER), |b, p| {
            let gone = get(b.ecs, "localhost", &format!("/ecs/{EXTRA}"), &[])?;
            if gone.status != 404 {
                return Err(format!("/ecs/{EXTRA}: {} {}", gone.status, gone.body));
            }
            if b.token_file(EXTRA).exists() {
                return Err(format!("{} is still there", b.token_file(EXTRA).display()));
            }
            refuses(p.second)
        }),
    ];
    let mut extra_at = None;
    for (what, shape, took_effect) in steps {
        // Until the SIGHUP, the daemon serves what it served: the check tells the two apart.
        write_atomically(&bench.config, &bench.text(&shape));
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            took_effect(&bench, &ports).is_err(),
            "{what}: in effect before the SIGHUP"
        );
        // A client connected to the extra role's listener, idle across the reload.
        let idle = extra_at.map(|port| Conn::open(port).unwrap());
        signal(bench.daemon.pid(), libc::SIGHUP);
        bench.eventually(what, || took_effect(&bench, &ports));
        // Once that listener is gone, what is still connected to it gets nothing more.
        if let Some(mut idle) = idle.filter(|_| shape.extra != extra_at) {
            let reply = idle.send("GET", "localhost", CREDENTIALS, &[]).unwrap();
            assert_eq!(reply.status, 404, "{what}: {reply:?}");
        }
        extra_at = shape.extra;
    }
    let tally = hammer.finish();
    no_failures(&tally, 100);
    // Every step applied as a whole: nothing was kept back.
    assert_eq!(bench.logged("reload: "), 0, "{}", bench.daemon.log());
    assert_eq!(bench.logged("role added"), 1, "{}", bench.daemon.log());
    assert_eq!(bench.logged("role removed"), 1, "{}", bench.daemon.log());
}

/// The daemon's open descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the daemon's /proc entry")
        .count()
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the daemon's /proc entry")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// How long each CreateSession takes during the burst of SIGHUPs, so that every reload
/// takes at least this long and most SIGHUPs come while one is under way.
const SLOW_SESSION: Duration = Duration::from_millis(200);

#[test]
fn a_burst_of_sighups_fails_nothing_leaks_nothing_and_ends_on_the_last_file() {
    let host = |i: usize| format!("host-{i}.internal");
    let bench = Bench::start(&Shape::new(None, &host(0)));
    let pid = bench.daemon.pid();
    // One reload first, so that what the first reload sets up for good is in the baseline.
    bench.reload_text(&bench.text(&Shape::new(None, &host(1))));
    bench.eventually("the first reload", || host_answered(&bench, &host(1), 200));
    bench.settled();
    let (fds, rss) = (open_fds(pid), rss_kib(pid));
    let reloads_before = bench.logged("SIGHUP: reloading");

    bench.setup.emulator.faults().delay(SLOW_SESSION);
    let hammer = Hammer::start(&bench);
    const SIGHUPS: usize = 100;
    let started = Instant::now();
    for i in 2..SIGHUPS + 2 {
        bench.reload_text(&bench.text(&Shape::new(None, &host(i))));
        std::thread::sleep(Duration::from_millis(15));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the SIGHUPs took {:?}",
        started.elapsed()
    );
    // The last SIGHUP came during a reload that read an older file: only the one more
    // reload it asked for can apply the last file.
    let last = host(SIGHUPS + 1);
    bench.eventually("the last file", || {
        host_answered(&bench, &last, 200)?;
        host_answered(&bench, &host(SIGHUPS), 403)
    });
    bench.settled();
    let tally = hammer.finish();
    no_failures(&tally, 100);
    let reloads = bench.logged("SIGHUP: reloading") - reloads_before;
    assert!(
        (2..=SIGHUPS / 4).contains(&reloads),
        "{reloads} reloads for {SIGHUPS} SIGHUPs: those during a reload make one more"
    );

    // The connections of replaced sessions close as their refreshers stop.
    bench.eventually("the descriptors to be back", || match open_fds(pid) {
        now if now <= fds + 5 => Ok(()),
        now => Err(format!("{now} open descriptors, {fds} before the SIGHUPs")),
    });
    let now = rss_kib(pid);
    assert!(
        now <= rss + rss / 5,
        "resident memory grew from {rss} KiB to {now} KiB"
    );
    assert!(imds_role(bench.imds).is_ok_and(|(name, _)| name == STEADY));
}

#[test]
fn an_invalid_edit_is_refused_with_one_line_and_nothing_changes() {
    let extra_port = free_port();
    let bench = Bench::start(&Shape::new(Some(extra_port), BEFORE));
    let valid = bench.text(&Shape::new(Some(extra_port), BEFORE));
    let imds_token = imds_token(bench.imds);
    let ecs_tokens = [STEADY, EXTRA].map(|role| bench.ecs_token(role).unwrap());
    let sessions = bench.setup.emulator.issued_sessions();
    // A port that another process holds.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let file = bench.config.display().to_string();

    // (edit, the file's new text, or none to remove it; what the refusal says)
    let cases: [(&str, Option<String>, Vec<String>); 5] = [
        (
            "an unknown key",
            Some(format!("{valid}colour = \"blue\"\n")),
            vec![file.clone(), "unknown field `colour`".into()],
        ),
        (
            "a role defined twice",
            Some(format!(
                "{valid}{}",
                role_toml(&bench.setup, STEADY, "imds = \"127.0.0.1:1\"")
            )),
            vec![file.clone(), "\"steady\" is used twice".into()],
        ),
        (
            "TOML that does not parse",
            Some(format!("{valid}[[role]\n")),
            vec![file.clone()],
        ),
        (
            "the file removed",
            None,
            vec![file.clone(), "cannot be read".into()],
        ),
        (
            "a port another process holds",
            Some(bench.text(&Shape::new(Some(held), BEFORE))),
            vec![format!("cannot listen on 127.0.0.1:{held}")],
        ),
    ];
    for (refusals, (edit, text, says)) in cases.into_iter().enumerate() {
        match &text {
            Some(text) => write_atomically(&bench.config, text),
            None => std::fs::remove_file(&bench.config).unwrap(),
        }
        signal(bench.daemon.pid(), libc::SIGHUP);
        bench.eventually(edit, || match bench.logged(REFUSED) {
            n if n > refusals => Ok(()),
            n => Err(format!("{n} refusals")),
        });
        let log = bench.daemon.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(REFUSED)).collect();
        assert_eq!(lines.len(), refusals + 1, "{edit}: one line each:\n{log}");
        let line = lines[refusals];
        for part in &says {
            assert!(
                line.contains(part.as_str()),
                "{edit}: no {part:?} in {line}"
            );
        }

        // Both roles answer as before, with the same tokens; no session was asked for.
        let credentials = get(
            bench.imds,
            "localhost",
            &format!("{CREDENTIALS}{STEADY}"),
            &[("X-aws-ec2-metadata-token", &imds_token)],
        );
        assert!(credentials.and_then(|r| access_key(&r)).is_ok(), "{edit}");
        assert_eq!(
            imds_role(extra_port).map(|(name, _)| name),
            Ok(EXTRA.to_owned()),
            "{edit}"
        );
        for (role, token) in [STEADY, EXTRA].iter().zip(&ecs_tokens) {
            assert_eq!(bench.ecs_token(role).as_ref(), Ok(token), "{edit}: {role}");
            assert!(bench.ecs_key(role, BEFORE).is_ok(), "{edit}: {role}");
        }
        assert_eq!(bench.setup.emulator.issued_sessions(), sessions, "{edit}");
    }
    assert_eq!(bench.logged("role reloaded"), 0, "{}", bench.daemon.log());

    // A valid file again is applied.
    bench.reload_text(&valid);
    bench.eventually("the valid file", || match bench.logged("role reloaded") {
        2 => Ok(()),
        n => Err(format!("{n} roles reloaded")),
    });
    drop(holder);
}

#[test]
fn a_pacing_edit_says_it_takes_effect_at_the_next_restart() {
    let shape = Shape::new(None, BEFORE);
    let bench = Bench::start(&shape);
    bench.reload_text(&format!(
        "pacing_rate = 3\nfleet_slot = \"1/2\"\n{}",
        bench.text(&shape)
    ));
    bench.settled();
    assert_eq!(
        bench.logged("take effect at the next restart; the running ones stay"),
        1,
        "{}",
        bench.daemon.log()
    );
    // The rest of the file applies: the role was reloaded.
    assert_eq!(bench.logged("role reloaded"), 1);
}
