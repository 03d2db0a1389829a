//! The shared credentials file (`~/.aws/credentials`): rewriting one profile's three keys
//! without touching any other byte, and writing the result so that no reader or second
//! writer ever sees a partial file.
//!
//! The edit works on bytes, line by line, keeping each line's ending: comments (`#`, `;`),
//! other sections and keys, spacing around `=`, CRLF endings, non-UTF-8 text and a missing
//! final newline all survive. Only `aws_access_key_id`, `aws_secret_access_key` and
//! `aws_session_token` of the first section named `[profile]` change; missing ones are
//! added after the section's last non-blank line, and a missing section at the file's end.
//!
//! The write takes an advisory lock (`flock`) on `<file>.lock`, reads the current file under
//! it (so two writers of different profiles never drop each other's; only a regular file of
//! at most [`files::MAX_CREDENTIALS_FILE`] bytes), writes a temporary
//! file in the same folder, fsyncs it, renames it over the target and fsyncs the folder.
//! A new file is 0600 and a new folder 0700; an existing file keeps its mode and owner.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::files;

/// The three keys a profile's credentials occupy, in the order they are added.
const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The values to write for a profile.
pub struct ProfileKeys<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: &'a str,
}

impl ProfileKeys<'_> {
    fn values(&self) -> [&str; 3] {
        [
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
        ]
    }
}

/// The file `update` writes: `$AWS_SHARED_CREDENTIALS_FILE` (a leading `~/` is expanded,
/// as botocore does) or `~/.aws/credentials`.
pub fn default_path(env: impl Fn(&str) -> Option<String>) -> Result<PathBuf, String> {
    let home = || env("HOME").filter(|h| !h.is_empty());
    match env("AWS_SHARED_CREDENTIALS_FILE").filter(|v| !v.is_empty()) {
        Some(value) => match value.strip_prefix("~/") {
            Some(rest) => home().map(|h| Path::new(&h).join(rest)).ok_or_else(|| {
                "AWS_SHARED_CREDENTIALS_FILE starts with ~/ but HOME is not set".into()
            }),
            None => Ok(PathBuf::from(value)),
        },
        None => home()
            .map(|h| Path::new(&h).join(".aws/credentials"))
            .ok_or_else(|| "HOME is not set; set AWS_SHARED_CREDENTIALS_FILE".into()),
    }
}

/// One line with its ending (`\n`, `\r\n`, or none on a last line without one).
struct Line<'a> {
    body: &'a [u8],
    ending: &'a [u8],
}

fn lines(text: &[u8]) -> Vec<Line<'_>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(|raw| {
            let ending_len = if raw.ends_with(b"\r\n") {
                2
            } else if raw.ends_with(b"\n") {
                1
            } else {
                0
            };
            let (body, ending) = raw.split_at(raw.len() - ending_len);
            Line { body, ending }
        })
        .collect()
}

/// The section a line opens, if it is a header: `[name]`, surrounding spaces allowed.
fn header(body: &[u8]) -> Option<&[u8]> {
    let t = body.trim_ascii();
    (t.len() >= 2 && t[0] == b'[' && t[t.len() - 1] == b']').then(|| t[1..t.len() - 1].trim_ascii())
}

/// For a `key = value` line of one of the three keys (not indented: an indented line
/// continues the previous value), the key's index and where the value starts.
fn key_line(body: &[u8]) -> Option<(usize, usize)> {
    if body.first().is_none_or(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let sep = body.iter().position(|&b| b == b'=' || b == b':')?;
    let name = body[..sep].trim_ascii();
    let index = KEYS
        .iter()
        .position(|k| k.as_bytes().eq_ignore_ascii_case(name))?;
    let value_start = sep
        + 1
        + body[sep + 1..]
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
    Some((index, value_start))
}

/// `text` with `profile`'s three keys set to `keys`; every other byte unchanged.
pub fn rewrite(text: &[u8], profile: &str, keys: &ProfileKeys<'_>) -> Vec<u8> {
    let values = keys.values();
    let all = lines(text);
    // The file's own line ending, for lines this adds.
    let eol: &[u8] = match all.iter().find(|l| !l.ending.is_empty()) {
        Some(l) => l.ending,
        None => b"\n",
    };
    let start = all
        .iter()
        .position(|l| header(l.body) == Some(profile.as_bytes()));
    let mut out = Vec::with_capacity(text.len() + 512);
    let Some(start) = start else {
        // No such section: append it, after a blank line when the file has content.
        out.extend_from_slice(text);
        if !text.is_empty() {
            if !text.ends_with(b"\n") {
                out.extend_from_slice(eol);
            }
            if all.last().is_some_and(|l| !l.body.trim_ascii().is_empty()) {
                out.extend_from_slice(eol);
            }
        }
        out.extend_from_slice(format!("[{profile}]").as_bytes());
        out.extend_from_slice(eol);
        for (key, value) in KEYS.iter().zip(values) {
            out.extend_from_slice(format!("{key} = {value}").as_bytes());
            out.extend_from_slice(eol);
        }
        return out;
    };
    let end = all[start + 1..]
        .iter()
        .position(|l| header(l.body).is_some())
        .map_or(all.len(), |i| start + 1 + i);
    // Missing keys go after the section's last non-blank line (the header at least).
    let last_content = (start..end)
        .rev()
        .find(|&i| !all[i].body.trim_ascii().is_empty())
        .unwrap_or(start);
    let mut written = [false; 3];
    for (i, line) in all.iter().enumerate() {
        match (i > start && i < end)
            .then(|| key_line(line.body))
            .flatten()
        {
            Some((index, value_start)) => {
                out.extend_from_slice(&line.body[..value_start]);
                out.extend_from_slice(values[index].as_bytes());
                written[index] = true;
            }
            None => out.extend_from_slice(line.body),
        }
        out.extend_from_slice(line.ending);
        if i == last_content {
            // Every key line of the section is at or before its last non-blank line, so
            // `written` is complete here.
            let no_final_newline = line.ending.is_empty();
            for k in (0..3).filter(|&k| !written[k]) {
                let added = format!("{} = {}", KEYS[k], values[k]);
                // A file without a final newline keeps ending without one.
                if no_final_newline {
                    out.extend_from_slice(eol);
                    out.extend_from_slice(added.as_bytes());
                } else {
                    out.extend_from_slice(added.as_bytes());
                    out.extend_from_slice(eol);
                }
            }
        }
    }
    out
}

/// The values of the three keys in the first section named `profile`, as `rewrite` finds
/// them (the first line of each key), or `None` without such a section: for the tests and
/// the fuzz target that read back what it wrote.
#[cfg(any(test, fuzzing))]
pub(crate) fn profile_values<'a>(text: &'a [u8], profile: &str) -> Option<[Option<&'a [u8]>; 3]> {
    let all = lines(text);
    let start = all
        .iter()
        .position(|l| header(l.body) == Some(profile.as_bytes()))?;
    let mut found = [None; 3];
    for line in all[start + 1..]
        .iter()
        .take_while(|l| header(l.body).is_none())
    {
        if let Some((index, value_start)) = key_line(line.body) {
            found[index].get_or_insert(&line.body[value_start..]);
        }
    }
    Some(found)
}

/// Sets `profile`'s keys in the file at `path`, atomically and under the lock, creating
/// the file (0600) and its folder (0700) if needed.
pub fn update_profile(path: &Path, profile: &str, keys: &ProfileKeys<'_>) -> io::Result<()> {
    // Write through a symlink to its target, rather than replacing the link with a file.
    let path = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?
        .to_string_lossy()
        .into_owned();
    refuse_special_file(&path)?;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    let _lock = Lock::acquire(&dir.join(format!("{name}.lock")))?;

    // Read under the lock, bounded and only if it is a regular file: a FIFO would block
    // this writer for ever, and `/dev/zero` would fill its memory. The bytes hold other
    // profiles' secrets, so they are wiped when dropped.
    let (current, meta) = match files::read_regular(&path, files::MAX_CREDENTIALS_FILE) {
        Ok(bytes) => (bytes, Some(fs::metadata(&path)?)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Zeroizing::new(Vec::new()), None),
        Err(e) => return Err(e),
    };
    let new = rewrite(&current, profile, keys);

    // One temporary name per target: only the lock holder uses it, and a writer killed
    // half-way leaves at most this one file, which the next writer replaces.
    let temp = dir.join(format!(".{name}.tmp"));
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        if let Some(meta) = &meta {
            if meta.uid() != current_uid() || meta.gid() != current_gid() {
                std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
            }
            file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        file.write_all(&new)?;
        file.sync_all()?;
        fs::rename(&temp, &path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Refuses a path that exists but is no regular file (`/dev/zero`, a FIFO, a folder) before
/// anything is created beside it: the lock file would otherwise land in `/dev`, say. The
/// read under the lock checks again, on the open file, so this only decides where the
/// refusal happens.
fn refuse_special_file(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        // `read_regular` refuses such a file after an `fstat`, without reading or blocking,
        // and says what it is; should a regular file have replaced it since, its bytes are
        // dropped here and read again under the lock.
        Ok(meta) if !meta.is_file() => {
            files::read_regular(path, files::MAX_CREDENTIALS_FILE).map(drop)
        }
        _ => Ok(()),
    }
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn current_gid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// An exclusive `flock` on a lock file, released when dropped (or when the process dies,
/// so a killed writer never leaves the file locked).
struct Lock(File);

impl Lock {
    fn acquire(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Self(file));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS_NEW: ProfileKeys<'static> = ProfileKeys {
        access_key_id: "AKNEW",
        secret_access_key: "SECNEW",
        session_token: "TOKNEW",
    };

    /// The rewritten file, after checking that the profile reads back with the new keys
    /// and that rewriting it again changes nothing.
    fn run(before: &str, profile: &str) -> String {
        let after = rewrite(before.as_bytes(), profile, &KEYS_NEW);
        let want: [Option<&[u8]>; 3] = [Some(b"AKNEW"), Some(b"SECNEW"), Some(b"TOKNEW")];
        assert_eq!(profile_values(&after, profile), Some(want), "{before:?}");
        assert_eq!(rewrite(&after, profile, &KEYS_NEW), after, "{before:?}");
        String::from_utf8(after).unwrap()
    }

    #[test]
    fn replaces_values_in_place_keeping_spacing_and_order() {
        let before = "[default]\nregion=eu-west-1\naws_session_token=old\n# note\naws_secret_access_key   =\told\nAWS_ACCESS_KEY_ID: old\n\n[other]\naws_access_key_id = keep\n";
        let after = run(before, "default");
        assert_eq!(
            after,
            "[default]\nregion=eu-west-1\naws_session_token=TOKNEW\n# note\naws_secret_access_key   =\tSECNEW\nAWS_ACCESS_KEY_ID: AKNEW\n\n[other]\naws_access_key_id = keep\n"
        );
    }

    #[test]
    fn adds_missing_keys_after_the_sections_last_line() {
        let before = "[p]\nregion = x\n\n\n[q]\nk = v\n";
        assert_eq!(
            run(before, "p"),
            "[p]\nregion = x\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW\n\n\n[q]\nk = v\n"
        );
    }

    #[test]
    fn last_section_keeps_its_last_line_and_header_is_not_duplicated() {
        assert_eq!(
            run("[a]\nk = v\n[p]\nregion = x", "p"),
            "[a]\nk = v\n[p]\nregion = x\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW"
        );
        assert_eq!(
            run("[a]\nk = v\n[p]\n", "p"),
            "[a]\nk = v\n[p]\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW\n"
        );
        assert_eq!(
            run("[p]", "p"),
            "[p]\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW"
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        assert_eq!(
            run("[p]\r\naws_access_key_id = old\r\n[q]\r\n", "p"),
            "[p]\r\naws_access_key_id = AKNEW\r\naws_secret_access_key = SECNEW\r\naws_session_token = TOKNEW\r\n[q]\r\n"
        );
    }

    #[test]
    fn a_missing_section_is_appended_after_a_blank_line() {
        let expected_tail = "[p]\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW\n";
        assert_eq!(run("", "p"), expected_tail);
        assert_eq!(
            run("[a]\nk = v\n", "p"),
            format!("[a]\nk = v\n\n{expected_tail}")
        );
        assert_eq!(
            run("[a]\nk = v", "p"),
            format!("[a]\nk = v\n\n{expected_tail}")
        );
        assert_eq!(
            run("[a]\nk = v\n\n", "p"),
            format!("[a]\nk = v\n\n{expected_tail}")
        );
        // A commented-out header is not the section.
        assert_eq!(run("# [p]\n", "p"), format!("# [p]\n\n{expected_tail}"));
    }

    #[test]
    fn only_the_first_of_duplicated_sections_changes() {
        assert_eq!(
            run(
                "[p]\naws_access_key_id = 1\n[p]\naws_access_key_id = 2\n",
                "p"
            ),
            "[p]\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW\n[p]\naws_access_key_id = 2\n"
        );
    }

    #[test]
    fn lookalike_keys_and_continuations_are_left_alone() {
        let before = "[p]\naws_access_key_id_extra = x\n  aws_session_token = continuation\n";
        assert_eq!(
            run(before, "p"),
            "[p]\naws_access_key_id_extra = x\n  aws_session_token = continuation\naws_access_key_id = AKNEW\naws_secret_access_key = SECNEW\naws_session_token = TOKNEW\n"
        );
    }

    #[test]
    fn non_utf8_bytes_survive() {
        let before = b"[a]\nname = caf\xe9\n[p]\naws_access_key_id = old\n";
        let after = rewrite(before, "p", &KEYS_NEW);
        assert!(after.starts_with(b"[a]\nname = caf\xe9\n[p]\naws_access_key_id = AKNEW\n"));
    }

    #[test]
    fn path_comes_from_the_environment_or_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_path(env(&[("HOME", "/h")])).unwrap(),
            Path::new("/h/.aws/credentials")
        );
        assert_eq!(
            default_path(env(&[
                ("HOME", "/h"),
                ("AWS_SHARED_CREDENTIALS_FILE", "~/c")
            ]))
            .unwrap(),
            Path::new("/h/c")
        );
        assert_eq!(
            default_path(env(&[("AWS_SHARED_CREDENTIALS_FILE", "/x/c")])).unwrap(),
            Path::new("/x/c")
        );
        assert!(default_path(env(&[])).is_err());
    }

    #[test]
    fn new_files_are_0600_in_a_0700_folder_and_existing_ones_keep_their_mode() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("new/.aws/credentials");
        update_profile(&path, "p", &KEYS_NEW).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        update_profile(&path, "q", &KEYS_NEW).unwrap();
        assert_eq!(mode(&path), 0o640);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("[p]") && text.contains("[q]"), "{text}");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            leftovers.len(),
            2,
            "the file and its lock file: {leftovers:?}"
        );
    }

    #[test]
    fn a_symlinked_file_is_written_through_the_link() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        fs::write(&real, "[a]\nk = v\n").unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        update_profile(&link, "p", &KEYS_NEW).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(fs::read_to_string(&real).unwrap().contains("[p]"));
    }

    #[test]
    fn devices_fifos_and_oversized_files_are_refused_and_left_alone() {
        use std::os::unix::ffi::OsStrExt as _;
        use std::os::unix::fs::FileTypeExt as _;

        let root = tempfile::tempdir().unwrap();
        let fifo = root.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let big = root.path().join("big");
        File::create(&big)
            .unwrap()
            .set_len(files::MAX_CREDENTIALS_FILE + 1)
            .unwrap();
        // (path, what the error says, whether the lock file may be made: a regular file is
        // refused by its size once read under the lock)
        let cases = [
            (
                Path::new("/dev/zero"),
                "is a character device, not a regular file",
                false,
            ),
            (fifo.as_path(), "is a FIFO, not a regular file", false),
            (big.as_path(), "above the limit of 16777216 bytes", true),
        ];
        for (path, problem, locks) in cases {
            let dir = path.parent().unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            let lock = dir.join(format!("{name}.lock"));
            let lock_existed = lock.exists();
            let before = fs::metadata(path).unwrap();

            let error = update_profile(path, "p", &KEYS_NEW).unwrap_err();
            assert!(error.to_string().contains(problem), "{path:?}: {error}");

            let after = fs::metadata(path).unwrap();
            assert_eq!(after.file_type(), before.file_type(), "{path:?}");
            assert_eq!(after.len(), before.len(), "{path:?}");
            assert_eq!(after.ino(), before.ino(), "{path:?} was replaced");
            assert_eq!(
                after.modified().unwrap(),
                before.modified().unwrap(),
                "{path:?}"
            );
            assert!(!dir.join(format!(".{name}.tmp")).exists(), "{path:?}");
            if !locks && !lock_existed {
                assert!(!lock.exists(), "a lock file beside {path:?}");
            }
        }
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}
