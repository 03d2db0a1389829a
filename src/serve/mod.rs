//! `serve`: keeps each role's credentials fresh in memory (one [`refresh`](crate::refresh)
//! engine per role) and hands them to SDKs on the host through the protocols they already
//! speak: an IMDSv2-compatible endpoint (one role per listener, at the root paths) and
//! ECS container-credentials paths (any number of roles per listener, each behind its own
//! token).
//!
//! [`start`] binds every listener (or takes the sockets systemd passed) before anything
//! else, so a taken port fails at once; [`Running::ready`] then waits for every role's
//! first credentials, so the daemon reports ready only when it can answer, and a permanent
//! error (a refused certificate, a wrong ARN) stops it with the service's message instead
//! of serving errors forever. [`Running::reload`] swaps a role's refresher for one built
//! from new settings once the new one has credentials, so no request fails during a
//! reload; [`Running::shutdown`] stops accepting and lets requests under way finish.

pub mod asked;
pub mod ecs;
pub mod host;
pub mod http;
pub mod imds;
pub mod metrics;
pub mod ops;
pub mod plan;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use hyper::Request;
use hyper::body::Incoming;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::refresh::{self, Handle, Schedule, SessionSource};
use crate::rolesanywhere::Client;
use crate::secret::Secret;
use crate::systemd::{Activated, ActivatedListener};
use http::{Connections, Listener, Reply, Routes};
use metrics::{Metrics, Route};
pub use plan::{EcsPlan, Endpoint, ListenerPlan, Plan, RolePlan};

/// How many tokens one IMDS listener keeps. SDKs take one per process for up to six hours;
/// a token is about 100 bytes, so the bound costs little and is far above real use.
const TOKEN_CAPACITY: usize = 4096;

/// Connections the ops listener holds at once (health checks and scrapes are few).
const OPS_CONNECTIONS: usize = 64;

/// How long a reloaded role's first CreateSession may take before the reload gives up
/// and the role keeps its current credentials.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// What a role is serving now; replaced as a whole on reload.
pub struct RoleState {
    /// The name IMDS lists: the last component of the role ARN, as EC2 and the official
    /// helper give it.
    pub imds_name: String,
    pub role_arn: String,
    pub handle: Handle,
    /// The documents of the current credentials, rendered once per set rather than once
    /// per request (JSON and date formatting were a tenth of the serving cost).
    rendered: std::sync::Mutex<Option<Arc<Documents>>>,
}

/// The IMDS and ECS documents of one set of credentials.
pub struct Documents {
    credentials: Arc<crate::credentials::Credentials>,
    /// When these credentials stop being worth handing out (see `refresh::serve_until`),
    /// on the clock every request reads: checking it costs one comparison.
    serve_until: SystemTime,
    pub imds: bytes::Bytes,
    pub ecs: bytes::Bytes,
}

impl RoleState {
    pub(crate) fn new(imds_name: String, role_arn: String, handle: Handle) -> Self {
        Self {
            imds_name,
            role_arn,
            handle,
            rendered: std::sync::Mutex::new(None),
        }
    }

    /// The documents to serve now, if the credentials are still worth handing out.
    pub fn documents(
        &self,
        now: SystemTime,
    ) -> std::result::Result<Arc<Documents>, refresh::Unavailable> {
        let mut cache = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(documents) = cache.as_ref()
            && now < documents.serve_until
            && self.handle.holds(&documents.credentials)
        {
            return Ok(documents.clone());
        }
        let (credentials, received) = self.handle.current_with_receipt(now.into())?;
        let documents = Arc::new(Documents {
            serve_until: refresh::serve_until(&credentials, received).into(),
            imds: credentials.imds_json(received).into(),
            ecs: credentials.ecs_json().into(),
            credentials,
        });
        *cache = Some(documents.clone());
        Ok(documents)
    }
}

/// A role as the listeners see it.
pub struct ServedRole {
    /// The configured name: the ECS path and the log field.
    pub name: String,
    state: RwLock<Arc<RoleState>>,
}

impl ServedRole {
    pub(crate) fn new(name: String, state: RoleState) -> Self {
        Self {
            name,
            state: RwLock::new(Arc::new(state)),
        }
    }

    /// The current state (a cheap clone; readers never wait for a reload).
    pub fn state(&self) -> Arc<RoleState> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, state: RoleState) {
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }
}

/// One credentials listener's routes.
pub struct Site {
    allowed_hosts: Arc<Vec<String>>,
    imds: Option<Arc<ServedRole>>,
    tokens: imds::TokenStore,
    ecs: Vec<(String, Arc<ServedRole>, Secret)>,
    metrics: Arc<Metrics>,
}

impl Routes for Site {
    fn answer(&self, request: &Request<Incoming>) -> Reply {
        let (route, reply) = self.route(request);
        self.metrics.record(route, reply.status());
        reply
    }
}

impl Site {
    pub(crate) fn new(
        allowed_hosts: Arc<Vec<String>>,
        imds: Option<Arc<ServedRole>>,
        ecs: Vec<(String, Arc<ServedRole>, Secret)>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            allowed_hosts,
            imds,
            tokens: imds::TokenStore::new(TOKEN_CAPACITY),
            ecs,
            metrics,
        }
    }

    /// Issues an IMDS session token as a PUT to the token path would, for the fuzz targets.
    #[cfg(fuzzing)]
    pub(crate) fn issue_token(&self, ttl: Duration) -> String {
        self.tokens.issue(ttl, std::time::Instant::now())
    }

    pub(crate) fn route<B>(&self, request: &Request<B>) -> (Route, Reply) {
        let path = request.uri().path();
        let method = request.method();
        let asked = asked::Asked::read(request.headers());
        if let Some(reply) = host::refusal(request.uri(), &asked, &self.allowed_hosts) {
            return (Route::Other, reply);
        }
        if imds::owns(path) {
            return match &self.imds {
                Some(role) => (
                    imds::route(path),
                    imds::handle(role, &self.tokens, method, path, &asked),
                ),
                None => (Route::Other, Reply::not_found()),
            };
        }
        match self.ecs.iter().find(|(p, _, _)| p == path) {
            Some((_, role, token)) => (Route::Ecs, ecs::handle(role, token, method, &asked)),
            None => (Route::Other, Reply::not_found()),
        }
    }
}

/// A listener after binding.
pub struct Bound {
    pub endpoint: Endpoint,
    /// The local address of a TCP listener (the port chosen for port 0).
    pub tcp: Option<std::net::SocketAddr>,
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
        format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
    }
}

/// The daemon, running.
pub struct Running {
    pub listeners: Vec<Bound>,
    pub roles: Vec<(Arc<ServedRole>, Option<EcsPlan>)>,
    /// The local address of the ops listener, if it is a TCP one.
    pub ops: Option<Bound>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Credential listeners, bound but not yet accepting: they start when every role has
    /// credentials, so early clients (the one that triggered socket activation, say) wait
    /// in the kernel's queue for an answer rather than get an error.
    pending: std::sync::Mutex<Vec<(Listener, Arc<Site>)>>,
    accepting: Connections,
    token_files: std::sync::Mutex<Vec<PathBuf>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
    stopping: watch::Sender<bool>,
    schedule: Schedule,
}

/// Binds the listeners (taking those of `activated` that the plan names), starts one
/// refresher per role, writes the ECS token files and starts serving. Must run inside a
/// tokio runtime.
pub async fn start(plan: Plan, schedule: Schedule, activated: Vec<Activated>) -> Result<Running> {
    let mut passed = activated;
    let mut open = |endpoint: &Endpoint, hops: u32| -> Result<Listener> {
        match endpoint {
            Endpoint::Tcp(addr) => http::bind(*addr, hops)
                .map(Listener::Tcp)
                .map_err(|e| Error::Other(format!("cannot listen on {addr}: {e}"))),
            Endpoint::Activated(name) => {
                let index = passed.iter().position(|a| &a.name == name).ok_or_else(|| {
                    Error::Usage(format!("the socket {endpoint} is used by two listeners"))
                })?;
                let socket = passed.swap_remove(index);
                let listener = match socket.listener {
                    ActivatedListener::Tcp(l) => {
                        tokio::net::TcpListener::from_std(l).map(Listener::Tcp)
                    }
                    ActivatedListener::Unix(l) => {
                        tokio::net::UnixListener::from_std(l).map(Listener::Unix)
                    }
                };
                listener.map_err(|e| {
                    Error::Other(format!("cannot use the passed socket {endpoint}: {e}"))
                })
            }
        }
    };
    let mut sockets = Vec::with_capacity(plan.listeners.len());
    for listener in &plan.listeners {
        sockets.push(open(&listener.endpoint, listener.hop_limit)?);
    }
    let ops_socket = match &plan.ops {
        Some(endpoint) => Some((endpoint.clone(), open(endpoint, plan::DEFAULT_HOP_LIMIT)?)),
        None => None,
    };
    for unused in &passed {
        tracing::warn!(socket = %unused.name, "a passed socket is not used by any listener");
    }

    let mut roles = Vec::with_capacity(plan.roles.len());
    let mut tokens = Vec::with_capacity(plan.roles.len());
    let mut token_files = Vec::new();
    for role in plan.roles {
        let state = start_role(&role, &schedule)?;
        let token = role.ecs.as_ref().map(|_| ecs::new_token());
        if let (Some(ecs_plan), Some(token)) = (&role.ecs, &token) {
            ecs::write_token_file(&ecs_plan.token_file, token, ecs_plan.group).map_err(|e| {
                Error::Other(format!(
                    "role {}: cannot write the ECS token file {}: {e}",
                    role.name,
                    ecs_plan.token_file.display()
                ))
            })?;
            token_files.push(ecs_plan.token_file.clone());
        }
        tokens.push(token);
        roles.push((Arc::new(ServedRole::new(role.name, state)), role.ecs));
    }

    let max_connections = plan.max_connections.max(1);
    let limit = Arc::new(Semaphore::new(max_connections));
    let (stopping, stopping_rx) = watch::channel(false);
    let connections = Connections {
        limit: limit.clone(),
        stopping: stopping_rx,
    };
    let metrics = Arc::new(Metrics::default());
    let allowed_hosts = Arc::new(plan.allowed_hosts.clone());
    let mut listeners = Vec::with_capacity(sockets.len());
    let mut sites = Vec::with_capacity(sockets.len());
    let mut pending = Vec::with_capacity(sockets.len());
    let mut tasks = Vec::with_capacity(sockets.len() + 1);
    for (listener, socket) in plan.listeners.iter().zip(sockets) {
        let imds = listener.imds.map(|i| roles[i].0.clone());
        let ecs: Vec<(String, Arc<ServedRole>, Secret)> = listener
            .ecs
            .iter()
            .filter_map(|&i| {
                let role = roles[i].0.clone();
                let token = tokens[i].clone()?;
                Some((ecs::path(&role.name), role, token))
            })
            .collect();
        listeners.push(Bound {
            endpoint: listener.endpoint.clone(),
            tcp: socket.tcp_addr(),
            imds: imds.clone(),
            ecs: ecs.iter().map(|(p, r, _)| (p.clone(), r.clone())).collect(),
        });
        let site = Arc::new(Site::new(allowed_hosts.clone(), imds, ecs, metrics.clone()));
        sites.push(site.clone());
        pending.push((socket, site));
    }
    let ops = ops_socket.map(|(endpoint, socket)| {
        let bound = Bound {
            endpoint,
            tcp: socket.tcp_addr(),
            imds: None,
            ecs: Vec::new(),
        };
        let routes = Arc::new(ops::Ops {
            roles: roles.iter().map(|(r, _)| r.clone()).collect(),
            sites,
            metrics,
        });
        // Its own small bound, so that a flood of the credential ports cannot starve the
        // health checks that would report it.
        let ops_connections = Connections {
            limit: Arc::new(Semaphore::new(OPS_CONNECTIONS)),
            stopping: connections.stopping.clone(),
        };
        tasks.push(tokio::spawn(http::accept_loop(
            socket,
            routes,
            ops_connections,
        )));
        bound
    });
    Ok(Running {
        listeners,
        roles,
        ops,
        tasks: std::sync::Mutex::new(tasks),
        pending: std::sync::Mutex::new(pending),
        accepting: connections,
        token_files: std::sync::Mutex::new(token_files),
        connections: limit,
        max_connections,
        stopping,
        schedule,
    })
}

/// A refresher for `role`, and what its listeners need to know.
fn start_role(role: &RolePlan, schedule: &Schedule) -> Result<RoleState> {
    let client = Client::new(role.settings.client.clone())
        .map_err(|e| Error::Usage(format!("role {}: {e}", role.name)))?;
    let params = role.settings.params.clone();
    let role_arn = params.role_arn.clone();
    let imds_name = role_arn.rsplit('/').next().unwrap_or_default().to_owned();
    let source = Arc::new(SessionSource {
        identity: role.settings.identity.clone(),
        params,
        client,
    });
    Ok(RoleState::new(
        imds_name,
        role_arn,
        refresh::spawn(role.name.clone(), source, schedule.clone()),
    ))
}

impl Running {
    /// Waits until every role has its first credentials, then starts accepting on the
    /// credential listeners; the first permanent failure is the error.
    pub async fn ready(&self) -> Result<()> {
        for (role, _) in &self.roles {
            role.state()
                .handle
                .clone()
                .first()
                .await
                .map_err(|e| Error::Other(format!("role {}: {e}", role.name)))?;
        }
        let pending: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for (socket, site) in pending {
            tasks.push(tokio::spawn(http::accept_loop(
                socket,
                site,
                self.accepting.clone(),
            )));
        }
        Ok(())
    }

    /// Whether every role's refresher is running (for the watchdog).
    pub fn alive(&self) -> bool {
        self.roles.iter().all(|(r, _)| r.state().handle.alive())
    }

    /// A one-line summary for systemd's `STATUS=`: each role and when its credentials
    /// expire.
    pub fn status(&self) -> String {
        let now = time::OffsetDateTime::now_utc();
        let parts: Vec<String> = self
            .roles
            .iter()
            .map(|(role, _)| match role.state().handle.current(now) {
                Ok(c) => format!(
                    "{} until {}",
                    role.name,
                    crate::identity::rfc3339(c.expiration)
                ),
                Err(e) => format!("{}: {e}", role.name),
            })
            .collect();
        format!("serving {} role(s): {}", parts.len(), parts.join("; "))
    }

    /// What to tell the user once ready: per role, the variables that point an SDK at it.
    pub fn instructions(&self) -> String {
        let mut out = String::new();
        let several = self.roles.len() > 1;
        for (role, ecs_plan) in &self.roles {
            if several {
                out.push_str(&format!(
                    "Role {} ({}):\n",
                    role.name,
                    role.state().role_arn
                ));
            }
            for listener in &self.listeners {
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

    /// Applies a new plan's role settings (identity files, ARNs, session settings): each
    /// role of the same name gets a new refresher, swapped in once it has credentials, so
    /// no request fails; a role whose new settings fail keeps its current ones. Listener
    /// changes, and added or removed roles, need a restart. Returns what could not be
    /// applied, one line each.
    pub async fn reload(&self, plan: Plan) -> Vec<String> {
        let mut problems = Vec::new();
        let same_listeners = plan.listeners.len() == self.listeners.len()
            && plan
                .listeners
                .iter()
                .zip(&self.listeners)
                .all(|(new, old)| new.endpoint == old.endpoint);
        if !same_listeners || plan.ops.as_ref() != self.ops.as_ref().map(|o| &o.endpoint) {
            problems.push("listener changes take effect only after a restart".to_owned());
        }
        for (role, _) in &self.roles {
            if !plan.roles.iter().any(|r| r.name == role.name) {
                problems.push(format!(
                    "role {} is still served until a restart",
                    role.name
                ));
            }
        }
        for new in &plan.roles {
            let Some((role, _)) = self.roles.iter().find(|(r, _)| r.name == new.name) else {
                problems.push(format!(
                    "role {} is new: it is served after a restart",
                    new.name
                ));
                continue;
            };
            let state = match start_role(new, &self.schedule) {
                Ok(state) => state,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let first = tokio::time::timeout(RELOAD_TIMEOUT, state.handle.clone().first()).await;
            match first {
                Ok(Ok(_)) => {
                    role.replace(state);
                    tracing::info!(role = %role.name, "role reloaded");
                }
                Ok(Err(e)) => problems.push(format!(
                    "role {}: {e}; keeping the current credentials",
                    role.name
                )),
                Err(_) => problems.push(format!(
                    "role {}: no credentials within {} s; keeping the current ones",
                    role.name,
                    RELOAD_TIMEOUT.as_secs()
                )),
            }
        }
        problems
    }

    /// Stops accepting, lets requests under way finish (closing idle connections) for at
    /// most `grace`, and removes the token files.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.send_replace(true);
        self.stop_accepting();
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, self.connections.acquire_many(all))
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
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    fn remove_token_files(&self) {
        for file in self
            .token_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_accepting();
        self.remove_token_files();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use refresh::{State, Unavailable};

    fn ready(received: time::OffsetDateTime, lifetime: time::Duration) -> RoleState {
        let expiration = received + lifetime;
        let credentials = Credentials {
            access_key_id: "ASIAEXAMPLE".to_owned(),
            secret_access_key: Secret::from("secret".to_owned()),
            session_token: Secret::from("token".to_owned()),
            expiration,
            expiration_text: crate::identity::rfc3339(expiration),
            role_arn: "arn:aws:iam::111122223333:role/app".to_owned(),
        };
        let handle = Handle::fixed(State::Ready {
            credentials: Arc::new(credentials),
            received,
            last_error: None,
        });
        RoleState::new(
            "app".to_owned(),
            "arn:aws:iam::111122223333:role/app".to_owned(),
            handle,
        )
    }

    #[test]
    fn rendered_documents_are_served_until_the_floor_and_never_past_it() {
        let received = time::OffsetDateTime::now_utc();
        // One hour: handed out until five minutes before expiry.
        let state = ready(received, time::Duration::hours(1));
        let at = |offset: time::Duration| SystemTime::from(received + offset);
        let first = state.documents(at(time::Duration::minutes(1))).unwrap();
        let cached = state.documents(at(time::Duration::minutes(54))).unwrap();
        assert!(
            Arc::ptr_eq(&first, &cached),
            "rendered once per set of credentials"
        );
        assert!(
            state
                .documents(at(time::Duration::seconds(55 * 60 - 1)))
                .is_ok()
        );
        for late in [55, 60, 61] {
            assert!(
                matches!(
                    state.documents(at(time::Duration::minutes(late))),
                    Err(Unavailable::Stale(_))
                ),
                "{late} minutes after receipt"
            );
        }
    }
}
