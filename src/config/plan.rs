//! The validated plans the commands run on. A plan that exists is complete and
//! consistent: every listener names roles that are there, every role is served somewhere.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::session::SessionSettings;

/// The official helper's port.
pub const DEFAULT_PORT: u16 = 9911;
/// The official helper's default hop limit.
pub const DEFAULT_HOP_LIMIT: u32 = 64;
/// Connections held at once unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Days before a certificate's expiry from which the daemon warns, once a day.
pub const DEFAULT_CERT_EXPIRY_WARNING_DAYS: u32 = 30;

/// What `serve` is to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub roles: Vec<RolePlan>,
    pub listeners: Vec<ListenerPlan>,
    pub max_connections: usize,
    /// Host names answered besides IP addresses and localhost.
    pub allowed_hosts: Vec<String>,
    /// Where `/healthz` and `/metrics` are served, if anywhere.
    pub ops: Option<Endpoint>,
    pub cert_expiry_warning_days: u32,
    /// The daemon sockets that answer `credential-process --daemon-socket`.
    pub daemon_sockets: Vec<DaemonSocketPlan>,
    /// How fast CreateSession may be called.
    pub pacing: super::pacing::PacingPlan,
}

/// Where a listener listens: an address to bind, or a socket passed by systemd socket
/// activation, named by its `FileDescriptorName=` (written `fd:NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Activated(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Activated(name) => write!(f, "fd:{name}"),
        }
    }
}

/// A daemon socket: where it is, who may ask it, and which roles it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSocketPlan {
    pub endpoint: UnixEndpoint,
    /// The socket file's mode (never world-writable); unused for a passed socket.
    pub mode: u32,
    /// The socket file's group, if not the daemon's.
    pub group: Option<u32>,
    pub allow: PeerAllow,
    /// Indexes into the plan's `roles`, in order.
    pub roles: Vec<usize>,
}

/// Where a daemon socket listens: a socket file the daemon creates, or a Unix socket
/// passed by systemd socket activation (written `fd:NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixEndpoint {
    Path(PathBuf),
    Activated(String),
}

impl std::fmt::Display for UnixEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => path.display().fmt(f),
            Self::Activated(name) => write!(f, "fd:{name}"),
        }
    }
}

/// Who may ask a daemon socket, as the kernel reports the peer (`SO_PEERCRED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAllow {
    pub uids: Vec<u32>,
    /// Matched against the peer's primary group and its supplementary groups.
    pub gids: Vec<u32>,
}

impl PeerAllow {
    /// Whether a peer with `uid` and primary `gid` may ask; `groups` gives its
    /// supplementary groups, read only when the answer depends on them.
    pub fn permits(&self, uid: u32, gid: u32, groups: impl FnOnce() -> Vec<u32>) -> bool {
        if self.uids.contains(&uid) || self.gids.contains(&gid) {
            return true;
        }
        !self.gids.is_empty() && groups().iter().any(|g| self.gids.contains(g))
    }
}

/// One role of `serve`.
#[derive(Debug, Clone)]
pub struct RolePlan {
    /// The configured name: the ECS path and the log field.
    pub name: String,
    pub settings: SessionSettings,
    pub ecs: Option<EcsPlan>,
    /// Further regions to fail over to, if any.
    pub failover: Option<super::failover::FailoverPlan>,
}

/// A role's ECS token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsPlan {
    pub token_file: PathBuf,
    /// The group that may read the token file, if not only the owner.
    pub group: Option<u32>,
}

/// One credentials listener.
#[derive(Debug, Clone)]
pub struct ListenerPlan {
    pub endpoint: Endpoint,
    pub hop_limit: u32,
    /// Index into `roles` of the role served over IMDS here.
    pub imds: Option<usize>,
    /// Indexes into `roles` of the roles served over ECS here.
    pub ecs: Vec<usize>,
}

/// What `update` is to do: which roles go to which profile of which file.
#[derive(Debug, Clone)]
pub struct UpdatePlan {
    /// The shared credentials file.
    pub file: PathBuf,
    /// Each role with the profile it is written to.
    pub roles: Vec<(String, SessionSettings)>,
}
