//! Counters for `/metrics`, kept in fixed arrays of atomics so that counting a request costs
//! one relaxed add and no lock on the serving path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::http::StatusCode;

/// What a request asked for, as a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Token,
    RoleList,
    Credentials,
    Ecs,
    Other,
}

impl Route {
    const ALL: [Route; 5] = [
        Route::Token,
        Route::RoleList,
        Route::Credentials,
        Route::Ecs,
        Route::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Route::Token => "imds_token",
            Route::RoleList => "imds_role_list",
            Route::Credentials => "imds_credentials",
            Route::Ecs => "ecs_credentials",
            Route::Other => "other",
        }
    }
}

/// Every status the listeners answer with; anything else counts as `other`.
const STATUSES: [u16; 8] = [200, 400, 401, 403, 404, 405, 503, 0];

/// How a daemon socket request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketOutcome {
    /// Credentials handed out.
    Credentials,
    /// An error line: no such role, no servable credentials, a malformed request.
    Error,
    /// A peer off the allow list.
    Refused,
}

impl SocketOutcome {
    const ALL: [SocketOutcome; 3] = [
        SocketOutcome::Credentials,
        SocketOutcome::Error,
        SocketOutcome::Refused,
    ];

    fn label(self) -> &'static str {
        match self {
            SocketOutcome::Credentials => "credentials",
            SocketOutcome::Error => "error",
            SocketOutcome::Refused => "refused",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; Route::ALL.len()],
    socket_requests: [AtomicU64; SocketOutcome::ALL.len()],
}

impl Metrics {
    pub fn record(&self, route: Route, status: StatusCode) {
        let column = STATUSES
            .iter()
            .position(|s| *s == status.as_u16())
            .unwrap_or(STATUSES.len() - 1);
        self.requests[route as usize][column].fetch_add(1, Ordering::Relaxed);
    }

    /// A daemon socket request ended with `outcome`.
    pub fn record_socket(&self, outcome: SocketOutcome) {
        self.socket_requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The request counter families (HTTP listeners, daemon sockets), in Prometheus text
    /// format.
    pub fn render_requests(&self, out: &mut String) {
        out.push_str(
            "# HELP rolesanywhere_http_requests_total Requests answered, by route and status.\n",
        );
        out.push_str("# TYPE rolesanywhere_http_requests_total counter\n");
        for route in Route::ALL {
            for (column, status) in STATUSES.iter().enumerate() {
                let count = self.requests[route as usize][column].load(Ordering::Relaxed);
                if count > 0 {
                    let status = if *status == 0 {
                        "other".to_owned()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "rolesanywhere_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                        route.label()
                    );
                }
            }
        }
        out.push_str(
            "# HELP rolesanywhere_daemon_socket_requests_total Daemon socket requests, by outcome.\n",
        );
        out.push_str("# TYPE rolesanywhere_daemon_socket_requests_total counter\n");
        for outcome in SocketOutcome::ALL {
            let count = self.socket_requests[outcome as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "rolesanywhere_daemon_socket_requests_total{{outcome=\"{}\"}} {count}",
                outcome.label()
            );
        }
    }
}

/// Escapes a label value for the Prometheus text format.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status() {
        let metrics = Metrics::default();
        metrics.record(Route::Token, StatusCode::OK);
        metrics.record(Route::Token, StatusCode::OK);
        metrics.record(Route::Ecs, StatusCode::FORBIDDEN);
        metrics.record(Route::Other, StatusCode::IM_A_TEAPOT);
        let mut out = String::new();
        metrics.render_requests(&mut out);
        assert!(out.contains(
            "rolesanywhere_http_requests_total{route=\"imds_token\",status=\"200\"} 2\n"
        ));
        assert!(out.contains("{route=\"ecs_credentials\",status=\"403\"} 1\n"));
        assert!(out.contains("{route=\"other\",status=\"other\"} 1\n"));
        metrics.record_socket(SocketOutcome::Refused);
        let mut out = String::new();
        metrics.render_requests(&mut out);
        assert!(
            out.contains("rolesanywhere_daemon_socket_requests_total{outcome=\"refused\"} 1\n")
        );
        assert!(
            out.contains("rolesanywhere_daemon_socket_requests_total{outcome=\"credentials\"} 0\n")
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
