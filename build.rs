//! Build information for `version` and `--version`: the crate version and, in release builds
//! made from a git checkout, the commit they were built from: `RA_VERSION` (`0.1.0+1a2b3c4d5e6f`,
//! semver build metadata, read by `version`) and `RA_LONG_VERSION` (`0.1.0 (commit HASH)`,
//! read by the command-line definitions in src/cli/).
//!
//! Only release builds ask git: a debug build's output would otherwise change with every
//! commit, and each change would rebuild the crate for the tests. A build outside a git
//! checkout (a source tarball, `cargo install` from a copy) simply has no commit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let commit = if release { commit() } else { None };
    let (short, long) = match commit {
        Some(commit) => (
            format!("{version}+{}", &commit[..12.min(commit.len())]),
            format!("{version} (commit {commit})"),
        ),
        None => (version.clone(), version),
    };
    println!("cargo:rustc-env=RA_VERSION={short}");
    println!("cargo:rustc-env=RA_LONG_VERSION={long}");
}

/// The full hash of HEAD, and the files whose change means a new HEAD (so that the next
/// release build asks again).
fn commit() -> Option<String> {
    let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from)?;
    let common_dir = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from)?;
    watch(&git_dir.join("HEAD"));
    watch(&common_dir.join("packed-refs"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(&common_dir.join(branch));
    }
    git(&["rev-parse", "HEAD"]).filter(|hash| hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Asks cargo to run this again when `path` changes. Only a file that exists is named:
/// cargo runs the script on every build while a named file is missing (a ref that is only
/// in packed-refs has no file of its own, and a fresh clone may have no packed-refs).
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The trimmed output of a successful `git ARGS` in the crate's directory.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
