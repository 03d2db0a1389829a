//! Where the TPM is: `$TPM_DEVICE` (a character device, or a Unix socket such as
//! swtpm's), else the kernel's resource manager `/dev/tpmrm0`, else the raw `/dev/tpm0`.

use std::path::{Path, PathBuf};

/// The environment variable naming the TPM, as the official helper reads it.
pub const DEVICE_ENV: &str = "TPM_DEVICE";
/// The devices tried, in order, when `$TPM_DEVICE` is not set.
pub const DEFAULT_DEVICES: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];
/// Where the TPM is: `$TPM_DEVICE` as given, or the first default device that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePath {
    pub path: PathBuf,
    /// True when `$TPM_DEVICE` named it.
    pub from_env: bool,
}

impl DevicePath {
    /// `env` (the value of `$TPM_DEVICE`) when set and not empty, else the first of
    /// [`DEFAULT_DEVICES`] that `exists`; `None` when there is none.
    pub fn resolve(env: Option<PathBuf>, exists: impl Fn(&Path) -> bool) -> Option<Self> {
        if let Some(path) = env.filter(|p| !p.as_os_str().is_empty()) {
            return Some(Self {
                path,
                from_env: true,
            });
        }
        DEFAULT_DEVICES
            .iter()
            .map(PathBuf::from)
            .find(|p| exists(p))
            .map(|path| Self {
                path,
                from_env: false,
            })
    }

    /// `$TPM_DEVICE=/x` or `/dev/tpmrm0`, for messages.
    pub fn describe(&self) -> String {
        if self.from_env {
            format!("${DEVICE_ENV}={}", self.path.display())
        } else {
            self.path.display().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm_device_wins_then_the_resource_manager_then_the_raw_device() {
        let given = DevicePath::resolve(Some("/run/swtpm/sock".into()), |_| false).unwrap();
        assert_eq!(given.describe(), "$TPM_DEVICE=/run/swtpm/sock");
        let rm = DevicePath::resolve(Some("".into()), |_| true).unwrap();
        assert_eq!(rm.path, Path::new("/dev/tpmrm0"));
        let raw = DevicePath::resolve(None, |p| p == Path::new("/dev/tpm0")).unwrap();
        assert_eq!(raw.describe(), "/dev/tpm0");
        assert_eq!(DevicePath::resolve(None, |_| false), None);
    }
}
