//! Where the certificate and key come from, and the commands that only use a key or a
//! certificate: `sign-string` and `read-certificate-data`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Where the certificate and key come from: the file flags shared by the signing commands.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Certificate file: PEM or DER, a fullchain PEM (the leaf is the certificate that
    /// matches the key), a combined key+certificate PEM (the key may be a TPM key file),
    /// or PKCS#12 (.p12/.pfx); or a
    /// certificate on a PKCS#11 token as a pkcs11: URI (RFC 7512), whose key is then found
    /// on the token
    #[arg(long, value_name = "FILE|URI")]
    pub certificate: Option<String>,

    /// Private key file: PKCS#8 (plain or encrypted; RSA, EC or ML-DSA), PKCS#1 RSA or SEC1
    /// EC, PEM or DER, or a TPM 2.0 key file (TSS2 PRIVATE KEY);
    /// or a key on a PKCS#11 token as a pkcs11: URI (its certificate is looked for on the
    /// token when --certificate is not given); or a persistent TPM key as handle:0x81000101
    /// (the TPM is $TPM_DEVICE, else /dev/tpmrm0, else /dev/tpm0). Not needed when the
    /// certificate file or URI leads to the key
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

    /// Password of a TPM key (a TSS2 PRIVATE KEY file, or handle:0x81...). Visible to
    /// other local users in the process list: prefer --tpm-key-password-file or
    /// $ROLESANYWHERE_TPM_KEY_PASSWORD, or under systemd the credential tpm-key-password.
    /// A password the TPM refuses is never sent again (each wrong one counts towards the
    /// TPM's lockout)
    #[arg(long, value_name = "PASSWORD", conflicts_with = "pkcs8_password")]
    pub tpm_key_password: Option<String>,

    /// File holding the TPM key password (one trailing newline is ignored) [this
    /// project's own flag]
    #[arg(long, value_name = "FILE", conflicts_with = "tpm_key_password")]
    pub tpm_key_password_file: Option<PathBuf>,

    /// The TPM key has no password: needed for handle: keys without one (a key file says
    /// so itself)
    #[arg(long, conflicts_with_all = ["tpm_key_password", "tpm_key_password_file"])]
    pub no_tpm_key_password: bool,

    /// Use a private key, password or PKCS#11 PIN file that other accounts can read (mode
    /// o+r), with a warning, instead of refusing it; group-readable files are always used
    /// [this project's own flag]
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
