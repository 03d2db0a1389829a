//! `serve`: keeps each role's credentials fresh in memory (one [`refresh`](crate::refresh)
//! engine per role) and hands them to SDKs on the host through the protocols they already
//! speak: an IMDSv2-compatible endpoint (one role per listener, at the root paths) and
//! ECS container-credentials paths (any number of roles per listener, each behind its own
//! token).
//!
//! [`start`] binds every listener before anything else, so a taken port fails at once;
//! [`Running::ready`] then waits for every role's first credentials, so the daemon reports
//! ready only when it can answer, and a permanent error (a refused certificate, a wrong
//! ARN) stops it with the service's message instead of serving errors forever.

pub mod ecs;
pub mod http;
pub mod imds;
pub mod plan;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::Request;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::refresh::{self, Handle, Schedule, SessionSource};
use crate::rolesanywhere::Client;
use crate::secret::Secret;
use http::Reply;
pub use plan::{EcsPlan, ListenerPlan, Plan, RolePlan};

/// How many tokens one IMDS listener keeps. SDKs take one per process for up to six hours;
/// a token is about 100 bytes, so the bound costs little and is far above real use.
const TOKEN_CAPACITY: usize = 4096;

/// A role as the listeners see it.
pub struct ServedRole {
    /// The configured name: the ECS path and the log field.
    pub name: String,
    /// The name IMDS lists: the last component of the role ARN, as EC2 and the official
    /// helper give it.
    pub imds_name: String,
    pub role_arn: String,
    pub handle: Handle,
}

/// One listener's routes.
pub struct Site {
    imds: Option<Arc<ServedRole>>,
    tokens: imds::TokenStore,
    ecs: Vec<(String, Arc<ServedRole>, Secret)>,
}

impl Site {
    fn answer<B>(&self, request: &Request<B>) -> Reply {
        let path = request.uri().path();
        let (method, headers) = (request.method(), request.headers());
        if imds::owns(path) {
            return match &self.imds {
                Some(role) => imds::handle(role, &self.tokens, method, path, headers),
                None => Reply::not_found(),
            };
        }
        match self.ecs.iter().find(|(p, _, _)| p == path) {
            Some((_, role, token)) => ecs::handle(role, token, method, headers),
            None => Reply::not_found(),
        }
    }
}

/// A listener after binding.
pub struct Bound {
    pub addr: SocketAddr,
    /// The role served over IMDS here, if any.
    pub imds: Option<Arc<ServedRole>>,
    /// The roles served over ECS here, with their paths.
    pub ecs: Vec<(String, Arc<ServedRole>)>,
}

impl Bound {
    /// The base URL clients use, with a loopback host when bound to all addresses.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }
}

/// The daemon, running.
pub struct Running {
    pub listeners: Vec<Bound>,
    pub roles: Vec<(Arc<ServedRole>, Option<EcsPlan>)>,
    tasks: Vec<JoinHandle<()>>,
    token_files: Vec<PathBuf>,
}

/// Binds the listeners, starts one refresher per role, writes the ECS token files and
/// starts serving. Must run inside a tokio runtime.
pub async fn start(plan: Plan, schedule: Schedule) -> Result<Running> {
    let mut sockets = Vec::with_capacity(plan.listeners.len());
    for listener in &plan.listeners {
        let socket = http::bind(listener.addr, listener.hop_limit)
            .map_err(|e| Error::Other(format!("cannot listen on {}: {e}", listener.addr)))?;
        sockets.push(socket);
    }

    let mut roles = Vec::with_capacity(plan.roles.len());
    let mut tokens = Vec::with_capacity(plan.roles.len());
    let mut token_files = Vec::new();
    for role in plan.roles {
        let client = Client::new(role.settings.client.clone())
            .map_err(|e| Error::Usage(format!("role {}: {e}", role.name)))?;
        let imds_name = role
            .settings
            .params
            .role_arn
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let role_arn = role.settings.params.role_arn.clone();
        let source = Arc::new(SessionSource {
            identity: role.settings.identity,
            params: role.settings.params,
            client,
        });
        let handle = refresh::spawn(role.name.clone(), source, schedule.clone());
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
        roles.push((
            Arc::new(ServedRole {
                name: role.name,
                imds_name,
                role_arn,
                handle,
            }),
            role.ecs,
        ));
    }

    let limit = Arc::new(Semaphore::new(plan.max_connections.max(1)));
    let mut listeners = Vec::with_capacity(sockets.len());
    let mut tasks = Vec::with_capacity(sockets.len());
    for (listener, socket) in plan.listeners.iter().zip(sockets) {
        let addr = socket
            .local_addr()
            .map_err(|e| Error::Other(format!("cannot read the bound address: {e}")))?;
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
            addr,
            imds: imds.clone(),
            ecs: ecs.iter().map(|(p, r, _)| (p.clone(), r.clone())).collect(),
        });
        let site = Arc::new(Site {
            imds,
            tokens: imds::TokenStore::new(TOKEN_CAPACITY),
            ecs,
        });
        tasks.push(tokio::spawn(http::accept_loop(socket, site, limit.clone())));
    }
    Ok(Running {
        listeners,
        roles,
        tasks,
        token_files,
    })
}

impl Running {
    /// Waits until every role has its first credentials; the first permanent failure is
    /// the error.
    pub async fn ready(&self) -> Result<()> {
        for (role, _) in &self.roles {
            role.handle
                .clone()
                .first()
                .await
                .map_err(|e| Error::Other(format!("role {}: {e}", role.name)))?;
        }
        Ok(())
    }

    /// What to tell the user once ready: per role, the variables that point an SDK at it.
    pub fn instructions(&self) -> String {
        let mut out = String::new();
        let several = self.roles.len() > 1;
        for (role, ecs_plan) in &self.roles {
            if several {
                out.push_str(&format!("Role {} ({}):\n", role.name, role.role_arn));
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

    /// Stops serving and removes the token files.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for file in self.token_files.drain(..) {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}
