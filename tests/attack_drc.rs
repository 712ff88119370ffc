//! Attacks on the duplicate-request cache (issue 16, item 7). The cache keeps the replies of
//! non-idempotent calls so that a retransmission (a REMOVE whose reply was lost) gets the original
//! answer instead of running again. These tests try to make it forget a legitimate client's
//! entries (a flood of refused calls from an address no export lists, a flood of valid calls from
//! another listed client) and to make it hand a cached reply to a caller it does not belong to
//! (another uid, an unprivileged port on a `secure` export).
//!
//! Each test is `#[ignore]`d: `scripts/attacks.sh` runs them inside a private network namespace,
//! where 127.0.0.2 and 127.0.0.3 are the attackers' addresses.

use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use rnfsd::config::Limits;
use rnfsd::rpc::drc::DrcConfig;
use rnfsd_test_support::*;
use xdr::Xdr;
use xdr::nfs3::*;

/// A server whose one export carries the client rules `rules`, e.g.
/// `127.0.0.1(rw,insecure,no_root_squash)`.
fn server_for(rules: &str, limits: Limits) -> TestServer {
    TestServer::builder().clients(rules).limits(limits).start()
}

/// A cache small enough that the floods below overflow it many times over in a few seconds.
fn small_cache() -> Limits {
    Limits {
        drc: DrcConfig { max_entries: 4096, max_bytes: 4 << 20, ..DrcConfig::default() },
        ..Limits::default()
    }
}

/// A TCP connection to `dst` from address `src` (port 0: any; else that port).
fn connect_from(src: SocketAddr, dst: SocketAddr) -> TcpStream {
    let s = net::connect_from(src, dst).unwrap_or_else(|e| panic!("connect {src} -> {dst}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A connection from a privileged port of `src` (tests run as root).
fn connect_privileged(src: IpAddr, dst: SocketAddr) -> TcpStream {
    let s = net::connect_privileged(src, dst);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// One call on `s`; the reply's results.
fn call(s: &mut TcpStream, xid: u32, cred: &xdr::rpc::OpaqueAuth, proc_: u32, args: &[u8]) -> Bytes {
    call_prog(s, xid, cred, NFS, 3, proc_, args)
}

fn call_prog(
    s: &mut TcpStream,
    xid: u32,
    cred: &xdr::rpc::OpaqueAuth,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
) -> Bytes {
    let msg = call_message(xid, prog, vers, proc_, cred, args);
    wire::tcp_call(s, xid, &msg).expect("an accepted reply")
}

fn mount_on(s: &mut TcpStream, ts: &TestServer) -> nfs_fh3 {
    let args = xdr::mount::dirpath(Bytes::copy_from_slice(ts.export_path().to_str().unwrap().as_bytes()));
    let body = call_prog(s, 0x5eed, &auth_sys(0, 0, &[]), MOUNT, 3, 1, &args.to_bytes());
    match xdr::mount::mountres3::from_bytes(&body).unwrap() {
        xdr::mount::mountres3::Ok(ok) => nfs_fh3(ok.fhandle),
        xdr::mount::mountres3::Err(e) => panic!("MNT: {e:?}"),
    }
}

/// Sends `calls` records pipelined on a connection from `src` and reads every reply; returns the
/// status word of each reply's results.
fn flood(dst: SocketAddr, src: IpAddr, calls: Vec<Vec<u8>>) -> Vec<u32> {
    let stream = connect_from(SocketAddr::new(src, 0), dst);
    let n = calls.len();
    let writer = {
        let mut out = BufWriter::with_capacity(1 << 16, stream.try_clone().unwrap());
        std::thread::spawn(move || {
            for msg in calls {
                out.write_all(&record(&msg)).unwrap();
            }
            out.flush().unwrap();
        })
    };
    let mut stream = stream;
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        let reply = read_record(&mut stream).expect("a reply to every flood call");
        let xid = reply_xid(&reply);
        let body = parse_reply(xid, &reply).expect("accepted");
        statuses.push(u32::from_be_bytes(body[..4].try_into().unwrap()));
    }
    writer.join().unwrap();
    statuses
}

fn remove_status(body: &Bytes) -> nfsstat3 {
    REMOVE3res::from_bytes(body).unwrap().status()
}

const ATTACKER_UNLISTED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
const ATTACKER_LISTED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

/// A legitimate REMOVE whose reply is lost, then 20,000 SETATTRs with forged handles from an
/// address no export lists (five times the cache's entries), then the retransmission of the
/// REMOVE on a new connection: it must get the original success, not NOENT. The refused calls
/// take no room in the cache at all.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn refused_calls_from_an_unlisted_host_do_not_flush_a_legitimate_entry() {
    let ts = server_for("127.0.0.1(rw,insecure,no_root_squash)", small_cache());
    let (mut c, root) = ts.client();
    c.create_file(&root, "victim");
    let xid = c.fresh_xid();
    let args = REMOVE3args { object: dirop(&root, "victim") }.to_bytes();
    let first = c.call_xid(xid, NFS, 3, procs::REMOVE, &args).unwrap();
    assert_eq!(remove_status(&first), nfsstat3::NFS3_OK);
    let before = ts.stats().drc;

    let cred = auth_sys(0, 0, &[]);
    let calls: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let mut fh = vec![0xa5u8; 32];
            fh[..4].copy_from_slice(&i.to_be_bytes());
            let a = SETATTR3args {
                object: nfs_fh3(Bytes::from(fh)),
                new_attributes: sattr3 { mode: Some(0o777), ..Default::default() },
                guard: None,
            };
            call_message(0x1000_0000 + i, NFS, 3, procs::SETATTR, &cred, &a.to_bytes())
        })
        .collect();
    let statuses = flood(ts.addr(), ATTACKER_UNLISTED, calls);
    assert!(
        statuses
            .iter()
            .all(|&s| s == nfsstat3::NFS3ERR_BADHANDLE as u32 || s == nfsstat3::NFS3ERR_ACCES as u32),
        "every forged SETATTR is refused"
    );
    let after = ts.stats().drc;
    eprintln!("cache before the flood {before:?}, after {after:?}");

    let mut again = Client::tcp(ts.addr());
    let replayed = again.call_xid(xid, NFS, 3, procs::REMOVE, &args).unwrap();
    assert_eq!(remove_status(&replayed), nfsstat3::NFS3_OK, "the retransmitted REMOVE ran again");
    assert_eq!(ts.stats().drc.hits, after.hits + 1);
    assert!(after.entries <= before.entries, "refused calls took cache entries: {before:?} -> {after:?}");
}

/// The same, but the flooder is a listed client sending 20,000 valid non-idempotent calls
/// (REMOVEs of names that do not exist): it fills its own share of the cache and evicts its own
/// entries, never the other client's.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn a_listed_client_flooding_valid_calls_does_not_evict_another_clients_entries() {
    let rules = "127.0.0.1(rw,insecure,no_root_squash) 127.0.0.3(rw,insecure,no_root_squash)";
    let ts = server_for(rules, small_cache());
    let (mut c, root) = ts.client();
    let mut removes = Vec::new();
    for n in 0..3 {
        let name = format!("victim-{n}");
        c.create_file(&root, &name);
        let xid = c.fresh_xid();
        let args = REMOVE3args { object: dirop(&root, &name) }.to_bytes();
        assert_eq!(remove_status(&c.call_xid(xid, NFS, 3, procs::REMOVE, &args).unwrap()), nfsstat3::NFS3_OK);
        removes.push((xid, args));
    }

    let mut attacker = connect_from(SocketAddr::new(ATTACKER_LISTED, 0), ts.addr());
    let attacker_root = mount_on(&mut attacker, &ts);
    drop(attacker);
    let cred = auth_sys(0, 0, &[]);
    let calls: Vec<Vec<u8>> = (0..20_000u32)
        .map(|i| {
            let a = REMOVE3args { object: dirop(&attacker_root, &format!("absent-{i}")) };
            call_message(0x2000_0000 + i, NFS, 3, procs::REMOVE, &cred, &a.to_bytes())
        })
        .collect();
    let statuses = flood(ts.addr(), ATTACKER_LISTED, calls);
    assert!(statuses.iter().all(|&s| s == nfsstat3::NFS3ERR_NOENT as u32));
    let s = ts.stats().drc;
    eprintln!("cache after the flood: {s:?}");
    assert!(s.evictions >= 20_000 - 4096, "the flood overflowed the cache: {s:?}");

    let mut again = Client::tcp(ts.addr());
    for (xid, args) in &removes {
        let replayed = again.call_xid(*xid, NFS, 3, procs::REMOVE, args).unwrap();
        assert_eq!(remove_status(&replayed), nfsstat3::NFS3_OK, "a retransmitted REMOVE ran again");
    }
}

/// A call with the xid and arguments of a cached one but another AUTH_SYS uid is not answered
/// from the cache: it runs (here MKDIR answers EXIST).
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn a_replay_under_another_uid_is_not_answered_from_the_cache() {
    let ts = server_for("127.0.0.1(rw,insecure,no_root_squash)", Limits::default());
    let (mut c, root) = ts.client();
    let xid = c.fresh_xid();
    let args = MKDIR3args { where_: dirop(&root, "d"), attributes: sattr3::default() }.to_bytes();
    let status = |body: Bytes| MKDIR3res::from_bytes(&body).unwrap().status();
    assert_eq!(status(c.call_xid(xid, NFS, 3, procs::MKDIR, &args).unwrap()), nfsstat3::NFS3_OK);
    let hits = ts.stats().drc.hits;

    let mut other = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 1000, &[]));
    assert_eq!(
        status(other.call_xid(xid, NFS, 3, procs::MKDIR, &args).unwrap()),
        nfsstat3::NFS3ERR_EXIST,
        "uid 1000 got uid 0's cached reply"
    );
    assert_eq!(ts.stats().drc.hits, hits);
    // The owner's own retransmission, on a new connection, still gets its reply.
    let mut owner = Client::tcp(ts.addr());
    assert_eq!(status(owner.call_xid(xid, NFS, 3, procs::MKDIR, &args).unwrap()), nfsstat3::NFS3_OK);
    assert_eq!(ts.stats().drc.hits, hits + 1);
}

/// On a `secure` export a call from a privileged port is cached; the same xid, arguments and
/// credential from an unprivileged port of the same host (any local user there) must be refused
/// as `secure` refuses it, not answered with the privileged caller's reply.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn a_replay_from_an_unprivileged_port_does_not_bypass_secure() {
    let ts = server_for("127.0.0.1(rw,secure,no_root_squash)", Limits::default());
    let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let mut privileged = connect_privileged(local, ts.addr());
    let root = mount_on(&mut privileged, &ts);
    let cred = auth_sys(0, 0, &[]);
    let xid = 0x7e57_0001;
    let args = MKDIR3args { where_: dirop(&root, "d"), attributes: sattr3::default() }.to_bytes();
    let status = |body: Bytes| MKDIR3res::from_bytes(&body).unwrap().status();
    assert_eq!(status(call(&mut privileged, xid, &cred, procs::MKDIR, &args)), nfsstat3::NFS3_OK);

    let mut unprivileged = connect_from(SocketAddr::new(local, 0), ts.addr());
    assert_eq!(
        status(call(&mut unprivileged, xid, &cred, procs::MKDIR, &args)),
        nfsstat3::NFS3ERR_PERM,
        "an unprivileged port got the privileged caller's cached reply"
    );
    // A retransmission from another privileged port (a reconnect) still hits.
    drop(privileged);
    let mut reconnected = connect_privileged(local, ts.addr());
    assert_eq!(status(call(&mut reconnected, xid, &cred, procs::MKDIR, &args)), nfsstat3::NFS3_OK);
}
