//! `update`: writes role credentials into a profile of the shared credentials file, for
//! tools that read only that file. With `--once`, one CreateSession and one write; without,
//! the refresh engine runs and every new set is written as it arrives (at about half the
//! lifetime), until SIGINT or SIGTERM.
//!
//! Unlike the official helper, a failed refresh does not end the command: the engine
//! retries with backoff (the file keeps the last good credentials meanwhile); only a
//! permanent error on the first attempt stops it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::UpdateArgs;
use crate::config::{self, Clock, Inputs, SessionSettings, UpdatePlan};
use crate::credentials::Credentials;
use crate::credfile::{self, ProfileKeys};
use crate::error::{Error, Result};
use crate::identity::{Identity, rfc3339};
use crate::refresh::{self, Schedule, SessionSource};
use crate::signals::StopSignals;

/// How long to wait before writing again after a failed write (a full disk, a folder made
/// read-only), if no newer credentials arrive first.
const WRITE_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

pub fn run(args: &UpdateArgs, inputs: &Inputs) -> Result<()> {
    let UpdatePlan { file, roles } = config::update_plan(args, inputs)?;
    // One async thread, as in `serve`: the refresh engine loads and signs with the key on
    // the blocking pool, and the file is written there too.
    let runtime = super::runtime()?;
    let result = if args.once {
        runtime.block_on(once(&file, roles, inputs.clock))
    } else {
        runtime.block_on(keep_fresh(file, roles))
    };
    // Not waiting for a read or write still under way on the blocking pool: a stop must
    // not hang on a slow file system.
    runtime.shutdown_timeout(super::BLOCKING_GRACE);
    result
}

async fn once(file: &Path, roles: Vec<(String, SessionSettings)>, clock: Clock) -> Result<()> {
    for (profile, settings) in roles {
        let identity = Identity::load(&settings.identity, clock.now())?;
        let source = SessionSource::new(&settings)?;
        let credentials = source.credentials(&identity).await?;
        write(file.to_path_buf(), profile, Arc::new(credentials)).await?;
    }
    Ok(())
}

async fn keep_fresh(file: PathBuf, roles: Vec<(String, SessionSettings)>) -> Result<()> {
    let mut stop = StopSignals::install()?;
    let mut writers = tokio::task::JoinSet::new();
    for (profile, settings) in roles {
        let source = Arc::new(SessionSource::new(&settings)?);
        let handle = refresh::spawn(profile.clone(), source, Schedule::default());
        writers.spawn(writer(file.clone(), profile, handle));
    }
    tokio::select! {
        () = stop.recv() => Ok(()),
        // A writer ends only when its role cannot get credentials at all.
        Some(ended) = writers.join_next() => match ended {
            Ok(result) => result,
            Err(e) => Err(Error::failed("a writer task failed")(e)),
        },
    }
}

/// Writes each new set of credentials of one role to its profile.
async fn writer(file: PathBuf, profile: String, mut handle: refresh::Handle) -> Result<()> {
    let mut last: Option<Arc<Credentials>> = None;
    loop {
        let credentials =
            handle
                .newer_than(last.as_ref())
                .await
                .map_err(|source| Error::Credentials {
                    context: format!("profile {profile}"),
                    source,
                })?;
        while let Err(e) = write(file.clone(), profile.clone(), credentials.clone()).await {
            tracing::error!(profile = %profile, error = %e, "cannot write the credentials file; retrying");
            tokio::time::sleep(WRITE_RETRY).await;
        }
        last = Some(credentials);
    }
}

/// One locked, atomic write, off the async threads.
async fn write(file: PathBuf, profile: String, credentials: Arc<Credentials>) -> Result<()> {
    let shown = file.display().to_string();
    let expires = rfc3339(credentials.expiration);
    let name = profile.clone();
    tokio::task::spawn_blocking(move || {
        let keys = ProfileKeys {
            access_key_id: &credentials.access_key_id,
            secret_access_key: credentials.secret_access_key.expose(),
            session_token: credentials.session_token.expose(),
        };
        credfile::update_profile(&file, &name, &keys)
    })
    .await
    .map_err(Error::failed("the write task failed"))?
    .map_err(Error::system(format!("cannot update {shown}")))?;
    tracing::info!(profile = %profile, file = %shown, expires = %expires, "credentials file updated");
    Ok(())
}
