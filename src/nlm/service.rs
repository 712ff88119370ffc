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
//! - SM_MON, SM_UNMON, SM_UNMON_ALL and SM_SIMU_CRASH are served to this host's own lock manager
//!   only (the caller's address is the one it reached, its port privileged; see `monitor`): rnfsd
//!   holds NSM on its host, so it is the status monitor of the host's NFS client, as rpc.statd
//!   would be. From anyone else MON and STAT answer failure and the others change nothing.
//!   SIMU_CRASH advances the state and tells every monitored server, as a reboot would.
//! - SM_NOTIFY and FREE_ALL release the locks of clients at the sender's address (a host speaks
//!   for itself); from this host's own address they may name a client by caller name or address.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

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
    PROGRAM as NSM_PROGRAM, VERSION_1, mon, mon_id, my_id, sm_name, sm_res, sm_stat, sm_stat_res, sm_status,
    stat_chge,
};

use super::callback::Slot;
use super::monitor::{Callback, Monitor, MonitorError, Monitors};
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
/// Status callbacks to this host's lock manager in flight at once, for the same reason (anyone
/// may send SM_NOTIFY).
const MAX_QUEUED_STATUS: usize = 64;

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
    monitors: Arc<Monitors>,
    /// This host's NSM state (SIMU_CRASH advances it).
    state: AtomicI32,
    state_dir: PathBuf,
    out: UnboundedSender<Outgoing>,
    unprivileged_port_start: u16,
    queued_status: Arc<AtomicUsize>,
}

fn peer(ctx: &CallContext) -> Peer {
    Peer { addr: ctx.peer.ip().to_canonical(), local: ctx.local.ip().to_canonical() }
}

impl NlmService {
    pub fn new(nfs: Arc<NfsService>, table: Arc<LockTable>, out: UnboundedSender<Outgoing>) -> Self {
        NlmService { nfs, table, out, queued_res: Arc::new(AtomicUsize::new(0)) }
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
            caller.reopen(&exports, &res, mode | libc::O_CLOEXEC | libc::O_NONBLOCK)
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
        let Some(slot) = Slot::take(&self.queued_res, MAX_QUEUED_RES) else {
            tracing::debug!(client = %ctx.peer, "_MSG result dropped: too many queued");
            return;
        };
        let mut buf = BytesMut::new();
        body.encode(&mut buf);
        let p = peer(ctx);
        // Dropped with the message if the callback task is gone, which gives the slot back.
        let _ = self.out.send(Outgoing::Res { to: p.addr, from: p.local, proc_, body: buf.freeze(), slot });
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
    pub fn new(
        table: Arc<LockTable>,
        monitors: Arc<Monitors>,
        state: i32,
        state_dir: &Path,
        out: UnboundedSender<Outgoing>,
    ) -> Self {
        NsmService {
            table,
            monitors,
            state: AtomicI32::new(state),
            state_dir: state_dir.to_path_buf(),
            out,
            unprivileged_port_start: crate::portmap::service::unprivileged_port_start(),
            queued_status: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn state(&self) -> i32 {
        self.state.load(Ordering::Relaxed)
    }

    /// Whether the caller is this host's own lock manager: it calls from the address it reached
    /// (as `release_named` reads a host speaking for itself), from a privileged port.
    fn is_own_lock_manager(&self, ctx: &CallContext, what: &str) -> bool {
        let why = if ctx.peer.ip().to_canonical() != ctx.local.ip().to_canonical() {
            "not this host"
        } else if ctx.peer.port() >= self.unprivileged_port_start {
            "an unprivileged source port, which any local user can send from"
        } else {
            return true;
        };
        tracing::debug!(client = %ctx.peer, "{what}: not this host's lock manager ({why})");
        false
    }
}

fn callback_of(id: &my_id) -> Callback {
    Callback {
        my_name: Bytes::copy_from_slice(id.my_name.as_bytes()),
        prog: id.my_prog as u32,
        vers: id.my_vers as u32,
        proc_: id.my_proc as u32,
    }
}

fn sm_stat_(svc: &NsmService, ctx: &CallContext, _: sm_name) -> Result<sm_stat_res, RpcError> {
    // Whether the host could be monitored: for this host's lock manager, yes.
    let res_stat = if svc.is_own_lock_manager(ctx, "SM_STAT") { sm_res::Success } else { sm_res::Fail };
    Ok(sm_stat_res { res_stat, state: svc.state() })
}

fn sm_mon(svc: &NsmService, ctx: &CallContext, a: mon) -> Result<sm_stat_res, RpcError> {
    let fail = Ok(sm_stat_res { res_stat: sm_res::Fail, state: svc.state() });
    if !svc.is_own_lock_manager(ctx, "SM_MON") {
        return fail;
    }
    let callback = callback_of(&a.mon_id.my_id);
    if callback.prog != NLM_PROGRAM {
        // A monitor calls back the lock manager only: root's rnfsd must not become a way to
        // call any local program from a privileged port.
        tracing::info!(client = %ctx.peer, prog = callback.prog, "SM_MON refused: the callback is not the lock manager");
        return fail;
    }
    let m =
        Monitor { mon_name: Bytes::copy_from_slice(a.mon_id.mon_name.as_bytes()), callback, priv_: a.priv_ };
    match svc.monitors.add(m) {
        Ok(()) => Ok(sm_stat_res { res_stat: sm_res::Success, state: svc.state() }),
        Err(MonitorError::Full) => {
            tracing::warn!("SM_MON refused: {} hosts are monitored already", super::monitor::MAX_MONITORS);
            fail
        }
        Err(MonitorError::Io(e)) => {
            tracing::error!("SM_MON refused: cannot record the monitor in the state directory: {e}");
            fail
        }
    }
}

fn unmonitor(
    svc: &NsmService,
    ctx: &CallContext,
    mon_name: Option<&[u8]>,
    id: &my_id,
    what: &str,
) -> sm_stat {
    if svc.is_own_lock_manager(ctx, what) {
        if let Err(e) = svc.monitors.remove(mon_name, &callback_of(id)) {
            tracing::error!("{what}: cannot update the monitors in the state directory: {e}");
        }
    }
    sm_stat { state: svc.state() }
}

fn sm_unmon(svc: &NsmService, ctx: &CallContext, a: mon_id) -> Result<sm_stat, RpcError> {
    Ok(unmonitor(svc, ctx, Some(a.mon_name.as_bytes()), &a.my_id, "SM_UNMON"))
}

fn sm_unmon_all(svc: &NsmService, ctx: &CallContext, a: my_id) -> Result<sm_stat, RpcError> {
    Ok(unmonitor(svc, ctx, None, &a, "SM_UNMON_ALL"))
}

fn sm_simu_crash(svc: &NsmService, ctx: &CallContext, (): ()) -> Result<(), RpcError> {
    if !svc.is_own_lock_manager(ctx, "SM_SIMU_CRASH") {
        return Ok(());
    }
    let state = match super::store::advance_state(&svc.state_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("SM_SIMU_CRASH: cannot advance the NSM state: {e}");
            return Ok(());
        }
    };
    svc.state.store(state, Ordering::Relaxed);
    let hosts = svc.monitors.hosts();
    tracing::info!(state, "SM_SIMU_CRASH: telling {} monitored server(s) this host restarted", hosts.len());
    for host in hosts {
        let _ = svc.out.send(Outgoing::Reboot { host, state });
    }
    Ok(())
}

fn sm_notify(svc: &NsmService, ctx: &CallContext, a: stat_chge) -> Result<(), RpcError> {
    release_named(&svc.table, ctx, a.mon_name.as_bytes(), "SM_NOTIFY");
    // A server this host's lock manager locks on: tell it, so it reclaims there.
    for m in svc.monitors.matching(a.mon_name.as_bytes(), ctx.peer.ip()) {
        let status = sm_status { mon_name: m.mon_name.as_ref().into(), state: a.state, priv_: m.priv_ };
        let Some(slot) = Slot::take(&svc.queued_status, MAX_QUEUED_STATUS) else {
            tracing::debug!(client = %ctx.peer, "status callback dropped: too many queued");
            break;
        };
        let c = m.callback;
        let body = status.to_bytes();
        let _ = svc.out.send(Outgoing::Status { prog: c.prog, vers: c.vers, proc_: c.proc_, body, slot });
    }
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
