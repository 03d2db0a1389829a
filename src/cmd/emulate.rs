//! `rolesanywhere-helper emulate`: runs the emulator of [`crate::emulator`] until Ctrl-C or
//! SIGTERM, on the settings its flags describe.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::EmulateArgs;
use crate::emulator::{
    Emulator, EmulatorConfig, EmulatorError, TlsMode, TrustAnchorConfig, pem_certificates,
};
use crate::error::{Error, Result};

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, EmulatorError> {
    std::fs::read(path).map_err(|source| EmulatorError::File {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// Reads `--trust-anchor`. A first trial names a file that is not there yet: say how to make
/// a development CA rather than only that it is missing.
fn read_anchor(path: &Path) -> Result<Vec<u8>, EmulatorError> {
    read("cannot read the trust anchor", path).map_err(|error| match error {
        EmulatorError::File { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            EmulatorError::Missing {
                what: "trust anchor",
                path: path.display().to_string(),
                fix: "make a development CA with: rolesanywhere-helper pki init DIR, then give --trust-anchor DIR/root-ca.pem (or your own CA certificate)",
            }
        }
        other => other,
    })
}

/// Builds the configuration the flags describe.
pub fn config_from_args(args: &EmulateArgs) -> Result<EmulatorConfig, EmulatorError> {
    let mut config = match &args.config {
        Some(path) => EmulatorConfig::from_toml_file(path)?,
        None => {
            let Some(anchor) = &args.trust_anchor else {
                return Err(EmulatorError::Config(
                    "give --trust-anchor FILE or --config FILE".into(),
                ));
            };
            let pem = read_anchor(anchor)?;
            let pem = String::from_utf8(pem).map_err(|_| {
                EmulatorError::Config(format!("trust anchor {} is not PEM text", anchor.display()))
            })?;
            EmulatorConfig::single_anchor(&pem, args.region.as_deref().unwrap_or("us-east-1"))?
        }
    };
    if args.config.is_some() {
        if let Some(anchor) = &args.trust_anchor {
            let pem = read_anchor(anchor)?;
            let certificates_der = pem_certificates(&pem).map_err(|e| {
                EmulatorError::Config(format!("trust anchor {}: {e}", anchor.display()))
            })?;
            config.trust_anchors.push(TrustAnchorConfig {
                arn: None,
                certificates_der,
                enabled: true,
            });
        }
        if let Some(region) = &args.region {
            config.region = region.clone();
        }
    }
    for crl in &args.crl {
        config.add_crl(&read("cannot read the CRL", crl)?)?;
    }
    if args.allow_short_sessions {
        config.min_duration_seconds = 1;
    }
    config.max_tps = args.max_tps;
    config.throttle_retry_after = args.throttle_retry_after;
    config.expiry_skew_seconds = args.expiry_skew.unwrap_or(0);
    config.bind = args.bind;
    config.port = args.port;
    config.tls = if args.http {
        TlsMode::Http
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let text = |what, p| {
            read(what, p).and_then(|b| {
                String::from_utf8(b)
                    .map_err(|_| EmulatorError::Tls(format!("{} is not PEM text", p.display())))
            })
        };
        TlsMode::Given {
            cert_pem: text("cannot read the TLS certificate", cert)?,
            key_pem: text("cannot read the TLS key", key)?,
        }
    } else {
        TlsMode::SelfMade
    };
    Ok(config)
}

/// Runs `emulate` until Ctrl-C or SIGTERM.
pub fn run(args: &EmulateArgs) -> Result<()> {
    crate::logging::init(args.debug);
    let config = config_from_args(args)?;
    if !config.bind.is_loopback() {
        tracing::warn!(
            "the emulator listens on {}, reachable from other hosts; it issues credentials to anyone its trust anchor trusts",
            config.bind
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::system("cannot start the async runtime"))?;
    runtime.block_on(async {
        let mut stop = crate::signals::StopSignals::install()?;
        let emulator = Emulator::start(config).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", emulator.url())?;
        let ca_file = match emulator.ca_pem() {
            Some(pem) => {
                let path = write_ca_file(&pem, emulator.addr().port())?;
                writeln!(
                    out,
                    "TLS CA certificate written to {0}; trust it with AWS_CA_BUNDLE={0}",
                    path.display()
                )?;
                Some(path)
            }
            None => None,
        };
        out.flush()?;
        drop(out);
        stop.recv().await;
        tracing::info!("emulator: stopping");
        emulator.shutdown().await;
        if let Some(path) = ca_file {
            let _ = std::fs::remove_file(path);
        }
        Ok::<(), Error>(())
    })
}

/// Writes the CA to a new file in the temporary directory (created, never overwritten).
fn write_ca_file(pem: &str, port: u16) -> Result<PathBuf, EmulatorError> {
    let path = std::env::temp_dir().join(format!(
        "rolesanywhere-emulator-{}-{port}-ca.pem",
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| EmulatorError::File {
            what: "cannot create the CA file",
            path: path.display().to_string(),
            source,
        })?;
    file.write_all(pem.as_bytes())
        .map_err(|source| EmulatorError::File {
            what: "cannot write the CA file",
            path: path.display().to_string(),
            source,
        })?;
    Ok(path)
}
