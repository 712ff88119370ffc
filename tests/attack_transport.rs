//! Attacks on the TCP transport (issue 16, items 4 and 5): one host holding every connection,
//! slowloris records, stalled partial records filling memory, big records from a host no export
//! lists, and replies nobody reads. Each attack runs against an in-process server on 127.0.0.1
//! while a well-behaved client, connecting afresh, must get MNT and GETATTR answered within
//! 50 ms. Attackers use other loopback addresses (the whole of 127/8 is local), so "one host" and
//! "a host no export lists" are real source addresses.
//!
//! Every test is `#[ignore]`d: `scripts/attacks.sh` runs them one at a time inside a private
//! network namespace (`ATTACK_TESTS=attack_transport bash scripts/attacks.sh`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rnfsd::config::Limits;
use rnfsd_test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use xdr::Xdr;
use xdr::nfs3::*;
use xdr::rpc::record_marker;

const IGNORE: &str = "attack test: scripts/attacks.sh runs it in a network namespace";
const GOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The bound for a well-behaved client during an attack.
const GOOD_CLIENT_BOUND: Duration = Duration::from_millis(50);
/// How long the good client waits for anything before the probe counts as locked out.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// An in-process server over a fresh export whose client list is `clients` (exports(5) items
/// with `{opts}` standing for the test options), e.g. `127.0.0.1({opts})`.
fn target(clients: &str, limits: Limits) -> TestServer {
    TestServer::builder().clients(&clients.replace("{opts}", server::RW)).limits(limits).start()
}

/// A runtime for the attackers and the good client, apart from the server's.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    tokio::time::timeout(PROBE_TIMEOUT, net::connect_from_async(src.into(), dst))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// One call on `s`, answered within [`PROBE_TIMEOUT`]; returns the results after the header.
async fn call(
    s: &mut TcpStream,
    xid: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
) -> Result<Bytes, String> {
    let msg = call_message(xid, prog, vers, proc_, &auth_sys(0, 0, &[]), args);
    s.write_all(&record(&msg)).await.map_err(|e| format!("send: {e}"))?;
    let reply = tokio::time::timeout(PROBE_TIMEOUT, wire::read_record_async(s))
        .await
        .map_err(|_| format!("no reply within {PROBE_TIMEOUT:?}"))?
        .map_err(|e| format!("reply: {e}"))?;
    parse_reply(xid, &reply).map_err(|e| format!("RPC error {e:?}"))
}

/// A well-behaved client from 127.0.0.1: connects, MNTs the export and GETATTRs its root a few
/// times. Returns the longest of: connect + MNT, and each GETATTR.
async fn probe(dst: SocketAddr, export: &Path) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = connect_from(GOOD, dst).await.map_err(|e| format!("connect: {e}"))?;
    let path = xdr::mount::dirpath(Bytes::copy_from_slice(export.to_str().unwrap().as_bytes()));
    let body = call(&mut s, 1, MOUNT, 3, 1, &path.to_bytes()).await?;
    let root = match xdr::mount::mountres3::from_bytes(&body).map_err(|e| format!("mountres3: {e:?}"))? {
        xdr::mount::mountres3::Ok(ok) => nfs_fh3(ok.fhandle),
        xdr::mount::mountres3::Err(e) => return Err(format!("MNT refused: {e:?}")),
    };
    let mut worst = t.elapsed();
    for xid in 2..7 {
        let t = Instant::now();
        let args = GETATTR3args { object: root.clone() }.to_bytes();
        let body = call(&mut s, xid, NFS, 3, procs::GETATTR, &args).await?;
        let res = GETATTR3res::from_bytes(&body).map_err(|e| format!("GETATTR3res: {e:?}"))?;
        if res.status() != nfsstat3::NFS3_OK {
            return Err(format!("GETATTR: {:?}", res.status()));
        }
        worst = worst.max(t.elapsed());
    }
    Ok(worst)
}

/// The good client's verdict during an attack: five fresh probes; every one must be answered,
/// and the median of their worst latencies must be within the 50 ms (the median, so one
/// scheduling hiccup of a loaded 2-core machine does not decide).
async fn assert_good_client_served(dst: SocketAddr, export: &Path, during: &str) {
    let mut worst = Vec::new();
    for _ in 0..5 {
        match probe(dst, export).await {
            Ok(d) => worst.push(d),
            Err(e) => panic!("during {during}: the well-behaved client was not served: {e}"),
        }
    }
    worst.sort();
    let median = worst[worst.len() / 2];
    eprintln!("during {during}: good client worst latencies {worst:?}");
    assert!(median <= GOOD_CLIENT_BOUND, "during {during}: good client median of worst latencies {median:?}");
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Whether the server closed `s` (EOF or reset) within `within`, after reading and discarding
/// whatever replies it sent.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut sink = vec![0u8; 64 << 10];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Opens `n` connections from `src` that send nothing; keeps those the server accepted.
async fn idle_connections(src: Ipv4Addr, dst: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        match connect_from(src, dst).await {
            Ok(s) => v.push(s),
            Err(_) => break,
        }
    }
    v
}

/// 2,000 idle connections from one address no export lists, with the default limits: the
/// issue's measured lockout (new clients timed out behind the 1,024-connection limit).
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn idle_connections_of_an_unlisted_host_leave_room_for_everyone_else() {
    let _ = IGNORE;
    raise_open_file_limit();
    let target = target("127.0.0.1({opts})", Limits::default());
    let rt = client_runtime();
    rt.block_on(async {
        let idle = idle_connections(ATTACKER, target.addr(), 2000).await;
        eprintln!("attacker holds {} connections", idle.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_good_client_served(
            target.addr(),
            target.export_path(),
            "2,000 idle connections from an unlisted host",
        )
        .await;
        drop(idle);
    });
}

/// A listed host opening far more connections than its share: with the global limit reached,
/// a fresh address still gets in, and the heavy host keeps no more than its share.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn one_listed_host_cannot_hold_every_connection() {
    let limits = Limits { max_connections: 64, max_connections_per_host: 16, ..Limits::default() };
    let target = target("*({opts})", limits);
    let rt = client_runtime();
    rt.block_on(async {
        // Two heavy addresses between them ask for far more than the whole limit.
        let mut idle = idle_connections(ATTACKER, target.addr(), 300).await;
        idle.extend(idle_connections(Ipv4Addr::new(127, 0, 0, 3), target.addr(), 300).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_good_client_served(target.addr(), target.export_path(), "600 idle connections from two hosts")
            .await;
        // The server keeps at most the per-host share of each heavy address open.
        let mut open = 0;
        for s in &mut idle {
            if !closed_by_server(s, Duration::from_millis(5)).await {
                open += 1;
            }
        }
        assert!(open <= 2 * 16, "{open} of the heavy hosts' connections are still open");
        assert!(target.tcp_stats().table.connections <= 64, "{:?}", target.tcp_stats());
    });
}

/// Slowloris: a record marker, then one byte at a time. The connection must be closed when the
/// record's deadline passes, however often a byte arrives.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn a_record_trickled_byte_by_byte_is_closed_at_its_deadline() {
    let limits = Limits { record_timeout: Duration::from_secs(1), ..Limits::default() };
    let target = target("*({opts})", limits);
    let rt = client_runtime();
    rt.block_on(async {
        let mut slow = Vec::new();
        for _ in 0..32 {
            let mut s = connect_from(ATTACKER, target.addr()).await.unwrap();
            s.write_all(&record_marker(1000, true)).await.unwrap();
            slow.push(s);
        }
        let started = Instant::now();
        let mut closed_at = vec![None; slow.len()];
        while started.elapsed() < Duration::from_secs(5) && closed_at.iter().any(Option::is_none) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (s, closed) in slow.iter_mut().zip(&mut closed_at) {
                if closed.is_none() && s.write_all(b"x").await.is_err() {
                    *closed = Some(started.elapsed());
                }
                if closed.is_none() && closed_by_server(s, Duration::from_millis(1)).await {
                    *closed = Some(started.elapsed());
                }
            }
        }
        assert_good_client_served(target.addr(), target.export_path(), "32 slowloris connections").await;
        let open = closed_at.iter().filter(|c| c.is_none()).count();
        assert_eq!(open, 0, "{open} trickling connections still open after 5 s (record deadline 1 s)");
        assert!(target.tcp_stats().table.records_timed_out >= 32, "{:?}", target.tcp_stats());
    });
}

/// 1,024 connections from 16 addresses each send all but 16 bytes of a 1 MiB record and stop,
/// with the default limits: the memory held for partial records stays within the global budget
/// (the issue measured RSS going from 6 MiB to over 1 GiB), the good client is served, and a
/// good client's own 1 MiB WRITE still gets through.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn stalled_partial_records_are_bounded_in_total() {
    let len = 1 << 20;
    let mut partial = record_marker(len, true).to_vec();
    partial.resize(4 + len - 16, 0x55);
    stalled_records_leave_room(partial, "1,024 stalled 1 MiB records");
}

/// The same with records of which only the 4-byte marker ever arrives: the budget their claimed
/// size takes is taken back from them as from any stalled record.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn records_that_are_only_a_marker_are_bounded_in_total() {
    stalled_records_leave_room(record_marker(1 << 20, true).to_vec(), "1,024 bare 1 MiB record markers");
}

fn stalled_records_leave_room(partial: Vec<u8>, what: &str) {
    raise_open_file_limit();
    let limits = Limits::default();
    let budget = limits.max_request_bytes as u64;
    let target = target("*({opts})", limits);
    let file = target.export_path().join("f");
    std::fs::write(&file, b"").unwrap();
    let rt = client_runtime();
    rt.block_on(async {
        let before = resident_bytes();
        let mut stalled = Vec::new();
        for host in 0..16u8 {
            for _ in 0..64 {
                let Ok(mut s) = connect_from(Ipv4Addr::new(127, 0, 1, host + 1), target.addr()).await else {
                    continue;
                };
                // The server may stop reading (that is the point): don't wait for it.
                let _ = tokio::time::timeout(Duration::from_millis(20), s.write_all(&partial)).await;
                stalled.push(s);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let grown = resident_bytes().saturating_sub(before);
        eprintln!("{} stalled connections; resident memory grew by {} MiB", stalled.len(), grown >> 20);
        assert_good_client_served(target.addr(), target.export_path(), what).await;
        // The budget, plus each connection's uncounted first 128 KiB, plus slack: far below 1 GiB.
        let bound = budget + 1024 * (128 << 10) + (128 << 20);
        assert!(grown <= bound, "resident memory grew by {} MiB (bound {} MiB)", grown >> 20, bound >> 20);
        let held = target.tcp_stats().request_bytes as u64;
        assert!(
            held <= budget + (2 << 20),
            "{} MiB of requests held (budget {} MiB)",
            held >> 20,
            budget >> 20
        );
        good_write(target.addr(), target.export_path(), "f").await;
        drop(stalled);
    });
}

/// A 1 MiB WRITE from the good client, answered within a few seconds.
async fn good_write(dst: SocketAddr, export: &Path, name: &str) {
    let mut s = connect_from(GOOD, dst).await.expect("connect");
    let path = xdr::mount::dirpath(Bytes::copy_from_slice(export.to_str().unwrap().as_bytes()));
    let body = call(&mut s, 1, MOUNT, 3, 1, &path.to_bytes()).await.expect("MNT");
    let xdr::mount::mountres3::Ok(ok) = xdr::mount::mountres3::from_bytes(&body).unwrap() else {
        panic!("MNT")
    };
    let root = nfs_fh3(ok.fhandle);
    let body = call(&mut s, 2, NFS, 3, procs::LOOKUP, &LOOKUP3args { what: dirop(&root, name) }.to_bytes())
        .await
        .expect("LOOKUP");
    let fh = LOOKUP3res::from_bytes(&body).unwrap().ok().expect("LOOKUP ok").object;
    let data = Bytes::from(vec![7u8; 1 << 20]);
    let args =
        WRITE3args { file: fh, offset: 0, count: data.len() as u32, stable: stable_how::UNSTABLE, data };
    let msg = call_message(3, NFS, 3, procs::WRITE, &auth_sys(0, 0, &[]), &args.to_bytes());
    let t = Instant::now();
    s.write_all(&record(&msg)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), wire::read_record_async(&mut s))
        .await
        .expect("the good client's 1 MiB WRITE is answered within 10 s")
        .unwrap();
    let res = WRITE3res::from_bytes(&parse_reply(3, &reply).unwrap()).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK);
    eprintln!("good client's 1 MiB WRITE answered in {:?}", t.elapsed());
}

/// A host no export lists may send what it needs to be refused (NULL, MNT), not big records.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn an_unlisted_host_cannot_send_big_records() {
    let target = target("127.0.0.1({opts})", Limits::default());
    let rt = client_runtime();
    rt.block_on(async {
        let mut s = connect_from(ATTACKER, target.addr()).await.unwrap();
        call(&mut s, 1, NFS, 3, 0, &[]).await.expect("NULL is answered");
        let path =
            xdr::mount::dirpath(Bytes::copy_from_slice(target.export_path().to_str().unwrap().as_bytes()));
        let body = call(&mut s, 2, MOUNT, 3, 1, &path.to_bytes()).await.expect("MNT is answered");
        assert!(
            matches!(xdr::mount::mountres3::from_bytes(&body).unwrap(), xdr::mount::mountres3::Err(_)),
            "MNT is refused"
        );
        // A WRITE-sized record (with a handle it could have guessed): the connection is closed.
        let mut big = call_message(3, NFS, 3, procs::NULL, &auth_sys(0, 0, &[]), &[]);
        big.resize(256 << 10, 0);
        let _ = tokio::time::timeout(Duration::from_secs(2), s.write_all(&record(&big))).await;
        assert!(
            closed_by_server(&mut s, Duration::from_secs(2)).await,
            "a 256 KiB record from an unlisted host was accepted"
        );
        assert_good_client_served(target.addr(), target.export_path(), "big records from an unlisted host")
            .await;
    });
}

/// Item 5: four connections pipelining 1 MiB READs and never reading the replies. The replies
/// held for them stay within the per-connection bound (the issue measured 131 MiB per
/// connection, 522 MiB with four), and everyone else is served.
#[test]
#[ignore = "attack test: scripts/attacks.sh runs it in a network namespace"]
fn replies_nobody_reads_are_bounded() {
    let limits = Limits::default();
    let per_connection = limits.max_reply_bytes_per_connection as u64;
    let target = target("*({opts})", limits);
    std::fs::write(target.export_path().join("big"), vec![1u8; 1 << 20]).unwrap();
    let rt = client_runtime();
    rt.block_on(async {
        let mut s = connect_from(GOOD, target.addr()).await.unwrap();
        let path =
            xdr::mount::dirpath(Bytes::copy_from_slice(target.export_path().to_str().unwrap().as_bytes()));
        let body = call(&mut s, 1, MOUNT, 3, 1, &path.to_bytes()).await.unwrap();
        let xdr::mount::mountres3::Ok(ok) = xdr::mount::mountres3::from_bytes(&body).unwrap() else {
            panic!()
        };
        let root = nfs_fh3(ok.fhandle);
        let body =
            call(&mut s, 2, NFS, 3, procs::LOOKUP, &LOOKUP3args { what: dirop(&root, "big") }.to_bytes())
                .await
                .unwrap();
        let fh = LOOKUP3res::from_bytes(&body).unwrap().ok().unwrap().object;
        let before = resident_bytes();
        let mut readers = Vec::new();
        for _ in 0..4 {
            let mut s = connect_from(ATTACKER, target.addr()).await.unwrap();
            let mut burst = Vec::new();
            for xid in 0..256u32 {
                let args = READ3args { file: fh.clone(), offset: 0, count: 1 << 20 }.to_bytes();
                burst.extend(record(&call_message(xid, NFS, 3, procs::READ, &auth_sys(0, 0, &[]), &args)));
            }
            // The server stops reading once its bound is reached: don't wait for it.
            let _ = tokio::time::timeout(Duration::from_secs(1), s.write_all(&burst)).await;
            readers.push(s);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let grown = resident_bytes().saturating_sub(before);
        eprintln!("resident memory grew by {} MiB with 4 connections not reading", grown >> 20);
        let bound = 4 * per_connection + (64 << 20);
        assert!(grown <= bound, "resident memory grew by {} MiB (bound {} MiB)", grown >> 20, bound >> 20);
        assert_good_client_served(
            target.addr(),
            target.export_path(),
            "4 connections not reading 1 MiB READ replies",
        )
        .await;
        drop(readers);
    });
}
