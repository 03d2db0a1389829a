//! Reading the files a user names: certificates, keys, chains, CA bundles, the config file
//! and the shared credentials file.
//!
//! Each is read whole, so each is read with a size limit and only if it is a regular file.
//! Without that, `--certificate /dev/zero` reads until memory runs out (and the daemon
//! re-reads these files at every refresh), and a FIFO blocks its reader until some writer
//! comes, which would hold up a refresh, or `SIGTERM`, for ever. The file is opened with
//! `O_NONBLOCK`, so that opening a FIFO returns at once, and checked with `fstat` on the
//! open descriptor, so that nothing can be swapped in between the check and the read.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use zeroize::Zeroizing;

/// Certificates, keys, PKCS#12 files and intermediate bundles: a few KiB in practice.
pub const MAX_IDENTITY_FILE: u64 = 1024 * 1024;
/// A CA bundle may be a whole system trust store (about 200 KiB today).
pub const MAX_CA_BUNDLE: u64 = 8 * 1024 * 1024;
/// The TOML config file.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;
/// The shared credentials file, which other tools write too.
pub const MAX_CREDENTIALS_FILE: u64 = 16 * 1024 * 1024;

/// Reads the regular file at `path` whole, if it holds at most `limit` bytes. The bytes are
/// wiped when dropped, since key files are read this way too.
///
/// The errors are [`io::Error`]s whose kind says what went wrong: `NotFound` and
/// `PermissionDenied` as the system reports them (a file that may yet appear or become
/// readable), `InvalidInput` for anything but a regular file, `FileTooLarge` past `limit`.
/// Their text is a phrase that reads after the file's name ("is a FIFO, not a regular
/// file").
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {}, not a regular file", kind_of(&meta.file_type())),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    // Sized up front, so that no reallocation leaves a copy of a key behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    read_at_most(file, limit, &mut bytes)?;
    Ok(bytes)
}

/// Reads to the end, but never more than `limit` bytes: the file may grow after `fstat`.
fn read_at_most(file: File, limit: u64, into: &mut Vec<u8>) -> io::Result<()> {
    file.take(limit + 1).read_to_end(into)?;
    if into.len() as u64 > limit {
        return Err(too_large(into.len() as u64, limit));
    }
    Ok(())
}

fn too_large(size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("holds {size} bytes or more, above the limit of {limit} bytes for this file"),
    )
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Whether an error from [`read_regular`] may go away by itself: the file is missing or
/// cannot be read now, but may appear or become readable (a mount that comes late, a
/// certificate being renewed, a permission fixed). Anything else is the wrong file.
pub fn may_pass(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(read_regular(&path, 3).unwrap().as_slice(), b"abc");
        let error = read_regular(&path, 2).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
        ] {
            let error = read_regular(path, MAX_IDENTITY_FILE).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{path:?}");
            assert!(error.to_string().contains(what), "{error}");
            assert!(!may_pass(&error));
        }
    }

    #[test]
    fn a_sparse_file_past_the_limit_is_refused_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let file = File::create(&path).unwrap();
        file.set_len(2 * 1024 * 1024 * 1024).unwrap();
        let error = read_regular(&path, MAX_IDENTITY_FILE).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert!(error.to_string().contains("2147483648 bytes"), "{error}");
    }

    #[test]
    fn a_missing_file_may_appear() {
        let error = read_regular(Path::new("/nonexistent/x"), 10).unwrap_err();
        assert!(may_pass(&error));
    }
}
