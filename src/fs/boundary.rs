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

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

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

    fn remove_deep(dir: BorrowedFd<'_>, levels: u32) {
        if levels == 0 {
            return;
        }
        let child: OwnedFd = openat(dir, c"d", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        remove_deep(child.as_fd(), levels - 1);
        nix::unistd::unlinkat(dir, c"d", nix::unistd::UnlinkatFlags::RemoveDir).unwrap();
    }
}
