//! The duplicate-request cache under injected faults. Each non-idempotent procedure's reply is
//! lost by the fault proxy (rnfsd-faultproxy), which also drops the connection; the client
//! retransmits the same xid and bytes on a new connection and must get the original success, with
//! exactly one effect on disk and the server's counters showing one execution and one cache hit.
//! Then: a retransmission that arrives while the original is still executing (parked, answered,
//! executed once), the same over UDP, the cache's bounds under 100,000 distinct calls, and expiry.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rnfsd::config::Limits;
use rnfsd::rpc::drc::DrcConfig;
use rnfsd::rpc::stats::StatsSnapshot;
use rnfsd_faultproxy::{Action, FaultProxy, Rule};
use rnfsd_test_support::*;
use xdr::Xdr;
use xdr::nfs3::*;

/// A server with a fault proxy in front of it, and the export's root handle.
struct Rig {
    proxy: FaultProxy,
    ts: TestServer,
    root: nfs_fh3,
}

impl Rig {
    fn tcp() -> Rig {
        Rig::new(TestServer::rw(), false)
    }

    fn udp() -> Rig {
        Rig::new(TestServer::rw().with_nfs_over_udp(), true)
    }

    fn new(ts: TestServer, udp: bool) -> Rig {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let proxy = if udp {
            ts.runtime().block_on(FaultProxy::start_udp(listen, ts.udp_addr()))
        } else {
            ts.runtime().block_on(FaultProxy::start(listen, ts.addr()))
        }
        .expect("the proxy starts");
        let (_, root) = ts.client();
        Rig { proxy, ts, root }
    }

    /// A direct client for setting up and checking.
    fn client(&self) -> Client {
        Client::tcp(self.ts.addr())
    }
}

/// What the server counted between two snapshots, for one NFS procedure.
struct Delta {
    calls: u64,
    executed: u64,
    hits: u64,
    parked: u64,
}

fn delta(before: &StatsSnapshot, after: &StatsSnapshot, proc_: u32) -> Delta {
    Delta {
        calls: after.calls_to(NFS, 3, proc_) - before.calls_to(NFS, 3, proc_),
        executed: after.drc.misses - before.drc.misses,
        hits: after.drc.hits - before.drc.hits,
        parked: after.drc.parked - before.drc.parked,
    }
}

/// Sends one NFS call through the proxy armed to lose its reply and drop the connection, then
/// retransmits the very same bytes (same xid) on a new connection, as a client does after a
/// reconnect. Returns the retransmission's result body, after checking that the fault fired, that
/// the server saw two calls, executed one, and answered the other from the cache.
fn lose_reply_then_retransmit<A: Xdr>(rig: &Rig, proc_: u32, args: &A) -> Bytes {
    rig.proxy.add_rule(Rule::new(Action::DropReplyClose, Some(proc_)));
    let before = rig.ts.stats();
    let mut first = Client::tcp(rig.proxy.addr());
    let xid = first.fresh_xid();
    let msg = call_message(xid, NFS, 3, proc_, &first.cred.clone(), &args.to_bytes());
    first.send_raw(&record(&msg));
    assert_eq!(first.read_reply(), None, "the proxy loses the reply and closes the connection");
    let fired = rig.proxy.fired();
    assert!(
        fired.iter().any(|e| e.call.xid == xid && e.fired() == Some(Action::DropReplyClose)),
        "the fault fired on xid {xid:#x}: {fired:?}"
    );

    let mut again = Client::tcp(rig.proxy.addr());
    again.send_raw(&record(&msg));
    let reply = again.read_reply().expect("the retransmission is answered");
    let body = parse_reply(xid, &reply).expect("an accepted reply");

    let d = delta(&before, &rig.ts.stats(), proc_);
    assert_eq!(d.calls, 2, "the server received the call and its retransmission");
    assert_eq!(d.executed, 1, "executed exactly once");
    assert_eq!(d.hits, 1, "the retransmission was answered from the cache");
    body
}

/// The names in a directory on disk, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn remove_with_a_lost_reply_is_answered_ok_and_removes_once() {
    let rig = Rig::tcp();
    std::fs::write(rig.ts.path("victim"), b"x").unwrap();
    std::fs::write(rig.ts.path("bystander"), b"y").unwrap();
    let args = REMOVE3args { object: dirop(&rig.root, "victim") };
    let res = REMOVE3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::REMOVE, &args)).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK, "the original success, not NOENT");
    assert_eq!(names(rig.ts.export_path()), ["bystander"]);
    // Executing it again (a new xid) answers NOENT: what the cache saved the client from.
    assert_eq!(rig.client().remove(&rig.root, "victim").status(), nfsstat3::NFS3ERR_NOENT);
}

#[test]
fn rmdir_with_a_lost_reply_is_answered_ok_and_removes_once() {
    let rig = Rig::tcp();
    std::fs::create_dir(rig.ts.path("d")).unwrap();
    let args = RMDIR3args { object: dirop(&rig.root, "d") };
    let res = RMDIR3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::RMDIR, &args)).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK, "the original success, not NOENT");
    assert!(names(rig.ts.export_path()).is_empty());
    let again: RMDIR3res = rig.client().nfs(procs::RMDIR, &args);
    assert_eq!(again.status(), nfsstat3::NFS3ERR_NOENT);
}

#[test]
fn rename_with_a_lost_reply_is_answered_ok_and_renames_once() {
    let rig = Rig::tcp();
    std::fs::write(rig.ts.path("from"), b"payload").unwrap();
    let ino = std::fs::metadata(rig.ts.path("from")).unwrap().ino();
    let args = RENAME3args { from: dirop(&rig.root, "from"), to: dirop(&rig.root, "to") };
    let res = RENAME3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::RENAME, &args)).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK, "the original success, not NOENT");
    assert_eq!(names(rig.ts.export_path()), ["to"]);
    assert_eq!(std::fs::metadata(rig.ts.path("to")).unwrap().ino(), ino, "the same file, moved once");
    assert_eq!(std::fs::read(rig.ts.path("to")).unwrap(), b"payload");
    let again: RENAME3res = rig.client().nfs(procs::RENAME, &args);
    assert_eq!(again.status(), nfsstat3::NFS3ERR_NOENT);
}

#[test]
fn guarded_create_with_a_lost_reply_is_answered_ok_and_creates_once() {
    let rig = Rig::tcp();
    let how = createhow3::GUARDED(sattr3 { mode: Some(0o640), ..Default::default() });
    let args = CREATE3args { where_: dirop(&rig.root, "new"), how };
    let res = CREATE3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::CREATE, &args)).unwrap();
    let ok = res.ok().expect("the original success, not EXIST");
    assert_eq!(names(rig.ts.export_path()), ["new"]);
    let meta = std::fs::metadata(rig.ts.path("new")).unwrap();
    assert_eq!((meta.len(), meta.permissions().mode() & 0o7777), (0, 0o640));
    let mut c = rig.client();
    assert_eq!(ok.obj, Some(c.lookup_fh(&rig.root, "new")), "the replayed reply names the created file");
    let again: CREATE3res = c.nfs(procs::CREATE, &args);
    assert_eq!(again.status(), nfsstat3::NFS3ERR_EXIST);
}

#[test]
fn mkdir_with_a_lost_reply_is_answered_ok_and_creates_once() {
    let rig = Rig::tcp();
    let args = MKDIR3args {
        where_: dirop(&rig.root, "dir"),
        attributes: sattr3 { mode: Some(0o750), ..Default::default() },
    };
    let res = MKDIR3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::MKDIR, &args)).unwrap();
    let ok = res.ok().expect("the original success, not EXIST");
    assert_eq!(names(rig.ts.export_path()), ["dir"]);
    assert!(std::fs::metadata(rig.ts.path("dir")).unwrap().is_dir());
    let mut c = rig.client();
    assert_eq!(ok.obj, Some(c.lookup_fh(&rig.root, "dir")));
    assert_eq!(c.mkdir(&rig.root, "dir").status(), nfsstat3::NFS3ERR_EXIST);
}

#[test]
fn link_with_a_lost_reply_is_answered_ok_and_links_once() {
    let rig = Rig::tcp();
    std::fs::write(rig.ts.path("file"), b"data").unwrap();
    let file = rig.client().lookup_fh(&rig.root, "file");
    let args = LINK3args { file, link: dirop(&rig.root, "alias") };
    let res = LINK3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::LINK, &args)).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK, "the original success, not EXIST");
    assert_eq!(names(rig.ts.export_path()), ["alias", "file"]);
    let (a, f) =
        (std::fs::metadata(rig.ts.path("alias")).unwrap(), std::fs::metadata(rig.ts.path("file")).unwrap());
    assert_eq!((a.ino(), f.nlink()), (f.ino(), 2), "one new link to the same file");
    let again: LINK3res = rig.client().nfs(procs::LINK, &args);
    assert_eq!(again.status(), nfsstat3::NFS3ERR_EXIST);
}

#[test]
fn symlink_with_a_lost_reply_is_answered_ok_and_links_once() {
    let rig = Rig::tcp();
    let args = SYMLINK3args {
        where_: dirop(&rig.root, "sym"),
        symlink: symlinkdata3 {
            symlink_attributes: sattr3::default(),
            symlink_data: nfspath3(Bytes::from_static(b"target/of/link")),
        },
    };
    let res = SYMLINK3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::SYMLINK, &args)).unwrap();
    let ok = res.ok().expect("the original success, not EXIST");
    assert_eq!(names(rig.ts.export_path()), ["sym"]);
    assert_eq!(std::fs::read_link(rig.ts.path("sym")).unwrap().to_str(), Some("target/of/link"));
    let mut c = rig.client();
    assert_eq!(ok.obj, Some(c.lookup_fh(&rig.root, "sym")));
    let again: SYMLINK3res = c.nfs(procs::SYMLINK, &args);
    assert_eq!(again.status(), nfsstat3::NFS3ERR_EXIST);
}

#[test]
fn guarded_setattr_with_a_lost_reply_is_answered_ok_not_not_sync() {
    let rig = Rig::tcp();
    std::fs::write(rig.ts.path("file"), b"data").unwrap();
    std::fs::set_permissions(rig.ts.path("file"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = rig.client();
    let file = c.lookup_fh(&rig.root, "file");
    let ctime = c.attrs(&file).ctime;
    let args = SETATTR3args {
        object: file,
        new_attributes: sattr3 { mode: Some(0o600), ..Default::default() },
        guard: Some(ctime),
    };
    let res = SETATTR3res::from_bytes(&lose_reply_then_retransmit(&rig, procs::SETATTR, &args)).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK, "the original success, not NOT_SYNC");
    assert_eq!(std::fs::metadata(rig.ts.path("file")).unwrap().permissions().mode() & 0o7777, 0o600);
    // The change moved ctime, so executing the call again fails its guard.
    let again: SETATTR3res = c.nfs(procs::SETATTR, &args);
    assert_eq!(again.status(), nfsstat3::NFS3ERR_NOT_SYNC);
}

/// One request path for the in-progress test: TCP or UDP, straight to the server.
fn open_path(ts: &TestServer, udp: bool) -> Client {
    let mut c = if udp { Client::udp(ts.udp_addr()) } else { Client::tcp(ts.addr()) };
    c.set_timeout(Duration::from_secs(30));
    c
}

/// Keeps the server's only worker busy: a thread pipelines `n` FILE_SYNC WRITEs of 1 MiB on its
/// own connection and reads their replies. Calls arriving meanwhile wait for the worker, with
/// their cache entries in progress.
fn occupy_the_worker(ts: &TestServer, file: nfs_fh3, n: u64) -> std::thread::JoinHandle<()> {
    let addr = ts.addr();
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let cred = auth_sys(0, 0, &[]);
        let data = Bytes::from(vec![0x5a; 1 << 20]);
        let mut out = BufWriter::new(s.try_clone().unwrap());
        for i in 0..n {
            let args = WRITE3args {
                file: file.clone(),
                offset: i << 20,
                count: 1 << 20,
                stable: stable_how::FILE_SYNC,
                data: data.clone(),
            };
            out.write_all(&record(&call_message(
                0x7000_0000 + i as u32,
                NFS,
                3,
                procs::WRITE,
                &cred,
                &args.to_bytes(),
            )))
            .unwrap();
        }
        out.flush().unwrap();
        for _ in 0..n {
            let reply = read_record(&mut s).expect("a WRITE reply");
            let xid = reply_xid(&reply);
            let res = WRITE3res::from_bytes(&parse_reply(xid, &reply).unwrap()).unwrap();
            assert_eq!(res.status(), nfsstat3::NFS3_OK);
        }
    })
}

/// A retransmission that arrives while the original still executes is parked and answered with
/// the original's reply, and the call executes once. The server has one worker, kept busy by
/// synchronous 1 MiB writes, so both copies of a REMOVE wait with the first one's cache entry in
/// progress. Each attempt must show "executed once"; attempts repeat (bounded) until one of them
/// shows the parked path was taken.
fn retransmission_during_execution_is_parked_and_answered(udp: bool) {
    let limits = Limits { fs_threads: 1, ..Limits::default() };
    let mut ts = TestServer::with_limits("rw,insecure,no_root_squash", limits);
    if udp {
        ts = ts.with_nfs_over_udp();
    }
    let (mut c, root) = ts.client();
    let big = c.create_file(&root, "big");
    let mut parked_seen = false;
    for attempt in 0..5 {
        let name = format!("victim{attempt}");
        std::fs::write(ts.path(&name), b"x").unwrap();
        let before = ts.stats();
        let busy = occupy_the_worker(&ts, big.clone(), 24);
        let writes = |s: &StatsSnapshot| s.calls_to(NFS, 3, procs::WRITE);
        wait_until("the worker is busy with the WRITEs", Duration::from_secs(10), || {
            (writes(&ts.stats()) > writes(&before)).then_some(())
        });

        let xid = c.fresh_xid();
        let args = REMOVE3args { object: dirop(&root, &name) };
        let msg = call_message(xid, NFS, 3, procs::REMOVE, &c.cred.clone(), &args.to_bytes());
        let (mut original, mut retransmission) = (open_path(&ts, udp), open_path(&ts, udp));
        original.send(&msg);
        retransmission.send(&msg);
        for (which, path) in [("original", &mut original), ("retransmission", &mut retransmission)] {
            let body = parse_reply(xid, &path.recv()).unwrap_or_else(|e| panic!("{which}: {e:?}"));
            let res = REMOVE3res::from_bytes(&body).unwrap();
            assert_eq!(res.status(), nfsstat3::NFS3_OK, "{which} answered with the original success");
        }
        busy.join().unwrap();

        let d = delta(&before, &ts.stats(), procs::REMOVE);
        assert_eq!(d.calls, 2);
        assert_eq!(d.executed, 1, "attempt {attempt}: executed exactly once");
        assert_eq!(d.parked + d.hits, 1, "attempt {attempt}: the other copy was parked or replayed");
        assert!(!ts.path(&name).exists());
        if d.parked == 1 {
            parked_seen = true;
            break;
        }
    }
    assert!(parked_seen, "no attempt had the retransmission arrive while the original executed");
    assert_eq!(ts.stats().drc.park_dropped, 0);
}

#[test]
fn retransmission_during_execution_is_parked_and_answered_over_tcp() {
    retransmission_during_execution_is_parked_and_answered(false);
}

#[test]
fn retransmission_during_execution_is_parked_and_answered_over_udp() {
    retransmission_during_execution_is_parked_and_answered(true);
}

/// Over UDP the proxy loses the reply and forgets the client's upstream socket, so the
/// retransmission (same xid, same bytes, same client socket) reaches the server from a new source
/// port, as after a reconnect. It gets the original success; the directory is made once.
#[test]
fn udp_lost_replies_are_answered_from_the_cache() {
    let rig = Rig::udp();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cred = auth_sys(0, 0, &[]);
    for (n, (proc_, args)) in [
        (
            procs::MKDIR,
            MKDIR3args { where_: dirop(&rig.root, "made"), attributes: sattr3::default() }.to_bytes(),
        ),
        (procs::REMOVE, REMOVE3args { object: dirop(&rig.root, "gone") }.to_bytes()),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(rig.ts.path("gone"), b"x").unwrap();
        rig.proxy.add_rule(Rule::new(Action::DropReplyClose, Some(proc_)));
        let before = rig.ts.stats();
        let xid = 0x0dd0_0000 + n as u32;
        let msg = call_message(xid, NFS, 3, proc_, &cred, &args);
        let mut buf = vec![0u8; 70_000];
        client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        client.send_to(&msg, rig.proxy.addr()).unwrap();
        let lost = wire::recv_datagram(&client, &mut buf).unwrap_err();
        assert!(
            matches!(lost.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "{lost}"
        );
        wait_until("the fault fires", Duration::from_secs(5), || {
            rig.proxy.fired().iter().any(|e| e.call.xid == xid).then_some(())
        });
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        client.send_to(&msg, rig.proxy.addr()).unwrap();
        let len = wire::recv_datagram(&client, &mut buf).expect("the retransmission is answered");
        let body = parse_reply(xid, &buf[..len]).unwrap();
        assert_eq!(nfsstat3::from_bytes(&body[..4]).unwrap(), nfsstat3::NFS3_OK, "proc {proc_}");
        let d = delta(&before, &rig.ts.stats(), proc_);
        assert_eq!((d.calls, d.executed, d.hits), (2, 1, 1), "proc {proc_}");
    }
    assert_eq!(names(rig.ts.export_path()), ["made"]);
    let udp_ports: HashSet<u64> = rig.proxy.events().iter().map(|e| e.conn).collect();
    assert!(udp_ports.len() >= 3, "each lost reply moved the client to a new upstream socket");
}

/// 100,000 distinct non-idempotent calls (REMOVEs of names that do not exist), pipelined on one
/// connection, keep the cache within its entry and byte bounds; everything beyond is evicted and
/// counted.
#[test]
fn the_cache_stays_within_its_bounds_under_100k_distinct_calls() {
    const CALLS: u32 = 100_000;
    let drc = DrcConfig { max_entries: 1000, max_bytes: 192 * 1024, ..DrcConfig::default() };
    let ts = TestServer::with_limits("rw,insecure,no_root_squash", Limits { drc, ..Limits::default() });
    let (c, root) = ts.client();
    let cred = c.cred.clone();
    let before = ts.stats();
    let started = Instant::now();
    let mut stream = TcpStream::connect(ts.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let writer = {
        let mut out = BufWriter::with_capacity(1 << 16, stream.try_clone().unwrap());
        std::thread::spawn(move || {
            for i in 0..CALLS {
                let args = REMOVE3args { object: dirop(&root, &format!("absent-{i}")) };
                out.write_all(&record(&call_message(i, NFS, 3, procs::REMOVE, &cred, &args.to_bytes())))
                    .unwrap();
            }
            out.flush().unwrap();
        })
    };
    let mut seen = vec![false; CALLS as usize];
    let mut max_entries = 0;
    for n in 0..CALLS {
        let reply = read_record(&mut stream).expect("a reply");
        let xid = reply_xid(&reply);
        assert!(xid < CALLS && !seen[xid as usize], "one reply per call, xid {xid}");
        seen[xid as usize] = true;
        let body = parse_reply(xid, &reply).unwrap();
        assert_eq!(nfsstat3::from_bytes(&body[..4]).unwrap(), nfsstat3::NFS3ERR_NOENT);
        if n % 2000 == 0 {
            let s = ts.stats().drc;
            assert!(s.entries <= drc.max_entries && s.bytes <= drc.max_bytes, "over a bound: {s:?}");
            max_entries = max_entries.max(s.entries);
        }
    }
    writer.join().unwrap();
    let after = ts.stats();
    let s = after.drc;
    eprintln!("{CALLS} calls in {:?}; cache at the end: {s:?}", started.elapsed());
    assert!(s.entries <= drc.max_entries && s.bytes <= drc.max_bytes, "{s:?}");
    assert_eq!(s.misses - before.drc.misses, CALLS as u64, "every distinct call executed");
    assert_eq!(s.hits - before.drc.hits, 0);
    // Nothing expires in this test's time (ttl 120 s), so every entry not held was evicted.
    assert_eq!(s.expirations, 0);
    assert_eq!(s.evictions, s.misses - s.entries as u64, "{s:?}");
    assert!(s.evictions >= (CALLS as usize - drc.max_entries) as u64);
    assert!(max_entries > 100, "the cache was in use: {max_entries} entries at most");
}

/// With a short time-to-live, a completed entry is replayed within it and expires after it: a
/// retransmission past the ttl executes again (here MKDIR answers EXIST), and the expiry is
/// counted.
#[test]
fn completed_entries_expire_after_the_ttl() {
    let drc = DrcConfig { ttl: Duration::from_millis(300), ..DrcConfig::default() };
    let ts = TestServer::with_limits("rw,insecure,no_root_squash", Limits { drc, ..Limits::default() });
    let (mut c, root) = ts.client();
    // The MNT that gave the root handle went through the cache too.
    let base = ts.stats().drc;
    let args = MKDIR3args { where_: dirop(&root, "d"), attributes: sattr3::default() };
    let xid = c.fresh_xid();
    let status = |c: &mut Client| {
        let body = c.call_xid(xid, NFS, 3, procs::MKDIR, &args.to_bytes()).unwrap();
        MKDIR3res::from_bytes(&body).unwrap().status()
    };
    assert_eq!(status(&mut c), nfsstat3::NFS3_OK);
    assert_eq!(status(&mut c), nfsstat3::NFS3_OK, "replayed within the ttl");
    let s = ts.stats().drc;
    assert_eq!((s.misses - base.misses, s.hits - base.hits, s.expirations), (1, 1, 0));
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(status(&mut c), nfsstat3::NFS3ERR_EXIST, "past the ttl the call executes again");
    let s = ts.stats().drc;
    // The MNT's entry expired too.
    assert_eq!((s.misses - base.misses, s.hits - base.hits, s.expirations), (2, 1, 2));
}
