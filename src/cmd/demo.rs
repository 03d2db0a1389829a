//! `demo`: the whole chain on one machine with no AWS account. It makes a throwaway dev
//! PKI, starts the verifying emulator over HTTPS on a free loopback port and the serving
//! daemon against it (IMDSv2 and ECS endpoints on another free port), writes an AWS config
//! profile whose `credential_process` is this binary, and prints the environment variables
//! and one command that use each. Ctrl-C removes everything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{CredentialArgs, DemoArgs, KeyArgs, ServeArgs};
use crate::config::{self, Env, Inputs};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::error::{Error, Result};
use crate::pki::{DevPki, PkiOptions};
use crate::refresh::Schedule;
use crate::serve;

const REGION: &str = "us-east-1";
const TRUST_ANCHOR: &str =
    "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/demo-trust-anchor";
const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/demo-profile";
const ROLE: &str = "arn:aws:iam::111122223333:role/demo-role";
const ROLE_NAME: &str = "demo-role";

/// A folder removed when dropped, whatever the exit path.
struct TempFolder(PathBuf);

impl TempFolder {
    fn create() -> Result<Self> {
        let suffix = getrandom::u64().unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "rolesanywhere-demo-{}-{suffix:x}",
            std::process::id()
        ));
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(Error::system(format!(
            "cannot create the demo folder {}",
            path.display()
        )))?;
        Ok(Self(path))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::system("cannot start the async runtime"))?;
    runtime.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> Result<()> {
    let mut stop = crate::signals::StopSignals::install()?;
    let folder = TempFolder::create()?;
    let dir = folder.0.as_path();
    let other = |what: &str, e: &dyn std::fmt::Display| Error::Failed {
        what: format!("demo: cannot {what}"),
        source: e.to_string().into(),
    };

    let pki_dir = dir.join("pki");
    let pki = DevPki::generate(&PkiOptions {
        key_type: args.key_type,
        intermediate: true,
        ..PkiOptions::default()
    })
    .map_err(|e| other("make the dev PKI", &e))?;
    pki.write(&pki_dir)
        .map_err(|e| other("write the dev PKI", &e))?;

    let config = EmulatorConfig::single_anchor(pki.root_pem(), REGION)
        .map_err(|e| other("configure the emulator", &e))?;
    let emulator = Emulator::start(config)
        .await
        .map_err(|e| other("start the emulator", &e))?;
    let url = emulator.url();
    let ca_file = dir.join("emulator-ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem().unwrap_or_default())
        .map_err(|e| other("write the CA file", &e))?;

    // The daemon, configured by `serve`'s flags through the one configuration layer, with
    // an empty environment: the user's AWS_ENDPOINT_URL or AWS_CA_BUNDLE must not send the
    // demo's requests elsewhere.
    let token_file = dir.join("ecs-token");
    let args = ServeArgs {
        credentials: CredentialArgs {
            key: KeyArgs {
                certificate: Some(pki_dir.join("leaf-fullchain.pem").display().to_string()),
                private_key: Some(pki_dir.join("leaf.key").display().to_string()),
                ..KeyArgs::default()
            },
            trust_anchor_arn: Some(TRUST_ANCHOR.into()),
            profile_arn: Some(PROFILE.into()),
            role_arn: Some(ROLE.into()),
            endpoint: Some(url.clone()),
            ca_bundle: Some(ca_file.clone()),
            ..CredentialArgs::default()
        },
        port: Some(0),
        ecs_token_file: Some(token_file.clone()),
        ..ServeArgs::default()
    };
    let inputs = Inputs {
        env: Env::empty(),
        ..Inputs::real()
    };
    let plan = config::serve_plan(&args, &inputs, &[])?;
    let running = serve::start(plan, Schedule::default(), Vec::new()).await?;
    running.ready().await?;
    let served = running.listeners()[0].url();
    let first = running.roles()[0]
        .0
        .state()
        .handle
        .current(inputs.clock.now())
        .map_err(|e| other("get the first credentials", &e))?;

    let aws_config = dir.join("aws-config");
    std::fs::write(&aws_config, profile(&pki_dir, &url)?)
        .map_err(|e| other("write the AWS config", &e))?;

    let ca = ca_file.display();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rolesanywhere-helper demo: everything runs on this machine; nothing goes to AWS.\n"
    );
    let _ = writeln!(
        out,
        "  dev PKI      {}  (root-ca.pem is the trust anchor)",
        pki_dir.display()
    );
    let _ = writeln!(
        out,
        "  emulator     {url}  (CreateSession and STS GetCallerIdentity)"
    );
    let _ = writeln!(
        out,
        "  serve        {served}/  (IMDSv2, and ECS at /ecs/{ROLE_NAME}), refreshing ahead of expiry"
    );
    let _ = writeln!(
        out,
        "  credentials  {} for {ROLE}, expire {}\n",
        first.access_key_id, first.expiration_text
    );
    // Empty config and credentials files, so that nothing in ~/.aws comes first in the
    // SDKs' provider chain; both region variables, for the SDKs that read one or the other.
    let isolate = format!(
        "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION}"
    );
    let _ = writeln!(
        out,
        "In another shell, point any AWS SDK or the AWS CLI at the daemon's IMDS endpoint:\n"
    );
    let _ = writeln!(
        out,
        "  export AWS_EC2_METADATA_SERVICE_ENDPOINT={served}/ {isolate} AWS_CA_BUNDLE={ca}"
    );
    let _ = writeln!(out, "  aws sts get-caller-identity --endpoint-url {url}\n");
    let _ = writeln!(
        out,
        "or at its ECS container-credentials endpoint (the token file is readable by you only):\n"
    );
    let _ = writeln!(
        out,
        "  export AWS_CONTAINER_CREDENTIALS_FULL_URI={served}{} AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={} {isolate} AWS_CA_BUNDLE={ca}\n",
        serve::ecs::path(ROLE_NAME),
        token_file.display()
    );
    let _ = writeln!(
        out,
        "or use the helper as credential_process, the way the official helper is used:\n"
    );
    let _ = writeln!(
        out,
        "  export AWS_CONFIG_FILE={} AWS_PROFILE=demo AWS_CA_BUNDLE={ca}\n",
        aws_config.display()
    );
    let _ = writeln!(
        out,
        "Press Ctrl-C to stop; {} is then removed.",
        dir.display()
    );
    super::print(out.as_bytes())?;

    stop.recv().await;
    running.shutdown(std::time::Duration::from_secs(5)).await;
    emulator.shutdown().await;
    drop(folder);
    Ok(())
}

/// The AWS config file: one `demo` profile running this binary as `credential_process`.
fn profile(pki: &Path, url: &str) -> Result<String> {
    let exe =
        std::env::current_exe().map_err(Error::system("demo: cannot find this program's path"))?;
    Ok(format!(
        "[profile demo]\nregion = {REGION}\ncredential_process = {} credential-process --certificate {} --private-key {} --trust-anchor-arn {TRUST_ANCHOR} --profile-arn {PROFILE} --role-arn {ROLE} --endpoint {url}\n",
        exe.display(),
        pki.join("leaf-fullchain.pem").display(),
        pki.join("leaf.key").display(),
    ))
}
