//! Reload: the running daemon takes a new plan as a whole. Roles and listeners come and
//! go, and every setting of the file takes effect, while requests to the roles and
//! listeners that stay never fail:
//!
//! - every role of the new plan gets a new refresher (so renewed certificate and key files
//!   are read), swapped in only once it has credentials; until then the current ones are
//!   served. A role whose new settings yield none within [`RELOAD_TIMEOUT`] keeps its
//!   current refresher, and a new one is not added;
//! - a listener that stays keeps its socket, its open connections and its IMDS tokens; it
//!   gets new routes in one swap. A new listener is bound before anything changes (a port
//!   that is taken refuses the whole reload); a removed one stops accepting;
//! - an ECS token stays as long as its file and group do, so clients holding it go on;
//! - the pacing (`pacing_rate`, `pacing_burst`, `start_window`, `fleet_slot`,
//!   `fleet_rate`) is the exception: the buckets and slots that every refresher shares stay
//!   as they were started, and a reload that changes them says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::daemon_socket;
use super::role::{RoleState, ServedRole};
use super::running::{
    LiveListener, LiveRole, Running, new_token, open, ops_connections, ops_routes, site_for,
    start_role,
};
use super::site::{Site, Swappable};
use crate::config::{Endpoint, Plan};
use crate::error::Result;

/// How long a reloaded role's first CreateSession may take, once its turn has come (see
/// [`Schedule::first_fetches_within`](crate::refresh::Schedule::first_fetches_within)),
/// before the reload gives up on it and the role keeps its current credentials.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

impl Running {
    /// Applies `plan`. Returns what could not be applied, one line each; an error means
    /// nothing changed. One reload at a time: the caller serialises them.
    pub async fn reload(&self, plan: Plan) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        if plan.pacing != self.pacing {
            problems.push(
                "pacing_rate, pacing_burst, start_window, fleet_slot and fleet_rate take effect at the next restart; the running ones stay".to_owned(),
            );
        }
        let mut daemon_sockets = {
            let served = self.lock();
            let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            daemon_socket::open_new_files(&plan.daemon_sockets, &served.daemon_sockets, &spare)?
        };
        let mut sockets = match self.open_new_sockets(&plan) {
            Ok(sockets) => sockets,
            Err(e) => {
                for socket in &mut daemon_sockets {
                    socket.close();
                }
                return Err(e);
            }
        };
        {
            let served = self.lock();
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            daemon_socket::take_passed(
                &plan.daemon_sockets,
                &served.daemon_sockets,
                &mut spare,
                &mut daemon_sockets,
                &mut problems,
            );
        }

        // New refreshers for every role, fetching as the pacing lets them (a fleet whose
        // config is pushed everywhere at once must not call together); each is waited for
        // until one shared deadline.
        let mut starting: Vec<Option<RoleState>> = Vec::with_capacity(plan.roles.len());
        for role in &plan.roles {
            match start_role(role, &self.schedule) {
                Ok(state) => starting.push(Some(state)),
                Err(e) => {
                    problems.push(format!("role {}: {e}", role.name));
                    starting.push(None);
                }
            }
        }
        let deadline = tokio::time::Instant::now()
            + RELOAD_TIMEOUT
            + self.schedule.first_fetches_within(plan.roles.len());
        for (role, state) in plan.roles.iter().zip(&mut starting) {
            let Some(ready) = state.as_ref() else {
                continue;
            };
            let outcome = tokio::time::timeout_at(deadline, ready.handle.clone().first()).await;
            let problem = match outcome {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => format!("role {}: {e}", role.name),
                Err(_) => format!("role {}: no credentials in time", role.name),
            };
            problems.push(problem);
            *state = None;
        }

        let mut guard = self.lock();
        let served = &mut *guard;
        // The roles of the new plan, by index; `None` for a new role that got nothing.
        let mut old_roles: Vec<LiveRole> = std::mem::take(&mut served.roles);
        let mut roles: Vec<LiveRole> = Vec::with_capacity(plan.roles.len());
        let mut index_of: Vec<Option<usize>> = Vec::with_capacity(plan.roles.len());
        for (role_plan, state) in plan.roles.iter().zip(starting) {
            let old = old_roles
                .iter()
                .position(|r| r.role.name == role_plan.name)
                .map(|i| old_roles.swap_remove(i));
            let live = match (old, state) {
                (Some(old), Some(state)) => {
                    old.role.replace(state);
                    tracing::info!(role = %role_plan.name, "role reloaded");
                    Some(old)
                }
                (Some(old), None) => {
                    problems.push(format!(
                        "role {}: keeping the current credentials and settings",
                        role_plan.name
                    ));
                    Some(old)
                }
                (None, Some(state)) => {
                    tracing::info!(role = %role_plan.name, "role added");
                    Some(LiveRole {
                        role: Arc::new(ServedRole::new(role_plan.name.clone(), state)),
                        ecs: None,
                    })
                }
                (None, None) => None,
            };
            let Some(mut live) = live else {
                index_of.push(None);
                continue;
            };
            if let Err(e) = self.retoken(&mut live, role_plan) {
                problems.push(e.to_string());
            }
            index_of.push(Some(roles.len()));
            roles.push(live);
        }
        for gone in old_roles {
            tracing::info!(role = %gone.role.name, "role removed");
            if let Some((ecs, _)) = gone.ecs {
                let _ = std::fs::remove_file(ecs.token_file);
            }
        }
        served.roles = roles;
        served.allowed_hosts = Arc::new(plan.allowed_hosts.clone());
        served.cert_expiry_warning_days = plan.cert_expiry_warning_days;

        // The listeners: those that stay get new routes; new ones start; gone ones stop.
        let by_index: Vec<Option<&LiveRole>> = index_of
            .iter()
            .map(|i| i.map(|i| &served.roles[i]))
            .collect();
        let mut listeners = Vec::with_capacity(plan.listeners.len());
        let mut old_listeners = std::mem::take(&mut served.listeners);
        for (index, listener_plan) in plan.listeners.iter().enumerate() {
            let kept = old_listeners
                .iter()
                .position(|l| l.endpoint == listener_plan.endpoint)
                .map(|i| old_listeners.swap_remove(i));
            let mut live = match kept {
                Some(live) => live,
                None => match sockets
                    .iter()
                    .position(|(e, _)| *e == listener_plan.endpoint)
                {
                    Some(i) => {
                        let (endpoint, socket) = sockets.swap_remove(i);
                        tracing::info!(listener = %endpoint, "listener added");
                        LiveListener::new(endpoint, listener_plan.hop_limit, socket)
                    }
                    None => {
                        // Only the ops listener's address can be neither kept nor new.
                        problems.push(format!(
                            "listener {}: the address is the ops listener's; move one of them, or restart",
                            listener_plan.endpoint
                        ));
                        continue;
                    }
                },
            };
            if live.hop_limit != listener_plan.hop_limit
                && let Err(e) = live.set_hop_limit(listener_plan.hop_limit)
            {
                problems.push(format!(
                    "listener {}: cannot set the hop limit: {e}",
                    live.endpoint
                ));
            }
            let tokens = live
                .routes
                .as_ref()
                .map_or_else(Site::new_tokens, |r| r.current().tokens.clone());
            let site = site_for(
                &plan,
                index,
                &by_index,
                &served.allowed_hosts,
                tokens,
                &self.metrics,
            );
            match &live.routes {
                Some(routes) => routes.replace(site),
                None => live.routes = Some(Arc::new(Swappable::new(site))),
            }
            if self.accepting.load(Ordering::SeqCst)
                && let Some(routes) = live.routes.clone()
            {
                live.accept(routes, self.connections.clone());
            }
            listeners.push(live);
        }
        for mut gone in old_listeners {
            tracing::info!(listener = %gone.endpoint, "listener removed");
            gone.close();
            // Connections still open there get nothing more.
            if let Some(routes) = &gone.routes {
                routes.replace(Site::new(
                    served.allowed_hosts.clone(),
                    None,
                    Site::new_tokens(),
                    Vec::new(),
                    self.metrics.clone(),
                ));
            }
        }
        served.listeners = listeners;
        served.daemon_sockets = daemon_socket::reconcile(
            std::mem::take(&mut served.daemon_sockets),
            daemon_sockets,
            &plan.daemon_sockets,
            &|i| by_index[i].map(|r| r.role.clone()),
            self.accepting
                .load(Ordering::SeqCst)
                .then_some((&self.connections, &self.metrics)),
            &mut problems,
        );
        self.reload_ops(served, &plan, &mut sockets);
        self.resize(plan.max_connections);
        Ok(problems)
    }

    /// Binds the TCP sockets and takes the passed sockets that `plan` adds, before
    /// anything changes: if one cannot be had, the reload is refused as a whole.
    fn open_new_sockets(&self, plan: &Plan) -> Result<Vec<(Endpoint, super::http::Listener)>> {
        let served = self.lock();
        let bound: Vec<&Endpoint> = served
            .listeners
            .iter()
            .chain(served.ops.as_ref())
            .map(|l| &l.endpoint)
            .collect();
        let wanted = plan
            .listeners
            .iter()
            .map(|l| (&l.endpoint, l.hop_limit))
            .chain(
                plan.ops
                    .as_ref()
                    .map(|e| (e, crate::config::plan::DEFAULT_HOP_LIMIT)),
            );
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let mut new: Vec<(&Endpoint, u32)> = Vec::new();
        for (endpoint, hops) in wanted {
            if bound.contains(&endpoint) || new.iter().any(|(e, _)| *e == endpoint) {
                continue;
            }
            if let Endpoint::Activated(name) = endpoint
                && !spare.iter().any(|a| &a.name == name)
            {
                return Err(crate::error::Error::System {
                    what: format!("the socket {endpoint}"),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no unused socket of that name was passed by socket activation",
                    ),
                });
            }
            new.push((endpoint, hops));
        }
        // Addresses to bind first, since binding can fail; passed sockets are taken last,
        // when nothing can fail any more, so that a refused reload keeps them for later.
        new.sort_by_key(|(e, _)| matches!(e, Endpoint::Activated(_)));
        let mut opened = Vec::with_capacity(new.len());
        for (endpoint, hops) in new {
            opened.push((endpoint.clone(), open(endpoint, hops, &mut spare)?));
        }
        Ok(opened)
    }

    /// Gives `live` the ECS token its new plan wants: the same while its file and group
    /// are, a new one written to the new file otherwise.
    fn retoken(&self, live: &mut LiveRole, plan: &crate::config::RolePlan) -> Result<()> {
        let same = match (&live.ecs, &plan.ecs) {
            (Some((old, _)), Some(new)) => old == new,
            (None, None) => true,
            _ => false,
        };
        if same {
            return Ok(());
        }
        if let Some((old, _)) = live.ecs.take()
            && plan
                .ecs
                .as_ref()
                .is_none_or(|new| new.token_file != old.token_file)
        {
            let _ = std::fs::remove_file(old.token_file);
        }
        if let Some(new) = &plan.ecs {
            live.ecs = Some((new.clone(), new_token(&plan.name, new)?));
        }
        Ok(())
    }

    /// The ops listener of the new plan: moved, added, removed, and its routes renewed.
    fn reload_ops(
        &self,
        served: &mut super::running::Served,
        plan: &Plan,
        sockets: &mut Vec<(Endpoint, super::http::Listener)>,
    ) {
        if served.ops.as_ref().map(|o| &o.endpoint) != plan.ops.as_ref() {
            if let Some(mut gone) = served.ops.take() {
                gone.close();
            }
            served.ops_routes = None;
            if let Some(endpoint) = &plan.ops
                && let Some(i) = sockets.iter().position(|(e, _)| e == endpoint)
            {
                let (endpoint, socket) = sockets.swap_remove(i);
                served.ops = Some(LiveListener::new(
                    endpoint,
                    crate::config::plan::DEFAULT_HOP_LIMIT,
                    socket,
                ));
            }
        }
        let routes = ops_routes(&served.roles, &served.listeners, &self.metrics);
        match (&served.ops_routes, served.ops.as_mut()) {
            (Some(current), _) => current.replace(routes),
            (None, Some(ops)) => {
                let routes = Arc::new(Swappable::new(routes));
                ops.accept(routes.clone(), ops_connections(&self.connections));
                served.ops_routes = Some(routes);
            }
            (None, None) => {}
        }
    }

    /// Changes the bound on connections held at once. Fewer permits take effect as
    /// connections close.
    fn resize(&self, max_connections: usize) {
        let new = max_connections.max(1);
        let old = self.max_connections.swap(new, Ordering::SeqCst);
        if new > old {
            self.connections.limit.add_permits(new - old);
        } else if new < old {
            let limit = self.connections.limit.clone();
            let mut owed = old - new;
            owed -= limit.forget_permits(owed);
            if owed > 0 {
                // The rest as connections close: hold their permits for good.
                tokio::spawn(async move {
                    if let Ok(permits) = limit.acquire_many(owed as u32).await {
                        permits.forget();
                    }
                });
            }
        }
    }
}
