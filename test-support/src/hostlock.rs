//! A host process's byte-range locks on an exported file, taken from the test process with
//! open-file-description locks (`F_OFD_SETLK`/`F_OFD_GETLK`, through nix, so no `unsafe`): each
//! [`HostFile`] is its own open file description, so its locks conflict with the server's (which
//! holds one description per NFS lock owner) as another process's would, even though the server
//! runs in the same process.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

/// The type of a lock as `struct flock` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
}

impl LockType {
    fn raw(self) -> libc::c_short {
        match self {
            LockType::Read => libc::F_RDLCK as libc::c_short,
            LockType::Write => libc::F_WRLCK as libc::c_short,
        }
    }
}

/// A conflicting lock `F_OFD_GETLK` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConflict {
    pub kind: LockType,
    pub start: i64,
    /// 0: to the end of the file.
    pub len: i64,
    /// -1 for an OFD lock (the kernel does not know a process for it).
    pub pid: i32,
}

/// One open file description of a file, read-write.
pub struct HostFile {
    file: File,
}

fn flock(l_type: libc::c_short, start: i64, len: i64) -> libc::flock {
    // `l_pid` must be 0 for OFD commands.
    libc::flock { l_type, l_whence: libc::SEEK_SET as libc::c_short, l_start: start, l_len: len, l_pid: 0 }
}

impl HostFile {
    pub fn open(path: &Path) -> HostFile {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        HostFile { file }
    }

    /// `F_OFD_SETLK`: takes a lock without waiting; `EAGAIN` when another holds a conflicting one.
    pub fn try_lock(&self, kind: LockType, start: i64, len: i64) -> Result<(), Errno> {
        fcntl(&self.file, FcntlArg::F_OFD_SETLK(&flock(kind.raw(), start, len))).map(|_| ())
    }

    /// Takes a lock that must be free.
    pub fn lock(&self, kind: LockType, start: i64, len: i64) {
        self.try_lock(kind, start, len)
            .unwrap_or_else(|e| panic!("host F_OFD_SETLK {kind:?} {start}+{len}: {e}"));
    }

    /// Releases a range.
    pub fn unlock(&self, start: i64, len: i64) {
        fcntl(&self.file, FcntlArg::F_OFD_SETLK(&flock(libc::F_UNLCK as libc::c_short, start, len)))
            .unwrap_or_else(|e| panic!("host unlock {start}+{len}: {e}"));
    }

    /// `F_OFD_GETLK`: the first lock of another description that conflicts with `kind` over the
    /// range, if any.
    pub fn conflict(&self, kind: LockType, start: i64, len: i64) -> Option<HostConflict> {
        let mut fl = flock(kind.raw(), start, len);
        fcntl(&self.file, FcntlArg::F_OFD_GETLK(&mut fl)).expect("F_OFD_GETLK");
        if fl.l_type == libc::F_UNLCK as libc::c_short {
            return None;
        }
        let kind = if fl.l_type == libc::F_WRLCK as libc::c_short { LockType::Write } else { LockType::Read };
        Some(HostConflict { kind, start: fl.l_start, len: fl.l_len, pid: fl.l_pid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two descriptions of one file in one process conflict, as two processes would.
    #[test]
    fn two_descriptions_conflict() {
        let dir = std::env::temp_dir().join(format!("hostlock-{}", std::process::id()));
        std::fs::write(&dir, b"").unwrap();
        let (a, b) = (HostFile::open(&dir), HostFile::open(&dir));
        a.lock(LockType::Write, 10, 10);
        assert_eq!(b.try_lock(LockType::Read, 15, 1), Err(Errno::EAGAIN));
        assert_eq!(
            b.conflict(LockType::Read, 0, 0),
            Some(HostConflict { kind: LockType::Write, start: 10, len: 10, pid: -1 })
        );
        assert_eq!(a.conflict(LockType::Write, 0, 0), None, "its own lock is no conflict");
        a.unlock(0, 0);
        b.lock(LockType::Write, 0, 0);
        std::fs::remove_file(&dir).unwrap();
    }
}
