//! `serve`: the daemon. It validates everything, binds its listeners, waits for every
//! role's first credentials, says where SDKs should look, and serves until SIGINT or
//! SIGTERM, when it removes its ECS token files.

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::refresh::Schedule;
use crate::serve;
use crate::signals::StopSignals;

pub fn run(args: &ServeArgs) -> Result<()> {
    let plan = serve::plan::from_args(args, |k| std::env::var(k).ok())?;
    for role in &plan.roles {
        if role.settings.client.insecure_skip_verify {
            tracing::warn!(role = %role.name, "--no-verify-ssl: the endpoint's TLS certificate is not verified");
        }
    }
    // Two workers: requests are tiny and CPU-light, and a small fixed pool keeps the
    // resident size flat on hosts with many cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut stop = StopSignals::install()?;
        let running = serve::start(plan, Schedule::default()).await?;
        tokio::select! {
            ready = running.ready() => ready?,
            () = stop.recv() => return Ok(()),
        }
        // The official helper's startup lines, then this daemon's own.
        for listener in &running.listeners {
            eprintln!("Local server started on port: {}", listener.addr.port());
        }
        eprint!(
            "Make it available to the sdk by running:\n{}",
            running.instructions()
        );
        eprintln!(
            "serving credentials for {} role(s); stop with Ctrl-C or SIGTERM",
            running.roles.len()
        );
        stop.recv().await;
        tracing::info!("stopping");
        running.shutdown();
        Ok(())
    })
}
