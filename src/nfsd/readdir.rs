//! READDIR and READDIRPLUS. Cookies are the directory offsets the filesystem reports (`d_off`),
//! resumed with `lseek`, so paging needs no server state and survives restarts. `.` and `..`
//! are listed like any entry. The cookie verifier is echoed, never checked (as knfsd does): a
//! directory that changed between pages is still resumed from the cookie, and only a cookie the
//! filesystem rejects gives NFS3ERR_BAD_COOKIE.
//!
//! READDIRPLUS fills its reply up to `maxcount` and, like knfsd, does not stop at `dircount`:
//! the Linux client sends `dircount = maxcount / 8`, and honouring it would cut each reply to an
//! eighth of what the client is ready to take and multiply the round trips of every listing.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use bytes::Bytes;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{Whence, lseek};
use xdr::Xdr;
use xdr::nfs3::*;

use super::NfsService;
use super::attrs::{fattr, post_op};
use super::request::{Object, st};
use crate::fs::attr::stat_at;
use crate::fs::inode_handles::Provenance;
use crate::fs::sys::{self, RawDirEntry};
use crate::fs::{Attr, FileType};
use crate::rpc::{CallContext, RpcError};

type Res<T, F> = Result<Nfs3Result<T, F>, RpcError>;

/// Reply bytes before the entries: status, post_op_attr with attributes, cookie verifier.
const HEADER_LEN: usize = 4 + 4 + fattr3::ENCODED_LEN + COOKIEVERFSIZE;

/// A directory opened for reading at a cookie.
struct DirStream {
    fd: OwnedFd,
    buf: Vec<u8>,
    pending: std::vec::IntoIter<RawDirEntry>,
    eof: bool,
}

impl DirStream {
    /// Opens `dir` for reading as the caller (read permission is the kernel's to check) and
    /// positions it at `cookie`. `buf_len` bounds each `getdents`: entries read beyond what the
    /// reply takes are read again by the next call, so it should match the reply's budget
    /// (a kernel dirent is about as big as its XDR `entry3`).
    fn open(obj: &Object, cookie: u64, buf_len: usize) -> Result<DirStream, nfsstat3> {
        let fd = obj.caller.run(|| {
            openat(
                obj.res.fd.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(st)
        })?;
        if cookie != 0 {
            let offset = i64::try_from(cookie).map_err(|_| nfsstat3::NFS3ERR_BAD_COOKIE)?;
            lseek(fd.as_fd(), offset, Whence::SeekSet).map_err(|_| nfsstat3::NFS3ERR_BAD_COOKIE)?;
        }
        Ok(DirStream {
            fd,
            buf: vec![0; buf_len.clamp(1024, 64 * 1024)],
            pending: Vec::new().into_iter(),
            eof: false,
        })
    }

    /// The next entry, or `None` at the end of the directory.
    fn next(&mut self) -> Result<Option<RawDirEntry>, nfsstat3> {
        loop {
            if let Some(e) = self.pending.next() {
                return Ok(Some(e));
            }
            if self.eof {
                return Ok(None);
            }
            let batch = sys::getdents(self.fd.as_fd(), &mut self.buf).map_err(st)?;
            if batch.is_empty() {
                self.eof = true;
            }
            self.pending = batch.into_iter();
        }
    }

    /// Puts an entry back (it did not fit the reply).
    fn unread(&mut self, e: RawDirEntry) {
        let rest: Vec<RawDirEntry> = std::iter::once(e).chain(self.pending.by_ref()).collect();
        self.pending = rest.into_iter();
    }

    /// Whether the stream is at the end of the directory.
    fn at_end(&mut self) -> Result<bool, nfsstat3> {
        match self.next()? {
            Some(e) => {
                self.unread(e);
                Ok(false)
            }
            None => Ok(true),
        }
    }
}

/// The fileid to report for an entry: `..` of the export root is the root itself (a client
/// must never learn of anything above the export), otherwise the inode number.
fn entry_fileid(obj: &Object, e: &RawDirEntry) -> u64 {
    if e.name == b".." && obj.res.export.is_root(&obj.res.attr) { obj.res.attr.ino } else { e.ino }
}

fn check_dir(obj: &Object) -> Result<(), nfsstat3> {
    if obj.res.attr.file_type == FileType::Directory { Ok(()) } else { Err(nfsstat3::NFS3ERR_NOTDIR) }
}

pub fn readdir(svc: &NfsService, ctx: &CallContext, args: READDIR3args) -> Res<READDIR3resok, post_op_attr> {
    let obj = match svc.resolve(ctx, &args.dir) {
        Ok(o) => o,
        Err(s) => return Ok(Nfs3Result::Err(s, None)),
    };
    let export = &obj.res.export;
    let count = (args.count.min(svc.max_io_for(ctx))) as usize;
    let result = (|| {
        check_dir(&obj)?;
        let mut stream = DirStream::open(&obj, args.cookie, count)?;
        let mut budget = count.saturating_sub(HEADER_LEN + DIRLIST_TRAILER_LEN);
        let mut entries = Vec::new();
        while let Some(e) = stream.next()? {
            let len = DIRLIST_ENTRY_OVERHEAD + entry3::encoded_len_for(e.name.len());
            if len > budget {
                stream.unread(e);
                break;
            }
            budget -= len;
            entries.push(entry3 {
                fileid: entry_fileid(&obj, &e),
                cookie: e.next_offset,
                name: filename3(Bytes::from(e.name)),
            });
        }
        let eof = stream.at_end()?;
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

/// An entry's attributes and handle, when they could be had.
type EntryDetails = (Option<Attr>, Option<Bytes>);

/// Handle and attributes of one entry for READDIRPLUS, looked up as the caller without
/// following symlinks. `.` is the directory itself, `..` of the export root is the root, and an
/// entry that vanished or lies on another filesystem gets neither. With `cache`, the handle comes
/// from the inode-handle cache when it can and is remembered when it could not, counted in
/// `misses`.
fn entry_details(
    svc: &NfsService,
    obj: &Object,
    dirfd: BorrowedFd<'_>,
    name: &[u8],
    cache: bool,
    misses: &mut usize,
) -> EntryDetails {
    let export = &obj.res.export;
    let at_root = export.is_root(&obj.res.attr);
    if name == b"." || (name == b".." && at_root) {
        let handle = if at_root {
            export.root_handle.clone()
        } else {
            svc.exports.handle_of(export, obj.res.fd.as_fd()).ok().unwrap_or_default()
        };
        if handle.is_empty() {
            return (Some(obj.res.attr.clone()), None);
        }
        return (Some(obj.res.attr.clone()), Some(handle));
    }
    let Ok(cname) = std::ffi::CString::new(name) else { return (None, None) };
    let Ok(attr) = stat_at(dirfd, &cname) else { return (None, None) };
    let handle = if cache {
        if let Some(handle) = svc.exports.cached_handle(export, &attr, Provenance::Name) {
            return (Some(attr), Some(handle));
        }
        *misses += 1;
        svc.exports.handle_at_remembered(export, dirfd, &cname, &attr)
    } else {
        svc.exports.handle_at(export, dirfd, &cname, 0)
    };
    match handle {
        Ok(h) => (Some(attr), Some(h)),
        Err(_) => (None, None),
    }
}

/// Encoded size of an `entryplus3` with attributes and a handle of `handle_len` bytes.
fn entryplus_len(name_len: usize, handle_len: usize) -> usize {
    entry3::encoded_len_for(name_len) + 4 + fattr3::ENCODED_LEN + 4 + 4 + handle_len.div_ceil(4) * 4
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
    raw: &[RawDirEntry],
    cache: bool,
) -> Result<Vec<EntryDetails>, nfsstat3> {
    let look_up = |part: &[RawDirEntry], misses: &mut usize| {
        obj.caller.run(|| {
            Ok(part
                .iter()
                .map(|e| entry_details(svc, obj, dirfd, &e.name, cache, misses))
                .collect::<Vec<_>>())
        })
    };
    let (probe, rest) = if cache { raw.split_at(raw.len().min(PROBE_ENTRIES)) } else { raw.split_at(0) };
    let mut misses = 0;
    let mut details = look_up(probe, &mut misses)?;
    if rest.len() < PARALLEL_ENTRIES || (cache && misses * 2 <= probe.len()) {
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
    let obj = match svc.resolve(ctx, &args.dir) {
        Ok(o) => o,
        Err(s) => return Ok(Nfs3Result::Err(s, None)),
    };
    let export = &obj.res.export;
    let maxcount = (args.maxcount.min(svc.max_io_for(ctx))) as usize;
    let result = (|| {
        if obj.caller.options.no_readdirplus {
            return Err(nfsstat3::NFS3ERR_NOTSUPP);
        }
        check_dir(&obj)?;
        // A kernel dirent is about a fifth of an entryplus3 on the wire. Names are read in small
        // batches: those read past the end of the reply are read again by the next call.
        let mut stream = DirStream::open(&obj, args.cookie, maxcount / 16)?;
        let mut budget = maxcount.saturating_sub(HEADER_LEN + DIRLIST_TRAILER_LEN);
        // Names first: as many as the reply takes if every handle is as long as the root's (the
        // handles of one filesystem have one length). Then their attributes and handles, the
        // bulk of a listing's cost; finally the exact sizes decide what goes in.
        let handle_len = export.root_handle.len();
        let mut raw = Vec::new();
        let mut estimate = 0;
        while let Some(e) = stream.next()? {
            let len = DIRLIST_ENTRY_OVERHEAD + entryplus_len(e.name.len(), handle_len);
            if estimate + len > budget {
                stream.unread(e);
                break;
            }
            estimate += len;
            raw.push(e);
        }
        // The inode-handle cache pays off from a directory's second listing on.
        let cache = svc.exports.was_listed(export, &obj.res.attr);
        let details = entries_details(svc, &obj, stream.fd.as_fd(), &raw, cache)?;
        let mut entries = Vec::with_capacity(raw.len());
        let mut all_fit = true;
        for (e, (attr, handle)) in raw.into_iter().zip(details) {
            let entry = entryplus3 {
                fileid: entry_fileid(&obj, &e),
                cookie: e.next_offset,
                name: filename3(Bytes::from(e.name)),
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
        if entries.is_empty() && !eof {
            return Err(nfsstat3::NFS3ERR_TOOSMALL);
        }
        if eof && !cache {
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
