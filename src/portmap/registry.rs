//! The table of registered services an embedded portmapper answers from: (program, version, netid)
//! → universal address and owner, with rpcbind's lookup and ownership rules, and bounds on what
//! callers can make it hold.
//!
//! rnfsd's own registrations (owner [`SELF_OWNER`]) are made by the server itself and last as
//! long as it runs: no caller can remove or replace them, nor register another version of a
//! program rnfsd serves, which would send clients that ask for that version elsewhere.
//! Registrations made by callers are removable by their owner and by the superuser, as rpcbind's
//! `map_unset` allows, and are bounded in number, in total and per owner, and in the length of
//! their strings.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use xdr::portmap::{NETID_TCP, NETID_TCP6, NETID_UDP, NETID_UDP6, from_uaddr, to_uaddr};

use crate::rpc::Transport;

/// The owner recorded for the registrations this server makes for itself.
pub const SELF_OWNER: &str = "rnfsd";

/// The owner rpcbind records for a privileged caller, and who may remove anyone's registration.
pub const SUPERUSER: &str = "superuser";

/// Registrations made by callers, in total (rnfsd's own are not counted).
pub const MAX_REGISTRATIONS: usize = 256;

/// Registrations made by callers, per owner. rpcbind on a host running knfsd, mountd, statd and
/// lockd holds about 40, all the superuser's.
pub const MAX_PER_OWNER: usize = 64;

/// Longest netid kept ("tcp6", "ticotsord", "local" are the usual ones).
pub const MAX_NETID_LEN: usize = 32;

/// Longest universal address kept: an IPv6 one is at most 47 bytes, a local socket path 108.
pub const MAX_ADDR_LEN: usize = 128;

/// Why a SET was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetRefused {
    #[error("that program, version and netid is already registered")]
    Registered,
    #[error("rnfsd serves that program; no one else may register a version of it")]
    ServedByRnfsd,
    #[error("the netid is empty or longer than {MAX_NETID_LEN} bytes")]
    BadNetid,
    #[error("the address is longer than {MAX_ADDR_LEN} bytes")]
    AddressTooLong,
    #[error("the registry holds {MAX_REGISTRATIONS} registrations made by callers")]
    Full,
    #[error("this owner holds {MAX_PER_OWNER} registrations")]
    OwnerFull,
}

/// Why an UNSET was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsetRefused {
    #[error("nothing of that program and version is registered")]
    NotRegistered,
    #[error("it is rnfsd's own registration")]
    Rnfsd,
    #[error("it belongs to another owner")]
    NotOwner,
}

/// One registered service (the fields of RFC 1833 `rpcb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub prog: u32,
    pub vers: u32,
    /// "tcp", "udp", "tcp6" or "udp6" (any netid a client SETs is kept as given).
    pub netid: String,
    /// Universal address, e.g. "0.0.0.0.8.1".
    pub addr: String,
    pub owner: String,
}

impl Registration {
    /// The socket address of an `inet`/`inet6` registration.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        from_uaddr(&self.addr)
    }
}

/// Which versions a lookup accepts (rpcbind's `RPCB_ALLVERS` / `RPCB_ONEVERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// The exact version if registered, else any registered version of the program, so the
    /// client reaches the server and learns the supported range from PROG_MISMATCH (PMAP GETPORT,
    /// RPCBIND GETADDR).
    Any,
    /// Only the exact version (RPCBIND v4 GETVERSADDR).
    Exact,
}

/// The netid for a transport and address family.
pub fn netid(transport: Transport, ipv6: bool) -> &'static str {
    match (transport, ipv6) {
        (Transport::Tcp, false) => NETID_TCP,
        (Transport::Tcp, true) => NETID_TCP6,
        (Transport::Udp, false) => NETID_UDP,
        (Transport::Udp, true) => NETID_UDP6,
    }
}

/// The registrations, behind a mutex: the portmapper is called from worker threads.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<Vec<Registration>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Registration>> {
        // A panic while holding the lock cannot leave the Vec half-modified (every change is a
        // single push/retain), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers one of this server's own services, replacing any earlier registration of the
    /// same program, version and netid. An IPv4-mapped IPv6 address registers as IPv4.
    pub fn register(&self, prog: u32, vers: u32, transport: Transport, addr: SocketAddr) {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let netid = netid(transport, addr.is_ipv6());
        let mut entries = self.lock();
        entries.retain(|e| !(e.prog == prog && e.vers == vers && e.netid == netid));
        entries.push(Registration {
            prog,
            vers,
            netid: netid.to_string(),
            addr: to_uaddr(addr),
            owner: SELF_OWNER.to_string(),
        });
    }

    /// RPCBIND SET / PMAP SET semantics for a caller's registration (its owner already
    /// decided): adds it unless the same program, version and netid is already registered, the
    /// program is one of rnfsd's, or a bound would be exceeded.
    pub fn set(&self, reg: Registration) -> Result<(), SetRefused> {
        if reg.netid.is_empty() || reg.netid.len() > MAX_NETID_LEN {
            return Err(SetRefused::BadNetid);
        }
        if reg.addr.len() > MAX_ADDR_LEN {
            return Err(SetRefused::AddressTooLong);
        }
        let mut entries = self.lock();
        if entries.iter().any(|e| e.owner == SELF_OWNER && e.prog == reg.prog) {
            return Err(SetRefused::ServedByRnfsd);
        }
        if entries.iter().any(|e| e.prog == reg.prog && e.vers == reg.vers && e.netid == reg.netid) {
            return Err(SetRefused::Registered);
        }
        if entries.iter().filter(|e| e.owner != SELF_OWNER).count() >= MAX_REGISTRATIONS {
            return Err(SetRefused::Full);
        }
        if entries.iter().filter(|e| e.owner == reg.owner).count() >= MAX_PER_OWNER {
            return Err(SetRefused::OwnerFull);
        }
        entries.push(reg);
        Ok(())
    }

    /// RPCBIND UNSET / PMAP UNSET semantics: removes the program version on `netid`, or on every
    /// netid when `None`, if `owner` may remove every matching registration (it owns them, or it
    /// is the superuser and none is rnfsd's); otherwise removes nothing.
    pub fn unset(&self, prog: u32, vers: u32, netid: Option<&str>, owner: &str) -> Result<(), UnsetRefused> {
        let mut entries = self.lock();
        let matches =
            |e: &Registration| e.prog == prog && e.vers == vers && netid.is_none_or(|n| n == e.netid);
        let mut found = false;
        for e in entries.iter().filter(|e| matches(e)) {
            found = true;
            if e.owner == SELF_OWNER {
                return Err(UnsetRefused::Rnfsd);
            }
            if owner != SUPERUSER && e.owner != owner {
                return Err(UnsetRefused::NotOwner);
            }
        }
        if !found {
            return Err(UnsetRefused::NotRegistered);
        }
        entries.retain(|e| !matches(e));
        Ok(())
    }

    /// Finds the registration of `prog` on `netid`, preferring `vers` exactly (rpcbind's
    /// `find_service`).
    pub fn lookup(&self, prog: u32, vers: u32, netid: &str, versions: VersionMatch) -> Option<Registration> {
        let entries = self.lock();
        let mut candidates = entries.iter().filter(|e| e.prog == prog && e.netid == netid);
        let exact = candidates.clone().find(|e| e.vers == vers);
        match (exact, versions) {
            (Some(e), _) => Some(e.clone()),
            (None, VersionMatch::Any) => candidates.next().cloned(),
            (None, VersionMatch::Exact) => None,
        }
    }

    /// Every registration, in registration order.
    pub fn entries(&self) -> Vec<Registration> {
        self.lock().clone()
    }
}

/// Replaces a wildcard address in a registration's universal address with the address the
/// client reached us on, as rpcbind's `mergeaddr` does, so the client is told an address it can
/// use. Other addresses, and a local address of the other family, are left alone.
pub fn merge_addr(uaddr: &str, local: IpAddr) -> String {
    match from_uaddr(uaddr) {
        Some(a) if a.ip().is_unspecified() => {
            let local = local.to_canonical();
            if local.is_ipv4() == a.is_ipv4() {
                to_uaddr(SocketAddr::new(local, a.port()))
            } else {
                uaddr.to_string()
            }
        }
        _ => uaddr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_replaces_and_set_refuses_duplicates() {
        let r = Registry::new();
        r.register(100003, 3, Transport::Tcp, "0.0.0.0:2049".parse().unwrap());
        r.register(100003, 3, Transport::Tcp, "0.0.0.0:2050".parse().unwrap());
        assert_eq!(r.entries().len(), 1);
        assert_eq!(r.entries()[0].addr, "0.0.0.0.8.2");
        let dup = Registration {
            prog: 100003,
            vers: 3,
            netid: "tcp".into(),
            addr: "0.0.0.0.0.1".into(),
            owner: "x".into(),
        };
        assert_eq!(r.set(dup.clone()), Err(SetRefused::ServedByRnfsd));
        let other = Registration { prog: 300_000, ..dup };
        assert_eq!(r.set(other.clone()), Ok(()));
        assert_eq!(r.set(other.clone()), Err(SetRefused::Registered));
        assert_eq!(r.set(Registration { netid: "udp".into(), ..other }), Ok(()));
        assert_eq!(r.entries().len(), 3);
    }

    fn foreign(prog: u32, owner: &str) -> Registration {
        Registration { prog, vers: 1, netid: "tcp".into(), addr: "0.0.0.0.4.0".into(), owner: owner.into() }
    }

    #[test]
    fn set_is_bounded_in_count_per_owner_and_in_string_length() {
        let r = Registry::new();
        r.register(100003, 3, Transport::Tcp, "0.0.0.0:2049".parse().unwrap());
        let long = Registration { addr: "1".repeat(MAX_ADDR_LEN + 1), ..foreign(1, "7") };
        assert_eq!(r.set(long), Err(SetRefused::AddressTooLong));
        assert_eq!(
            r.set(Registration { netid: "n".repeat(MAX_NETID_LEN + 1), ..foreign(1, "7") }),
            Err(SetRefused::BadNetid)
        );
        assert_eq!(
            r.set(Registration { netid: String::new(), ..foreign(1, "7") }),
            Err(SetRefused::BadNetid)
        );
        for prog in 0..MAX_PER_OWNER as u32 {
            assert_eq!(r.set(foreign(1000 + prog, "7")), Ok(()));
        }
        assert_eq!(r.set(foreign(5000, "7")), Err(SetRefused::OwnerFull));
        for i in MAX_PER_OWNER..MAX_REGISTRATIONS {
            assert_eq!(r.set(foreign(20_000 + i as u32, &format!("{i}"))), Ok(()));
        }
        assert_eq!(r.set(foreign(9_999_999, "8")), Err(SetRefused::Full));
    }

    #[test]
    fn unset_needs_the_owner_or_the_superuser_and_never_removes_rnfsds() {
        let r = Registry::new();
        r.register(100003, 3, Transport::Tcp, "0.0.0.0:2049".parse().unwrap());
        r.set(foreign(300_000, "1000")).unwrap();
        r.set(Registration { netid: "udp".into(), ..foreign(300_000, "1000") }).unwrap();
        assert_eq!(r.unset(300_000, 1, None, "2000"), Err(UnsetRefused::NotOwner));
        assert_eq!(r.unset(300_000, 1, Some("udp"), "1000"), Ok(()));
        assert_eq!(r.unset(300_000, 1, Some("udp"), "1000"), Err(UnsetRefused::NotRegistered));
        assert_eq!(r.unset(300_000, 1, None, SUPERUSER), Ok(()));
        assert_eq!(r.unset(100003, 3, None, SUPERUSER), Err(UnsetRefused::Rnfsd));
        assert_eq!(r.entries().len(), 1);
    }

    #[test]
    fn mapped_ipv4_registers_as_ipv4() {
        let r = Registry::new();
        r.register(100005, 3, Transport::Udp, "[::ffff:127.0.0.1]:20048".parse().unwrap());
        assert_eq!(r.entries()[0].netid, "udp");
        assert_eq!(r.entries()[0].addr, "127.0.0.1.78.80");
        r.register(100005, 3, Transport::Udp, "[::]:20048".parse().unwrap());
        assert_eq!(r.entries()[1].netid, "udp6");
    }

    #[test]
    fn lookup_prefers_exact_version_and_falls_back_for_any() {
        let r = Registry::new();
        r.register(100005, 1, Transport::Tcp, "0.0.0.0:1".parse().unwrap());
        r.register(100005, 3, Transport::Tcp, "0.0.0.0:3".parse().unwrap());
        assert_eq!(r.lookup(100005, 3, "tcp", VersionMatch::Exact).unwrap().addr, "0.0.0.0.0.3");
        assert_eq!(r.lookup(100005, 2, "tcp", VersionMatch::Any).unwrap().addr, "0.0.0.0.0.1");
        assert_eq!(r.lookup(100005, 2, "tcp", VersionMatch::Exact), None);
        assert_eq!(r.lookup(100005, 3, "udp", VersionMatch::Any), None);
        assert_eq!(r.lookup(100227, 3, "tcp", VersionMatch::Any), None);
    }

    #[test]
    fn unset_by_netid_or_all() {
        let r = Registry::new();
        for netid in ["tcp", "udp"] {
            r.set(Registration {
                prog: 7,
                vers: 1,
                netid: netid.into(),
                addr: "0.0.0.0.0.7".into(),
                owner: SUPERUSER.into(),
            })
            .unwrap();
        }
        assert_eq!(r.unset(7, 1, Some("udp"), SUPERUSER), Ok(()));
        assert_eq!(r.unset(7, 1, Some("udp"), SUPERUSER), Err(UnsetRefused::NotRegistered));
        assert_eq!(r.entries().len(), 1);
        assert_eq!(r.unset(7, 1, None, SUPERUSER), Ok(()));
        assert!(r.entries().is_empty());
    }

    #[test]
    fn merge_addr_fills_wildcards_only() {
        let local4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(merge_addr("0.0.0.0.8.1", local4), "192.0.2.1.8.1");
        assert_eq!(merge_addr("0.0.0.0.8.1", "::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1.8.1");
        assert_eq!(merge_addr("10.0.0.1.8.1", local4), "10.0.0.1.8.1");
        assert_eq!(merge_addr("::.8.1", local4), "::.8.1");
        assert_eq!(merge_addr("::.8.1", "2001:db8::1".parse().unwrap()), "2001:db8::1.8.1");
        assert_eq!(merge_addr("/run/x.sock", local4), "/run/x.sock");
    }
}
