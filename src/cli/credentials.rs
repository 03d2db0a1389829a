//! The flags of the commands that call CreateSession: `credential-process`, `serve` and
//! `update`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::chain::ChainArgs;
use super::key::KeyArgs;
use super::values::go_int;

/// The flags of the commands that call CreateSession.
#[derive(Args, Debug, Clone, Default)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub key: KeyArgs,

    /// PEM bundle of intermediate CA certificates to send with the certificate
    #[arg(long, value_name = "FILE")]
    pub intermediates: Option<String>,

    /// Trust anchor ARN; its region is the default region
    #[arg(long, value_name = "ARN")]
    pub trust_anchor_arn: Option<String>,

    /// Roles Anywhere profile ARN
    #[arg(long, value_name = "ARN")]
    pub profile_arn: Option<String>,

    /// ARN of the role to assume
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,

    /// Session lifetime in seconds, 900 to 43200 [default: 3600]
    #[arg(long, value_name = "SECONDS", value_parser = go_int::<i64>)]
    pub session_duration: Option<i64>,

    /// Name of the role session (the profile must accept custom names)
    #[arg(long, value_name = "NAME")]
    pub role_session_name: Option<String>,

    /// Region for the endpoint and the signature; default: the trust anchor's region
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Endpoint URL. Wins over AWS_ENDPOINT_URL_ROLESANYWHERE and AWS_ENDPOINT_URL, which
    /// win over the region's default endpoint
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Use the region's FIPS endpoint (also AWS_USE_FIPS_ENDPOINT=true); the signature
    /// still names the plain region [this project's own flag]
    #[arg(long)]
    pub use_fips_endpoint: bool,

    /// Extra CA certificates (PEM) to trust besides the system's; also $AWS_CA_BUNDLE
    /// [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Do not verify the endpoint's TLS certificate (unsafe; for tests only)
    #[arg(long)]
    pub no_verify_ssl: bool,

    /// Accepted for compatibility: HTTPS_PROXY, HTTP_PROXY and NO_PROXY are always honoured
    #[arg(long)]
    pub with_proxy: bool,

    /// Seconds to wait for a connection [default: 5] [this project's own flag]
    #[arg(long, value_name = "SECONDS", value_parser = go_int::<u64>)]
    pub connect_timeout: Option<u64>,

    /// Seconds one attempt may take in all; up to 3 attempts are made [default: 10]
    /// [this project's own flag]
    #[arg(long, value_name = "SECONDS", value_parser = go_int::<u64>)]
    pub timeout: Option<u64>,

    /// Roles to assume after CreateSession (role chaining).
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// The flags of `serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Port of the IMDS endpoint; 0 picks a free one [default: 9911]
    #[arg(long, value_name = "PORT", value_parser = go_int::<u16>)]
    pub port: Option<u16>,

    /// Address to listen on, such as 127.0.0.1, ::1 or [::1]. Anything but loopback
    /// exposes the credentials to the network [default: 127.0.0.1] [this project's own flag]
    #[arg(long, value_name = "ADDRESS")]
    pub bind: Option<String>,

    /// IP TTL / hop limit of the replies; 1 keeps them from crossing a router, as EC2's
    /// IMDSv2 does for containers [default: 64]
    #[arg(long, value_name = "HOPS", value_parser = go_int::<u32>)]
    pub hop_limit: Option<u32>,

    /// Also serve the role on an ECS container-credentials path, and write the token that
    /// path requires to FILE (mode 0600, no newline), for AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
    /// [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub ecs_token_file: Option<PathBuf>,

    /// Group (name or number) that may read the ECS token file (mode 0640)
    /// [this project's own flag]
    #[arg(long, value_name = "GROUP", requires = "ecs_token_file")]
    pub ecs_token_group: Option<String>,

    /// Serve several roles, each with its own identity, ARNs and endpoints, from a TOML
    /// file (see the README); replaces the identity, ARN, port and ECS flags
    /// [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Most client connections held at once; more wait in the kernel's queue
    /// [default: 4096] [this project's own flag]
    #[arg(long, value_name = "N", value_parser = go_int::<usize>)]
    pub max_connections: Option<usize>,

    /// Also answer requests whose Host is NAME (may be repeated). By default only IP
    /// addresses and localhost are answered, which stops web pages that rebind their own
    /// DNS name to this host from reading credentials [this project's own flag]
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,

    /// Serve /healthz and /metrics (Prometheus) on ADDRESS:PORT, or on a socket passed by
    /// systemd (fd:NAME); off by default [this project's own flag]
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub ops_listen: Option<String>,

    /// Warn (once a day) when a certificate expires within this many days [default: 30]
    /// [this project's own flag]
    #[arg(long, value_name = "DAYS", value_parser = go_int::<u32>)]
    pub cert_expiry_warning_days: Option<u32>,

    /// CreateSession calls per second allowed per account and region (a token bucket shared
    /// by this daemon's roles; a throttled answer pauses it) [default: 2] [this project's
    /// own flag]
    #[arg(long, value_name = "N")]
    pub pacing_rate: Option<f64>,

    /// Calls that may go out at once after a quiet time [default: 5] [this project's own flag]
    #[arg(long, value_name = "N", value_parser = go_int::<u32>)]
    pub pacing_burst: Option<u32>,

    /// Spread each role's first fetch at random over this many seconds, so that a fleet
    /// started at once stays within the account's quota [default: 0] [this project's own
    /// flag]
    #[arg(long, value_name = "SECONDS", value_parser = go_int::<u64>)]
    pub start_window: Option<u64>,

    /// This host's slot in its fleet's shared CreateSession schedule: its number from 0 to
    /// COUNT-1 and the number of hosts. Every call then keeps to the host's own slots, so
    /// that the fleet as a whole stays under --fleet-rate (hosts' clocks in sync by NTP)
    /// [this project's own flag]
    #[arg(long, value_name = "INDEX/COUNT")]
    pub fleet_slot: Option<String>,

    /// CreateSession calls per second of the whole fleet in one account and region, with
    /// --fleet-slot [default: 9.5] [this project's own flag]
    #[arg(long, value_name = "N")]
    pub fleet_rate: Option<f64>,

    /// Log format on stderr [this project's own flag]
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub daemon_socket: DaemonSocketArgs,
}

/// `serve`'s daemon socket, which `credential-process --daemon-socket` asks.
#[derive(Args, Debug, Clone, Default)]
pub struct DaemonSocketArgs {
    /// Also answer `credential-process --daemon-socket` on this Unix socket (a path, or
    /// fd:NAME for a socket passed by systemd); with --config, for every role
    /// [this project's own flag]
    #[arg(long = "daemon-socket", value_name = "PATH")]
    pub path: Option<String>,

    /// Mode of the socket file, in octal; never world-writable [default: 0660]
    /// [this project's own flag]
    #[arg(long = "daemon-socket-mode", value_name = "MODE", value_parser = octal_mode)]
    pub mode: Option<u32>,

    /// Group (name or number) of the socket file [this project's own flag]
    #[arg(long = "daemon-socket-group", value_name = "GROUP")]
    pub group: Option<String>,

    /// A user (name or number) whose processes may ask the daemon socket (may be
    /// repeated); with no user or group allowed, only the daemon's own user may
    /// [this project's own flag]
    #[arg(long = "daemon-socket-allow-user", value_name = "USER")]
    pub allow_users: Vec<String>,

    /// A group (name or number) whose members may ask the daemon socket (may be repeated;
    /// the primary and supplementary groups count) [this project's own flag]
    #[arg(long = "daemon-socket-allow-group", value_name = "GROUP")]
    pub allow_groups: Vec<String>,
}

/// A file mode in octal (`660`, `0660` or `0o660`).
pub fn octal_mode(text: &str) -> Result<u32, String> {
    let digits = text
        .strip_prefix("0o")
        .or_else(|| text.strip_prefix("0O"))
        .unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && mode <= 0o777 => Ok(mode),
        _ => Err("not a file mode; write it in octal, such as 0660".into()),
    }
}

/// The flags of `credential-process`.
#[derive(Args, Debug, Clone, Default)]
pub struct CredentialProcessArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Ask the `serve --daemon-socket` daemon at PATH for the credentials instead of
    /// calling CreateSession; the output is the same [this project's own flag]
    #[arg(long, value_name = "PATH")]
    pub daemon_socket: Option<std::path::PathBuf>,

    /// The role (its name in the daemon's config file) to ask the daemon socket for;
    /// needed when the socket serves several [this project's own flag]
    #[arg(long, value_name = "NAME", requires = "daemon_socket")]
    pub role: Option<String>,

    /// When no daemon answers at --daemon-socket, make the direct call with the other
    /// flags [this project's own flag]
    #[arg(long, requires = "daemon_socket")]
    pub fallback_direct: bool,
}

/// How log lines are written.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (no timestamp under systemd's journal)
    #[default]
    Text,
    /// One JSON object per event
    Json,
}

/// The flags of `update`.
#[derive(Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Profile of the credentials file to write [default: default]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Write the credentials once and exit, instead of refreshing them ahead of expiry
    #[arg(long)]
    pub once: bool,

    /// Write several roles, each to the profile named by its `profile` key (or its name),
    /// from the TOML file `serve --config` reads; replaces the identity, ARN and --profile
    /// flags [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}
