//! The MOUNT protocol: version 3 (RFC 1813 appendix I) and the version 1 types that differ from
//! it (RFC 1094 appendix A): `dirpath`, `name`, `mountstat3`, `mountres3`, v1 `fhstatus`, the mount
//! list returned by DUMP and the export list returned by EXPORT. Version 2 uses the v1 types.
#![allow(non_camel_case_types)]

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Reader, Result, Xdr, XdrError, XdrWrite, opaque_len};

/// The MOUNT program number (RFC 1813 §5.0).
pub const PROGRAM: u32 = 100005;
/// MOUNT version 1 (RFC 1094 appendix A), for NFS version 2.
pub const VERSION_1: u32 = 1;
/// MOUNT version 2: version 1 plus PATHCONF, which this crate does not define.
pub const VERSION_2: u32 = 2;
/// MOUNT version 3 (RFC 1813 §5), for NFS version 3.
pub const VERSION_3: u32 = 3;

/// Procedures, numbered alike in versions 1, 2 and 3 (RFC 1813 §5.2, RFC 1094 appendix A.5).
pub mod mount_proc {
    /// Does nothing: a ping.
    pub const NULL: u32 = 0;
    /// Maps an exported path to its root file handle and records the mount.
    pub const MNT: u32 = 1;
    /// Lists the mounts the server has recorded.
    pub const DUMP: u32 = 2;
    /// Removes one of the caller's mount records.
    pub const UMNT: u32 = 3;
    /// Removes all of the caller's mount records.
    pub const UMNTALL: u32 = 4;
    /// Lists the exports and the clients allowed to mount each.
    pub const EXPORT: u32 = 5;
}

/// `MNTPATHLEN` (RFC 1813 §5.1.1).
pub const MNTPATHLEN: usize = 1024;
/// `MNTNAMLEN` (RFC 1813 §5.1.2).
pub const MNTNAMLEN: usize = 255;
/// `FHSIZE3`, the maximum v3 file handle size (RFC 1813 §5.1.3).
pub const FHSIZE3: usize = 64;
/// `FHSIZE`, the fixed v1/v2 file handle size (RFC 1094 appendix A.1).
pub const FHSIZE: usize = 32;
/// Bound on the flavors of a decoded `mountres3_ok`; servers send one to a handful.
pub const MAX_AUTH_FLAVORS: usize = 64;
/// Bound on the entries of a decoded mount or export list, and the groups of one export.
pub const MAX_LIST: usize = 65536;

crate::xdr_opaque! {
    /// `dirpath` (RFC 1813 §5.1.1): a server path name, at most 1024 bytes.
    pub struct dirpath(max = MNTPATHLEN)
}

crate::xdr_opaque! {
    /// `name` (RFC 1813 §5.1.2): a client host name or export group name, at most 255 bytes.
    pub struct name(max = MNTNAMLEN)
}

crate::xdr_enum! {
    /// `mountstat3` (RFC 1813 §5.1.5).
    pub enum mountstat3 {
        /// MNT3_OK: success.
        Ok = 0,
        /// MNT3ERR_PERM: not owner.
        Perm = 1,
        /// MNT3ERR_NOENT: no such file or directory.
        NoEnt = 2,
        /// MNT3ERR_IO: an I/O error.
        Io = 5,
        /// MNT3ERR_ACCES: permission denied (the client may not mount this export).
        Access = 13,
        /// MNT3ERR_NOTDIR: not a directory.
        NotDir = 20,
        /// MNT3ERR_INVAL: an invalid argument.
        Inval = 22,
        /// MNT3ERR_NAMETOOLONG: the path is too long.
        NameTooLong = 63,
        /// MNT3ERR_NOTSUPP: the operation is not supported.
        NotSupp = 10004,
        /// MNT3ERR_SERVERFAULT: a failure on the server.
        ServerFault = 10006,
    }
}

/// `mountres3_ok` (RFC 1813 §5.2.1): the export's root handle and the flavors the server accepts,
/// preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct mountres3_ok {
    /// `fhandle3`, `opaque<FHSIZE3>`.
    pub fhandle: Bytes,
    /// The authentication flavors the export accepts, preferred first.
    pub auth_flavors: Vec<u32>,
}

/// `mountres3` (RFC 1813 §5.2.1): the MNT v3 result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum mountres3 {
    /// `MNT3_OK`: the handle and flavors.
    Ok(mountres3_ok),
    /// Any status other than `MNT3_OK`, with no body.
    Err(mountstat3),
}

impl Xdr for mountres3 {
    fn decode(r: &mut Reader) -> Result<Self> {
        match mountstat3::decode(r)? {
            mountstat3::Ok => Ok(mountres3::Ok(mountres3_ok {
                fhandle: r.opaque("fhandle3", FHSIZE3)?,
                auth_flavors: r.array("auth_flavors", MAX_AUTH_FLAVORS, 4, Reader::u32)?,
            })),
            status => Ok(mountres3::Err(status)),
        }
    }
    fn encode(&self, w: &mut BytesMut) {
        match self {
            mountres3::Ok(ok) => {
                w.put_u32(mountstat3::Ok as u32);
                w.put_opaque(&ok.fhandle);
                w.put_u32(ok.auth_flavors.len() as u32);
                for f in &ok.auth_flavors {
                    w.put_u32(*f);
                }
            }
            // An `Err(Ok)` carries no handle; it is written as the status alone, like any error.
            mountres3::Err(status) => status.encode(w),
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            mountres3::Ok(ok) => 4 + opaque_len(ok.fhandle.len()) + 4 + 4 * ok.auth_flavors.len(),
            mountres3::Err(_) => 4,
        }
    }
}

/// `fhstatus` (RFC 1094 appendix A.2): the MNT v1/v2 result, a status that is a UNIX errno and,
/// on 0, a fixed 32-byte handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum fhstatus {
    /// Status 0: the export's root handle.
    Ok([u8; FHSIZE]),
    /// A non-zero UNIX errno, with no handle.
    Err(u32),
}

impl Xdr for fhstatus {
    fn decode(r: &mut Reader) -> Result<Self> {
        match r.u32()? {
            0 => Ok(fhstatus::Ok(r.fixed::<FHSIZE>()?)),
            status => Ok(fhstatus::Err(status)),
        }
    }
    fn encode(&self, w: &mut BytesMut) {
        match self {
            fhstatus::Ok(fh) => {
                w.put_u32(0);
                w.put_fixed(fh);
            }
            fhstatus::Err(status) => w.put_u32(*status),
        }
    }
    fn encoded_len(&self) -> usize {
        match self {
            fhstatus::Ok(_) => 4 + FHSIZE,
            fhstatus::Err(_) => 4,
        }
    }
}

crate::xdr_struct! {
    /// One `mountbody` (RFC 1813 §5.2.2) without its `ml_next` link: a client and what it mounted.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct mountbody {
        /// The client's host name.
        pub ml_hostname: name,
        /// The path it mounted.
        pub ml_directory: dirpath,
    }
}

crate::xdr_linked_list! {
    /// `mountlist` (RFC 1813 §5.2.2), the DUMP result: an XDR linked list of `mountbody`.
    pub struct mountlist(mountbody, max = MAX_LIST);
}

/// One `exportnode` (RFC 1813 §5.2.5) without its `ex_next` link: an exported path and the
/// `groups` list of clients allowed to mount it (an empty list means everyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct exportnode {
    /// The exported path.
    pub ex_dir: dirpath,
    /// The clients (host names, netgroups, addresses) that may mount it; empty for everyone.
    pub ex_groups: Vec<name>,
}

impl Xdr for exportnode {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(exportnode { ex_dir: dirpath::decode(r)?, ex_groups: r.list("groups", MAX_LIST, name::decode)? })
    }
    fn encode(&self, w: &mut BytesMut) {
        self.ex_dir.encode(w);
        for g in &self.ex_groups {
            w.put_xdr_bool(true);
            g.encode(w);
        }
        w.put_xdr_bool(false);
    }
    fn encoded_len(&self) -> usize {
        self.ex_dir.encoded_len() + 4 + self.ex_groups.iter().map(|g| 4 + g.encoded_len()).sum::<usize>()
    }
}

/// `exports` (RFC 1813 §5.2.5), the EXPORT result: an XDR linked list of `exportnode`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct exports(pub Vec<exportnode>);

impl Xdr for exports {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(exports(r.list("exports", MAX_LIST, exportnode::decode)?))
    }
    fn encode(&self, w: &mut BytesMut) {
        for e in &self.0 {
            w.put_xdr_bool(true);
            e.encode(w);
        }
        w.put_xdr_bool(false);
    }
    fn encoded_len(&self) -> usize {
        4 + self.0.iter().map(|e| 4 + e.encoded_len()).sum::<usize>()
    }
}

/// Checks that a `mountres3` is well formed for sending: a handle within `FHSIZE3` and a status
/// that agrees with the arm.
pub fn check_mountres3(res: &mountres3) -> Result<()> {
    match res {
        mountres3::Ok(ok) if ok.fhandle.len() > FHSIZE3 => {
            Err(XdrError::TooLong { field: "fhandle3", len: ok.fhandle.len(), max: FHSIZE3 })
        }
        mountres3::Err(mountstat3::Ok) => {
            Err(XdrError::BadDiscriminant { ty: "mountres3 error arm", value: 0 })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mountres3_golden_ok_and_error() {
        let ok = mountres3::Ok(mountres3_ok {
            fhandle: Bytes::from_static(&[1, 2, 3, 4, 5]),
            auth_flavors: vec![1, 0],
        });
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 0,
            0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0,
            0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        let b = ok.to_bytes();
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), ok.encoded_len());
        assert_eq!(mountres3::from_bytes(&b).unwrap(), ok);
        assert!(check_mountres3(&ok).is_ok());

        let err = mountres3::Err(mountstat3::Access);
        assert_eq!(&err.to_bytes()[..], &[0, 0, 0, 13]);
        assert_eq!(
            mountres3::from_bytes(&[0, 0, 0x27, 0x16]).unwrap(),
            mountres3::Err(mountstat3::ServerFault)
        );
        assert!(matches!(mountres3::from_bytes(&[0, 0, 0, 3]), Err(XdrError::BadDiscriminant { .. })));
    }

    #[test]
    fn mountres3_handle_over_64_rejected() {
        let mut w = BytesMut::new();
        w.put_u32(0);
        w.put_opaque(&[0u8; 65]);
        w.put_u32(0);
        assert!(matches!(mountres3::from_bytes(&w), Err(XdrError::TooLong { field: "fhandle3", .. })));
        let big = mountres3::Ok(mountres3_ok { fhandle: Bytes::from(vec![0u8; 65]), auth_flavors: vec![] });
        assert!(check_mountres3(&big).is_err());
        assert!(check_mountres3(&mountres3::Err(mountstat3::Ok)).is_err());
    }

    #[test]
    fn fhstatus_golden() {
        let mut fh = [0u8; 32];
        fh[0] = 0xab;
        fh[31] = 0xcd;
        let b = fhstatus::Ok(fh).to_bytes();
        assert_eq!(b.len(), 36);
        assert_eq!(&b[..5], &[0, 0, 0, 0, 0xab]);
        assert_eq!(b[35], 0xcd);
        assert_eq!(fhstatus::from_bytes(&b).unwrap(), fhstatus::Ok(fh));
        assert_eq!(&fhstatus::Err(13).to_bytes()[..], &[0, 0, 0, 13]);
        assert!(matches!(fhstatus::from_bytes(&[0, 0, 0, 0, 1, 2]), Err(XdrError::Truncated { .. })));
    }

    #[test]
    fn mountlist_golden() {
        let l = mountlist(vec![mountbody { ml_hostname: "10.0.0.2".into(), ml_directory: "/srv".into() }]);
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 1,
            0, 0, 0, 8, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'2',
            0, 0, 0, 4, b'/', b's', b'r', b'v',
            0, 0, 0, 0,
        ];
        let b = l.to_bytes();
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), l.encoded_len());
        assert_eq!(mountlist::from_bytes(&b).unwrap(), l);
    }

    #[test]
    fn exports_golden() {
        let e = exports(vec![
            exportnode { ex_dir: "/a".into(), ex_groups: vec!["*".into(), "10.0.0.0/8".into()] },
            exportnode { ex_dir: "/b".into(), ex_groups: vec![] },
        ]);
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 1,
            0, 0, 0, 2, b'/', b'a', 0, 0,
            0, 0, 0, 1, 0, 0, 0, 1, b'*', 0, 0, 0,
            0, 0, 0, 1, 0, 0, 0, 10, b'1', b'0', b'.', b'0', b'.', b'0', b'.', b'0', b'/', b'8', 0, 0,
            0, 0, 0, 0,
            0, 0, 0, 1,
            0, 0, 0, 2, b'/', b'b', 0, 0,
            0, 0, 0, 0,
            0, 0, 0, 0,
        ];
        let b = e.to_bytes();
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), e.encoded_len());
        assert_eq!(exports::from_bytes(&b).unwrap(), e);
    }

    #[test]
    fn dirpath_and_name_limits() {
        let mut w = BytesMut::new();
        w.put_opaque(&[b'a'; 1025]);
        assert!(matches!(dirpath::from_bytes(&w), Err(XdrError::TooLong { .. })));
        let mut w = BytesMut::new();
        w.put_opaque(&[b'a'; 1024]);
        assert_eq!(dirpath::from_bytes(&w).unwrap().as_bytes().len(), 1024);
        let mut w = BytesMut::new();
        w.put_opaque(&[b'a'; 256]);
        assert!(matches!(name::from_bytes(&w), Err(XdrError::TooLong { .. })));
    }

    fn arb_name(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    proptest! {
        #[test]
        fn mountres3_round_trip(fh in arb_name(65), flavors in proptest::collection::vec(any::<u32>(), 0..8)) {
            let r = mountres3::Ok(mountres3_ok { fhandle: Bytes::from(fh), auth_flavors: flavors });
            let b = r.to_bytes();
            prop_assert_eq!(b.len(), r.encoded_len());
            prop_assert_eq!(mountres3::from_bytes(&b).unwrap(), r);
        }

        #[test]
        fn exports_round_trip(nodes in proptest::collection::vec(
            (arb_name(100), proptest::collection::vec(arb_name(40), 0..4)), 0..6)) {
            let e = exports(nodes.into_iter().map(|(d, g)| exportnode {
                ex_dir: d.into(), ex_groups: g.into_iter().map(name::from).collect() }).collect());
            let b = e.to_bytes();
            prop_assert_eq!(b.len(), e.encoded_len());
            prop_assert_eq!(exports::from_bytes(&b).unwrap(), e);
        }

        #[test]
        fn mountlist_round_trip(items in proptest::collection::vec((arb_name(50), arb_name(100)), 0..6)) {
            let l = mountlist(items.into_iter().map(|(h, d)| mountbody { ml_hostname: h.into(), ml_directory: d.into() }).collect());
            prop_assert_eq!(mountlist::from_bytes(&l.to_bytes()).unwrap(), l);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = dirpath::from_bytes(&data);
            let _ = mountres3::from_bytes(&data);
            let _ = fhstatus::from_bytes(&data);
            let _ = mountlist::from_bytes(&data);
            let _ = exports::from_bytes(&data);
        }
    }
}
