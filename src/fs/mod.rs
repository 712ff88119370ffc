//! The host filesystem backend: exports opened at startup, file handles minted from and resolved
//! to kernel handles, attributes, the open-file cache and per-thread credentials.
//!
//! Every object is reached through a file descriptor: handles resolve to `O_PATH` descriptors
//! with `open_by_handle_at`, and names are looked up with `*at` calls relative to their
//! directory's descriptor, never by concatenating paths. A name can therefore never reach outside
//! the directory it is looked up in, symlinks are never followed by the server, and `..` at an
//! export's root stays at the root. A directory handle resolves only while its directory is below
//! the export's root ([`boundary`]), so `..` never leaves an export.

pub mod attr;
pub mod boundary;
pub mod clock;
pub mod cred;
pub mod files;
pub mod handle;
pub mod inode_handles;
pub mod listings;
pub mod state;
pub mod sys;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use crate::exports::ExportSpec;
pub use attr::{Attr, FileType, Timestamp};
pub use handle::{HandleError, HandleKey, ObjectIdentity};
pub use sys::KernelHandle;

/// An export opened for serving.
#[derive(Debug)]
pub struct Export {
    /// Position in the export list (MOUNT's backend refers to exports by index).
    pub index: usize,
    pub spec: ExportSpec,
    /// The fsid reported in attributes and embedded in handles: `fsid=` or derived from the path.
    pub fsid: u64,
    /// The root directory, opened `O_RDONLY | O_DIRECTORY` (it is also the `mount_fd` for
    /// `open_by_handle_at`, which refuses `O_PATH` descriptors).
    pub root: OwnedFd,
    pub root_attr: Attr,
    pub root_handle: Bytes,
    /// How reads of this export's files may be tried without waiting for the disk.
    pub nowait_reads: NowaitReads,
    /// The filesystem's timestamps come from this machine's clock (it is not a network or FUSE
    /// filesystem), which the directory-listing cache's rule for settled directories needs.
    pub local_timestamps: bool,
    /// Whether the filesystem's kernel handles can be trusted to name one object for good.
    pub handle_trust: HandleTrust,
    /// Renames on the export's filesystem are watched ([`boundary::RenameWatch`]).
    pub renames_watched: bool,
}

/// Whether a kernel handle of a filesystem names one object for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleTrust {
    /// The kernel handle carries the inode's generation (ext4, xfs, btrfs, tmpfs...): once the
    /// object is gone it opens nothing, never another object. Handles are kernel handles.
    Kernel,
    /// The kernel handle may name another object later (FUSE node ids are handed out afresh
    /// when the filesystem is mounted again; other filesystems are not known to do better), so
    /// handles are tagged with the object's identity and resolution checks it.
    Tagged,
}

/// Filesystems whose kernel handles carry a generation number (or, for overlayfs and NFS, the
/// handles of filesystems that do), by `statfs` magic.
const GENERATION_IN_HANDLES: [i64; 9] = [
    0xef53,      // ext2, ext3, ext4
    0x5846_5342, // xfs
    0x9123_683e, // btrfs
    0x0102_1994, // tmpfs
    0xf2f5_2010, // f2fs
    0x2fc1_2fc1, // zfs
    0xca45_1a4e, // bcachefs
    0x794c_7630, // overlayfs
    0x6969,      // NFS
];
const FUSE_MAGIC: i64 = 0x6573_5546;

/// How far the kernel handles of the filesystem of `root` (whose attributes are `root_attr`) can
/// be trusted, or why the export cannot be served.
fn handle_trust(root: BorrowedFd<'_>, root_attr: &Attr) -> Result<HandleTrust, String> {
    let magic = nix::sys::statfs::fstatfs(root).map_err(|e| format!("statfs: {e}"))?.filesystem_type().0;
    if GENERATION_IN_HANDLES.contains(&magic) {
        return Ok(HandleTrust::Kernel);
    }
    if magic == FUSE_MAGIC && root_attr.btime.is_none() {
        return Err("it is a FUSE filesystem that reports no birth time (statx STATX_BTIME): its \
                    kernel file handles are node ids with generation 0, which name other files \
                    once the FUSE filesystem is mounted again or its inodes are evicted, and \
                    without a birth time rnfsd cannot tell that a handle now names another file; \
                    export the directory the FUSE filesystem serves instead"
            .into());
    }
    Ok(HandleTrust::Tagged)
}

/// Whether the filesystem of `root` stamps its files with this machine's clock. Network
/// filesystems take times from a server whose clock may lag ours, and a FUSE daemon sets what it
/// likes.
fn has_local_timestamps(root: BorrowedFd<'_>) -> bool {
    const REMOTE_OR_USERSPACE: [i64; 12] = [
        0x6969,      // NFS
        0x517b,      // SMB
        0xfe53_4d42, // SMB2
        0xff53_4d42, // CIFS
        0x6573_5546, // FUSE
        0x00c3_6400, // Ceph
        0x0102_1997, // 9P
        0x5346_414f, // AFS
        0x6b41_4653, // kAFS
        0x7375_7245, // Coda
        0x0bd0_0bd0, // Lustre
        0x0116_1970, // GFS2
    ];
    nix::sys::statfs::fstatfs(root).is_ok_and(|s| !REMOTE_OR_USERSPACE.contains(&s.filesystem_type().0))
}

/// Whether a READ can be served without risking a wait for the disk.
#[derive(Debug)]
pub enum NowaitReads {
    /// tmpfs or ramfs: the data lives in memory, reading it never waits for a disk.
    MemoryBacked,
    /// A disk filesystem: `RWF_NOWAIT` tells whether the data is cached. Cleared the first time
    /// the filesystem answers that it does not support the flag.
    Probe(std::sync::atomic::AtomicBool),
}

impl NowaitReads {
    fn for_root(root: BorrowedFd<'_>) -> NowaitReads {
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        const RAMFS_MAGIC: i64 = 0x8584_58f6;
        match nix::sys::statfs::fstatfs(root).map(|s| s.filesystem_type().0) {
            Ok(TMPFS_MAGIC | RAMFS_MAGIC) => NowaitReads::MemoryBacked,
            _ => NowaitReads::Probe(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Whether a no-wait attempt is worth making.
    pub fn worth_trying(&self) -> bool {
        match self {
            NowaitReads::MemoryBacked => true,
            NowaitReads::Probe(supported) => supported.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The filesystem refused `RWF_NOWAIT`: stop trying.
    pub fn unsupported(&self) {
        if let NowaitReads::Probe(supported) = self {
            supported.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Export {
    /// Whether `attr` describes this export's root directory.
    pub fn is_root(&self, attr: &Attr) -> bool {
        attr.same_file(&self.root_attr)
    }
}

/// A handle resolved to an open object.
#[derive(Debug)]
pub struct Resolved {
    pub export: Arc<Export>,
    /// `O_PATH` descriptor of the object, shared with the resolved-handle cache.
    pub fd: Arc<OwnedFd>,
    pub kernel: KernelHandle,
    /// Attributes taken right after opening (the pre-operation attributes).
    pub attr: Attr,
    /// For a directory other than the root: how many `..` steps up the root was found when the
    /// handle was resolved; 0 for the root and for everything else.
    pub depth: u32,
}

/// Why the exports could not be opened at startup.
#[derive(Debug, thiserror::Error)]
pub enum OpenExportError {
    #[error("{origin}: export {path}: {reason}")]
    Export { origin: String, path: String, reason: String },
    #[error("state directory: {0}")]
    State(#[from] state::StateError),
}

impl std::fmt::Debug for Exports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exports")
            .field("exports", &self.exports)
            .field("cached_handles", &self.handles.len())
            .finish()
    }
}

/// A handle that was authenticated and opened, kept so the next request for it costs one
/// `statx` instead of a MAC check, `open_by_handle_at` and `statx`.
struct CachedHandle {
    export: Arc<Export>,
    fd: Arc<OwnedFd>,
    kernel: KernelHandle,
    /// For a directory other than the root: how many `..` steps up the root was last found
    /// (see [`boundary`]); 0 for everything else.
    depth: AtomicU32,
    /// The rename count when the directory was last found below the root (0: not known).
    verified_at: AtomicU64,
}

/// Resolved handles kept open. Each holds an `O_PATH` descriptor; the server raises its
/// descriptor limit to make room for these, the open-file cache and the connections.
pub const HANDLE_CACHE_ENTRIES: usize = 4096;

/// All exports, and the key that authenticates their handles.
pub struct Exports {
    exports: Vec<Arc<Export>>,
    key: HandleKey,
    handles: clock::ClockCache<Arc<CachedHandle>>,
    inode_handles: inode_handles::InodeHandles,
    renames: boundary::RenameWatch,
    /// Whether this start made a new handle key (handles from any earlier run are stale).
    pub key_origin: state::KeyOrigin,
}

/// Whether the object `fd` (attributes `attr`) may be served through `export`: a directory other
/// than the root must lie below the root ([`boundary`]). `Some` with the directory's depth below
/// the root (0 for the root and for non-directories), `None` when it is outside. `known_depth`
/// is the depth found last time, if any.
///
/// Other objects are not checked: a file has no single parent to walk up from (hard links), and
/// nothing can be reached *from* a file, so its handle only ever gives access to the file itself.
fn within_export(export: &Export, fd: BorrowedFd<'_>, attr: &Attr, known_depth: u32) -> Option<u32> {
    if attr.file_type != FileType::Directory || export.is_root(attr) {
        return Some(0);
    }
    match boundary::placement(&export.root_attr, fd, attr, known_depth) {
        Ok(boundary::Placement::Inside(depth)) => Some(depth),
        Ok(boundary::Placement::Outside) => {
            tracing::debug!(export = %export.spec.path.display(), ino = attr.ino,
                "a directory handle of this export names a directory that is no longer below its root");
            None
        }
        Err(e) => {
            tracing::warn!(export = %export.spec.path.display(), ino = attr.ino,
                "cannot tell whether a directory is below the export root ({e}); answering STALE");
            None
        }
    }
}

fn cstring(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl Exports {
    /// Opens every export root with the handle key and fsids kept in `state_dir` (creating them
    /// the first time), and records the fsids in use.
    pub fn open(specs: &[ExportSpec], state_dir: &Path) -> Result<Exports, OpenExportError> {
        let mut state = state::StateDir::open(state_dir)?;
        let recorded = |path: &Path| state.recorded_fsid(path);
        let mut exports = Self::open_with_key(specs, state.key.clone(), &recorded)?;
        exports.key_origin = state.key_origin;
        let in_use: Vec<_> = exports.exports.iter().map(|e| (e.spec.path.clone(), e.fsid)).collect();
        state.record_fsids(&in_use)?;
        Ok(exports)
    }

    /// Opens every export root. An export's fsid is its `fsid=`, else the one `recorded` for its
    /// path, else one derived from the key and the path.
    pub fn open_with_key(
        specs: &[ExportSpec],
        key: HandleKey,
        recorded: &dyn Fn(&Path) -> Option<u64>,
    ) -> Result<Exports, OpenExportError> {
        Self::open_trusting(specs, key, recorded, None)
    }

    /// [`Exports::open_with_key`], with every export's handle trust forced to `trust` if given.
    fn open_trusting(
        specs: &[ExportSpec],
        key: HandleKey,
        recorded: &dyn Fn(&Path) -> Option<u64>,
        trust: Option<HandleTrust>,
    ) -> Result<Exports, OpenExportError> {
        let mut exports: Vec<Arc<Export>> = Vec::new();
        let renames = boundary::RenameWatch::new();
        for (index, spec) in specs.iter().enumerate() {
            let fail = |reason: String| OpenExportError::Export {
                origin: spec.origin.clone(),
                path: spec.path.display().to_string(),
                reason,
            };
            let root = std::fs::File::open(&spec.path).map_err(|e| fail(e.to_string()))?;
            let root: OwnedFd = root.into();
            let root_attr = attr::stat_fd(root.as_fd()).map_err(|e| fail(e.to_string()))?;
            if root_attr.file_type != FileType::Directory {
                return Err(fail("not a directory".into()));
            }
            let fsid =
                spec.fsid.or_else(|| recorded(&spec.path)).unwrap_or_else(|| key.fsid_for_path(&spec.path));
            if let Some(other) = exports.iter().find(|e| e.fsid == fsid) {
                return Err(fail(format!("fsid {fsid} is already used by {}", other.spec.path.display())));
            }
            let (kernel, _) = sys::name_to_handle_at(root.as_fd(), c"", libc::AT_EMPTY_PATH)
                .map_err(|e| fail(no_handles_reason(&e)))?;
            let handle_trust = match trust {
                Some(t) => t,
                None => handle_trust(root.as_fd(), &root_attr).map_err(fail)?,
            };
            let identity = (handle_trust == HandleTrust::Tagged).then(|| ObjectIdentity::of(&root_attr));
            let root_handle =
                key.encode(fsid, &kernel, identity.as_ref()).map_err(|e| fail(e.to_string()))?;
            let nowait_reads = NowaitReads::for_root(root.as_fd());
            let local_timestamps = has_local_timestamps(root.as_fd());
            let renames_watched = renames.watch(root.as_fd());
            exports.push(Arc::new(Export {
                index,
                spec: spec.clone(),
                fsid,
                root,
                root_attr,
                root_handle,
                nowait_reads,
                local_timestamps,
                handle_trust,
                renames_watched,
            }));
        }
        Ok(Exports {
            exports,
            key,
            handles: clock::ClockCache::new(HANDLE_CACHE_ENTRIES),
            inode_handles: inode_handles::InodeHandles::new(inode_handles::INODE_HANDLE_ENTRIES),
            renames,
            key_origin: state::KeyOrigin::Loaded,
        })
    }

    /// The export whose fsid a wire handle carries, without authenticating the handle (for
    /// routing decisions only; [`Exports::resolve`] authenticates).
    pub fn export_named_by(&self, fh: &[u8]) -> Option<&Arc<Export>> {
        let fsid = handle::peek_fsid(fh)?;
        self.exports.iter().find(|e| e.fsid == fsid)
    }

    pub fn list(&self) -> &[Arc<Export>] {
        &self.exports
    }

    pub fn get(&self, index: usize) -> Option<&Arc<Export>> {
        self.exports.get(index)
    }

    /// Decodes, authenticates and opens a wire handle. Must run with the thread at root identity
    /// (`open_by_handle_at` needs CAP_DAC_READ_SEARCH) unless the handle is cached. A tagged
    /// handle resolves only to the object its identity describes, and a directory only while it
    /// is below the export root.
    ///
    /// A cached handle was authenticated when it was cached (the cache is keyed by the exact
    /// bytes), so a hit only takes fresh attributes. Either way an object whose last link is gone
    /// is stale: something (our caches, a local process) may still hold it open, but for the
    /// client the file is gone.
    pub fn resolve(&self, fh: &[u8]) -> Result<Resolved, HandleError> {
        if let Some(cached) = self.handles.get(fh) {
            match attr::stat_fd(cached.fd.as_fd()) {
                Ok(attr) if attr.nlink > 0 => match self.still_within(&cached, &attr) {
                    Some(now) => {
                        return Ok(Resolved {
                            export: cached.export.clone(),
                            fd: cached.fd.clone(),
                            kernel: cached.kernel.clone(),
                            attr,
                            depth: now,
                        });
                    }
                    None => {
                        self.handles.remove(fh);
                        return Err(HandleError::Stale);
                    }
                },
                _ => {
                    self.handles.remove(fh);
                    return Err(HandleError::Stale);
                }
            }
        }
        let decoded = self.key.decode(fh)?;
        let export = self.exports.iter().find(|e| e.fsid == decoded.fsid).ok_or(HandleError::Stale)?;
        let fd =
            sys::open_by_handle_at(export.root.as_fd(), &decoded.kernel, libc::O_PATH | libc::O_NOFOLLOW)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => HandleError::Bad,
                    Some(libc::ESTALE) | Some(libc::ENOENT) => HandleError::Stale,
                    _ => {
                        tracing::warn!("open_by_handle_at failed: {e}");
                        HandleError::Stale
                    }
                })?;
        let attr = attr::stat_fd(fd.as_fd()).map_err(|_| HandleError::Stale)?;
        if attr.nlink == 0 {
            return Err(HandleError::Stale);
        }
        // The kernel handle may now name another object than the one the handle was made for.
        let same_object = match (&decoded.identity, export.handle_trust) {
            (Some(identity), _) => identity.matches(&attr),
            (None, HandleTrust::Kernel) => true,
            (None, HandleTrust::Tagged) => false,
        };
        if !same_object {
            return Err(HandleError::Stale);
        }
        let renames = self.rename_generation(export, &attr);
        let depth = within_export(export, fd.as_fd(), &attr, 0).ok_or(HandleError::Stale)?;
        let fd = Arc::new(fd);
        let cached = Arc::new(CachedHandle {
            export: export.clone(),
            fd: fd.clone(),
            kernel: decoded.kernel.clone(),
            depth: AtomicU32::new(depth),
            verified_at: AtomicU64::new(renames),
        });
        drop(self.handles.insert(Bytes::copy_from_slice(fh), cached));
        Ok(Resolved { export: export.clone(), fd, kernel: decoded.kernel, attr, depth })
    }

    /// The rename count to check a directory against (0: not watched, or not a directory that
    /// needs the check). Taken before the check it goes with.
    fn rename_generation(&self, export: &Export, attr: &Attr) -> u64 {
        let checked = attr.file_type == FileType::Directory && !export.is_root(attr);
        if checked && export.renames_watched { self.renames.generation() } else { 0 }
    }

    /// [`within_export`] for a cached handle whose object has attributes `attr`: skipped for a
    /// directory found inside when no rename has happened since, else checked and recorded.
    fn still_within(&self, cached: &CachedHandle, attr: &Attr) -> Option<u32> {
        let renames = self.rename_generation(&cached.export, attr);
        let depth = cached.depth.load(Ordering::Relaxed);
        if renames != 0 && depth > 0 && cached.verified_at.load(Ordering::SeqCst) == renames {
            return Some(depth);
        }
        let now = within_export(&cached.export, cached.fd.as_fd(), attr, depth)?;
        if now != depth {
            cached.depth.store(now, Ordering::Relaxed);
        }
        cached.verified_at.store(renames, Ordering::SeqCst);
        Some(now)
    }

    /// Drops a cached handle (its object was unlinked through this server).
    pub fn forget_handle(&self, fh: &[u8]) {
        drop(self.handles.remove(fh));
    }

    /// Drops cached handles whose object has no links left (removed by someone else), so their
    /// space is freed; returns how many. Run periodically. Also reads the rename events queued
    /// since the last directory check, so a server that gets no requests does not keep up to a
    /// full queue of them in the kernel.
    pub fn sweep_unlinked_handles(&self) -> usize {
        self.renames.generation();
        let gone: Vec<Bytes> = self
            .handles
            .values()
            .into_iter()
            .filter(|(_, c)| attr::stat_fd(c.fd.as_fd()).map_or(true, |a| a.nlink == 0))
            .map(|(k, _)| k)
            .collect();
        gone.iter().filter(|k| self.handles.remove(&k[..]).is_some()).count()
    }

    /// How many resolved handles are cached.
    pub fn cached_handles(&self) -> usize {
        self.handles.len()
    }

    /// How many inodes' handles are known.
    pub fn known_inode_handles(&self) -> usize {
        self.inode_handles.len()
    }

    /// The wire handle of the object `fd` refers to. Objects on another mount than the export
    /// root (a filesystem mounted inside the export) get EXDEV: their kernel handles would
    /// resolve against the wrong filesystem.
    pub fn handle_of(&self, export: &Export, fd: BorrowedFd<'_>) -> io::Result<Bytes> {
        self.handle_at(export, fd, c"", libc::AT_EMPTY_PATH)
    }

    /// The wire handle of the object `fd` refers to, whose attributes `attr` were read through
    /// `fd`: from the inode-handle cache when the inode was met before, else as
    /// [`Exports::handle_of`] makes it.
    pub fn handle_for_fd(&self, export: &Export, fd: BorrowedFd<'_>, attr: &Attr) -> io::Result<Bytes> {
        if let Some(handle) = self.cached_handle(export, attr, inode_handles::Provenance::Descriptor) {
            return Ok(handle);
        }
        let handle = self.handle_at_with(export, fd, c"", libc::AT_EMPTY_PATH, Some(attr))?;
        self.inode_handles.remember(export.fsid, attr, &handle, inode_handles::Provenance::Descriptor);
        Ok(handle)
    }

    /// The cached wire handle of the object `attr` describes, if the inode was met before;
    /// `seen` says how `attr` was read.
    pub fn cached_handle(
        &self,
        export: &Export,
        attr: &Attr,
        seen: inode_handles::Provenance,
    ) -> Option<Bytes> {
        if attr.mount_id != export.root_attr.mount_id {
            return None;
        }
        self.inode_handles.get(export.fsid, attr, seen)
    }

    /// [`Exports::handle_at`] for `name` in `dir`, whose attributes `attr` were just read by that
    /// name, remembering the handle for [`Exports::cached_handle`].
    pub fn handle_at_remembered(
        &self,
        export: &Export,
        dir: BorrowedFd<'_>,
        name: &CStr,
        attr: &Attr,
    ) -> io::Result<Bytes> {
        let handle = self.handle_at_with(export, dir, name, 0, Some(attr))?;
        self.inode_handles.remember(export.fsid, attr, &handle, inode_handles::Provenance::Name);
        Ok(handle)
    }

    /// Whether READDIRPLUS listed the directory `attr` describes to the end before.
    pub fn was_listed(&self, export: &Export, attr: &Attr) -> bool {
        self.inode_handles.was_listed(export.fsid, attr)
    }

    /// Records that READDIRPLUS listed the directory `attr` describes to the end.
    pub fn mark_listed(&self, export: &Export, attr: &Attr) {
        self.inode_handles.mark_listed(export.fsid, attr);
    }

    /// The wire handle of `name` in `dir` (not following a final symlink unless `flags` has
    /// `AT_SYMLINK_FOLLOW`), with the same mount rule as [`Exports::handle_of`].
    pub fn handle_at(
        &self,
        export: &Export,
        dir: BorrowedFd<'_>,
        name: &CStr,
        flags: i32,
    ) -> io::Result<Bytes> {
        self.handle_at_with(export, dir, name, flags, None)
    }

    /// [`Exports::handle_at`], where `attr` (if known) are the object's attributes. A tagged
    /// handle takes the object's identity from them, or from a `statx` by the same name (if the
    /// name was replaced in between, the handle names two objects and resolves to neither).
    fn handle_at_with(
        &self,
        export: &Export,
        dir: BorrowedFd<'_>,
        name: &CStr,
        flags: i32,
        attr: Option<&Attr>,
    ) -> io::Result<Bytes> {
        let (kernel, mount_id) = sys::name_to_handle_at(dir, name, flags)?;
        if mount_id as u64 != export.root_attr.mount_id {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        let identity = match (export.handle_trust, attr) {
            (HandleTrust::Kernel, _) => None,
            (HandleTrust::Tagged, Some(a)) => Some(ObjectIdentity::of(a)),
            (HandleTrust::Tagged, None) => {
                let follow = if flags & libc::AT_SYMLINK_FOLLOW != 0 { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
                let stx = sys::statx(dir, name, (flags & libc::AT_EMPTY_PATH) | follow)?;
                Some(ObjectIdentity::of(&Attr::from_statx(&stx)))
            }
        };
        self.key.encode(export.fsid, &kernel, identity.as_ref())
    }

    /// Opens the object for a resolved handle again with other flags (for reading or writing
    /// data). Root identity required, like [`Exports::resolve`].
    ///
    /// Where kernel handles are not trusted ([`HandleTrust::Tagged`]), the object opened is
    /// checked to be the resolved one (ESTALE if not), as resolution does.
    pub fn reopen(&self, resolved: &Resolved, flags: i32) -> io::Result<OwnedFd> {
        let fd =
            sys::open_by_handle_at(resolved.export.root.as_fd(), &resolved.kernel, flags | libc::O_NOFOLLOW)?;
        if resolved.export.handle_trust == HandleTrust::Tagged
            && !ObjectIdentity::of(&resolved.attr).matches(&attr::stat_fd(fd.as_fd())?)
        {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        Ok(fd)
    }

    /// Looks `name` up in the directory `dir` (an `O_PATH` descriptor) without following a
    /// final symlink. `..` of the export root is the root itself; `.` is `dir`. What `..` of
    /// another directory gives must pass [`Exports::check_parent`].
    pub fn lookup(
        &self,
        export: &Export,
        dir: BorrowedFd<'_>,
        dir_attr: &Attr,
        name: &[u8],
    ) -> io::Result<OwnedFd> {
        let name = if name == b".." && export.is_root(dir_attr) { &b"."[..] } else { name };
        let c = cstring(name)?;
        let fd =
            openat(dir, c.as_c_str(), OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
        Ok(fd)
    }

    /// Checks that `parent` (attributes `parent_attr`), which `..` of a directory `child_depth`
    /// levels below the root gave (0: unknown), is the root or below it: the directory may have
    /// left the export since its handle was resolved. ESTALE if not. Needs root identity (the
    /// walk up may pass directories the caller cannot search).
    pub fn check_parent(
        &self,
        export: &Export,
        parent: BorrowedFd<'_>,
        parent_attr: &Attr,
        child_depth: u32,
    ) -> io::Result<()> {
        if parent_attr.file_type != FileType::Directory {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        match within_export(export, parent, parent_attr, child_depth.saturating_sub(1)) {
            Some(_) => Ok(()),
            None => Err(io::Error::from_raw_os_error(libc::ESTALE)),
        }
    }

    /// The handle of `..` of the directory `dir` (`dir_depth` levels below the root), checked
    /// like [`Exports::check_parent`], if it is still the directory whose attributes `seen` were
    /// read. For READDIRPLUS, whose caller read `seen` with its own permissions. Root identity.
    pub fn parent_handle(
        &self,
        export: &Export,
        dir: BorrowedFd<'_>,
        dir_depth: u32,
        seen: &Attr,
    ) -> Option<Bytes> {
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY;
        let parent = openat(dir, c"..", flags, Mode::empty()).ok()?;
        let attr = attr::stat_fd(parent.as_fd()).ok()?;
        if !attr.same_file(seen) {
            return None;
        }
        self.check_parent(export, parent.as_fd(), &attr, dir_depth).ok()?;
        self.handle_for_fd(export, parent.as_fd(), &attr).ok()
    }

    /// MOUNT: the handle of `subpath` (slash-separated components below the export root; empty for
    /// the root). Each component is looked up with the same rules as LOOKUP, symlinks are not
    /// followed, and the result must be a directory.
    pub fn mount_handle(&self, index: usize, subpath: &[u8]) -> io::Result<Bytes> {
        let export = self.get(index).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let mut cur: OwnedFd = export.root.try_clone()?;
        for comp in subpath.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
            let cur_attr = attr::stat_fd(cur.as_fd())?;
            cur = self.lookup(export, cur.as_fd(), &cur_attr, comp)?;
            if comp == b".." {
                self.check_parent(export, cur.as_fd(), &attr::stat_fd(cur.as_fd())?, 0)?;
            }
        }
        if attr::stat_fd(cur.as_fd())?.file_type != FileType::Directory {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        self.handle_of(export, cur.as_fd())
    }
}

/// Why an export cannot have kernel handles, from `name_to_handle_at`'s error.
fn no_handles_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        // name_to_handle_at needs no privilege: EPERM comes from a seccomp filter.
        Some(libc::EPERM) => format!(
            "name_to_handle_at is refused ({e}): a seccomp profile blocks it, as the default profiles \
             of older container engines do; allow name_to_handle_at and open_by_handle_at in the \
             profile (docker or podman run --security-opt seccomp=PROFILE.json), or update the engine"
        ),
        _ => format!("the filesystem does not support file handles (name_to_handle_at: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seccomp_refusal_of_name_to_handle_at_is_named_with_the_fix() {
        let why = no_handles_reason(&io::Error::from_raw_os_error(libc::EPERM));
        assert!(why.contains("seccomp profile") && why.contains("--security-opt seccomp="), "{why}");
        let why = no_handles_reason(&io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        assert!(why.starts_with("the filesystem does not support file handles"), "{why}");
    }
    use crate::exports::ExportSpec;

    fn spec(path: &Path) -> ExportSpec {
        ExportSpec { path: path.to_path_buf(), fsid: None, clients: Vec::new(), origin: "test".into() }
    }

    #[test]
    fn resolve_lookup_and_stale() {
        if !cred::can_switch() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), b"data").unwrap();
        let exports =
            Exports::open_with_key(&[spec(dir.path())], HandleKey::from_bytes([1; 16]), &|_| None).unwrap();
        let ex = exports.get(0).unwrap();
        let root = exports.resolve(&ex.root_handle).unwrap();
        let root_attr = root.attr.clone();
        assert!(ex.is_root(&root_attr));
        // `..` at the root stays at the root.
        let up = exports.lookup(ex, root.fd.as_fd(), &root_attr, b"..").unwrap();
        assert!(ex.is_root(&attr::stat_fd(up.as_fd()).unwrap()));
        let sub_fh = exports.mount_handle(0, b"/sub/").unwrap();
        let sub = exports.resolve(&sub_fh).unwrap();
        let sub_attr = attr::stat_fd(sub.fd.as_fd()).unwrap();
        let f = exports.lookup(ex, sub.fd.as_fd(), &sub_attr, b"f").unwrap();
        let f_fh = exports.handle_of(ex, f.as_fd()).unwrap();
        // Survives a rename.
        std::fs::rename(dir.path().join("sub/f"), dir.path().join("g")).unwrap();
        let again = exports.resolve(&f_fh).unwrap();
        assert_eq!(attr::stat_fd(again.fd.as_fd()).unwrap().size, 4);
        std::fs::remove_file(dir.path().join("g")).unwrap();
        assert_eq!(exports.resolve(&f_fh).unwrap_err(), HandleError::Stale);
        assert!(exports.mount_handle(0, b"nope").is_err());
    }

    #[test]
    fn dotdot_of_a_directory_that_left_after_resolving_is_refused() {
        if !cred::can_switch() {
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let root_path = base.path().join("export");
        std::fs::create_dir_all(root_path.join("a/b")).unwrap();
        let exports =
            Exports::open_with_key(&[spec(&root_path)], HandleKey::from_bytes([1; 16]), &|_| None).unwrap();
        let ex = exports.get(0).unwrap();
        let b = exports.resolve(&exports.mount_handle(0, b"a/b").unwrap()).unwrap();
        assert_eq!(b.depth, 2);
        let up = exports.lookup(ex, b.fd.as_fd(), &b.attr, b"..").unwrap();
        let up_attr = attr::stat_fd(up.as_fd()).unwrap();
        exports.check_parent(ex, up.as_fd(), &up_attr, b.depth).unwrap();
        assert!(exports.parent_handle(ex, b.fd.as_fd(), b.depth, &up_attr).is_some());
        assert!(exports.mount_handle(0, b"a/b/../..").is_ok());
        // `b` leaves (with `a`) between its resolution and the lookup of its `..`.
        std::fs::rename(root_path.join("a"), base.path().join("a")).unwrap();
        let up = exports.lookup(ex, b.fd.as_fd(), &b.attr, b"..").unwrap();
        let up_attr = attr::stat_fd(up.as_fd()).unwrap();
        let err = exports.check_parent(ex, up.as_fd(), &up_attr, b.depth).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESTALE));
        assert_eq!(exports.parent_handle(ex, b.fd.as_fd(), b.depth, &up_attr), None);
        // MOUNT's walk down from the root cannot climb out either.
        assert_eq!(exports.mount_handle(0, b"../..").unwrap(), ex.root_handle);
    }

    /// A handle whose kernel part is `kernel_of`'s and whose identity is `identity_of`'s: what a
    /// tagged handle looks like once its kernel handle names another object.
    fn swapped(key: &HandleKey, kernel_of: &[u8], identity_of: &[u8]) -> Bytes {
        let k = key.decode(kernel_of).unwrap();
        let id = key.decode(identity_of).unwrap().identity.unwrap();
        key.encode(k.fsid, &k.kernel, Some(&id)).unwrap()
    }

    #[test]
    fn tagged_handles_resolve_only_to_the_object_they_were_made_for() {
        if !cred::can_switch() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"A").unwrap();
        std::fs::write(dir.path().join("b"), b"B").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let key = HandleKey::from_bytes([3; 16]);
        let specs = [spec(dir.path())];
        let exports =
            Exports::open_trusting(&specs, key.clone(), &|_| None, Some(HandleTrust::Tagged)).unwrap();
        let ex = exports.get(0).unwrap();
        let root = exports.resolve(&ex.root_handle).unwrap();
        let h = |name: &CStr| exports.handle_at(ex, root.fd.as_fd(), name, 0).unwrap();
        let (a, b, d) = (h(c"a"), h(c"b"), h(c"d"));
        assert_eq!(a[1], 2, "a tagged handle");
        assert_eq!(exports.resolve(&a).unwrap().attr.size, 1);
        assert!(exports.resolve(&d).is_ok());
        // The same handle however it is made.
        let a_fd = exports.lookup(ex, root.fd.as_fd(), &root.attr, b"a").unwrap();
        let a_attr = attr::stat_fd(a_fd.as_fd()).unwrap();
        assert_eq!(exports.handle_of(ex, a_fd.as_fd()).unwrap(), a);
        assert_eq!(exports.handle_for_fd(ex, a_fd.as_fd(), &a_attr).unwrap(), a);
        // A kernel handle that now names another file, or a directory, or a directory's that
        // names a file: STALE.
        for (what, fh) in [
            ("file B's kernel handle tagged as file A", swapped(&key, &b, &a)),
            ("directory's kernel handle tagged as file A", swapped(&key, &d, &a)),
            ("file A's kernel handle tagged as the directory", swapped(&key, &a, &d)),
        ] {
            assert_eq!(exports.resolve(&fh).unwrap_err(), HandleError::Stale, "{what}");
        }
        // An untagged handle of an export whose kernel handles are not trusted is stale.
        let untagged = key.encode(ex.fsid, &key.decode(&a).unwrap().kernel, None).unwrap();
        assert_eq!(exports.resolve(&untagged).unwrap_err(), HandleError::Stale);
        // Opening again for data checks the object too.
        let mut resolved_b = exports.resolve(&b).unwrap();
        assert!(exports.reopen(&resolved_b, libc::O_RDONLY).is_ok());
        resolved_b.kernel = key.decode(&a).unwrap().kernel;
        let err = exports.reopen(&resolved_b, libc::O_RDONLY).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESTALE));
        // Trusted kernel handles are as before, and still resolve after an upgrade.
        let plain = Exports::open_with_key(&specs, key.clone(), &|_| None).unwrap();
        let pex = plain.get(0).unwrap();
        assert_eq!(pex.handle_trust, HandleTrust::Kernel, "tmpfs and the usual disk filesystems");
        assert_eq!(pex.root_handle[1], 1);
        assert!(plain.resolve(&untagged).is_ok());
    }

    /// A bindfs (FUSE) mount of `src` at `mnt`, unmounted when dropped.
    struct Bindfs(std::path::PathBuf);

    impl Bindfs {
        fn mount(src: &Path, mnt: &Path) -> Option<Bindfs> {
            let ok = std::process::Command::new("bindfs").arg(src).arg(mnt).status().ok()?.success();
            ok.then(|| Bindfs(mnt.to_path_buf()))
        }
    }

    impl Drop for Bindfs {
        fn drop(&mut self) {
            // Lazily if still in use (a test that failed while a server held it open).
            let umount =
                |args: &[&str]| std::process::Command::new("umount").args(args).arg(&self.0).status();
            if !umount(&[]).is_ok_and(|s| s.success()) {
                let _ = umount(&["-l"]);
            }
        }
    }

    #[test]
    fn a_bindfs_remount_gives_old_kernel_handles_to_other_files_and_tags_catch_it() {
        if !cred::can_switch() || !Path::new("/dev/fuse").exists() {
            eprintln!("skipped: needs root and /dev/fuse");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let (src, mnt) = (base.path().join("src"), base.path().join("mnt"));
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        std::fs::write(src.join("a"), b"file A").unwrap();
        std::fs::write(src.join("b"), b"file B").unwrap();
        let Some(fuse) = Bindfs::mount(&src, &mnt) else {
            eprintln!("skipped: bindfs is not installed or cannot mount");
            return;
        };
        let key = HandleKey::from_bytes([4; 16]);
        let specs = [spec(&mnt)];
        let old = {
            // Refused as it is (no birth time on FUSE here), so forced to tagged handles.
            let refused = Exports::open_with_key(&specs, key.clone(), &|_| None);
            if let Err(e) = &refused {
                assert!(e.to_string().contains("FUSE"), "{e}");
            }
            let exports =
                Exports::open_trusting(&specs, key.clone(), &|_| None, Some(HandleTrust::Tagged)).unwrap();
            let ex = exports.get(0).unwrap();
            let root = exports.resolve(&ex.root_handle).unwrap();
            let names = [c"a", c"b", c"d"];
            names.map(|n| exports.handle_at(ex, root.fd.as_fd(), n, 0).unwrap())
        };
        // Mounted again, with the names looked up in another order: node ids change hands.
        drop(fuse);
        let _fuse = Bindfs::mount(&src, &mnt).expect("bindfs mounts again");
        for n in ["d", "b", "a"] {
            std::fs::symlink_metadata(mnt.join(n)).unwrap();
        }
        let exports =
            Exports::open_trusting(&specs, key.clone(), &|_| None, Some(HandleTrust::Tagged)).unwrap();
        let ex = exports.get(0).unwrap();
        let mut wrong = 0;
        for fh in &old {
            // What the kernel handle alone opens now...
            let kernel = key.decode(fh).unwrap().kernel;
            let opened = sys::open_by_handle_at(ex.root.as_fd(), &kernel, libc::O_PATH).ok();
            let was = key.decode(fh).unwrap().identity.unwrap();
            if opened.is_some_and(|f| !was.matches(&attr::stat_fd(f.as_fd()).unwrap())) {
                wrong += 1;
                // ...is never what the tagged handle resolves to.
                assert_eq!(exports.resolve(fh).unwrap_err(), HandleError::Stale);
            }
        }
        assert!(wrong > 0, "the remount gave no node id to another file; the test shows nothing");
        // Fresh lookups work.
        let root = exports.resolve(&ex.root_handle).unwrap();
        let a = exports.lookup(ex, root.fd.as_fd(), &root.attr, b"a").unwrap();
        let a = exports.resolve(&exports.handle_of(ex, a.as_fd()).unwrap()).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(
            &mut std::fs::File::from(exports.reopen(&a, libc::O_RDONLY).unwrap()),
            &mut data,
        )
        .unwrap();
        assert_eq!(data, b"file A");
    }

    #[test]
    fn fsid_comes_from_the_option_then_the_record_then_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = HandleKey::from_bytes([1; 16]);
        let derived = Exports::open_with_key(&[spec(dir.path())], key.clone(), &|_| None).unwrap();
        assert_eq!(derived.get(0).unwrap().fsid, key.fsid_for_path(dir.path()));
        let recorded = Exports::open_with_key(&[spec(dir.path())], key.clone(), &|_| Some(77)).unwrap();
        assert_eq!(recorded.get(0).unwrap().fsid, 77);
        let explicit = ExportSpec { fsid: Some(5), ..spec(dir.path()) };
        let chosen = Exports::open_with_key(&[explicit], key, &|_| Some(77)).unwrap();
        assert_eq!(chosen.get(0).unwrap().fsid, 5);
    }

    #[test]
    fn cached_handles_go_stale_and_are_swept_when_unlinked() {
        if !cred::can_switch() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::write(dir.path().join("b"), b"b").unwrap();
        let exports =
            Exports::open_with_key(&[spec(dir.path())], HandleKey::from_bytes([1; 16]), &|_| None).unwrap();
        let ex = exports.get(0).unwrap();
        let root = exports.resolve(&ex.root_handle).unwrap();
        let handle = |name: &CStr| exports.handle_at(ex, root.fd.as_fd(), name, 0).unwrap();
        let (a, b) = (handle(c"a"), handle(c"b"));
        assert_eq!(exports.resolve(&a).unwrap().attr.size, 1);
        exports.resolve(&b).unwrap();
        assert_eq!(exports.cached_handles(), 3);
        // A cached handle sees changes made behind the server's back.
        std::fs::write(dir.path().join("a"), b"longer").unwrap();
        assert_eq!(exports.resolve(&a).unwrap().attr.size, 6);
        std::fs::remove_file(dir.path().join("b")).unwrap();
        assert_eq!(exports.sweep_unlinked_handles(), 1);
        assert_eq!(exports.cached_handles(), 2);
        assert_eq!(exports.resolve(&b).unwrap_err(), HandleError::Stale);
        std::fs::remove_file(dir.path().join("a")).unwrap();
        assert_eq!(
            exports.resolve(&a).unwrap_err(),
            HandleError::Stale,
            "a hit on an unlinked file is stale"
        );
        assert_eq!(exports.cached_handles(), 1);
        // A forged handle never gets in through the cache.
        let mut forged = a.to_vec();
        forged[12] ^= 1;
        assert_eq!(exports.resolve(&forged).unwrap_err(), HandleError::Bad);
    }

    #[test]
    fn local_filesystems_have_local_timestamps() {
        for dir in [std::env::temp_dir(), std::path::PathBuf::from("/dev/shm")] {
            if dir.is_dir() {
                let f = std::fs::File::open(&dir).unwrap();
                assert!(has_local_timestamps(f.as_fd()), "{}", dir.display());
            }
        }
    }

    #[test]
    fn memory_filesystems_are_read_without_probing() {
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            let d = tempfile::tempdir_in(shm).unwrap();
            let f = std::fs::File::open(d.path()).unwrap();
            assert!(matches!(NowaitReads::for_root(f.as_fd()), NowaitReads::MemoryBacked));
        }
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::open(d.path()).unwrap();
        let probe = NowaitReads::for_root(f.as_fd());
        if let NowaitReads::Probe(_) = probe {
            assert!(probe.worth_trying());
            probe.unsupported();
            assert!(!probe.worth_trying());
        }
    }
}
