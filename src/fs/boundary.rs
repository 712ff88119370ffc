//! The export boundary: whether a directory is below its export's root right now.
//!
//! A directory's kernel handle names its inode wherever it is on the filesystem, so a directory
//! moved out of an export (by the host, or by a RENAME through an overlapping export) would keep
//! a working handle, and `..` from it would climb to the host's `/`. Every resolution of a
//! directory handle other than the root's therefore checks that the root is an ancestor:
//!
//! - The first time, by walking up with `openat(fd, "..")` and `statx` until the root (inside,
//!   at depth k), the top of the tree, another mount or [`MAX_DEPTH`] levels (outside).
//! - After that, with one `statx(fd, "../..(k times)")`: if that names the root, the root is an
//!   ancestor. If not, the directory moved; the walk runs again and finds where.
//!
//! The root is identified by device, inode number and mount id; the export keeps it open, so its
//! inode number cannot be reused by another directory.
//!
//! A directory can only leave the root's subtree by a rename (of itself or of a directory between
//! it and the root). Where the kernel lets rnfsd watch the filesystem ([`RenameWatch`], fanotify,
//! root only), a directory found inside stays trusted until the next rename anywhere on that
//! filesystem: the check is then an `ioctl` telling that no rename event is queued.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::attr::{self, Attr};
use super::sys;

/// The deepest a directory may lie below its export's root: `..` repeated this many times
/// (`../` is 3 bytes) still fits in a path of PATH_MAX (4,096 bytes with its NUL), so the check
/// is always one `statx`. Deeper directories are treated as outside (answered STALE): local
/// tools cannot name them by path either.
pub const MAX_DEPTH: u32 = (libc::PATH_MAX as u32) / 3;

/// Where a directory lies as seen from its export's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Below the root, this many `..` steps up.
    Inside(u32),
    /// Not below the root (or deeper than [`MAX_DEPTH`]).
    Outside,
}

/// `..` repeated [`MAX_DEPTH`] times, NUL-terminated; its suffixes are the shorter repetitions.
static DOTDOTS: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut s = b"../".repeat(MAX_DEPTH as usize - 1);
    s.extend_from_slice(b"..\0");
    s
});

/// `..` repeated `depth` times (1 ≤ `depth` ≤ [`MAX_DEPTH`]).
fn dotdots(depth: u32) -> &'static CStr {
    let depth = depth.clamp(1, MAX_DEPTH) as usize;
    let all = &DOTDOTS[..];
    CStr::from_bytes_with_nul(&all[all.len() - (3 * depth - 1) - 1..]).expect("one NUL, at the end")
}

/// Whether `a` is the directory `root` describes, on the same mount.
fn is_root(root: &Attr, a: &Attr) -> bool {
    a.same_file(root) && a.mount_id == root.mount_id
}

/// Whether `depth` steps up from `dir` is `root`, with one `statx`.
fn root_is_at(root: &Attr, dir: BorrowedFd<'_>, depth: u32) -> bool {
    sys::statx(dir, dotdots(depth), libc::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|s| is_root(root, &Attr::from_statx(&s)))
}

/// Walks up from `dir` (whose attributes are `dir_attr`) to find where it lies.
fn walk(root: &Attr, dir: BorrowedFd<'_>, dir_attr: &Attr) -> io::Result<Placement> {
    let mut parent_fd: Option<OwnedFd> = None;
    let mut below = dir_attr.clone();
    for depth in 1..=MAX_DEPTH {
        let from = parent_fd.as_ref().map_or(dir, |f| f.as_fd());
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY;
        let up = match openat(from, c"..", flags, Mode::empty()) {
            Ok(fd) => fd,
            // `..` of a directory that is not reachable from its mount's root.
            Err(nix::errno::Errno::ENOENT) => return Ok(Placement::Outside),
            Err(e) => return Err(e.into()),
        };
        let a = attr::stat_fd(up.as_fd())?;
        if is_root(root, &a) {
            return Ok(Placement::Inside(depth));
        }
        // The top of the process's tree (`..` is itself), or past the root's mount.
        if a.mount_id != root.mount_id || a.same_file(&below) {
            return Ok(Placement::Outside);
        }
        below = a;
        parent_fd = Some(up);
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a directory more than {MAX_DEPTH} levels below an export root was refused (answered STALE); \
             this is logged once"
        );
    }
    Ok(Placement::Outside)
}

/// Where the directory `dir` (attributes `dir_attr`, not the root itself) lies as seen from the
/// export root `root`. `known_depth` is where it was last found (0: unknown): when the root is
/// still that many steps up this costs one `statx`.
pub fn placement(
    root: &Attr,
    dir: BorrowedFd<'_>,
    dir_attr: &Attr,
    known_depth: u32,
) -> io::Result<Placement> {
    if known_depth > 0 && root_is_at(root, dir, known_depth) {
        return Ok(Placement::Inside(known_depth));
    }
    walk(root, dir, dir_attr)
}

/// Counts renames on the watched filesystems: a directory found inside while the count was `g`
/// is still inside as long as [`RenameWatch::generation`] is `g`.
///
/// The kernel queues a rename's event after moving the entry and before the rename returns.
/// [`RenameWatch::generation`] first asks whether an event is queued and, if one is, counts up
/// before reading the queue empty; only then does it read the count. So a rename that happened
/// before the call either is still queued (and is counted now) or was read by a call that counted
/// it before reading it: either way the count differs from any taken before that rename.
pub struct RenameWatch {
    group: Option<OwnedFd>,
    generation: AtomicU64,
    /// Held while reading the queue empty; the buffer it is read into.
    drain: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for RenameWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenameWatch").field("watching", &self.group.is_some()).finish()
    }
}

impl RenameWatch {
    /// A watch with nothing marked yet; without a fanotify group (not root, or an old kernel)
    /// it watches nothing and every check takes its `statx`.
    pub fn new() -> RenameWatch {
        let group = match sys::rename_notifier() {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::info!(
                    "renames are not watched (fanotify: {e}); directory handles are checked with a statx each"
                );
                None
            }
        };
        RenameWatch { group, generation: AtomicU64::new(1), drain: Mutex::new(vec![0; 64 * 1024]) }
    }

    /// Watches renames on the filesystem of `root`; whether it could.
    pub fn watch(&self, root: BorrowedFd<'_>) -> bool {
        let Some(group) = &self.group else { return false };
        match sys::watch_renames(group.as_fd(), root) {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(
                    "renames on an export's filesystem are not watched (fanotify: {e}); its directory \
                     handles are checked with a statx each"
                );
                false
            }
        }
    }

    /// The rename count now (never 0), or 0 when renames are not watched.
    pub fn generation(&self) -> u64 {
        let Some(group) = &self.group else { return 0 };
        if sys::queued_bytes(group.as_fd()).map_or(true, |n| n > 0) {
            let mut buf = self.drain.lock().unwrap_or_else(|p| p.into_inner());
            self.generation.fetch_add(1, Ordering::SeqCst);
            sys::discard_queued(group.as_fd(), &mut buf);
        }
        self.generation.load(Ordering::SeqCst)
    }
}

impl Default for RenameWatch {
    fn default() -> Self {
        RenameWatch::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &std::path::Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn dotdots_are_exact() {
        assert_eq!(dotdots(1).to_bytes(), b"..");
        assert_eq!(dotdots(3).to_bytes(), b"../../..");
        assert_eq!(dotdots(MAX_DEPTH).to_bytes().len(), 3 * MAX_DEPTH as usize - 1);
        assert!(dotdots(MAX_DEPTH).to_bytes_with_nul().len() <= libc::PATH_MAX as usize);
    }

    #[test]
    fn inside_outside_and_moves() {
        let base = tempfile::tempdir().unwrap();
        let root_path = base.path().join("root");
        std::fs::create_dir_all(root_path.join("a/b/c")).unwrap();
        let root = attr::stat_fd(open(&root_path).as_fd()).unwrap();
        let c = open(&root_path.join("a/b/c"));
        let c_attr = attr::stat_fd(c.as_fd()).unwrap();
        assert_eq!(placement(&root, c.as_fd(), &c_attr, 0).unwrap(), Placement::Inside(3));
        assert_eq!(placement(&root, c.as_fd(), &c_attr, 3).unwrap(), Placement::Inside(3));
        // A wrong hint costs a walk, not a wrong answer.
        assert_eq!(placement(&root, c.as_fd(), &c_attr, 2).unwrap(), Placement::Inside(3));
        std::fs::rename(root_path.join("a/b"), root_path.join("b")).unwrap();
        assert_eq!(placement(&root, c.as_fd(), &c_attr, 3).unwrap(), Placement::Inside(2));
        std::fs::rename(root_path.join("b"), base.path().join("b")).unwrap();
        assert_eq!(placement(&root, c.as_fd(), &c_attr, 2).unwrap(), Placement::Outside);
        // A directory that was never inside, and `/`.
        let slash = open(std::path::Path::new("/"));
        let slash_attr = attr::stat_fd(slash.as_fd()).unwrap();
        assert_eq!(placement(&root, slash.as_fd(), &slash_attr, 0).unwrap(), Placement::Outside);
    }

    #[test]
    fn depth_is_bounded() {
        let base = tempfile::tempdir().unwrap();
        let root_fd = open(base.path());
        let root = attr::stat_fd(root_fd.as_fd()).unwrap();
        // MAX_DEPTH levels are inside, one more is not (built with *at calls: the path is too long
        // for one string).
        let mut cur = root_fd;
        for _ in 0..=MAX_DEPTH {
            nix::sys::stat::mkdirat(cur.as_fd(), c"d", Mode::from_bits_truncate(0o755)).unwrap();
            cur = openat(cur.as_fd(), c"d", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        }
        let deepest_attr = attr::stat_fd(cur.as_fd()).unwrap();
        assert_eq!(placement(&root, cur.as_fd(), &deepest_attr, 0).unwrap(), Placement::Outside);
        let up: OwnedFd = openat(cur.as_fd(), c"..", OFlag::O_PATH, Mode::empty()).unwrap();
        let up_attr = attr::stat_fd(up.as_fd()).unwrap();
        assert_eq!(placement(&root, up.as_fd(), &up_attr, 0).unwrap(), Placement::Inside(MAX_DEPTH));
        assert_eq!(placement(&root, up.as_fd(), &up_attr, MAX_DEPTH).unwrap(), Placement::Inside(MAX_DEPTH));
        // tempdir's drop cannot remove a tree this deep by path on every system; do it by *at.
        drop((cur, up));
        remove_deep(open(base.path()).as_fd(), MAX_DEPTH + 1);
    }

    #[test]
    fn renames_change_the_generation() {
        let watch = RenameWatch::new();
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir_in("/dev/shm").unwrap()];
        for dir in &dirs {
            if !watch.watch(open(dir.path()).as_fd()) {
                eprintln!("skipped: renames cannot be watched here (needs root)");
                return;
            }
        }
        for dir in &dirs {
            std::fs::create_dir(dir.path().join("x")).unwrap();
            std::fs::write(dir.path().join("f"), b"").unwrap();
            let g = watch.generation();
            assert_ne!(g, 0);
            assert_eq!(watch.generation(), g, "nothing happened");
            std::fs::write(dir.path().join("x/new"), b"").unwrap();
            assert_eq!(watch.generation(), g, "creating is not renaming");
            std::fs::rename(dir.path().join("x"), dir.path().join("y")).unwrap();
            let after_dir = watch.generation();
            assert_ne!(after_dir, g, "a directory renamed");
            std::fs::rename(dir.path().join("f"), dir.path().join("y/f")).unwrap();
            assert_ne!(watch.generation(), after_dir, "a file renamed");
        }
    }

    fn remove_deep(dir: BorrowedFd<'_>, levels: u32) {
        if levels == 0 {
            return;
        }
        let child: OwnedFd = openat(dir, c"d", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        remove_deep(child.as_fd(), levels - 1);
        nix::unistd::unlinkat(dir, c"d", nix::unistd::UnlinkatFlags::RemoveDir).unwrap();
    }
}
