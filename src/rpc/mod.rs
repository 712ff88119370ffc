//! The ONC RPC server layer: transports (TCP with record marking, UDP), the dispatch table that
//! turns a call header into a program, version and procedure, AUTH_SYS credentials, the
//! duplicate-request cache, and reply building.
//!
//! Programs (portmap, mountd, nfsd) implement [`Program`]: they see a decoded call context and
//! their argument bytes and append their results to a reply buffer. They never see a socket.

pub mod auth;
pub mod buffers;
pub mod dispatch;
pub mod drc;
mod fair;
pub mod stats;
mod tcp;
pub mod transport;
mod udp;

use std::net::SocketAddr;

use bytes::BytesMut;
use xdr::Reader;
pub use xdr::rpc::AuthStat;

pub use auth::Cred;

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
    /// the portmapper, MOUNT): handing them to another thread costs several times the work
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
/// `call` runs on a blocking worker thread, or inline on an async worker for procedures marked
/// [`RunOn::Inline`]; either way it is synchronous, so switching the thread's credentials inside
/// it is safe. It appends the procedure's results to `reply`, which already holds the accepted
/// reply header; on `Err` the dispatcher discards whatever was appended and sends the RPC error.
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
