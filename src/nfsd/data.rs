//! File data: READ, WRITE and COMMIT through the open-file cache. Files are opened at root
//! identity (from the handle) and kept open; each request is checked against the caller first,
//! with knfsd's owner override: the owner of a file may read and write it whatever its mode bits
//! say, because a client checks permissions when it opens a file and may then legitimately
//! write to a file it created read-only. The write itself runs as the caller (needing no
//! permission, the descriptor being open for writing already), so the kernel clears the
//! setuid/setgid bits, and counts reserved blocks and quotas, exactly as for a local write by
//! that caller.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use xdr::nfs3::*;
use xdr::{Xdr, XdrWrite};

use super::NfsService;
use super::fattr::{fattr, wcc};
use super::request::{Object, Res, Unresolved, st};
use crate::fs::attr::stat_fd;
use crate::fs::files::{OpenFile, OpenMode, WritebackErrors};
use crate::fs::sys;
use crate::fs::{FileType, NowaitReads};
use crate::rpc::buffers::LARGE_BUFFERS;
use crate::rpc::{CallContext, RpcError};

impl NfsService {
    /// The open file for a regular file's handle, after checking the caller may read (or
    /// write) it.
    fn open_file(&self, obj: &Object, fh: &nfs_fh3, mode: OpenMode) -> Result<Arc<OpenFile>, nfsstat3> {
        match obj.res.attr.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(nfsstat3::NFS3ERR_ISDIR),
            _ => return Err(nfsstat3::NFS3ERR_INVAL),
        }
        if !obj.caller.owns(obj.res.attr.uid) {
            obj.caller.run(|| may_access(obj, mode))?;
        }
        self.files
            .get_or_open(&fh.0, mode, |mode| {
                let flags = match mode {
                    OpenMode::Read => libc::O_RDONLY,
                    OpenMode::ReadWrite => libc::O_RDWR,
                };
                Ok(File::from(obj.caller.reopen(&self.exports, &obj.res, flags | libc::O_CLOEXEC)?))
            })
            .map_err(st)
    }

    /// Writes `data` at `offset` of a regular file's handle as the caller, after [`Self::open_file`]'s
    /// checks: the kernel then clears setuid/setgid bits and applies reserved blocks and quotas
    /// as for a local write by that caller. A file already open for writing (a client streaming
    /// it) is checked and written under one identity switch instead of two.
    fn write_as_caller(
        &self,
        obj: &Object,
        fh: &nfs_fh3,
        data: &[u8],
        offset: u64,
    ) -> Result<Arc<OpenFile>, nfsstat3> {
        let write = |file: &OpenFile| file.file.write_all_at(data, offset).map_err(st);
        let owner = obj.caller.owns(obj.res.attr.uid);
        // Only looks in the cache (and keeps the file there as used): the opener never opens.
        let not_cached = |_| Err(std::io::ErrorKind::NotFound.into());
        if !owner
            && obj.res.attr.file_type == FileType::Regular
            && let Ok(file) = self.files.get_or_open(&fh.0, OpenMode::ReadWrite, not_cached)
        {
            obj.caller.run(|| may_access(obj, OpenMode::ReadWrite).and_then(|()| write(&file)))?;
            return Ok(file);
        }
        let file = self.open_file(obj, fh, OpenMode::ReadWrite)?;
        obj.caller.run(|| write(&file))?;
        Ok(file)
    }
}

/// Whether the thread's identity (the caller's, inside [`Caller::run`]) may read or write the
/// file of `obj`.
///
/// [`Caller::run`]: super::request::Caller::run
fn may_access(obj: &Object, mode: OpenMode) -> Result<(), nfsstat3> {
    let fd = obj.res.fd.as_fd();
    match mode {
        OpenMode::ReadWrite => sys::access_fd(fd, libc::W_OK).map_err(st),
        // Executing a file means reading it on the client: execute permission suffices for
        // READ, as on knfsd.
        OpenMode::Read => {
            sys::access_fd(fd, libc::R_OK).or_else(|_| sys::access_fd(fd, libc::X_OK)).map_err(st)
        }
    }
}

/// READ encodes its own reply so the data is read from the file straight into the reply buffer:
/// the header fields are written with placeholders, `pread` appends the data, and the attributes
/// taken after the read, the count and the eof flag are patched in. Errors are encoded as usual.
pub fn read(svc: &NfsService, ctx: &CallContext, args: READ3args, out: &mut BytesMut) {
    let done = read_with(svc, ctx, args, out, DiskWait::Wait);
    debug_assert!(done.is_some(), "a waiting READ always finishes");
}

/// READ if the data is all in the page cache; `None` (and nothing appended to `out`) if it
/// would have to wait for the disk.
pub fn read_nowait(svc: &NfsService, ctx: &CallContext, args: READ3args, out: &mut BytesMut) -> Option<()> {
    read_with(svc, ctx, args, out, DiskWait::GiveUp)
}

/// Whether a READ waits for data the page cache does not hold, or gives up (`None`) instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskWait {
    Wait,
    GiveUp,
}

fn read_with(
    svc: &NfsService,
    ctx: &CallContext,
    args: READ3args,
    out: &mut BytesMut,
    disk_wait: DiskWait,
) -> Option<()> {
    let nowait = disk_wait == DiskWait::GiveUp;
    let count = args.count.min(svc.max_io_for(ctx)) as usize;
    // Large reads keep the async workers free for the network; they parallelise on the pool.
    if nowait && count > NOWAIT_MAX {
        return None;
    }
    let obj = match svc.resolve(ctx, &args.file) {
        Ok(o) => o,
        Err(Unresolved(s)) => {
            READ3res::Err(s, None).encode(out);
            return Some(());
        }
    };
    let export = &obj.res.export;
    if nowait && !export.nowait_reads.worth_trying() {
        return None;
    }
    let start = out.len();
    let result = (|| {
        let file = svc.open_file(&obj, &args.file, OpenMode::Read).map_err(Some)?;
        // Reading past the largest offset is simply end of file.
        let count = if args.offset > i64::MAX as u64 { 0 } else { count };
        // A large READ is read into a pooled buffer, which the writer takes back once sent.
        LARGE_BUFFERS.reserve(out, READ_HEAD_LEN + count + 4);
        out.put_xdr_u32(nfsstat3::NFS3_OK as u32);
        let attr_at = out.len();
        // post_op_attr present + fattr3, count, eof, data length: patched below.
        out.put_bytes(0, READ_HEAD_LEN - 4);
        let data_at = out.len();
        let flag_nowait = nowait && !matches!(export.nowait_reads, NowaitReads::MemoryBacked);
        let n =
            sys::pread_append(file.file.as_fd(), out, count, args.offset, flag_nowait).map_err(
                |e| match e.kind() {
                    std::io::ErrorKind::WouldBlock if flag_nowait => None,
                    std::io::ErrorKind::Unsupported if flag_nowait => {
                        export.nowait_reads.unsupported();
                        None
                    }
                    _ => Some(st(e)),
                },
            )?;
        out.put_bytes(0, (4 - n % 4) % 4);
        let attr = stat_fd(file.file.as_fd()).map_err(|e| Some(st(e)))?;
        let eof = args.offset.saturating_add(n as u64) >= attr.size;
        let mut head = BytesMut::with_capacity(READ_HEAD_LEN - 4);
        Some(fattr(export, &attr)).encode(&mut head);
        head.put_xdr_u32(n as u32);
        head.put_xdr_bool(eof);
        head.put_xdr_u32(n as u32);
        debug_assert_eq!(head.len(), data_at - attr_at);
        out[attr_at..data_at].copy_from_slice(&head);
        Ok(())
    })();
    match result {
        Ok(()) => Some(()),
        Err(None) => {
            out.truncate(start);
            None
        }
        Err(Some(s)) => {
            out.truncate(start);
            READ3res::Err(s, Some(fattr(export, &obj.res.attr))).encode(out);
            Some(())
        }
    }
}

/// Largest READ tried on the async worker.
const NOWAIT_MAX: usize = 64 * 1024;

/// Bytes of a successful READ reply before the data: status, post_op_attr (discriminant and
/// fattr3), count, eof and the data's length.
const READ_HEAD_LEN: usize = 4 + 4 + fattr3::ENCODED_LEN + 4 + 4 + 4;

pub fn write(svc: &NfsService, ctx: &CallContext, args: WRITE3args) -> Res<WRITE3resok, wcc_data> {
    // The count must describe the data sent (RFC 1813 §3.3.7); knfsd rejects a shorter payload
    // as undecodable.
    let count = args.count as usize;
    if args.data.len() < count {
        return Err(RpcError::GarbageArgs.into());
    }
    let data = &args.data[..count];
    let obj = svc.resolve(ctx, &args.file)?;
    let export = &obj.res.export;
    let pre = &obj.res.attr;
    let mut file_fd = None;
    let result = (|| {
        obj.caller.check_writable()?;
        if args.offset.checked_add(count as u64).is_none_or(|end| end > i64::MAX as u64) {
            return Err(nfsstat3::NFS3ERR_FBIG);
        }
        let file = svc.write_as_caller(&obj, &args.file, data, args.offset)?;
        file_fd = Some(file.clone());
        let sync = obj.caller.options.sync;
        let committed = match args.stable {
            stable_how::UNSTABLE => {
                file.mark_dirty();
                stable_how::UNSTABLE
            }
            stable_how::DATA_SYNC => {
                if sync {
                    file.sync_data().map_err(st)?;
                }
                stable_how::DATA_SYNC
            }
            stable_how::FILE_SYNC => {
                if sync {
                    file.sync_all().map_err(st)?;
                }
                stable_how::FILE_SYNC
            }
        };
        Ok(committed)
    })();
    let file_wcc = match &file_fd {
        Some(f) => wcc(export, Some(pre), f.file.as_fd()),
        None => wcc(export, Some(pre), obj.res.fd.as_fd()),
    };
    Ok(match result {
        Ok(committed) => Nfs3Result::Ok(WRITE3resok {
            file_wcc,
            count: count as u32,
            committed,
            verf: svc.verifier.current(),
        }),
        Err(s) => Nfs3Result::Err(s, file_wcc),
    })
}

pub fn commit(svc: &NfsService, ctx: &CallContext, args: COMMIT3args) -> Res<COMMIT3resok, wcc_data> {
    let obj = svc.resolve(ctx, &args.file)?;
    let export = &obj.res.export;
    let pre = &obj.res.attr;
    let result = (|| {
        obj.caller.check_writable()?;
        match pre.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(nfsstat3::NFS3ERR_ISDIR),
            _ => return Err(nfsstat3::NFS3ERR_INVAL),
        }
        if !obj.caller.options.sync {
            return Ok(());
        }
        match svc.files.get(&args.file.0) {
            Some(file) => file.sync_data().map_err(st),
            // Not cached: it was closed, and closing synced it (a failure there rotated the
            // verifier). Syncing a fresh descriptor still flushes anything written since.
            None => {
                let fd = svc.exports.reopen(&obj.res, libc::O_RDONLY | libc::O_CLOEXEC).map_err(st)?;
                File::from(fd).sync_data().map_err(|e| {
                    svc.verifier.writeback_failed(&e);
                    st(e)
                })
            }
        }
    })();
    let file_wcc = wcc(export, Some(pre), obj.res.fd.as_fd());
    Ok(match result {
        Ok(()) => Nfs3Result::Ok(COMMIT3resok { file_wcc, verf: svc.verifier.current() }),
        Err(s) => Nfs3Result::Err(s, file_wcc),
    })
}
