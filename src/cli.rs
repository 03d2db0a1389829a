//! Command-line definitions. Subcommand and flag names, defaults and value spellings are
//! those of the official `aws_signing_helper`, so existing command lines keep working;
//! flags it lacks are marked as this project's own in their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Temporary AWS credentials from an X.509 certificate, through IAM Roles Anywhere.
#[derive(Parser, Debug)]
// A flag given twice takes its last value, as with the official helper's flag parser, so
// that wrapper scripts can append overrides.
#[command(name = "rolesanywhere-helper", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Try everything on this machine: a dev PKI, the local emulator and a ready AWS profile
    Demo(DemoArgs),
    /// Get credentials once and print them in the `credential_process` JSON format
    CredentialProcess(Box<CredentialArgs>),
    /// Keep credentials fresh in memory and serve them to SDKs on a local IMDSv2-compatible
    /// endpoint and, optionally, an ECS container-credentials endpoint
    Serve(Box<ServeArgs>),
    /// Keep a profile of the shared credentials file (~/.aws/credentials) fresh, for tools
    /// that read only that file
    Update(Box<UpdateArgs>),
    /// Sign a fixed test string with the private key, to check that the key works
    SignString(SignStringArgs),
    /// Print the certificate's key type, base64 DER, decimal serial and algorithms as JSON;
    /// for a pkcs11: URI, list the matching certificates on PKCS#11 tokens
    ReadCertificateData(ReadCertificateDataArgs),
    /// Run a local, verifying IAM Roles Anywhere emulator (CreateSession and STS
    /// GetCallerIdentity), for tests and trials without an AWS account
    Emulate(EmulateArgs),
    /// Make a development PKI (root CA, intermediate, leaf, emulator TLS certificate)
    Pki(PkiArgs),
    /// Print the version
    Version,
}

/// `demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Key type of the demo leaf certificate
    #[arg(long, value_enum, default_value_t = crate::pki::KeyType::P256)]
    pub key_type: crate::pki::KeyType,
}

/// Where the certificate and key come from: the file flags shared by the signing commands.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Certificate file: PEM or DER, a fullchain PEM (the leaf is the certificate that
    /// matches the key), a combined key+certificate PEM, or PKCS#12 (.p12/.pfx); or a
    /// certificate on a PKCS#11 token as a pkcs11: URI (RFC 7512), whose key is then found
    /// on the token
    #[arg(long, value_name = "FILE|URI")]
    pub certificate: Option<String>,

    /// Private key file: PKCS#8 (plain or encrypted), PKCS#1 RSA or SEC1 EC, PEM or DER;
    /// or a key on a PKCS#11 token as a pkcs11: URI (its certificate is looked for on the
    /// token when --certificate is not given). Not needed when the certificate file or URI
    /// leads to the key
    #[arg(long, value_name = "FILE|URI")]
    pub private_key: Option<String>,

    /// Password of an encrypted PKCS#8 key or a PKCS#12 file. Visible to other local users
    /// in the process list: prefer --pkcs8-password-file or $ROLESANYWHERE_PKCS8_PASSWORD
    /// (used when neither flag is given), or under systemd the credential pkcs8-password
    #[arg(long, value_name = "PASSWORD")]
    pub pkcs8_password: Option<String>,

    /// File holding the password of an encrypted key or PKCS#12 file (one trailing newline
    /// is ignored) [this project's own flag]
    #[arg(long, value_name = "FILE", conflicts_with = "pkcs8_password")]
    pub pkcs8_password_file: Option<PathBuf>,

    /// Windows and macOS certificate-store selector (not available on Linux: use files)
    #[arg(long, value_name = "SELECTOR")]
    pub cert_selector: Option<String>,

    /// Windows certificate store name (not available on Linux: use files)
    #[arg(long, value_name = "NAME")]
    pub system_store_name: Option<String>,

    /// Pick the latest-expiring certificate of an OS store (not available on Linux)
    #[arg(long)]
    pub use_latest_expiring_certificate: bool,

    /// PKCS#11 module for pkcs11: URIs, a path or a name the dynamic loader finds; a
    /// URI's module-path also names it [default: p11-kit-proxy.so]
    #[arg(long, value_name = "FILE")]
    pub pkcs11_lib: Option<String>,

    /// For a token key with CKA_ALWAYS_AUTHENTICATE: try the user PIN as the
    /// context-specific PIN of each signature
    #[arg(long)]
    pub reuse_pin: bool,

    /// File holding the PKCS#11 user PIN (one trailing newline is ignored). Otherwise the
    /// PIN comes from the URI (pin-value, pin-source=file:...), $ROLESANYWHERE_PKCS11_PIN,
    /// or the systemd credential pkcs11-pin [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,

    /// File holding the context-specific PIN of a token key with CKA_ALWAYS_AUTHENTICATE;
    /// also $ROLESANYWHERE_PKCS11_CONTEXT_PIN or the systemd credential
    /// pkcs11-context-pin [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub pkcs11_context_pin_file: Option<PathBuf>,

    /// TPM key password (TPM keys are not available in this version)
    #[arg(long, value_name = "PASSWORD")]
    pub tpm_key_password: Option<String>,

    /// The TPM key has no password (TPM keys are not available in this version)
    #[arg(long)]
    pub no_tpm_key_password: bool,

    /// Use a private key, password or PKCS#11 PIN file that group or others can read, with a
    /// warning, instead of refusing it [this project's own flag]
    #[arg(long)]
    pub allow_readable_key_files: bool,

    /// Explain each step on stderr (never prints a secret)
    #[arg(long)]
    pub debug: bool,
}

/// Digest for `sign-string`; spelled as the official helper spells it.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestArg {
    #[default]
    #[value(name = "SHA256")]
    Sha256,
    #[value(name = "SHA384")]
    Sha384,
    #[value(name = "SHA512")]
    Sha512,
}

/// Output format for `sign-string`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FormatArg {
    /// A JSON string holding the hex signature
    #[default]
    Json,
    /// The hex signature
    Text,
    /// The raw signature bytes
    Bin,
}

#[derive(Args, Debug)]
pub struct SignStringArgs {
    #[command(flatten)]
    pub key: KeyArgs,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    pub format: FormatArg,

    /// Digest to sign with
    #[arg(long, value_enum, default_value_t = DigestArg::Sha256)]
    pub digest: DigestArg,
}

#[derive(Args, Debug)]
pub struct ReadCertificateDataArgs {
    /// Certificate file (PEM: the first CERTIFICATE block; or DER); or a pkcs11: URI, to
    /// list the matching certificates of PKCS#11 tokens with their URIs
    #[arg(long, value_name = "FILE|URI")]
    pub certificate: Option<String>,

    /// Windows and macOS certificate-store selector (not available on Linux: use files)
    #[arg(long, value_name = "SELECTOR", conflicts_with = "certificate")]
    pub cert_selector: Option<String>,

    /// Windows certificate store name (not available on Linux: use files)
    #[arg(long, value_name = "NAME", conflicts_with = "certificate")]
    pub system_store_name: Option<String>,

    /// PKCS#11 module for a pkcs11: URI [default: p11-kit-proxy.so]
    #[arg(long, value_name = "FILE")]
    pub pkcs11_lib: Option<String>,

    /// File holding the user PIN, to list private certificates too (also
    /// $ROLESANYWHERE_PKCS11_PIN, pin-value or pin-source in the URI) [this project's own flag]
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,

    /// Explain each step on stderr
    #[arg(long)]
    pub debug: bool,
}

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
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
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
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout: Option<u64>,

    /// Seconds one attempt may take in all; up to 3 attempts are made [default: 10]
    /// [this project's own flag]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
}

/// The flags of `serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Port of the IMDS endpoint; 0 picks a free one [default: 9911]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Address to listen on, such as 127.0.0.1, ::1 or [::1]. Anything but loopback
    /// exposes the credentials to the network [default: 127.0.0.1] [this project's own flag]
    #[arg(long, value_name = "ADDRESS")]
    pub bind: Option<String>,

    /// IP TTL / hop limit of the replies; 1 keeps them from crossing a router, as EC2's
    /// IMDSv2 does for containers [default: 64]
    #[arg(long, value_name = "HOPS")]
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
    #[arg(long, value_name = "N")]
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
    #[arg(long, value_name = "DAYS")]
    pub cert_expiry_warning_days: Option<u32>,

    /// Log format on stderr [this project's own flag]
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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

/// `rolesanywhere-helper emulate`: a local IAM Roles Anywhere endpoint that verifies
/// CreateSession requests as the real service does, and answers STS GetCallerIdentity for
/// the credentials it issued.
///
/// The first line on stdout is `listening on <URL>`. Without --tls-cert it makes its own
/// TLS certificate and prints the file of the CA to trust (AWS_CA_BUNDLE=FILE).
///
/// Test control, from loopback only: `POST /_emulator/faults` with
/// {"action":"fail_next","count":N,"status":503[,"retry_after":S]}, {"action":"delay","millis":MS},
/// {"action":"drop_next","count":N}, {"action":"malformed_next","count":N} or {"action":"clear"};
/// `GET /_emulator/received` lists the CreateSession requests seen.
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct EmulateArgs {
    /// PEM file of the trust anchor CA certificate(s); with no --config it accepts any trust
    /// anchor, profile and role ARN of the region.
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    pub trust_anchor: Option<PathBuf>,
    /// TOML file declaring trust anchors, profiles (roleArns, durationSeconds,
    /// acceptRoleSessionName, enabled) and the region; see the pki/README.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
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
    /// Log every decision at debug level.
    #[arg(long)]
    pub debug: bool,
}

/// `rolesanywhere-helper pki`: development certificates.
#[derive(clap::Args, Debug)]
pub struct PkiArgs {
    #[command(subcommand)]
    pub command: PkiCommand,
}

/// The `pki` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum PkiCommand {
    /// Write root-ca.pem/.key, [intermediate-ca.pem/.key], leaf.pem/.key, [leaf-chain.pem],
    /// leaf-fullchain.pem and tls.pem/.key (for `emulate --tls-cert`) into DIR. Keys are 0600.
    /// For development only: see pki/README.md for a production PKI.
    Init(PkiInitArgs),
}

/// `pki init DIR`.
#[derive(clap::Args, Debug)]
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
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Common name of the leaf certificate.
    #[arg(long, value_name = "NAME", default_value = "rolesanywhere-dev-client")]
    pub cn: String,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}
