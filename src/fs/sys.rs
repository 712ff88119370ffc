//! Every system call the server makes that `nix` and `std` do not wrap safely: kernel file handles,
//! `statx`, per-thread credentials and capabilities, `getdents64`, `faccessat2`, `sync_file_range`, open-file-description locks and per-thread nice values (plus glibc's
//! `mallopt`, `malloc_trim` and `mallinfo2`, the allocator's tuning and statistics calls). This is the
//! only module with `unsafe`; each function here is a safe wrapper returning `io::Result`.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use bytes::Bytes;

/// Tunes glibc's allocator for a server that moves 1 MiB buffers between threads: at most `arenas`
/// arenas, and blocks of 1 MiB and more mapped on their own. glibc otherwise gives threads that
/// allocate at the same time arenas of their own (up to 8 per core) and keeps what is freed in
/// each: after a burst of large READs and a CREATE run rnfsd held 160-190 MiB. Measured on 2
/// cores: 2 arenas held 47 MiB but READDIRPLUS, whose helper thread then shares an arena with its
/// caller, slowed from 21-25 to 28-29 ms per listing; 4 arenas run at full speed.
/// The 1 MiB transfer buffers are reused from a pool (`rpc::buffers`), and at 1 MiB + 4 KiB each
/// is a mapping of its own, so emptying the pool when the server is idle returns their memory
/// at once; in the heaps it would stay behind as free space. (A fixed threshold also keeps glibc
/// from raising it to the size of the largest mapped block freed.) The heaps keep glibc's small
/// default reserve: with the pool, a 16 MiB reserve per heap ran write and read no faster and
/// held up to 16 MiB per arena once idle.
/// Settings the operator gave (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`) are kept. Call it
/// before any thread starts. Other C libraries (musl) have no arenas; there it does nothing.
pub fn tune_malloc(arenas: usize) {
    #[cfg(target_env = "gnu")]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets a tunable of the allocator; a bad value is rejected.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas.clamp(1, 64) as libc::c_int) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };
        }
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = arenas;
}

/// Hands the allocator's free memory back to the kernel (glibc's `malloc_trim`): the heaps keep
/// what a burst of calls freed until told, so without this an idle server stays near its peak
/// RSS. Costs a walk of the free lists, so it is for idle moments only.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free; live blocks stay put.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the allocator holds, for the operator's memory line: bytes handed out, bytes the heaps
/// hold free (resident unless trimmed), and bytes in blocks mapped on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapUsage {
    pub in_use: u64,
    pub free: u64,
    pub mapped: u64,
}

/// The allocator's totals over every arena (glibc's `mallinfo2`); `None` with other C libraries.
/// Takes each arena's lock in turn, so it is for an operator's request, not a hot path.
pub fn heap_usage() -> Option<HeapUsage> {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics and returns them by value.
        let info = unsafe { libc::mallinfo2() };
        Some(HeapUsage {
            in_use: info.uordblks as u64,
            free: info.fordblks as u64,
            mapped: info.hblkhd as u64,
        })
    }
    #[cfg(not(target_env = "gnu"))]
    None
}

/// Turns a `-1` return into the thread's `errno`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn cvt_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// The largest kernel file handle the kernel hands out (`MAX_HANDLE_SZ`).
pub const MAX_KERNEL_HANDLE: usize = 128;

/// `struct file_handle` followed by its flexible array, 8-byte aligned as the kernel expects.
#[repr(C, align(8))]
struct HandleBuf {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_KERNEL_HANDLE],
}

/// A kernel file handle: its type and opaque bytes (inode and generation on ext4, xfs, btrfs,
/// tmpfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelHandle {
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

/// `name_to_handle_at(dirfd, path, flags)`. With an empty path and `AT_EMPTY_PATH` it names the
/// file `dirfd` refers to. Returns the handle and the mount id.
pub fn name_to_handle_at(dirfd: BorrowedFd<'_>, path: &CStr, flags: i32) -> io::Result<(KernelHandle, i32)> {
    let mut buf = HandleBuf {
        handle_bytes: MAX_KERNEL_HANDLE as u32,
        handle_type: 0,
        f_handle: [0; MAX_KERNEL_HANDLE],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `buf` is a properly aligned `file_handle` with `handle_bytes` bytes of room after
    // its header, `path` is NUL-terminated and `mount_id` is a valid out pointer.
    cvt(unsafe {
        libc::name_to_handle_at(
            dirfd.as_raw_fd(),
            path.as_ptr(),
            (&mut buf as *mut HandleBuf).cast::<libc::file_handle>(),
            &mut mount_id,
            flags,
        )
    })?;
    let n = (buf.handle_bytes as usize).min(MAX_KERNEL_HANDLE);
    Ok((KernelHandle { handle_type: buf.handle_type, bytes: buf.f_handle[..n].to_vec() }, mount_id))
}

/// `open_by_handle_at(mount_fd, handle, flags)`. Needs CAP_DAC_READ_SEARCH, which the kernel takes
/// away while the thread's fsuid is not 0, so call it before switching to a caller's identity.
/// `mount_fd` must be a regular (not `O_PATH`) descriptor on the same mount.
pub fn open_by_handle_at(mount_fd: BorrowedFd<'_>, handle: &KernelHandle, flags: i32) -> io::Result<OwnedFd> {
    if handle.bytes.len() > MAX_KERNEL_HANDLE {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut buf = HandleBuf {
        handle_bytes: handle.bytes.len() as u32,
        handle_type: handle.handle_type,
        f_handle: [0; MAX_KERNEL_HANDLE],
    };
    buf.f_handle[..handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: `buf` is a valid, aligned `file_handle` whose `handle_bytes` fits its array.
    let fd = cvt(unsafe {
        libc::open_by_handle_at(
            mount_fd.as_raw_fd(),
            (&mut buf as *mut HandleBuf).cast::<libc::file_handle>(),
            flags | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `statx(dirfd, path, flags, STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID)`.
pub fn statx(dirfd: BorrowedFd<'_>, path: &CStr, flags: i32) -> io::Result<libc::statx> {
    // SAFETY: all-zero is a valid `statx` value (plain integers).
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stx` is a valid out pointer.
    cvt(unsafe {
        libc::statx(
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_MNT_ID,
            &mut stx,
        )
    })?;
    Ok(stx)
}

/// Sets this thread's filesystem uid, filesystem gid and supplementary groups, so the kernel checks
/// permissions and assigns ownership as that caller. Raw system calls: glibc's `setgroups`
/// would change every thread of the process. Order matters: the groups and gid first, while the
/// thread still has CAP_SETGID.
pub fn set_thread_fs_identity(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: `groups` is a valid slice of gid_t-sized integers of the given length.
    cvt_long(unsafe { libc::syscall(libc::SYS_setgroups, groups.len() as libc::c_long, groups.as_ptr()) })?;
    set_thread_fs_ids(uid, gid)
}

/// [`set_thread_fs_identity`] leaving the supplementary groups as they are.
pub fn set_thread_fs_ids(uid: u32, gid: u32) -> io::Result<()> {
    // setfsuid/setfsgid cannot report failure directly; they return the previous value, so
    // reading back with an invalid id (-1 is never applied) tells whether the change took.
    // SAFETY: plain integer system calls without pointers.
    unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
        let now_gid = libc::setfsgid(u32::MAX) as u32;
        let now_uid = libc::setfsuid(u32::MAX) as u32;
        if now_uid != uid || now_gid != gid {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
    }
    Ok(())
}

/// The capability sets of one thread (64 bits each, bit `n` = capability `n`, as in
/// `/proc/thread-self/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadCaps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    /// 0: the calling thread.
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one per 32 capabilities.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// This thread's capability sets (raw `capget`: glibc has no wrapper, and libcap's would be a
/// dependency for two system calls).
pub fn thread_caps() -> io::Result<ThreadCaps> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` is a valid header and `data` has room for the two words version 3 writes.
    cvt_long(unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) })?;
    let join = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32;
    Ok(ThreadCaps {
        effective: join(|d| d.effective),
        permitted: join(|d| d.permitted),
        inheritable: join(|d| d.inheritable),
    })
}

/// Sets this thread's capability sets (raw `capset` with pid 0, which changes only the calling
/// thread, like the per-thread `setgroups` of [`set_thread_fs_identity`]). The kernel refuses
/// (EPERM) to add anything to the permitted set, so an effective set can only be raised again
/// up to what is still permitted.
pub fn set_thread_caps(caps: ThreadCaps) -> io::Result<()> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let split = |v: u64| [v as u32, (v >> 32) as u32];
    let (e, p, i) = (split(caps.effective), split(caps.permitted), split(caps.inheritable));
    let data = [0, 1].map(|w| CapData { effective: e[w], permitted: p[w], inheritable: i[w] });
    // SAFETY: `header` is a valid header and `data` holds the two words version 3 reads.
    cvt_long(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) })?;
    Ok(())
}

/// One entry read by [`getdents`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDirEntry {
    pub ino: u64,
    /// The directory offset just after this entry: the cookie that resumes behind it.
    pub next_offset: u64,
    pub d_type: u8,
    /// The name with its terminating NUL, so it can be passed to `*at` calls as it is: a slice
    /// of one buffer shared by the names of a batch (one allocation per `getdents`).
    name_nul: Bytes,
}

impl RawDirEntry {
    /// An entry named `name` up to its first NUL, if it has one.
    pub fn new(ino: u64, next_offset: u64, d_type: u8, name: &[u8]) -> RawDirEntry {
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let mut name_nul = Vec::with_capacity(len + 1);
        name_nul.extend_from_slice(&name[..len]);
        name_nul.push(0);
        RawDirEntry { ino, next_offset, d_type, name_nul: Bytes::from(name_nul) }
    }

    pub fn name(&self) -> &[u8] {
        &self.name_nul[..self.name_nul.len() - 1]
    }

    /// The name, sharing its buffer.
    pub fn name_bytes(&self) -> Bytes {
        self.name_nul.slice(..self.name_nul.len() - 1)
    }

    pub fn c_name(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.name_nul).expect("a single NUL, at the end")
    }
}

/// Reads directory entries from the directory's current offset with `getdents64`, filling at
/// most `buf.len()` bytes. An empty vector means end of directory.
pub fn getdents(dir: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Vec<RawDirEntry>> {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    let n = cvt_long(unsafe {
        libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), buf.as_mut_ptr(), buf.len() as libc::c_long)
    })? as usize;
    let records = Bytes::copy_from_slice(&buf[..n]);
    let mut out = Vec::new();
    let mut pos = 0;
    // linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, NUL-terminated name.
    while pos + 19 <= n {
        let rec = &records[pos..];
        let ino = u64::from_ne_bytes(rec[0..8].try_into().expect("8 bytes"));
        let off = i64::from_ne_bytes(rec[8..16].try_into().expect("8 bytes"));
        let reclen = u16::from_ne_bytes(rec[16..18].try_into().expect("2 bytes")) as usize;
        if reclen < 19 || reclen > rec.len() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let name_field = &rec[19..reclen];
        let entry = match name_field.iter().position(|&b| b == 0) {
            Some(len) => RawDirEntry {
                ino,
                next_offset: off as u64,
                d_type: rec[18],
                name_nul: records.slice(pos + 19..pos + 19 + len + 1),
            },
            None => RawDirEntry::new(ino, off as u64, rec[18], name_field),
        };
        out.push(entry);
        pos += reclen;
    }
    Ok(out)
}

/// `faccessat2(fd, "", mode, AT_EACCESS | AT_EMPTY_PATH)`: may the thread's *filesystem* identity
/// access the file `fd` refers to? (glibc's `faccessat` emulates AT_EACCESS in user space with
/// the effective uid, which ignores fsuid.)
pub fn access_fd(fd: BorrowedFd<'_>, mode: i32) -> io::Result<()> {
    // SAFETY: the path is a static NUL-terminated empty string.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EACCESS | libc::AT_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `sync_file_range` with WAIT_BEFORE | WRITE | WAIT_AFTER over a range: starts and waits for
/// writeback of that range's data (used before the fdatasync that makes it durable).
pub fn sync_file_range(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let flags =
        libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: plain integer arguments.
    cvt(unsafe { libc::sync_file_range(fd.as_raw_fd(), offset as i64, len as i64, flags) })?;
    Ok(())
}

/// Raises the calling thread's nice value by `increment` (at most to 19, the lowest priority),
/// leaving the process's other threads as they are: on Linux the nice value belongs to each
/// thread, and `setpriority(PRIO_PROCESS, tid)` sets that one thread's. Raising it needs no
/// privilege; lowering it again would (CAP_SYS_NICE or RLIMIT_NICE).
pub fn lower_thread_priority(increment: i32) -> io::Result<()> {
    let tid = nix::unistd::gettid().as_raw() as libc::id_t;
    let nice = thread_nice()?;
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    cvt(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, (nice + increment.max(0)).min(19)) })?;
    Ok(())
}

/// The calling thread's nice value (-20 to 19).
pub fn thread_nice() -> io::Result<i32> {
    let tid = nix::unistd::gettid().as_raw() as libc::id_t;
    // getpriority returns -1 both for an error and for nice -1: only errno tells them apart.
    nix::errno::Errno::clear();
    // SAFETY: getpriority takes plain integers and touches no memory of ours.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    if nice == -1 && nix::errno::Errno::last_raw() != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(nice)
}

/// The kind of an open-file-description lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A shared (read) lock, `F_RDLCK`.
    Read,
    /// An exclusive (write) lock, `F_WRLCK`; the descriptor must be open for writing.
    Write,
    /// Releasing, `F_UNLCK`.
    Unlock,
}

impl LockKind {
    fn raw(self) -> libc::c_short {
        (match self {
            LockKind::Read => libc::F_RDLCK,
            LockKind::Write => libc::F_WRLCK,
            LockKind::Unlock => libc::F_UNLCK,
        }) as libc::c_short
    }
}

/// A lock as `F_OFD_GETLK` reports it: its kind, first byte and length (0: to the end of file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRange {
    pub kind: LockKind,
    pub start: u64,
    pub len: u64,
}

fn flock_for(kind: LockKind, start: u64, len: u64) -> io::Result<libc::flock> {
    let (Ok(l_start), Ok(l_len)) = (i64::try_from(start), i64::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
    };
    // SAFETY: flock is plain data; all zeroes is a valid value (and l_pid must be 0 for OFD
    // commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind.raw();
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = l_start;
    fl.l_len = l_len;
    Ok(fl)
}

/// `fcntl(F_OFD_SETLK)`: takes (or with [`LockKind::Unlock`] releases) a lock on bytes
/// `start..start+len` (`len` 0: to the end of file) for the open file description `fd`, without
/// waiting: a conflicting lock of another description fails with EAGAIN. Locks of one description
/// split and merge as the kernel does for POSIX locks, and closing the last descriptor of the
/// description releases them. They conflict with every other description's locks, classic
/// `F_SETLK` locks of other processes included.
pub fn ofd_setlk(fd: BorrowedFd<'_>, kind: LockKind, start: u64, len: u64) -> io::Result<()> {
    let fl = flock_for(kind, start, len)?;
    // SAFETY: fl is a valid flock that outlives the call.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl as *const libc::flock) })?;
    Ok(())
}

/// `fcntl(F_OFD_GETLK)`: the first lock of another open file description (or another process)
/// that would conflict with taking `kind` on `start..start+len` through `fd`, or `None`. Locks
/// of `fd`'s own description never conflict. `kind` is Read or Write.
pub fn ofd_getlk(fd: BorrowedFd<'_>, kind: LockKind, start: u64, len: u64) -> io::Result<Option<LockRange>> {
    let mut fl = flock_for(kind, start, len)?;
    // SAFETY: fl is a valid flock the kernel overwrites in place.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl as *mut libc::flock) })?;
    let kind = match i32::from(fl.l_type) {
        libc::F_UNLCK => return Ok(None),
        libc::F_RDLCK => LockKind::Read,
        _ => LockKind::Write,
    };
    Ok(Some(LockRange { kind, start: fl.l_start.max(0) as u64, len: fl.l_len.max(0) as u64 }))
}

/// The effective uid of the process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn ofd_locks_of_two_descriptions_conflict_and_report_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let (a, b) = (open(), open());
        ofd_setlk(a.as_fd(), LockKind::Write, 0, 100).unwrap();
        let err = ofd_setlk(b.as_fd(), LockKind::Read, 50, 10).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
        assert_eq!(
            ofd_getlk(b.as_fd(), LockKind::Read, 0, 0).unwrap(),
            Some(LockRange { kind: LockKind::Write, start: 0, len: 100 })
        );
        // The holder's own description sees no conflict with its own lock.
        assert_eq!(ofd_getlk(a.as_fd(), LockKind::Write, 0, 0).unwrap(), None);
        // Splitting: release the middle, the ends stay.
        ofd_setlk(a.as_fd(), LockKind::Unlock, 40, 20).unwrap();
        ofd_setlk(b.as_fd(), LockKind::Write, 45, 10).unwrap();
        assert_eq!(
            ofd_getlk(b.as_fd(), LockKind::Read, 60, 0).unwrap(),
            Some(LockRange { kind: LockKind::Write, start: 60, len: 40 })
        );
        drop(a);
        assert_eq!(ofd_getlk(b.as_fd(), LockKind::Write, 0, 0).unwrap(), None, "closing released them");
        assert_eq!(
            ofd_setlk(b.as_fd(), LockKind::Write, u64::MAX, 1).unwrap_err().raw_os_error(),
            Some(libc::EOVERFLOW)
        );
    }

    #[test]
    fn lowering_a_threads_priority_leaves_the_others() {
        let before = thread_nice().unwrap();
        let lowered = std::thread::spawn(|| {
            let own = thread_nice().unwrap();
            lower_thread_priority(3).unwrap();
            (own, thread_nice().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before, (before + 3).min(19)));
        assert_eq!(thread_nice().unwrap(), before, "the calling thread keeps its nice value");
    }

    #[test]
    fn handle_round_trip_and_stat() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let (h, _) = name_to_handle_at(root.as_fd(), c"f", 0).unwrap();
        assert!(!h.bytes.is_empty());
        let stx = statx(root.as_fd(), c"f", libc::AT_SYMLINK_NOFOLLOW).unwrap();
        assert_eq!(stx.stx_size, 1);
        if effective_uid() == 0 {
            let fd = open_by_handle_at(root.as_fd(), &h, libc::O_PATH).unwrap();
            let stx2 = statx(fd.as_fd(), c"", libc::AT_EMPTY_PATH).unwrap();
            assert_eq!(stx.stx_ino, stx2.stx_ino);
        }
    }

    #[test]
    fn getdents_lists_every_name() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..300 {
            std::fs::write(dir.path().join(format!("file-{i}")), b"").unwrap();
        }
        let d = std::fs::File::open(dir.path()).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut names = Vec::new();
        loop {
            let batch = getdents(d.as_fd(), &mut buf).unwrap();
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                assert_eq!(e.c_name().to_bytes(), e.name());
            }
            names.extend(batch.into_iter().map(|e| e.name_bytes()));
        }
        assert_eq!(names.len(), 302);
        assert!(names.contains(&Bytes::from_static(b".")) && names.contains(&Bytes::from_static(b"..")));
        assert!(names.contains(&Bytes::from_static(b"file-299")));
    }
}

/// A timestamp to set with [`set_times_fd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// Leave it unchanged.
    Omit,
    /// The server's current time.
    Now,
    /// Seconds and nanoseconds since the epoch.
    At(i64, u32),
}

fn timespec(t: TimeSet) -> libc::timespec {
    match t {
        TimeSet::Omit => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        TimeSet::Now => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        TimeSet::At(s, ns) => libc::timespec { tv_sec: s, tv_nsec: ns.min(999_999_999) as i64 },
    }
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: sets the access and
/// modification times of the object `fd` (any kind of descriptor, `O_PATH` included) refers to,
/// with the kernel's permission rules for the thread's filesystem identity.
pub fn set_times_fd(fd: BorrowedFd<'_>, atime: TimeSet, mtime: TimeSet) -> io::Result<()> {
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: the path is a static NUL-terminated string and `times` holds two timespecs.
    cvt(unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)` (Linux 6.6): changes the mode of the object an
/// `O_PATH` descriptor refers to, which `fchmod` refuses. Older kernels get ENOSYS, and the
/// caller falls back to the descriptor's `/proc/self/fd` path.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: the path is a static NUL-terminated string; the rest are integers.
    cvt_long(unsafe {
        libc::syscall(libc::SYS_fchmodat2, fd.as_raw_fd(), c"".as_ptr(), mode, libc::AT_EMPTY_PATH)
    })?;
    Ok(())
}

/// Reads up to `count` bytes of `fd` at `offset` straight onto the end of `buf` (no zeroing, no
/// intermediate copy), stopping early only at end of file. Returns how many bytes were appended;
/// on error `buf` may hold part of the data.
///
/// With `nowait`, only data already in the page cache is read (`RWF_NOWAIT`): if any of the range
/// would have to come from the disk, the result is `WouldBlock` (or `Unsupported` where the
/// filesystem cannot tell), so the caller can retry where waiting is allowed.
pub fn pread_append(
    fd: BorrowedFd<'_>,
    buf: &mut bytes::BytesMut,
    count: usize,
    offset: u64,
    nowait: bool,
) -> io::Result<usize> {
    buf.reserve(count);
    let mut done = 0;
    while done < count {
        let spare = buf.spare_capacity_mut();
        let want = (count - done).min(spare.len());
        let at = offset.saturating_add(done as u64).min(i64::MAX as u64) as libc::off_t;
        // SAFETY: the kernel writes at most `want` bytes into the spare capacity, which is
        // writable for `spare.len() >= want` bytes.
        let iov = libc::iovec { iov_base: spare.as_mut_ptr().cast(), iov_len: want };
        let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
        // SAFETY: as above; `iov` describes that writable region and lives across the call.
        let n = match cvt_long(unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, at, flags) } as libc::c_long) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if nowait && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                return Err(io::ErrorKind::Unsupported.into());
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        // SAFETY: the kernel initialised the `n <= want` bytes after the current length.
        unsafe { buf.set_len(buf.len() + n) };
        done += n;
    }
    Ok(done)
}

// Rename notification for the export boundary (fs::boundary): a fanotify group reporting every
// rename on the filesystems of the exports, so directory handles need no re-check while none
// happened.

/// A fanotify group (non-blocking) for [`watch_renames`]. Needs CAP_SYS_ADMIN.
pub fn rename_notifier() -> io::Result<OwnedFd> {
    let flags = libc::FAN_CLASS_NOTIF | libc::FAN_REPORT_FID | libc::FAN_NONBLOCK | libc::FAN_CLOEXEC;
    // SAFETY: plain integer arguments.
    let fd = cvt(unsafe { libc::fanotify_init(flags, libc::O_RDONLY as libc::c_uint) })?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds the whole filesystem `fs_of` lies on to `group`: every rename of a file or directory
/// on it, through any mount, queues an event (`FAN_MOVE_SELF`, with `FAN_ONDIR`).
pub fn watch_renames(group: BorrowedFd<'_>, fs_of: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a null path makes the mark apply to `fs_of` itself; the rest are integers.
    cvt(unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            libc::FAN_MOVE_SELF | libc::FAN_ONDIR,
            fs_of.as_raw_fd(),
            std::ptr::null(),
        )
    })?;
    Ok(())
}

/// Bytes of events queued on `fd` (`FIONREAD`).
pub fn queued_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the valid pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) })?;
    Ok(n.max(0) as usize)
}

/// Reads and discards what is queued on the non-blocking `fd`, using `buf`.
pub fn discard_queued(fd: BorrowedFd<'_>, buf: &mut [u8]) {
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}
