//! The ONC RPC server layer: transports (TCP with record marking, UDP), the dispatcher that turns
//! a call header into a program, version and procedure, the procedure tables it dispatches
//! through, AUTH_SYS credentials, the duplicate-request cache, and reply building.
//!
//! Programs (portmap, mountd, nfsd) implement [`RpcService`]: a table of procedures per version
//! (see [`program`]). Their procedures see a decoded call context and their decoded arguments
//! and return their results. They never see a socket.

pub mod auth;
pub mod buffers;
pub mod connections;
pub mod dispatch;
pub mod drc;
mod fair;
pub mod program;
pub mod stats;
mod tcp;
pub mod transport;
mod udp;

use std::cell::Cell;
use std::net::SocketAddr;

pub use xdr::rpc::AuthStat;

pub use auth::Cred;
pub use program::{Placement, ProcInfo, Program, RpcService, RunOn};

/// The reply bound of procedures with small results ([`program::LargestReply::Small`]): an RPC
/// header plus attributes, wcc data or a handle, with room to spare.
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
