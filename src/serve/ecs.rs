//! The ECS container-credentials endpoint: `GET /ecs/<name>` with the role's token as the
//! whole `Authorization` header, as SDKs send it from `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
//! (verbatim, no `Bearer` prefix). Each role has its own random token, made at start and
//! written to a file only its consumers can read, so a local process that can reach the
//! port but not the file gets nothing.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use hyper::http::{Method, StatusCode};
use subtle::ConstantTimeEq as _;

use super::asked::Asked;
use super::http::{Reply, unavailable};
use super::role::ServedRole;
use crate::secret::Secret;

/// The path prefix of the per-role endpoints.
pub const PREFIX: &str = "/ecs/";

/// The path at which a role named `name` is served.
pub fn path(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// A new random token: 32 bytes, URL-safe base64, valid as a header value.
pub fn new_token() -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator works");
    Secret::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Answers `GET /ecs/<name>` for `role`, whose token is `token`.
pub fn handle(role: &ServedRole, token: &Secret, method: &Method, asked: &Asked<'_>) -> Reply {
    if method != Method::GET {
        return Reply::method_not_allowed("GET");
    }
    let Some(given) = asked.authorization else {
        return error(
            StatusCode::UNAUTHORIZED,
            "the Authorization header is missing",
        );
    };
    // Constant time, so response timing does not leak how much of a guess was right.
    if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        return error(
            StatusCode::FORBIDDEN,
            "the Authorization header does not match",
        );
    }
    match role.state().documents(SystemTime::now()) {
        Ok(documents) => Reply::bytes(StatusCode::OK, "application/json", documents.ecs.clone()),
        Err(why) => unavailable(&role.name, &why),
    }
}

fn error(status: StatusCode, message: &str) -> Reply {
    let body = serde_json::json!({ "Code": "AccessDenied", "Message": message });
    Reply::bytes(status, "application/json", body.to_string())
}

/// Writes `token` to `path` with no trailing newline (SDKs refuse one), readable by the
/// owner only, or also by `group` when one is given (mode 0640). The file is written beside
/// the target and renamed over it, so a reader never sees a half-written token.
pub fn write_token_file(path: &Path, token: &Secret, group: Option<u32>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut temp = PathBuf::from(dir);
    temp.push(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        if let Some(gid) = group {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
            file.set_permissions(fs::Permissions::from_mode(0o640))?;
        }
        file.write_all(token.expose().as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_has_no_newline_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let token = new_token();
        write_token_file(&path, &token, None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), token.expose());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Rewriting replaces the token in place.
        let second = new_token();
        write_token_file(&path, &second, None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), second.expose());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn token_file_with_a_group_is_0640() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        write_token_file(&path, &new_token(), Some(gid)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), gid);
    }
}
