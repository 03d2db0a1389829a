//! `serve`: the daemon. It validates everything, binds its listeners (or takes the sockets
//! systemd passed), waits for every role's first credentials, says where SDKs should look
//! (and tells systemd `READY=1`), then serves until SIGINT or SIGTERM: it pings the
//! systemd watchdog while every refresher is alive, reloads on SIGHUP, warns daily about
//! certificates close to expiry, and on stop lets requests under way finish before it
//! removes its ECS token files.

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::cli::ServeArgs;
use crate::config::{self, Inputs, Plan};
use crate::error::{Error, Result};
use crate::refresh::Schedule;
use crate::serve::{self, Running};
use crate::signals::StopSignals;
use crate::systemd::{self, Activated};

/// How long requests under way may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);
/// How often certificate expiry is checked.
const CERT_CHECK: Duration = Duration::from_secs(24 * 3600);
/// How long clients that connect before the first credentials wait for them (long enough
/// for a first CreateSession, so that socket activation answers its first client); later
/// ones are answered at once, with what is known.
const START_GRACE: Duration = Duration::from_secs(5);
/// How often the status is told to systemd while roles wait for their first credentials.
const STARTING_STATUS: Duration = Duration::from_secs(1);

pub fn run(args: &ServeArgs, inputs: &Inputs) -> Result<()> {
    let activated = systemd::activated().map_err(Error::system("socket activation"))?;
    let names: Vec<String> = activated.iter().map(|a| a.name.clone()).collect();
    let plan = plan(args, inputs, &names)?;
    let runtime = super::runtime()?;
    let result = runtime.block_on(serve(args, inputs, names, plan, activated));
    // A key read or a signature still under way on the blocking pool (a hung network file
    // system, a smart card that does not answer) must not hold up the exit.
    runtime.shutdown_timeout(super::BLOCKING_GRACE);
    result
}

/// The plan of the flags and config file, fitted to this process's open-file limit.
fn plan(args: &ServeArgs, inputs: &Inputs, names: &[String]) -> Result<Plan> {
    let mut plan = config::serve_plan(args, inputs, names)?;
    plan.max_connections = fit_open_file_limit(plan.max_connections);
    for role in &plan.roles {
        if role.settings.client.insecure_skip_verify {
            tracing::warn!(role = %role.name, "--no-verify-ssl: the endpoint's TLS certificate is not verified");
        }
    }
    Ok(plan)
}

async fn serve(
    args: &ServeArgs,
    inputs: &Inputs,
    names: Vec<String>,
    plan: Plan,
    activated: Vec<Activated>,
) -> Result<()> {
    let mut stop = StopSignals::install()?;
    let mut hangup =
        signal(SignalKind::hangup()).map_err(Error::system("cannot install the SIGHUP handler"))?;
    let schedule = schedule_for(&plan.pacing);
    let running = Arc::new(serve::start(plan, schedule, activated).await?);
    if !wait_ready(&running, &mut stop).await? {
        running.shutdown(GRACE).await;
        return Ok(());
    }
    announce(&running);
    notify(&format!("READY=1\nSTATUS={}", running.status()));

    let watchdog = systemd::watchdog_interval();
    let mut ping = tokio::time::interval(watchdog.map_or(Duration::from_secs(3600), |w| w / 2));
    let mut cert_check = tokio::time::interval(CERT_CHECK);
    // One reload at a time; SIGHUPs meanwhile make one more afterwards, so that the last
    // edit of the file always takes effect.
    let mut reload: Option<JoinHandle<()>> = None;
    let mut again = false;
    let start_reload = || {
        tokio::spawn(reload_plan(
            args.clone(),
            inputs.clone(),
            names.clone(),
            running.clone(),
        ))
    };
    loop {
        tokio::select! {
            () = stop.recv() => break,
            _ = hangup.recv() => {
                if reload.is_some() {
                    again = true;
                } else {
                    reload = Some(start_reload());
                }
            }
            _ = async { reload.as_mut().expect("guarded").await }, if reload.is_some() => {
                reload = again.then(start_reload);
                again = false;
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
            _ = cert_check.tick() => warn_on_certificate_expiry(&running),
        }
    }
    notify("STOPPING=1");
    tracing::info!("stopping: finishing requests under way");
    if let Some(task) = reload {
        task.abort();
    }
    running.shutdown(GRACE).await;
    Ok(())
}

/// Waits for every role's first credentials, telling systemd how the roles are doing
/// meanwhile (a key file that is not there yet, a token not plugged in: retried with
/// backoff). Clients that connect meanwhile wait in the listen queue for at most
/// [`START_GRACE`]; after that they are answered with each role's state, so that a client
/// without a timeout of its own does not hang. False if a stop signal came first.
async fn wait_ready(running: &Running, stop: &mut StopSignals) -> Result<bool> {
    let ready = running.ready();
    tokio::pin!(ready);
    let mut status = tokio::time::interval(STARTING_STATUS);
    let grace = tokio::time::sleep(START_GRACE);
    tokio::pin!(grace);
    let mut answering = false;
    let mut told = String::new();
    loop {
        tokio::select! {
            result = &mut ready => return result.map(|()| true),
            () = stop.recv() => return Ok(false),
            () = &mut grace, if !answering => {
                running.accept();
                answering = true;
            }
            _ = status.tick() => {
                let now = format!("starting: {}", running.status());
                if now != told {
                    notify(&format!("STATUS={now}"));
                    told = now;
                }
            }
        }
    }
}

/// The official helper's startup lines, then this daemon's own.
fn announce(running: &Running) {
    for listener in running.listeners() {
        match listener.tcp {
            Some(addr) => eprintln!("Local server started on port: {}", addr.port()),
            None => eprintln!("Local server started on {}", listener.url()),
        }
    }
    for socket in running.daemon_sockets() {
        if socket.starts_with("fd:") {
            eprintln!("Daemon socket: {socket}, passed by systemd (clients use its path)");
        } else {
            eprintln!("Daemon socket: credential-process --daemon-socket {socket}");
        }
    }
    if let Some(ops) = running.ops() {
        eprintln!("Health and metrics: {0}/healthz and {0}/metrics", ops.url());
    }
    eprint!(
        "Make it available to the sdk by running:\n{}",
        running.instructions()
    );
    eprintln!(
        "serving credentials for {} role(s); stop with Ctrl-C or SIGTERM, reload with SIGHUP",
        running.roles().len()
    );
}

/// SIGHUP: read the flags' files and the config file again, and apply the new plan as a
/// whole; a plan that does not validate is refused with one line, and nothing changes.
async fn reload_plan(args: ServeArgs, inputs: Inputs, names: Vec<String>, running: Arc<Running>) {
    notify("RELOADING=1");
    tracing::info!("SIGHUP: reloading");
    let applied = match plan(&args, &inputs, &names) {
        Ok(plan) => running.reload(plan).await,
        Err(e) => Err(e),
    };
    match applied {
        Ok(problems) => {
            for problem in problems {
                tracing::warn!("reload: {problem}");
            }
        }
        Err(e) => tracing::error!("reload refused, nothing changed: {e}"),
    }
    notify(&format!("READY=1\nSTATUS={}", running.status()));
}

fn warn_on_certificate_expiry(running: &Running) {
    let days = running.cert_expiry_warning_days();
    let now = time::OffsetDateTime::now_utc();
    for (role, _) in running.roles() {
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

/// The refreshers' schedule for the configured pacing (one set of buckets for the daemon).
fn schedule_for(pacing: &config::PacingPlan) -> Schedule {
    Schedule {
        start_window: pacing.start_window,
        pacers: Arc::new(crate::refresh::Pacers::with_fleet(
            crate::refresh::Pacing {
                rate: pacing.rate,
                burst: pacing.burst,
            },
            pacing.fleet,
        )),
        ..Schedule::default()
    }
}

/// Tells systemd, when run under it; a failure to notify is logged, never fatal.
fn notify(state: &str) {
    if let Err(e) = systemd::notify(state) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}
