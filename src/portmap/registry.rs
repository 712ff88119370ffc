//! The table of registered services an embedded portmapper answers from: (program, version, netid)
//! → universal address and owner, with rpcbind's lookup rules.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use xdr::portmap::{NETID_TCP, NETID_TCP6, NETID_UDP, NETID_UDP6, from_uaddr, to_uaddr};

use crate::rpc::Transport;

/// The owner recorded for the registrations this server makes for itself.
pub const SELF_OWNER: &str = "rnfsd";

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

    /// RPCBIND SET / PMAP SET semantics: adds the registration unless the same program, version
    /// and netid is already registered (then `false`).
    pub fn set(&self, reg: Registration) -> bool {
        let mut entries = self.lock();
        if entries.iter().any(|e| e.prog == reg.prog && e.vers == reg.vers && e.netid == reg.netid) {
            return false;
        }
        entries.push(reg);
        true
    }

    /// RPCBIND UNSET / PMAP UNSET semantics: removes the program version on `netid`, or on every
    /// netid when `None`. `true` when something was removed.
    pub fn unset(&self, prog: u32, vers: u32, netid: Option<&str>) -> bool {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|e| !(e.prog == prog && e.vers == vers && netid.is_none_or(|n| n == e.netid)));
        entries.len() != before
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
        assert!(!r.set(dup.clone()));
        assert!(r.set(Registration { netid: "udp".into(), ..dup }));
        assert_eq!(r.entries().len(), 2);
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
        for t in [Transport::Tcp, Transport::Udp] {
            r.register(7, 1, t, "0.0.0.0:7".parse().unwrap());
        }
        assert!(r.unset(7, 1, Some("udp")));
        assert!(!r.unset(7, 1, Some("udp")));
        assert_eq!(r.entries().len(), 1);
        assert!(r.unset(7, 1, None));
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
