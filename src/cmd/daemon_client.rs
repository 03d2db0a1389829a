//! `credential-process --daemon-socket`: one request to a running `serve` over its daemon
//! socket (the protocol is in [`crate::daemon_wire`]). A blocking Unix stream and nothing
//! else: no async runtime, no TLS, no identity, so that a call costs a process start and
//! one round trip.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::config::DaemonClient;
use crate::daemon_wire::{self, Answer, DaemonError};

/// How long the answer may take. A daemon answers at once when it holds credentials; one
/// started by socket activation answers after its first CreateSession (within 5 s), or
/// with an error.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// The daemon's `credential_process` JSON, byte for byte.
pub fn ask(client: &DaemonClient) -> Result<Vec<u8>, DaemonError> {
    let path = &client.socket;
    let broken = |problem: String| DaemonError::Broken {
        path: path.clone(),
        problem,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| DaemonError::NotThere {
        path: path.clone(),
        source,
    })?;
    stream
        .set_read_timeout(Some(ANSWER_WITHIN))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_WITHIN)))
        .map_err(|e| broken(e.to_string()))?;
    // A refused peer gets its error line at once and the connection closes: a failed
    // write is then no reason to miss that line.
    let sent = stream.write_all(&daemon_wire::request(client.role.as_deref()));
    let mut answer = Vec::with_capacity(4096);
    let read = stream
        .take(daemon_wire::MAX_ANSWER as u64 + 1)
        .read_to_end(&mut answer);
    if let Err(e) = read {
        // A refused peer's request is never read, and the kernel reports the close of a
        // socket with unread data as a reset, after the error line it delivered.
        if let Ok(Answer::Error(message)) = daemon_wire::parse_answer(&answer) {
            return Err(DaemonError::Answered {
                path: path.clone(),
                message: message.to_owned(),
            });
        }
        let problem = if e.kind() == std::io::ErrorKind::WouldBlock {
            format!("no answer within {} s", ANSWER_WITHIN.as_secs())
        } else {
            format!("the answer broke off: {e}")
        };
        return Err(broken(problem));
    }
    if answer.len() > daemon_wire::MAX_ANSWER {
        return Err(broken("the answer is too long".into()));
    }
    match daemon_wire::parse_answer(&answer) {
        Ok(Answer::Credentials(_)) => Ok(answer),
        Ok(Answer::Error(message)) => Err(DaemonError::Answered {
            path: path.clone(),
            message: message.to_owned(),
        }),
        Err(problem) => match sent {
            Err(e) => Err(broken(format!("cannot send the request: {e}"))),
            Ok(()) => Err(broken(problem.to_owned())),
        },
    }
}
