//! `version`: the version on one line, in the official helper's shape (`X.Y.Z` and a
//! newline), so that scripts reading it keep working. A release build made from a git
//! checkout adds its commit as semver build metadata (`0.1.0+1a2b3c4d5e6f`), which version
//! parsers and `sort -V` read as the same version; `--version` names the whole commit hash.

pub fn run() -> crate::error::Result<()> {
    super::print(format!("{}\n", env!("RA_VERSION")).as_bytes())
}
