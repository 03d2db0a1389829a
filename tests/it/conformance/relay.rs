//! A recording HTTP/1.1 relay in front of a plain-HTTP emulator: it keeps every request a
//! client sent, byte for byte apart from an optional path prefix it strips, and passes the
//! emulator's answers back. The emulator logs what it verified (status, query, body, signed
//! header names); the relay adds what it does not keep: the method, the path as sent, every
//! header value and the raw body.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the client sent it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: String,
    /// The request target as sent (path and query), before any prefix was stripped.
    pub target: String,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The query part of the target (empty without one).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

pub struct Relay {
    addr: SocketAddr,
    captured: Arc<Mutex<Vec<Captured>>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Listens on a free loopback port and relays to `upstream`, removing `strip_prefix`
    /// from the front of each request path when it is there.
    pub fn start(upstream: SocketAddr, strip_prefix: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay binds");
        let addr = listener.local_addr().unwrap();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, done) = (captured.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let log = log.clone();
                std::thread::spawn(move || relay(client, upstream, strip_prefix, &log));
            }
        });
        Self {
            addr,
            captured,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received since the last call.
    pub fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.captured.lock().unwrap())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and ends.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Relays the requests of one client connection, each over its own upstream connection.
fn relay(client: TcpStream, upstream: SocketAddr, strip: &str, log: &Mutex<Vec<Captured>>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(client.try_clone().expect("clone the client socket"));
    let mut client = client;
    while let Some((head, body)) = read_message(&mut reader) {
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let mut parts = request_line.splitn(3, ' ');
        let (method, target, version) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        log.lock().unwrap().push(Captured {
            method: method.clone(),
            target: target.clone(),
            headers,
            body: body.clone(),
        });
        let forwarded = match target.strip_prefix(strip) {
            Some(rest) if !strip.is_empty() && rest.starts_with('/') => rest,
            _ => &target,
        };
        let rest_of_head = &head[request_line.len()..];
        let Ok(mut up) = TcpStream::connect(upstream) else {
            return;
        };
        let _ = up.set_read_timeout(Some(Duration::from_secs(60)));
        let sent = up
            .write_all(format!("{method} {forwarded} {version}").as_bytes())
            .and_then(|()| up.write_all(rest_of_head))
            .and_then(|()| up.write_all(&body));
        if sent.is_err() {
            return;
        }
        let Some((answer_head, answer_body)) = read_message(&mut BufReader::new(up)) else {
            return;
        };
        let back = client
            .write_all(&answer_head)
            .and_then(|()| client.write_all(&answer_body));
        if back.is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 message with a `Content-Length` body (or none): its head up to and
/// including the blank line, and its body. `None` at the end of the stream.
fn read_message(reader: &mut impl BufRead) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(
        !text.contains("transfer-encoding: chunked"),
        "the relay reads Content-Length bodies only:\n{text}"
    );
    let length = text
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("content-length:"))
        .find_map(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}
