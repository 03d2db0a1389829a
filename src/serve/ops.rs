//! The ops listener (off by default): `/healthz` for load balancers and service checks,
//! `/metrics` in the Prometheus text format. It holds no credentials and needs no token;
//! it says only whether each role is healthy and when things expire.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::Request;
use hyper::body::Incoming;
use hyper::http::{Method, StatusCode};
use time::OffsetDateTime;

use super::http::{Reply, Routes};
use super::metrics::{Metrics, label};
use super::role::ServedRole;
use super::site::{Site, Swappable};

/// The ops routes over what is served now; a reload builds new ones.
pub struct Ops {
    roles: Vec<Arc<ServedRole>>,
    sites: Vec<Arc<Swappable<Site>>>,
    metrics: Arc<Metrics>,
}

impl Routes for Ops {
    fn answer(&self, request: &Request<Incoming>) -> Reply {
        let path = request.uri().path();
        if path != "/healthz" && path != "/metrics" {
            return Reply::not_found();
        }
        if request.method() != Method::GET {
            return Reply::method_not_allowed("GET");
        }
        let now = OffsetDateTime::now_utc();
        if path == "/healthz" {
            self.health(now)
        } else {
            Reply::bytes(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.render(now),
            )
        }
    }
}

impl Ops {
    pub(super) fn new(
        roles: Vec<Arc<ServedRole>>,
        sites: Vec<Arc<Swappable<Site>>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            roles,
            sites,
            metrics,
        }
    }

    /// 200 when every role holds credentials worth handing out, else 503; one line per
    /// role either way.
    fn health(&self, now: OffsetDateTime) -> Reply {
        let mut healthy = true;
        let mut body = String::new();
        for role in &self.roles {
            match role.state().handle.current(now) {
                Ok(c) => {
                    let _ = writeln!(
                        body,
                        "{}: ok, credentials until {}",
                        role.name,
                        crate::identity::rfc3339(c.expiration)
                    );
                }
                Err(e) => {
                    healthy = false;
                    let _ = writeln!(body, "{}: {e}", role.name);
                }
            }
        }
        let status = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        Reply::text(status, body)
    }

    fn render(&self, now: OffsetDateTime) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP rolesanywhere_refreshes_total CreateSession attempts by role and outcome.\n",
        );
        out.push_str("# TYPE rolesanywhere_refreshes_total counter\n");
        for role in &self.roles {
            let stats = role.state();
            let stats = stats.handle.stats();
            let name = label(&role.name);
            for (outcome, counter) in [
                ("success", &stats.successes),
                ("transient_error", &stats.transient_failures),
                ("permanent_error", &stats.permanent_failures),
            ] {
                let _ = writeln!(
                    out,
                    "rolesanywhere_refreshes_total{{role=\"{name}\",outcome=\"{outcome}\"}} {}",
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP rolesanywhere_credentials_expiry_seconds Seconds until the served credentials expire (absent while none are served).\n");
        out.push_str("# TYPE rolesanywhere_credentials_expiry_seconds gauge\n");
        for role in &self.roles {
            if let Ok(c) = role.state().handle.current(now) {
                let _ = writeln!(
                    out,
                    "rolesanywhere_credentials_expiry_seconds{{role=\"{}\"}} {}",
                    label(&role.name),
                    c.seconds_left(now)
                );
            }
        }
        out.push_str("# HELP rolesanywhere_certificate_expiry_seconds Seconds until the certificate last used expires (absent until one was used).\n");
        out.push_str("# TYPE rolesanywhere_certificate_expiry_seconds gauge\n");
        for role in &self.roles {
            if let Some(left) = role.state().handle.stats().certificate_seconds_left(now) {
                let _ = writeln!(
                    out,
                    "rolesanywhere_certificate_expiry_seconds{{role=\"{}\"}} {left}",
                    label(&role.name)
                );
            }
        }
        out.push_str("# HELP rolesanywhere_credentials_region The region whose endpoint issued the credentials served (changes with regional failover).\n");
        out.push_str("# TYPE rolesanywhere_credentials_region gauge\n");
        for role in &self.roles {
            if let Some(region) = role.state().handle.stats().region() {
                let _ = writeln!(
                    out,
                    "rolesanywhere_credentials_region{{role=\"{}\",region=\"{}\"}} 1",
                    label(&role.name),
                    label(&region)
                );
            }
        }
        out.push_str("# HELP rolesanywhere_imds_tokens Live IMDS session tokens.\n");
        out.push_str("# TYPE rolesanywhere_imds_tokens gauge\n");
        let tokens: usize = self.sites.iter().map(|s| s.current().live_tokens()).sum();
        let _ = writeln!(out, "rolesanywhere_imds_tokens {tokens}");
        self.metrics.render_requests(&mut out);
        out
    }
}
