//! `demo`: the whole chain on one machine with no AWS account. It makes a throwaway dev
//! PKI, starts the verifying emulator over HTTPS on a free loopback port, gets a first
//! session through the real client, writes an AWS config profile whose `credential_process`
//! is this binary, and prints the commands that use it. Ctrl-C removes everything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::emulator::{Emulator, EmulatorConfig};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentitySpec};
use crate::pki::{DevPki, KeyType, PkiOptions};
use crate::rolesanywhere::{Client, ClientConfig, SessionParams};

const REGION: &str = "us-east-1";
const TRUST_ANCHOR: &str =
    "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/demo-trust-anchor";
const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/demo-profile";
const ROLE: &str = "arn:aws:iam::111122223333:role/demo-role";

/// `demo` flags.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Key type of the demo leaf certificate
    #[arg(long, value_enum, default_value_t = KeyType::P256)]
    pub key_type: KeyType,
}

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
        builder.create(&path).map_err(|e| {
            Error::Other(format!(
                "cannot create the demo folder {}: {e}",
                path.display()
            ))
        })?;
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
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> Result<()> {
    let folder = TempFolder::create()?;
    let dir = folder.0.as_path();
    let other =
        |what: &str, e: &dyn std::fmt::Display| Error::Other(format!("demo: cannot {what}: {e}"));

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

    // One session through the real client, so that a broken setup shows here, not later.
    let spec = IdentitySpec {
        certificate: Some(pki_dir.join("leaf-fullchain.pem")),
        private_key: Some(pki_dir.join("leaf.key")),
        ..IdentitySpec::default()
    };
    let identity = Identity::load(&spec, OffsetDateTime::now_utc())?;
    let mut client_config = ClientConfig::new(url.clone());
    client_config.ca_bundle = Some(ca_file.clone());
    let client = Client::new(client_config).map_err(|e| other("build the client", &e))?;
    let params = SessionParams {
        trust_anchor_arn: TRUST_ANCHOR.into(),
        profile_arn: PROFILE.into(),
        role_arn: ROLE.into(),
        duration_seconds: 3600,
        role_session_name: None,
        region: REGION.into(),
    };
    let first = client
        .create_session(&identity, &params)
        .await
        .map_err(|e| Error::Other(e.to_string()))?;

    let aws_config = dir.join("aws-config");
    std::fs::write(&aws_config, profile(&pki_dir, &url)?)
        .map_err(|e| other("write the AWS config", &e))?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "rolesanywhere-helper demo: everything runs on this machine; nothing goes to AWS.\n"
    );
    let _ = writeln!(
        out,
        "  dev PKI        {}  (root-ca.pem is the trust anchor)",
        pki_dir.display()
    );
    let _ = writeln!(
        out,
        "  emulator       {url}  (CreateSession and STS GetCallerIdentity)"
    );
    let _ = writeln!(
        out,
        "  first session  {} for {ROLE}, expires {}\n",
        first.access_key_id, first.expiration_text
    );
    let _ = writeln!(
        out,
        "In another shell, use the profile whose credential_process is this helper:\n"
    );
    let _ = writeln!(
        out,
        "  export AWS_CONFIG_FILE={} AWS_PROFILE=demo AWS_CA_BUNDLE={}",
        aws_config.display(),
        ca_file.display()
    );
    let _ = writeln!(out, "  aws sts get-caller-identity --endpoint-url {url}\n");
    let _ = writeln!(
        out,
        "(The serving daemon, with IMDS and ECS endpoints for unchanged SDKs, is not available yet.)"
    );
    let _ = writeln!(
        out,
        "Press Ctrl-C to stop; {} is then removed.",
        dir.display()
    );
    super::print(out.as_bytes())?;

    crate::signals::stop_requested().await;
    emulator.shutdown().await;
    drop(folder);
    Ok(())
}

/// The AWS config file: one `demo` profile running this binary as `credential_process`.
fn profile(pki: &Path, url: &str) -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("demo: cannot find this program's path: {e}")))?;
    Ok(format!(
        "[profile demo]\nregion = {REGION}\ncredential_process = {} credential-process --certificate {} --private-key {} --trust-anchor-arn {TRUST_ANCHOR} --profile-arn {PROFILE} --role-arn {ROLE} --endpoint {url}\n",
        exe.display(),
        pki.join("leaf-fullchain.pem").display(),
        pki.join("leaf.key").display(),
    ))
}
