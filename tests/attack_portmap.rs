//! Attacks on the embedded portmapper (issue 16, item 8): an unprivileged local process trying
//! to remove or redirect rnfsd's registrations, someone else's registration being removed, the
//! registry grown without bound, a small UDP call answered with a large list (reflection), and the
//! portmapper reached through the NFS port.
//!
//! Each test is `#[ignore]`d: `scripts/attacks.sh` runs them (as root, so privileged source ports
//! can be bound) inside a private network namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use bytes::Bytes;
use rnfsd::config::PortmapMode;
use rnfsd_test_support::*;
use xdr::Xdr;
use xdr::portmap::{IPPROTO_TCP, IPPROTO_UDP, mapping, pmap_proc, pmaplist, rpcb, rpcb_proc, rpcblist};
use xdr::rpc::{AcceptedStatus, OpaqueAuth};

const PMAP: u32 = PORTMAP;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// rnfsd with the embedded portmapper on an ephemeral port and MOUNT on its own port.
fn server() -> TestServer {
    TestServer::builder()
        .options("rw,insecure")
        .configure(|config| {
            config.portmap = PortmapMode::Embedded;
            config.portmap_port = 0;
            config.mount_port = Some(0);
        })
        .start()
}

fn portmap_addr(ts: &TestServer) -> SocketAddr {
    ts.server().addrs().portmap_udp.unwrap()
}

fn mount_port(ts: &TestServer) -> u16 {
    ts.server().addrs().mount_tcp.unwrap().port()
}

/// A UDP socket on loopback: on a privileged port (below 1024) or an ephemeral one.
fn udp_socket(privileged: bool) -> UdpSocket {
    let s =
        if privileged { net::udp_privileged(LOCALHOST) } else { UdpSocket::bind((LOCALHOST, 0)).unwrap() };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn next_xid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static XID: AtomicU32 = AtomicU32::new(0x0bad_0000);
    XID.fetch_add(1, Ordering::Relaxed)
}

/// One portmapper call over UDP; the results.
fn pm_udp(s: &UdpSocket, dst: SocketAddr, cred: &OpaqueAuth, vers: u32, proc_: u32, args: &[u8]) -> Bytes {
    let xid = next_xid();
    let reply = wire::udp_exchange(s, dst, &call_message(xid, PMAP, vers, proc_, cred, args));
    parse_reply(xid, &reply).expect("an accepted reply")
}

fn boolean(b: Bytes) -> bool {
    bool::from_bytes(&b).unwrap()
}

fn pmap_set(
    s: &UdpSocket,
    dst: SocketAddr,
    cred: &OpaqueAuth,
    prog: u32,
    vers: u32,
    prot: u32,
    port: u32,
) -> bool {
    let m = mapping { prog, vers, prot, port };
    boolean(pm_udp(s, dst, cred, 2, pmap_proc::SET, &m.to_bytes()))
}

fn pmap_unset(s: &UdpSocket, dst: SocketAddr, cred: &OpaqueAuth, prog: u32, vers: u32) -> bool {
    let m = mapping { prog, vers, prot: 0, port: 0 };
    boolean(pm_udp(s, dst, cred, 2, pmap_proc::UNSET, &m.to_bytes()))
}

fn rpcb_args(prog: u32, vers: u32, netid: &str, addr: &str) -> Vec<u8> {
    rpcb { r_prog: prog, r_vers: vers, r_netid: netid.into(), r_addr: addr.into(), r_owner: "forged".into() }
        .to_bytes()
        .to_vec()
}

fn rpcb_set(
    s: &UdpSocket,
    dst: SocketAddr,
    cred: &OpaqueAuth,
    prog: u32,
    vers: u32,
    netid: &str,
    addr: &str,
) -> bool {
    boolean(pm_udp(s, dst, cred, 4, rpcb_proc::SET, &rpcb_args(prog, vers, netid, addr)))
}

fn rpcb_unset(s: &UdpSocket, dst: SocketAddr, cred: &OpaqueAuth, prog: u32, vers: u32) -> bool {
    boolean(pm_udp(s, dst, cred, 4, rpcb_proc::UNSET, &rpcb_args(prog, vers, "", "")))
}

fn getport(dst: SocketAddr, prog: u32, vers: u32, prot: u32) -> u32 {
    let s = udp_socket(false);
    let m = mapping { prog, vers, prot, port: 0 };
    u32::from_bytes(&pm_udp(&s, dst, &OpaqueAuth::none(), 2, pmap_proc::GETPORT, &m.to_bytes())).unwrap()
}

/// The v4 DUMP over TCP, where the whole list is answered.
fn dump_tcp(dst: SocketAddr) -> Vec<rpcb> {
    let mut s = TcpStream::connect(dst).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let xid = next_xid();
    let msg = call_message(xid, PMAP, 4, rpcb_proc::DUMP, &OpaqueAuth::none(), &[]);
    rpcblist::from_bytes(&wire::tcp_call(&mut s, xid, &msg).unwrap()).unwrap().0
}

/// A TCP connection from a privileged port of 127.0.0.1.
fn connect_privileged(dst: SocketAddr) -> TcpStream {
    let s = net::connect_privileged(LOCALHOST, dst);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// From an unprivileged port of 127.0.0.1 (any local user), even claiming uid 0 in AUTH_SYS:
/// UNSET of NFS and MOUNT, SET of them to another port, and SET of a new program are all refused,
/// over PMAP v2 and RPCBIND v4, and the mappings stay as they were.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn an_unprivileged_local_caller_cannot_remove_or_redirect_nfs_and_mount() {
    let ts = server();
    let pm = portmap_addr(&ts);
    let nfs = u32::from(ts.addr().port());
    let mount = u32::from(mount_port(&ts));
    let s = udp_socket(false);
    let root = auth_sys(0, 0, &[]);
    assert!(!pmap_unset(&s, pm, &root, 100_003, 3), "PMAP UNSET of NFS accepted");
    assert!(!pmap_unset(&s, pm, &root, 100_005, 3), "PMAP UNSET of MOUNT accepted");
    assert!(!rpcb_unset(&s, pm, &root, 100_005, 1), "RPCBIND UNSET of MOUNT accepted");
    assert!(!pmap_set(&s, pm, &root, 100_003, 3, IPPROTO_TCP, 4444));
    assert!(!rpcb_set(&s, pm, &root, 100_005, 3, "udp", "127.0.0.1.17.92"));
    assert!(
        !rpcb_set(&s, pm, &root, 300_000, 1, "tcp", "127.0.0.1.17.92"),
        "an unprivileged SET was accepted"
    );
    assert_eq!(getport(pm, 100_003, 3, IPPROTO_TCP), nfs);
    assert_eq!(
        getport(pm, 100_003, 3, IPPROTO_UDP),
        0,
        "NFS over UDP is off by default, and no SET put it there"
    );
    for vers in [1, 3] {
        assert_eq!(getport(pm, 100_005, vers, IPPROTO_TCP), mount);
        assert_eq!(getport(pm, 100_005, vers, IPPROTO_UDP), mount);
    }
    assert_eq!(getport(pm, 300_000, 1, IPPROTO_TCP), 0);
}

/// A privileged local caller (source port below 1024) registers a program; the owner recorded
/// is the AUTH_SYS uid it claims. Another uid cannot remove it, nor can the same uid from an
/// unprivileged port; the owner and the superuser can. Nobody can remove or replace rnfsd's own
/// registrations, or register another version of a program rnfsd serves.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn a_registration_can_be_removed_only_by_its_owner_or_the_superuser() {
    let ts = server();
    let pm = portmap_addr(&ts);
    let privileged = udp_socket(true);
    let unprivileged = udp_socket(false);
    let (u1000, u2000, root) = (auth_sys(1000, 1000, &[]), auth_sys(2000, 2000, &[]), auth_sys(0, 0, &[]));

    assert!(rpcb_set(&privileged, pm, &u1000, 300_100, 1, "tcp", "127.0.0.1.16.0"));
    assert_eq!(getport(pm, 300_100, 1, IPPROTO_TCP), 4096);
    let owner = |ts: &TestServer| {
        dump_tcp(portmap_addr(ts)).into_iter().find(|r| r.r_prog == 300_100).map(|r| r.r_owner)
    };
    assert_eq!(owner(&ts).as_deref(), Some("1000"));
    assert!(!rpcb_unset(&privileged, pm, &u2000, 300_100, 1), "uid 2000 removed uid 1000's registration");
    assert!(!pmap_unset(&privileged, pm, &u2000, 300_100, 1), "uid 2000 removed uid 1000's registration");
    assert!(!rpcb_unset(&unprivileged, pm, &u1000, 300_100, 1), "an unprivileged port passed as uid 1000");
    assert_eq!(getport(pm, 300_100, 1, IPPROTO_TCP), 4096);
    assert!(rpcb_unset(&privileged, pm, &u1000, 300_100, 1));
    assert_eq!(getport(pm, 300_100, 1, IPPROTO_TCP), 0);

    assert!(pmap_set(&privileged, pm, &u1000, 300_101, 1, IPPROTO_UDP, 4097));
    assert!(
        pmap_unset(&privileged, pm, &root, 300_101, 1),
        "the superuser may remove any foreign registration"
    );
    assert_eq!(getport(pm, 300_101, 1, IPPROTO_UDP), 0);

    let nfs = u32::from(ts.addr().port());
    assert!(!pmap_unset(&privileged, pm, &root, 100_003, 3), "rnfsd's NFS registration was removed");
    assert!(!rpcb_unset(&privileged, pm, &root, PMAP, 2), "the portmapper's own registration was removed");
    assert!(
        !pmap_set(&privileged, pm, &root, 100_003, 4, IPPROTO_TCP, 4444),
        "another NFS version was registered"
    );
    assert_eq!(getport(pm, 100_003, 3, IPPROTO_TCP), nfs);
    assert_eq!(getport(pm, PMAP, 2, IPPROTO_UDP), u32::from(pm.port()));
}

/// 20,000 SETs of distinct programs from a privileged port, and a few with oversized strings:
/// the registry stays within its bound on entries and on the length of what it stores.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn twenty_thousand_sets_leave_the_registry_bounded() {
    let ts = server();
    let pm = portmap_addr(&ts);
    let own = dump_tcp(pm).len();
    let s = udp_socket(true);
    let cred = auth_sys(1000, 1000, &[]);
    let mut accepted = 0;
    for i in 0..20_000u32 {
        if pmap_set(&s, pm, &cred, 400_000 + i, 1, IPPROTO_TCP, 5000) {
            accepted += 1;
        }
    }
    let list = dump_tcp(pm);
    eprintln!(
        "{accepted} of 20000 SETs accepted; the registry holds {} entries ({own} of rnfsd's)",
        list.len()
    );
    assert!(list.len() <= own + 256, "the registry grew to {} entries", list.len());
    let root = auth_sys(0, 0, &[]);
    assert!(!rpcb_set(&s, pm, &root, 500_000, 1, "tcp", &"9".repeat(1000)), "a 1000-byte address was kept");
    assert!(
        !rpcb_set(&s, pm, &root, 500_001, 1, &"n".repeat(200), "127.0.0.1.1.1"),
        "a 200-byte netid was kept"
    );
    let list = dump_tcp(pm);
    assert!(list.len() <= own + 256, "the registry grew to {} entries", list.len());
    assert!(list.iter().all(|r| r.r_addr.len() <= 128 && r.r_netid.len() <= 32));
}

/// After the registry is filled with the longest registrations it accepts, a 40-byte UDP call
/// (AUTH_NONE) of DUMP (v2, v3, v4) or GETADDRLIST is answered with at most 10 times its size.
/// The v2 DUMP over UDP still lists rnfsd's own services.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn a_small_udp_call_cannot_be_answered_with_a_large_reply() {
    let ts = server();
    let pm = portmap_addr(&ts);
    let privileged = udp_socket(true);
    let root = auth_sys(0, 0, &[]);
    let long_addr = format!("127.0.0.1.{}", "1".repeat(100));
    for netid in ["tcp", "udp", "tcp6", "udp6"] {
        rpcb_set(&privileged, pm, &root, 1_100_003, 1, netid, &long_addr);
    }
    // Several owners, to reach the bound on the whole registry.
    for i in 0..300u32 {
        rpcb_set(&privileged, pm, &auth_sys(1000 + i % 8, 0, &[]), 600_000 + i, 1, "tcp", &long_addr);
    }
    eprintln!("the registry holds {} entries", dump_tcp(pm).len());
    // A few padded SETs, as the attacker sent.
    for i in 0..5u32 {
        rpcb_set(&privileged, pm, &root, 700_000 + i, 1, "tcp", &"7".repeat(1000));
    }
    let attacker = udp_socket(false);
    let mut worst: f64 = 0.0;
    for (vers, proc_, args) in [
        (2, pmap_proc::DUMP, Vec::new()),
        (3, rpcb_proc::DUMP, Vec::new()),
        (4, rpcb_proc::DUMP, Vec::new()),
        (4, rpcb_proc::GETADDRLIST, rpcb_args(1_100_003, 1, "", "")),
    ] {
        let xid = next_xid();
        let msg = call_message(xid, PMAP, vers, proc_, &OpaqueAuth::none(), &args);
        let reply = wire::udp_exchange(&attacker, pm, &msg);
        let factor = reply.len() as f64 / msg.len() as f64;
        eprintln!("v{vers} proc {proc_}: {} bytes asked, {} answered: x{factor:.1}", msg.len(), reply.len());
        worst = worst.max(factor);
        assert!(parse_reply(xid, &reply).is_ok());
        if vers == 2 {
            assert_eq!(msg.len(), 40);
            let list = pmaplist::from_bytes(&parse_reply(xid, &reply).unwrap()).unwrap().0;
            assert!(list.contains(&mapping {
                prog: 100_003,
                vers: 3,
                prot: IPPROTO_TCP,
                port: u32::from(ts.addr().port())
            }));
        }
    }
    assert!(worst <= 10.0, "a UDP reply was {worst:.1} times its call");
}

/// The portmapper answers only on its own port. Through the NFS port (here from a privileged
/// local port, which may change registrations on the portmapper's port) its program is
/// unavailable, so its own registration cannot be removed there.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn the_portmapper_is_not_served_on_the_nfs_port() {
    let ts = server();
    let pm = portmap_addr(&ts);
    let mut s = connect_privileged(ts.addr());
    let root = auth_sys(0, 0, &[]);
    for (vers, proc_, args) in [
        (2, pmap_proc::UNSET, mapping { prog: PMAP, vers: 2, prot: 0, port: 0 }.to_bytes().to_vec()),
        (4, rpcb_proc::UNSET, rpcb_args(PMAP, 4, "", "")),
        (2, pmap_proc::DUMP, Vec::new()),
    ] {
        let xid = next_xid();
        let msg = call_message(xid, PMAP, vers, proc_, &root, &args);
        assert_eq!(
            wire::tcp_call(&mut s, xid, &msg),
            Err(RpcFailure::Accepted(AcceptedStatus::ProgUnavail)),
            "portmapper v{vers} proc {proc_} answered on the NFS port"
        );
    }
    assert_eq!(getport(pm, PMAP, 2, IPPROTO_UDP), u32::from(pm.port()));
    assert_eq!(getport(pm, PMAP, 4, IPPROTO_TCP), u32::from(pm.port()));
}
