//! The daemon, running: its listeners, its roles, and the bound on connections they share.
//!
//! [`start`] binds every listener (or takes the sockets systemd passed) before anything
//! else, so a taken port fails at once; [`Running::ready`] then waits for every role's
//! first credentials, so the daemon reports ready only when it can answer, and a permanent
//! error (a refused certificate, a wrong ARN) stops it with the service's message instead
//! of serving errors forever, while a transient one (a key file not there yet, a token not
//! plugged in, the service unreachable) is retried with backoff. [`Running::shutdown`]
//! stops accepting and lets requests under way finish. Reloads are in `reload.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::daemon_socket::{self, LiveDaemonSocket};
use super::ecs;
use super::http::{self, Connections, Listener};
use super::metrics::Metrics;
use super::ops::Ops;
use super::role::{RoleState, ServedRole};
use super::site::{Site, Swappable};
use crate::config::{EcsPlan, Endpoint, Plan, RolePlan};
use crate::error::{Error, Result};
use crate::refresh::{self, Schedule, SessionSource};
use crate::secret::Secret;
use crate::systemd::{Activated, ActivatedListener};

/// Connections the ops listener holds at once (health checks and scrapes are few).
const OPS_CONNECTIONS: usize = 64;

/// The daemon, running.
pub struct Running {
    pub(super) served: Mutex<Served>,
    /// Whether the credential listeners accept (from [`Running::ready`] on).
    pub(super) accepting: AtomicBool,
    pub(super) connections: Connections,
    pub(super) max_connections: AtomicUsize,
    stopping: watch::Sender<bool>,
    pub(super) schedule: Schedule,
    /// The pacing the schedule was made from: a reload cannot change it.
    pub(super) pacing: crate::config::PacingPlan,
    pub(super) metrics: Arc<Metrics>,
    /// Sockets passed by socket activation that no listener uses (yet): a reloaded config
    /// may name them.
    pub(super) spare: Mutex<Vec<Activated>>,
}

/// What is served now; a reload replaces parts of it.
pub(super) struct Served {
    pub roles: Vec<LiveRole>,
    pub listeners: Vec<LiveListener>,
    pub ops: Option<LiveListener>,
    pub ops_routes: Option<Arc<Swappable<Ops>>>,
    pub allowed_hosts: Arc<Vec<String>>,
    pub cert_expiry_warning_days: u32,
    pub daemon_sockets: Vec<LiveDaemonSocket>,
}

/// A role and its ECS token.
pub(super) struct LiveRole {
    pub role: Arc<ServedRole>,
    pub ecs: Option<(EcsPlan, Secret)>,
}

/// A listener: its socket until it accepts, then its accept task.
pub(super) struct LiveListener {
    pub endpoint: Endpoint,
    pub tcp: Option<SocketAddr>,
    pub hop_limit: u32,
    pub routes: Option<Arc<Swappable<Site>>>,
    pub socket: Option<Listener>,
    pub task: Option<JoinHandle<()>>,
    /// A duplicate of a TCP listener's descriptor, through which a reload sets the hop
    /// limit of the socket that the accept task owns (accepted connections inherit it).
    control: Option<socket2::Socket>,
}

impl LiveListener {
    pub(super) fn new(endpoint: Endpoint, hop_limit: u32, socket: Listener) -> Self {
        let control = match &socket {
            Listener::Tcp(l) => socket2::SockRef::from(l).try_clone().ok(),
            Listener::Unix(_) => None,
        };
        Self {
            endpoint,
            tcp: socket.tcp_addr(),
            hop_limit,
            routes: None,
            socket: Some(socket),
            task: None,
            control,
        }
    }

    /// Sets the IP TTL / hop limit of the replies of connections accepted from now on.
    pub(super) fn set_hop_limit(&mut self, hops: u32) -> std::io::Result<()> {
        if let Some(socket) = &self.control {
            if self.tcp.is_some_and(|a| a.is_ipv6()) {
                socket.set_unicast_hops_v6(hops)?;
                let _ = socket.set_ttl_v4(hops);
            } else {
                socket.set_ttl_v4(hops)?;
            }
        }
        self.hop_limit = hops;
        Ok(())
    }

    /// Starts accepting with `routes`, if not already.
    pub(super) fn accept(&mut self, routes: Arc<dyn http::Routes>, connections: Connections) {
        if let Some(socket) = self.socket.take() {
            self.task = Some(tokio::spawn(http::accept_loop(socket, routes, connections)));
        }
    }

    /// Stops accepting: the socket closes; open connections finish on their own.
    pub(super) fn close(&mut self) {
        self.socket = None;
        self.control = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// What clients see here. A reload rebuilds the routes from the roles it keeps, under
    /// the same lock, so they name only roles that are served.
    fn view(&self) -> Bound {
        let site = self.routes.as_ref().map(|r| r.current());
        Bound {
            endpoint: self.endpoint.clone(),
            tcp: self.tcp,
            imds: site.as_ref().and_then(|s| s.imds_role()),
            ecs: site.map(|s| s.ecs_roles()).unwrap_or_default(),
        }
    }
}

/// A listener as the announcement and the instructions describe it.
pub struct Bound {
    pub endpoint: Endpoint,
    /// The local address of a TCP listener (the port chosen for port 0).
    pub tcp: Option<SocketAddr>,
    /// The role served over IMDS here, if any.
    pub imds: Option<Arc<ServedRole>>,
    /// The roles served over ECS here, with their paths.
    pub ecs: Vec<(String, Arc<ServedRole>)>,
}

impl Bound {
    /// The base URL clients use (a loopback host when bound to all addresses), or the
    /// passed socket's name for a Unix socket.
    pub fn url(&self) -> String {
        let Some(addr) = self.tcp else {
            return format!("unix socket {}", self.endpoint);
        };
        let ip = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, addr.port()))
    }
}

/// Opens the socket of `endpoint`: binds it, or takes the passed socket of that name out
/// of `spare`.
pub(super) fn open(endpoint: &Endpoint, hops: u32, spare: &mut Vec<Activated>) -> Result<Listener> {
    match endpoint {
        Endpoint::Tcp(addr) => http::bind(*addr, hops)
            .map(Listener::Tcp)
            .map_err(Error::system(format!("cannot listen on {addr}"))),
        Endpoint::Activated(name) => {
            let index =
                spare
                    .iter()
                    .position(|a| &a.name == name)
                    .ok_or_else(|| Error::System {
                        what: format!("the socket {endpoint}"),
                        source: std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            "it is already used by another listener, or was not passed",
                        ),
                    })?;
            let socket = spare.swap_remove(index);
            let listener = match socket.listener {
                ActivatedListener::Tcp(l) => {
                    tokio::net::TcpListener::from_std(l).map(Listener::Tcp)
                }
                ActivatedListener::Unix(l) => {
                    tokio::net::UnixListener::from_std(l).map(Listener::Unix)
                }
            };
            listener.map_err(Error::system(format!(
                "cannot use the passed socket {endpoint}"
            )))
        }
    }
}

/// A refresher for `role`, and what its listeners need to know.
pub(super) fn start_role(role: &RolePlan, schedule: &Schedule) -> Result<RoleState> {
    let role_arn = role.settings.served_role_arn().to_owned();
    let session =
        |settings: &crate::config::SessionSettings| -> Result<Arc<dyn refresh::CredentialSource>> {
            Ok(Arc::new(SessionSource::new(settings)?))
        };
    let source = match &role.failover {
        None => session(&role.settings)?,
        Some(plan) => {
            let mut regions = vec![refresh::Region {
                name: role.settings.params.region.clone(),
                source: session(&role.settings)?,
            }];
            for (name, settings) in &plan.regions {
                regions.push(refresh::Region {
                    name: name.clone(),
                    source: session(settings)?,
                });
            }
            Arc::new(refresh::FailoverSource::new(
                role.name.clone(),
                regions,
                plan.after,
            ))
        }
    };
    Ok(RoleState::new(
        role.settings.role_name(),
        role_arn,
        refresh::spawn(role.name.clone(), source, schedule.clone()),
    ))
}

/// Writes a new ECS token for `role` to its token file.
pub(super) fn new_token(name: &str, plan: &EcsPlan) -> Result<Secret> {
    let token = ecs::new_token();
    ecs::write_token_file(&plan.token_file, &token, plan.group).map_err(Error::system(format!(
        "role {name}: cannot write the ECS token file {}",
        plan.token_file.display()
    )))?;
    Ok(token)
}

/// The site of each listener of `plan`, for roles by plan index (`None`: not served).
pub(super) fn site_for(
    plan: &Plan,
    listener: usize,
    roles: &[Option<&LiveRole>],
    allowed_hosts: &Arc<Vec<String>>,
    tokens: Arc<super::imds::TokenStore>,
    metrics: &Arc<Metrics>,
) -> Site {
    let listener = &plan.listeners[listener];
    let imds = listener.imds.and_then(|i| roles[i]).map(|r| r.role.clone());
    let ecs = listener
        .ecs
        .iter()
        .filter_map(|&i| {
            let live = roles[i]?;
            let (_, token) = live.ecs.as_ref()?;
            Some((ecs::path(&live.role.name), live.role.clone(), token.clone()))
        })
        .collect();
    Site::new(allowed_hosts.clone(), imds, tokens, ecs, metrics.clone())
}

/// Binds the listeners (taking those of `activated` that the plan names), starts one
/// refresher per role, writes the ECS token files and starts the ops listener. The
/// credential listeners accept once [`Running::ready`] has seen every role's first
/// credentials. Must run inside a tokio runtime.
pub async fn start(plan: Plan, schedule: Schedule, activated: Vec<Activated>) -> Result<Running> {
    let mut spare = activated;
    let mut listeners = Vec::with_capacity(plan.listeners.len());
    for listener in &plan.listeners {
        let socket = open(&listener.endpoint, listener.hop_limit, &mut spare)?;
        listeners.push(LiveListener::new(
            listener.endpoint.clone(),
            listener.hop_limit,
            socket,
        ));
    }
    let mut ops = match &plan.ops {
        Some(endpoint) => Some(LiveListener::new(
            endpoint.clone(),
            crate::config::plan::DEFAULT_HOP_LIMIT,
            open(endpoint, crate::config::plan::DEFAULT_HOP_LIMIT, &mut spare)?,
        )),
        None => None,
    };
    let mut daemon_sockets = Vec::with_capacity(plan.daemon_sockets.len());
    for socket in &plan.daemon_sockets {
        daemon_sockets.push(daemon_socket::open(socket, &mut spare)?);
    }
    for unused in &spare {
        tracing::warn!(socket = %unused.name, "a passed socket is not used by any listener");
    }
    let mut roles = Vec::with_capacity(plan.roles.len());
    for role in &plan.roles {
        let state = start_role(role, &schedule)?;
        let ecs = match &role.ecs {
            Some(ecs_plan) => Some((ecs_plan.clone(), new_token(&role.name, ecs_plan)?)),
            None => None,
        };
        roles.push(LiveRole {
            role: Arc::new(ServedRole::new(role.name.clone(), state)),
            ecs,
        });
    }
    let max_connections = plan.max_connections.max(1);
    let (stopping, stopping_rx) = watch::channel(false);
    let connections = Connections {
        limit: Arc::new(Semaphore::new(max_connections)),
        stopping: stopping_rx,
    };
    let metrics = Arc::new(Metrics::default());
    let allowed_hosts = Arc::new(plan.allowed_hosts.clone());
    let by_index: Vec<Option<&LiveRole>> = roles.iter().map(Some).collect();
    for (index, listener) in listeners.iter_mut().enumerate() {
        let site = site_for(
            &plan,
            index,
            &by_index,
            &allowed_hosts,
            Site::new_tokens(),
            &metrics,
        );
        listener.routes = Some(Arc::new(Swappable::new(site)));
    }
    for (socket, socket_plan) in daemon_sockets.iter_mut().zip(&plan.daemon_sockets) {
        socket.set_access(socket_plan, &|i| by_index[i].map(|r| r.role.clone()));
    }
    let ops_routes = ops.as_mut().map(|ops| {
        let routes = Arc::new(Swappable::new(ops_routes(&roles, &listeners, &metrics)));
        ops.accept(routes.clone(), ops_connections(&connections));
        routes
    });
    Ok(Running {
        served: Mutex::new(Served {
            roles,
            listeners,
            ops,
            ops_routes,
            allowed_hosts,
            cert_expiry_warning_days: plan.cert_expiry_warning_days,
            daemon_sockets,
        }),
        accepting: AtomicBool::new(false),
        connections,
        max_connections: AtomicUsize::new(max_connections),
        stopping,
        schedule,
        pacing: plan.pacing,
        metrics,
        spare: Mutex::new(spare),
    })
}

/// The ops routes over these roles and listeners.
pub(super) fn ops_routes(
    roles: &[LiveRole],
    listeners: &[LiveListener],
    metrics: &Arc<Metrics>,
) -> Ops {
    Ops::new(
        roles.iter().map(|r| r.role.clone()).collect(),
        listeners.iter().filter_map(|l| l.routes.clone()).collect(),
        metrics.clone(),
    )
}

/// The ops listener's own small bound, so that a flood of the credential ports cannot
/// starve the health checks that would report it.
pub(super) fn ops_connections(connections: &Connections) -> Connections {
    Connections {
        limit: Arc::new(Semaphore::new(OPS_CONNECTIONS)),
        stopping: connections.stopping.clone(),
    }
}

impl Running {
    pub(super) fn lock(&self) -> MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every role has its first credentials, then starts accepting on the
    /// credential listeners; the first permanent failure is the error.
    pub async fn ready(&self) -> Result<()> {
        let roles: Vec<Arc<ServedRole>> =
            self.lock().roles.iter().map(|r| r.role.clone()).collect();
        for role in roles {
            role.state()
                .handle
                .clone()
                .first()
                .await
                .map_err(|source| Error::Credentials {
                    context: format!("role {}", role.name),
                    source,
                })?;
        }
        self.accept();
        Ok(())
    }

    /// Starts accepting on the credential listeners, whether or not every role has
    /// credentials yet: clients queued since the start (the one that triggered socket
    /// activation, say) are answered then, by each role's current state.
    pub fn accept(&self) {
        let mut served = self.lock();
        for listener in &mut served.listeners {
            if let Some(routes) = listener.routes.clone() {
                listener.accept(routes, self.connections.clone());
            }
        }
        for socket in &mut served.daemon_sockets {
            socket.accept(&self.connections, &self.metrics);
        }
        self.accepting.store(true, Ordering::SeqCst);
    }

    /// The credential listeners, as clients see them.
    pub fn listeners(&self) -> Vec<Bound> {
        self.lock()
            .listeners
            .iter()
            .map(LiveListener::view)
            .collect()
    }

    /// Where the daemon sockets are.
    pub fn daemon_sockets(&self) -> Vec<String> {
        let served = self.lock();
        served
            .daemon_sockets
            .iter()
            .map(|s| s.endpoint.to_string())
            .collect()
    }

    /// The ops listener, if any.
    pub fn ops(&self) -> Option<Bound> {
        self.lock().ops.as_ref().map(LiveListener::view)
    }

    /// The roles served, with their ECS token files.
    pub fn roles(&self) -> Vec<(Arc<ServedRole>, Option<EcsPlan>)> {
        self.lock()
            .roles
            .iter()
            .map(|r| (r.role.clone(), r.ecs.as_ref().map(|(plan, _)| plan.clone())))
            .collect()
    }

    /// Days before a certificate's expiry from which to warn.
    pub fn cert_expiry_warning_days(&self) -> u32 {
        self.lock().cert_expiry_warning_days
    }

    /// Whether every role's refresher is running (for the watchdog).
    pub fn alive(&self) -> bool {
        self.lock()
            .roles
            .iter()
            .all(|r| r.role.state().handle.alive())
    }

    /// A one-line summary for systemd's `STATUS=`: each role and when its credentials
    /// expire, or why it has none.
    pub fn status(&self) -> String {
        let now = time::OffsetDateTime::now_utc();
        let parts: Vec<String> = self
            .lock()
            .roles
            .iter()
            .map(|live| match live.role.state().handle.current(now) {
                Ok(c) => format!(
                    "{} until {}",
                    live.role.name,
                    crate::identity::rfc3339(c.expiration)
                ),
                Err(e) => format!("{}: {e}", live.role.name),
            })
            .collect();
        format!("serving {} role(s): {}", parts.len(), parts.join("; "))
    }

    /// What to tell the user once ready: per role, the variables that point an SDK at it.
    pub fn instructions(&self) -> String {
        let listeners = self.listeners();
        let roles = self.roles();
        let mut out = String::new();
        let several = roles.len() > 1;
        for (role, ecs_plan) in &roles {
            if several {
                out.push_str(&format!(
                    "Role {} ({}):\n",
                    role.name,
                    role.state().role_arn
                ));
            }
            for listener in &listeners {
                if listener.imds.as_ref().is_some_and(|r| Arc::ptr_eq(r, role)) {
                    out.push_str(&format!(
                        "export AWS_EC2_METADATA_SERVICE_ENDPOINT={}/\n",
                        listener.url()
                    ));
                }
                for (path, _) in listener.ecs.iter().filter(|(_, r)| Arc::ptr_eq(r, role)) {
                    out.push_str(&format!(
                        "export AWS_CONTAINER_CREDENTIALS_FULL_URI={}{path}\n",
                        listener.url()
                    ));
                    if let Some(ecs_plan) = ecs_plan {
                        out.push_str(&format!(
                            "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}\n",
                            ecs_plan.token_file.display()
                        ));
                    }
                }
            }
        }
        out
    }

    /// Stops accepting, lets requests under way finish (closing idle connections) for at
    /// most `grace`, and removes the token files.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.send_replace(true);
        self.stop_accepting();
        let all = u32::try_from(self.max_connections.load(Ordering::SeqCst)).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, self.connections.limit.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "some connections were still open after {} s; closing them",
                grace.as_secs()
            );
        }
        self.remove_token_files();
    }

    fn stop_accepting(&self) {
        let mut guard = self.lock();
        let served = &mut *guard;
        for listener in served.listeners.iter_mut().chain(served.ops.as_mut()) {
            listener.close();
        }
        for socket in &mut served.daemon_sockets {
            socket.close();
        }
    }

    fn remove_token_files(&self) {
        for live in &mut self.lock().roles {
            if let Some((plan, _)) = live.ecs.take() {
                let _ = std::fs::remove_file(plan.token_file);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_accepting();
        self.remove_token_files();
    }
}
