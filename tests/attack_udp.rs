//! UDP attacks and multi-homing, run by `scripts/attacks.sh` inside a private network namespace
//! (only `lo` up): the tests bind the wildcard address, which there reaches nothing but that
//! namespace's loopback.
//!
//! - A server bound to `0.0.0.0` (or `::`) answers each call from the address the call was sent
//!   to, not from the one the kernel would pick: on a multi-homed host clients drop replies from
//!   another address. `127.0.0.2` (on `lo` already) and `fd00::2` (added to `lo` by the test)
//!   stand in for a second address.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use rnfsd::config::Config;
use rnfsd::exports::ExportSpec;
use rnfsd::server::Server;
use rnfsd_test_support::{MOUNT, call_message};
use xdr::rpc::OpaqueAuth;

/// Panics unless this runs in a namespace whose only interface is `lo`, so a wildcard bind
/// cannot be reached from any real network.
fn assert_private_namespace() {
    // /proc/net is per network namespace (/sys/class/net is not remounted by unshare).
    let dev = std::fs::read_to_string("/proc/net/dev").expect("/proc/net/dev");
    let interfaces: Vec<&str> =
        dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "run me through scripts/attacks.sh (a namespace with only lo)");
}

/// A server on every address of the namespace (`bind`), NFS over UDP off as by default.
fn start(runtime: &tokio::runtime::Runtime, bind: IpAddr, dir: &std::path::Path) -> Server {
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    let mut cfg = Config::for_tests(
        vec![ExportSpec::shorthand(std::fs::canonicalize(&share).unwrap())],
        dir.join("state"),
    );
    cfg.bind = bind;
    runtime.block_on(Server::start(cfg)).expect("server starts")
}

fn mount_null(xid: u32) -> Vec<u8> {
    call_message(xid, MOUNT, 3, 0, &OpaqueAuth::none(), &[])
}

/// Sends a MOUNT NULL from `client` to `to` and returns where the reply came from.
fn reply_source(client: &str, to: SocketAddr, xid: u32) -> SocketAddr {
    let s = UdpSocket::bind(client).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&mount_null(xid), to).unwrap();
    let mut buf = [0u8; 512];
    let (n, from) = s.recv_from(&mut buf).expect("a reply");
    assert_eq!(&buf[..4], &xid.to_be_bytes(), "the reply to our call");
    assert!(n >= 24);
    from
}

#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn udp_replies_come_from_the_address_the_call_was_sent_to_ipv4() {
    assert_private_namespace();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let server = start(&runtime, IpAddr::from([0, 0, 0, 0]), tmp.path());
    let port = server.addrs().nfs_udp.port();
    for (i, dest) in ["127.0.0.2", "127.0.0.1", "127.1.2.3"].into_iter().enumerate() {
        let to = SocketAddr::new(dest.parse().unwrap(), port);
        let from = reply_source("127.0.0.1:0", to, 0x0a00 + i as u32);
        assert_eq!(from, to, "a call sent to {to} was answered from {from}");
    }
    runtime.block_on(server.shutdown());
}

/// IPv6, and IPv4 through a dual-stack `::` socket (v4-mapped). Needs IPv6 in the namespace;
/// without it the IPv6 half is skipped with a message.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn udp_replies_come_from_the_address_the_call_was_sent_to_ipv6() {
    assert_private_namespace();
    let added = std::process::Command::new("ip")
        .args(["-6", "addr", "add", "fd00::2/128", "dev", "lo", "nodad"])
        .status()
        .is_ok_and(|s| s.success());
    if !added {
        eprintln!("skipped: cannot add fd00::2 to lo (no IPv6 in this namespace?)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let server = start(&runtime, "::".parse().unwrap(), tmp.path());
    let port = server.addrs().nfs_udp.port();
    let cases =
        [("[::1]:0", "fd00::2"), ("[::1]:0", "::1"), ("[fd00::2]:0", "::1"), ("127.0.0.1:0", "127.0.0.2")];
    for (i, (client, dest)) in cases.into_iter().enumerate() {
        let to = SocketAddr::new(dest.parse().unwrap(), port);
        let from = reply_source(client, to, 0x0b00 + i as u32);
        assert_eq!(
            (from.ip().to_canonical(), from.port()),
            (to.ip(), port),
            "a call from {client} sent to {to} was answered from {from}"
        );
    }
    runtime.block_on(server.shutdown());
}
