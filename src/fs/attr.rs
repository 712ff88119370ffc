//! File attributes as the host reports them (`statx`), in a form the NFS layer turns into
//! `fattr3` and `wcc_attr`.

use std::io;
use std::os::fd::BorrowedFd;

use super::sys;

/// The file type, from the mode's `S_IFMT` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    BlockDevice,
    CharDevice,
    Symlink,
    Socket,
    Fifo,
}

impl FileType {
    pub fn from_mode(mode: u32) -> FileType {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFBLK => FileType::BlockDevice,
            libc::S_IFCHR => FileType::CharDevice,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFSOCK => FileType::Socket,
            libc::S_IFIFO => FileType::Fifo,
            _ => FileType::Regular,
        }
    }
}

/// A point in time with nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: u32,
}

/// What `statx` said about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub file_type: FileType,
    /// Permission bits, including setuid/setgid/sticky (no type bits).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Bytes of storage used (`st_blocks` × 512).
    pub used: u64,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub ino: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub mount_id: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// Birth time, when the filesystem reports one: with `ino` it names one incarnation of an
    /// inode, since a reused inode number comes with a new birth time.
    pub btime: Option<Timestamp>,
}

impl Attr {
    pub fn from_statx(s: &libc::statx) -> Attr {
        let ts = |t: libc::statx_timestamp| Timestamp { seconds: t.tv_sec, nanos: t.tv_nsec };
        let mode = s.stx_mode as u32;
        Attr {
            file_type: FileType::from_mode(mode),
            mode: mode & 0o7777,
            nlink: s.stx_nlink,
            uid: s.stx_uid,
            gid: s.stx_gid,
            size: s.stx_size,
            used: s.stx_blocks.saturating_mul(512),
            rdev_major: s.stx_rdev_major,
            rdev_minor: s.stx_rdev_minor,
            ino: s.stx_ino,
            dev_major: s.stx_dev_major,
            dev_minor: s.stx_dev_minor,
            mount_id: s.stx_mnt_id,
            atime: ts(s.stx_atime),
            mtime: ts(s.stx_mtime),
            ctime: ts(s.stx_ctime),
            btime: (s.stx_mask & libc::STATX_BTIME != 0).then(|| ts(s.stx_btime)),
        }
    }

    /// Same device and inode: the same file.
    pub fn same_file(&self, other: &Attr) -> bool {
        self.ino == other.ino && self.dev_major == other.dev_major && self.dev_minor == other.dev_minor
    }
}

#[cfg(test)]
impl Attr {
    /// Attributes for unit tests: a file of `file_type` with inode number `ino` on device 0:30,
    /// mount 1, every other field zero or empty.
    pub fn for_tests(file_type: FileType, ino: u64) -> Attr {
        Attr {
            file_type,
            mode: 0o644,
            nlink: 1,
            uid: 0,
            gid: 0,
            size: 0,
            used: 0,
            rdev_major: 0,
            rdev_minor: 0,
            ino,
            dev_major: 0,
            dev_minor: 30,
            mount_id: 1,
            atime: Timestamp::default(),
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            btime: None,
        }
    }
}

/// Attributes of the file an fd refers to (works on `O_PATH` fds, symlinks included).
pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Attr> {
    sys::statx(fd, c"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW).map(|s| Attr::from_statx(&s))
}

/// Attributes of `name` inside the directory `dir`, not following a final symlink.
pub fn stat_at(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<Attr> {
    sys::statx(dir, name, libc::AT_SYMLINK_NOFOLLOW).map(|s| Attr::from_statx(&s))
}
