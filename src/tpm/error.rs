//! What can go wrong talking to the TPM, and how each failure reads and whether a daemon
//! should try again ([`TpmError::kind`]).

use super::device_path::{DEFAULT_DEVICES, DEVICE_ENV};
use super::rc::{self, Class};
use super::wire::Malformed;
use crate::identity_error::ErrorKind;

/// A failure of the device or of a command.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    /// Neither `$TPM_DEVICE` nor a default device.
    #[error(
        "no TPM device (${DEVICE_ENV} is not set, and neither {} nor {} exists)",
        DEFAULT_DEVICES[0],
        DEFAULT_DEVICES[1]
    )]
    NoDevice,
    /// The device cannot be opened.
    #[error("TPM device {device} cannot be opened ({source})")]
    Open {
        device: String,
        source: std::io::Error,
    },
    /// Reading or writing the device failed.
    #[error("TPM device {device} failed ({source})")]
    Io {
        device: String,
        source: std::io::Error,
    },
    /// The answer is not a TPM 2.0 response.
    #[error("TPM device {device}: {problem}")]
    Malformed { device: String, problem: Malformed },
    /// The TPM refused a command.
    #[error("the TPM refused {command} ({})", rc::describe(*.code))]
    Code { command: &'static str, code: u32 },
}

impl TpmError {
    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            Self::NoDevice => {
                "set $TPM_DEVICE to the TPM's character device or swtpm's socket, or load the TPM driver (ls /sys/class/tpm)"
            }
            Self::Open { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                "run as a member of the group that owns it (tss on most distributions); under systemd, DeviceAllow=/dev/tpmrm0 rw and SupplementaryGroups=tss"
            }
            Self::Open { .. } => "set $TPM_DEVICE to the TPM's character device or swtpm's socket",
            Self::Io { .. } => "check the TPM (or that swtpm is running)",
            Self::Malformed { .. } => "check that it is a TPM 2.0 device",
            Self::Code { .. } => "check the key, its parent and the TPM",
        }
    }

    /// Whether waiting may help: a device not there yet (a driver loading at boot, swtpm
    /// starting) or failing now. A refused command is the key's or the TPM's state, except
    /// a wrong password, which is never sent again (see [`super::refused`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoDevice => ErrorKind::TokenAbsent,
            Self::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::TokenAbsent
            }
            Self::Open { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                ErrorKind::Unavailable
            }
            Self::Open { .. } | Self::Io { .. } => ErrorKind::Device,
            Self::Malformed { .. } => ErrorKind::Usage,
            Self::Code { code, .. } => match rc::class(*code) {
                Class::WrongPassword | Class::Lockout => ErrorKind::Password,
                Class::Retry => ErrorKind::Device,
                Class::Other => ErrorKind::Refused,
            },
        }
    }
}
