//! The NFS version 3 program (100003, RFC 1813) as an [`RpcService`]: its procedure table (`V3`)
//! and the procedures themselves over the [`fs`] layer.
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
pub(crate) mod request;
pub mod status;
pub mod verifier;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use xdr::nfs3::{self, READ3args, READDIR3args, READDIRPLUS3args, procs};
use xdr::{Reader, Xdr};

use crate::config::Limits;
use crate::fs::Exports;
use crate::fs::files::OpenFileCache;
use crate::fs::listings::{DirListings, LISTED_ENTRIES};
use crate::rpc::DrcClass::{Idempotent, NonIdempotent};
use crate::rpc::RunOn::{Inline, Pool, TryInline};
use crate::rpc::program::LargestReply::{FromArgs, Small};
use crate::rpc::program::{Attempt, Handler, Procedure, Version, arguments, by_number, handler, null, row};
use crate::rpc::{CallContext, RpcError, RpcService, SMALL_REPLY_BOUND, xdr_padded, xdr_word};
use verifier::WriteVerifier;

/// Largest data payload offered over UDP.
const UDP_MAX_IO: u32 = 32 * 1024;

/// Largest READDIR count or READDIRPLUS maxcount served on the async workers of a memory-backed
/// export. A listing costs a `statx` (READDIRPLUS) per entry, so a 1 MiB one takes tens of
/// milliseconds of CPU: run on a network worker, a few of them pipelined by one client would
/// hold up every other client's calls queued behind them. Larger listings go to the pool, where
/// the kernel shares the CPU between threads and the pool's slots are shared between clients.
const INLINE_LISTING_MAX: u32 = 8 * 1024;

/// Largest listing of a memory-backed export that may still run on an async worker, when one is
/// spare (see [`WorkerListings`]): 64 KiB is what the Linux client asks for, about half a
/// millisecond of `statx` calls. Handing each page of a listing to the pool costs its thread
/// hand-offs, a fifth of the time of a repeated listing of 10,000 entries.
const WORKER_LISTING_MAX: u32 = 64 * 1024;

/// How many listings larger than [`INLINE_LISTING_MAX`] run on async workers at once: all
/// workers but one, so that however many clients list big directories, one worker is always free
/// for everyone's GETATTR and LOOKUP (and with a single worker, none run there).
#[derive(Default)]
struct WorkerListings {
    running: AtomicUsize,
}

/// A worker's turn at a listing; gives it back when dropped.
struct WorkerListingTurn<'a>(&'a AtomicUsize);

impl WorkerListings {
    fn take(&self) -> Option<WorkerListingTurn<'_>> {
        let workers = tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_workers());
        let most = workers.saturating_sub(1);
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < most).then_some(n + 1))
            .ok()
            .map(|_| WorkerListingTurn(&self.running))
    }
}

impl Drop for WorkerListingTurn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

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
    /// Turns of the async workers at listings above [`INLINE_LISTING_MAX`].
    worker_listings: WorkerListings,
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

/// NFS version 3 (RFC 1813 §3.3), by procedure number.
///
/// DRC: the procedures whose re-execution could answer differently (RFC 1813 §4.5) are
/// NonIdempotent, so the duplicate-request cache replays their replies.
///
/// Runs on: a resolve plus a metadata call or two runs inline. READ runs inline when its data is
/// in the page cache ([`data::read_nowait`]). On memory-backed exports (tmpfs), where nothing can
/// wait for a disk, every change, COMMIT and small directory reads (see [`INLINE_LISTING_MAX`])
/// run inline too. Everything else may wait for the disk and goes to the blocking pool.
///
/// Largest reply: READ and the directory reads return up to the count the client asks for
/// (capped at the transfer size); everything else has small results.
#[rustfmt::skip]
const V3: [Option<Procedure<NfsService>>; 22] = {
    use data::{commit, read, write};
    use meta::{access, fsinfo, fsstat, getattr, pathconf, readlink, setattr};
    use names::{create, link, lookup, mkdir, mknod, remove, rename, rmdir, symlink};
    use procs::*;
    use readdir::{readdir, readdirplus};
    let small_readdir: Attempt<NfsService> = small_listing::<READDIR3args>;
    let small_readdirplus: Attempt<NfsService> = small_listing::<READDIRPLUS3args>;
    by_number(&[&[
        //  number       name           DRC            runs on                       largest reply            handler
        row(NULL,        "NULL",        Idempotent,    Inline,                       Small,                   handler!(null)),
        row(GETATTR,     "GETATTR",     Idempotent,    Inline,                       Small,                   handler!(getattr)),
        row(SETATTR,     "SETATTR",     NonIdempotent, TryInline(in_memory),         Small,                   handler!(setattr)),
        row(LOOKUP,      "LOOKUP",      Idempotent,    Inline,                       Small,                   handler!(lookup)),
        row(ACCESS,      "ACCESS",      Idempotent,    Inline,                       Small,                   handler!(access)),
        row(READLINK,    "READLINK",    Idempotent,    Inline,                       Small,                   handler!(readlink)),
        row(READ,        "READ",        Idempotent,    TryInline(read_nowait),       FromArgs(counted::<8>),  handler!(writes read)),
        row(WRITE,       "WRITE",       Idempotent,    Pool,                         Small,                   handler!(write)),
        row(CREATE,      "CREATE",      NonIdempotent, TryInline(in_memory),         Small,                   handler!(create)),
        row(MKDIR,       "MKDIR",       NonIdempotent, TryInline(in_memory),         Small,                   handler!(mkdir)),
        row(SYMLINK,     "SYMLINK",     NonIdempotent, TryInline(in_memory),         Small,                   handler!(symlink)),
        row(MKNOD,       "MKNOD",       NonIdempotent, TryInline(in_memory),         Small,                   handler!(mknod)),
        row(REMOVE,      "REMOVE",      NonIdempotent, TryInline(in_memory),         Small,                   handler!(remove)),
        row(RMDIR,       "RMDIR",       NonIdempotent, TryInline(in_memory),         Small,                   handler!(rmdir)),
        row(RENAME,      "RENAME",      NonIdempotent, TryInline(in_memory),         Small,                   handler!(rename)),
        row(LINK,        "LINK",        NonIdempotent, TryInline(in_memory),         Small,                   handler!(link)),
        row(READDIR,     "READDIR",     Idempotent,    TryInline(small_readdir),     FromArgs(counted::<16>), handler!(readdir)),
        row(READDIRPLUS, "READDIRPLUS", Idempotent,    TryInline(small_readdirplus), FromArgs(counted::<20>), handler!(readdirplus)),
        row(FSSTAT,      "FSSTAT",      Idempotent,    Inline,                       Small,                   handler!(fsstat)),
        row(FSINFO,      "FSINFO",      Idempotent,    Inline,                       Small,                   handler!(fsinfo)),
        row(PATHCONF,    "PATHCONF",    Idempotent,    Inline,                       Small,                   handler!(pathconf)),
        row(COMMIT,      "COMMIT",      Idempotent,    TryInline(in_memory),         Small,                   handler!(commit)),
    ]])
};

impl RpcService for NfsService {
    const PROGRAM: u32 = nfs3::PROGRAM;
    const NAME: &'static str = "nfs";
    const VERSIONS: &'static [Version<Self>] = &[Version { number: nfs3::VERSION, procedures: &V3 }];
}

/// The reply bound of a call whose arguments are a handle and then, `COUNT_AT` bytes after it,
/// the count of data the client asks for (READ: after the offset; READDIR: after the cookie and
/// its verifier; READDIRPLUS: after those and `dircount`).
fn counted<const COUNT_AT: usize>(svc: &NfsService, args: &[u8]) -> usize {
    let Some(fh) = xdr_word(args, 0).filter(|&l| l <= nfs3::FHSIZE) else { return SMALL_REPLY_BOUND };
    xdr_word(args, 4 + xdr_padded(fh) + COUNT_AT)
        .map_or(SMALL_REPLY_BOUND, |c| c.min(svc.max_io as usize) + SMALL_REPLY_BOUND)
}

/// READ on the async worker, if the data is all in the page cache.
fn read_nowait(
    svc: &NfsService,
    ctx: &CallContext,
    args: &mut Reader,
    out: &mut BytesMut,
    _: Handler<NfsService>,
) -> Option<Result<(), RpcError>> {
    match arguments::<READ3args>(args) {
        Ok(a) => data::read_nowait(svc, ctx, a, out).map(Ok),
        Err(e) => Some(Err(e)),
    }
}

/// The procedure on the async worker if its first argument, the handle of the object it works
/// on, is on a memory-backed export: nothing it does there can wait for a disk.
fn in_memory(
    svc: &NfsService,
    ctx: &CallContext,
    args: &mut Reader,
    out: &mut BytesMut,
    handler: Handler<NfsService>,
) -> Option<Result<(), RpcError>> {
    svc.first_handle_is_memory_backed(args).then(|| handler(svc, ctx, args, out))
}

/// READDIR or READDIRPLUS (`A`) on a memory-backed export, if it asks for at most
/// [`INLINE_LISTING_MAX`] bytes, or for at most [`WORKER_LISTING_MAX`] while a worker is spare.
/// Only routes the call: undecodable arguments go to the pool, where the procedure answers them.
fn small_listing<A: ListingArgs>(
    svc: &NfsService,
    ctx: &CallContext,
    args: &mut Reader,
    out: &mut BytesMut,
    handler: Handler<NfsService>,
) -> Option<Result<(), RpcError>> {
    let asked = A::decode(&mut args.clone()).ok()?.asked();
    if asked > WORKER_LISTING_MAX || !svc.first_handle_is_memory_backed(args) {
        return None;
    }
    let _turn = if asked > INLINE_LISTING_MAX { Some(svc.worker_listings.take()?) } else { None };
    Some(handler(svc, ctx, args, out))
}

/// The arguments of a directory read, and how many bytes of listing they ask for.
trait ListingArgs: Xdr {
    fn asked(&self) -> u32;
}

impl ListingArgs for READDIR3args {
    fn asked(&self) -> u32 {
        self.count
    }
}

impl ListingArgs for READDIRPLUS3args {
    fn asked(&self) -> u32 {
        self.maxcount
    }
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
            worker_listings: WorkerListings::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The table names every procedure as the codec crate does for clients and tools (the fault
    /// proxy's rules), at the index of its number.
    #[test]
    fn the_table_has_every_procedure_under_its_rfc_name() {
        assert_eq!(V3.len(), procs::NAMES.len());
        for (number, row) in (0..).zip(&V3) {
            let row = row.as_ref().expect("every NFS v3 procedure is served");
            assert_eq!((row.number, Some(row.name)), (number, procs::name(number)));
        }
    }

    /// Big listings take at most all async workers but one, and none with a single worker or
    /// outside a runtime.
    #[test]
    fn big_listings_leave_one_async_worker_free() {
        let listings = WorkerListings::default();
        assert!(listings.take().is_none(), "outside a runtime");
        for workers in [1, 2, 4] {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).build().unwrap();
            let _in_runtime = rt.enter();
            let turns: Vec<_> = std::iter::from_fn(|| listings.take()).take(8).collect();
            assert_eq!(turns.len(), workers - 1, "{workers} workers");
            drop(turns);
            assert_eq!(listings.take().is_some(), workers > 1, "turns come back when dropped");
        }
    }
}
