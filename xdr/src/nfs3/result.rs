//! The shape shared by every NFS v3 procedure result (RFC 1813 §3.3): a `nfsstat3` discriminant,
//! the `resok` body on `NFS3_OK`, and the `resfail` body for every other status.

use bytes::BytesMut;

use crate::codec::{Reader, Result, Xdr};

use super::types::nfsstat3;

/// An `XXX3res` union (RFC 1813 §3.3): `Ok(resok)` is encoded as `NFS3_OK` then `T`, and
/// `Err(status, resfail)` as `status` then `F`.
///
/// `Err` must never carry `NFS3_OK`: the peer would decode the failure body as a success body.
/// Encoding such a value is a bug in the caller and trips a debug assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nfs3Result<T, F> {
    /// `NFS3_OK` and the `resok` body.
    Ok(T),
    /// A failure status and the `resfail` body.
    Err(nfsstat3, F),
}

impl<T, F> Nfs3Result<T, F> {
    /// The status word this result encodes.
    pub fn status(&self) -> nfsstat3 {
        match self {
            Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
            Nfs3Result::Err(s, _) => *s,
        }
    }

    /// Whether this is the success arm.
    pub fn is_ok(&self) -> bool {
        matches!(self, Nfs3Result::Ok(_))
    }

    /// The success body, if any.
    pub fn ok(self) -> Option<T> {
        match self {
            Nfs3Result::Ok(t) => Some(t),
            Nfs3Result::Err(..) => None,
        }
    }

    /// Converts to a standard `Result`, for `?` in client code.
    pub fn into_result(self) -> std::result::Result<T, (nfsstat3, F)> {
        match self {
            Nfs3Result::Ok(t) => Ok(t),
            Nfs3Result::Err(s, f) => Err((s, f)),
        }
    }
}

impl<T: Xdr, F: Xdr> Xdr for Nfs3Result<T, F> {
    fn decode(r: &mut Reader) -> Result<Self> {
        match nfsstat3::decode(r)? {
            nfsstat3::NFS3_OK => Ok(Nfs3Result::Ok(T::decode(r)?)),
            status => Ok(Nfs3Result::Err(status, F::decode(r)?)),
        }
    }
    fn encode(&self, w: &mut BytesMut) {
        self.status().encode(w);
        match self {
            Nfs3Result::Ok(t) => t.encode(w),
            Nfs3Result::Err(status, f) => {
                debug_assert_ne!(*status, nfsstat3::NFS3_OK, "failure result with NFS3_OK status");
                f.encode(w)
            }
        }
    }
    fn encoded_len(&self) -> usize {
        4 + match self {
            Nfs3Result::Ok(t) => t.encoded_len(),
            Nfs3Result::Err(_, f) => f.encoded_len(),
        }
    }
}
