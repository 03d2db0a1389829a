//! `version`: the version, as the official helper prints it.

pub fn run() -> crate::error::Result<()> {
    super::print(format!("{}\n", env!("CARGO_PKG_VERSION")).as_bytes())
}
