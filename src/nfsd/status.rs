//! The one table from host errors (`errno`) to NFS v3 status codes, like knfsd's `nfserrno()`.
//! Procedures map errors through [`nfs_status`]; the few procedure-specific exceptions (a
//! READDIR cookie that cannot be resumed, a mismatched SETATTR guard) are decided where they
//! happen, not here.

use std::io;

use xdr::nfs3::nfsstat3;

use crate::fs::HandleError;

/// The NFS v3 status for an `errno`.
pub fn status_for_errno(errno: i32) -> nfsstat3 {
    use nfsstat3::*;
    match errno {
        libc::EPERM => NFS3ERR_PERM,
        libc::ENOENT => NFS3ERR_NOENT,
        libc::EIO | libc::ETXTBSY | libc::EUCLEAN | libc::EREMOTEIO => NFS3ERR_IO,
        libc::ENXIO => NFS3ERR_NXIO,
        libc::EACCES | libc::EBUSY => NFS3ERR_ACCES,
        libc::EEXIST => NFS3ERR_EXIST,
        libc::EXDEV => NFS3ERR_XDEV,
        libc::ENODEV => NFS3ERR_NODEV,
        libc::ENOTDIR => NFS3ERR_NOTDIR,
        libc::EISDIR => NFS3ERR_ISDIR,
        libc::EINVAL => NFS3ERR_INVAL,
        libc::EFBIG | libc::EOVERFLOW => NFS3ERR_FBIG,
        libc::ENOSPC => NFS3ERR_NOSPC,
        libc::EROFS => NFS3ERR_ROFS,
        libc::EMLINK => NFS3ERR_MLINK,
        libc::ENAMETOOLONG => NFS3ERR_NAMETOOLONG,
        libc::ENOTEMPTY => NFS3ERR_NOTEMPTY,
        libc::EDQUOT => NFS3ERR_DQUOT,
        libc::ESTALE => NFS3ERR_STALE,
        libc::EOPNOTSUPP => NFS3ERR_NOTSUPP,
        // Transient conditions: the client should retry later (RFC 1813 §2.6, NFS3ERR_JUKEBOX).
        libc::EAGAIN | libc::ENOMEM | libc::ETIMEDOUT | libc::EINTR | libc::EMFILE | libc::ENFILE => {
            NFS3ERR_JUKEBOX
        }
        libc::ELOOP => NFS3ERR_INVAL,
        other => {
            tracing::warn!(
                "unexpected errno {other} ({}) mapped to NFS3ERR_IO",
                io::Error::from_raw_os_error(other)
            );
            NFS3ERR_IO
        }
    }
}

/// The NFS v3 status for an I/O error.
pub fn nfs_status(err: &io::Error) -> nfsstat3 {
    match err.raw_os_error() {
        Some(errno) => status_for_errno(errno),
        None => nfsstat3::NFS3ERR_SERVERFAULT,
    }
}

impl From<HandleError> for nfsstat3 {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Bad => nfsstat3::NFS3ERR_BADHANDLE,
            HandleError::Stale => nfsstat3::NFS3ERR_STALE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(status_for_errno(libc::ENOENT), nfsstat3::NFS3ERR_NOENT);
        assert_eq!(status_for_errno(libc::EAGAIN), nfsstat3::NFS3ERR_JUKEBOX);
        assert_eq!(status_for_errno(libc::ENOTEMPTY), nfsstat3::NFS3ERR_NOTEMPTY);
        assert_eq!(nfs_status(&io::Error::other("x")), nfsstat3::NFS3ERR_SERVERFAULT);
        assert_eq!(nfsstat3::from(HandleError::Bad), nfsstat3::NFS3ERR_BADHANDLE);
    }
}
