//! The two systemd protocols the daemon speaks, without libsystemd: readiness and watchdog
//! notifications (`sd_notify`: datagrams to `$NOTIFY_SOCKET`) and socket activation
//! (`sd_listen_fds`: descriptors from 3 on, described by `$LISTEN_PID`, `$LISTEN_FDS` and
//! `$LISTEN_FDNAMES`). Both are no-ops when the variables are absent, so the same binary
//! runs by hand, under systemd, or under `systemd-socket-activate`.

use std::io;
use std::os::fd::{FromRawFd as _, RawFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`, several joined by
/// newlines) to the service manager. `Ok(false)` when not run under one.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(target) => notify_to(&target, state).map(|()| true),
        None => Ok(false),
    }
}

fn notify_to(target: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    let address = match bytes.strip_prefix(b"@") {
        // A Linux abstract-namespace socket.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            std::os::unix::net::SocketAddr::from_abstract_name(name)?
        }
        None => std::os::unix::net::SocketAddr::from_pathname(target)?,
    };
    socket.send_to_addr(state.as_bytes(), &address)?;
    Ok(())
}

/// The watchdog interval systemd expects pings within, if it set one for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The file of a systemd credential (`LoadCredential=NAME:...` in the unit), if the
/// service manager passed one by that name.
pub fn credential(name: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = std::path::Path::new(&dir).join(name);
    path.is_file().then_some(path)
}

/// A listening socket passed by the service manager.
#[derive(Debug)]
pub struct Activated {
    /// `FileDescriptorName=` of the socket unit (the unit's name if not set).
    pub name: String,
    pub listener: ActivatedListener,
}

#[derive(Debug)]
pub enum ActivatedListener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// The first descriptor passed by socket activation.
const FIRST_FD: RawFd = 3;

/// Takes the sockets passed by socket activation (none when not activated). Each must be
/// a listening TCP or Unix stream socket.
pub fn activated() -> io::Result<Vec<Activated>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !for_us {
        return Ok(Vec::new());
    }
    let count: RawFd = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .unwrap_or_default()
        .split(':')
        .map(str::to_owned)
        .collect();
    let mut sockets = Vec::new();
    for i in 0..count {
        let fd = FIRST_FD + i;
        // SAFETY: the service manager passed descriptors FIRST_FD.. FIRST_FD+count-1 to
        // this process (LISTEN_PID is ours), and nothing else in it owns them.
        let socket = unsafe { socket2::Socket::from_raw_fd(fd) };
        socket.set_cloexec(true)?;
        if socket.r#type()? != socket2::Type::STREAM || !socket.is_listener()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("passed descriptor {fd} is not a listening stream socket"),
            ));
        }
        socket.set_nonblocking(true)?;
        let name = names
            .get(i as usize)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("fd{fd}"));
        let listener = if socket.local_addr()?.is_unix() {
            ActivatedListener::Unix(socket.into())
        } else {
            ActivatedListener::Tcp(socket.into())
        };
        sockets.push(Activated { name, listener });
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
    }
}
