//! Secrets held in memory: passwords, PINs, tokens.
//!
//! A [`Secret`] is zeroized when dropped and prints as `[redacted]` in `Debug`, so it can
//! travel through structs that derive `Debug` without ever reaching a log line.

use std::fmt;
use std::io;
use std::path::Path;

use zeroize::Zeroizing;

/// The largest secret file read: far above any password or PIN.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// A secret string. Its bytes are wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(Zeroizing::new(value))
    }
}

impl Secret {
    /// The secret text. Callers must not log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from a file: the whole content less one trailing line ending, so that
    /// `echo pw > file` and `printf pw > file` give the same secret. At most
    /// [`MAX_FILE_BYTES`]: a path such as `/dev/zero` or a log file given by mistake is an
    /// error, not a read that never ends.
    ///
    /// Unlike the certificate and key files ([`crate::files::read_regular`]), the file
    /// need not be a regular one: a password or PIN may come through a pipe or a process
    /// substitution (`--pkcs11-pin-file <(pass show hsm)`), which leaves no copy on disk.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        use std::io::Read as _;
        let file = std::fs::File::open(path)?;
        // Sized up front, so that no reallocation leaves a copy of the secret behind.
        let size = file.metadata()?.len().min(MAX_FILE_BYTES) + 1;
        let mut bytes = Zeroizing::new(Vec::with_capacity(size as usize));
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it holds more than {MAX_FILE_BYTES} bytes; a password or PIN file holds one line"
                ),
            ));
        }
        Self::from_file_bytes(&bytes)
    }

    /// The secret a file holding `bytes` gives: its UTF-8 text less one trailing line
    /// ending.
    pub fn from_file_bytes(bytes: &[u8]) -> io::Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "the file is not UTF-8 text")
        })?;
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        Ok(Self::from(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::from("hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn file_loses_one_line_ending() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            ("pw\n", "pw"),
            ("pw\r\n", "pw"),
            ("pw", "pw"),
            ("pw\n\n", "pw\n"),
        ] {
            let p = dir.path().join("s");
            std::fs::write(&p, content).unwrap();
            assert_eq!(Secret::from_file(&p).unwrap().expose(), want);
        }
    }

    #[test]
    fn endless_and_oversized_files_are_refused() {
        let error = Secret::from_file(Path::new("/dev/zero")).unwrap_err();
        assert!(
            error.to_string().contains("more than 65536 bytes"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; MAX_FILE_BYTES as usize]).unwrap();
        assert_eq!(
            Secret::from_file(&p).unwrap().expose().len(),
            MAX_FILE_BYTES as usize
        );
        std::fs::write(&p, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(Secret::from_file(&p).is_err());
    }
}
