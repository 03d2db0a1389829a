//! Hostile endpoints: a CreateSession or STS endpoint (or something posing as one) that
//! answers without end. Neither the CreateSession client nor the STS client of a role chain
//! reads more than 256 KiB of an answer: a success that long is refused in one line, an error
//! that long is reported from its start, and the rest is never read.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rolesanywhere_helper::pki::KeyType;

use crate::common;
use crate::credential_process::{Setup, failure};

/// What the endless endpoint offers per answer: far more than any client should take.
const OFFERED: usize = 64 * 1024 * 1024;

/// A plain-HTTP endpoint on a free port that answers every request with `status` and a
/// JSON- and XML-looking body of [`OFFERED`] bytes without a length, then closes. Its URL,
/// and how many body bytes it managed to send in all.
fn endless(status: u16) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n<a>{{\"credentialSet\":[\""
            );
            if stream.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..OFFERED / chunk.len() {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
                counter.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
    });
    (url, sent)
}

fn check_cut_off(sent: &AtomicUsize) {
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent < OFFERED / 4,
        "the client read {sent} bytes of an endless answer"
    );
}

#[test]
fn an_endless_createsession_answer_is_cut_off() {
    let setup = Setup::new(KeyType::P256, false);
    let (url, sent) = endless(201);
    let mut cmd = setup.bare_leaf_command();
    cmd.args(["--endpoint", &url]).env("AWS_MAX_ATTEMPTS", "1");
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.contains("CreateSession answered 201 but its body is longer than 256 KiB"),
        "{line}"
    );
    check_cut_off(&sent);

    // An error answer without end says what its start says, and is retried as its status
    // says (a 503 is the service's trouble).
    let (url, sent) = endless(503);
    let mut cmd = setup.bare_leaf_command();
    cmd.args(["--endpoint", &url]).env("AWS_MAX_ATTEMPTS", "2");
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.contains("503") && line.contains("after 2 attempts"),
        "{line}"
    );
    check_cut_off(&sent);
}

#[test]
fn an_endless_sts_answer_is_cut_off() {
    let setup = Setup::new(KeyType::P256, false);
    let (url, sent) = endless(200);
    let mut cmd = setup.leaf_command();
    cmd.args(["--sts-endpoint", &url])
        .args([
            "--assume-role-arn",
            "arn:aws:iam::444455556666:role/workload",
        ])
        .env("AWS_MAX_ATTEMPTS", "1");
    let line = failure(&common::run(&mut cmd));
    assert!(
        line.contains("STS answered 200 but its body is longer than 256 KiB"),
        "{line}"
    );
    check_cut_off(&sent);
}
