//! The state directory: what must outlive the process for clients' file handles to stay valid.
//!
//! Two files live there:
//!
//! - `handle.key`: the 16-byte secret that authenticates handles (see [`HandleKey`]);
//! - `rnfsd.state`: a text record of the key's fingerprint and the fsid given to each export
//!   path, so an export keeps its fsid (which every handle embeds) across restarts.
//!
//! Exclusive-create verifiers are not here: like knfsd, they are stored in the created file's
//! times, so they live and die with the file itself.
//!
//! Losing or damaging the key would make every handle a client holds stale without any sign of
//! why, so the rules are strict: a fresh directory gets a new key (and the banner says so); a
//! record without its key, a key of the wrong size, or a key that does not match the record's
//! fingerprint stops the server with an error that says how to recover. A missing record next
//! to a key (a directory from before the record existed) is rebuilt from the key, which yields
//! the same fsids, so nothing changes for clients.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::handle::{HandleKey, random_bytes};

pub const KEY_FILE: &str = "handle.key";
pub const RECORD_FILE: &str = "rnfsd.state";
const RECORD_VERSION: u32 = 1;
const KEY_LEN: usize = 16;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "{key} is missing but {record} shows this directory was used before: starting with a new key would \
         make every file handle clients hold stale. Restore handle.key from a backup, or delete {record} to \
         start afresh (clients must then remount)"
    )]
    KeyMissing { key: String, record: String },
    #[error("{path}: the handle key must be exactly {KEY_LEN} bytes, found {len}; restore it from a backup")]
    KeyLength { path: String, len: usize },
    #[error(
        "{key} does not match the key fingerprint in {record}: the key was replaced or damaged, and every \
         file handle clients hold would be stale. Restore the original handle.key, or delete {record} to \
         accept the new key (clients must then remount)"
    )]
    KeyMismatch { key: String, record: String },
    #[error("{path}:{line}: {reason}")]
    Record { path: String, line: usize, reason: String },
}

/// Whether this start made the handle key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Created,
}

/// The loaded state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    pub key: HandleKey,
    pub key_origin: KeyOrigin,
    /// Recorded fsid of each export path ever served with this directory.
    fsids: BTreeMap<PathBuf, u64>,
    /// What the record file holds now, to skip rewriting an unchanged record (a read-only state
    /// directory keeps working once it is complete).
    record_on_disk: Option<String>,
}

impl StateDir {
    /// Loads the key and the record from `dir`, creating the directory (0700) and a new key when
    /// the directory holds neither.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        let io_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| StateError::Io { path, source }
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
        let key_path = dir.join(KEY_FILE);
        let record_path = dir.join(RECORD_FILE);

        let record_text = match std::fs::read_to_string(&record_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&record_path)(e)),
        };
        let record = match &record_text {
            Some(text) => Some(parse_record(text).map_err(|(line, reason)| StateError::Record {
                path: record_path.display().to_string(),
                line,
                reason,
            })?),
            None => None,
        };

        let (key, key_origin) = match std::fs::read(&key_path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| StateError::KeyLength {
                    path: key_path.display().to_string(),
                    len: bytes.len(),
                })?;
                warn_if_exposed(&key_path);
                (HandleKey::from_bytes(key), KeyOrigin::Loaded)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if record.is_some() {
                    return Err(StateError::KeyMissing {
                        key: key_path.display().to_string(),
                        record: record_path.display().to_string(),
                    });
                }
                let key = random_bytes::<KEY_LEN>().map_err(io_err(&key_path))?;
                write_atomically(dir, KEY_FILE, &key, 0o600).map_err(io_err(&key_path))?;
                (HandleKey::from_bytes(key), KeyOrigin::Created)
            }
            Err(e) => return Err(io_err(&key_path)(e)),
        };

        let fsids = match record {
            Some(record) => {
                if record.key_check != key.fingerprint() {
                    return Err(StateError::KeyMismatch {
                        key: key_path.display().to_string(),
                        record: record_path.display().to_string(),
                    });
                }
                record.fsids
            }
            None => BTreeMap::new(),
        };
        Ok(StateDir { dir: dir.to_path_buf(), key, key_origin, fsids, record_on_disk: record_text })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The fsid recorded for an export path, if it was served before.
    pub fn recorded_fsid(&self, path: &Path) -> Option<u64> {
        self.fsids.get(path).copied()
    }

    /// Records the fsids in use now and writes the record when it changed. An fsid now used by
    /// another path is dropped from its old path, so a later export of that path gets a fresh one.
    pub fn record_fsids(&mut self, in_use: &[(PathBuf, u64)]) -> Result<(), StateError> {
        for (path, fsid) in in_use {
            self.fsids.retain(|p, f| p == path || f != fsid);
            self.fsids.insert(path.clone(), *fsid);
        }
        let text = render_record(self.key.fingerprint(), &self.fsids);
        if self.record_on_disk.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        write_atomically(&self.dir, RECORD_FILE, text.as_bytes(), 0o600).map_err(|source| {
            StateError::Io { path: self.dir.join(RECORD_FILE).display().to_string(), source }
        })?;
        self.record_on_disk = Some(text);
        Ok(())
    }
}

/// Anyone who can read the key can forge handles for any file on an exported filesystem.
fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "{} is readable by others (mode {:o}): whoever reads it can forge file handles; chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}

/// Writes `name` in `dir` through a synced temporary file and a rename, then syncs the directory,
/// so a crash leaves either the old or the new content.
pub(crate) fn write_atomically(dir: &Path, name: &str, content: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

struct Record {
    key_check: u64,
    fsids: BTreeMap<PathBuf, u64>,
}

fn render_record(key_check: u64, fsids: &BTreeMap<PathBuf, u64>) -> String {
    let mut text = format!(
        "# rnfsd state: written by rnfsd at startup. Clients' file handles depend on it and on handle.key.\n\
         version {RECORD_VERSION}\nkey-check {key_check:016x}\n"
    );
    for (path, fsid) in fsids {
        text.push_str(&format!("fsid {fsid} {}\n", escape_path(path)));
    }
    text
}

/// Parses the record; an error carries the 1-based line and the reason.
fn parse_record(text: &str) -> Result<Record, (usize, String)> {
    let mut version = None;
    let mut key_check = None;
    let mut fsids = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "version" => {
                let v: u32 = rest.parse().map_err(|_| (n, format!("bad version {rest:?}")))?;
                if v != RECORD_VERSION {
                    return Err((
                        n,
                        format!("record version {v} is not supported (this rnfsd writes {RECORD_VERSION})"),
                    ));
                }
                version = Some(v);
            }
            "key-check" => {
                let v = u64::from_str_radix(rest, 16)
                    .ok()
                    .filter(|_| rest.len() == 16)
                    .ok_or_else(|| (n, format!("bad key-check {rest:?}")))?;
                key_check = Some(v);
            }
            "fsid" => {
                let (fsid, path) =
                    rest.split_once(' ').ok_or_else(|| (n, "expected: fsid NUMBER PATH".to_string()))?;
                let fsid: u64 = fsid.parse().map_err(|_| (n, format!("bad fsid {fsid:?}")))?;
                let path = unescape_path(path).ok_or_else(|| (n, format!("bad path {path:?}")))?;
                if !path.is_absolute() {
                    return Err((n, format!("path {} is not absolute", path.display())));
                }
                fsids.insert(path, fsid);
            }
            other => return Err((n, format!("unknown entry {other:?}"))),
        }
    }
    if version.is_none() {
        return Err((1, "no version line".into()));
    }
    let key_check = key_check.ok_or((1, "no key-check line".to_string()))?;
    Ok(Record { key_check, fsids })
}

/// Paths are bytes: everything outside printable ASCII, and the backslash, is written `\xHH`.
fn escape_path(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && b != b'\\' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn unescape_path(text: &str) -> Option<PathBuf> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = text.get(i + 2..i + 4).filter(|_| bytes.get(i + 1) == Some(&b'x'))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(PathBuf::from(OsStr::from_bytes(&out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fsid_paths() -> Vec<(PathBuf, u64)> {
        vec![(PathBuf::from("/srv/a"), 11), (PathBuf::from("/srv/with space/\\odd\n\u{e9}"), 22)]
    }

    #[test]
    fn fresh_directory_gets_a_key_and_a_record_that_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let mut s = StateDir::open(&dir).unwrap();
        assert_eq!(s.key_origin, KeyOrigin::Created);
        s.record_fsids(&fsid_paths()).unwrap();
        let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);

        let again = StateDir::open(&dir).unwrap();
        assert_eq!(again.key_origin, KeyOrigin::Loaded);
        assert_eq!(again.key.fingerprint(), s.key.fingerprint());
        for (path, fsid) in fsid_paths() {
            assert_eq!(again.recorded_fsid(&path), Some(fsid), "{}", path.display());
        }
        assert_eq!(again.recorded_fsid(Path::new("/srv/other")), None);
    }

    #[test]
    fn unchanged_record_is_not_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = StateDir::open(tmp.path()).unwrap();
        s.record_fsids(&fsid_paths()).unwrap();
        let record = tmp.path().join(RECORD_FILE);
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let written = inode(&record);
        let mut again = StateDir::open(tmp.path()).unwrap();
        again.record_fsids(&fsid_paths()).unwrap();
        assert_eq!(inode(&record), written, "an unchanged record is left alone");
        again.record_fsids(&[(PathBuf::from("/srv/new"), 33)]).unwrap();
        assert_ne!(inode(&record), written, "a changed record is replaced");
    }

    #[test]
    fn missing_key_next_to_a_record_is_an_error_not_a_new_key() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = StateDir::open(tmp.path()).unwrap();
        s.record_fsids(&fsid_paths()).unwrap();
        std::fs::remove_file(tmp.path().join(KEY_FILE)).unwrap();
        let err = StateDir::open(tmp.path()).unwrap_err();
        assert!(matches!(err, StateError::KeyMissing { .. }), "{err}");
        assert!(!tmp.path().join(KEY_FILE).exists(), "no new key may be made");
        assert!(err.to_string().contains("Restore handle.key"), "{err}");
    }

    #[test]
    fn short_long_or_replaced_keys_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = StateDir::open(tmp.path()).unwrap();
        s.record_fsids(&fsid_paths()).unwrap();
        let key_path = tmp.path().join(KEY_FILE);
        let good = std::fs::read(&key_path).unwrap();
        for len in [0, 15, 17] {
            std::fs::write(&key_path, vec![1u8; len]).unwrap();
            let err = StateDir::open(tmp.path()).unwrap_err();
            assert!(matches!(err, StateError::KeyLength { len: l, .. } if l == len), "{err}");
        }
        let mut flipped = good.clone();
        flipped[3] ^= 0x10;
        std::fs::write(&key_path, &flipped).unwrap();
        let err = StateDir::open(tmp.path()).unwrap_err();
        assert!(matches!(err, StateError::KeyMismatch { .. }), "{err}");
        std::fs::write(&key_path, &good).unwrap();
        StateDir::open(tmp.path()).unwrap();
    }

    #[test]
    fn key_without_record_is_adopted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(KEY_FILE), [9u8; 16]).unwrap();
        let mut s = StateDir::open(tmp.path()).unwrap();
        assert_eq!(s.key_origin, KeyOrigin::Loaded);
        assert_eq!(s.key.fingerprint(), HandleKey::from_bytes([9; 16]).fingerprint());
        s.record_fsids(&[(PathBuf::from("/x"), 5)]).unwrap();
        assert_eq!(StateDir::open(tmp.path()).unwrap().recorded_fsid(Path::new("/x")), Some(5));
    }

    #[test]
    fn damaged_record_names_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = StateDir::open(tmp.path()).unwrap();
        s.record_fsids(&fsid_paths()).unwrap();
        let record = tmp.path().join(RECORD_FILE);
        let text = std::fs::read_to_string(&record).unwrap();
        let cases = [
            (text.replace("fsid 11 ", "fsid eleven "), "bad fsid"),
            (text.replace("version 1", "version 7"), "not supported"),
            (text.replace("key-check ", "key-check zz"), "bad key-check"),
            (format!("{text}garbage here\n"), "unknown entry"),
            (text.replace("/srv/a", "relative"), "not absolute"),
            (text.replace("/srv/a", "/srv/\\q1"), "bad path"),
            (String::new(), "no version"),
        ];
        for (damaged, reason) in cases {
            std::fs::write(&record, &damaged).unwrap();
            let err = StateDir::open(tmp.path()).unwrap_err();
            assert!(matches!(err, StateError::Record { .. }), "{err}");
            assert!(err.to_string().contains(reason), "{err} should say {reason}");
            assert!(err.to_string().contains(":"), "{err}");
        }
    }

    #[test]
    fn reused_fsid_moves_to_its_new_path() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = StateDir::open(tmp.path()).unwrap();
        s.record_fsids(&[(PathBuf::from("/old"), 7)]).unwrap();
        s.record_fsids(&[(PathBuf::from("/new"), 7)]).unwrap();
        let again = StateDir::open(tmp.path()).unwrap();
        assert_eq!(again.recorded_fsid(Path::new("/new")), Some(7));
        assert_eq!(again.recorded_fsid(Path::new("/old")), None);
    }

    #[test]
    fn path_escaping_round_trips_every_byte() {
        let all: Vec<u8> = std::iter::once(b'/').chain(1..=255u8).collect();
        let path = PathBuf::from(OsStr::from_bytes(&all));
        let text = escape_path(&path);
        assert!(!text.contains('\n'));
        assert_eq!(unescape_path(&text).unwrap(), path);
    }
}
