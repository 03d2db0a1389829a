//! A `serve` process under test: started with a free port, ready once it has printed its
//! `serving credentials for N role(s)` line (which it does only after every role's first
//! credentials arrived, after the `export ...` lines), killed when dropped. Its stderr is kept for assertions.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How long a daemon may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

pub struct Daemon {
    child: Child,
    /// The port of the first listener.
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `cmd` (a `serve` command line; `--port 0` is added unless `--port` or
    /// `--config` is already there) and waits until it is ready.
    pub fn start(mut cmd: Command) -> Self {
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if !args.iter().any(|a| a == "--port" || a == "--config") {
            cmd.args(["--port", "0"]);
        }
        Self::start_exact(cmd).unwrap_or_else(|log| panic!("serve did not start:\n{log}"))
    }

    /// Starts `cmd` as it is; the daemon, or everything it printed before it exited or
    /// timed out.
    pub fn start_exact(cmd: Command) -> Result<Self, String> {
        Self::start_ready(cmd, |line| line.starts_with("serving credentials for "))
    }

    /// Starts `cmd` as it is and waits until it has printed its port and then a line for
    /// which `ready` holds (another program's readiness line: the official helper prints
    /// none after its port).
    pub fn start_ready(mut cmd: Command, ready: fn(&str) -> bool) -> Result<Self, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut port = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Local server started on port: ").nth(1) {
                    port = port.or(rest.trim().parse::<u16>().ok());
                }
                let is_ready = ready(&line);
                sink.lock().unwrap().push(line);
                if is_ready && let Some(port) = port {
                    let _ = tx.send(port);
                }
            }
        });
        match rx.recv_timeout(READY_WITHIN) {
            Ok(port) => Ok(Self { child, port, log }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                // Let the reader drain what is left.
                std::thread::sleep(Duration::from_millis(100));
                Err(log.lock().unwrap().join("\n"))
            }
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself.
    pub fn wait(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`, written by hand so that tests control
/// every byte (methods, odd headers) and see the raw answer.
pub fn http(
    addr: impl std::net::ToSocketAddrs,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let stream = std::net::TcpStream::connect(addr).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(stream, method, path, headers)
}

/// [`http`] over a Unix socket.
pub fn http_unix(
    path: &std::path::Path,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Response {
    let stream = std::os::unix::net::UnixStream::connect(path).expect("connect to serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(stream, method, target, headers)
}

/// Writes one request on `stream` and reads the whole response.
pub fn exchange(
    mut stream: impl std::io::Read + std::io::Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    stream
        .write_all(request_head(method, path, headers).as_bytes())
        .unwrap();
    read_response(stream)
}

/// The bytes of a request with no body; `Host: localhost` unless `headers` has a Host.
pub fn request_head(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let host = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"));
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !host {
        request.push_str("Host: localhost\r\n");
    }
    request.push_str("Connection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "PUT" || method == "POST" {
        request.push_str("Content-Length: 0\r\n");
    }
    request.push_str("\r\n");
    request
}

/// Reads a response to the end of the stream.
pub fn read_response(mut stream: impl std::io::Read) -> Response {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// An IMDSv2 session token from the daemon at `port`.
pub fn imds_token(port: u16) -> String {
    let reply = http(
        ("127.0.0.1", port),
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body
}

/// GET of the role's IMDS credentials with a fresh token.
pub fn imds_credentials(port: u16, role: &str) -> Response {
    let token = imds_token(port);
    http(
        ("127.0.0.1", port),
        "GET",
        &format!("/latest/meta-data/iam/security-credentials/{role}"),
        &[("X-aws-ec2-metadata-token", &token)],
    )
}
