//! A connection to the TPM found by [`super::device_path`]: a character device, or a
//! Unix socket such as swtpm's.
//!
//! The device is opened for one signature and closed after it. Through `/dev/tpmrm0`
//! the kernel flushes whatever a process left loaded when it closes the file; the raw
//! device and a socket have no such manager, which is why every object this helper
//! loads is flushed explicitly (see [`super::key`]).

use std::io::{Read as _, Write as _};
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::device_path::DevicePath;
use super::error::TpmError;
use super::rc::{self, Class};
use super::wire::{self, Command, MAX_RESPONSE, Malformed, Response};

/// How long one command may take: an RSA-2048 signature or a primary key made on a slow
/// hardware TPM takes about a second; a TPM that does not answer within this is stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts of a command the TPM answers with "busy" (see [`Class::Retry`]), and the
/// first pause between them, doubled each time (0.05 + 0.1 + ... = 1.55 s in all).
const BUSY_ATTEMPTS: u32 = 6;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

/// An open connection to the TPM.
pub struct Device {
    path: DevicePath,
    link: Link,
}

enum Link {
    /// A character device: one write sends a command, one read returns its answer.
    Char(std::fs::File),
    /// A stream socket (swtpm's `--server type=unixio`): the answer is read by its size.
    Socket(UnixStream),
}

impl Device {
    /// Opens `path`. A raw `/dev/tpm0` that another process holds answers `EBUSY`: that
    /// is retried like a busy TPM.
    pub fn open(path: &DevicePath) -> Result<Self, TpmError> {
        let mut pause = BUSY_PAUSE;
        for attempt in 1.. {
            match Self::try_open(path) {
                Err(TpmError::Open { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY) && attempt < BUSY_ATTEMPTS =>
                {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    fn try_open(path: &DevicePath) -> Result<Self, TpmError> {
        let open_error = |source| TpmError::Open {
            device: path.describe(),
            source,
        };
        let meta = std::fs::metadata(&path.path).map_err(open_error)?;
        let link = if meta.file_type().is_socket() {
            let stream = UnixStream::connect(&path.path).map_err(open_error)?;
            stream
                .set_read_timeout(Some(COMMAND_TIMEOUT))
                .map_err(open_error)?;
            stream
                .set_write_timeout(Some(COMMAND_TIMEOUT))
                .map_err(open_error)?;
            Link::Socket(stream)
        } else {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path.path)
                .map_err(open_error)?;
            Link::Char(file)
        };
        Ok(Self {
            path: path.clone(),
            link,
        })
    }

    /// The device, for messages.
    pub fn describe(&self) -> String {
        self.path.describe()
    }

    /// Sends `command` and returns its answer split, retrying while the TPM says it is
    /// busy. `name` is the command's name for messages; `handles` the number of handles
    /// its answer carries.
    pub fn run(
        &mut self,
        name: &'static str,
        command: &Command,
        handles: usize,
    ) -> Result<Response, TpmError> {
        let bytes = command.encode();
        let mut pause = BUSY_PAUSE;
        let mut attempt = 1;
        loop {
            let answer = self.transact(&bytes)?;
            match wire::response(&answer, handles) {
                Ok(response) => return Ok(response),
                Err(Ok(code)) if rc::class(code) == Class::Retry && attempt < BUSY_ATTEMPTS => {
                    tracing::debug!(command = name, code = %rc::describe(code), attempt, "the TPM is busy; retrying");
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
                Err(Ok(code)) => {
                    return Err(TpmError::Code {
                        command: name,
                        code,
                    });
                }
                Err(Err(malformed)) => return Err(self.malformed(malformed)),
            }
        }
    }

    fn malformed(&self, malformed: Malformed) -> TpmError {
        TpmError::Malformed {
            device: self.describe(),
            problem: malformed,
        }
    }

    /// One command out, one answer in.
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TpmError> {
        let device = self.path.describe();
        let io_error = |source| TpmError::Io {
            device: device.clone(),
            source,
        };
        match &mut self.link {
            Link::Char(file) => {
                file.write_all(command).map_err(io_error)?;
                let mut answer = vec![0u8; MAX_RESPONSE];
                let n = file.read(&mut answer).map_err(io_error)?;
                answer.truncate(n);
                Ok(answer)
            }
            Link::Socket(stream) => {
                stream.write_all(command).map_err(io_error)?;
                let mut header = [0u8; 10];
                stream.read_exact(&mut header).map_err(io_error)?;
                let size = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                if !(10..=MAX_RESPONSE).contains(&size) {
                    return Err(TpmError::Malformed {
                        device,
                        problem: Malformed("its size is out of range"),
                    });
                }
                let mut answer = header.to_vec();
                answer.resize(size, 0);
                stream.read_exact(&mut answer[10..]).map_err(io_error)?;
                Ok(answer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A fake TPM on a Unix socket answering each command with the next of `codes` (as
    /// a response without parameters); returns its path and the count of commands read.
    fn fake_tpm(
        dir: &std::path::Path,
        codes: Vec<u32>,
    ) -> (DevicePath, std::thread::JoinHandle<usize>) {
        let path = dir.join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut served = 0;
            for code in codes {
                let mut header = [0u8; 10];
                if stream.read_exact(&mut header).is_err() {
                    break;
                }
                let size = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
                let mut rest = vec![0u8; size as usize - 10];
                stream.read_exact(&mut rest).unwrap();
                served += 1;
                let mut answer = vec![0x80, 0x01, 0, 0, 0, 10];
                answer.extend_from_slice(&code.to_be_bytes());
                stream.write_all(&answer).unwrap();
            }
            served
        });
        let device = DevicePath {
            path,
            from_env: true,
        };
        (device, server)
    }

    fn flush_command() -> Command {
        Command::new(0x165, &[]).u32(0x8000_0001)
    }

    #[test]
    fn a_busy_tpm_is_asked_again_until_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        // TPM_RC_RETRY, TPM_RC_YIELDED, then success.
        let (path, server) = fake_tpm(dir.path(), vec![0x922, 0x908, 0]);
        let mut device = Device::open(&path).unwrap();
        assert!(device.run("FlushContext", &flush_command(), 0).is_ok());
        drop(device);
        assert_eq!(server.join().unwrap(), 3);
    }

    #[test]
    fn a_wrong_password_is_not_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let (path, server) = fake_tpm(dir.path(), vec![0x98E, 0]);
        let mut device = Device::open(&path).unwrap();
        let error = device.run("Sign", &flush_command(), 0).err().unwrap();
        assert!(
            matches!(error, TpmError::Code { code: 0x98E, .. }),
            "{error}"
        );
        assert_eq!(error.kind(), crate::identity_error::ErrorKind::Password);
        drop(device);
        assert_eq!(server.join().unwrap(), 1);
    }

    #[test]
    fn a_tpm_busy_for_too_long_is_a_transient_device_error() {
        let dir = tempfile::tempdir().unwrap();
        let (path, server) = fake_tpm(dir.path(), vec![0x922; 10]);
        let mut device = Device::open(&path).unwrap();
        let error = device.run("Sign", &flush_command(), 0).err().unwrap();
        assert!(error.kind().is_transient(), "{error}");
        drop(device);
        assert_eq!(server.join().unwrap(), BUSY_ATTEMPTS as usize);
    }
}
