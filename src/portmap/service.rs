//! The embedded portmapper as an [`RpcService`]: PMAP v2 and RPCBIND v3/v4 (RFC 1833) answered
//! from a [`Registry`] (the tables are `PMAP`, `RPCBIND3` and `RPCBIND4`).
//!
//! Who may change registrations follows rpcbind (`check_access`, `is_localroot`, `map_unset`):
//! SET and UNSET only from a loopback address and a privileged source port, which only root (or
//! CAP_NET_BIND_SERVICE) can bind; any local user can send from any other port and claim any
//! AUTH_SYS uid, so such calls are refused whatever they claim. rpcbind also accepts calls on its
//! AF_LOCAL socket, where the kernel vouches for the caller's uid; this portmapper has no local
//! socket. The owner recorded is "superuser", or the AUTH_SYS uid when a privileged caller claims
//! another one (it acts for that user). An owner may remove its own registrations, the superuser
//! anyone's but rnfsd's (see [`Registry`]).
//!
//! Over UDP, a reply of this portmapper is at most [`UDP_REPLY_MAX`] bytes, ten times the
//! smallest call, so it is useless for reflecting traffic at a forged source: DUMP and GETADDRLIST
//! list what fits (rnfsd's own services come first) and end the list there. Over TCP, where the
//! source address cannot be forged, lists are complete. rpcbind answers UDP DUMP with the whole
//! list (up to its 8800-byte send buffer); `rpcinfo -p` and `rpcinfo` ask over TCP anyway.
//!
//! The dispatcher it is registered with may serve NFS and MOUNT ports too; the portmapper then
//! answers only on its own port ([`PortmapService::serving_only_port`]), so its registrations
//! cannot be changed, nor its lists fetched, through port 2049.
//!
//! Indirect calls (PMAP CALLIT, RPCBIND CALLIT/BCAST/INDIRECT) answer PROC_UNAVAIL: a small UDP
//! request that makes the portmapper call another service is a traffic-amplification and
//! source-hiding vector, and rpcbind disables them for remote callers. The address-translation
//! procedures (UADDR2TADDR, TADDR2UADDR) are not served either: their `netbuf` carries a
//! host-byte-order `sockaddr`, meaningful only to a caller on the same machine architecture.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use xdr::Xdr;
use xdr::portmap::{
    NC_TPI_CLTS, NC_TPI_COTS_ORD, PROGRAM, RPCBSTAT_HIGHPROC, VERSION_PMAP, VERSION_RPCBIND3,
    VERSION_RPCBIND4, mapping, netid_for, netid_protocol, pmap_proc, pmaplist, rpcb, rpcb_entry,
    rpcb_entry_list, rpcb_proc, rpcb_stat, rpcb_stat_byvers, rpcblist, to_uaddr, uaddr,
};
use xdr::rpc::AuthFlavor;

use super::registry::{Registration, Registry, SUPERUSER, VersionMatch, merge_addr, netid};
use crate::rpc::DrcClass::{Idempotent, NonIdempotent};
use crate::rpc::RunOn::Inline;
use crate::rpc::program::LargestReply::Small;
use crate::rpc::program::{Procedure, Version, by_number, handler, null, row};
use crate::rpc::{CallContext, RpcError, RpcService, Transport};

/// The largest UDP reply: 10 times the smallest call (40 bytes: the call header with AUTH_NONE).
pub const UDP_REPLY_MAX: usize = 400;
// The transport's own bound on MOUNT and portmapper datagrams must leave room for this one and
// the accepted-reply header (24 bytes), or a full DUMP would turn into SYSTEM_ERR.
const _: () = assert!(UDP_REPLY_MAX + 24 <= crate::rpc::transport::BOUNDED_REPLY_MAX);

/// Where the kernel's privileged ports end unless `net.ipv4.ip_unprivileged_port_start` says
/// otherwise.
const DEFAULT_UNPRIVILEGED_PORT_START: u16 = 1024;

/// The portmapper program over a shared registry.
#[derive(Debug)]
pub struct PortmapService {
    registry: Arc<Registry>,
    stats: [VersionStats; 3],
    /// The local port calls must arrive on, when the dispatcher serves other ports too.
    port: Option<u16>,
    /// Source ports below this one can only be bound with privilege.
    unprivileged_port_start: u16,
}

/// What RPCBIND v4 GETSTAT reports for one version: calls per procedure and successful
/// SET/UNSET calls.
#[derive(Debug, Default)]
struct VersionStats {
    procs: [AtomicU32; RPCBSTAT_HIGHPROC],
    sets: AtomicU32,
    unsets: AtomicU32,
}

impl VersionStats {
    fn snapshot(&self) -> rpcb_stat {
        rpcb_stat {
            rpcbs_procs: std::array::from_fn(|i| self.procs[i].load(Ordering::Relaxed)),
            setinfo: self.sets.load(Ordering::Relaxed),
            unsetinfo: self.unsets.load(Ordering::Relaxed),
        }
    }
}

/// The GETADDRLIST description of a netid: semantics, protocol family and protocol.
fn transport_of(netid: &str) -> Option<(u32, &'static str, &'static str)> {
    match netid {
        "tcp" => Some((NC_TPI_COTS_ORD, "inet", "tcp")),
        "udp" => Some((NC_TPI_CLTS, "inet", "udp")),
        "tcp6" => Some((NC_TPI_COTS_ORD, "inet6", "tcp")),
        "udp6" => Some((NC_TPI_CLTS, "inet6", "udp")),
        _ => None,
    }
}

/// The kernel's first unprivileged port in this network namespace (containers often lower it,
/// down to 0, which leaves no port privileged).
pub(crate) fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_UNPRIVILEGED_PORT_START)
}

/// Fits an XDR linked list into what is left of a UDP reply of at most [`UDP_REPLY_MAX`] bytes
/// (each element costs its length plus a 4-byte "more" flag, the list a 4-byte end flag). Over
/// TCP the list is left whole.
fn fit_list<T: Xdr>(ctx: &CallContext, reply: &BytesMut, mut items: Vec<T>) -> Vec<T> {
    if ctx.transport != Transport::Udp {
        return items;
    }
    let mut room = UDP_REPLY_MAX.saturating_sub(reply.len() + 4);
    let fits = items
        .iter()
        .take_while(|item| match room.checked_sub(4 + item.encoded_len()) {
            Some(left) => {
                room = left;
                true
            }
            None => false,
        })
        .count();
    if fits < items.len() {
        tracing::debug!(peer = %ctx.peer, listed = fits, registered = items.len(),
            "portmap: UDP list cut to what fits in {UDP_REPLY_MAX} bytes");
        items.truncate(fits);
    }
    items
}

impl PortmapService {
    /// A portmapper answering on every port its dispatcher serves (a dispatcher of its own).
    pub fn new(registry: Arc<Registry>) -> Self {
        PortmapService {
            registry,
            stats: Default::default(),
            port: None,
            unprivileged_port_start: unprivileged_port_start(),
        }
    }

    /// Answers only calls that arrive on local port `port`; on the other ports of a shared
    /// dispatcher the program is unavailable.
    pub fn serving_only_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The owner a SET or UNSET acts as, or why the caller may change nothing: only a loopback
    /// caller from a privileged port (see the module documentation).
    fn changer(&self, ctx: &CallContext) -> Option<String> {
        let why = if !ctx.peer.ip().to_canonical().is_loopback() {
            "not a local caller"
        } else if ctx.peer.port() >= self.unprivileged_port_start {
            "an unprivileged source port, which any local user can send from"
        } else {
            return Some(match ctx.cred.flavor {
                AuthFlavor::Sys if ctx.cred.uid != 0 => ctx.cred.uid.to_string(),
                _ => SUPERUSER.to_string(),
            });
        };
        tracing::debug!(peer = %ctx.peer, "portmap: SET/UNSET refused: {why}");
        None
    }

    /// SET of a caller's registration. A refusal changed nothing, and marks the call refused.
    fn set(&self, ctx: &CallContext, reg: impl FnOnce(String) -> Option<Registration>) -> bool {
        let Some(reg) = self.changer(ctx).and_then(reg) else {
            ctx.refuse();
            return false;
        };
        let (prog, vers) = (reg.prog, reg.vers);
        match self.registry.set(reg) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!(peer = %ctx.peer, prog, vers, "portmap: SET refused: {why}");
                ctx.refuse();
                false
            }
        }
    }

    /// UNSET of registrations the caller may remove. A refusal marks the call refused.
    fn unset(&self, ctx: &CallContext, prog: u32, vers: u32, netid: Option<&str>) -> bool {
        let Some(owner) = self.changer(ctx) else {
            ctx.refuse();
            return false;
        };
        match self.registry.unset(prog, vers, netid, &owner) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!(peer = %ctx.peer, prog, vers, "portmap: UNSET refused: {why}");
                ctx.refuse();
                false
            }
        }
    }

    fn version_stats(&self, vers: u32) -> Option<&VersionStats> {
        self.stats.get(vers.checked_sub(VERSION_PMAP)? as usize)
    }

    /// Counts a successful SET or UNSET of version `vers` for GETSTAT.
    fn count_change(&self, vers: u32, set: bool, ok: bool) {
        if let (true, Some(s)) = (ok, self.version_stats(vers)) {
            if set { &s.sets } else { &s.unsets }.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// PMAP SET: registers a mapping for a caller allowed to (see [`Self::changer`]).
    fn pmap_set(&self, ctx: &CallContext, m: mapping) -> Result<bool, RpcError> {
        let ok = self.set(ctx, |owner| {
            let netid = netid_for(m.prot, false)?;
            let port = u16::try_from(m.port).ok()?;
            Some(Registration {
                prog: m.prog,
                vers: m.vers,
                netid: netid.to_string(),
                addr: to_uaddr(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
                owner,
            })
        });
        self.count_change(VERSION_PMAP, true, ok);
        Ok(ok)
    }

    /// PMAP UNSET ignores prot and port and removes the version on every transport.
    fn pmap_unset(&self, ctx: &CallContext, m: mapping) -> Result<bool, RpcError> {
        let ok = self.unset(ctx, m.prog, m.vers, None);
        self.count_change(VERSION_PMAP, false, ok);
        Ok(ok)
    }

    /// PMAP GETPORT: the port, or 0 for a program not registered.
    fn pmap_getport(&self, _: &CallContext, m: mapping) -> Result<u32, RpcError> {
        let port = netid_for(m.prot, false)
            .and_then(|n| self.registry.lookup(m.prog, m.vers, n, VersionMatch::Any))
            .and_then(|r| r.socket_addr())
            .map_or(0, |a| a.port());
        Ok(u32::from(port))
    }

    /// PMAP DUMP: the IPv4 registrations, as many as fit (see [`fit_list`]).
    fn pmap_dump(&self, ctx: &CallContext, (): (), reply: &mut BytesMut) {
        let list = self
            .registry
            .entries()
            .into_iter()
            .filter_map(|r| {
                let (prot, ipv6) = netid_protocol(&r.netid)?;
                let addr = r.socket_addr().filter(|_| !ipv6)?;
                Some(mapping { prog: r.prog, vers: r.vers, prot, port: u32::from(addr.port()) })
            })
            .collect();
        pmaplist(fit_list(ctx, reply, list)).encode(reply);
    }

    /// RPCBIND SET of version `VERS`. The owner the caller names is ignored: it is decided by who
    /// the caller is.
    fn rpcb_set<const VERS: u32>(&self, ctx: &CallContext, a: rpcb) -> Result<bool, RpcError> {
        let ok = self.set(ctx, |owner| {
            Some(Registration { prog: a.r_prog, vers: a.r_vers, netid: a.r_netid, addr: a.r_addr, owner })
        });
        self.count_change(VERS, true, ok);
        Ok(ok)
    }

    /// RPCBIND UNSET of version `VERS`: an empty netid removes the version on every transport.
    fn rpcb_unset<const VERS: u32>(&self, ctx: &CallContext, a: rpcb) -> Result<bool, RpcError> {
        let netid = Some(a.r_netid.as_str()).filter(|n| !n.is_empty());
        let ok = self.unset(ctx, a.r_prog, a.r_vers, netid);
        self.count_change(VERS, false, ok);
        Ok(ok)
    }

    /// RPCBIND GETADDR: the address of the program on the netid asked for, of any version.
    fn rpcb_getaddr(&self, ctx: &CallContext, a: rpcb) -> Result<uaddr, RpcError> {
        Ok(self.getaddr(ctx, &a, VersionMatch::Any))
    }

    /// RPCBIND GETVERSADDR (version 4): GETADDR of exactly the version asked for.
    fn rpcb_getversaddr(&self, ctx: &CallContext, a: rpcb) -> Result<uaddr, RpcError> {
        Ok(self.getaddr(ctx, &a, VersionMatch::Exact))
    }

    /// RPCBIND DUMP: every registration, as many as fit (see [`fit_list`]).
    fn rpcb_dump(&self, ctx: &CallContext, (): (), reply: &mut BytesMut) {
        let list = self
            .registry
            .entries()
            .into_iter()
            .map(|r| rpcb {
                r_prog: r.prog,
                r_vers: r.vers,
                r_netid: r.netid,
                r_addr: r.addr,
                r_owner: r.owner,
            })
            .collect();
        rpcblist(fit_list(ctx, reply, list)).encode(reply);
    }

    /// RPCBIND GETTIME: 32-bit seconds, which wrap in 2106.
    fn rpcb_gettime(&self, _: &CallContext, (): ()) -> Result<u32, RpcError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(now as u32)
    }

    /// RPCBIND GETADDRLIST (version 4), as many addresses as fit (see [`fit_list`]).
    fn rpcb_getaddrlist(&self, ctx: &CallContext, a: rpcb, reply: &mut BytesMut) {
        rpcb_entry_list(fit_list(ctx, reply, self.getaddrlist(ctx, &a))).encode(reply);
    }

    /// RPCBIND GETSTAT (version 4): the calls counted by [`RpcService::admit`] and the changes.
    fn rpcb_getstat(&self, _: &CallContext, (): ()) -> Result<rpcb_stat_byvers, RpcError> {
        Ok(rpcb_stat_byvers(std::array::from_fn(|i| self.stats[i].snapshot())))
    }

    /// GETADDRLIST: every address of exactly this program and version, on every transport.
    fn getaddrlist(&self, ctx: &CallContext, a: &rpcb) -> Vec<rpcb_entry> {
        self.registry
            .entries()
            .into_iter()
            .filter(|r| r.prog == a.r_prog && r.vers == a.r_vers)
            .filter_map(|r| {
                let (semantics, family, proto) = transport_of(&r.netid)?;
                Some(rpcb_entry {
                    r_maddr: merge_addr(&r.addr, ctx.local.ip()),
                    r_nc_netid: r.netid.clone(),
                    r_nc_semantics: semantics,
                    r_nc_protofmly: family.to_string(),
                    r_nc_proto: proto.to_string(),
                })
            })
            .collect()
    }

    /// GETADDR answers for the netid the client names, or for the transport it asked on when it
    /// names none; an empty string means "not registered".
    fn getaddr(&self, ctx: &CallContext, a: &rpcb, versions: VersionMatch) -> uaddr {
        let netid = if a.r_netid.is_empty() {
            netid(ctx.transport, !ctx.local.ip().to_canonical().is_ipv4())
        } else {
            a.r_netid.as_str()
        };
        match self.registry.lookup(a.r_prog, a.r_vers, netid, versions) {
            Some(r) => uaddr(merge_addr(&r.addr, ctx.local.ip())),
            None => uaddr(String::new()),
        }
    }
}

/// PMAP, version 2 (RFC 1833 §3). SET and UNSET change the registry, so the duplicate-request
/// cache replays them. Everything runs inline: the registry is in memory. CALLIT (5) has no row,
/// so it answers PROC_UNAVAIL (see the module documentation).
#[rustfmt::skip]
const PMAP: [Option<Procedure<PortmapService>>; 5] = {
    use pmap_proc::*;
    by_number(&[&[
        //  number   name       DRC            runs on  largest reply  handler
        row(NULL,    "NULL",    Idempotent,    Inline,  Small,         handler!(null)),
        row(SET,     "SET",     NonIdempotent, Inline,  Small,         handler!(PortmapService::pmap_set)),
        row(UNSET,   "UNSET",   NonIdempotent, Inline,  Small,         handler!(PortmapService::pmap_unset)),
        row(GETPORT, "GETPORT", Idempotent,    Inline,  Small,         handler!(PortmapService::pmap_getport)),
        row(DUMP,    "DUMP",    Idempotent,    Inline,  Small,         handler!(writes PortmapService::pmap_dump)),
    ]])
};

/// The procedures RPCBIND versions 3 and 4 share (RFC 1833 §2), for version `VERS`. CALLIT (5),
/// UADDR2TADDR (7) and TADDR2UADDR (8) have no row (see the module documentation).
#[rustfmt::skip]
const fn rpcbind<const VERS: u32>() -> [Procedure<PortmapService>; 6] {
    use rpcb_proc::*;
    [
        //  number   name       DRC            runs on  largest reply  handler
        row(NULL,    "NULL",    Idempotent,    Inline,  Small,         handler!(null)),
        row(SET,     "SET",     NonIdempotent, Inline,  Small,         handler!(PortmapService::rpcb_set::<VERS>)),
        row(UNSET,   "UNSET",   NonIdempotent, Inline,  Small,         handler!(PortmapService::rpcb_unset::<VERS>)),
        row(GETADDR, "GETADDR", Idempotent,    Inline,  Small,         handler!(PortmapService::rpcb_getaddr)),
        row(DUMP,    "DUMP",    Idempotent,    Inline,  Small,         handler!(writes PortmapService::rpcb_dump)),
        row(GETTIME, "GETTIME", Idempotent,    Inline,  Small,         handler!(PortmapService::rpcb_gettime)),
    ]
}

/// RPCBIND version 3.
const RPCBIND3: [Option<Procedure<PortmapService>>; 7] = by_number(&[&rpcbind::<VERSION_RPCBIND3>()]);

/// RPCBIND version 4: version 3's procedures and three more. INDIRECT (10) has no row.
#[rustfmt::skip]
const RPCBIND4: [Option<Procedure<PortmapService>>; 13] = {
    use rpcb_proc::*;
    by_number(&[&rpcbind::<VERSION_RPCBIND4>(), &[
        //  number       name           DRC         runs on  largest reply  handler
        row(GETVERSADDR, "GETVERSADDR", Idempotent, Inline,  Small,         handler!(PortmapService::rpcb_getversaddr)),
        row(GETADDRLIST, "GETADDRLIST", Idempotent, Inline,  Small,         handler!(writes PortmapService::rpcb_getaddrlist)),
        row(GETSTAT,     "GETSTAT",     Idempotent, Inline,  Small,         handler!(PortmapService::rpcb_getstat)),
    ]])
};

impl RpcService for PortmapService {
    const PROGRAM: u32 = PROGRAM;
    const NAME: &'static str = "portmap";
    const VERSIONS: &'static [Version<Self>] = &[
        Version { number: VERSION_PMAP, procedures: &PMAP },
        Version { number: VERSION_RPCBIND3, procedures: &RPCBIND3 },
        Version { number: VERSION_RPCBIND4, procedures: &RPCBIND4 },
    ];

    /// Only calls on the portmapper's own port, when it has one; counts each call for GETSTAT.
    fn admit(&self, ctx: &CallContext, vers: u32, proc_: u32) -> Result<(), RpcError> {
        if self.port.is_some_and(|p| p != ctx.local.port()) {
            // Nothing was done: the reply need not be kept by the duplicate-request cache.
            ctx.refuse();
            return Err(RpcError::ProgUnavail);
        }
        if let Some(counter) = self.version_stats(vers).and_then(|s| s.procs.get(proc_ as usize)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{Cred, DrcClass, Program, Transport};
    use bytes::Bytes;
    use xdr::Reader;
    use xdr::portmap::{IPPROTO_TCP, IPPROTO_UDP};

    fn ctx(peer: &str) -> CallContext {
        CallContext::new(
            1,
            peer.parse().unwrap(),
            "127.0.0.1:111".parse().unwrap(),
            Transport::Udp,
            Cred::sys(0, 0, vec![]),
        )
    }

    fn service() -> PortmapService {
        let reg = Arc::new(Registry::new());
        let any: SocketAddr = "0.0.0.0:2049".parse().unwrap();
        for t in [Transport::Tcp, Transport::Udp] {
            reg.register(100003, 3, t, any);
            reg.register(100005, 3, t, "0.0.0.0:20048".parse().unwrap());
            reg.register(100005, 1, t, "0.0.0.0:20048".parse().unwrap());
            reg.register(PROGRAM, 2, t, "0.0.0.0:111".parse().unwrap());
        }
        PortmapService::new(reg)
    }

    /// One call as the dispatcher makes it: the table lookup, the program's admission, the row's
    /// handler.
    fn run_call(
        s: &PortmapService,
        c: &CallContext,
        vers: u32,
        p: u32,
        args: &[u8],
    ) -> Result<Bytes, RpcError> {
        let mut out = BytesMut::new();
        s.procedure(vers, p).ok_or(RpcError::ProcUnavail)?;
        s.admit_call(c, vers, p)?;
        s.call(c, vers, p, &mut Reader::from_slice(args), &mut out)?;
        Ok(out.freeze())
    }

    fn getport(s: &PortmapService, prog: u32, vers: u32, prot: u32) -> u32 {
        let b = run_call(
            s,
            &ctx("127.0.0.1:900"),
            2,
            pmap_proc::GETPORT,
            &mapping { prog, vers, prot, port: 0 }.to_bytes(),
        );
        u32::from_bytes(&b.unwrap()).unwrap()
    }

    fn getaddr(s: &PortmapService, vers: u32, p: u32, prog: u32, pv: u32, netid: &str) -> String {
        let a = rpcb { r_prog: prog, r_vers: pv, r_netid: netid.into(), ..Default::default() };
        uaddr::from_bytes(&run_call(s, &ctx("127.0.0.1:900"), vers, p, &a.to_bytes()).unwrap()).unwrap().0
    }

    #[test]
    fn getport_registered_and_side_programs_unregistered() {
        let s = service();
        assert_eq!(getport(&s, 100003, 3, IPPROTO_TCP), 2049);
        assert_eq!(getport(&s, 100005, 3, IPPROTO_UDP), 20048);
        // NFS_ACL, NLM and LOCALIO are not served, so they must not look registered.
        for prog in [100227, 100021, 400122] {
            assert_eq!(getport(&s, prog, 3, IPPROTO_TCP), 0);
            assert_eq!(getaddr(&s, 4, rpcb_proc::GETADDR, prog, 3, "tcp"), "");
        }
        assert_eq!(getport(&s, 100003, 3, 132), 0);
    }

    #[test]
    fn getaddr_merges_wildcard_and_getversaddr_is_exact() {
        let s = service();
        assert_eq!(getaddr(&s, 3, rpcb_proc::GETADDR, 100003, 3, "tcp"), "127.0.0.1.8.1");
        assert_eq!(getaddr(&s, 4, rpcb_proc::GETADDR, 100003, 4, "tcp"), "127.0.0.1.8.1");
        assert_eq!(getaddr(&s, 4, rpcb_proc::GETVERSADDR, 100003, 4, "tcp"), "");
        assert_eq!(getaddr(&s, 4, rpcb_proc::GETVERSADDR, 100005, 1, "udp"), "127.0.0.1.78.80");
        assert_eq!(getaddr(&s, 4, rpcb_proc::GETADDR, 100003, 3, "tcp6"), "");
        // No netid: the transport the question arrived on (UDP in these tests).
        assert_eq!(getaddr(&s, 4, rpcb_proc::GETADDR, 100005, 3, ""), "127.0.0.1.78.80");
        // GETVERSADDR does not exist in version 3.
        let a = rpcb { r_prog: 100003, r_vers: 3, ..Default::default() }.to_bytes();
        assert_eq!(
            run_call(&s, &ctx("127.0.0.1:1"), 3, rpcb_proc::GETVERSADDR, &a),
            Err(RpcError::ProcUnavail)
        );
    }

    #[test]
    fn dump_v2_lists_ipv4_mappings() {
        let s = service();
        s.registry().register(100003, 3, Transport::Tcp, "[::]:2049".parse().unwrap());
        let b = run_call(&s, &ctx("10.0.0.9:5000"), 2, pmap_proc::DUMP, &[]).unwrap();
        let list = pmaplist::from_bytes(&b).unwrap().0;
        assert_eq!(list.len(), 8);
        assert!(list.contains(&mapping { prog: 100005, vers: 1, prot: IPPROTO_UDP, port: 20048 }));
        let mut tcp = ctx("10.0.0.9:5000");
        tcp.transport = Transport::Tcp;
        let b = run_call(&s, &tcp, 4, rpcb_proc::DUMP, &[]).unwrap();
        let list = rpcblist::from_bytes(&b).unwrap().0;
        assert_eq!(list.len(), 9);
        assert!(list.iter().any(|r| r.r_netid == "tcp6" && r.r_addr == "::.8.1" && r.r_owner == "rnfsd"));
        // Over UDP the list ends where the reply would pass its bound.
        let b = run_call(&s, &ctx("10.0.0.9:5000"), 4, rpcb_proc::DUMP, &[]).unwrap();
        assert!(b.len() <= UDP_REPLY_MAX, "{}", b.len());
        let udp_list = rpcblist::from_bytes(&b).unwrap().0;
        assert!(udp_list.len() < 9 && udp_list[..] == list[..udp_list.len()], "{}", udp_list.len());
    }

    #[test]
    fn changes_need_a_privileged_loopback_port_whatever_uid_is_claimed() {
        let s = service();
        let m = mapping { prog: 300000, vers: 1, prot: IPPROTO_TCP, port: 4000 }.to_bytes();
        let unprivileged = ctx("127.0.0.1:40000");
        assert_eq!(&run_call(&s, &unprivileged, 2, pmap_proc::SET, &m).unwrap()[..], &[0, 0, 0, 0]);
        assert!(unprivileged.was_refused());
        assert_eq!(getport(&s, 300000, 1, IPPROTO_TCP), 0);
        let un = mapping { prog: 100003, vers: 3, prot: 0, port: 0 }.to_bytes();
        assert_eq!(&run_call(&s, &unprivileged, 2, pmap_proc::UNSET, &un).unwrap()[..], &[0, 0, 0, 0]);
        // Nor can the superuser remove rnfsd's own registration.
        assert_eq!(
            &run_call(&s, &ctx("127.0.0.1:700"), 2, pmap_proc::UNSET, &un).unwrap()[..],
            &[0, 0, 0, 0]
        );
        assert_eq!(getport(&s, 100003, 3, IPPROTO_TCP), 2049);
    }

    #[test]
    fn serving_only_its_port_the_program_is_unavailable_elsewhere() {
        let s = service().serving_only_port(111);
        let mut on_nfs_port = ctx("127.0.0.1:700");
        on_nfs_port.local = "127.0.0.1:2049".parse().unwrap();
        let un = mapping { prog: 100003, vers: 3, prot: 0, port: 0 }.to_bytes();
        assert_eq!(run_call(&s, &on_nfs_port, 2, pmap_proc::UNSET, &un), Err(RpcError::ProgUnavail));
        assert_eq!(run_call(&s, &on_nfs_port, 2, pmap_proc::DUMP, &[]), Err(RpcError::ProgUnavail));
        assert!(on_nfs_port.was_refused());
        assert_eq!(getport(&s, 100003, 3, IPPROTO_TCP), 2049);
    }

    #[test]
    fn set_and_unset_only_from_loopback() {
        let s = service();
        let m = mapping { prog: 300000, vers: 1, prot: IPPROTO_TCP, port: 4000 }.to_bytes();
        let remote = ctx("192.0.2.7:700");
        assert_eq!(&run_call(&s, &remote, 2, pmap_proc::SET, &m).unwrap()[..], &[0, 0, 0, 0]);
        assert_eq!(getport(&s, 300000, 1, IPPROTO_TCP), 0);
        let local = ctx("[::ffff:127.0.0.1]:700");
        assert_eq!(&run_call(&s, &local, 2, pmap_proc::SET, &m).unwrap()[..], &[0, 0, 0, 1]);
        assert_eq!(getport(&s, 300000, 1, IPPROTO_TCP), 4000);
        // A second SET of the same program, version and protocol fails.
        assert_eq!(&run_call(&s, &local, 2, pmap_proc::SET, &m).unwrap()[..], &[0, 0, 0, 0]);
        assert_eq!(&run_call(&s, &remote, 2, pmap_proc::UNSET, &m).unwrap()[..], &[0, 0, 0, 0]);
        assert_eq!(getport(&s, 300000, 1, IPPROTO_TCP), 4000);
        assert_eq!(&run_call(&s, &local, 2, pmap_proc::UNSET, &m).unwrap()[..], &[0, 0, 0, 1]);
        assert_eq!(getport(&s, 300000, 1, IPPROTO_TCP), 0);
    }

    #[test]
    fn rpcbind_set_records_caller_as_owner() {
        let s = service();
        let a = rpcb {
            r_prog: 300001,
            r_vers: 2,
            r_netid: "udp".into(),
            r_addr: "127.0.0.1.3.232".into(),
            r_owner: "forged".into(),
        };
        let mut c = ctx("127.0.0.1:1000");
        c.cred = Cred::sys(1000, 1000, vec![]);
        assert_eq!(&run_call(&s, &c, 3, rpcb_proc::SET, &a.to_bytes()).unwrap()[..], &[0, 0, 0, 1]);
        let reg = s.registry().lookup(300001, 2, "udp", VersionMatch::Exact).unwrap();
        assert_eq!(reg.owner, "1000");
        assert_eq!(getport(&s, 300001, 2, IPPROTO_UDP), 1000);
        let un = rpcb { r_netid: String::new(), ..a };
        assert_eq!(
            &run_call(&s, &ctx("10.1.1.1:1"), 4, rpcb_proc::UNSET, &un.to_bytes()).unwrap()[..],
            &[0, 0, 0, 0]
        );
        assert_eq!(&run_call(&s, &c, 4, rpcb_proc::UNSET, &un.to_bytes()).unwrap()[..], &[0, 0, 0, 1]);
        assert_eq!(getport(&s, 300001, 2, IPPROTO_UDP), 0);
    }

    #[test]
    fn callit_and_unknown_procedures_are_unavailable() {
        let s = service();
        assert!(s.procedure(2, pmap_proc::CALLIT).is_none());
        assert!(s.procedure(3, rpcb_proc::CALLIT).is_none());
        assert!(s.procedure(4, rpcb_proc::INDIRECT).is_none());
        assert!(s.procedure(3, rpcb_proc::GETVERSADDR).is_none());
        assert!(s.procedure(4, rpcb_proc::GETVERSADDR).is_some());
        assert_eq!(s.procedure(2, pmap_proc::SET).unwrap().drc, DrcClass::NonIdempotent);
        assert_eq!(s.procedure(4, rpcb_proc::GETADDR).unwrap().drc, DrcClass::Idempotent);
        let c = ctx("127.0.0.1:1");
        assert_eq!(run_call(&s, &c, 2, pmap_proc::CALLIT, &[0; 16]), Err(RpcError::ProcUnavail));
        assert_eq!(run_call(&s, &c, 4, rpcb_proc::INDIRECT, &[]), Err(RpcError::ProcUnavail));
        assert!(run_call(&s, &c, 4, rpcb_proc::GETTIME, &[]).unwrap().len() == 4);
        assert_eq!(run_call(&s, &c, 2, pmap_proc::NULL, &[]).unwrap().len(), 0);
    }

    #[test]
    fn garbage_args() {
        let s = service();
        let c = ctx("127.0.0.1:1");
        assert_eq!(run_call(&s, &c, 2, pmap_proc::GETPORT, &[0, 0, 0]), Err(RpcError::GarbageArgs));
        assert_eq!(
            run_call(&s, &c, 3, rpcb_proc::GETADDR, &[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0]),
            Err(RpcError::GarbageArgs)
        );
    }

    /// Bytes after the arguments are garbage, as NFS has it: nothing runs on arguments client and
    /// server disagree about.
    #[test]
    fn bytes_after_the_arguments_are_garbage() {
        let s = service();
        let c = ctx("127.0.0.1:700");
        let m = mapping { prog: 300000, vers: 1, prot: IPPROTO_TCP, port: 4000 }.to_bytes();
        let r = rpcb {
            r_prog: 300000,
            r_vers: 1,
            r_netid: "tcp".into(),
            r_addr: "127.0.0.1.15.160".into(),
            ..Default::default()
        }
        .to_bytes();
        let no_args: &[u8] = &[];
        let pmap = [pmap_proc::NULL, pmap_proc::DUMP].map(|p| (2, p, no_args));
        let pmap_mapping = [pmap_proc::SET, pmap_proc::UNSET, pmap_proc::GETPORT].map(|p| (2, p, &m[..]));
        let rpcbind =
            [3, 4].map(|v| [rpcb_proc::NULL, rpcb_proc::DUMP, rpcb_proc::GETTIME].map(|p| (v, p, no_args)));
        let rpcbind_rpcb =
            [3, 4].map(|v| [rpcb_proc::SET, rpcb_proc::UNSET, rpcb_proc::GETADDR].map(|p| (v, p, &r[..])));
        let v4 = [
            (4, rpcb_proc::GETVERSADDR, &r[..]),
            (4, rpcb_proc::GETADDRLIST, &r[..]),
            (4, rpcb_proc::GETSTAT, no_args),
        ];
        let calls = pmap
            .iter()
            .chain(&pmap_mapping)
            .chain(rpcbind.iter().flatten())
            .chain(rpcbind_rpcb.iter().flatten());
        for &(vers, p, args) in calls.chain(&v4) {
            let longer = [args, &[0, 0, 0, 0]].concat();
            assert_eq!(run_call(&s, &c, vers, p, &longer), Err(RpcError::GarbageArgs), "v{vers} proc {p}");
        }
        assert_eq!(getport(&s, 300000, 1, IPPROTO_TCP), 0, "no SET ran");
    }

    #[test]
    fn getaddrlist_and_getstat() {
        let s = service();
        let c = ctx("127.0.0.1:1");
        let a = rpcb { r_prog: 100003, r_vers: 3, r_netid: "tcp".into(), ..Default::default() }.to_bytes();
        let list =
            rpcb_entry_list::from_bytes(&run_call(&s, &c, 4, rpcb_proc::GETADDRLIST, &a).unwrap()).unwrap();
        assert!(list.0.iter().any(|e| e.r_nc_netid == "tcp" && e.r_nc_semantics == NC_TPI_COTS_ORD));
        assert!(list.0.iter().any(|e| e.r_nc_netid == "udp" && e.r_nc_proto == "udp"));
        assert!(list.0.iter().all(|e| e.r_maddr.ends_with(".8.1")));
        let none = rpcb { r_prog: 100003, r_vers: 2, ..Default::default() }.to_bytes();
        let list = rpcb_entry_list::from_bytes(&run_call(&s, &c, 4, rpcb_proc::GETADDRLIST, &none).unwrap())
            .unwrap();
        assert!(list.0.is_empty());
        let stat =
            rpcb_stat_byvers::from_bytes(&run_call(&s, &c, 4, rpcb_proc::GETSTAT, &[]).unwrap()).unwrap();
        assert_eq!(stat.0[2].rpcbs_procs[rpcb_proc::GETADDRLIST as usize], 2);
        assert_eq!(stat.0[2].rpcbs_procs[rpcb_proc::GETSTAT as usize], 1);
        assert_eq!(run_call(&s, &c, 3, rpcb_proc::GETADDRLIST, &a), Err(RpcError::ProcUnavail));
    }
}
