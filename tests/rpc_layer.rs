//! The RPC server layer over real sockets: every RPC error reply, TCP record marking and
//! pipelining, oversized and random input, the duplicate-request cache over TCP and UDP, idle
//! connections and graceful shutdown. The server runs in-process on 127.0.0.1:0 with a small test
//! program; the client is written here byte by byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rnfsd::rpc::dispatch::{Dispatcher, DispatcherConfig};
use rnfsd::rpc::program::LargestReply::Small;
use rnfsd::rpc::program::{Procedure, Version, by_number, row};
use rnfsd::rpc::stats::ErrorKind;
use rnfsd::rpc::transport::{TransportLimits, serve_tcp, serve_udp};
use rnfsd::rpc::{AuthStat, CallContext, DrcClass, Program, RpcError, RpcService, RunOn, Transport};
use rnfsd_test_support::records::{REPLY_WAIT, RecordStream as Client};
use rnfsd_test_support::wait_until_async;
use rnfsd_test_support::wire::{call_header, encode_call, split_reply};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use xdr::rpc::{
    AcceptedStatus, AuthFlavor, CallHeader, OpaqueAuth, RejectedReply, ReplyBody, ReplyHeader, record_marker,
};
use xdr::{Reader, Xdr, XdrWrite};

/// A program number from the user-defined range (RFC 5531 §7.3).
const PROG: u32 = 0x2000_0101;

const NULL: u32 = 0;
/// opaque<> → the same opaque.
const ECHO: u32 = 1;
/// u32 milliseconds → sleeps, returns them.
const SLEEP: u32 = 2;
/// u32 milliseconds, opaque tag → sleeps, bumps the counter, returns it as u64. Non-idempotent.
const INCREMENT: u32 = 3;
/// Panics.
const PANIC: u32 = 4;
/// Fails with AUTH_ERROR(AUTH_TOOWEAK), as a program refusing a credential would.
const DENY: u32 = 5;
/// u32 n → opaque of n bytes.
const BIG: u32 = 6;
/// → the nice value of the thread that ran it, as an i32.
const NICE: u32 = 7;

/// The test program: versions 1 and 2, procedures 0..=7.
#[derive(Default)]
struct TestProgram {
    counter: AtomicU64,
}

impl RpcService for TestProgram {
    const PROGRAM: u32 = PROG;
    const NAME: &'static str = "rpc-test";
    const VERSIONS: &'static [Version<Self>] =
        &[Version { number: 1, procedures: &V1 }, Version { number: 2, procedures: &V2 }];
}

/// Version 1 runs every procedure on the blocking pool.
const V1: [Option<Procedure<TestProgram>>; 8] = table(RunOn::Pool);
/// Version 2 runs every procedure inline.
const V2: [Option<Procedure<TestProgram>>; 8] = table(RunOn::Inline);

#[rustfmt::skip]
const fn table(run: RunOn<TestProgram>) -> [Option<Procedure<TestProgram>>; 8] {
    use DrcClass::{Idempotent, NonIdempotent};
    by_number(&[&[
        row(NULL,      "null",      Idempotent,    run, Small, TestProgram::null),
        row(ECHO,      "echo",      Idempotent,    run, Small, TestProgram::echo),
        row(SLEEP,     "sleep",     Idempotent,    run, Small, TestProgram::sleep),
        row(INCREMENT, "increment", NonIdempotent, run, Small, TestProgram::increment),
        row(PANIC,     "panic",     Idempotent,    run, Small, TestProgram::panic),
        row(DENY,      "deny",      Idempotent,    run, Small, TestProgram::deny),
        row(BIG,       "big",       Idempotent,    run, Small, TestProgram::big),
        row(NICE,      "nice",      Idempotent,    run, Small, TestProgram::nice),
    ]])
}

/// The procedures, each decoding its own arguments.
impl TestProgram {
    fn null(&self, _: &CallContext, args: &mut Reader, _: &mut BytesMut) -> Result<(), RpcError> {
        Ok(args.finish()?)
    }

    fn echo(&self, _: &CallContext, args: &mut Reader, reply: &mut BytesMut) -> Result<(), RpcError> {
        let data = args.opaque("data", 2 << 20)?;
        args.finish()?;
        reply.put_opaque(&data);
        Ok(())
    }

    fn sleep(&self, _: &CallContext, args: &mut Reader, reply: &mut BytesMut) -> Result<(), RpcError> {
        let ms = args.u32()?;
        args.finish()?;
        std::thread::sleep(Duration::from_millis(ms.into()));
        reply.put_u32(ms);
        Ok(())
    }

    fn increment(&self, _: &CallContext, args: &mut Reader, reply: &mut BytesMut) -> Result<(), RpcError> {
        let ms = args.u32()?;
        let _tag = args.opaque("tag", 64)?;
        args.finish()?;
        std::thread::sleep(Duration::from_millis(ms.into()));
        let v = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        reply.put_u64(v);
        Ok(())
    }

    fn panic(&self, _: &CallContext, _: &mut Reader, _: &mut BytesMut) -> Result<(), RpcError> {
        panic!("test procedure panics on purpose")
    }

    fn deny(&self, _: &CallContext, _: &mut Reader, _: &mut BytesMut) -> Result<(), RpcError> {
        Err(RpcError::Auth(AuthStat::TooWeak))
    }

    fn big(&self, _: &CallContext, args: &mut Reader, reply: &mut BytesMut) -> Result<(), RpcError> {
        let n = args.u32()?;
        args.finish()?;
        reply.put_opaque(&vec![7u8; n as usize]);
        Ok(())
    }

    fn nice(&self, _: &CallContext, args: &mut Reader, reply: &mut BytesMut) -> Result<(), RpcError> {
        args.finish()?;
        reply.put_i32(rnfsd::fs::sys::thread_nice().expect("getpriority of this thread"));
        Ok(())
    }
}

struct Server {
    tcp: SocketAddr,
    udp: SocketAddr,
    dispatcher: Arc<Dispatcher>,
    program: Arc<TestProgram>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

async fn start(limits: TransportLimits) -> Server {
    let program = Arc::new(TestProgram::default());
    let programs: [Arc<dyn Program>; 1] = [program.clone()];
    let dispatcher = Arc::new(Dispatcher::new(programs, DispatcherConfig::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let (tcp, udp) = (listener.local_addr().unwrap(), socket.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(serve_tcp(listener, dispatcher.clone(), limits, shutdown.clone(), tracker.clone()));
    tracker.spawn(serve_udp(socket, dispatcher.clone(), limits, shutdown.clone(), tracker.clone()));
    Server { tcp, udp, dispatcher, program, shutdown, tracker }
}

impl Server {
    async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("server did not shut down");
    }

    fn executions(&self) -> u64 {
        self.program.counter.load(Ordering::SeqCst)
    }
}

fn auth_sys() -> OpaqueAuth {
    rnfsd_test_support::auth_sys(1000, 1000, &[10])
}

/// A call record: header then argument bytes.
fn call_with(
    xid: u32,
    rpcvers: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    cred: OpaqueAuth,
    args: &[u8],
) -> Vec<u8> {
    encode_call(&CallHeader { rpcvers, ..call_header(xid, prog, vers, proc_, &cred) }, args)
}

fn call(xid: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
    call_with(xid, 2, PROG, 1, proc_, auth_sys(), args)
}

fn u32_arg(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn increment_args(ms: u32, tag: &[u8]) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_u32(ms);
    w.put_opaque(tag);
    w.to_vec()
}

fn opaque_arg(data: &[u8]) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_opaque(data);
    w.to_vec()
}

/// Splits a reply into its header and the results after it.
fn parse(reply: &[u8]) -> (ReplyHeader, Reader) {
    split_reply(reply)
}

fn accepted_status(h: &ReplyHeader) -> AcceptedStatus {
    match &h.body {
        ReplyBody::Accepted { verf, status } => {
            assert_eq!(verf.flavor, AuthFlavor::None as u32);
            *status
        }
        ReplyBody::Denied(r) => panic!("expected an accepted reply, got denied {r:?}"),
    }
}

fn denied(h: &ReplyHeader) -> RejectedReply {
    match &h.body {
        ReplyBody::Denied(r) => *r,
        other => panic!("expected a denied reply, got {other:?}"),
    }
}

async fn udp_client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

async fn udp_recv(sock: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        Ok(Err(e)) => panic!("udp receive: {e}"),
        Err(_) => None,
    }
}

/// Asserts a NULL call on `client` is answered, proving the connection still serves.
async fn assert_serves(client: &mut Client, xid: u32) {
    let reply = client.call(&call(xid, NULL, &[])).await;
    let (h, r) = parse(&reply);
    assert_eq!(h.xid, xid);
    assert_eq!(accepted_status(&h), AcceptedStatus::Success);
    assert_eq!(r.remaining(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_error_reply() {
    let server = start(TransportLimits::default()).await;
    let mut c = Client::connect(server.tcp).await;

    let (h, _) = parse(&c.call(&call_with(1, 3, PROG, 1, NULL, auth_sys(), &[])).await);
    assert_eq!(h.xid, 1);
    assert_eq!(denied(&h), RejectedReply::RpcMismatch { low: 2, high: 2 });

    // An AUTH_SYS body that stops after the machine name.
    let bad_sys =
        OpaqueAuth { flavor: AuthFlavor::Sys as u32, body: Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 0]) };
    let (h, _) = parse(&c.call(&call_with(2, 2, PROG, 1, NULL, bad_sys, &[])).await);
    assert_eq!((h.xid, denied(&h)), (2, RejectedReply::AuthError(AuthStat::BadCred)));

    let gss = OpaqueAuth { flavor: AuthFlavor::RpcsecGss as u32, body: Bytes::from_static(&[0, 0, 0, 1]) };
    let (h, _) = parse(&c.call(&call_with(3, 2, PROG, 1, NULL, gss, &[])).await);
    assert_eq!((h.xid, denied(&h)), (3, RejectedReply::AuthError(AuthStat::BadCred)));

    let mut bad_verf = BytesMut::new();
    let header = CallHeader {
        xid: 4,
        rpcvers: 2,
        prog: PROG,
        vers: 1,
        proc_: NULL,
        cred: auth_sys(),
        verf: OpaqueAuth { flavor: AuthFlavor::Sys as u32, body: Bytes::new() },
    };
    header.encode(&mut bad_verf);
    let (h, _) = parse(&c.call(&bad_verf).await);
    assert_eq!((h.xid, denied(&h)), (4, RejectedReply::AuthError(AuthStat::BadVerf)));

    // NFS_ACL, which the Linux client probes.
    let (h, _) = parse(&c.call(&call_with(5, 2, 100227, 3, NULL, auth_sys(), &[])).await);
    assert_eq!((h.xid, accepted_status(&h)), (5, AcceptedStatus::ProgUnavail));

    for (xid, vers) in [(6, 3), (7, 0)] {
        let (h, _) = parse(&c.call(&call_with(xid, 2, PROG, vers, NULL, auth_sys(), &[])).await);
        assert_eq!((h.xid, accepted_status(&h)), (xid, AcceptedStatus::ProgMismatch { low: 1, high: 2 }));
    }

    let (h, _) = parse(&c.call(&call(8, 99, &[])).await);
    assert_eq!((h.xid, accepted_status(&h)), (8, AcceptedStatus::ProcUnavail));

    // ECHO whose opaque claims more bytes than follow.
    let (h, _) = parse(&c.call(&call(9, ECHO, &[0, 0, 0, 10, 1, 2])).await);
    assert_eq!((h.xid, accepted_status(&h)), (9, AcceptedStatus::GarbageArgs));
    assert_serves(&mut c, 10).await;

    // A call header cut short after rpcvers: xid and CALL are readable, so GARBAGE_ARGS.
    let (h, _) = parse(&c.call(&[0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 2]).await);
    assert_eq!((h.xid, accepted_status(&h)), (11, AcceptedStatus::GarbageArgs));

    let (h, r) = parse(&c.call(&call(12, PANIC, &[])).await);
    assert_eq!((h.xid, accepted_status(&h)), (12, AcceptedStatus::SystemErr));
    assert_eq!(r.remaining(), 0);
    assert_serves(&mut c, 13).await;
    // The same when the procedure runs inline on the async worker.
    let (h, r) = parse(&c.call(&call_with(112, 2, PROG, 2, PANIC, auth_sys(), &[])).await);
    assert_eq!((h.xid, accepted_status(&h)), (112, AcceptedStatus::SystemErr));
    assert_eq!(r.remaining(), 0);
    assert_serves(&mut c, 113).await;
    let (h, mut r) =
        parse(&c.call(&call_with(114, 2, PROG, 2, ECHO, auth_sys(), &[0, 0, 0, 2, 7, 8, 0, 0])).await);
    assert_eq!((h.xid, accepted_status(&h)), (114, AcceptedStatus::Success));
    assert_eq!(&r.opaque("echo", 16).unwrap()[..], &[7, 8]);

    let (h, r) = parse(&c.call(&call(14, DENY, &[])).await);
    assert_eq!((h.xid, denied(&h)), (14, RejectedReply::AuthError(AuthStat::TooWeak)));
    assert_eq!(r.remaining(), 0, "results appended before the error must be discarded");

    // A REPLY message and a 3-byte record get no answer; the next call's reply is the next record.
    c.send(&[0, 0, 0, 15, 0, 0, 0, 1, 0, 0, 0, 0]).await;
    c.send(&[1, 2, 3]).await;
    assert_serves(&mut c, 16).await;

    let stats = server.dispatcher.stats();
    for (kind, n) in [
        (ErrorKind::RpcMismatch, 1),
        (ErrorKind::AuthError, 4),
        (ErrorKind::ProgUnavail, 1),
        (ErrorKind::ProgMismatch, 2),
        (ErrorKind::ProcUnavail, 1),
        (ErrorKind::GarbageArgs, 2),
        (ErrorKind::SystemErr, 2),
    ] {
        assert_eq!(stats.errors_of(kind), n, "{kind:?} in {stats:?}");
    }
    assert_eq!(stats.records_dropped, 2);
    // Counted per procedure only once the procedure is known.
    assert_eq!(stats.calls_to(PROG, 1, NULL), 4);
    assert_eq!(stats.calls_to(PROG, 1, PANIC), 1);
    assert_eq!(stats.calls_to(PROG, 2, PANIC), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_fragment_records_are_reassembled() {
    let server = start(TransportLimits::default()).await;
    let mut c = Client::connect(server.tcp).await;
    let payload: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
    c.send_fragments(&call(1, ECHO, &opaque_arg(&payload)), 7).await;
    let reply = c.recv().await.unwrap();
    let (h, mut r) = parse(&reply);
    assert_eq!((h.xid, accepted_status(&h)), (1, AcceptedStatus::Success));
    assert_eq!(r.opaque("data", 1 << 20).unwrap(), payload);
    r.finish().unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_reply_in_completion_order() {
    let server = start(TransportLimits::default()).await;
    let mut c = Client::connect(server.tcp).await;
    c.send(&call(1, SLEEP, &u32_arg(600))).await;
    c.send(&call(2, NULL, &[])).await;
    let first = parse(&c.recv().await.unwrap()).0;
    let second = parse(&c.recv().await.unwrap()).0;
    assert_eq!((first.xid, second.xid), (2, 1), "the fast reply must overtake the slow one");

    // Eight slow requests on one connection run concurrently, not one after the other.
    let t = Instant::now();
    for xid in 10..18 {
        c.send(&call(xid, SLEEP, &u32_arg(400))).await;
    }
    let mut xids: Vec<u32> = Vec::new();
    for _ in 0..8 {
        xids.push(parse(&c.recv().await.unwrap()).0.xid);
    }
    xids.sort_unstable();
    assert_eq!(xids, (10..18).collect::<Vec<_>>());
    assert!(t.elapsed() < Duration::from_millis(2400), "took {:?}", t.elapsed());
    server.stop().await;
}

/// The pool's threads run below the async workers, so that a client keeping them busy with large
/// READs and WRITEs does not take the cores from the workers that answer everyone's GETATTRs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_threads_run_at_a_lower_priority_than_the_network_workers() {
    let server = start(TransportLimits::default()).await;
    let mut c = Client::connect(server.tcp).await;
    let nice_of = |reply: Vec<u8>| {
        let (h, mut r) = parse(&reply);
        assert_eq!(accepted_status(&h), AcceptedStatus::Success);
        r.i32().unwrap()
    };
    let inline = nice_of(c.call(&call_with(1, 2, PROG, 2, NICE, auth_sys(), &[])).await);
    let worker = tokio::spawn(async { rnfsd::fs::sys::thread_nice().unwrap() }).await.unwrap();
    assert_eq!(inline, worker, "an inline procedure runs on a network worker, at its priority");
    let expected = (worker + rnfsd::rpc::dispatch::POOL_NICE_INCREMENT).min(19);
    // Several calls at once, so that they run on several pool threads, each lowered.
    for xid in 10..18 {
        c.send(&call(xid, NICE, &[])).await;
    }
    for _ in 10..18 {
        assert_eq!(nice_of(c.recv().await.unwrap()), expected, "a pool thread's nice value");
    }
    let after = tokio::spawn(async { rnfsd::fs::sys::thread_nice().unwrap() }).await.unwrap();
    assert_eq!(after, worker, "the network workers keep their priority");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_closes_only_that_connection() {
    let limits = TransportLimits { max_record: 64 << 10, ..TransportLimits::default() };
    let server = start(limits).await;
    let mut c = Client::connect(server.tcp).await;
    assert_serves(&mut c, 1).await;
    // Two fragments, each under the cap, that add up over it. The second marker is enough.
    let first = vec![0u8; 40 << 10];
    c.stream.write_all(&record_marker(first.len(), false)).await.unwrap();
    c.stream.write_all(&first).await.unwrap();
    c.stream.write_all(&record_marker(40 << 10, true)).await.unwrap();
    assert_eq!(c.recv().await, None, "the connection must be closed");
    assert_eq!(server.dispatcher.stats().oversize_records, 1);

    let mut c2 = Client::connect(server.tcp).await;
    assert_serves(&mut c2, 2).await;
    server.stop().await;
}

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_do_not_hurt_the_server() {
    let limits = TransportLimits { max_record: 64 << 10, ..TransportLimits::default() };
    let server = start(limits).await;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);

    // Unframed noise: the connection is closed (a huge marker) or the noise waits for more bytes.
    for _ in 0..20 {
        let mut c = Client::connect(server.tcp).await;
        let n = 1 + (noise.next() % 2000) as usize;
        c.stream.write_all(&noise.bytes(n)).await.unwrap();
    }

    // Well-framed records with random bodies, some starting like a call: the connection survives.
    let mut c = Client::connect(server.tcp).await;
    for i in 0..300u32 {
        let n = (noise.next() % 300) as usize;
        let mut body = noise.bytes(n);
        if i % 3 == 0 && body.len() >= 8 {
            body[..8].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        }
        c.send(&body).await;
    }
    c.send(&call(42, NULL, &[])).await;
    loop {
        let (h, _) = parse(&c.recv().await.expect("connection survives well-framed noise"));
        if h.xid == 42 {
            assert_eq!(accepted_status(&h), AcceptedStatus::Success);
            break;
        }
    }

    let u = udp_client().await;
    for _ in 0..200 {
        let n = (noise.next() % 1500) as usize;
        u.send_to(&noise.bytes(n), server.udp).await.unwrap();
    }
    // Retransmit like a real client: the noise may have filled the socket's receive buffer.
    let mut answered = false;
    for _ in 0..20 {
        u.send_to(&call(43, NULL, &[]), server.udp).await.unwrap();
        while let Some(reply) = udp_recv(&u, Duration::from_millis(500)).await {
            answered |= parse(&reply).0.xid == 43;
        }
        if answered {
            break;
        }
    }
    assert!(answered, "UDP still serves");
    let stats = server.dispatcher.stats();
    assert!(stats.records_dropped > 100, "{stats:?}");

    let mut fresh = Client::connect(server.tcp).await;
    assert_serves(&mut fresh, 44).await;
    server.stop().await;
}

fn counter_value(reply: &[u8]) -> u64 {
    let (h, mut r) = parse(reply);
    assert_eq!(accepted_status(&h), AcceptedStatus::Success);
    r.u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drc_replays_on_the_same_connection() {
    let server = start(TransportLimits::default()).await;
    let mut c = Client::connect(server.tcp).await;
    let req = call(77, INCREMENT, &increment_args(0, b"a"));
    let first = c.call(&req).await;
    assert_eq!(counter_value(&first), 1);
    let again = c.call(&req).await;
    assert_eq!(again, first, "a retransmission gets the original reply bytes");
    assert_eq!(server.executions(), 1);

    // Same xid, other arguments or another version: not a retransmission.
    assert_eq!(counter_value(&c.call(&call(77, INCREMENT, &increment_args(0, b"b"))).await), 2);
    let v2 = call_with(77, 2, PROG, 2, INCREMENT, auth_sys(), &increment_args(0, b"a"));
    assert_eq!(counter_value(&c.call(&v2).await), 3);
    // Another xid.
    assert_eq!(counter_value(&c.call(&call(78, INCREMENT, &increment_args(0, b"a"))).await), 4);
    let drc = server.dispatcher.stats().drc;
    assert_eq!((drc.hits, drc.misses), (1, 4));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drc_replays_on_a_new_connection_and_over_udp() {
    let server = start(TransportLimits::default()).await;
    let req = call(5, INCREMENT, &increment_args(0, b"x"));
    let first = {
        let mut a = Client::connect(server.tcp).await;
        a.call(&req).await
    };
    let mut b = Client::connect(server.tcp).await;
    assert_eq!(b.call(&req).await, first);
    assert_eq!(server.executions(), 1);

    let u = udp_client().await;
    let udp_req = call(6, INCREMENT, &increment_args(0, b"y"));
    u.send_to(&udp_req, server.udp).await.unwrap();
    let udp_first = udp_recv(&u, REPLY_WAIT).await.unwrap();
    assert_eq!(counter_value(&udp_first), 2);
    u.send_to(&udp_req, server.udp).await.unwrap();
    assert_eq!(udp_recv(&u, REPLY_WAIT).await.unwrap(), udp_first);
    // The client switching transport from the same address is still the same call.
    assert_eq!(b.call(&udp_req).await, udp_first);
    assert_eq!(server.executions(), 2);
    assert_eq!(server.dispatcher.stats().drc.hits, 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_of_an_executing_call_gets_the_same_reply() {
    let server = start(TransportLimits::default()).await;
    let req = call(9, INCREMENT, &increment_args(500, b"slow"));
    let mut a = Client::connect(server.tcp).await;
    let mut b = Client::connect(server.tcp).await;
    a.send(&req).await;
    // The original has begun: its cache entry is in progress while it runs for 500 ms.
    wait_until_async("the original call begins", REPLY_WAIT, || {
        (server.dispatcher.stats().drc.misses == 1).then_some(())
    })
    .await;
    b.send(&req).await;
    let (ra, rb) = tokio::join!(a.recv(), b.recv());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra, rb);
    assert_eq!(counter_value(&ra), 1);
    assert_eq!(server.executions(), 1);
    let drc = server.dispatcher.stats().drc;
    assert_eq!((drc.parked, drc.park_dropped, drc.misses), (1, 0, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_reply_too_large_is_not_sent() {
    let server = start(TransportLimits::default()).await;
    let u = udp_client().await;
    u.send_to(&call(1, BIG, &u32_arg(70_000)), server.udp).await.unwrap();
    assert_eq!(udp_recv(&u, Duration::from_millis(500)).await, None);
    assert_eq!(server.dispatcher.stats().udp_replies_too_large, 1);
    u.send_to(&call(2, BIG, &u32_arg(60_000)), server.udp).await.unwrap();
    let reply = udp_recv(&u, REPLY_WAIT).await.unwrap();
    let (h, mut r) = parse(&reply);
    assert_eq!(h.xid, 2);
    assert_eq!(r.opaque("data", 65_536).unwrap().len(), 60_000);

    // RPC errors over UDP too.
    u.send_to(&call_with(3, 2, PROG, 9, NULL, auth_sys(), &[]), server.udp).await.unwrap();
    let (h, _) = parse(&udp_recv(&u, REPLY_WAIT).await.unwrap());
    assert_eq!((h.xid, accepted_status(&h)), (3, AcceptedStatus::ProgMismatch { low: 1, high: 2 }));
    server.stop().await;
}

/// On tokio's paused clock: the idle timeout is tokio time, so the test moves the clock past it
/// instead of waiting for it.
#[tokio::test(start_paused = true)]
async fn idle_connections_close_but_busy_ones_do_not() {
    let limits = TransportLimits { idle_timeout: Duration::from_millis(200), ..TransportLimits::default() };
    let server = start(limits).await;
    let mut busy = Client::connect(server.tcp).await;
    // Waiting for its own slow request is not idleness: the clock passes the idle timeout three
    // times over while the request runs (on the blocking pool, in real time).
    busy.send(&call(1, SLEEP, &u32_arg(700))).await;
    wait_until_async("the slow request is dispatched", REPLY_WAIT, || {
        (server.dispatcher.stats().calls_to(PROG, 1, SLEEP) == 1).then_some(())
    })
    .await;
    tokio::time::advance(Duration::from_millis(600)).await;
    let reply = busy.recv().await.expect("the busy connection stays open for its reply");
    assert_eq!(parse(&reply).0.xid, 1);
    // A connection closed while its request ran would still have flushed that reply; only a
    // call after it shows the connection was left open.
    busy.send(&call(2, NULL, &[])).await;
    let after = busy.recv().await.expect("the busy connection was not closed as idle");
    assert_eq!(parse(&after).0.xid, 2);

    let mut idle = Client::connect(server.tcp).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(idle.recv().await, None, "an idle connection is closed");
    assert!(server.dispatcher.stats().connections_idle_closed >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let server = start(TransportLimits::default()).await;
    let mut c = Client::connect(server.tcp).await;
    let u = udp_client().await;
    c.send(&call(1, SLEEP, &u32_arg(600))).await;
    u.send_to(&call(2, SLEEP, &u32_arg(600)), server.udp).await.unwrap();
    // Both calls are in flight (each runs for 600 ms) when the shutdown begins.
    wait_until_async("both calls are dispatched", REPLY_WAIT, || {
        (server.dispatcher.stats().calls_to(PROG, 1, SLEEP) == 2).then_some(())
    })
    .await;
    server.shutdown.cancel();

    let reply = c.recv().await.expect("the in-flight reply is flushed before closing");
    let (h, mut r) = parse(&reply);
    assert_eq!((h.xid, accepted_status(&h)), (1, AcceptedStatus::Success));
    assert_eq!(r.u32().unwrap(), 600);
    assert_eq!(c.recv().await, None, "then the connection closes");
    let udp_reply = udp_recv(&u, REPLY_WAIT).await.expect("the in-flight UDP reply is sent");
    assert_eq!(parse(&udp_reply).0.xid, 2);

    server.stop().await;
    assert!(TcpStream::connect(server.tcp).await.is_err(), "the listener is closed after shutdown");
}

/// A call of a connection closed while it waits for a pool slot is never executed: the calls an
/// evicted connection left queued cannot pile up behind the one slot it held in the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_the_pool_is_dropped_when_its_connection_closes() {
    let program = Arc::new(TestProgram::default());
    let programs: [Arc<dyn Program>; 1] = [program.clone()];
    let config = DispatcherConfig { workers: 1, workers_per_client: 1, ..DispatcherConfig::default() };
    let dispatcher = Arc::new(Dispatcher::new(programs, config));
    let peer: SocketAddr = "127.0.0.1:800".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:2049".parse().unwrap();
    let busy = {
        let d = dispatcher.clone();
        let record = Bytes::from(call(1, INCREMENT, &increment_args(400, b"slow")));
        tokio::spawn(async move { d.handle(record, peer, local, Transport::Tcp).await })
    };
    wait_until_async("the slow call holds the only pool slot", REPLY_WAIT, || {
        (dispatcher.stats().calls_to(PROG, 1, INCREMENT) == 1).then_some(())
    })
    .await;
    let closed = CancellationToken::new();
    let queued = {
        let (d, closed) = (dispatcher.clone(), closed.clone());
        let record = Bytes::from(call(2, INCREMENT, &increment_args(0, b"queued")));
        tokio::spawn(async move { d.handle_until(record, peer, local, Transport::Tcp, Some(&closed)).await })
    };
    wait_until_async("the second call waits for the slot", REPLY_WAIT, || {
        (dispatcher.stats().calls_to(PROG, 1, INCREMENT) == 2).then_some(())
    })
    .await;
    closed.cancel();
    assert_eq!(queued.await.unwrap(), None, "no reply for a closed connection");
    assert_eq!(counter_value(&busy.await.unwrap().unwrap()), 1);
    // It never ran, and its cache entry is gone: a retransmission runs it once.
    assert_eq!(program.counter.load(Ordering::SeqCst), 1);
    let again = Bytes::from(call(2, INCREMENT, &increment_args(0, b"queued")));
    let reply = dispatcher.handle(again, peer, local, Transport::Tcp).await.unwrap();
    assert_eq!(counter_value(&reply), 2);
}
