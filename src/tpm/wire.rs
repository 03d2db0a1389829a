//! TPM 2.0 command and response framing (TPM 2.0 Part 1 §18, Part 3 §5): big-endian
//! integers and size-prefixed `TPM2B` buffers, the command header, the handle area, the
//! authorisation area of a password session, and the response header.
//!
//! Only what the five commands this helper sends need: the key blobs of a key file are
//! passed through as the file holds them, and the answers read field by field with a
//! bounds check on every read, so that a truncated or hostile answer is an error, not a
//! panic.

use crate::secret::Secret;

/// `TPM_ST_NO_SESSIONS`: a command or response without an authorisation area.
pub const ST_NO_SESSIONS: u16 = 0x8001;
/// `TPM_ST_SESSIONS`: a command or response with an authorisation area.
pub const ST_SESSIONS: u16 = 0x8002;
/// `TPM_RS_PW`: the password "session" (the authorisation value sent in clear).
const RS_PW: u32 = 0x4000_0009;
/// The largest response read: TPM2 commands and responses are at most 4096 bytes on
/// every TPM this helper has to talk to; twice that leaves room.
pub const MAX_RESPONSE: usize = 8192;

/// A command being built: header, handles, optional password session, parameters.
pub struct Command {
    code: u32,
    handles: Vec<u32>,
    /// The authorisation value of each handle that needs one (a password session each).
    auth: Option<Vec<Secret>>,
    params: Vec<u8>,
}

impl Command {
    /// A command with command code `code` and the handles of its handle area.
    pub fn new(code: u32, handles: &[u32]) -> Self {
        Self {
            code,
            handles: handles.to_vec(),
            auth: None,
            params: Vec::new(),
        }
    }

    /// Authorises the command's first handle with a password session holding `password`
    /// (empty for objects and hierarchies without one).
    pub fn password(mut self, password: Secret) -> Self {
        self.auth = Some(vec![password]);
        self
    }

    pub fn u16(mut self, value: u16) -> Self {
        self.params.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub fn u32(mut self, value: u32) -> Self {
        self.params.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Bytes already in wire form (a `TPM2B_PUBLIC` or `TPM2B_PRIVATE` of a key file).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.params.extend_from_slice(bytes);
        self
    }

    /// A `TPM2B`: a 16-bit size, then the bytes.
    pub fn sized(self, bytes: &[u8]) -> Self {
        // Callers pass digests and templates, far below 64 KiB.
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        self.u16(len).raw(&bytes[..usize::from(len)])
    }

    /// The command bytes. Zeroized by the caller's [`zeroize::Zeroizing`], since the
    /// authorisation area holds the password.
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(64 + self.params.len()));
        let tag = if self.auth.is_some() {
            ST_SESSIONS
        } else {
            ST_NO_SESSIONS
        };
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.code.to_be_bytes());
        for handle in &self.handles {
            out.extend_from_slice(&handle.to_be_bytes());
        }
        if let Some(auth) = &self.auth {
            let mut area = zeroize::Zeroizing::new(Vec::new());
            for password in auth {
                let bytes = password.expose().as_bytes();
                area.extend_from_slice(&RS_PW.to_be_bytes());
                area.extend_from_slice(&0u16.to_be_bytes()); // nonceCaller: empty
                area.push(0); // sessionAttributes
                let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
                area.extend_from_slice(&len.to_be_bytes());
                area.extend_from_slice(&bytes[..usize::from(len)]);
            }
            let len = u32::try_from(area.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&area);
        }
        out.extend_from_slice(&self.params);
        let size = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out[2..6].copy_from_slice(&size.to_be_bytes());
        out
    }
}

/// A malformed answer from the TPM (or from whatever is at the device path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the TPM's answer is malformed ({0})")]
pub struct Malformed(pub &'static str);

/// Reads fields from a buffer, refusing to read past its end.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < n {
            return Err(Malformed(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `TPM2B`: its bytes, without the size.
    pub fn sized(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A successful response, split: the handles it returns and its parameter area.
pub struct Response {
    pub handles: Vec<u32>,
    pub params: Vec<u8>,
}

/// Splits a response of a command with `handles` handles in its answer. A non-zero
/// response code is returned as `Err(Ok(code))`; a malformed frame as `Err(Err(..))`.
pub fn response(bytes: &[u8], handles: usize) -> Result<Response, Result<u32, Malformed>> {
    let mut r = Reader::new(bytes);
    let tag = r.u16("header").map_err(Err)?;
    let size = r.u32("header").map_err(Err)?;
    let code = r.u32("header").map_err(Err)?;
    if usize::try_from(size).ok() != Some(bytes.len()) {
        return Err(Err(Malformed("its size field disagrees with its length")));
    }
    if code != 0 {
        return Err(Ok(code));
    }
    let mut out = Vec::with_capacity(handles);
    for _ in 0..handles {
        out.push(r.u32("handle area").map_err(Err)?);
    }
    let params = match tag {
        ST_SESSIONS => {
            let len = r.u32("parameter size").map_err(Err)?;
            let len = usize::try_from(len).map_err(|_| Err(Malformed("parameter size")))?;
            r.take(len, "parameter area").map_err(Err)?.to_vec()
        }
        ST_NO_SESSIONS => r
            .take(r.bytes.len(), "parameter area")
            .map_err(Err)?
            .to_vec(),
        _ => return Err(Err(Malformed("unknown tag"))),
    };
    Ok(Response {
        handles: out,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_command_is_framed_with_its_size_and_session() {
        let bytes = Command::new(0x15D, &[0x8000_0001])
            .password(Secret::from("pw".to_owned()))
            .sized(&[0xAA])
            .encode();
        let want: Vec<u8> = [
            &[0x80, 0x02][..],
            &[0, 0, 0, 0x20],
            &[0, 0, 0x01, 0x5D],
            &[0x80, 0, 0, 1],
            &[0, 0, 0, 11],
            &[0x40, 0, 0, 9, 0, 0, 0, 0, 2, b'p', b'w'],
            &[0, 1, 0xAA],
        ]
        .concat();
        assert_eq!(*bytes, want);
    }

    #[test]
    fn responses_are_split_and_bad_ones_refused() {
        let ok = [
            0x80, 0x02, 0, 0, 0, 0x15, 0, 0, 0, 0, 0x80, 0, 0, 2, 0, 0, 0, 2, 0xBE, 0xEF, 0,
        ];
        let r = response(&ok, 1).ok().unwrap();
        assert_eq!(r.handles, vec![0x8000_0002]);
        assert_eq!(r.params, vec![0xBE, 0xEF]);
        let fail = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x8E];
        assert!(matches!(response(&fail, 1), Err(Ok(0x98E))));
        let short = [0x80, 0x01, 0, 0, 0, 10, 0, 0];
        assert!(matches!(response(&short, 0), Err(Err(_))));
        let lying = [0x80, 0x02, 0, 0, 0, 0x30, 0, 0, 0, 0, 0x80, 0, 0, 2];
        assert!(matches!(response(&lying, 1), Err(Err(_))));
    }
}
