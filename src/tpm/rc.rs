//! TPM response codes (TPM 2.0 Part 2 §6.6): which ones mean "try again", which one means
//! "wrong password", and their names for messages.

/// What a response code means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The TPM (or the kernel's resource manager) is busy: the same command may succeed
    /// in a moment (`TPM_RC_RETRY`, `TPM_RC_YIELDED`, `TPM_RC_TESTING`, `TPM_RC_NV_RATE`,
    /// and the out-of-memory warnings another process's objects cause).
    Retry,
    /// The authorisation value was wrong (`TPM_RC_AUTH_FAIL`, or `TPM_RC_BAD_AUTH` for
    /// objects outside dictionary-attack protection). Every such attempt counts towards the
    /// TPM's lockout.
    WrongPassword,
    /// The TPM is in dictionary-attack lockout.
    Lockout,
    /// Anything else: the command, the key or the TPM's state is wrong.
    Other,
}

/// The base of a format-1 error (bit 7 set): the error number without the handle,
/// parameter or session it is about.
fn format_one(code: u32) -> Option<u32> {
    (code & 0x80 != 0).then_some(code & 0x3F)
}

/// Classifies `code`.
pub fn class(code: u32) -> Class {
    match format_one(code) {
        Some(0x0E | 0x22) => Class::WrongPassword,
        Some(_) => Class::Other,
        None => match code & 0xFFF {
            0x922 | 0x908 | 0x90A | 0x920 | 0x902 | 0x903 | 0x904 => Class::Retry,
            0x921 => Class::Lockout,
            _ => Class::Other,
        },
    }
}

/// `TPM_RC_NAME (0x...)` for the codes a user may meet, else the number alone.
pub fn describe(code: u32) -> String {
    let name = match format_one(code) {
        Some(n) => match n {
            0x01 => Some("TPM_RC_ASYMMETRIC"),
            0x02 => Some("TPM_RC_ATTRIBUTES"),
            0x03 => Some("TPM_RC_HASH"),
            0x04 => Some("TPM_RC_VALUE"),
            0x05 => Some("TPM_RC_HIERARCHY"),
            0x07 => Some("TPM_RC_KEY_SIZE"),
            0x0A => Some("TPM_RC_TYPE"),
            0x0B => Some("TPM_RC_HANDLE"),
            0x0E => Some("TPM_RC_AUTH_FAIL"),
            0x12 => Some("TPM_RC_SCHEME"),
            0x15 => Some("TPM_RC_SIZE"),
            0x1B => Some("TPM_RC_SIGNATURE"),
            0x1C => Some("TPM_RC_KEY"),
            0x1D => Some("TPM_RC_POLICY_FAIL"),
            0x1F => Some("TPM_RC_INTEGRITY"),
            0x22 => Some("TPM_RC_BAD_AUTH"),
            0x26 => Some("TPM_RC_CURVE"),
            _ => None,
        },
        None => match code & 0xFFF {
            0x101 => Some("TPM_RC_FAILURE"),
            0x143 => Some("TPM_RC_COMMAND_CODE"),
            0x12F => Some("TPM_RC_AUTH_UNAVAILABLE"),
            0x100 => Some("TPM_RC_INITIALIZE"),
            0x902 => Some("TPM_RC_OBJECT_MEMORY"),
            0x908 => Some("TPM_RC_YIELDED"),
            0x90A => Some("TPM_RC_TESTING"),
            0x920 => Some("TPM_RC_NV_RATE"),
            0x921 => Some("TPM_RC_LOCKOUT"),
            0x922 => Some("TPM_RC_RETRY"),
            _ => None,
        },
    };
    match name {
        Some(name) => format!("{name}, 0x{code:x}"),
        None => format!("0x{code:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_with_their_session_and_parameter_bits() {
        assert_eq!(class(0x98E), Class::WrongPassword);
        assert_eq!(class(0x9A2), Class::WrongPassword);
        assert_eq!(class(0x922), Class::Retry);
        assert_eq!(class(0x902), Class::Retry);
        assert_eq!(class(0x921), Class::Lockout);
        assert_eq!(class(0x2C4), Class::Other);
        assert_eq!(describe(0x98E), "TPM_RC_AUTH_FAIL, 0x98e");
        assert_eq!(describe(0x1234), "0x1234");
    }
}
