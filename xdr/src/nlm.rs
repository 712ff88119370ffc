//! The Network Lock Manager, version 4 (program 100021): the byte-range locking protocol of NFS
//! version 3 clients. Types and procedure numbers from the Open Group's XNFS specification
//! (chapter 10, "Network Lock Manager Protocol") as RFC 1813 names it for version 4: 64-bit
//! offsets and lengths, variable-length file handles, and `nlm4_stats` with the status codes
//! added in version 4.
//!
//! Every `netobj` (cookies, file handles, owner handles) is at most [`MAXNETOBJ_SZ`] bytes and
//! every caller name at most [`LM_MAXSTRLEN`], so nothing a client sends can make a decoder hold
//! more.
#![allow(non_camel_case_types)]

use bytes::{BufMut, BytesMut};

use crate::codec::{Reader, Result, Xdr};

/// The NLM program number.
pub const PROGRAM: u32 = 100021;
/// NLM version 4, the version NFS version 3 clients use.
pub const VERSION_4: u32 = 4;

/// `LM_MAXSTRLEN`: the longest caller name.
pub const LM_MAXSTRLEN: usize = 1024;
/// `LM_MAXNAMELEN`: the longest host name in `nlm4_notify` (FREE_ALL).
pub const LM_MAXNAMELEN: usize = LM_MAXSTRLEN + 1;
/// `MAXNETOBJ_SZ`: the longest `netobj`.
pub const MAXNETOBJ_SZ: usize = 1024;

/// Procedures of version 4 (XNFS 10.14).
pub mod nlm4_proc {
    /// Does nothing: a ping.
    pub const NULL: u32 = 0;
    /// Asks whether a lock could be granted, and if not who holds a conflicting one.
    pub const TEST: u32 = 1;
    /// Takes a lock, waiting for it (`block`) or not.
    pub const LOCK: u32 = 2;
    /// Withdraws a blocked LOCK.
    pub const CANCEL: u32 = 3;
    /// Releases a lock.
    pub const UNLOCK: u32 = 4;
    /// Server to client: a blocked lock has been granted.
    pub const GRANTED: u32 = 5;
    /// TEST, with the result sent back as a TEST_RES call.
    pub const TEST_MSG: u32 = 6;
    /// LOCK, with the result sent back as a LOCK_RES call.
    pub const LOCK_MSG: u32 = 7;
    /// CANCEL, with the result sent back as a CANCEL_RES call.
    pub const CANCEL_MSG: u32 = 8;
    /// UNLOCK, with the result sent back as an UNLOCK_RES call.
    pub const UNLOCK_MSG: u32 = 9;
    /// GRANTED, with the result sent back as a GRANTED_RES call.
    pub const GRANTED_MSG: u32 = 10;
    /// The result of a TEST_MSG.
    pub const TEST_RES: u32 = 11;
    /// The result of a LOCK_MSG.
    pub const LOCK_RES: u32 = 12;
    /// The result of a CANCEL_MSG.
    pub const CANCEL_RES: u32 = 13;
    /// The result of an UNLOCK_MSG.
    pub const UNLOCK_RES: u32 = 14;
    /// The result of a GRANTED_MSG: the client's answer to the server's callback.
    pub const GRANTED_RES: u32 = 15;
    /// Takes a DOS share reservation.
    pub const SHARE: u32 = 20;
    /// Releases a DOS share reservation.
    pub const UNSHARE: u32 = 21;
    /// LOCK for a client that does not run a status monitor: the lock is not monitored.
    pub const NM_LOCK: u32 = 22;
    /// Releases every lock and share of a host (its name and new NSM state).
    pub const FREE_ALL: u32 = 23;
}

crate::xdr_opaque! {
    /// `netobj`: an opaque object of at most 1024 bytes (cookies, file handles, owner handles).
    pub struct netobj(max = MAXNETOBJ_SZ)
}

crate::xdr_opaque! {
    /// A caller name, `string<LM_MAXSTRLEN>`: the client host's node name.
    pub struct caller_name(max = LM_MAXSTRLEN)
}

crate::xdr_opaque! {
    /// The host name of `nlm4_notify`, `string<LM_MAXNAMELEN>`.
    pub struct notify_name(max = LM_MAXNAMELEN)
}

crate::xdr_enum! {
    /// `nlm4_stats`: the status of every NLM version 4 result.
    pub enum nlm4_stats {
        /// The lock was granted (or released, or the call succeeded).
        Granted = 0,
        /// A conflicting lock is held.
        Denied = 1,
        /// The server has no resources for another lock.
        DeniedNolocks = 2,
        /// The lock is queued; a GRANTED callback follows when it is taken.
        Blocked = 3,
        /// The server is in its grace period and takes only reclaims.
        DeniedGracePeriod = 4,
        /// Granting it would deadlock.
        Deadlck = 5,
        /// The file is on a read-only filesystem.
        Rofs = 6,
        /// The file handle is stale.
        StaleFh = 7,
        /// An offset or length is out of range.
        Fbig = 8,
        /// The call failed for another reason.
        Failed = 9,
    }
}

crate::xdr_struct! {
    /// `nlm4_lock`: a lock as a client names it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_lock {
        /// The client's node name.
        pub caller_name: caller_name,
        /// The NFS file handle of the file.
        pub fh: netobj,
        /// The lock owner's handle (Linux sends "svid@nodename").
        pub oh: netobj,
        /// The owner's id on the client (a process or open-file id).
        pub svid: i32,
        /// The first byte of the range.
        pub l_offset: u64,
        /// The length of the range; 0 means to the end of the file, however it grows.
        pub l_len: u64,
    }
}

crate::xdr_struct! {
    /// `nlm4_holder`: who holds a lock that conflicts with a TEST.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_holder {
        /// Whether the held lock is exclusive (a write lock).
        pub exclusive: bool,
        /// The holder's owner id.
        pub svid: i32,
        /// The holder's owner handle.
        pub oh: netobj,
        /// The first byte of the held range.
        pub l_offset: u64,
        /// The length of the held range; 0 to the end of the file.
        pub l_len: u64,
    }
}

crate::xdr_struct! {
    /// `nlm4_testargs`: the arguments of TEST, TEST_MSG, GRANTED and GRANTED_MSG.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_testargs {
        /// Echoed in the result.
        pub cookie: netobj,
        /// Whether an exclusive (write) lock is asked about.
        pub exclusive: bool,
        /// The lock.
        pub alock: nlm4_lock,
    }
}

/// `nlm4_testrply`: TEST's status, with the conflicting holder when it is DENIED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum nlm4_testrply {
    /// `NLM4_DENIED`: a conflicting lock and its holder.
    Denied(nlm4_holder),
    /// Any other status, with no body.
    Other(nlm4_stats),
}

impl Xdr for nlm4_testrply {
    fn decode(r: &mut Reader) -> Result<Self> {
        match nlm4_stats::decode(r)? {
            nlm4_stats::Denied => Ok(nlm4_testrply::Denied(nlm4_holder::decode(r)?)),
            status => Ok(nlm4_testrply::Other(status)),
        }
    }
    fn encode(&self, w: &mut BytesMut) {
        match self {
            nlm4_testrply::Denied(holder) => {
                w.put_u32(nlm4_stats::Denied as u32);
                holder.encode(w);
            }
            // An `Other(Denied)` carries no holder: it is written as the status alone, and so
            // decodes as truncated. Build `Denied(holder)` for that status.
            nlm4_testrply::Other(status) => status.encode(w),
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            nlm4_testrply::Denied(holder) => 4 + holder.encoded_len(),
            nlm4_testrply::Other(_) => 4,
        }
    }
}

crate::xdr_struct! {
    /// `nlm4_testres`: the result of TEST (and the argument of TEST_RES).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_testres {
        /// The call's cookie.
        pub cookie: netobj,
        /// The status, with the holder of a conflicting lock.
        pub test_stat: nlm4_testrply,
    }
}

crate::xdr_struct! {
    /// `nlm4_lockargs`: the arguments of LOCK, LOCK_MSG and NM_LOCK.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_lockargs {
        /// Echoed in the result (and in the GRANTED callback of a blocked lock).
        pub cookie: netobj,
        /// Whether the client waits for the lock (BLOCKED, then GRANTED) rather than DENIED.
        pub block: bool,
        /// Whether the lock is exclusive (a write lock).
        pub exclusive: bool,
        /// The lock.
        pub alock: nlm4_lock,
        /// Whether this reclaims a lock held before the server restarted (grace period).
        pub reclaim: bool,
        /// The client's NSM state number.
        pub state: i32,
    }
}

crate::xdr_struct! {
    /// `nlm4_cancargs`: the arguments of CANCEL and CANCEL_MSG.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_cancargs {
        /// Echoed in the result.
        pub cookie: netobj,
        /// The `block` of the LOCK being withdrawn.
        pub block: bool,
        /// The `exclusive` of the LOCK being withdrawn.
        pub exclusive: bool,
        /// The lock being withdrawn.
        pub alock: nlm4_lock,
    }
}

crate::xdr_struct! {
    /// `nlm4_unlockargs`: the arguments of UNLOCK and UNLOCK_MSG.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_unlockargs {
        /// Echoed in the result.
        pub cookie: netobj,
        /// The range to release.
        pub alock: nlm4_lock,
    }
}

crate::xdr_struct! {
    /// `nlm4_res`: the result of LOCK, CANCEL, UNLOCK and GRANTED, and the argument of their
    /// `_RES` calls.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_res {
        /// The call's cookie.
        pub cookie: netobj,
        /// The status.
        pub stat: nlm4_stats,
    }
}

crate::xdr_enum! {
    /// `fsh4_mode`: what a DOS share reservation denies to others.
    pub enum fsh4_mode {
        /// Deny nothing.
        DenyNone = 0,
        /// Deny reading.
        DenyRead = 1,
        /// Deny writing.
        DenyWrite = 2,
        /// Deny reading and writing.
        DenyReadWrite = 3,
    }
}

crate::xdr_enum! {
    /// `fsh4_access`: the access a DOS share reservation asks for.
    pub enum fsh4_access {
        /// No access.
        None = 0,
        /// Read access.
        Read = 1,
        /// Write access.
        Write = 2,
        /// Read and write access.
        ReadWrite = 3,
    }
}

crate::xdr_struct! {
    /// `nlm4_share`: a DOS share reservation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_share {
        /// The client's node name.
        pub caller_name: caller_name,
        /// The NFS file handle of the file.
        pub fh: netobj,
        /// The owner's handle.
        pub oh: netobj,
        /// What it denies to others.
        pub mode: fsh4_mode,
        /// What access it asks for.
        pub access: fsh4_access,
    }
}

crate::xdr_struct! {
    /// `nlm4_shareargs`: the arguments of SHARE and UNSHARE.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_shareargs {
        /// Echoed in the result.
        pub cookie: netobj,
        /// The reservation.
        pub share: nlm4_share,
        /// Whether this reclaims a reservation held before the server restarted.
        pub reclaim: bool,
    }
}

crate::xdr_struct! {
    /// `nlm4_shareres`: the result of SHARE and UNSHARE.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_shareres {
        /// The call's cookie.
        pub cookie: netobj,
        /// The status.
        pub stat: nlm4_stats,
        /// A sequence number (unused by clients).
        pub sequence: i32,
    }
}

crate::xdr_struct! {
    /// `nlm4_notify`: the argument of FREE_ALL, a host that restarted and its new NSM state.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct nlm4_notify {
        /// The host whose locks and shares are released.
        pub name: notify_name,
        /// Its new NSM state number.
        pub state: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::XdrError;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn lock(len: u64) -> nlm4_lock {
        nlm4_lock {
            caller_name: "vm".into(),
            fh: netobj(Bytes::from_static(&[1, 2, 3, 4, 5])),
            oh: "0@vm".into(),
            svid: 7,
            l_offset: 1 << 40,
            l_len: len,
        }
    }

    /// LOCK as the Linux client sends it for `fcntl(F_SETLKW)` of a write lock, byte by byte.
    #[test]
    fn lockargs_golden() {
        let args = nlm4_lockargs {
            cookie: netobj(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])),
            block: true,
            exclusive: true,
            alock: lock(0),
            reclaim: false,
            state: 3,
        };
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef,
            0, 0, 0, 1,
            0, 0, 0, 1,
            0, 0, 0, 2, b'v', b'm', 0, 0,
            0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0,
            0, 0, 0, 4, b'0', b'@', b'v', b'm',
            0, 0, 0, 7,
            0, 0, 1, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0,
            0, 0, 0, 3,
        ];
        let b = args.to_bytes();
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), args.encoded_len());
        assert_eq!(nlm4_lockargs::from_bytes(&b).unwrap(), args);
    }

    #[test]
    fn testres_denied_carries_the_holder() {
        let holder = nlm4_holder { exclusive: true, svid: 9, oh: "9@other".into(), l_offset: 0, l_len: 10 };
        let res = nlm4_testres { cookie: netobj::default(), test_stat: nlm4_testrply::Denied(holder) };
        let b = res.to_bytes();
        assert_eq!(b.len(), res.encoded_len());
        assert_eq!(&b[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(nlm4_testres::from_bytes(&b).unwrap(), res);

        let granted =
            nlm4_testres { cookie: netobj::default(), test_stat: nlm4_testrply::Other(nlm4_stats::Granted) };
        assert_eq!(&granted.to_bytes()[..], &[0, 0, 0, 0, 0, 0, 0, 0]);
        // DENIED without a holder is truncated, not another status.
        assert!(matches!(
            nlm4_testres::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 1]),
            Err(XdrError::Truncated { .. })
        ));
        assert!(matches!(nlm4_stats::from_bytes(&[0, 0, 0, 10]), Err(XdrError::BadDiscriminant { .. })));
    }

    #[test]
    fn netobj_and_names_are_bounded() {
        let mut w = BytesMut::new();
        w.put_u32(MAXNETOBJ_SZ as u32 + 1);
        w.put_slice(&[0; MAXNETOBJ_SZ + 4]);
        assert!(matches!(netobj::from_bytes(&w), Err(XdrError::TooLong { .. })));
        let mut w = BytesMut::new();
        w.put_u32(LM_MAXSTRLEN as u32 + 1);
        w.put_slice(&[b'a'; LM_MAXSTRLEN + 4]);
        assert!(matches!(caller_name::from_bytes(&w), Err(XdrError::TooLong { .. })));
        // FREE_ALL's name may be one byte longer.
        let notify = nlm4_notify { name: notify_name(Bytes::from(vec![b'a'; LM_MAXNAMELEN])), state: 5 };
        assert_eq!(nlm4_notify::from_bytes(&notify.to_bytes()).unwrap(), notify);
        // A length claiming 4 GiB is refused before anything is allocated.
        assert!(netobj::from_bytes(&[0xff, 0xff, 0xff, 0xf0]).is_err());
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    prop_compose! {
        fn arb_lock()(name in arb_bytes(40), fh in arb_bytes(70), oh in arb_bytes(40), svid in any::<i32>(),
                      l_offset in any::<u64>(), l_len in any::<u64>()) -> nlm4_lock {
            nlm4_lock { caller_name: name.into(), fh: fh.into(), oh: oh.into(), svid, l_offset, l_len }
        }
    }

    proptest! {
        #[test]
        fn lockargs_round_trip(cookie in arb_bytes(16), block in any::<bool>(), exclusive in any::<bool>(),
                               alock in arb_lock(), reclaim in any::<bool>(), state in any::<i32>()) {
            let a = nlm4_lockargs { cookie: cookie.into(), block, exclusive, alock, reclaim, state };
            let b = a.to_bytes();
            prop_assert_eq!(b.len(), a.encoded_len());
            prop_assert_eq!(nlm4_lockargs::from_bytes(&b).unwrap(), a);
        }

        #[test]
        fn testargs_and_unlockargs_round_trip(cookie in arb_bytes(16), exclusive in any::<bool>(), alock in arb_lock()) {
            let t = nlm4_testargs { cookie: cookie.clone().into(), exclusive, alock: alock.clone() };
            prop_assert_eq!(nlm4_testargs::from_bytes(&t.to_bytes()).unwrap(), t);
            let u = nlm4_unlockargs { cookie: cookie.into(), alock };
            prop_assert_eq!(nlm4_unlockargs::from_bytes(&u.to_bytes()).unwrap(), u);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = nlm4_testargs::from_bytes(&data);
            let _ = nlm4_testres::from_bytes(&data);
            let _ = nlm4_lockargs::from_bytes(&data);
            let _ = nlm4_cancargs::from_bytes(&data);
            let _ = nlm4_unlockargs::from_bytes(&data);
            let _ = nlm4_res::from_bytes(&data);
            let _ = nlm4_shareargs::from_bytes(&data);
            let _ = nlm4_shareres::from_bytes(&data);
            let _ = nlm4_notify::from_bytes(&data);
        }
    }
}
