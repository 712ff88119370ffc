//! The fault proxy (rnfsd-faultproxy) in front of a real rnfsd: each action does what it says,
//! on the calls its rule matches, and the event log records it.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rnfsd_faultproxy::{Action, EventKind, FaultProxy, Rule};
use rnfsd_test_support::*;
use xdr::Xdr;
use xdr::nfs3::*;

fn start(ts: &TestServer) -> FaultProxy {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    ts.runtime().block_on(FaultProxy::start(listen, ts.addr())).expect("the proxy starts")
}

fn rule(text: &str) -> Rule {
    text.parse().unwrap()
}

/// A raw TCP connection through the proxy.
struct Raw {
    s: TcpStream,
    cred: xdr::rpc::OpaqueAuth,
}

impl Raw {
    fn connect(proxy: &FaultProxy) -> Raw {
        let s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw { s, cred: auth_sys(0, 0, &[]) }
    }

    fn send(&mut self, xid: u32, proc_: u32, args: &[u8]) {
        let msg = call_message(xid, NFS, 3, proc_, &self.cred, args);
        self.s.write_all(&record(&msg)).unwrap();
    }

    /// The next reply's xid and body, or `None` at end of stream.
    fn reply(&mut self) -> Option<(u32, bytes::Bytes)> {
        let r = read_record(&mut self.s)?;
        let xid = reply_xid(&r);
        Some((xid, parse_reply(xid, &r).expect("accepted")))
    }
}

/// The faults logged once there are at least `n`.
fn wait_for_faults(proxy: &FaultProxy, n: usize) -> Vec<rnfsd_faultproxy::Event> {
    wait_until(&format!("{n} faults take effect"), Duration::from_secs(5), || {
        Some(proxy.fired()).filter(|fired| fired.len() >= n)
    })
}

#[test]
fn drop_reply_swallows_only_the_matching_reply_and_keeps_the_connection() {
    let ts = TestServer::rw();
    let proxy = start(&ts);
    proxy.add_rule(rule("drop-reply NULL skip=1"));
    let mut c = Raw::connect(&proxy);
    c.send(1, procs::NULL, &[]);
    assert_eq!(c.reply().map(|r| r.0), Some(1), "skip=1 lets the first match through");
    c.send(2, procs::NULL, &[]);
    c.send(3, procs::NULL, &[]);
    assert_eq!(c.reply().map(|r| r.0), Some(3), "the reply to 2 was swallowed; the connection lives");
    // The reply to 2 may come back after the reply to 3.
    let fired = wait_for_faults(&proxy, 1);
    assert_eq!(fired.len(), 1);
    assert_eq!((fired[0].call.xid, fired[0].fired()), (2, Some(Action::DropReply)));
    assert!(proxy.rules().is_empty(), "count=1 is used up");
}

#[test]
fn close_after_forward_delivers_the_call_and_closes_before_the_reply() {
    let ts = TestServer::rw();
    let (mut direct, root) = ts.client();
    std::fs::write(ts.path("f"), b"x").unwrap();
    let proxy = start(&ts);
    proxy.add_rule(rule("close-after-forward REMOVE"));
    let mut c = Raw::connect(&proxy);
    c.send(7, procs::REMOVE, &REMOVE3args { object: dirop(&root, "f") }.to_bytes());
    assert_eq!(c.reply(), None, "closed without a reply");
    // The call itself reached the server.
    wait_until("the forwarded REMOVE runs", Duration::from_secs(5), || {
        (!ts.path("f").exists()).then_some(())
    });
    assert_eq!(direct.remove(&root, "f").status(), nfsstat3::NFS3ERR_NOENT);
    assert_eq!(proxy.fired()[0].fired(), Some(Action::CloseAfterForward));
}

#[test]
fn delays_hold_the_call_or_the_reply() {
    let ts = TestServer::rw();
    let (_, root) = ts.client();
    let proxy = start(&ts);
    let args = GETATTR3args { object: root }.to_bytes();
    for text in ["delay-call 300 GETATTR", "delay-reply 300 GETATTR"] {
        proxy.add_rule(rule(text));
        let mut c = Raw::connect(&proxy);
        let started = Instant::now();
        c.send(1, procs::GETATTR, &args);
        let (xid, body) = c.reply().expect("a reply");
        let took = started.elapsed();
        assert_eq!(xid, 1);
        assert_eq!(GETATTR3res::from_bytes(&body).unwrap().status(), nfsstat3::NFS3_OK);
        assert!(took >= Duration::from_millis(300), "{text}: answered after {took:?}");
        // Once used up, the rule no longer delays.
        let started = Instant::now();
        c.send(2, procs::GETATTR, &args);
        assert_eq!(c.reply().map(|r| r.0), Some(2));
        assert!(started.elapsed() < Duration::from_millis(300), "{text}: delayed twice");
    }
    let fired: Vec<_> = proxy.fired().iter().filter_map(|e| e.fired()).collect();
    assert_eq!(
        fired,
        [Action::DelayCall(Duration::from_millis(300)), Action::DelayReply(Duration::from_millis(300))]
    );
}

#[test]
fn duplicate_call_reaches_the_server_twice_and_the_client_once() {
    let ts = TestServer::rw();
    let (_, root) = ts.client();
    std::fs::write(ts.path("f"), b"x").unwrap();
    let proxy = start(&ts);
    proxy.add_rule(rule("duplicate-call REMOVE"));
    let before = ts.stats();
    let mut c = Raw::connect(&proxy);
    c.send(9, procs::REMOVE, &REMOVE3args { object: dirop(&root, "f") }.to_bytes());
    let (xid, body) = c.reply().expect("a reply");
    assert_eq!(xid, 9);
    assert_eq!(REMOVE3res::from_bytes(&body).unwrap().status(), nfsstat3::NFS3_OK);
    // The next reply on the connection is the next call's: the duplicate's reply was swallowed.
    c.send(10, procs::NULL, &[]);
    assert_eq!(c.reply().map(|r| r.0), Some(10));
    let after = ts.stats();
    assert_eq!(after.calls_to(NFS, 3, procs::REMOVE) - before.calls_to(NFS, 3, procs::REMOVE), 2);
    assert_eq!(after.drc.misses - before.drc.misses, 1, "the server executed it once");
    assert_eq!(
        (after.drc.hits + after.drc.parked) - (before.drc.hits + before.drc.parked),
        1,
        "the copy was answered from the cache"
    );
    assert!(!ts.path("f").exists());
}

#[test]
fn reorder_sends_the_next_call_first() {
    let ts = TestServer::rw();
    let (_, root) = ts.client();
    let proxy = start(&ts);
    proxy.add_rule(rule("reorder GETATTR"));
    let mut c = Raw::connect(&proxy);
    c.send(1, procs::GETATTR, &GETATTR3args { object: root }.to_bytes());
    c.send(2, procs::NULL, &[]);
    let mut xids = [c.reply().unwrap().0, c.reply().unwrap().0];
    xids.sort();
    assert_eq!(xids, [1, 2], "both calls answered");
    // The log shows call 2 forwarded before call 1 was released.
    let order: Vec<_> = proxy
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Call | EventKind::Fired(Action::Reorder)))
        .map(|e| (e.call.xid, e.kind))
        .collect();
    assert_eq!(order, [(2, EventKind::Call), (1, EventKind::Fired(Action::Reorder))]);
}

#[test]
fn traffic_is_logged_per_call_and_reply_with_procedure_names() {
    let ts = TestServer::rw();
    let proxy = start(&ts);
    let mut c = Raw::connect(&proxy);
    c.send(0x42, procs::NULL, &[]);
    c.reply().unwrap();
    let lines: Vec<String> = proxy.events().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "conn=1 xid=0x00000042 prog=100003 proc=NULL call",
            "conn=1 xid=0x00000042 prog=100003 proc=NULL reply"
        ]
    );
}

#[test]
fn traffic_log_shows_write_ranges_stability_and_verifiers() {
    let ts = TestServer::rw();
    let proxy = start(&ts);
    let (mut direct, root) = ts.client();
    let fh = direct.create_file(&root, "f");
    let mut c = Client::tcp(proxy.addr());
    let w = c.write(&fh, 8192, b"0123456789", stable_how::UNSTABLE).ok().expect("WRITE");
    let commit: COMMIT3res = c.nfs(procs::COMMIT, &COMMIT3args { file: fh.clone(), offset: 4096, count: 0 });
    let commit = commit.ok().expect("COMMIT");
    assert_eq!(w.verf, commit.verf);
    let verf: String = w.verf.iter().map(|b| format!("{b:02x}")).collect();
    // Strip the xids, which the client picks at random.
    let lines: Vec<String> = proxy
        .events()
        .iter()
        .map(|e| {
            let line = e.to_string();
            let (_, rest) = line.split_once(" prog=").unwrap();
            rest.to_owned()
        })
        .collect();
    assert_eq!(
        lines,
        [
            "100003 proc=WRITE call offset=8192 count=10 stable=UNSTABLE".to_owned(),
            format!("100003 proc=WRITE reply count=10 committed=UNSTABLE verf={verf}"),
            "100003 proc=COMMIT call offset=4096 count=0".to_owned(),
            format!("100003 proc=COMMIT reply verf={verf}"),
        ]
    );
}
