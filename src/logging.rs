//! Log setup: human lines on stderr, never on stdout (stdout carries command output such
//! as the credential_process JSON, and nothing else).

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Starts logging at `info`, or `debug` with `--debug`. `RUST_LOG` overrides both.
/// Calling it twice is harmless (tests start several commands in one process).
pub fn init(debug: bool) {
    init_with_format(debug, LogFormat::Text);
}

/// Like [`init`], in the given format: text (no timestamp under systemd's journal, which
/// adds its own) or one JSON object per line. The `cryptoki` crate's own log lines (about
/// mechanisms it has no name for, sessions it could not close) are left out: the PKCS#11
/// code reports what matters in its errors.
pub fn init_with_format(debug: bool, format: LogFormat) {
    let default = if debug {
        "debug,cryptoki=off"
    } else {
        "info,cryptoki=off"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match (format, journal) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
}
