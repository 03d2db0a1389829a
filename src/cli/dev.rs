//! The commands for trials and tests without AWS: `demo`, `emulate` and `pki`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::values::go_int;

/// `demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Key type of the demo leaf certificate
    #[arg(long, value_enum, default_value_t = crate::pki::KeyType::P256)]
    pub key_type: crate::pki::KeyType,
}

/// `rolesanywhere-helper emulate`: a local IAM Roles Anywhere endpoint that verifies
/// CreateSession requests as the real service does, and answers STS GetCallerIdentity and
/// AssumeRole (role chaining) for the credentials it issued.
///
/// The first line on stdout is `listening on <URL>`. Without --tls-cert it makes its own
/// TLS certificate and prints the file of the CA to trust (AWS_CA_BUNDLE=FILE).
///
/// Test control, from loopback only: `POST /_emulator/faults` with
/// {"action":"fail_next","count":N,"status":503[,"retry_after":S]}, {"action":"delay","millis":MS},
/// {"action":"drop_next","count":N}, {"action":"malformed_next","count":N},
/// {"action":"expiry_skew","seconds":S} or {"action":"clear"};
/// `GET /_emulator/received` lists the CreateSession requests seen.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct EmulateArgs {
    /// PEM file of the trust anchor CA certificate(s); with no --config it accepts any trust
    /// anchor, profile and role ARN of the region.
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    pub trust_anchor: Option<PathBuf>,
    /// TOML file declaring trust anchors, profiles (roleArns, durationSeconds,
    /// acceptRoleSessionName, enabled), the region, and the roles STS AssumeRole may give
    /// ([[roles]]: arn, trustedRoleArns, externalId); see the pki/README.md and README.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0, value_parser = go_int::<u16>)]
    pub port: u16,
    /// Address to listen on. Keep the loopback default unless you know why not.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// PEM certificate chain for HTTPS (leaf first); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "http"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        conflicts_with = "http"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    pub http: bool,
    /// Region of the endpoint [default: us-east-1, or the config file's].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Imported CRL (PEM or DER); may be repeated.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Testing only: accept durationSeconds below 900 (down to 1), so that credential
    /// refresh can be exercised in seconds.
    #[arg(long)]
    pub allow_short_sessions: bool,
    /// Enforce a CreateSession quota: above N requests in any one second per account, answer
    /// HTTP 429 ThrottlingException, as the service does (its quota is 10 per second per
    /// account and region).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tps: Option<u32>,
    /// With --max-tps: send `Retry-After: SECONDS` with each throttled answer.
    #[arg(long, value_name = "SECONDS", requires = "max_tps")]
    pub throttle_retry_after: Option<u32>,
    /// Testing only: move the expiration of every issued credential set by SECONDS
    /// (negative: credentials that expire within seconds, or are expired on arrival), as a
    /// misbehaving service would.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true,
          value_parser = clap::value_parser!(i64).range(-604_800..=604_800))]
    pub expiry_skew: Option<i64>,
    /// Log every decision at debug level.
    #[arg(long)]
    pub debug: bool,
}

/// `rolesanywhere-helper pki`: development certificates.
#[derive(Args, Debug)]
pub struct PkiArgs {
    #[command(subcommand)]
    pub command: PkiCommand,
}

/// The `pki` subcommands.
#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Write root-ca.pem/.key, [intermediate-ca.pem/.key], leaf.pem/.key, [leaf-chain.pem],
    /// leaf-fullchain.pem and tls.pem/.key (for `emulate --tls-cert`) into DIR. Keys are 0600.
    /// For development only: see pki/README.md for a production PKI.
    Init(PkiInitArgs),
}

/// `pki init DIR`.
#[derive(Args, Debug)]
pub struct PkiInitArgs {
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
    /// Key type of the CAs and the leaf.
    #[arg(long, value_enum, default_value_t = crate::pki::KeyType::Rsa2048)]
    pub key_type: crate::pki::KeyType,
    /// Issue the leaf from an intermediate CA.
    #[arg(long)]
    pub intermediate: bool,
    /// Validity of the leaf and TLS certificates, in days (1..3650).
    #[arg(long, default_value_t = 365, value_parser = go_int::<u32>)]
    pub days: u32,
    /// Common name of the leaf certificate.
    #[arg(long, value_name = "NAME", default_value = "rolesanywhere-dev-client")]
    pub cn: String,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}
