//! `version`: the version, as the official helper prints it (`X.Y.Z` and a newline), so
//! that scripts comparing it keep working. The commit a release build was made from is in
//! the long `--version` output instead (`rolesanywhere-helper 0.1.0 (commit HASH)`), which
//! the official helper does not have.

pub fn run() -> crate::error::Result<()> {
    super::print(format!("{}\n", env!("CARGO_PKG_VERSION")).as_bytes())
}
