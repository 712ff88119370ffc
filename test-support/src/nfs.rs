//! Small NFS v3 helpers: argument pieces and result checks the tests and the benchmark share.

use bytes::Bytes;
use xdr::nfs3::{Nfs3Result, diropargs3, filename3, nfs_fh3, nfsstat3};

/// `s` as a file name.
pub fn name(s: &str) -> filename3 {
    filename3(Bytes::copy_from_slice(s.as_bytes()))
}

/// Name `n` in directory `dir`.
pub fn dirop(dir: &nfs_fh3, n: &str) -> diropargs3 {
    diropargs3 { dir: dir.clone(), name: name(n) }
}

/// The result of a call that must succeed; panics with the status and the failure's body.
pub fn ok<T, F: std::fmt::Debug>(r: Nfs3Result<T, F>) -> T {
    match r {
        Nfs3Result::Ok(t) => t,
        Nfs3Result::Err(s, f) => panic!("expected NFS3_OK, got {s:?} ({f:?})"),
    }
}

/// A result's status.
pub fn status<T, F>(r: &Nfs3Result<T, F>) -> nfsstat3 {
    r.status()
}
