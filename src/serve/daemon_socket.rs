//! The daemon socket: `credential-process --daemon-socket` asks the running daemon for a
//! role's credentials over a Unix socket, so a host makes one CreateSession per refresh
//! instead of one per AWS command (the protocol is in [`crate::daemon_wire`]).
//!
//! Who may ask is decided by the kernel's word on the peer (`SO_PEERCRED`, and
//! `SO_PEERGROUPS` for its supplementary groups) against the socket's allow list, before
//! the peer has sent anything; a refused peer gets one error line and the daemon logs its
//! uid. The socket file is created under a temporary name, given its mode and group, and
//! renamed into place, so it is never reachable with looser permissions.
//!
//! Connections share the HTTP listeners' bound (`--max-connections`) and limits: the
//! request must arrive within the header timeout, the answer may wait for its reader no
//! longer than the stalled-write limit, and a stopping daemon closes connections that
//! have not sent their request.

use std::io;
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::http::{Connections, LIMITS};
use super::metrics::{Metrics, SocketOutcome};
use super::role::ServedRole;
use super::site::Swappable;
use crate::config::{DaemonSocketPlan, PeerAllow, UnixEndpoint};
use crate::daemon_wire::{self, MAX_REQUEST};
use crate::error::{Error, Result};
use crate::systemd::{Activated, ActivatedListener};

/// The served role of each index of the plan's roles (`None`: not served).
pub(super) type RoleAt<'a> = &'a dyn Fn(usize) -> Option<Arc<ServedRole>>;

/// How long to wait after a failed accept (out of descriptors, most often).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Who may ask a socket, and for which roles; a reload swaps it.
pub(super) struct Access {
    endpoint: UnixEndpoint,
    allow: PeerAllow,
    roles: Vec<Arc<ServedRole>>,
}

/// A daemon socket: its listener until it accepts, then its accept task.
pub(super) struct LiveDaemonSocket {
    pub endpoint: UnixEndpoint,
    access: Option<Arc<Swappable<Access>>>,
    listener: Option<UnixListener>,
    task: Option<JoinHandle<()>>,
    /// The socket file this daemon made, with its device and inode, removed on close if
    /// it is still that file.
    file: Option<(PathBuf, (u64, u64))>,
}

/// Opens the socket of `plan`: creates the socket file, or takes the passed socket of
/// that name out of `spare`.
pub(super) fn open(
    plan: &DaemonSocketPlan,
    spare: &mut Vec<Activated>,
) -> Result<LiveDaemonSocket> {
    let endpoint = plan.endpoint.clone();
    let (listener, file) = match &plan.endpoint {
        UnixEndpoint::Path(path) => {
            let (listener, id) = bind(path, plan.mode, plan.group).map_err(Error::system(
                format!("cannot listen on the daemon socket {}", path.display()),
            ))?;
            (listener, Some((path.clone(), id)))
        }
        UnixEndpoint::Activated(name) => {
            let taken = spare
                .iter()
                .position(|a| &a.name == name)
                .map(|i| spare.swap_remove(i));
            let listener = match taken.map(|a| a.listener) {
                Some(ActivatedListener::Unix(l)) => UnixListener::from_std(l),
                Some(ActivatedListener::Tcp(_)) => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a TCP socket; a daemon socket is a Unix socket (ListenStream=/PATH)",
                )),
                None => Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "it is already used by another listener, or was not passed",
                )),
            };
            let listener = listener.map_err(Error::system(format!("the socket {endpoint}")))?;
            (listener, None)
        }
    };
    Ok(LiveDaemonSocket {
        endpoint,
        access: None,
        listener: Some(listener),
        task: None,
        file,
    })
}

/// Creates the socket file at `path` with `mode` and `group`: bound under a temporary
/// name beside it and renamed into place once its permissions are right. An old socket
/// file there (left by a daemon that did not stop cleanly) is replaced; anything else is
/// not touched.
fn bind(path: &Path, mode: u32, group: Option<u32>) -> io::Result<(UnixListener, (u64, u64))> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "something other than a socket is there; not replacing it",
            ));
        }
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.new", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let _ = std::fs::remove_file(&temporary);
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    socket.bind(&socket2::SockAddr::unix(&temporary)?)?;
    let placed = (|| {
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(&temporary, None, Some(gid))?;
        }
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        std::fs::rename(&temporary, path)?;
        std::fs::symlink_metadata(path).map(|m| (m.dev(), m.ino()))
    })();
    match placed {
        Ok(id) => Ok((
            UnixListener::from_std(std::os::unix::net::UnixListener::from(socket))?,
            id,
        )),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(e)
        }
    }
}

/// The first step of a reload: creates the socket files that `plans` adds to `live`
/// (an error refuses the reload, and nothing has changed), and checks that each passed
/// socket it adds is there to take, which [`take_passed`] does once nothing else can fail.
pub(super) fn open_new_files(
    plans: &[DaemonSocketPlan],
    live: &[LiveDaemonSocket],
    spare: &[Activated],
) -> Result<Vec<LiveDaemonSocket>> {
    let mut opened: Vec<LiveDaemonSocket> = Vec::new();
    for plan in plans {
        if live.iter().any(|l| l.endpoint == plan.endpoint) {
            continue;
        }
        let result = match &plan.endpoint {
            UnixEndpoint::Path(_) => open(plan, &mut Vec::new()).map(|socket| opened.push(socket)),
            UnixEndpoint::Activated(name) if spare.iter().any(|a| &a.name == name) => Ok(()),
            UnixEndpoint::Activated(_) => Err(Error::System {
                what: format!("the socket {}", plan.endpoint),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "no unused socket of that name was passed by socket activation",
                ),
            }),
        };
        if let Err(e) = result {
            for mut socket in opened {
                socket.close();
            }
            return Err(e);
        }
    }
    Ok(opened)
}

/// The last opening step of a reload: takes the passed sockets that `plans` adds.
pub(super) fn take_passed(
    plans: &[DaemonSocketPlan],
    live: &[LiveDaemonSocket],
    spare: &mut Vec<Activated>,
    opened: &mut Vec<LiveDaemonSocket>,
    problems: &mut Vec<String>,
) {
    for plan in plans {
        if !matches!(plan.endpoint, UnixEndpoint::Activated(_))
            || live.iter().any(|l| l.endpoint == plan.endpoint)
        {
            continue;
        }
        match open(plan, spare) {
            Ok(socket) => opened.push(socket),
            Err(e) => problems.push(e.to_string()),
        }
    }
}

/// The daemon sockets after a reload: those of `plans`, kept from `old` (with the new
/// mode and group) or taken from `opened`, each with its new allow list and roles, and
/// accepting if the daemon is; the others closed.
pub(super) fn reconcile(
    mut old: Vec<LiveDaemonSocket>,
    mut opened: Vec<LiveDaemonSocket>,
    plans: &[DaemonSocketPlan],
    roles: RoleAt<'_>,
    accepting: Option<(&Connections, &Arc<Metrics>)>,
    problems: &mut Vec<String>,
) -> Vec<LiveDaemonSocket> {
    let mut sockets = Vec::with_capacity(plans.len());
    for plan in plans {
        let take = |list: &mut Vec<LiveDaemonSocket>| {
            list.iter()
                .position(|l| l.endpoint == plan.endpoint)
                .map(|i| list.swap_remove(i))
        };
        let mut live = match take(&mut old) {
            Some(kept) => {
                if let Err(e) = kept.refit(plan) {
                    problems.push(format!(
                        "daemon socket {}: cannot set its mode or group: {e}",
                        plan.endpoint
                    ));
                }
                kept
            }
            None => match take(&mut opened) {
                Some(new) => {
                    tracing::info!(socket = %plan.endpoint, "daemon socket added");
                    new
                }
                None => continue,
            },
        };
        live.set_access(plan, roles);
        if let Some((connections, metrics)) = accepting {
            live.accept(connections, metrics);
        }
        sockets.push(live);
    }
    for mut gone in old.into_iter().chain(opened) {
        tracing::info!(socket = %gone.endpoint, "daemon socket removed");
        gone.close();
    }
    sockets
}

impl LiveDaemonSocket {
    /// Gives the socket the allow list and roles of `plan`.
    pub(super) fn set_access(&mut self, plan: &DaemonSocketPlan, roles: RoleAt<'_>) {
        let access = Access {
            endpoint: plan.endpoint.clone(),
            allow: plan.allow.clone(),
            roles: plan.roles.iter().filter_map(|&i| roles(i)).collect(),
        };
        match &self.access {
            Some(current) => current.replace(access),
            None => self.access = Some(Arc::new(Swappable::new(access))),
        }
    }

    /// Sets a kept socket file's mode and group to those of `plan` (no group: the
    /// daemon's own again).
    pub(super) fn refit(&self, plan: &DaemonSocketPlan) -> io::Result<()> {
        if let Some((path, _)) = &self.file {
            // SAFETY: getegid has no preconditions and cannot fail.
            let gid = plan.group.unwrap_or_else(|| unsafe { libc::getegid() });
            std::os::unix::fs::chown(path, None, Some(gid))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(plan.mode))?;
        }
        Ok(())
    }

    /// Starts accepting, if not already.
    pub(super) fn accept(&mut self, connections: &Connections, metrics: &Arc<Metrics>) {
        let Some(access) = self.access.clone() else {
            return;
        };
        if let Some(listener) = self.listener.take() {
            self.task = Some(tokio::spawn(accept_loop(
                listener,
                access,
                connections.clone(),
                metrics.clone(),
            )));
        }
    }

    /// Stops accepting and removes the socket file if it is still the one made here.
    pub(super) fn close(&mut self) {
        self.listener = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some((path, id)) = self.file.take()
            && std::fs::symlink_metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == id)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for LiveDaemonSocket {
    /// A daemon that fails to start after making its socket files leaves none behind.
    fn drop(&mut self) {
        self.close();
    }
}

/// Accepts connections until the task is aborted, within the daemon's shared bound.
async fn accept_loop(
    listener: UnixListener,
    access: Arc<Swappable<Access>>,
    connections: Connections,
    metrics: Arc<Metrics>,
) {
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let Ok(permit) = connections.limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let access = access.current();
                let stopping = connections.stopping.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    if let Some(outcome) = connection(stream, &access, stopping).await {
                        metrics.record_socket(outcome);
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "daemon socket: accept failed; retrying every 100 ms");
                    warned = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// One request: the peer is checked, its line read, the answer written, the connection
/// closed. How it ended, unless the peer went away or sent nothing in time.
async fn connection(
    mut stream: UnixStream,
    access: &Access,
    mut stopping: watch::Receiver<bool>,
) -> Option<SocketOutcome> {
    let Ok(peer) = stream.peer_cred() else {
        return None;
    };
    let (uid, gid) = (peer.uid(), peer.gid());
    let fd = stream.as_raw_fd();
    if !access.allow.permits(uid, gid, || peer_groups(fd)) {
        tracing::warn!(
            socket = %access.endpoint,
            uid,
            gid,
            pid = peer.pid().unwrap_or(0),
            "daemon socket: refused a peer that is not on the allow list"
        );
        let refusal = format!("uid {uid} is not allowed to use this socket");
        write_and_close(&mut stream, &daemon_wire::error_line(&refusal)).await;
        return Some(SocketOutcome::Refused);
    }
    let line = tokio::select! {
        line = tokio::time::timeout(LIMITS.header_timeout, read_line(&mut stream)) => line,
        _ = stopping.wait_for(|stop| *stop) => return None,
    };
    let answer = match line {
        Ok(Ok(line)) => match daemon_wire::parse_request(&line) {
            Ok(role) => answer(access, role, uid),
            Err(problem) => Err(daemon_wire::error_line(problem)),
        },
        Ok(Err(problem)) => Err(daemon_wire::error_line(&problem)),
        Err(_) => {
            tracing::debug!(uid, "daemon socket: no request within the header timeout");
            return None;
        }
    };
    let (bytes, outcome) = match &answer {
        Ok(credentials) => (credentials, SocketOutcome::Credentials),
        Err(line) => (line, SocketOutcome::Error),
    };
    write_and_close(&mut stream, bytes).await;
    Some(outcome)
}

/// The request line, without its newline.
async fn read_line(stream: &mut UnixStream) -> std::result::Result<Vec<u8>, String> {
    let mut buf = [0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the request ended without a newline".into());
        }
        if let Some(end) = buf[len..len + n].iter().position(|&b| b == b'\n') {
            return Ok(buf[..len + end].to_vec());
        }
        len += n;
        if len == MAX_REQUEST {
            return Err(format!("the request is longer than {MAX_REQUEST} bytes"));
        }
    }
}

/// The answer to a request for `role` (`None`: the socket's only role): the credentials, or
/// an error line.
fn answer(access: &Access, role: Option<&str>, uid: u32) -> Result<Vec<u8>, Vec<u8>> {
    let served = match role {
        Some(name) => access.roles.iter().find(|r| r.name == name),
        None if access.roles.len() == 1 => access.roles.first(),
        None => {
            return Err(daemon_wire::error_line(&format!(
                "this socket serves {} roles ({}); ask for one with --role NAME",
                access.roles.len(),
                names(access)
            )));
        }
    };
    let Some(served) = served else {
        return Err(daemon_wire::error_line(&format!(
            "no role {:?} on this socket (it serves: {})",
            role.unwrap_or_default(),
            names(access)
        )));
    };
    match served.state().documents(SystemTime::now()) {
        Ok(documents) => {
            tracing::debug!(uid, role = %served.name, "daemon socket: credentials handed out");
            Ok(documents.process.to_vec())
        }
        Err(why) => Err(daemon_wire::error_line(&format!(
            "role {}: {why}",
            served.name
        ))),
    }
}

fn names(access: &Access) -> String {
    access
        .roles
        .iter()
        .map(|r| r.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bytes` and closes, giving up once the peer has read nothing for the
/// stalled-write limit.
async fn write_and_close(stream: &mut UnixStream, bytes: &[u8]) {
    let written = tokio::time::timeout(LIMITS.stalled_write, async {
        stream.write_all(bytes).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("daemon socket: the answer could not be delivered");
    }
}

/// `SO_PEERGROUPS`: its value in the kernel's headers, which the libc crate does not
/// export (sparc alone numbers it differently).
#[cfg(target_arch = "sparc64")]
const SO_PEERGROUPS: libc::c_int = 0x3d;
#[cfg(not(target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 59;

/// The peer's supplementary groups as the kernel recorded them at connect time; empty if
/// the kernel cannot say (before Linux 4.13).
fn peer_groups(fd: RawFd) -> Vec<u32> {
    let mut groups = vec![0u32; 64];
    for _ in 0..2 {
        let mut len = libc::socklen_t::try_from(groups.len() * 4).unwrap_or(0);
        // SAFETY: `groups` is valid for `len` bytes, and getsockopt writes at most that
        // many, setting `len` to what it wrote (or, on ERANGE, to what it needs).
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let len = len as usize / 4;
        if rc == 0 {
            groups.truncate(len);
            return groups;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) || len <= groups.len() {
            break;
        }
        groups.resize(len, 0);
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_file_gets_its_mode_and_replaces_only_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let (first, _) = bind(&path, 0o640, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // A stale socket file is replaced.
        drop(first);
        let (_second, id) = bind(&path, 0o600, None).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.dev(), meta.ino()), id);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A regular file is not.
        let other = dir.path().join("file");
        std::fs::write(&other, "keep").unwrap();
        assert!(bind(&other, 0o600, None).is_err());
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "keep");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn supplementary_groups_of_a_peer_are_read() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: getgroups with a zero size only counts.
        let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        assert_eq!(peer_groups(a.as_raw_fd()).len(), count as usize);
    }
}
