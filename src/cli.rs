//! Command-line definitions. Subcommand and flag names, defaults and value spellings are
//! those of the official `aws_signing_helper`, so existing command lines keep working;
//! flags it lacks are marked as this project's own in their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Temporary AWS credentials from an X.509 certificate, through IAM Roles Anywhere.
#[derive(Parser, Debug)]
#[command(name = "rolesanywhere-helper", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sign a fixed test string with the private key, to check that the key works
    SignString(SignStringArgs),
    /// Print the certificate's key type, base64 DER, decimal serial and algorithms as JSON
    ReadCertificateData(ReadCertificateDataArgs),
    /// Run a local, verifying IAM Roles Anywhere emulator (CreateSession and STS
    /// GetCallerIdentity), for tests and trials without an AWS account
    Emulate(crate::emulator::EmulateArgs),
    /// Make a development PKI (root CA, intermediate, leaf, emulator TLS certificate)
    Pki(crate::pki::PkiArgs),
    /// Print the version
    Version,
}

/// Where the certificate and key come from: the file flags shared by the signing commands.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Certificate file: PEM or DER, a fullchain PEM (the leaf is the certificate that
    /// matches the key), a combined key+certificate PEM, or PKCS#12 (.p12/.pfx)
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<String>,

    /// Private key file: PKCS#8 (plain or encrypted), PKCS#1 RSA or SEC1 EC, PEM or DER.
    /// Not needed when the certificate file holds the key
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<String>,

    /// Password of an encrypted PKCS#8 key or a PKCS#12 file. Visible to other local users
    /// in the process list: prefer --pkcs8-password-file or the environment variable
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ROLESANYWHERE_PKCS8_PASSWORD",
        hide_env_values = true
    )]
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

    /// PKCS#11 module (PKCS#11 tokens are not available in this version)
    #[arg(long, value_name = "FILE")]
    pub pkcs11_lib: Option<String>,

    /// Reuse the PKCS#11 user PIN for context-specific login (PKCS#11 is not available in
    /// this version)
    #[arg(long)]
    pub reuse_pin: bool,

    /// TPM key password (TPM keys are not available in this version)
    #[arg(long, value_name = "PASSWORD")]
    pub tpm_key_password: Option<String>,

    /// The TPM key has no password (TPM keys are not available in this version)
    #[arg(long)]
    pub no_tpm_key_password: bool,

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
    /// Certificate file (PEM: the first CERTIFICATE block; or DER)
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<String>,

    /// Windows and macOS certificate-store selector (not available on Linux: use files)
    #[arg(long, value_name = "SELECTOR", conflicts_with = "certificate")]
    pub cert_selector: Option<String>,

    /// Windows certificate store name (not available on Linux: use files)
    #[arg(long, value_name = "NAME", conflicts_with = "certificate")]
    pub system_store_name: Option<String>,

    /// PKCS#11 module (PKCS#11 tokens are not available in this version)
    #[arg(long, value_name = "FILE")]
    pub pkcs11_lib: Option<String>,

    /// Explain each step on stderr
    #[arg(long)]
    pub debug: bool,
}
