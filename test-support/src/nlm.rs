//! A synchronous NLM v4 and NSM v1 client for the locking tests, built on the `xdr` crate's
//! types: one [`NlmClient`] is one client *host* (a source address on 127/8, a caller name, an
//! NSM state), and each [`Owner`] on it is one lock owner (svid and `oh`, as Linux makes them).
//! Two hosts are two `NlmClient`s connected from different loopback addresses, so a server that
//! keys clients by address and caller name tells them apart.
//!
//! Typed calls panic when the call fails at the RPC level (the test fails saying which procedure);
//! [`NlmClient::try_call`] and [`NlmClient::call_raw`] return the failure, for the bad-input tests.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use bytes::Bytes;
use xdr::Xdr;
use xdr::nfs3::nfs_fh3;
use xdr::nlm::{
    fsh4_access, fsh4_mode, netobj, nlm4_cancargs, nlm4_lock, nlm4_lockargs, nlm4_notify, nlm4_proc,
    nlm4_res, nlm4_share, nlm4_shareargs, nlm4_shareres, nlm4_stats, nlm4_testargs, nlm4_testres,
    nlm4_testrply, nlm4_unlockargs,
};
use xdr::nsm::{mon, mon_id, my_id, sm_name, sm_proc, sm_stat, sm_stat_res, stat_chge};
use xdr::rpc::{AuthSysParams, OpaqueAuth};

use crate::client::Client;
use crate::net::{connect_from, connect_privileged};
use crate::wire::{RpcFailure, call_message, parse_reply, udp_exchange};

pub use xdr::nlm::{PROGRAM as NLM, VERSION_4 as NLM_V4};
pub use xdr::nsm::{PROGRAM as NSM, VERSION_1 as NSM_V1};

/// One lock owner of a client: Linux's svid (a per-host counter) and its owner handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub svid: i32,
    pub oh: netobj,
}

/// A byte range: `len == 0` means to the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub offset: u64,
    pub len: u64,
}

/// `[offset, offset + len)`; `len == 0` is to the end of the file.
pub fn range(offset: u64, len: u64) -> Range {
    Range { offset, len }
}

/// One client host speaking NLM v4 and NSM v1 over TCP from its own loopback address.
pub struct NlmClient {
    rpc: Client,
    /// The source address of every call (a loopback address other than the server's).
    pub local: IpAddr,
    /// `caller_name` of every lock, and the AUTH_SYS machine name.
    pub caller_name: String,
    /// The NSM state sent in LOCK (`state`); Linux sends its statd's number, 0 in reclaims.
    pub state: i32,
    server: SocketAddr,
    next_cookie: u32,
}

impl NlmClient {
    /// A client host at `local` named `caller_name`, connected to `server` (the NFS port, where
    /// rnfsd serves NLM and NSM too), with AUTH_SYS root credentials.
    pub fn connect(local: IpAddr, server: SocketAddr, caller_name: &str) -> NlmClient {
        let rpc = Self::open(local, server, caller_name);
        NlmClient { rpc, local, caller_name: caller_name.to_string(), state: 1, server, next_cookie: 1 }
    }

    /// [`NlmClient::connect`] from a privileged port (the caller runs as root), for `secure`
    /// exports.
    pub fn connect_privileged(local: IpAddr, server: SocketAddr, caller_name: &str) -> NlmClient {
        let s = connect_privileged(local, server);
        let rpc = Self::over(s, caller_name);
        NlmClient { rpc, local, caller_name: caller_name.to_string(), state: 1, server, next_cookie: 1 }
    }

    fn open(local: IpAddr, server: SocketAddr, caller_name: &str) -> Client {
        let s = connect_from(SocketAddr::new(local, 0), server)
            .unwrap_or_else(|e| panic!("connect {server} from {local}: {e}"));
        Self::over(s, caller_name)
    }

    fn over(s: std::net::TcpStream, caller_name: &str) -> Client {
        let cred = AuthSysParams {
            stamp: 1,
            machine_name: Bytes::copy_from_slice(caller_name.as_bytes()),
            uid: 0,
            gid: 0,
            gids: vec![],
        }
        .to_opaque_auth();
        Client::over_tcp(s).with_cred(cred)
    }

    /// A new connection to `server` from the same address (after a server restart, which moves
    /// the server to a new ephemeral port).
    pub fn reconnect(&mut self, server: SocketAddr) {
        self.server = server;
        self.rpc = Self::open(self.local, server, &self.caller_name);
    }

    /// The server this client talks to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Credentials other than root (for permission tests).
    pub fn set_cred(&mut self, cred: OpaqueAuth) {
        self.rpc.cred = cred;
    }

    /// How long a reply may take (20 s unless changed).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.rpc.set_timeout(timeout);
    }

    /// Owner `svid` of this host, with Linux's owner handle `"<svid>@<caller_name>"`.
    pub fn owner(&self, svid: i32) -> Owner {
        Owner { svid, oh: format!("{svid}@{}", self.caller_name).as_str().into() }
    }

    /// A fresh cookie (the server echoes it in results and in the GRANTED callback).
    pub fn cookie(&mut self) -> netobj {
        self.next_cookie += 1;
        netobj(Bytes::copy_from_slice(&self.next_cookie.to_be_bytes()))
    }

    /// The `nlm4_lock` of `owner` on `fh` over `r`, as this host names it.
    pub fn alock(&self, owner: &Owner, fh: &nfs_fh3, r: Range) -> nlm4_lock {
        nlm4_lock {
            caller_name: self.caller_name.as_str().into(),
            fh: netobj(fh.0.clone()),
            oh: owner.oh.clone(),
            svid: owner.svid,
            l_offset: r.offset,
            l_len: r.len,
        }
    }

    /// LOCK arguments: non-blocking, not a reclaim, this host's state; change fields for others.
    pub fn lock_args(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_lockargs {
        nlm4_lockargs {
            cookie: self.cookie(),
            block: false,
            exclusive,
            alock: self.alock(owner, fh, r),
            reclaim: false,
            state: self.state,
        }
    }

    /// Any call; the result bytes or the RPC-level failure.
    pub fn call_raw(&mut self, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Result<Bytes, RpcFailure> {
        self.rpc.call(prog, vers, proc_, args)
    }

    /// A call whose RPC-level failure the test wants to see.
    pub fn try_call<A: Xdr, R: Xdr>(&mut self, prog: u32, proc_: u32, args: &A) -> Result<R, RpcFailure> {
        let vers = if prog == NSM { NSM_V1 } else { NLM_V4 };
        let body = self.call_raw(prog, vers, proc_, &args.to_bytes())?;
        Ok(R::from_bytes(&body).unwrap_or_else(|e| panic!("program {prog} proc {proc_} reply: {e:?}")))
    }

    /// A typed NLM v4 call that must succeed at the RPC level.
    pub fn nlm<A: Xdr, R: Xdr>(&mut self, proc_: u32, args: &A) -> R {
        self.try_call(NLM, proc_, args).unwrap_or_else(|e| panic!("NLM proc {proc_}: {e:?}"))
    }

    /// A call with a void result that must succeed at the RPC level.
    pub fn void(&mut self, prog: u32, proc_: u32, args: &[u8]) {
        let vers = if prog == NSM { NSM_V1 } else { NLM_V4 };
        let body = self
            .call_raw(prog, vers, proc_, args)
            .unwrap_or_else(|e| panic!("program {prog} proc {proc_}: {e:?}"));
        assert!(body.is_empty(), "program {prog} proc {proc_}: a void result, got {} bytes", body.len());
    }

    /// NLM NULL.
    pub fn null(&mut self) {
        self.void(NLM, nlm4_proc::NULL, &[]);
    }

    /// TEST for a lock of `owner`: `Other(Granted)` when it could be taken, else the holder.
    pub fn test(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_testrply {
        let args = nlm4_testargs { cookie: self.cookie(), exclusive, alock: self.alock(owner, fh, r) };
        let res: nlm4_testres = self.nlm(nlm4_proc::TEST, &args);
        assert_eq!(res.cookie, args.cookie, "TEST echoes the cookie");
        res.test_stat
    }

    /// LOCK with the given arguments; the status (the cookie is checked).
    pub fn lock_with(&mut self, args: &nlm4_lockargs) -> nlm4_stats {
        self.lock_proc(nlm4_proc::LOCK, args)
    }

    fn lock_proc(&mut self, proc_: u32, args: &nlm4_lockargs) -> nlm4_stats {
        let res: nlm4_res = self.nlm(proc_, args);
        assert_eq!(res.cookie, args.cookie, "NLM proc {proc_} echoes the cookie");
        res.stat
    }

    /// A non-blocking LOCK (`F_SETLK`).
    pub fn lock(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_stats {
        let args = self.lock_args(owner, fh, exclusive, r);
        self.lock_with(&args)
    }

    /// A blocking LOCK (`F_SETLKW`): BLOCKED when it conflicts, then a GRANTED callback.
    pub fn lock_blocking(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_stats {
        let args = nlm4_lockargs { block: true, ..self.lock_args(owner, fh, exclusive, r) };
        self.lock_with(&args)
    }

    /// A reclaim after a server restart (`reclaim = 1`, `state = 0` as Linux sends it).
    pub fn reclaim(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_stats {
        let args = nlm4_lockargs { reclaim: true, state: 0, ..self.lock_args(owner, fh, exclusive, r) };
        self.lock_with(&args)
    }

    /// NM_LOCK: LOCK without monitoring.
    pub fn nm_lock(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_stats {
        let args = self.lock_args(owner, fh, exclusive, r);
        self.lock_proc(nlm4_proc::NM_LOCK, &args)
    }

    /// CANCEL of a blocked LOCK with these parameters.
    pub fn cancel(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_stats {
        let args = self.cancel_args(owner, fh, exclusive, r);
        let res: nlm4_res = self.nlm(nlm4_proc::CANCEL, &args);
        assert_eq!(res.cookie, args.cookie, "CANCEL echoes the cookie");
        res.stat
    }

    pub fn cancel_args(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> nlm4_cancargs {
        nlm4_cancargs { cookie: self.cookie(), block: true, exclusive, alock: self.alock(owner, fh, r) }
    }

    /// UNLOCK of `r`.
    pub fn unlock(&mut self, owner: &Owner, fh: &nfs_fh3, r: Range) -> nlm4_stats {
        let args = nlm4_unlockargs { cookie: self.cookie(), alock: self.alock(owner, fh, r) };
        let res: nlm4_res = self.nlm(nlm4_proc::UNLOCK, &args);
        assert_eq!(res.cookie, args.cookie, "UNLOCK echoes the cookie");
        res.stat
    }

    /// FREE_ALL: releases every lock of host `name` (void result).
    pub fn free_all(&mut self, name: &str, state: i32) {
        let args = nlm4_notify { name: name.into(), state };
        self.void(NLM, nlm4_proc::FREE_ALL, &args.to_bytes());
    }

    /// SHARE (`proc_` = SHARE) or UNSHARE of a DOS share reservation, for `owner` on `fh`.
    pub fn share(
        &mut self,
        proc_: u32,
        owner: &Owner,
        fh: &nfs_fh3,
        mode: fsh4_mode,
        access: fsh4_access,
    ) -> nlm4_shareres {
        let args = nlm4_shareargs {
            cookie: self.cookie(),
            share: nlm4_share {
                caller_name: self.caller_name.as_str().into(),
                fh: netobj(fh.0.clone()),
                oh: owner.oh.clone(),
                mode,
                access,
            },
            reclaim: false,
        };
        self.nlm(proc_, &args)
    }

    /// TEST_MSG: answered with void; the result comes as a TEST_RES call to this host's NLM.
    pub fn test_msg(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> netobj {
        let args = nlm4_testargs { cookie: self.cookie(), exclusive, alock: self.alock(owner, fh, r) };
        self.void(NLM, nlm4_proc::TEST_MSG, &args.to_bytes());
        args.cookie
    }

    /// LOCK_MSG (the result comes as LOCK_RES); returns the cookie to look for.
    pub fn lock_msg(&mut self, args: &nlm4_lockargs) -> netobj {
        self.void(NLM, nlm4_proc::LOCK_MSG, &args.to_bytes());
        args.cookie.clone()
    }

    /// CANCEL_MSG (the result comes as CANCEL_RES); returns the cookie.
    pub fn cancel_msg(&mut self, owner: &Owner, fh: &nfs_fh3, exclusive: bool, r: Range) -> netobj {
        let args = self.cancel_args(owner, fh, exclusive, r);
        self.void(NLM, nlm4_proc::CANCEL_MSG, &args.to_bytes());
        args.cookie
    }

    /// UNLOCK_MSG (the result comes as UNLOCK_RES); returns the cookie.
    pub fn unlock_msg(&mut self, owner: &Owner, fh: &nfs_fh3, r: Range) -> netobj {
        let args = nlm4_unlockargs { cookie: self.cookie(), alock: self.alock(owner, fh, r) };
        self.void(NLM, nlm4_proc::UNLOCK_MSG, &args.to_bytes());
        args.cookie
    }

    /// A `_RES` call (TEST_RES with `nlm4_testres`, the others with `nlm4_res`): void result.
    pub fn res<A: Xdr>(&mut self, proc_: u32, args: &A) {
        self.void(NLM, proc_, &args.to_bytes());
    }

    /// NSM NULL.
    pub fn sm_null(&mut self) {
        self.void(NSM, sm_proc::NULL, &[]);
    }

    /// SM_STAT of `name`.
    pub fn sm_stat(&mut self, name: &str) -> Result<sm_stat_res, RpcFailure> {
        self.try_call(NSM, sm_proc::STAT, &sm_name { mon_name: name.into() })
    }

    /// The `my_id` this client's SM_MON calls give: its caller name, NLM v4, procedure 16 (the
    /// status callback of the Linux lockd).
    pub fn my_id(&self) -> my_id {
        my_id { my_name: self.caller_name.as_str().into(), my_prog: NLM as i32, my_vers: 4, my_proc: 16 }
    }

    /// SM_MON of `name` for this host's lockd (a request only local callers may make).
    pub fn sm_mon(&mut self, name: &str) -> Result<sm_stat_res, RpcFailure> {
        let id = self.my_id();
        self.sm_mon_with(name, id, [0; 16])
    }

    /// SM_MON of `name` with the callback `id` and the `priv_` bytes handed back with it.
    pub fn sm_mon_with(&mut self, name: &str, id: my_id, priv_: [u8; 16]) -> Result<sm_stat_res, RpcFailure> {
        let args = mon { mon_id: mon_id { mon_name: name.into(), my_id: id }, priv_ };
        self.try_call(NSM, sm_proc::MON, &args)
    }

    /// SM_UNMON of `name` for this client's `my_id`.
    pub fn sm_unmon(&mut self, name: &str) -> Result<sm_stat, RpcFailure> {
        let args = mon_id { mon_name: name.into(), my_id: self.my_id() };
        self.try_call(NSM, sm_proc::UNMON, &args)
    }

    /// SM_UNMON_ALL for this client's `my_id`.
    pub fn sm_unmon_all(&mut self) -> Result<sm_stat, RpcFailure> {
        let id = self.my_id();
        self.try_call(NSM, sm_proc::UNMON_ALL, &id)
    }

    /// SM_SIMU_CRASH (void result).
    pub fn sm_simu_crash(&mut self) {
        self.void(NSM, sm_proc::SIMU_CRASH, &[]);
    }

    /// SM_NOTIFY over this client's TCP connection (void result).
    pub fn sm_notify(&mut self, mon_name: &str, state: i32) {
        let args = stat_chge { mon_name: mon_name.into(), state };
        self.void(NSM, sm_proc::NOTIFY, &args.to_bytes());
    }
}

/// SM_NOTIFY `{mon_name, state}` over UDP from `local` (as nfs-utils' sm-notify sends a rebooted
/// client's notice) to `server`; waits for the void reply.
pub fn sm_notify_udp(
    local: IpAddr,
    server: SocketAddr,
    mon_name: &str,
    state: i32,
) -> Result<(), RpcFailure> {
    let s = UdpSocket::bind((local, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let xid = 0x5e70_0000 | (state as u32 & 0xffff);
    let args = stat_chge { mon_name: mon_name.into(), state };
    let cred = AuthSysParams {
        stamp: 1,
        machine_name: Bytes::copy_from_slice(mon_name.as_bytes()),
        uid: 0,
        gid: 0,
        gids: vec![],
    }
    .to_opaque_auth();
    let msg = call_message(xid, NSM, NSM_V1, sm_proc::NOTIFY, &cred, &args.to_bytes());
    let reply = udp_exchange(&s, server, &msg);
    let body = parse_reply(xid, &reply)?;
    assert!(body.is_empty(), "SM_NOTIFY: a void result, got {} bytes", body.len());
    Ok(())
}

/// Whether a TEST result says the lock could be granted.
pub fn test_granted(r: &nlm4_testrply) -> bool {
    matches!(r, nlm4_testrply::Other(nlm4_stats::Granted))
}
