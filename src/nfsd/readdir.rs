//! READDIR and READDIRPLUS. Cookies are the directory offsets the filesystem reports (`d_off`),
//! resumed with `lseek`, so paging needs no server state and survives restarts. The entries of a
//! directory that has not changed come from the listing cache ([`crate::fs::listings`]) when it
//! keeps them; attributes are always read afresh, and a handle the listing learned is used only
//! for an entry whose fresh attributes show the same inode. `.` and `..`
//! are listed like any entry. The cookie verifier is echoed, never checked (as knfsd does): a
//! directory that changed between pages is still resumed from the cookie, and only a cookie the
//! filesystem rejects gives NFS3ERR_BAD_COOKIE.
//!
//! READDIRPLUS fills its reply up to `maxcount` and, like knfsd, does not stop at `dircount`:
//! the Linux client sends `dircount = maxcount / 8`, and honouring it would cut each reply to an
//! eighth of what the client is ready to take and multiply the round trips of every listing.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::SystemTime;

use bytes::Bytes;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{Whence, lseek};
use xdr::Xdr;
use xdr::nfs3::*;

use super::NfsService;
use super::fattr::{fattr, post_op};
use super::request::{Object, Res, require_dir, st};
use crate::fs::Attr;
use crate::fs::attr::stat_at;
use crate::fs::inode_handles::Provenance;
use crate::fs::listings::{self, KnownHandle, ListedEntry, ListedHandle};
use crate::fs::sys::{self, RawDirEntry};
use crate::rpc::CallContext;

/// Reply bytes before the entries: status, post_op_attr with attributes, cookie verifier.
const HEADER_LEN: usize = 4 + 4 + fattr3::ENCODED_LEN + COOKIEVERFSIZE;

/// The entries of a directory from a cookie on: first those the listing cache keeps, then the
/// rest from the disk, which is read from the last cookie handed out. What the disk gives is
/// offered to the cache when the call is done.
struct DirCursor<'a> {
    obj: &'a Object,
    /// Entries to hand out next, front first.
    queue: VecDeque<ListedEntry>,
    /// The cookie that resumes after the entries queued so far.
    resume: u64,
    /// No entries follow the queue.
    end: bool,
    /// The directory opened for reading, once the cache has no more to give.
    disk: Option<OwnedFd>,
    buf: Vec<u8>,
    buf_len: usize,
    /// Taken before any entry was read, after the directory's attributes were.
    read_at: SystemTime,
    /// What is read from the disk may be kept: the export's timestamps are local and the
    /// directory has settled.
    keep: bool,
    /// Where reading from the disk started, and what it read (when it may be kept).
    read_from: Option<u64>,
    read: Vec<RawDirEntry>,
}

impl<'a> DirCursor<'a> {
    /// Positions a cursor at `cookie` of `obj`, a directory. `buf_len` bounds each `getdents`:
    /// entries read beyond what the reply takes are read again by the next call (from the cache
    /// if it keeps the directory), so it should match the reply's budget (a kernel dirent is
    /// about as big as its XDR `entry3`). At most `max_cached` entries come from the cache.
    fn open(
        svc: &NfsService,
        obj: &'a Object,
        cookie: u64,
        buf_len: usize,
        max_cached: usize,
    ) -> Result<DirCursor<'a>, nfsstat3> {
        let read_at = SystemTime::now();
        let keep = obj.res.export.local_timestamps && listings::settled(&obj.res.attr, read_at);
        let mut cursor = DirCursor {
            obj,
            queue: VecDeque::new(),
            resume: cookie,
            end: false,
            disk: None,
            buf: Vec::new(),
            buf_len: buf_len.clamp(1024, 64 * 1024),
            read_at,
            keep,
            read_from: None,
            read: Vec::new(),
        };
        match svc.listings.page(obj.res.export.fsid, &obj.res.attr, cookie, max_cached) {
            Some(page) => {
                // Reading a directory takes read permission, which opening it would check.
                obj.caller.run(|| sys::access_fd(obj.res.fd.as_fd(), libc::R_OK).map_err(st))?;
                if let Some(last) = page.entries.last() {
                    cursor.resume = last.entry.next_offset;
                }
                cursor.end = page.end;
                cursor.queue = page.entries.into();
            }
            // Opened now, so that a cookie the filesystem rejects is reported before any work.
            None => cursor.open_disk()?,
        }
        Ok(cursor)
    }

    /// Opens the directory for reading as the caller (read permission is the kernel's to check)
    /// at the resume cookie.
    fn open_disk(&mut self) -> Result<(), nfsstat3> {
        let fd = self.obj.caller.run(|| {
            openat(
                self.obj.res.fd.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(st)
        })?;
        if self.resume != 0 {
            let offset = i64::try_from(self.resume).map_err(|_| nfsstat3::NFS3ERR_BAD_COOKIE)?;
            lseek(fd.as_fd(), offset, Whence::SeekSet).map_err(|_| nfsstat3::NFS3ERR_BAD_COOKIE)?;
        }
        self.read_from = Some(self.resume);
        self.buf = vec![0; self.buf_len];
        self.disk = Some(fd);
        Ok(())
    }

    /// The next entry, or `None` at the end of the directory.
    fn next(&mut self) -> Result<Option<ListedEntry>, nfsstat3> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Ok(Some(e));
            }
            if self.end {
                return Ok(None);
            }
            if self.disk.is_none() {
                self.open_disk()?;
            }
            let Some(fd) = &self.disk else { return Ok(None) };
            let batch = sys::getdents(fd.as_fd(), &mut self.buf).map_err(st)?;
            match batch.last() {
                None => self.end = true,
                Some(last) => self.resume = last.next_offset,
            }
            if self.keep {
                self.read.extend(batch.iter().cloned());
            }
            self.queue.extend(batch.into_iter().map(ListedEntry::from));
        }
    }

    /// Puts an entry back (it did not fit the reply).
    fn unread(&mut self, e: ListedEntry) {
        self.queue.push_front(e);
    }

    /// Whether the cursor is at the end of the directory.
    fn at_end(&mut self) -> Result<bool, nfsstat3> {
        match self.next()? {
            Some(e) => {
                self.unread(e);
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// Offers what was read from the disk to the listing cache.
    fn finish(self, svc: &NfsService) {
        if !self.keep {
            return;
        }
        if let Some(from) = self.read_from {
            let fsid = self.obj.res.export.fsid;
            svc.listings.record(fsid, &self.obj.res.attr, self.read_at, from, &self.read, self.end);
        }
    }
}

/// The fileid to report for an entry: `..` of the export root is the root itself (a client
/// must never learn of anything above the export), otherwise the inode number.
fn entry_fileid(obj: &Object, e: &RawDirEntry) -> u64 {
    if e.name() == b".." && obj.res.export.is_root(&obj.res.attr) { obj.res.attr.ino } else { e.ino }
}

pub fn readdir(svc: &NfsService, ctx: &CallContext, args: READDIR3args) -> Res<READDIR3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.dir)?;
    let export = &obj.res.export;
    let count = (args.count.min(svc.max_io_for(ctx))) as usize;
    let result = (|| {
        require_dir(&obj.res.attr)?;
        let mut budget = count.saturating_sub(HEADER_LEN + DIRLIST_TRAILER_LEN);
        let most = budget / (DIRLIST_ENTRY_OVERHEAD + entry3::encoded_len_for(1)) + 1;
        let mut stream = DirCursor::open(svc, &obj, args.cookie, count, most)?;
        let mut entries = Vec::new();
        while let Some(listed) = stream.next()? {
            let len = DIRLIST_ENTRY_OVERHEAD + entry3::encoded_len_for(listed.entry.name().len());
            if len > budget {
                stream.unread(listed);
                break;
            }
            budget -= len;
            let e = listed.entry;
            entries.push(entry3 {
                fileid: entry_fileid(&obj, &e),
                cookie: e.next_offset,
                name: filename3(e.name_bytes()),
            });
        }
        let eof = stream.at_end()?;
        stream.finish(svc);
        if entries.is_empty() && !eof {
            return Err(nfsstat3::NFS3ERR_TOOSMALL);
        }
        Ok(dirlist3 { entries, eof })
    })();
    let dir_attributes = post_op(export, obj.res.fd.as_fd());
    Ok(match result {
        Ok(reply) => Nfs3Result::Ok(READDIR3resok { dir_attributes, cookieverf: args.cookieverf, reply }),
        Err(s) => Nfs3Result::Err(s, dir_attributes),
    })
}

/// An entry's attributes and handle, when they could be had, and a handle for the listing cache
/// to learn: one the inode-handle cache had verified, for an entry the listing keeps without it.
#[derive(Default)]
struct EntryDetails {
    attr: Option<Attr>,
    handle: Option<Bytes>,
    learned: Option<KnownHandle>,
}

/// Handle and attributes of one entry for READDIRPLUS, looked up as the caller without
/// following symlinks. `.` is the directory itself, `..` of the export root is the root, `..` of
/// another directory gets its attributes only (see [`dotdot_handle`]), and an
/// entry that vanished or lies on another filesystem gets neither. The handle is the one the
/// listing cache knows for the entry's inode, if any. Otherwise, with [`InodeHandleCache::Use`],
/// it comes from the inode-handle cache when it can and is remembered there when it could not,
/// counted in `misses`.
fn entry_details(
    svc: &NfsService,
    obj: &Object,
    dirfd: BorrowedFd<'_>,
    listed: &ListedEntry,
    cache: InodeHandleCache,
    misses: &mut usize,
) -> EntryDetails {
    let export = &obj.res.export;
    let at_root = export.is_root(&obj.res.attr);
    let name = listed.entry.name();
    if name == b"." || (name == b".." && at_root) {
        let handle = if at_root {
            export.root_handle.clone()
        } else {
            svc.exports.handle_of(export, obj.res.fd.as_fd()).ok().unwrap_or_default()
        };
        let handle = (!handle.is_empty()).then_some(handle);
        return EntryDetails { attr: Some(obj.res.attr.clone()), handle, learned: None };
    }
    let cname = listed.entry.c_name();
    let Ok(attr) = stat_at(dirfd, cname) else { return EntryDetails::default() };
    if name == b".." {
        // Its handle is taken by `dotdot_handle`, at root identity.
        return EntryDetails { attr: Some(attr), handle: None, learned: None };
    }
    if let ListedHandle::Known(known) = &listed.handle
        && known.fits(&attr)
    {
        return EntryDetails { handle: Some(known.handle.clone()), attr: Some(attr), learned: None };
    }
    let handle = if cache == InodeHandleCache::Use {
        if let Some(handle) = svc.exports.cached_handle(export, &attr, Provenance::Name) {
            let learnable = listed.handle == ListedHandle::Unknown;
            let learned = attr.btime.filter(|_| learnable).map(|btime| KnownHandle {
                handle: handle.clone(),
                mount_id: attr.mount_id,
                ino: attr.ino,
                btime,
            });
            return EntryDetails { attr: Some(attr), handle: Some(handle), learned };
        }
        *misses += 1;
        svc.exports.handle_at_remembered(export, dirfd, cname, &attr)
    } else {
        svc.exports.handle_at(export, dirfd, cname, 0)
    };
    match handle {
        Ok(h) => EntryDetails { attr: Some(attr), handle: Some(h), learned: None },
        Err(_) => EntryDetails::default(),
    }
}

/// Fills in the handle of `..` of a directory other than the root, which the caller's lookups
/// left out: the directory may have left the export since it was resolved, so its parent is
/// checked to be inside, which takes root identity (the walk up may pass directories the caller
/// cannot search). Outside, the entry is listed without attributes or handle.
fn dotdot_handle(svc: &NfsService, obj: &Object, raw: &[ListedEntry], details: &mut [EntryDetails]) {
    if obj.res.export.is_root(&obj.res.attr) {
        return;
    }
    for (e, d) in raw.iter().zip(details.iter_mut()) {
        if e.entry.name() != b".." {
            continue;
        }
        let handle = d.attr.as_ref().and_then(|seen| {
            svc.exports.parent_handle(&obj.res.export, obj.res.fd.as_fd(), obj.res.depth, seen)
        });
        if handle.is_none() {
            *d = EntryDetails::default();
        }
        d.handle = handle;
    }
}

/// Encoded size of an `entryplus3` with attributes and a handle of `handle_len` bytes.
fn entryplus_len(name_len: usize, handle_len: usize) -> usize {
    entry3::encoded_len_for(name_len) + 4 + fattr3::ENCODED_LEN + 4 + 4 + handle_len.div_ceil(4) * 4
}

/// Whether a listing's handles are looked up in (and remembered by) the inode-handle cache, which
/// pays off from a directory's second listing on, or taken from the kernel directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InodeHandleCache {
    Use,
    Skip,
}

/// Entries looked up first, on the calling thread, to learn whether handles are cached.
const PROBE_ENTRIES: usize = 32;

/// Listings with at least this many uncached entries are looked up on two threads.
const PARALLEL_ENTRIES: usize = 128;

/// Attributes and handle of every entry, looked up as the caller.
///
/// An entry whose handle is cached costs one `statx`; one that is not costs a
/// `name_to_handle_at` too, twice the work. When handles are not cached, or most of the first
/// entries turn out not to be, the rest is split in two halves, one on a helper thread, since the
/// client waits for the whole reply and both cores can serve it. When they are cached, one thread
/// is faster: a helper's start and the cross-core traffic cost more than they save.
fn entries_details(
    svc: &NfsService,
    obj: &Object,
    dirfd: BorrowedFd<'_>,
    raw: &[ListedEntry],
    cache: InodeHandleCache,
) -> Result<Vec<EntryDetails>, nfsstat3> {
    let look_up = |part: &[ListedEntry], misses: &mut usize| {
        obj.caller.run(|| {
            Ok(part.iter().map(|e| entry_details(svc, obj, dirfd, e, cache, misses)).collect::<Vec<_>>())
        })
    };
    let (probe, rest) = match cache {
        InodeHandleCache::Use => raw.split_at(raw.len().min(PROBE_ENTRIES)),
        InodeHandleCache::Skip => raw.split_at(0),
    };
    let mut misses = 0;
    let mut details = look_up(probe, &mut misses)?;
    if rest.len() < PARALLEL_ENTRIES || (cache == InodeHandleCache::Use && misses * 2 <= probe.len()) {
        details.extend(look_up(rest, &mut misses)?);
        return Ok(details);
    }
    let (first, second) = rest.split_at(rest.len() / 2);
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("rnfsd-readdir".into())
            .spawn_scoped(scope, || look_up(second, &mut 0));
        details.extend(look_up(first, &mut misses)?);
        match helper {
            Ok(h) => details.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?),
            // No thread to be had: do the second half here.
            Err(_) => details.extend(look_up(second, &mut misses)?),
        }
        Ok(details)
    })
}

pub fn readdirplus(
    svc: &NfsService,
    ctx: &CallContext,
    args: READDIRPLUS3args,
) -> Res<READDIRPLUS3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.dir)?;
    let export = &obj.res.export;
    let maxcount = (args.maxcount.min(svc.max_io_for(ctx))) as usize;
    let result = (|| {
        if obj.caller.options.no_readdirplus {
            return Err(nfsstat3::NFS3ERR_NOTSUPP);
        }
        require_dir(&obj.res.attr)?;
        // A kernel dirent is about a fifth of an entryplus3 on the wire. Names are read in small
        // batches: those read past the end of the reply are read again by the next call.
        let mut budget = maxcount.saturating_sub(HEADER_LEN + DIRLIST_TRAILER_LEN);
        // Names first: as many as the reply takes if every handle is as long as the root's (the
        // handles of one filesystem have one length). Then their attributes and handles, the
        // bulk of a listing's cost; finally the exact sizes decide what goes in.
        let handle_len = export.root_handle.len();
        let most = budget / (DIRLIST_ENTRY_OVERHEAD + entryplus_len(1, handle_len)) + 1;
        let mut stream = DirCursor::open(svc, &obj, args.cookie, maxcount / 16, most)?;
        let mut raw = Vec::new();
        let mut estimate = 0;
        while let Some(e) = stream.next()? {
            let len = DIRLIST_ENTRY_OVERHEAD + entryplus_len(e.entry.name().len(), handle_len);
            if estimate + len > budget {
                stream.unread(e);
                break;
            }
            estimate += len;
            raw.push(e);
        }
        let cache = if svc.exports.was_listed(export, &obj.res.attr) {
            InodeHandleCache::Use
        } else {
            InodeHandleCache::Skip
        };
        let mut details = entries_details(svc, &obj, obj.res.fd.as_fd(), &raw, cache)?;
        dotdot_handle(svc, &obj, &raw, &mut details);
        let learned: Vec<(u64, KnownHandle)> = raw
            .iter()
            .zip(details.iter_mut())
            .filter_map(|(e, d)| d.learned.take().map(|k| (e.entry.next_offset, k)))
            .collect();
        if !learned.is_empty() {
            svc.listings.remember_handles(export.fsid, &obj.res.attr, learned);
        }
        let mut entries = Vec::with_capacity(raw.len());
        let mut all_fit = true;
        for (listed, EntryDetails { attr, handle, .. }) in raw.into_iter().zip(details) {
            let e = listed.entry;
            let entry = entryplus3 {
                fileid: entry_fileid(&obj, &e),
                cookie: e.next_offset,
                name: filename3(e.name_bytes()),
                name_attributes: attr.map(|a| fattr(export, &a)),
                name_handle: handle.map(nfs_fh3),
            };
            let len = DIRLIST_ENTRY_OVERHEAD + entry.encoded_len();
            if len > budget {
                all_fit = false;
                break;
            }
            budget -= len;
            entries.push(entry);
        }
        // Entries left out are read again by the next call, from the last cookie sent.
        let eof = all_fit && stream.at_end()?;
        stream.finish(svc);
        if entries.is_empty() && !eof {
            return Err(nfsstat3::NFS3ERR_TOOSMALL);
        }
        if eof && cache == InodeHandleCache::Skip {
            svc.exports.mark_listed(export, &obj.res.attr);
        }
        Ok(dirlistplus3 { entries, eof })
    })();
    let dir_attributes = post_op(export, obj.res.fd.as_fd());
    Ok(match result {
        Ok(reply) => Nfs3Result::Ok(READDIRPLUS3resok { dir_attributes, cookieverf: args.cookieverf, reply }),
        Err(s) => Nfs3Result::Err(s, dir_attributes),
    })
}
