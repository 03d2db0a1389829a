//! Users and groups given by name or number (the daemon socket's allow list and group, the
//! ECS token file's group), looked up in the system's user and group databases.

use super::origin::{ConfigError, Sourced};

/// A user given by name or number.
pub fn user(given: &Sourced<String>) -> Result<u32, ConfigError> {
    let name = &given.value;
    if let Ok(uid) = name.parse::<u32>() {
        return Ok(uid);
    }
    let c_name = std::ffi::CString::new(name.as_str())
        .map_err(|_| given.error(format!("{name:?} is not a user name")))?;
    // SAFETY: an all-zero `passwd` is a valid value of this plain C struct (null pointers).
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; getpwnam_r writes only into `entry` and
    // `buf` (whose length is passed) and sets `found` to `&entry` or null.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(given.error(format!("{name:?}: no user of that name on this system")));
    }
    Ok(entry.pw_uid)
}

/// A group given by name or number.
pub fn group(given: &Sourced<String>) -> Result<u32, ConfigError> {
    let group = &given.value;
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group.as_str())
        .map_err(|_| given.error(format!("{group:?} is not a group name")))?;
    // SAFETY: an all-zero `group` is a valid value of this plain C struct (null pointers).
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; getgrnam_r writes only into `entry` and
    // `buf` (whose length is passed) and sets `found` to `&entry` or null.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(given.error(format!("{group:?}: no group of that name on this system")));
    }
    Ok(entry.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn flag(value: &str) -> Sourced<String> {
        Sourced::new(value.to_owned(), Origin::Flag("--x"))
    }

    #[test]
    fn users_resolve_by_name_and_number() {
        assert_eq!(user(&flag("0")).unwrap(), 0);
        assert_eq!(user(&flag("root")).unwrap(), 0);
        assert!(user(&flag("no-such-user-here")).is_err());
    }

    #[test]
    fn groups_resolve_by_name_and_number() {
        assert_eq!(group(&flag("0")).unwrap(), 0);
        assert_eq!(group(&flag("root")).unwrap(), 0);
        assert!(group(&flag("no-such-group-here")).is_err());
    }
}
