//! What one credentials listener answers: its IMDS role and token store, its ECS paths,
//! the Host names it accepts. A reload builds a new [`Site`] and swaps it in behind the
//! listener's [`Swappable`], so the listener and its open connections stay.

use std::sync::{Arc, RwLock};

use hyper::Request;
use hyper::body::Incoming;

use super::asked;
use super::ecs;
use super::host;
use super::http::{Reply, Routes};
use super::imds;
use super::metrics::{Metrics, Route};
use super::role::ServedRole;
use crate::secret::Secret;

/// How many tokens one IMDS listener keeps. SDKs take one per process for up to six hours;
/// a token is about 100 bytes, so the bound costs little and is far above real use.
pub const TOKEN_CAPACITY: usize = 4096;

/// One credentials listener's routes.
pub struct Site {
    allowed_hosts: Arc<Vec<String>>,
    imds: Option<Arc<ServedRole>>,
    /// Shared with the listener's next site after a reload: tokens SDKs hold stay valid.
    pub(crate) tokens: Arc<imds::TokenStore>,
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
        tokens: Arc<imds::TokenStore>,
        ecs: Vec<(String, Arc<ServedRole>, Secret)>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            allowed_hosts,
            imds,
            tokens,
            ecs,
            metrics,
        }
    }

    /// The role served over IMDS here.
    pub(crate) fn imds_role(&self) -> Option<Arc<ServedRole>> {
        self.imds.clone()
    }

    /// The roles served over ECS here, with their paths.
    pub(crate) fn ecs_roles(&self) -> Vec<(String, Arc<ServedRole>)> {
        self.ecs
            .iter()
            .map(|(path, role, _)| (path.clone(), role.clone()))
            .collect()
    }

    /// How many IMDS tokens are live.
    pub(crate) fn live_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// A new token store of the usual capacity.
    pub(crate) fn new_tokens() -> Arc<imds::TokenStore> {
        Arc::new(imds::TokenStore::new(TOKEN_CAPACITY))
    }

    /// Issues an IMDS session token as a PUT to the token path would, for the fuzz targets.
    #[cfg(fuzzing)]
    pub(crate) fn issue_token(&self, ttl: std::time::Duration) -> String {
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

/// Routes that a reload can replace while the listener keeps accepting: each request reads
/// the current ones (an uncontended read lock, against microseconds of answer).
pub struct Swappable<R> {
    current: RwLock<Arc<R>>,
}

impl<R> Swappable<R> {
    pub fn new(routes: R) -> Self {
        Self {
            current: RwLock::new(Arc::new(routes)),
        }
    }

    pub fn current(&self) -> Arc<R> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn replace(&self, routes: R) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routes);
    }
}

impl<R: Routes> Routes for Swappable<R> {
    fn answer(&self, request: &Request<Incoming>) -> Reply {
        // Answered under the read lock, which costs less than a reference count per request;
        // a reload's write waits the microseconds an answer takes.
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.answer(request)
    }
}
