//! The portmapper and rpcbind protocols (RFC 1833): PMAP version 2 (`mapping`, `pmaplist`), RPCBIND
//! versions 3 and 4 (`rpcb`, `rpcblist`), their program and procedure numbers, and universal
//! addresses (RFC 5665 §5.2.3) converted to and from socket addresses.
#![allow(non_camel_case_types)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, BytesMut};

use crate::codec::{Reader, Result, Xdr, XdrWrite, opaque_len};

/// The portmapper / rpcbind program number (RFC 1833 §3 and §4).
pub const PROGRAM: u32 = 100000;
/// PMAP, the original portmapper protocol (RFC 1833 §3).
pub const VERSION_PMAP: u32 = 2;
/// RPCBIND version 3 (RFC 1833 §2.2).
pub const VERSION_RPCBIND3: u32 = 3;
/// RPCBIND version 4 (RFC 1833 §2.2).
pub const VERSION_RPCBIND4: u32 = 4;

/// `IPPROTO_TCP`, the `prot` of a PMAP v2 mapping (RFC 1833 §3).
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_UDP`, the `prot` of a PMAP v2 mapping (RFC 1833 §3).
pub const IPPROTO_UDP: u32 = 17;

/// The well-known port of the portmapper (RFC 1833 §3).
pub const PMAP_PORT: u16 = 111;

/// PMAP v2 procedures (RFC 1833 §3.2).
pub mod pmap_proc {
    /// Does nothing: a ping.
    pub const NULL: u32 = 0;
    /// Registers a mapping (program, version, protocol) to a port.
    pub const SET: u32 = 1;
    /// Removes the mappings of a program and version.
    pub const UNSET: u32 = 2;
    /// Looks up a mapping's port (0: not registered).
    pub const GETPORT: u32 = 3;
    /// Lists every mapping.
    pub const DUMP: u32 = 4;
    /// Calls a procedure of a registered program indirectly.
    pub const CALLIT: u32 = 5;
}

/// RPCBIND v3 and v4 procedures (RFC 1833 §2.2.1). Numbers 0..=8 are shared by both versions;
/// 9..=12 exist in version 4 only.
pub mod rpcb_proc {
    /// Does nothing: a ping.
    pub const NULL: u32 = 0;
    /// Registers an address of a program and version on a transport.
    pub const SET: u32 = 1;
    /// Removes the registrations of a program and version.
    pub const UNSET: u32 = 2;
    /// Looks up the universal address of a program and version on a transport.
    pub const GETADDR: u32 = 3;
    /// Lists every registration.
    pub const DUMP: u32 = 4;
    /// `RPCBPROC_CALLIT` in version 3, `RPCBPROC_BCAST` in version 4.
    pub const CALLIT: u32 = 5;
    /// Returns the server's time, in seconds since 1970.
    pub const GETTIME: u32 = 6;
    /// Converts a universal address to a transport address.
    pub const UADDR2TADDR: u32 = 7;
    /// Converts a transport address to a universal address.
    pub const TADDR2UADDR: u32 = 8;
    /// GETADDR for exactly the version asked (version 4).
    pub const GETVERSADDR: u32 = 9;
    /// CALLIT that answers only on success (version 4).
    pub const INDIRECT: u32 = 10;
    /// Every address of a program and version, with its transport (version 4).
    pub const GETADDRLIST: u32 = 11;
    /// The server's statistics (version 4).
    pub const GETSTAT: u32 = 12;
}

/// Network identifiers (RFC 5665 §5.1 and the IANA netid registry): TCP over IPv4.
pub const NETID_TCP: &str = "tcp";
/// The netid of UDP over IPv4.
pub const NETID_UDP: &str = "udp";
/// The netid of TCP over IPv6.
pub const NETID_TCP6: &str = "tcp6";
/// The netid of UDP over IPv6.
pub const NETID_UDP6: &str = "udp6";

/// Bound on `r_netid`; real netids are a few characters.
pub const MAX_NETID: usize = 255;
/// Bound on `r_addr`; a universal address is at most ~50 characters, a local path up to 108.
pub const MAX_UADDR: usize = 1024;
/// Bound on `r_owner`; rpcbind writes a user name or "superuser".
pub const MAX_OWNER: usize = 255;
/// Bound on the entries of a decoded `pmaplist` or `rpcblist`.
pub const MAX_LIST: usize = 65536;

crate::xdr_struct! {
    /// `mapping` (RFC 1833 §3.1): a program, version and protocol mapped to a port.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct mapping {
        /// The program number.
        pub prog: u32,
        /// The program version.
        pub vers: u32,
        /// `IPPROTO_TCP` or `IPPROTO_UDP`.
        pub prot: u32,
        /// The port it listens on (0 in a GETPORT argument).
        pub port: u32,
    }
}

crate::xdr_linked_list! {
    /// `pmaplist` (RFC 1833 §3.1), the result of PMAPPROC_DUMP: an XDR linked list of mappings.
    pub struct pmaplist(mapping, max = MAX_LIST);
}

/// Decodes an XDR `string<max>`. Netids, universal addresses and owners are ASCII in practice;
/// each byte that is not part of valid UTF-8 is replaced by `?`, so such a string simply matches
/// no registration, and stays as long as it was on the wire (within `max` when re-encoded).
fn string(r: &mut Reader, field: &'static str, max: usize) -> Result<String> {
    let bytes = r.opaque(field, max)?;
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        s.push_str(chunk.valid());
        s.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    Ok(s)
}

/// `rpcb` (RFC 1833 §2.2): a registration in RPCBIND v3/v4, and the argument of SET, UNSET,
/// GETADDR and GETVERSADDR.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct rpcb {
    /// The program number.
    pub r_prog: u32,
    /// The program version.
    pub r_vers: u32,
    /// Network id, e.g. "tcp", "udp6".
    pub r_netid: String,
    /// Universal address, e.g. "127.0.0.1.8.1".
    pub r_addr: String,
    /// Owner of the registration, e.g. "superuser".
    pub r_owner: String,
}

impl Xdr for rpcb {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(rpcb {
            r_prog: r.u32()?,
            r_vers: r.u32()?,
            r_netid: string(r, "r_netid", MAX_NETID)?,
            r_addr: string(r, "r_addr", MAX_UADDR)?,
            r_owner: string(r, "r_owner", MAX_OWNER)?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_u32(self.r_prog);
        w.put_u32(self.r_vers);
        w.put_opaque(self.r_netid.as_bytes());
        w.put_opaque(self.r_addr.as_bytes());
        w.put_opaque(self.r_owner.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        8 + opaque_len(self.r_netid.len()) + opaque_len(self.r_addr.len()) + opaque_len(self.r_owner.len())
    }
}

crate::xdr_linked_list! {
    /// `rpcblist_ptr` (RFC 1833 §2.2), the result of RPCBPROC_DUMP: an XDR linked list of `rpcb`.
    pub struct rpcblist(rpcb, max = MAX_LIST);
}

/// NC_TPI_CLTS: the semantics of a connectionless transport (UDP) in an [`rpcb_entry`].
pub const NC_TPI_CLTS: u32 = 1;
/// NC_TPI_COTS_ORD: a connection-oriented transport with orderly release (TCP).
pub const NC_TPI_COTS_ORD: u32 = 3;

/// `rpcb_entry` (RFC 1833 §2.2): one address of a service, with its transport described, in the
/// result of RPCBIND v4 GETADDRLIST.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct rpcb_entry {
    /// The universal address of the service.
    pub r_maddr: String,
    /// Network id of the transport, e.g. "tcp6".
    pub r_nc_netid: String,
    /// The transport's semantics: [`NC_TPI_CLTS`] or [`NC_TPI_COTS_ORD`].
    pub r_nc_semantics: u32,
    /// Protocol family, e.g. "inet", "inet6".
    pub r_nc_protofmly: String,
    /// Protocol, e.g. "tcp", "udp".
    pub r_nc_proto: String,
}

impl Xdr for rpcb_entry {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(rpcb_entry {
            r_maddr: string(r, "r_maddr", MAX_UADDR)?,
            r_nc_netid: string(r, "r_nc_netid", MAX_NETID)?,
            r_nc_semantics: r.u32()?,
            r_nc_protofmly: string(r, "r_nc_protofmly", MAX_NETID)?,
            r_nc_proto: string(r, "r_nc_proto", MAX_NETID)?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_opaque(self.r_maddr.as_bytes());
        w.put_opaque(self.r_nc_netid.as_bytes());
        w.put_u32(self.r_nc_semantics);
        w.put_opaque(self.r_nc_protofmly.as_bytes());
        w.put_opaque(self.r_nc_proto.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        opaque_len(self.r_maddr.len())
            + opaque_len(self.r_nc_netid.len())
            + 4
            + opaque_len(self.r_nc_protofmly.len())
            + opaque_len(self.r_nc_proto.len())
    }
}

crate::xdr_linked_list! {
    /// `rpcb_entry_list_ptr` (RFC 1833 §2.2), the result of GETADDRLIST: an XDR linked list.
    pub struct rpcb_entry_list(rpcb_entry, max = MAX_LIST);
}

/// `RPCBSTAT_HIGHPROC` (RFC 1833 §2.2): procedure counters kept per version.
pub const RPCBSTAT_HIGHPROC: usize = 13;

/// `rpcb_stat` (RFC 1833 §2.2): one version's statistics in the result of RPCBIND v4 GETSTAT.
/// The per-address and remote-call lists are kept empty: indirect calls are not served and
/// lookups are counted per procedure only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct rpcb_stat {
    /// Calls of each procedure, indexed by procedure number.
    pub rpcbs_procs: [u32; RPCBSTAT_HIGHPROC],
    /// Successful SET calls.
    pub setinfo: u32,
    /// Successful UNSET calls.
    pub unsetinfo: u32,
}

impl Xdr for rpcb_stat {
    fn decode(r: &mut Reader) -> Result<Self> {
        let mut rpcbs_procs = [0u32; RPCBSTAT_HIGHPROC];
        for p in &mut rpcbs_procs {
            *p = r.u32()?;
        }
        let setinfo = r.u32()?;
        let unsetinfo = r.u32()?;
        // Address and remote-call statistics: this codec only reads empty lists.
        if r.bool()? || r.bool()? {
            return Err(crate::codec::XdrError::TooLong { field: "rpcb_stat lists", len: 1, max: 0 });
        }
        Ok(rpcb_stat { rpcbs_procs, setinfo, unsetinfo })
    }
    fn encode(&self, w: &mut BytesMut) {
        for p in self.rpcbs_procs {
            w.put_u32(p);
        }
        w.put_u32(self.setinfo);
        w.put_u32(self.unsetinfo);
        w.put_xdr_bool(false);
        w.put_xdr_bool(false);
    }
    fn encoded_len(&self) -> usize {
        4 * RPCBSTAT_HIGHPROC + 16
    }
}

/// `rpcb_stat_byvers` (RFC 1833 §2.2): statistics for PMAP v2, RPCBIND v3 and v4, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct rpcb_stat_byvers(pub [rpcb_stat; 3]);

impl Xdr for rpcb_stat_byvers {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(rpcb_stat_byvers([rpcb_stat::decode(r)?, rpcb_stat::decode(r)?, rpcb_stat::decode(r)?]))
    }
    fn encode(&self, w: &mut BytesMut) {
        for s in &self.0 {
            s.encode(w);
        }
    }
    fn encoded_len(&self) -> usize {
        3 * (4 * RPCBSTAT_HIGHPROC + 16)
    }
}

/// The result of GETADDR and GETVERSADDR: a universal address, empty when not registered
/// (RFC 1833 §2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct uaddr(pub String);

impl Xdr for uaddr {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(uaddr(string(r, "uaddr", MAX_UADDR)?))
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_opaque(self.0.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        opaque_len(self.0.len())
    }
}

/// The netid for a protocol number and address family (`None` for other protocols).
pub fn netid_for(prot: u32, ipv6: bool) -> Option<&'static str> {
    match (prot, ipv6) {
        (IPPROTO_TCP, false) => Some(NETID_TCP),
        (IPPROTO_TCP, true) => Some(NETID_TCP6),
        (IPPROTO_UDP, false) => Some(NETID_UDP),
        (IPPROTO_UDP, true) => Some(NETID_UDP6),
        _ => None,
    }
}

/// The protocol number and address family (`true` = IPv6) of a netid, for the netids above.
pub fn netid_protocol(netid: &str) -> Option<(u32, bool)> {
    match netid {
        NETID_TCP => Some((IPPROTO_TCP, false)),
        NETID_TCP6 => Some((IPPROTO_TCP, true)),
        NETID_UDP => Some((IPPROTO_UDP, false)),
        NETID_UDP6 => Some((IPPROTO_UDP, true)),
        _ => None,
    }
}

/// Formats an IP socket address as a universal address (RFC 5665 §5.2.3.3 and §5.2.3.4): the
/// address's text form followed by `.p1.p2`, the port's high and low bytes in decimal.
pub fn to_uaddr(addr: SocketAddr) -> String {
    let port = addr.port();
    format!("{}.{}.{}", addr.ip(), port >> 8, port & 0xff)
}

/// Parses a universal address of the `inet` or `inet6` family (RFC 5665 §5.2.3.3 and §5.2.3.4).
/// Returns `None` for anything else, including port octets above 255.
pub fn from_uaddr(s: &str) -> Option<SocketAddr> {
    let mut parts = s.rsplitn(3, '.');
    let lo = parts.next()?;
    let hi = parts.next()?;
    let host = parts.next()?;
    let octet = |t: &str| -> Option<u16> {
        if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<u16>().ok().filter(|v| *v <= 255)
    };
    let port = (octet(hi)? << 8) | octet(lo)?;
    let ip: IpAddr = if host.contains(':') {
        IpAddr::V6(host.parse::<Ipv6Addr>().ok()?)
    } else {
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::XdrError;
    use proptest::prelude::*;

    #[test]
    fn mapping_golden() {
        let m = mapping { prog: 100003, vers: 3, prot: IPPROTO_TCP, port: 2049 };
        let b = m.to_bytes();
        assert_eq!(&b[..], &[0, 1, 0x86, 0xa3, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0x08, 0x01]);
        assert_eq!(mapping::from_bytes(&b).unwrap(), m);
    }

    #[test]
    fn pmaplist_golden() {
        let l = pmaplist(vec![
            mapping { prog: 100000, vers: 2, prot: IPPROTO_UDP, port: 111 },
            mapping { prog: 100005, vers: 3, prot: IPPROTO_TCP, port: 20048 },
        ]);
        let b = l.to_bytes();
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 0, 0, 1,
            0, 1, 0x86, 0xa0, 0, 0, 0, 2, 0, 0, 0, 17, 0, 0, 0, 111,
            0, 0, 0, 1,
            0, 1, 0x86, 0xa5, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0x4e, 0x50,
            0, 0, 0, 0,
        ];
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), l.encoded_len());
        assert_eq!(pmaplist::from_bytes(&b).unwrap(), l);
        assert_eq!(pmaplist::from_bytes(&[0, 0, 0, 0]).unwrap(), pmaplist::default());
    }

    #[test]
    fn rpcb_golden() {
        let r = rpcb {
            r_prog: 100003,
            r_vers: 3,
            r_netid: "tcp".into(),
            r_addr: "0.0.0.0.8.1".into(),
            r_owner: "superuser".into(),
        };
        let b = r.to_bytes();
        #[rustfmt::skip]
        let want: &[u8] = &[
            0, 1, 0x86, 0xa3, 0, 0, 0, 3,
            0, 0, 0, 3, b't', b'c', b'p', 0,
            0, 0, 0, 11, b'0', b'.', b'0', b'.', b'0', b'.', b'0', b'.', b'8', b'.', b'1', 0,
            0, 0, 0, 9, b's', b'u', b'p', b'e', b'r', b'u', b's', b'e', b'r', 0, 0, 0,
        ];
        assert_eq!(&b[..], want);
        assert_eq!(b.len(), r.encoded_len());
        assert_eq!(rpcb::from_bytes(&b).unwrap(), r);
        let list = rpcblist(vec![r.clone(), rpcb { r_owner: String::new(), ..r }]);
        let lb = list.to_bytes();
        assert_eq!(lb.len(), list.encoded_len());
        assert_eq!(rpcblist::from_bytes(&lb).unwrap(), list);
    }

    #[test]
    fn rpcb_rejects_overlong_strings_and_replaces_non_utf8() {
        let mut w = BytesMut::new();
        w.put_u32(1);
        w.put_u32(1);
        w.put_u32(256);
        w.put_bytes(b'a', 256);
        assert!(matches!(rpcb::from_bytes(&w), Err(XdrError::TooLong { field: "r_netid", .. })));
        let mut w = BytesMut::new();
        w.put_u32(1);
        w.put_u32(1);
        w.put_opaque(&[0xff, 0xfe]);
        w.put_opaque(b"");
        w.put_opaque(b"");
        assert_eq!(rpcb::from_bytes(&w).unwrap().r_netid, "??");
    }

    /// Found by the portmap_args fuzz target: a string of bytes that are not UTF-8 must decode to
    /// a string no longer than its wire form, or a registration stored from it (RPCBIND SET)
    /// re-encodes past its bound (a 1,024-byte address became 3,072 bytes of U+FFFD) and every
    /// DUMP reply that lists it is undecodable.
    #[test]
    fn non_utf8_strings_keep_their_length() {
        let mut w = BytesMut::new();
        w.put_u32(100_005);
        w.put_u32(3);
        w.put_opaque(b"tcp");
        w.put_opaque(&[0xf9; MAX_UADDR]);
        w.put_opaque(b"");
        let decoded = rpcb::from_bytes(&w).unwrap();
        assert_eq!(decoded.r_addr.len(), MAX_UADDR);
        let again = rpcb::from_bytes(&decoded.to_bytes()).unwrap();
        assert_eq!(again, decoded);
    }

    #[test]
    fn uaddr_examples() {
        assert_eq!(to_uaddr("127.0.0.1:2049".parse().unwrap()), "127.0.0.1.8.1");
        assert_eq!(to_uaddr("0.0.0.0:111".parse().unwrap()), "0.0.0.0.0.111");
        assert_eq!(to_uaddr("[::1]:2049".parse().unwrap()), "::1.8.1");
        assert_eq!(to_uaddr("[fe80::1:2]:65535".parse().unwrap()), "fe80::1:2.255.255");
        assert_eq!(from_uaddr("127.0.0.1.8.1"), Some("127.0.0.1:2049".parse().unwrap()));
        assert_eq!(from_uaddr("::.0.111"), Some("[::]:111".parse().unwrap()));
        assert_eq!(from_uaddr("::ffff:10.0.0.1.4.0"), Some("[::ffff:10.0.0.1]:1024".parse().unwrap()));
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4.256.0",
            "1.2.3.4.1.-1",
            "1.2.3.4.1.",
            "host.8.1",
            "1.2.3.4.+1.1",
            "::1.0001.1",
        ] {
            assert_eq!(from_uaddr(bad), None, "{bad}");
        }
    }

    #[test]
    fn netids() {
        assert_eq!(netid_for(IPPROTO_TCP, false), Some("tcp"));
        assert_eq!(netid_for(IPPROTO_UDP, true), Some("udp6"));
        assert_eq!(netid_for(132, false), None);
        assert_eq!(netid_protocol("udp6"), Some((IPPROTO_UDP, true)));
        assert_eq!(netid_protocol("local"), None);
    }

    fn arb_string(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::char::range(' ', '~'), 0..max)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn uaddr_round_trip(addr in any::<SocketAddr>()) {
            let addr = match addr {
                SocketAddr::V6(a) => SocketAddr::new(IpAddr::V6(*a.ip()), a.port()),
                a => a,
            };
            prop_assert_eq!(from_uaddr(&to_uaddr(addr)), Some(addr));
        }

        #[test]
        fn rpcblist_round_trip(entries in proptest::collection::vec(
            (any::<u32>(), any::<u32>(), arb_string(10), arb_string(60), arb_string(20)), 0..8)) {
            let l = rpcblist(entries.into_iter().map(|(p, v, n, a, o)| rpcb {
                r_prog: p, r_vers: v, r_netid: n, r_addr: a, r_owner: o }).collect());
            let b = l.to_bytes();
            prop_assert_eq!(b.len(), l.encoded_len());
            prop_assert_eq!(rpcblist::from_bytes(&b).unwrap(), l);
        }

        #[test]
        fn pmaplist_round_trip(entries in proptest::collection::vec(any::<(u32, u32, u32, u32)>(), 0..16)) {
            let l = pmaplist(entries.into_iter().map(|(prog, vers, prot, port)| mapping { prog, vers, prot, port }).collect());
            prop_assert_eq!(pmaplist::from_bytes(&l.to_bytes()).unwrap(), l);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), s in ".{0,40}") {
            let _ = mapping::from_bytes(&data);
            let _ = pmaplist::from_bytes(&data);
            let _ = rpcb::from_bytes(&data);
            let _ = rpcblist::from_bytes(&data);
            let _ = uaddr::from_bytes(&data);
            let _ = from_uaddr(&s);
        }
    }
}
