//! What every procedure does before touching the filesystem: decode and resolve the file handle,
//! decide the caller's options for that export (client rules, the `secure` port rule, `ro`), and
//! run filesystem work under the caller's identity. Also the name rules for `filename3`, and what
//! a procedure returns ([`Res`]).

use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use bytes::BytesMut;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use xdr::Xdr;
use xdr::nfs3::{MAX_NAME, Nfs3Result, filename3, nfs_fh3, nfsstat3};

use super::NfsService;
use super::status::nfs_status;
use crate::exports::ExportOptions;
use crate::fs::cred::{Identity, with_identity};
use crate::fs::{Attr, FileType, Resolved};
use crate::rpc::program::Outcome;
use crate::rpc::{CallContext, RpcError};

thread_local! {
    /// Whether this thread is inside [`Caller::run`].
    static AS_CALLER: Cell<bool> = const { Cell::new(false) };
}

/// The caller of one request as seen by one export.
#[derive(Debug, Clone)]
pub struct Caller {
    pub options: ExportOptions,
    pub identity: Identity,
}

impl Caller {
    /// Mutations on a read-only export fail with NFS3ERR_ROFS before anything else is checked.
    pub fn check_writable(&self) -> Result<(), nfsstat3> {
        if self.options.read_only { Err(nfsstat3::NFS3ERR_ROFS) } else { Ok(()) }
    }

    /// Runs `f` with this thread's filesystem identity and capabilities set to the caller's
    /// (see [`with_identity`]), so the kernel checks permissions, assigns ownership, clears
    /// setuid/setgid bits and applies quotas as for that caller.
    ///
    /// Calls must not nest: leaving the inner one would restore root for the rest of the outer.
    pub fn run<T>(&self, f: impl FnOnce() -> Result<T, nfsstat3>) -> Result<T, nfsstat3> {
        /// Clears [`AS_CALLER`] on every exit, a panic too: the thread goes on serving.
        struct Running;
        impl Drop for Running {
            fn drop(&mut self) {
                AS_CALLER.set(false);
            }
        }
        debug_assert!(!AS_CALLER.get(), "nested Caller::run");
        AS_CALLER.set(true);
        let running = Running;
        let out = with_identity(&self.identity, f);
        drop(running);
        out.unwrap_or_else(|e| {
            tracing::error!("cannot switch to uid {} gid {}: {e}", self.identity.uid, self.identity.gid);
            Err(nfsstat3::NFS3ERR_SERVERFAULT)
        })
    }

    /// Whether the caller owns a file with owner `uid` (knfsd's owner override: the owner may read
    /// and write a file it opened before removing its own permission bits).
    pub fn owns(&self, uid: u32) -> bool {
        self.identity.uid == uid
    }

    /// Opens the resolved object again with `flags` for this caller: at root through its kernel
    /// handle (with CAP_DAC_OVERRIDE root needs no permission bits, which keeps knfsd's owner
    /// override), or, where root is refused (a server without CAP_DAC_OVERRIDE, as in a container
    /// run with `--cap-drop ALL` and only the identity capabilities), as the caller through the
    /// descriptor the handle resolved to, so that the caller's own permissions decide.
    pub fn reopen(&self, exports: &crate::fs::Exports, res: &Resolved, flags: i32) -> io::Result<OwnedFd> {
        match exports.reopen(res, flags) {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                // The magic link is the object itself: following it is the point.
                let path = super::meta::proc_fd_path(res.fd.as_fd());
                let flags = OFlag::from_bits_truncate(flags & !libc::O_NOFOLLOW);
                with_identity(&self.identity, || nix::fcntl::open(path.as_str(), flags, Mode::empty()))?
                    .map_err(io::Error::from)
            }
            other => other,
        }
    }
}

/// What a procedure returns: its result, or why it stopped before it had one.
pub type Res<T, F> = Result<Nfs3Result<T, F>, Stop>;

/// Why a procedure stopped before it had a result of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// An RPC-level failure: the arguments were undecodable.
    Rpc(RpcError),
    /// A handle did not resolve ([`Unresolved`]).
    Unresolved(nfsstat3),
}

/// A handle that did not resolve for the caller (see [`NfsService::resolve`]). The procedure
/// answers its status with the failure body that carries no attributes, having no object to
/// take them from: `?` on a resolve returns exactly that (see [`Res`]'s [`Outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unresolved(pub nfsstat3);

impl From<RpcError> for Stop {
    fn from(e: RpcError) -> Self {
        Stop::Rpc(e)
    }
}

impl From<Unresolved> for Stop {
    fn from(Unresolved(status): Unresolved) -> Self {
        Stop::Unresolved(status)
    }
}

impl<T: Xdr, F: Xdr + Default> Outcome for Res<T, F> {
    fn encode_into(self, reply: &mut BytesMut) -> Result<(), RpcError> {
        match self {
            Ok(result) => result.encode(reply),
            Err(Stop::Unresolved(status)) => Nfs3Result::<T, F>::Err(status, F::default()).encode(reply),
            Err(Stop::Rpc(e)) => return Err(e),
        }
        Ok(())
    }
}

/// A resolved handle with its caller.
#[derive(Debug)]
pub struct Object {
    pub res: Resolved,
    pub caller: Caller,
}

impl NfsService {
    /// Resolves `fh` for the caller of `ctx`: BADHANDLE for a malformed or forged handle, STALE
    /// for a removed object, ACCES for a client the export does not list, PERM for a request from
    /// an unprivileged port on a `secure` export (as knfsd answers).
    /// Every failure here happens before the filesystem is touched, so it marks the call
    /// refused (see [`CallContext::refuse`]).
    pub(super) fn resolve(&self, ctx: &CallContext, fh: &nfs_fh3) -> Result<Object, Unresolved> {
        let resolved = self
            .exports
            .resolve(fh.as_bytes())
            .map_err(nfsstat3::from)
            .and_then(|res| Ok(Object { caller: self.caller_for(ctx, &res)?, res }));
        resolved.map_err(|status| {
            ctx.refuse();
            Unresolved(status)
        })
    }

    /// The lock manager's resolution of an NFS handle sent in an NLM call: the same checks as
    /// every NFS request (handle, export boundary, client list, `secure`).
    pub(crate) fn resolve_for_lock(
        &self,
        ctx: &CallContext,
        fh: &[u8],
    ) -> Result<(Resolved, Caller), nfsstat3> {
        if fh.len() > xdr::nfs3::FHSIZE {
            ctx.refuse();
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        }
        let fh = nfs_fh3::from(fh);
        self.resolve(ctx, &fh).map(|o| (o.res, o.caller)).map_err(|Unresolved(status)| status)
    }

    fn caller_for(&self, ctx: &CallContext, res: &Resolved) -> Result<Caller, nfsstat3> {
        let peer = ctx.peer.ip().to_canonical();
        let Some(options) = res.export.spec.options_for(peer) else {
            tracing::info!(client = %ctx.peer, export = %res.export.spec.path.display(), "request refused: client not in the export's list");
            return Err(nfsstat3::NFS3ERR_ACCES);
        };
        if options.secure && ctx.peer.port() >= 1024 {
            tracing::info!(client = %ctx.peer, export = %res.export.spec.path.display(), "request from an unprivileged port refused: the export is `secure`");
            return Err(nfsstat3::NFS3ERR_PERM);
        }
        let (uid, gid, groups) = options.effective_ids(&ctx.cred);
        Ok(Caller { options: options.clone(), identity: Identity { uid, gid, groups } })
    }
}

/// Checks a `filename3`. A name is one non-empty path component, so an empty name or one
/// containing `/` or NUL is undecodable: GARBAGE_ARGS, as knfsd's decoder answers. A name longer
/// than [`MAX_NAME`] is a name, just not one the server serves: the inner `Err` is
/// NFS3ERR_NAMETOOLONG (RFC 1813 §3.3), which the procedure answers once it has the directory,
/// so the reply carries the directory's attributes like any other failure. `.` and `..` pass
/// here; each procedure decides what they mean.
pub fn component(name: &filename3) -> Result<Result<CString, nfsstat3>, RpcError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') {
        return Err(RpcError::GarbageArgs);
    }
    let name = CString::new(bytes).map_err(|_| RpcError::GarbageArgs)?;
    Ok(if bytes.len() > MAX_NAME { Err(nfsstat3::NFS3ERR_NAMETOOLONG) } else { Ok(name) })
}

/// Procedures on a directory's entries answer NFS3ERR_NOTDIR for anything else.
pub fn require_dir(attr: &Attr) -> Result<(), nfsstat3> {
    if attr.file_type == FileType::Directory { Ok(()) } else { Err(nfsstat3::NFS3ERR_NOTDIR) }
}

/// Whether `name` is `.` or `..`, which name no new entry.
pub fn is_dot(name: &CString) -> bool {
    matches!(name.as_bytes(), b"." | b"..")
}

/// Maps an error from a filesystem call to its status.
pub fn st(e: impl Into<io::Error>) -> nfsstat3 {
    nfs_status(&e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_whose_request_panicked_inside_run_runs_the_next_one() {
        std::thread::spawn(|| {
            let caller = Caller {
                options: ExportOptions::default(),
                identity: Identity { uid: 1000, gid: 50, groups: vec![50] },
            };
            let panicked =
                std::panic::catch_unwind(|| caller.run(|| -> Result<(), nfsstat3> { panic!("bug") }));
            assert!(panicked.is_err());
            assert!(!AS_CALLER.get(), "the thread is no longer inside Caller::run");
            // Not taken for a nested call: it runs (as the dispatcher would run the next request).
            assert_eq!(caller.run(|| Ok(7)), Ok(7));
        })
        .join()
        .unwrap();
    }
}
