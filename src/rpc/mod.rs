//! The ONC RPC server layer: transports (TCP with record marking, UDP), the dispatch table that
//! turns a call header into a program, version and procedure, AUTH_SYS credentials, the
//! duplicate-request cache, and reply building.
//!
//! Programs (portmap, mountd, nfsd) implement [`Program`]: they see a decoded call context and
//! their argument bytes and append their results to a reply buffer. They never see a socket.

pub mod auth;
pub mod buffers;
pub mod connections;
pub mod dispatch;
pub mod drc;
mod fair;
pub mod stats;
mod tcp;
pub mod transport;
mod udp;

use std::cell::Cell;
use std::net::SocketAddr;

use bytes::BytesMut;
use xdr::Reader;
pub use xdr::rpc::AuthStat;

pub use auth::Cred;

/// What [`Program::reply_bound`] answers for procedures with small results: an RPC header plus
/// attributes, wcc data or a handle, with room to spare.
pub const SMALL_REPLY_BOUND: usize = 4096;

/// The big-endian XDR word at byte `at` of `b`, if it is there.
pub(crate) fn xdr_word(b: &[u8], at: usize) -> Option<usize> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as usize)
}

/// An XDR opaque of `len` bytes takes this many, padded to a word.
pub(crate) fn xdr_padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// The transport a call arrived on; also what a portmapper registration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Everything a procedure may know about the call besides its arguments.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub xid: u32,
    /// The client's address and source port (exports(5) `secure` looks at the port).
    pub peer: SocketAddr,
    /// The local address the call arrived on.
    pub local: SocketAddr,
    pub transport: Transport,
    pub cred: Cred,
    /// Set through [`CallContext::refuse`].
    refused: Cell<bool>,
}

impl CallContext {
    pub fn new(xid: u32, peer: SocketAddr, local: SocketAddr, transport: Transport, cred: Cred) -> Self {
        CallContext { xid, peer, local, transport, cred, refused: Cell::new(false) }
    }

    /// Records that the procedure refused the call before it changed anything (a forged or stale
    /// handle, a client the export does not list, a `secure` export and an unprivileged port).
    /// The duplicate-request cache then does not keep the reply: executing a retransmission
    /// again refuses it again, and a flood of refused calls must not take the cache's room from
    /// the clients it exists for.
    pub fn refuse(&self) {
        self.refused.set(true);
    }

    /// Whether [`CallContext::refuse`] was called.
    pub fn was_refused(&self) -> bool {
        self.refused.get()
    }
}

/// Whether a retransmission may simply be executed again (RFC 1813 §4.5 idempotency), which
/// decides if the duplicate-request cache keeps its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrcClass {
    /// Re-executing gives the same answer (READ, GETATTR, LOOKUP, WRITE ...).
    Idempotent,
    /// Re-executing could answer differently (REMOVE of a removed file says NOENT): replay the
    /// cached reply instead.
    NonIdempotent,
}

/// Failures of a call at the RPC level, each mapping to one RPC reply kind. Procedure-level
/// failures (an `nfsstat3`) are successful RPC replies and never appear here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("program unavailable")]
    ProgUnavail,
    #[error("program version mismatch (supported {low}..={high})")]
    ProgMismatch { low: u32, high: u32 },
    #[error("procedure unavailable")]
    ProcUnavail,
    #[error("arguments could not be decoded")]
    GarbageArgs,
    #[error("system error")]
    SystemErr,
    #[error("RPC version mismatch (supported {low}..={high})")]
    RpcMismatch { low: u32, high: u32 },
    #[error("authentication error {0:?}")]
    Auth(AuthStat),
}

impl From<xdr::XdrError> for RpcError {
    fn from(_: xdr::XdrError) -> Self {
        RpcError::GarbageArgs
    }
}

/// What the dispatch table knows about one procedure, used for dispatch, the DRC decision,
/// tracing span names and counters.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo {
    pub name: &'static str,
    pub drc: DrcClass,
    pub run: RunOn,
}

/// Where a procedure executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOn {
    /// On the async worker that decoded the call. For procedures that touch only memory or make
    /// a few metadata system calls on objects the server already holds (GETATTR, LOOKUP, ACCESS,
    /// READLINK, the portmapper, MOUNT): handing them to another thread costs several times the work
    /// itself (GETATTR measured at ~5 µs of server CPU inline against ~20 µs through the pool,
    /// the difference being futex wake-ups and context switches).
    Inline,
    /// On the bounded blocking pool: file data, syncs, directory reads and every change, whose
    /// system calls may wait for the disk.
    Pool,
    /// First on the async worker through [`Program::call_nonblocking`], which gives up when the
    /// work would wait for the disk (READ of data not in the page cache); then on the pool.
    TryInline,
}

/// One RPC program (a program number and a contiguous range of versions).
///
/// `call` runs on a blocking-pool thread, or on the async worker that decoded the call for
/// procedures marked [`RunOn::Inline`] (and `call_nonblocking` for [`RunOn::TryInline`]). Either
/// way it is synchronous, so a procedure may switch the thread's identity inside it: the switch
/// is per thread and is undone before `call` returns, hence before the worker polls another
/// task (see [`crate::fs::cred`] for the rule and what happens when it cannot be undone). It
/// appends the procedure's results to `reply`, which already holds the accepted reply header; on
/// `Err` the dispatcher discards whatever was appended and sends the RPC error.
pub trait Program: Send + Sync + 'static {
    /// The RPC program number, e.g. 100003 for NFS.
    fn program(&self) -> u32;
    /// A short name for logs, e.g. "nfs".
    fn name(&self) -> &'static str;
    /// Lowest and highest supported version.
    fn versions(&self) -> (u32, u32);
    /// The table entry for a procedure of a supported version, or `None` (PROC_UNAVAIL).
    fn procedure(&self, vers: u32, proc_: u32) -> Option<ProcInfo>;
    /// Decodes the arguments, executes and encodes the results.
    fn call(
        &self,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        args: &mut Reader,
        reply: &mut BytesMut,
    ) -> Result<(), RpcError>;

    /// The most bytes the reply to this call can take, judged from its argument bytes before it
    /// runs (knfsd's `pc_xdrressize`), so the transport can reserve room for it and bound the
    /// replies a connection holds. It runs for every call, so it reads the few words it needs
    /// in place rather than decoding the arguments. A reply that turns out larger is still sent; the default suits
    /// procedures whose results are small.
    fn reply_bound(&self, _vers: u32, _proc: u32, _args: &[u8]) -> usize {
        SMALL_REPLY_BOUND
    }

    /// [`Program::call`] for a [`RunOn::TryInline`] procedure, without waiting for the disk:
    /// `None` means it would have to wait, and the dispatcher then runs `call` on the pool with
    /// the original arguments and a fresh reply buffer.
    fn call_nonblocking(
        &self,
        _ctx: &CallContext,
        _vers: u32,
        _proc: u32,
        _args: &mut Reader,
        _reply: &mut BytesMut,
    ) -> Option<Result<(), RpcError>> {
        None
    }
}
