//! `serve`: the daemon. It validates everything, binds its listeners (or takes the sockets
//! systemd passed), waits for every role's first credentials, says where SDKs should look
//! (and tells systemd `READY=1`), then serves until SIGINT or SIGTERM: it pings the
//! systemd watchdog while every refresher is alive, reloads on SIGHUP, warns daily about
//! certificates close to expiry, and on stop lets requests under way finish before it
//! removes its ECS token files.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::refresh::Schedule;
use crate::serve::{self, Running};
use crate::signals::StopSignals;
use crate::systemd;

/// How long requests under way may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);
/// How often certificate expiry is checked.
const CERT_CHECK: Duration = Duration::from_secs(24 * 3600);

pub fn run(args: &ServeArgs) -> Result<()> {
    let activated =
        systemd::activated().map_err(|e| Error::Other(format!("socket activation: {e}")))?;
    let names: Vec<String> = activated.iter().map(|a| a.name.clone()).collect();
    let mut plan = serve::plan::from_args(args, |k| std::env::var(k).ok(), &names)?;
    plan.max_connections = fit_open_file_limit(plan.max_connections);
    for role in &plan.roles {
        if role.settings.client.insecure_skip_verify {
            tracing::warn!(role = %role.name, "--no-verify-ssl: the endpoint's TLS certificate is not verified");
        }
    }
    let warning_days = plan.cert_expiry_warning_days;
    // One async thread for every listener and refresh: an answer costs microseconds, so a
    // second thread adds no capacity a host needs, only hand-offs between threads (a wider
    // latency tail) and a second stack and malloc arena (resident size). Whatever may take
    // longer (loading and signing with the key, file writes) runs on the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut stop = StopSignals::install()?;
        let mut hangup = signal(SignalKind::hangup())
            .map_err(|e| Error::Other(format!("cannot install the SIGHUP handler: {e}")))?;
        let running = Arc::new(serve::start(plan, Schedule::default(), activated).await?);
        tokio::select! {
            ready = running.ready() => ready?,
            () = stop.recv() => {
                running.shutdown(GRACE).await;
                return Ok(());
            }
        }
        announce(&running);
        notify(&format!("READY=1\nSTATUS={}", running.status()));

        let watchdog = systemd::watchdog_interval();
        let mut ping = tokio::time::interval(watchdog.map_or(Duration::from_secs(3600), |w| w / 2));
        let mut cert_check = tokio::time::interval(CERT_CHECK);
        let mut reload: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                () = stop.recv() => break,
                _ = hangup.recv() => {
                    if reload.as_ref().is_some_and(|r| !r.is_finished()) {
                        tracing::warn!("SIGHUP: a reload is already under way");
                        continue;
                    }
                    reload = Some(tokio::spawn(reload_roles(args.clone(), names.clone(), running.clone())));
                }
                _ = ping.tick(), if watchdog.is_some() => {
                    // A refresher that died would leave the daemon serving errors forever:
                    // stop pinging, and systemd restarts the service.
                    if running.alive() {
                        notify(&format!("WATCHDOG=1\nSTATUS={}", running.status()));
                    } else {
                        tracing::error!("a refresher has stopped; withholding the watchdog ping");
                    }
                }
                _ = cert_check.tick() => warn_on_certificate_expiry(&running, warning_days),
            }
        }
        notify("STOPPING=1");
        tracing::info!("stopping: finishing requests under way");
        if let Some(task) = reload {
            task.abort();
        }
        running.shutdown(GRACE).await;
        Ok(())
    })
}

/// The official helper's startup lines, then this daemon's own.
fn announce(running: &Running) {
    for listener in &running.listeners {
        match listener.tcp {
            Some(addr) => eprintln!("Local server started on port: {}", addr.port()),
            None => eprintln!("Local server started on {}", listener.url()),
        }
    }
    if let Some(ops) = &running.ops {
        eprintln!("Health and metrics: {0}/healthz and {0}/metrics", ops.url());
    }
    eprint!(
        "Make it available to the sdk by running:\n{}",
        running.instructions()
    );
    eprintln!(
        "serving credentials for {} role(s); stop with Ctrl-C or SIGTERM, reload with SIGHUP",
        running.roles.len()
    );
}

/// SIGHUP: read the flags' files and the config file again and swap each role over once
/// its new settings have produced credentials.
async fn reload_roles(args: ServeArgs, names: Vec<String>, running: Arc<Running>) {
    notify("RELOADING=1");
    tracing::info!("SIGHUP: reloading");
    match serve::plan::from_args(&args, |k| std::env::var(k).ok(), &names) {
        Ok(plan) => {
            for problem in running.reload(plan).await {
                tracing::warn!("reload: {problem}");
            }
        }
        Err(e) => tracing::error!("reload failed, nothing changed: {e}"),
    }
    notify(&format!("READY=1\nSTATUS={}", running.status()));
}

fn warn_on_certificate_expiry(running: &Running, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    for (role, _) in &running.roles {
        let left = role.state().handle.stats().certificate_seconds_left(now);
        if let Some(left) = left.filter(|l| *l < i64::from(days) * 86_400) {
            tracing::warn!(
                role = %role.name,
                days_left = left / 86_400,
                "the certificate expires soon; renew it (the new files are used at the next refresh)"
            );
        }
    }
}

/// Descriptors kept free of client connections: listeners, the refreshers' connections to
/// the service, key and certificate files, the token-file writes, logging.
const RESERVED_FILES: u64 = 64;

/// Raises the soft open-file limit to the hard one, and keeps the connection bound below
/// it: a client flood must never take the descriptors a refresh needs. The common soft
/// default of 1024 is below the default bound of 4096 connections.
fn fit_open_file_limit(max_connections: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return max_connections;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let room = limit.rlim_cur.saturating_sub(RESERVED_FILES).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if max_connections > room {
        tracing::warn!(
            max_connections,
            open_file_limit = limit.rlim_cur,
            "the open-file limit leaves room for {room} connections; serving at most that many (raise LimitNOFILE= or ulimit -n)"
        );
        room
    } else {
        max_connections
    }
}

/// Tells systemd, when run under it; a failure to notify is logged, never fatal.
fn notify(state: &str) {
    if let Err(e) = systemd::notify(state) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}
