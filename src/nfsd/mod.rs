//! The NFS version 3 program (100003, RFC 1813) as an RPC [`Program`]: the per-procedure table,
//! argument decoding and result encoding, and the procedures themselves over the [`fs`] layer.
//!
//! Every procedure follows the same shape: resolve the file handle at root identity (only root may
//! `open_by_handle_at`), check the export's options for the caller (client rules, `secure`, `ro`),
//! then do the filesystem work under the caller's uid/gid/groups so the kernel enforces
//! permissions, and finally build the RFC's result with post-operation attributes and wcc data.
//!
//! [`fs`]: crate::fs

mod data;
mod fattr;
mod meta;
mod names;
mod readdir;
mod request;
pub mod status;
pub mod verifier;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use xdr::nfs3::{self, READ3args, procs};
use xdr::{Reader, Xdr};

use crate::config::Limits;
use crate::fs::Exports;
use crate::fs::files::OpenFileCache;
use crate::fs::listings::{DirListings, LISTED_ENTRIES};
use crate::rpc::{CallContext, DrcClass, ProcInfo, Program, RpcError, RunOn};
use verifier::WriteVerifier;

/// Largest data payload offered over UDP.
const UDP_MAX_IO: u32 = 32 * 1024;

/// Largest READDIR count or READDIRPLUS maxcount served on the async workers of a memory-backed
/// export. A listing costs a `statx` (READDIRPLUS) per entry, so a 1 MiB one takes tens of
/// milliseconds of CPU: run on a network worker, a few of them pipelined by one client would
/// hold up every other client's calls queued behind them. Larger listings go to the pool, where
/// the kernel shares the CPU between threads and the pool's slots are shared between clients.
const INLINE_LISTING_MAX: u32 = 8 * 1024;

/// The NFS v3 service over a set of opened exports.
pub struct NfsService {
    exports: Arc<Exports>,
    files: OpenFileCache,
    /// What READDIR and READDIRPLUS read of unchanged directories.
    listings: DirListings,
    /// Shared with `files`, which reports writeback errors to it.
    verifier: Arc<WriteVerifier>,
    /// rtmax/wtmax: the largest READ or WRITE payload.
    max_io: u32,
}

/// Entries held by each cache of the NFS service (the duplicate-request cache is the
/// dispatcher's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    pub resolved_handles: usize,
    pub inode_handles: usize,
    pub open_files: usize,
    pub listed_entries: usize,
}

/// Whether re-executing procedure `proc_` could answer differently (RFC 1813 §4.5), so its
/// reply must be kept by the duplicate-request cache.
fn drc_class(proc_: u32) -> DrcClass {
    match proc_ {
        procs::SETATTR
        | procs::CREATE
        | procs::MKDIR
        | procs::SYMLINK
        | procs::MKNOD
        | procs::REMOVE
        | procs::RMDIR
        | procs::RENAME
        | procs::LINK => DrcClass::NonIdempotent,
        _ => DrcClass::Idempotent,
    }
}

/// Procedures that are a resolve plus a metadata call or two run inline (see [`RunOn`]); the rest
/// may wait for the disk and go to the blocking pool.
fn run_on(proc_: u32) -> RunOn {
    match proc_ {
        procs::NULL
        | procs::GETATTR
        | procs::LOOKUP
        | procs::ACCESS
        | procs::READLINK
        | procs::FSSTAT
        | procs::FSINFO
        | procs::PATHCONF => RunOn::Inline,
        // Served inline when the data is in the page cache (see data::read_nowait).
        procs::READ => RunOn::TryInline,
        // Served inline on memory-backed exports (tmpfs), where they cannot wait for a disk:
        // small directory reads (see INLINE_LISTING_MAX), COMMIT and every change (the
        // procedures the DRC keeps).
        procs::READDIR | procs::READDIRPLUS | procs::COMMIT => RunOn::TryInline,
        p if drc_class(p) == DrcClass::NonIdempotent => RunOn::TryInline,
        _ => RunOn::Pool,
    }
}

/// Whether a call is not a listing, or a listing small enough for the async workers (see
/// [`INLINE_LISTING_MAX`]). Only routes the call: undecodable arguments go to the pool, where the
/// procedure answers them.
fn listing_is_small(proc_: u32, args: &Reader) -> bool {
    let count = match proc_ {
        procs::READDIR => nfs3::READDIR3args::decode(&mut args.clone()).map(|a| a.count),
        procs::READDIRPLUS => nfs3::READDIRPLUS3args::decode(&mut args.clone()).map(|a| a.maxcount),
        _ => return true,
    };
    count.is_ok_and(|c| c <= INLINE_LISTING_MAX)
}

impl NfsService {
    /// A service over `exports`. Sets the process umask to 0: the modes clients send are already
    /// filtered by the client's umask and must be applied exactly.
    pub fn new(exports: Arc<Exports>, limits: &Limits) -> io::Result<Self> {
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let verifier = Arc::new(WriteVerifier::new()?);
        Ok(NfsService {
            exports,
            files: OpenFileCache::new(limits.open_files, verifier.clone()),
            listings: DirListings::new(LISTED_ENTRIES),
            verifier,
            max_io: limits.max_io.clamp(4096, nfs3::MAX_DATA as u32),
        })
    }

    /// The largest READ/WRITE/READDIR payload for a call: a UDP reply must fit one datagram, so
    /// UDP gets 32 KiB (knfsd's choice too), TCP the configured maximum.
    pub(crate) fn max_io_for(&self, ctx: &CallContext) -> u32 {
        match ctx.transport {
            crate::rpc::Transport::Udp => self.max_io.min(UDP_MAX_IO),
            crate::rpc::Transport::Tcp => self.max_io,
        }
    }

    /// Whether the call's first argument is a handle of a memory-backed export. Only routes the
    /// call: the handle is authenticated when the procedure resolves it.
    fn first_handle_is_memory_backed(&self, args: &Reader) -> bool {
        let Ok(fh) = nfs3::nfs_fh3::decode(&mut args.clone()) else { return false };
        self.exports
            .export_named_by(fh.as_bytes())
            .is_some_and(|e| matches!(e.nowait_reads, crate::fs::NowaitReads::MemoryBacked))
    }

    pub fn exports(&self) -> &Arc<Exports> {
        &self.exports
    }

    /// The write verifier WRITE and COMMIT return now.
    pub fn write_verifier(&self) -> [u8; 8] {
        self.verifier.current()
    }

    /// Closes cached open files unused for `max_idle` (syncing uncommitted data first), and
    /// drops cached handles of objects removed behind the server's back; returns how many files
    /// were closed.
    pub fn close_idle_files(&self, max_idle: Duration) -> usize {
        let swept = self.exports.sweep_unlinked_handles();
        if swept > 0 {
            tracing::debug!(swept, "dropped cached handles of unlinked objects");
        }
        self.files.close_idle(max_idle)
    }

    /// Drops directory listings unused for `max_idle`; returns how many.
    pub fn expire_idle_listings(&self, max_idle: Duration) -> usize {
        self.listings.expire_idle(max_idle)
    }

    /// How full each of the service's caches is.
    pub fn cache_sizes(&self) -> CacheSizes {
        CacheSizes {
            resolved_handles: self.exports.cached_handles(),
            inode_handles: self.exports.known_inode_handles(),
            open_files: self.files.len(),
            listed_entries: self.listings.len(),
        }
    }

    /// Closes every cached open file, syncing uncommitted data (at shutdown).
    pub fn close_all_files(&self) {
        self.files.close_all()
    }
}

fn reply<T: Xdr>(out: &mut BytesMut, res: T) -> Result<(), RpcError> {
    res.encode(out);
    Ok(())
}

impl Program for NfsService {
    fn program(&self) -> u32 {
        nfs3::PROGRAM
    }

    fn name(&self) -> &'static str {
        "nfs"
    }

    fn versions(&self) -> (u32, u32) {
        (nfs3::VERSION, nfs3::VERSION)
    }

    fn procedure(&self, vers: u32, proc_: u32) -> Option<ProcInfo> {
        if vers != nfs3::VERSION {
            return None;
        }
        procs::name(proc_).map(|name| ProcInfo { name, drc: drc_class(proc_), run: run_on(proc_) })
    }

    /// READ and the directory reads return up to the count the client asks for (capped at the
    /// transfer size); everything else has small results.
    fn reply_bound(&self, _vers: u32, proc_: u32, args: &[u8]) -> usize {
        use crate::rpc::{SMALL_REPLY_BOUND, xdr_padded, xdr_word};
        // Each starts with the handle (length, bytes); the count follows fixed-size fields.
        let Some(fh) = xdr_word(args, 0).filter(|&l| l <= nfs3::FHSIZE) else { return SMALL_REPLY_BOUND };
        let after_fh = 4 + xdr_padded(fh);
        let count_at = match proc_ {
            procs::READ => after_fh + 8,                // offset
            procs::READDIR => after_fh + 8 + 8,         // cookie, cookieverf
            procs::READDIRPLUS => after_fh + 8 + 8 + 4, // cookie, cookieverf, dircount
            _ => return SMALL_REPLY_BOUND,
        };
        xdr_word(args, count_at)
            .map_or(SMALL_REPLY_BOUND, |c| c.min(self.max_io as usize) + SMALL_REPLY_BOUND)
    }

    fn call(
        &self,
        ctx: &CallContext,
        _vers: u32,
        proc_: u32,
        args: &mut Reader,
        out: &mut BytesMut,
    ) -> Result<(), RpcError> {
        macro_rules! run {
            ($handler:path) => {{
                let a = Xdr::decode(args)?;
                args.finish()?;
                reply(out, $handler(self, ctx, a)?)
            }};
        }
        match proc_ {
            procs::NULL => {
                args.finish()?;
                Ok(())
            }
            procs::GETATTR => run!(meta::getattr),
            procs::SETATTR => run!(meta::setattr),
            procs::LOOKUP => run!(names::lookup),
            procs::ACCESS => run!(meta::access),
            procs::READLINK => run!(meta::readlink),
            procs::READ => {
                let a = Xdr::decode(args)?;
                args.finish()?;
                data::read(self, ctx, a, out);
                Ok(())
            }
            procs::WRITE => run!(data::write),
            procs::CREATE => run!(names::create),
            procs::MKDIR => run!(names::mkdir),
            procs::SYMLINK => run!(names::symlink),
            procs::MKNOD => run!(names::mknod),
            procs::REMOVE => run!(names::remove),
            procs::RMDIR => run!(names::rmdir),
            procs::RENAME => run!(names::rename),
            procs::LINK => run!(names::link),
            procs::READDIR => run!(readdir::readdir),
            procs::READDIRPLUS => run!(readdir::readdirplus),
            procs::FSSTAT => run!(meta::fsstat),
            procs::FSINFO => run!(meta::fsinfo),
            procs::PATHCONF => run!(meta::pathconf),
            procs::COMMIT => run!(data::commit),
            _ => Err(RpcError::ProcUnavail),
        }
    }

    fn call_nonblocking(
        &self,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        args: &mut Reader,
        out: &mut BytesMut,
    ) -> Option<Result<(), RpcError>> {
        if proc_ == procs::READ {
            let decoded = READ3args::decode(args).and_then(|a| args.finish().map(|()| a));
            return match decoded {
                Ok(a) => data::read_nowait(self, ctx, a, out).map(Ok),
                Err(e) => Some(Err(e.into())),
            };
        }
        if !listing_is_small(proc_, args) {
            return None;
        }
        // Every other TryInline procedure starts with the handle of the object it works on: on a
        // memory-backed export nothing it does can wait for a disk.
        if self.first_handle_is_memory_backed(args) {
            return Some(self.call(ctx, vers, proc_, args, out));
        }
        None
    }
}
