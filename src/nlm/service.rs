//! NLM version 4 (program 100021) and NSM version 1 (program 100024) as [`RpcService`] tables:
//! what each procedure checks before the [`LockTable`] sees it (the handle, the export's client
//! rules and `secure`, the caller's read permission or ownership, `ro` exports, a regular file),
//! and what it answers.
//!
//! Choices, with knfsd's and nfs-ganesha's behaviour in mind:
//! - UNLOCK and CANCEL are served during grace (as ganesha; knfsd refuses them): they only
//!   release the caller's own locks and cannot take a reclaim's place. TEST and new LOCKs answer
//!   DENIED_GRACE_PERIOD.
//! - A reclaim after grace answers DENIED and is logged (knfsd answers DENIED_GRACE_PERIOD, which
//!   the Linux client treats the same way: the lock is lost).
//! - An exclusive lock on an `ro` export answers ROFS (knfsd grants it): a client that may only
//!   read must not be able to lock writers out.
//! - SHARE and UNSHARE (DOS share reservations, never sent by Linux) answer FAILED.
//! - SM_MON, SM_UNMON, SM_UNMON_ALL and SM_SIMU_CRASH: rnfsd monitors no host on anyone's behalf,
//!   so MON answers failure and the others change nothing.
//! - SM_NOTIFY and FREE_ALL release the locks of clients at the sender's address (a host speaks
//!   for itself); from this host's own address they may name a client by caller name or address.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedSender;
use xdr::Xdr;
use xdr::nfs3::nfsstat3;
use xdr::nlm::{
    PROGRAM as NLM_PROGRAM, VERSION_4, netobj, nlm4_cancargs, nlm4_lockargs, nlm4_notify, nlm4_proc,
    nlm4_res, nlm4_shareargs, nlm4_shareres, nlm4_stats, nlm4_testargs, nlm4_testres, nlm4_testrply,
    nlm4_unlockargs,
};
use xdr::nsm::{
    PROGRAM as NSM_PROGRAM, VERSION_1, mon, mon_id, my_id, sm_name, sm_res, sm_stat, sm_stat_res, stat_chge,
};

use super::table::{LockRequest, LockTable, Outgoing, Peer};
use crate::fs::FileType;
use crate::nfsd::NfsService;
use crate::rpc::DrcClass::{Idempotent, NonIdempotent};
use crate::rpc::RunOn::{Inline, Pool};
use crate::rpc::program::LargestReply::Small;
use crate::rpc::program::{Procedure, Version, by_number, handler, null, row};
use crate::rpc::{CallContext, RpcError, RpcService};

/// `_RES` calls queued at once: a flood of forged `_MSG` calls over UDP must not make the server
/// send unbounded traffic.
const MAX_QUEUED_RES: usize = 256;

/// The NLM v4 service.
pub struct NlmService {
    nfs: Arc<NfsService>,
    table: Arc<LockTable>,
    out: UnboundedSender<Outgoing>,
    queued_res: Arc<AtomicUsize>,
}

/// The NSM v1 service.
pub struct NsmService {
    table: Arc<LockTable>,
    state: i32,
}

fn peer(ctx: &CallContext) -> Peer {
    Peer { addr: ctx.peer.ip().to_canonical(), local: ctx.local.ip().to_canonical() }
}

impl NlmService {
    pub fn new(nfs: Arc<NfsService>, table: Arc<LockTable>, out: UnboundedSender<Outgoing>) -> Self {
        NlmService { nfs, table, out, queued_res: Arc::new(AtomicUsize::new(0)) }
    }

    /// The count of `_RES` calls queued, shared with the callback task that sends them.
    pub fn queued_res(&self) -> Arc<AtomicUsize> {
        self.queued_res.clone()
    }

    /// Resolves the lock's file for the caller and runs `f` with a way to open it for locking.
    fn with_file(
        &self,
        ctx: &CallContext,
        fh: &netobj,
        exclusive: bool,
        f: impl FnOnce(&Bytes, &dyn Fn(bool) -> std::io::Result<std::os::fd::OwnedFd>) -> nlm4_stats,
    ) -> nlm4_stats {
        let (res, caller) = match self.nfs.resolve_for_lock(ctx, fh.as_bytes()) {
            Ok(pair) => pair,
            Err(nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_BADHANDLE) => return nlm4_stats::StaleFh,
            Err(_) => return nlm4_stats::Failed,
        };
        if res.attr.file_type != FileType::Regular {
            return nlm4_stats::Failed;
        }
        if exclusive && caller.options.read_only {
            return nlm4_stats::Rofs;
        }
        // knfsd's rule for locks: read permission, or owning the file.
        let may_read = caller.owns(res.attr.uid)
            || caller
                .run(|| {
                    crate::fs::sys::access_fd(res.fd.as_fd(), libc::R_OK).map_err(crate::nfsd::request::st)
                })
                .is_ok();
        if !may_read {
            return nlm4_stats::Failed;
        }
        let read_only = caller.options.read_only;
        let exports = self.nfs.exports().clone();
        let open = move |write: bool| {
            if write && read_only {
                return Err(std::io::Error::from_raw_os_error(libc::EROFS));
            }
            let mode = if write { libc::O_RDWR } else { libc::O_RDONLY };
            exports.reopen(&res, mode | libc::O_CLOEXEC | libc::O_NONBLOCK)
        };
        f(&Bytes::copy_from_slice(fh.as_bytes()), &open)
    }

    fn do_lock(&self, ctx: &CallContext, a: &nlm4_lockargs, monitored: bool) -> nlm4_stats {
        self.with_file(ctx, &a.alock.fh, a.exclusive, |fh, open| {
            self.table.lock(
                LockRequest {
                    peer: peer(ctx),
                    fh,
                    cookie: &a.cookie,
                    alock: &a.alock,
                    exclusive: a.exclusive,
                    block: a.block,
                    reclaim: a.reclaim,
                    monitored,
                },
                open,
            )
        })
    }

    fn do_test(&self, ctx: &CallContext, a: &nlm4_testargs) -> nlm4_testrply {
        let mut reply = nlm4_testrply::Other(nlm4_stats::Failed);
        let stat = self.with_file(ctx, &a.alock.fh, false, |fh, open| {
            reply = self.table.test(peer(ctx), fh, &a.alock, a.exclusive, open);
            nlm4_stats::Granted
        });
        if stat != nlm4_stats::Granted { nlm4_testrply::Other(stat) } else { reply }
    }

    fn do_unlock(&self, ctx: &CallContext, a: &nlm4_unlockargs) -> nlm4_stats {
        // Only the handle is checked: releasing needs no permission beyond owning the lock.
        match self.nfs.resolve_for_lock(ctx, a.alock.fh.as_bytes()) {
            Ok(_) => self.table.unlock(peer(ctx), &Bytes::copy_from_slice(a.alock.fh.as_bytes()), &a.alock),
            Err(nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_BADHANDLE) => nlm4_stats::StaleFh,
            Err(_) => nlm4_stats::Failed,
        }
    }

    fn do_cancel(&self, ctx: &CallContext, a: &nlm4_cancargs) -> nlm4_stats {
        match self.nfs.resolve_for_lock(ctx, a.alock.fh.as_bytes()) {
            Ok(_) => self.table.cancel(
                peer(ctx),
                &Bytes::copy_from_slice(a.alock.fh.as_bytes()),
                &a.alock,
                a.exclusive,
            ),
            Err(nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_BADHANDLE) => nlm4_stats::StaleFh,
            Err(_) => nlm4_stats::Failed,
        }
    }

    /// Queues the `_RES` call answering a `_MSG` call.
    fn send_res(&self, ctx: &CallContext, proc_: u32, body: impl Xdr) {
        if self.queued_res.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_RES {
            self.queued_res.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(client = %ctx.peer, "_MSG result dropped: too many queued");
            return;
        }
        let mut buf = BytesMut::new();
        body.encode(&mut buf);
        let p = peer(ctx);
        let sent = self.out.send(Outgoing::Res { to: p.addr, from: p.local, proc_, body: buf.freeze() });
        if sent.is_err() {
            self.queued_res.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Releases the locks a reboot notice or FREE_ALL names (see the module doc for who may name
/// whom).
fn release_named(table: &LockTable, ctx: &CallContext, name: &[u8], what: &str) {
    let sender = ctx.peer.ip().to_canonical();
    let own_host = sender == ctx.local.ip().to_canonical();
    let named_ip: Option<IpAddr> = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok());
    let released = table.release_clients(|addr, caller| {
        addr == sender || (own_host && (caller == name || named_ip == Some(addr)))
    });
    tracing::info!(client = %ctx.peer, name = %crate::logsafe::escaped(name),
        "{what}: released the locks of {released} client(s)");
}

fn lock(svc: &NlmService, ctx: &CallContext, a: nlm4_lockargs) -> Result<nlm4_res, RpcError> {
    Ok(nlm4_res { stat: svc.do_lock(ctx, &a, true), cookie: a.cookie })
}

fn nm_lock(svc: &NlmService, ctx: &CallContext, a: nlm4_lockargs) -> Result<nlm4_res, RpcError> {
    Ok(nlm4_res { stat: svc.do_lock(ctx, &a, false), cookie: a.cookie })
}

fn test(svc: &NlmService, ctx: &CallContext, a: nlm4_testargs) -> Result<nlm4_testres, RpcError> {
    Ok(nlm4_testres { test_stat: svc.do_test(ctx, &a), cookie: a.cookie })
}

fn unlock(svc: &NlmService, ctx: &CallContext, a: nlm4_unlockargs) -> Result<nlm4_res, RpcError> {
    Ok(nlm4_res { stat: svc.do_unlock(ctx, &a), cookie: a.cookie })
}

fn cancel(svc: &NlmService, ctx: &CallContext, a: nlm4_cancargs) -> Result<nlm4_res, RpcError> {
    Ok(nlm4_res { stat: svc.do_cancel(ctx, &a), cookie: a.cookie })
}

/// GRANTED sent to the server: rnfsd is no client waiting for a lock.
fn granted(_: &NlmService, _: &CallContext, a: nlm4_testargs) -> Result<nlm4_res, RpcError> {
    Ok(nlm4_res { cookie: a.cookie, stat: nlm4_stats::Denied })
}

fn test_msg(svc: &NlmService, ctx: &CallContext, a: nlm4_testargs) -> Result<(), RpcError> {
    let res = nlm4_testres { test_stat: svc.do_test(ctx, &a), cookie: a.cookie };
    svc.send_res(ctx, nlm4_proc::TEST_RES, res);
    Ok(())
}

fn lock_msg(svc: &NlmService, ctx: &CallContext, a: nlm4_lockargs) -> Result<(), RpcError> {
    let res = nlm4_res { stat: svc.do_lock(ctx, &a, true), cookie: a.cookie };
    svc.send_res(ctx, nlm4_proc::LOCK_RES, res);
    Ok(())
}

fn cancel_msg(svc: &NlmService, ctx: &CallContext, a: nlm4_cancargs) -> Result<(), RpcError> {
    let res = nlm4_res { stat: svc.do_cancel(ctx, &a), cookie: a.cookie };
    svc.send_res(ctx, nlm4_proc::CANCEL_RES, res);
    Ok(())
}

fn unlock_msg(svc: &NlmService, ctx: &CallContext, a: nlm4_unlockargs) -> Result<(), RpcError> {
    let res = nlm4_res { stat: svc.do_unlock(ctx, &a), cookie: a.cookie };
    svc.send_res(ctx, nlm4_proc::UNLOCK_RES, res);
    Ok(())
}

/// GRANTED_MSG sent to the server: as GRANTED, nothing waits here; there is no reply to send.
fn granted_msg(_: &NlmService, _: &CallContext, _: nlm4_testargs) -> Result<(), RpcError> {
    Ok(())
}

/// The `_RES` forms: answers to `_MSG` calls rnfsd never sends (its callback is the synchronous
/// GRANTED), accepted and dropped.
fn test_res(_: &NlmService, _: &CallContext, _: nlm4_testres) -> Result<(), RpcError> {
    Ok(())
}

fn res(_: &NlmService, _: &CallContext, _: nlm4_res) -> Result<(), RpcError> {
    Ok(())
}

fn share(_: &NlmService, _: &CallContext, a: nlm4_shareargs) -> Result<nlm4_shareres, RpcError> {
    Ok(nlm4_shareres { cookie: a.cookie, stat: nlm4_stats::Failed, sequence: 0 })
}

fn free_all(svc: &NlmService, ctx: &CallContext, a: nlm4_notify) -> Result<(), RpcError> {
    release_named(&svc.table, ctx, a.name.as_bytes(), "FREE_ALL");
    Ok(())
}

const NLM_V4: [Option<Procedure<NlmService>>; 24] = by_number(&[&[
    row(nlm4_proc::NULL, "NULL", Idempotent, Inline, Small, handler!(null)),
    row(nlm4_proc::TEST, "TEST", Idempotent, Pool, Small, handler!(test)),
    row(nlm4_proc::LOCK, "LOCK", NonIdempotent, Pool, Small, handler!(lock)),
    row(nlm4_proc::CANCEL, "CANCEL", NonIdempotent, Pool, Small, handler!(cancel)),
    row(nlm4_proc::UNLOCK, "UNLOCK", NonIdempotent, Pool, Small, handler!(unlock)),
    row(nlm4_proc::GRANTED, "GRANTED", Idempotent, Inline, Small, handler!(granted)),
    row(nlm4_proc::TEST_MSG, "TEST_MSG", Idempotent, Pool, Small, handler!(test_msg)),
    row(nlm4_proc::LOCK_MSG, "LOCK_MSG", NonIdempotent, Pool, Small, handler!(lock_msg)),
    row(nlm4_proc::CANCEL_MSG, "CANCEL_MSG", NonIdempotent, Pool, Small, handler!(cancel_msg)),
    row(nlm4_proc::UNLOCK_MSG, "UNLOCK_MSG", NonIdempotent, Pool, Small, handler!(unlock_msg)),
    row(nlm4_proc::GRANTED_MSG, "GRANTED_MSG", Idempotent, Inline, Small, handler!(granted_msg)),
    row(nlm4_proc::TEST_RES, "TEST_RES", Idempotent, Inline, Small, handler!(test_res)),
    row(nlm4_proc::LOCK_RES, "LOCK_RES", Idempotent, Inline, Small, handler!(res)),
    row(nlm4_proc::CANCEL_RES, "CANCEL_RES", Idempotent, Inline, Small, handler!(res)),
    row(nlm4_proc::UNLOCK_RES, "UNLOCK_RES", Idempotent, Inline, Small, handler!(res)),
    row(nlm4_proc::GRANTED_RES, "GRANTED_RES", Idempotent, Inline, Small, handler!(res)),
    row(nlm4_proc::SHARE, "SHARE", NonIdempotent, Inline, Small, handler!(share)),
    row(nlm4_proc::UNSHARE, "UNSHARE", NonIdempotent, Inline, Small, handler!(share)),
    row(nlm4_proc::NM_LOCK, "NM_LOCK", NonIdempotent, Pool, Small, handler!(nm_lock)),
    row(nlm4_proc::FREE_ALL, "FREE_ALL", NonIdempotent, Pool, Small, handler!(free_all)),
]]);

impl RpcService for NlmService {
    const PROGRAM: u32 = NLM_PROGRAM;
    const NAME: &'static str = "nlm";
    const VERSIONS: &'static [Version<Self>] = &[Version { number: VERSION_4, procedures: &NLM_V4 }];
}

impl NsmService {
    pub fn new(table: Arc<LockTable>, state: i32) -> Self {
        NsmService { table, state }
    }
}

fn sm_stat_(svc: &NsmService, _: &CallContext, _: sm_name) -> Result<sm_stat_res, RpcError> {
    Ok(sm_stat_res { res_stat: sm_res::Fail, state: svc.state })
}

fn sm_mon(svc: &NsmService, ctx: &CallContext, _: mon) -> Result<sm_stat_res, RpcError> {
    tracing::debug!(client = %ctx.peer, "SM_MON refused: rnfsd monitors hosts only for its own locks");
    Ok(sm_stat_res { res_stat: sm_res::Fail, state: svc.state })
}

fn sm_unmon(svc: &NsmService, _: &CallContext, _: mon_id) -> Result<sm_stat, RpcError> {
    Ok(sm_stat { state: svc.state })
}

fn sm_unmon_all(svc: &NsmService, _: &CallContext, _: my_id) -> Result<sm_stat, RpcError> {
    Ok(sm_stat { state: svc.state })
}

fn sm_simu_crash(_: &NsmService, ctx: &CallContext, (): ()) -> Result<(), RpcError> {
    tracing::debug!(client = %ctx.peer, "SM_SIMU_CRASH ignored");
    Ok(())
}

fn sm_notify(svc: &NsmService, ctx: &CallContext, a: stat_chge) -> Result<(), RpcError> {
    release_named(&svc.table, ctx, a.mon_name.as_bytes(), "SM_NOTIFY");
    Ok(())
}

const NSM_V1: [Option<Procedure<NsmService>>; 7] = by_number(&[&[
    row(0, "NULL", Idempotent, Inline, Small, handler!(null)),
    row(1, "STAT", Idempotent, Inline, Small, handler!(sm_stat_)),
    row(2, "MON", Idempotent, Inline, Small, handler!(sm_mon)),
    row(3, "UNMON", Idempotent, Inline, Small, handler!(sm_unmon)),
    row(4, "UNMON_ALL", Idempotent, Inline, Small, handler!(sm_unmon_all)),
    row(5, "SIMU_CRASH", Idempotent, Inline, Small, handler!(sm_simu_crash)),
    row(6, "NOTIFY", NonIdempotent, Pool, Small, handler!(sm_notify)),
]]);

impl RpcService for NsmService {
    const PROGRAM: u32 = NSM_PROGRAM;
    const NAME: &'static str = "nsm";
    const VERSIONS: &'static [Version<Self>] = &[Version { number: VERSION_1, procedures: &NSM_V1 }];
}
