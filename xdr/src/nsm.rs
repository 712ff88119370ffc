//! The Network Status Monitor, version 1 (program 100024): how hosts that hold locks learn that a
//! peer restarted. Types and procedure numbers from the Open Group's XNFS specification
//! (chapter 11, "Network Status Monitor Protocol"), as nfs-utils' `sm_inter.x` spells them.
//!
//! A status number is odd while a host is up and even while it is down; every restart makes it
//! one higher (twice), and SM_NOTIFY carries the new one to each host that monitored it.
#![allow(non_camel_case_types)]

/// The NSM program number.
pub const PROGRAM: u32 = 100024;
/// NSM version 1.
pub const VERSION_1: u32 = 1;

/// `SM_MAXSTRLEN`: the longest host name.
pub const SM_MAXSTRLEN: usize = 1024;
/// The size of the private data a monitor request hands back with its notification.
pub const SM_PRIV_SIZE: usize = 16;

/// Procedures of version 1.
pub mod sm_proc {
    /// Does nothing: a ping.
    pub const NULL: u32 = 0;
    /// Asks whether a host could be monitored, and the monitor's own state number.
    pub const STAT: u32 = 1;
    /// Starts monitoring a host for a local program (lockd), which is called back when it restarts.
    pub const MON: u32 = 2;
    /// Stops monitoring a host for a local program.
    pub const UNMON: u32 = 3;
    /// Stops monitoring every host for a local program.
    pub const UNMON_ALL: u32 = 4;
    /// Behaves as if this host had restarted: notifies every monitored peer.
    pub const SIMU_CRASH: u32 = 5;
    /// A peer tells this host that it restarted, with its new state number.
    pub const NOTIFY: u32 = 6;
}

crate::xdr_opaque! {
    /// A host name, `string<SM_MAXSTRLEN>`.
    pub struct sm_string(max = SM_MAXSTRLEN)
}

crate::xdr_struct! {
    /// `sm_name`: the argument of STAT.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct sm_name {
        /// The host asked about.
        pub mon_name: sm_string,
    }
}

crate::xdr_enum! {
    /// `res`: whether a STAT or MON call succeeded.
    pub enum sm_res {
        /// `stat_succ`: the host can be (or is now) monitored.
        Success = 0,
        /// `stat_fail`: it cannot.
        Fail = 1,
    }
}

crate::xdr_struct! {
    /// `sm_stat_res`: the result of STAT and MON.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct sm_stat_res {
        /// Whether it succeeded.
        pub res_stat: sm_res,
        /// The monitor's own state number.
        pub state: i32,
    }
}

crate::xdr_struct! {
    /// `sm_stat`: the result of UNMON, UNMON_ALL and SIMU_CRASH, the monitor's state number.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct sm_stat {
        /// The monitor's own state number.
        pub state: i32,
    }
}

crate::xdr_struct! {
    /// `my_id`: the local program to call back (host, program, version, procedure).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct my_id {
        /// The host to call back (the caller's own).
        pub my_name: sm_string,
        /// Its program number.
        pub my_prog: i32,
        /// Its version.
        pub my_vers: i32,
        /// Its procedure.
        pub my_proc: i32,
    }
}

crate::xdr_struct! {
    /// `mon_id`: a host to monitor, and whom to call back when it restarts. The argument of UNMON
    /// (and, its `my_id` alone, of UNMON_ALL).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct mon_id {
        /// The host to monitor.
        pub mon_name: sm_string,
        /// Whom to call back.
        pub my_id: my_id,
    }
}

crate::xdr_struct! {
    /// `mon`: the argument of MON, a `mon_id` and 16 bytes handed back with the callback.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct mon {
        /// The host and the callback.
        pub mon_id: mon_id,
        /// Opaque to the monitor, returned in the callback.
        pub priv_: [u8; SM_PRIV_SIZE],
    }
}

crate::xdr_struct! {
    /// `stat_chge`: the argument of NOTIFY, a host and its new state number.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct stat_chge {
        /// The host that restarted.
        pub mon_name: sm_string,
        /// Its new state number.
        pub state: i32,
    }
}

crate::xdr_struct! {
    /// `status`: what the monitor sends to the program that asked for a host (the `my_id`
    /// callback) when the host restarted.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct sm_status {
        /// The host that restarted.
        pub mon_name: sm_string,
        /// Its new state number.
        pub state: i32,
        /// The `priv` of the MON call.
        pub priv_: [u8; SM_PRIV_SIZE],
    }
}

/// Whether a state number says its host is up (odd) rather than down (even).
pub fn state_is_up(state: i32) -> bool {
    state & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Xdr, XdrError};
    use bytes::{BufMut, BytesMut};
    use proptest::prelude::*;

    /// MON as rpc.statd receives it from lockd, byte by byte.
    #[test]
    fn mon_golden() {
        let m = mon {
            mon_id: mon_id {
                mon_name: "client".into(),
                my_id: my_id { my_name: "127.0.0.1".into(), my_prog: 100021, my_vers: 4, my_proc: 16 },
            },
            priv_: [7; SM_PRIV_SIZE],
        };
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 6, b'c', b'l', b'i', b'e', b'n', b't', 0, 0,
            0, 0, 0, 9, b'1', b'2', b'7', b'.', b'0', b'.', b'0', b'.', b'1', 0, 0, 0,
            0, 1, 0x86, 0xb5,
            0, 0, 0, 4,
            0, 0, 0, 16,
            7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        ];
        let b = m.to_bytes();
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), m.encoded_len());
        assert_eq!(mon::from_bytes(&b).unwrap(), m);
    }

    #[test]
    fn notify_and_stat_res() {
        let n = stat_chge { mon_name: "client".into(), state: 3 };
        assert_eq!(stat_chge::from_bytes(&n.to_bytes()).unwrap(), n);
        let r = sm_stat_res { res_stat: sm_res::Fail, state: 5 };
        assert_eq!(&r.to_bytes()[..], &[0, 0, 0, 1, 0, 0, 0, 5]);
        assert!(matches!(sm_res::from_bytes(&[0, 0, 0, 2]), Err(XdrError::BadDiscriminant { .. })));
        assert!(state_is_up(3) && !state_is_up(4) && state_is_up(-1));
    }

    #[test]
    fn names_are_bounded() {
        let mut w = BytesMut::new();
        w.put_u32(SM_MAXSTRLEN as u32 + 1);
        w.put_slice(&[b'a'; SM_MAXSTRLEN + 4]);
        w.put_u32(1);
        assert!(matches!(stat_chge::from_bytes(&w), Err(XdrError::TooLong { .. })));
    }

    proptest! {
        #[test]
        fn mon_round_trip(name in proptest::collection::vec(any::<u8>(), 0..60), me in proptest::collection::vec(any::<u8>(), 0..60),
                          prog in any::<i32>(), vers in any::<i32>(), proc_ in any::<i32>(), priv_ in any::<[u8; 16]>()) {
            let m = mon { mon_id: mon_id { mon_name: name.into(), my_id: my_id { my_name: me.into(), my_prog: prog, my_vers: vers, my_proc: proc_ } }, priv_ };
            let b = m.to_bytes();
            prop_assert_eq!(b.len(), m.encoded_len());
            prop_assert_eq!(mon::from_bytes(&b).unwrap(), m);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = sm_name::from_bytes(&data);
            let _ = mon::from_bytes(&data);
            let _ = mon_id::from_bytes(&data);
            let _ = my_id::from_bytes(&data);
            let _ = stat_chge::from_bytes(&data);
            let _ = sm_stat_res::from_bytes(&data);
            let _ = sm_status::from_bytes(&data);
        }
    }
}
