//! Network locking (NLM v4 and NSM v1, issue 18) on the wire: every procedure, conflicts between
//! owners of one client and between two clients, ranges, the 64-bit limits, host-process locks,
//! blocking locks and their callbacks, CANCEL, grace after a restart, client crashes, and bad
//! input. Expectations come from docs/nlm.md and the server interface of issue 18.
//!
//! Two client hosts, A at 127.0.0.2 ("hosta") and B at 127.0.0.3 ("hostb"), each with a callback
//! listener (its portmapper, NLM and NSM) on the same portmapper port, which the server is given
//! as `locks.peer_portmap_port`. The server listens on 127.0.0.1, so callbacks must come from
//! there.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rnfsd::config::Config;
use rnfsd_test_support::callback::{CallbackListener, ClosedPort, Via};
use rnfsd_test_support::hostlock::{HostConflict, HostFile, LockType};
use rnfsd_test_support::net::connect_from;
use rnfsd_test_support::nlm::{NLM, NSM, NlmClient, Owner, range, sm_notify_udp, test_granted};
use rnfsd_test_support::wire::RpcFailure;
use rnfsd_test_support::{Client, TestServer, TestServerBuilder, poll_until};
use xdr::Xdr;
use xdr::nfs3::nfs_fh3;
use xdr::nlm::{
    fsh4_access, fsh4_mode, netobj, nlm4_holder, nlm4_lockargs, nlm4_proc, nlm4_res, nlm4_stats,
    nlm4_testargs, nlm4_testres, nlm4_testrply, nlm4_unlockargs,
};
use xdr::rpc::AcceptedStatus;

use nlm4_stats::{Blocked, Denied, DeniedGracePeriod, Failed, Fbig, Granted, Rofs, StaleFh};

const A_IP: [u8; 4] = [127, 0, 0, 2];
const B_IP: [u8; 4] = [127, 0, 0, 3];
/// A third host that holds no locks.
const C_IP: [u8; 4] = [127, 0, 0, 4];
/// The server's own host: its lock manager (as a local NFS client's lockd) asks rnfsd, the
/// host's status monitor, from here.
const LOCAL_IP: [u8; 4] = [127, 0, 0, 1];

const SECOND: Duration = Duration::from_secs(1);
/// How often a test re-sends a call while it waits for its answer to change.
const REPOLL: Duration = Duration::from_millis(50);
const MAX: u64 = i64::MAX as u64;

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// What the server's callbacks to A and B find at their portmapper port.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peers {
    /// Their callback listeners.
    Listening,
    /// Nothing: connections are refused.
    Closed,
    /// A port that accepts connections and never answers: every call waits for its timeout.
    Silent,
}

/// A server, a file on it, and two client hosts with their callback listeners.
struct Rig {
    ts: TestServer,
    a: NlmClient,
    b: NlmClient,
    /// A's, B's and this host's listeners; empty for a rig whose callbacks are unreachable.
    listeners: Vec<CallbackListener>,
    /// For such a rig, the peer portmapper port, kept reserved.
    _closed: Option<ClosedPort>,
    /// The `locks.peer_portmap_port` the server was given.
    peer_port: u16,
    /// A regular file of the export, `f`.
    fh: nfs_fh3,
    /// The export's root directory.
    root: nfs_fh3,
}

impl Rig {
    fn new() -> Rig {
        Rig::build(TestServer::builder(), Peers::Listening, |_| {})
    }

    /// A rig whose server also gets `f` applied to its configuration.
    fn with(f: impl Fn(&mut Config) + Send + Sync + 'static) -> Rig {
        Rig::build(TestServer::builder(), Peers::Listening, f)
    }

    /// `peers`: whether A and B run callback listeners, or what the server's callbacks find
    /// instead.
    fn build(
        builder: TestServerBuilder,
        peers: Peers,
        f: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Rig {
        let hosts = [ip(A_IP), ip(B_IP)];
        let (peer_port, listeners, closed) = match peers {
            Peers::Listening => {
                let (port, listeners) = CallbackListener::start_on(&[ip(A_IP), ip(B_IP), ip(LOCAL_IP)]);
                (port, listeners, None)
            }
            Peers::Closed | Peers::Silent => {
                let closed = if peers == Peers::Closed {
                    ClosedPort::reserve(&hosts)
                } else {
                    ClosedPort::silent(&hosts)
                };
                (closed.port, Vec::new(), Some(closed))
            }
        };
        let ts = builder
            .configure(move |c| {
                c.locks.peer_portmap_port = peer_port;
                f(c)
            })
            .start();
        // Made on the host, so that a read-only export has one too.
        std::fs::write(ts.path("f"), b"").unwrap();
        let (mut c, root) = ts.client();
        let fh = c.lookup_fh(&root, "f");
        let a = NlmClient::connect(ip(A_IP), ts.addr(), "hosta");
        let b = NlmClient::connect(ip(B_IP), ts.addr(), "hostb");
        Rig { ts, a, b, listeners, _closed: closed, peer_port, fh, root }
    }

    fn la(&self) -> &CallbackListener {
        &self.listeners[0]
    }

    fn lb(&self) -> &CallbackListener {
        &self.listeners[1]
    }

    /// This host's own lock manager (the one rnfsd is the status monitor of).
    fn local_lockd(&self) -> &CallbackListener {
        &self.listeners[2]
    }

    /// This host's lock manager as an NSM caller: from the server's address, a privileged port.
    fn local_nsm(&self) -> NlmClient {
        NlmClient::connect_privileged(ip(LOCAL_IP), self.ts.addr(), "thishost")
    }

    /// Restarts the server (same export and state directory) and reconnects A and B.
    fn restart(&mut self) {
        self.ts.restart();
        self.a.reconnect(self.ts.addr());
        self.b.reconnect(self.ts.addr());
    }

    /// A new regular file of the export and its handle.
    fn file(&self, name: &str) -> nfs_fh3 {
        let (mut c, root) = self.ts.client();
        c.create_file(&root, name)
    }

    fn host_file(&self) -> HostFile {
        HostFile::open(&self.ts.path("f"))
    }

    fn nsm_state(&self) -> i32 {
        read_nsm_state(&self.ts)
    }
}

fn read_nsm_state(ts: &TestServer) -> i32 {
    let path = ts.state_path().join("nsm-state");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim().parse().unwrap_or_else(|e| panic!("nsm-state {text:?}: {e}"))
}

fn nlm_clients(ts: &TestServer) -> String {
    std::fs::read_to_string(ts.state_path().join("nlm-clients")).unwrap_or_default()
}

fn holder(r: nlm4_testrply) -> nlm4_holder {
    match r {
        nlm4_testrply::Denied(h) => h,
        other => panic!("expected TEST DENIED with a holder, got {other:?}"),
    }
}

/// The owner handle as bytes, for comparing with a holder's.
fn oh(o: &Owner) -> netobj {
    o.oh.clone()
}

// ---------------------------------------------------------------------------------------------
// Every procedure

#[test]
fn null_is_answered_on_nlm_and_nsm() {
    let mut r = Rig::new();
    r.a.null();
    r.a.sm_null();
}

#[test]
fn locks_off_leaves_nlm_and_nsm_unavailable() {
    let mut r = Rig::with(|c| c.locks.enabled = false);
    assert_eq!(
        r.a.call_raw(NLM, 4, nlm4_proc::NULL, &[]),
        Err(RpcFailure::Accepted(AcceptedStatus::ProgUnavail))
    );
    assert_eq!(r.a.call_raw(NSM, 1, 0, &[]), Err(RpcFailure::Accepted(AcceptedStatus::ProgUnavail)));
}

#[test]
fn lock_then_test_from_another_client_reports_the_holder() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    let h = holder(r.b.test(&b0, &r.fh, false, range(50, 10)));
    assert_eq!(h, nlm4_holder { exclusive: true, svid: 0, oh: oh(&a0), l_offset: 0, l_len: 100 });
    // The holder's own TEST sees no conflict with itself.
    assert!(test_granted(&r.a.test(&a0, &r.fh, true, range(0, 100))));
    // Outside the range: no conflict.
    assert!(test_granted(&r.b.test(&b0, &r.fh, true, range(100, 10))));
}

#[test]
fn test_does_not_take_the_lock() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert!(test_granted(&r.a.test(&a0, &r.fh, true, range(0, 100))));
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn unlock_releases_the_lock() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn unlock_of_nothing_is_granted() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
}

#[test]
fn cancel_with_nothing_to_cancel_is_denied() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    assert_eq!(r.a.cancel(&a0, &r.fh, true, range(0, 100)), Denied);
}

#[test]
fn a_resent_lock_is_idempotent() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    let args = r.a.lock_args(&a0, &r.fh, true, range(0, 100));
    assert_eq!(r.a.lock_with(&args), Granted);
    assert_eq!(r.a.lock_with(&args), Granted);
    // One UNLOCK releases it: locks do not stack.
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn nm_lock_takes_a_lock() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.nm_lock(&a0, &r.fh, true, range(0, 10)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(5, 1)), Denied);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 10)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(5, 1)), Granted);
}

#[test]
fn nm_lock_is_not_monitored_so_a_restart_has_no_grace() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.nm_lock(&a0, &r.fh, true, range(0, 10)), Granted);
    assert!(!nlm_clients(&r.ts).contains("hosta"), "NM_LOCK recorded its client: {:?}", nlm_clients(&r.ts));
    r.restart();
    // Default grace is 90 s: a grace period here would answer DENIED_GRACE_PERIOD.
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 10)), Granted);
}

#[test]
fn share_and_unshare_are_refused_cleanly() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    for proc_ in [nlm4_proc::SHARE, nlm4_proc::UNSHARE] {
        let res = r.a.share(proc_, &a0, &r.fh, fsh4_mode::DenyWrite, fsh4_access::Read);
        assert_ne!(res.stat, Granted, "procedure {proc_} answered {res:?}");
    }
}

#[test]
fn free_all_releases_every_lock_of_the_named_client() {
    let mut r = Rig::new();
    let (a0, a1, b0) = (r.a.owner(0), r.a.owner(1), r.b.owner(0));
    let g = r.file("g");
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 10)), Granted);
    assert_eq!(r.a.lock(&a1, &g, true, range(0, 0)), Granted);
    // Someone else's FREE_ALL for B leaves A's locks alone.
    r.b.free_all("hostb", 5);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 10)), Denied);
    r.a.free_all("hosta", 5);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 10)), Granted);
    assert_eq!(r.b.lock(&b0, &g, true, range(0, 0)), Granted);
}

#[test]
fn free_all_wakes_a_blocked_waiter_of_another_client() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 10)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 10)), Blocked);
    r.a.free_all("hosta", 5);
    let (from, args) = r.lb().wait_granted(2 * SECOND);
    assert_eq!(from.ip(), r.ts.addr().ip(), "GRANTED comes from the address B's LOCK went to");
    assert_eq!(args.alock.svid, 0);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 10)), Denied, "B holds it now");
}

// ---------------------------------------------------------------------------------------------
// The _MSG and _RES forms

#[test]
fn lock_msg_result_comes_back_as_lock_res_from_the_server_address() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    let args = r.a.lock_args(&a0, &r.fh, true, range(0, 10));
    let cookie = r.a.lock_msg(&args);
    r.la().wait_call(NLM, nlm4_proc::LOCK_RES, 2 * SECOND);
    let res = r.la().res(nlm4_proc::LOCK_RES);
    assert_eq!(res.len(), 1, "{res:?}");
    assert_eq!(res[0].0.ip(), r.ts.addr().ip());
    assert_eq!(res[0].1, nlm4_res { cookie, stat: Granted });
    // The lock was really taken.
    let b0 = r.b.owner(0);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 10)), Denied);
}

#[test]
fn test_msg_result_comes_back_as_test_res_with_the_holder() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 10)), Granted);
    let cookie = r.b.test_msg(&b0, &r.fh, true, range(5, 10));
    r.lb().wait_call(NLM, nlm4_proc::TEST_RES, 2 * SECOND);
    let res = r.lb().test_res();
    assert_eq!(res[0].0.ip(), r.ts.addr().ip());
    let want = nlm4_holder { exclusive: false, svid: 0, oh: oh(&a0), l_offset: 0, l_len: 10 };
    assert_eq!(res[0].1, nlm4_testres { cookie, test_stat: nlm4_testrply::Denied(want) });
}

#[test]
fn unlock_msg_and_cancel_msg_results_come_back_as_res_calls() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 10)), Granted);
    let cookie = r.a.unlock_msg(&a0, &r.fh, range(0, 10));
    r.la().wait_call(NLM, nlm4_proc::UNLOCK_RES, 2 * SECOND);
    assert_eq!(r.la().res(nlm4_proc::UNLOCK_RES)[0].1, nlm4_res { cookie, stat: Granted });
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 10)), Granted, "UNLOCK_MSG released it");

    let cookie = r.a.cancel_msg(&a0, &r.fh, true, range(0, 10));
    r.la().wait_call(NLM, nlm4_proc::CANCEL_RES, 2 * SECOND);
    assert_eq!(r.la().res(nlm4_proc::CANCEL_RES)[0].1, nlm4_res { cookie, stat: Denied });
}

#[test]
fn res_forms_are_accepted_with_a_void_reply() {
    let mut r = Rig::new();
    let res = nlm4_res { cookie: r.a.cookie(), stat: Granted };
    for proc_ in [nlm4_proc::LOCK_RES, nlm4_proc::CANCEL_RES, nlm4_proc::UNLOCK_RES, nlm4_proc::GRANTED_RES] {
        r.a.res(proc_, &res);
    }
    let test_res = nlm4_testres { cookie: r.a.cookie(), test_stat: nlm4_testrply::Other(Granted) };
    r.a.res(nlm4_proc::TEST_RES, &test_res);
    // Still serving.
    r.a.null();
}

// ---------------------------------------------------------------------------------------------
// Conflicts and ranges

#[test]
fn two_owners_of_one_client_conflict() {
    let mut r = Rig::new();
    let (a0, a1) = (r.a.owner(0), r.a.owner(1));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.a.lock(&a1, &r.fh, true, range(50, 100)), Denied);
    assert_eq!(r.a.lock(&a1, &r.fh, true, range(100, 100)), Granted, "disjoint ranges do not conflict");
    let h = holder(r.a.test(&a1, &r.fh, false, range(0, 1)));
    assert_eq!((h.svid, h.oh), (0, oh(&a0)));
}

#[test]
fn two_clients_with_the_same_svid_conflict() {
    // svids start at 0 on every Linux client: the server must not take B's owner 0 for A's.
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(99, 1)), Denied);
    assert_eq!(r.b.unlock(&b0, &r.fh, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied, "B's UNLOCK did not release A's lock");
}

#[test]
fn same_name_and_owner_from_two_addresses_are_two_owners() {
    // Two hosts behind one name (a naive rig): owners are keyed by address too.
    let mut r = Rig::new();
    let mut twin = NlmClient::connect(ip(B_IP), r.ts.addr(), "hosta");
    let a0 = r.a.owner(0);
    let t0 = twin.owner(0);
    assert_eq!(a0, t0);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(twin.lock(&t0, &r.fh, true, range(0, 100)), Denied);
}

#[test]
fn unlocking_the_middle_splits_a_lock() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(40, 20)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(45, 10)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(10, 10)), Denied);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(70, 10)), Denied);
    // The two pieces, as TEST reports them.
    let h = holder(r.b.test(&b0, &r.fh, true, range(0, 30)));
    assert_eq!((h.l_offset, h.l_len, h.svid), (0, 40, 0));
    let h = holder(r.b.test(&b0, &r.fh, true, range(80, 30)));
    assert_eq!((h.l_offset, h.l_len), (60, 40));
    // And as a host process sees them.
    let host = r.host_file();
    let c = host.conflict(LockType::Read, 60, 1).expect("the upper piece on the host");
    assert_eq!((c.kind, c.start, c.len), (LockType::Write, 60, 40));
}

#[test]
fn adjacent_locks_of_one_owner_merge() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 50)), Granted);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(50, 50)), Granted);
    let h = holder(r.b.test(&b0, &r.fh, true, range(0, 200)));
    assert_eq!((h.l_offset, h.l_len), (0, 100), "one merged range");
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn readers_share_and_a_writer_conflicts() {
    let mut r = Rig::new();
    let (a0, a1, b0) = (r.a.owner(0), r.a.owner(1), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(50, 100)), Granted);
    assert_eq!(r.a.lock(&a1, &r.fh, true, range(120, 10)), Denied, "B's read lock");
    assert!(test_granted(&r.a.test(&a1, &r.fh, false, range(0, 200))), "readers do not conflict");
    let h = holder(r.a.test(&a1, &r.fh, true, range(0, 10)));
    assert_eq!((h.exclusive, h.svid, h.l_offset, h.l_len), (false, 0, 0, 100));
}

#[test]
fn one_owner_upgrades_read_to_write() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 100)), Granted);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(10, 1)), Denied);
    assert!(holder(r.b.test(&b0, &r.fh, false, range(10, 1))).exclusive);
    // And back down to read.
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(10, 1)), Granted);
}

#[test]
fn a_failed_upgrade_keeps_the_read_lock() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 100)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(0, 100)), Granted);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Denied);
    assert_eq!(r.b.unlock(&b0, &r.fh, range(0, 100)), Granted);
    let h = holder(r.b.test(&b0, &r.fh, true, range(0, 100)));
    assert_eq!((h.exclusive, h.l_offset, h.l_len, h.oh), (false, 0, 100, oh(&a0)));
}

#[test]
fn zero_length_locks_to_the_end_of_the_file() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(1000, 0)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(1 << 40, 10)), Denied);
    assert_eq!(r.b.lock(&b0, &r.fh, false, range(MAX - 1, 1)), Denied);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 1000)), Granted);
    let h = holder(r.b.test(&b0, &r.fh, false, range(5000, 1)));
    assert_eq!((h.l_offset, h.l_len), (1000, 0), "to end of file is reported as length 0");
    let c = r.host_file().conflict(LockType::Read, 1 << 50, 1).expect("seen on the host");
    assert_eq!((c.start, c.len), (1000, 0));
}

#[test]
fn offsets_up_to_2_63_minus_1_work_and_beyond_are_fbig() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(MAX - 1, 1)), Granted, "the last byte but one");
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(1 << 62, 10)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(MAX - 1, 1)), Denied);
    let h = holder(r.b.test(&b0, &r.fh, true, range(1 << 62, 1)));
    assert_eq!((h.l_offset, h.l_len), (1 << 62, 10));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(MAX + 1, 1)), Fbig, "offset 2^63");
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(MAX + 1, 0)), Fbig, "offset 2^63 to end of file");
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(u64::MAX, 1)), Fbig);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(MAX - 1, 10)), Fbig, "a range ending past 2^63-1");
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, u64::MAX)), Fbig);
    match r.b.test(&b0, &r.fh, true, range(MAX + 1, 1)) {
        nlm4_testrply::Other(Fbig) => {}
        other => panic!("TEST at 2^63: expected FBIG, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Host processes

#[test]
fn a_host_lock_denies_lock_and_test_reports_svid_0() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    let host = r.host_file();
    host.lock(LockType::Write, 0, 10);
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(5, 10)), Denied);
    let h = holder(r.a.test(&a0, &r.fh, false, range(5, 10)));
    assert_eq!(h, nlm4_holder { exclusive: true, svid: 0, oh: netobj::default(), l_offset: 0, l_len: 10 });
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(10, 10)), Granted, "next to it is free");
    host.unlock(0, 10);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 10)), Granted);
}

#[test]
fn a_host_read_lock_shares_with_nfs_readers() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    let host = r.host_file();
    host.lock(LockType::Read, 0, 100);
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 100)), Granted);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Denied);
}

#[test]
fn an_nfs_lock_is_seen_by_a_host_process() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(10, 10)), Granted);
    let host = r.host_file();
    let c = host.conflict(LockType::Read, 0, 100).expect("F_OFD_GETLK sees the NFS lock");
    assert_eq!(c, HostConflict { kind: LockType::Write, start: 10, len: 10, pid: -1 });
    assert_eq!(host.try_lock(LockType::Read, 15, 1), Err(nix::errno::Errno::EAGAIN));
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 0)), Granted);
    assert_eq!(host.conflict(LockType::Write, 0, 0), None, "gone after UNLOCK");
    host.lock(LockType::Write, 0, 0);
}

#[test]
fn two_owners_locks_are_both_seen_by_the_host() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(0, 10)), Granted);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(20, 10)), Granted);
    let host = r.host_file();
    assert_eq!(host.conflict(LockType::Write, 0, 10).map(|c| (c.kind, c.start)), Some((LockType::Read, 0)));
    assert_eq!(host.conflict(LockType::Read, 0, 0).map(|c| (c.kind, c.start)), Some((LockType::Write, 20)));
    // A's UNLOCK leaves B's lock on the host.
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 0)), Granted);
    assert_eq!(host.conflict(LockType::Write, 0, 0).map(|c| c.start), Some(20));
}

// ---------------------------------------------------------------------------------------------
// Blocking locks

#[test]
fn a_blocked_lock_is_granted_by_callback_after_the_holder_unlocks() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    let args = nlm4_lockargs { block: true, ..r.b.lock_args(&b0, &r.fh, true, range(10, 10)) };
    assert_eq!(r.b.lock_with(&args), Blocked);
    assert!(r.lb().granted().is_empty(), "no GRANTED while A holds the lock");
    let released = Instant::now();
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    let (from, granted) = r.lb().wait_granted(2 * SECOND);
    eprintln!("GRANTED {:?} after A's UNLOCK", released.elapsed());
    assert_eq!(from.ip(), r.ts.addr().ip(), "GRANTED is sent from the address B's LOCK arrived on");
    assert_eq!(
        granted,
        nlm4_testargs { cookie: args.cookie.clone(), exclusive: true, alock: args.alock.clone() }
    );
    assert!(r.la().granted().is_empty(), "A's listener got no GRANTED");
    // The server took the lock for B before calling back.
    assert_eq!(r.a.lock(&a0, &r.fh, false, range(15, 1)), Denied);
    assert_eq!(r.host_file().conflict(LockType::Read, 0, 0).map(|c| (c.start, c.len)), Some((10, 10)));
    // B's re-sent LOCK (the Linux client's 30 s re-poll) is answered GRANTED.
    assert_eq!(r.b.lock_with(&args), Granted);
}

#[test]
fn the_callback_finds_the_client_nlm_through_its_portmapper() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 1)), Blocked);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 1)), Granted);
    r.lb().wait_granted(2 * SECOND);
    let getport = r.lb().calls_of(rnfsd_test_support::PORTMAP, xdr::portmap::pmap_proc::GETPORT);
    assert!(!getport.is_empty(), "the server asked B's portmapper (port {})", r.peer_port);
    let m = xdr::portmap::mapping::from_bytes(&getport[0].args).unwrap();
    assert_eq!((m.prog, m.vers, m.prot), (NLM, 4, xdr::portmap::IPPROTO_TCP));
    assert_eq!(getport[0].via, Via::Tcp);
}

#[test]
fn a_blocked_lock_of_another_owner_of_the_same_client_is_granted() {
    let mut r = Rig::new();
    let (a0, a1) = (r.a.owner(0), r.a.owner(1));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 10)), Granted);
    assert_eq!(r.a.lock_blocking(&a1, &r.fh, false, range(0, 10)), Blocked);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 10)), Granted);
    let (_, g) = r.la().wait_granted(2 * SECOND);
    assert_eq!((g.alock.svid, g.exclusive), (1, false));
}

#[test]
fn a_blocked_lock_without_a_reachable_callback_is_granted_on_the_resent_lock() {
    let mut r = Rig::build(TestServer::builder(), Peers::Closed, |_| {});
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    let args = nlm4_lockargs { block: true, ..r.b.lock_args(&b0, &r.fh, true, range(0, 100)) };
    assert_eq!(r.b.lock_with(&args), Blocked);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    // The client re-sends its LOCK (every 30 s on Linux; faster here).
    let b = &mut r.b;
    poll_until("B's re-sent LOCK answered GRANTED", 5 * SECOND, REPOLL, || match b.lock_with(&args) {
        Granted => Some(()),
        Blocked => None,
        other => panic!("re-sent LOCK: {other:?}"),
    });
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Denied, "B holds it, once");
    assert_eq!(r.b.unlock(&b0, &r.fh, range(0, 100)), Granted);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
}

#[test]
fn an_unclaimed_grant_is_released() {
    let mut r = Rig::build(TestServer::builder(), Peers::Closed, |c| {
        c.locks.unclaimed_grant = Duration::from_secs(1)
    });
    let (a0, a1, b0) = (r.a.owner(0), r.a.owner(1), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 100)), Blocked);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    // B never comes back: the lock taken for it is released after `unclaimed_grant`, however
    // many times the callback is retried first.
    let a = &mut r.a;
    let fh = r.fh.clone();
    poll_until("the unclaimed lock released", 8 * SECOND, REPOLL, || {
        (a.lock(&a1, &fh, true, range(0, 100)) == Granted).then_some(())
    });
}

/// A stop does not wait for a GRANTED callback to a client that accepts the connection and never
/// answers (5 s per step): the callback task ends with it and lets go of the old run's lock
/// table, so the locks taken there are released by the time the next run serves.
#[test]
fn a_stop_ends_a_granted_callback_to_a_silent_client_and_its_locks_go_with_it() {
    let mut r = Rig::build(TestServer::builder(), Peers::Silent, |_| {});
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 100)), Blocked);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    // The lock is B's now, and its GRANTED waits on B's silent portmapper.
    assert_eq!(r.host_file().conflict(LockType::Write, 0, 0).map(|c| (c.start, c.len)), Some((0, 100)));
    std::thread::sleep(Duration::from_millis(300));
    r.restart();
    let host = r.host_file();
    poll_until("the old run's lock released", SECOND, REPOLL, || {
        host.conflict(LockType::Write, 0, 0).is_none().then_some(())
    });
}

#[test]
fn a_granted_callback_refused_by_the_client_releases_the_lock() {
    let mut r = Rig::new();
    r.lb().set_granted_reply(Denied);
    let (a0, a1, b0) = (r.a.owner(0), r.a.owner(1), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 100)), Blocked);
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    r.lb().wait_granted(2 * SECOND);
    let a = &mut r.a;
    let fh = r.fh.clone();
    poll_until("the refused grant released", 2 * SECOND, REPOLL, || {
        (a.lock(&a1, &fh, true, range(0, 100)) == Granted).then_some(())
    });
}

#[test]
fn a_lock_blocked_by_a_host_process_is_granted_after_the_host_unlocks() {
    let mut r = Rig::new();
    let b0 = r.b.owner(0);
    let host = r.host_file();
    host.lock(LockType::Write, 0, 10);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(5, 10)), Blocked);
    let released = Instant::now();
    host.unlock(0, 10);
    let (from, g) = r.lb().wait_granted(3 * SECOND);
    eprintln!("GRANTED {:?} after the host's unlock", released.elapsed());
    assert_eq!(from.ip(), r.ts.addr().ip());
    assert_eq!((g.alock.l_offset, g.alock.l_len), (5, 10));
    assert_eq!(host.try_lock(LockType::Read, 5, 1), Err(nix::errno::Errno::EAGAIN), "B holds it on the host");
}

#[test]
fn a_cancelled_lock_is_not_granted_when_the_holder_unlocks() {
    let mut r = Rig::new();
    let (a0, a7, b0) = (r.a.owner(0), r.a.owner(7), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 100)), Blocked);
    assert_eq!(r.b.cancel(&b0, &r.fh, true, range(0, 100)), Granted, "a waiter was cancelled");
    assert_eq!(r.a.unlock(&a0, &r.fh, range(0, 100)), Granted);
    // A third owner gets it at once: the cancelled waiter did not.
    assert_eq!(r.a.lock(&a7, &r.fh, true, range(0, 100)), Granted);
    let h = holder(r.b.test(&b0, &r.fh, true, range(0, 100)));
    assert_eq!(h.svid, 7);
    assert!(r.lb().granted().is_empty(), "no GRANTED for a cancelled waiter");
}

#[test]
fn a_second_cancel_finds_nothing() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 100)), Blocked);
    assert_eq!(r.b.cancel(&b0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.b.cancel(&b0, &r.fh, true, range(0, 100)), Denied);
}

// ---------------------------------------------------------------------------------------------
// Server restart: state, grace, reclaim, SM_NOTIFY out

#[test]
fn the_nsm_state_is_odd_rises_by_two_at_each_start_and_sm_stat_reports_it() {
    let mut r = Rig::new();
    let s0 = r.nsm_state();
    assert_eq!(s0 & 1, 1, "odd while running: {s0}");
    let st = r.a.sm_stat("hosta").expect("SM_STAT answered");
    assert_eq!(st.state, s0, "SM_STAT's state is the one in nsm-state");
    r.restart();
    assert_eq!(r.nsm_state(), s0 + 2);
    assert_eq!(r.a.sm_stat("hosta").unwrap().state, s0 + 2);
}

#[test]
fn a_client_is_recorded_before_its_first_lock_is_granted() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    assert!(!nlm_clients(&r.ts).contains("hosta"));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
    let recorded = nlm_clients(&r.ts);
    assert!(recorded.contains("127.0.0.2"), "nlm-clients lacks A's address: {recorded:?}");
    assert!(recorded.contains("hosta"), "nlm-clients lacks A's caller_name: {recorded:?}");
    assert!(!recorded.contains("hostb"), "B took no lock: {recorded:?}");
}

#[test]
fn no_grace_after_a_restart_without_recorded_clients() {
    // Default grace (90 s): a grace period would answer DENIED_GRACE_PERIOD.
    let mut r = Rig::new();
    r.restart();
    let a0 = r.a.owner(0);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
}

#[test]
fn a_reclaim_outside_grace_is_refused() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    assert_ne!(r.a.reclaim(&a0, &r.fh, true, range(0, 1)), Granted);
}

#[test]
fn after_a_restart_only_reclaims_are_granted_until_grace_ends() {
    let grace = Duration::from_secs(2);
    let mut r = Rig::with(move |c| c.locks.grace = grace);
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    r.restart();
    let started = Instant::now();
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(200, 10)), DeniedGracePeriod);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(300, 10)), DeniedGracePeriod);
    assert_eq!(r.a.reclaim(&a0, &r.fh, true, range(0, 100)), Granted, "A reclaims its lock");
    let b = &mut r.b;
    let fh = r.fh.clone();
    poll_until("a normal LOCK granted after grace", grace + 2 * SECOND, REPOLL, || {
        match b.lock(&b0, &fh, true, range(200, 10)) {
            Granted => Some(()),
            DeniedGracePeriod => None,
            other => panic!("LOCK after grace: {other:?}"),
        }
    });
    assert!(
        started.elapsed() + Duration::from_millis(300) >= grace,
        "grace ended after {:?}",
        started.elapsed()
    );
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied, "A's reclaimed lock holds");
}

/// The operator's `locks:` line counts the reclaims granted since the start: a reclaim granted
/// during grace adds one, a LOCK refused for grace adds none.
#[test]
fn a_granted_reclaim_is_counted_in_the_locks_line() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    r.restart();
    let line = || rnfsd::server::report::locks_line(&r.ts.server().lock_counts().expect("locking is on"));
    let before = line();
    assert!(before.contains("grace on"), "{before}");
    assert!(before.ends_with(", 0 reclaim(s) granted"), "{before}");
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(200, 10)), DeniedGracePeriod);
    assert_eq!(r.a.reclaim(&a0, &r.fh, true, range(0, 100)), Granted);
    let after = line();
    assert!(after.ends_with(", 1 reclaim(s) granted"), "{after}");
    assert_eq!(r.ts.server().lock_counts().unwrap().reclaimed, 1);
}

#[test]
fn a_restart_notifies_recorded_clients_with_the_new_state() {
    let mut r = Rig::with(|c| c.locks.grace = Duration::from_secs(2));
    let a0 = r.a.owner(0);
    let before = r.nsm_state();
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
    r.restart();
    r.la().wait_call(NSM, xdr::nsm::sm_proc::NOTIFY, 5 * SECOND);
    let n = r.la().notifies();
    let (from, _, chge) = &n[0];
    assert_eq!(chge.state, before + 2, "SM_NOTIFY carries the new state");
    assert_eq!(chge.mon_name.as_bytes(), b"127.0.0.1", "mon_name is the address A used");
    assert_eq!(from.ip(), r.ts.addr().ip(), "sent from the address A used");
    assert!(r.lb().notifies().is_empty(), "B held no lock and is not notified");
}

/// With `--lock-grace 0` the clients of the previous run are notified once and forgotten at
/// that start: `nlm-clients` no longer lists them, so the next restart does not notify them again.
#[test]
fn without_grace_a_restart_notifies_the_previous_clients_once_and_forgets_them() {
    let mut r = Rig::with(|c| c.locks.grace = Duration::ZERO);
    let a0 = r.a.owner(0);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
    assert!(nlm_clients(&r.ts).contains("hosta"));
    r.restart();
    let first = r.nsm_state();
    r.la().wait_call(NSM, xdr::nsm::sm_proc::NOTIFY, 5 * SECOND);
    assert_eq!(nlm_clients(&r.ts), "", "the notified client is still on record");
    r.restart();
    // The notices of a start go out at once; a second one to A would be here well within this.
    std::thread::sleep(SECOND);
    let states: Vec<i32> = r.la().notifies().iter().map(|(_, _, chge)| chge.state).collect();
    assert_eq!(states, vec![first], "A is told of the first restart only");
}

/// A stop does not wait for the SM_NOTIFY to a recorded client whose portmapper accepts the
/// connection and never answers (GETPORT and the call, over UDP then TCP, 5 s each).
#[test]
fn a_stop_does_not_wait_for_a_notice_to_a_silent_client() {
    let mut r = Rig::build(TestServer::builder(), Peers::Silent, |_| {});
    let a0 = r.a.owner(0);
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 1)), Granted);
    r.restart();
    // The notice to A is under way now, waiting on A's silent portmapper.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    r.restart();
    assert!(started.elapsed() < 3 * SECOND, "the restart took {:?}", started.elapsed());
}

#[test]
fn locks_do_not_survive_a_restart_without_reclaim() {
    let mut r = Rig::with(|c| c.locks.grace = Duration::from_secs(1));
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    r.restart();
    let b = &mut r.b;
    let fh = r.fh.clone();
    poll_until("B's LOCK after grace", 4 * SECOND, REPOLL, || match b.lock(&b0, &fh, true, range(0, 100)) {
        Granted => Some(()),
        DeniedGracePeriod => None,
        other => panic!("LOCK after grace: {other:?}"),
    });
}

// ---------------------------------------------------------------------------------------------
// Client crash: SM_NOTIFY in

#[test]
fn sm_notify_over_udp_from_the_client_releases_its_locks_and_wakes_a_waiter() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    let g = r.file("g");
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    assert_eq!(r.a.lock(&a0, &g, false, range(0, 0)), Granted);
    assert_eq!(r.b.lock_blocking(&b0, &r.fh, true, range(0, 100)), Blocked);
    sm_notify_udp(ip(A_IP), r.ts.udp_addr(), "hosta", 3).expect("SM_NOTIFY answered");
    let (from, _) = r.lb().wait_granted(2 * SECOND);
    assert_eq!(from.ip(), r.ts.addr().ip());
    assert_eq!(r.b.lock(&b0, &g, true, range(0, 0)), Granted, "A's other lock is gone too");
    assert_eq!(r.host_file().conflict(LockType::Write, 0, 0).map(|c| (c.start, c.len)), Some((0, 100)));
}

#[test]
fn sm_notify_from_a_third_host_naming_the_client_keeps_its_locks() {
    // A host speaks only for itself: a third host naming A (by address or name) must not release
    // A's locks, or anyone on the network could break every client's locks with one datagram.
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    sm_notify_udp(ip(C_IP), r.ts.udp_addr(), "127.0.0.2", 3).expect("SM_NOTIFY answered");
    sm_notify_udp(ip(C_IP), r.ts.udp_addr(), "hosta", 3).expect("SM_NOTIFY answered");
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied);
}

#[test]
fn sm_notify_from_the_server_host_naming_the_client_address_releases_its_locks() {
    // The server's own host (a local statd relaying a notice) may name the client.
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    sm_notify_udp(ip([127, 0, 0, 1]), r.ts.udp_addr(), "127.0.0.2", 3).expect("SM_NOTIFY answered");
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn sm_notify_from_the_client_address_releases_its_locks_whatever_the_name() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    sm_notify_udp(ip(A_IP), r.ts.udp_addr(), "hosta.example.org", 3).expect("SM_NOTIFY answered");
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn sm_notify_for_another_host_keeps_the_locks() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    sm_notify_udp(ip(C_IP), r.ts.udp_addr(), "hostc", 3).expect("SM_NOTIFY answered");
    r.b.sm_notify("hostb", 7);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied);
}

#[test]
fn sm_notify_over_tcp_releases_the_client_locks() {
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    r.a.sm_notify("hosta", 3);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Granted);
}

#[test]
fn sm_stat_is_answered() {
    let mut r = Rig::new();
    let st = r.a.sm_stat("hosta").expect("SM_STAT answered");
    assert_eq!(st.state & 1, 1);
}

// ---------------------------------------------------------------------------------------------
// The status monitor of this host's own lock manager: SM_MON, SM_UNMON, SM_UNMON_ALL,
// SM_SIMU_CRASH

const PRIV: [u8; 16] = *b"lockd's cookie!!";

fn monitors_file(ts: &TestServer) -> String {
    std::fs::read_to_string(ts.state_path().join("nsm-monitors")).unwrap_or_default()
}

#[test]
fn sm_mon_from_this_host_calls_its_lock_manager_back_when_the_server_restarts() {
    let r = Rig::new();
    let mut local = r.local_nsm();
    let id = local.my_id();
    let res = local.sm_mon_with("127.0.0.3", id, PRIV).expect("SM_MON answered");
    assert_eq!(res.res_stat, xdr::nsm::sm_res::Success);
    assert_eq!(res.state, r.nsm_state());
    assert_eq!(local.sm_stat("127.0.0.3").unwrap().res_stat, xdr::nsm::sm_res::Success);
    // B (the monitored server) reboots and says so, naming itself by its host name.
    sm_notify_udp(ip(B_IP), r.ts.udp_addr(), "hostb", 9).expect("SM_NOTIFY answered");
    let got = r.local_lockd().wait_call(NLM, 16, 5 * SECOND);
    assert_eq!(got.from.ip(), ip(LOCAL_IP), "the callback comes from loopback");
    assert!(got.from.port() < 1024, "from a privileged port (the Linux lockd refuses others): {}", got.from);
    let (_, via, status) = &r.local_lockd().statuses()[0];
    assert_eq!(*via, Via::Udp);
    assert_eq!(status.mon_name.as_bytes(), b"127.0.0.3", "the host as the lock manager named it");
    assert_eq!(status.state, 9);
    assert_eq!(status.priv_, PRIV);
    assert!(r.la().calls_of(NLM, 16).is_empty() && r.lb().calls_of(NLM, 16).is_empty());
}

#[test]
fn a_notice_naming_the_monitored_host_calls_back_and_others_do_not() {
    let r = Rig::new();
    let mut local = r.local_nsm();
    local.sm_mon("serverb").expect("SM_MON answered");
    sm_notify_udp(ip(C_IP), r.ts.udp_addr(), "hostc", 3).expect("SM_NOTIFY answered");
    sm_notify_udp(ip(C_IP), r.ts.udp_addr(), "serverb", 5).expect("SM_NOTIFY answered");
    let got = r.local_lockd().wait_call(NLM, 16, 5 * SECOND);
    std::thread::sleep(SECOND / 2);
    let statuses = r.local_lockd().statuses();
    assert_eq!(statuses.len(), 1, "only the notice naming the monitored host: {statuses:?}");
    assert_eq!(statuses[0].2.state, 5);
    assert_eq!(got.from.ip(), ip(LOCAL_IP));
}

#[test]
fn sm_mon_from_another_host_an_unprivileged_port_or_for_another_program_is_refused() {
    use xdr::nsm::sm_res::Fail;
    let mut r = Rig::new();
    assert_eq!(r.a.sm_mon("127.0.0.3").unwrap().res_stat, Fail, "another host");
    let mut unprivileged = NlmClient::connect(ip(LOCAL_IP), r.ts.addr(), "thishost");
    assert_eq!(unprivileged.sm_mon("127.0.0.3").unwrap().res_stat, Fail, "an unprivileged port");
    assert_eq!(unprivileged.sm_stat("127.0.0.3").unwrap().res_stat, Fail);
    let mut local = r.local_nsm();
    let mut id = local.my_id();
    id.my_prog = 100003;
    assert_eq!(local.sm_mon_with("127.0.0.3", id, PRIV).unwrap().res_stat, Fail, "a callback to NFS");
    sm_notify_udp(ip(B_IP), r.ts.udp_addr(), "hostb", 9).expect("SM_NOTIFY answered");
    std::thread::sleep(SECOND);
    assert!(r.local_lockd().calls_of(NLM, 16).is_empty(), "nothing was monitored");
    assert!(!monitors_file(&r.ts).contains("monitor "), "{}", monitors_file(&r.ts));
}

#[test]
fn sm_unmon_and_sm_unmon_all_stop_the_callbacks_and_others_cannot_unmon() {
    let mut r = Rig::new();
    let mut local = r.local_nsm();
    for host in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        local.sm_mon(host).unwrap();
    }
    // Another host's UNMON_ALL (same my_id) changes nothing.
    let state = r.a.sm_unmon_all().expect("SM_UNMON_ALL answered").state;
    assert_eq!(state, r.nsm_state());
    assert_eq!(local.sm_unmon("127.0.0.3").unwrap().state, r.nsm_state());
    sm_notify_udp(ip(B_IP), r.ts.udp_addr(), "hostb", 9).unwrap();
    sm_notify_udp(ip(A_IP), r.ts.udp_addr(), "hosta", 7).unwrap();
    r.local_lockd().wait_call(NLM, 16, 5 * SECOND);
    std::thread::sleep(SECOND / 2);
    let states: Vec<i32> = r.local_lockd().statuses().iter().map(|s| s.2.state).collect();
    assert_eq!(states, vec![7], "B was unmonitored, A still is");
    local.sm_unmon_all().unwrap();
    sm_notify_udp(ip(A_IP), r.ts.udp_addr(), "hosta", 11).unwrap();
    sm_notify_udp(ip(C_IP), r.ts.udp_addr(), "hostc", 11).unwrap();
    std::thread::sleep(SECOND);
    assert_eq!(r.local_lockd().statuses().len(), 1, "UNMON_ALL removed the rest");
}

#[test]
fn monitors_survive_a_restart_of_rnfsd_and_are_not_told_of_it() {
    let mut r = Rig::new();
    r.local_nsm().sm_mon_with("127.0.0.3", r.local_nsm().my_id(), PRIV).unwrap();
    r.restart();
    std::thread::sleep(SECOND);
    assert!(r.lb().notifies().is_empty(), "the host did not reboot: its locks at B still stand");
    sm_notify_udp(ip(B_IP), r.ts.udp_addr(), "hostb", 9).unwrap();
    let got = r.local_lockd().wait_call(NLM, 16, 5 * SECOND);
    assert_eq!(got.from.ip(), ip(LOCAL_IP));
}

#[test]
fn after_a_reboot_the_monitored_servers_are_told_once_with_this_host_name() {
    let mut r = Rig::new();
    r.local_nsm().sm_mon("127.0.0.3").unwrap();
    // As if the host had rebooted since: another boot id recorded.
    let path = r.ts.state_path().join("nsm-monitors");
    let text = monitors_file(&r.ts);
    let (_, rest) = text.split_once('\n').unwrap();
    std::fs::write(&path, format!("boot an-earlier-boot\n{rest}")).unwrap();
    r.restart();
    r.lb().wait_call(NSM, xdr::nsm::sm_proc::NOTIFY, 5 * SECOND);
    let (_, _, chge) = &r.lb().notifies()[0];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(chge.mon_name.as_bytes(), host.trim().as_bytes(), "this host as its lockd names itself");
    assert_eq!(chge.state, r.nsm_state());
    assert!(!monitors_file(&r.ts).contains("monitor "), "forgotten: the lock manager monitors again");
    r.restart();
    std::thread::sleep(SECOND);
    assert_eq!(r.lb().notifies().len(), 1, "told once");
}

#[test]
fn sm_simu_crash_advances_the_state_and_tells_the_monitored_servers() {
    let mut r = Rig::new();
    let mut local = r.local_nsm();
    local.sm_mon("127.0.0.2").unwrap();
    let before = r.nsm_state();
    r.b.sm_simu_crash();
    assert_eq!(r.nsm_state(), before, "another host cannot simulate this host's crash");
    local.sm_simu_crash();
    assert_eq!(r.nsm_state(), before + 2);
    r.la().wait_call(NSM, xdr::nsm::sm_proc::NOTIFY, 5 * SECOND);
    assert_eq!(r.la().notifies()[0].2.state, before + 2);
    assert_eq!(r.b.sm_stat("x").unwrap().state, before + 2);
}

// ---------------------------------------------------------------------------------------------
// Bad input and refusals

/// LOCK arguments of A's owner 0 on `fh` with one field replaced by `bytes` of length `n`.
fn oversized_lock(r: &mut Rig, field: &str, n: usize) -> Vec<u8> {
    let a0 = r.a.owner(0);
    let mut args = r.a.lock_args(&a0, &r.fh, true, range(0, 1));
    let big = bytes::Bytes::from(vec![b'x'; n]);
    match field {
        "cookie" => args.cookie = netobj(big),
        "fh" => args.alock.fh = netobj(big),
        "oh" => args.alock.oh = netobj(big),
        "caller_name" => args.alock.caller_name = xdr::nlm::caller_name(big),
        _ => unreachable!(),
    }
    args.to_bytes().to_vec()
}

#[test]
fn oversized_netobjs_and_caller_name_are_garbage_args() {
    let mut r = Rig::new();
    for field in ["cookie", "fh", "oh", "caller_name"] {
        let bytes = oversized_lock(&mut r, field, 1025);
        assert_eq!(
            r.a.call_raw(NLM, 4, nlm4_proc::LOCK, &bytes),
            Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs)),
            "a {field} of 1025 bytes"
        );
    }
    // 1024 bytes is within bounds.
    let ok = oversized_lock(&mut r, "oh", 1024);
    let res = nlm4_res::from_bytes(&r.a.call_raw(NLM, 4, nlm4_proc::LOCK, &ok).unwrap()).unwrap();
    assert_eq!(res.stat, Granted, "an oh of 1024 bytes");
}

#[test]
fn trailing_bytes_are_garbage_args() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    let mut bytes = r.a.lock_args(&a0, &r.fh, true, range(0, 1)).to_bytes().to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        r.a.call_raw(NLM, 4, nlm4_proc::LOCK, &bytes),
        Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs))
    );
    let unlock = nlm4_unlockargs { cookie: r.a.cookie(), alock: r.a.alock(&a0, &r.fh, range(0, 1)) };
    let mut bytes = unlock.to_bytes().to_vec();
    bytes.extend_from_slice(&[1]);
    assert_eq!(
        r.a.call_raw(NLM, 4, nlm4_proc::UNLOCK, &bytes),
        Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs))
    );
    // A truncated one too.
    let bytes = r.a.lock_args(&a0, &r.fh, true, range(0, 1)).to_bytes();
    assert_eq!(
        r.a.call_raw(NLM, 4, nlm4_proc::LOCK, &bytes[..bytes.len() - 4]),
        Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs))
    );
    let b0 = r.b.owner(0);
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 1)), Granted, "no garbage call took the lock");
}

#[test]
fn an_unknown_handle_is_stale_fh() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    let forged = nfs_fh3(bytes::Bytes::from(vec![0x5a; 32]));
    assert_eq!(r.a.lock(&a0, &forged, true, range(0, 1)), StaleFh);
    assert!(matches!(r.a.test(&a0, &forged, true, range(0, 1)), nlm4_testrply::Other(StaleFh)));
    // The handle of a removed file.
    let g = r.file("g");
    std::fs::remove_file(r.ts.path("g")).unwrap();
    assert_eq!(r.a.lock(&a0, &g, true, range(0, 1)), StaleFh);
}

#[test]
fn a_directory_handle_is_failed() {
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    let root = r.root.clone();
    assert_eq!(r.a.lock(&a0, &root, true, range(0, 1)), Failed);
    assert_eq!(r.a.lock(&a0, &root, false, range(0, 1)), Failed);
}

#[test]
fn a_client_the_export_does_not_list_is_failed() {
    let (peer_port, listeners) = CallbackListener::start_on(&[ip(A_IP), ip(B_IP)]);
    let ts = TestServer::builder()
        .clients("127.0.0.2(rw,insecure,no_root_squash)")
        .configure(move |c| c.locks.peer_portmap_port = peer_port)
        .start();
    let s = connect_from((ip(A_IP), 0).into(), ts.addr()).unwrap();
    let mut nfs = Client::over_tcp(s);
    let root = nfs.mount(ts.export_path().to_str().unwrap()).expect("A may mount");
    let fh = nfs.create_file(&root, "f");
    let mut a = NlmClient::connect(ip(A_IP), ts.addr(), "hosta");
    let mut b = NlmClient::connect(ip(B_IP), ts.addr(), "hostb");
    let (a0, b0) = (a.owner(0), b.owner(0));
    assert_eq!(b.lock(&b0, &fh, true, range(0, 1)), Failed, "B is not in the export list");
    assert!(matches!(b.test(&b0, &fh, true, range(0, 1)), nlm4_testrply::Other(Failed)));
    assert_eq!(a.lock(&a0, &fh, true, range(0, 1)), Granted);
    drop(listeners);
}

#[test]
fn an_exclusive_lock_on_a_read_only_export_is_rofs() {
    let mut r =
        Rig::build(TestServer::builder().options("ro,insecure,no_root_squash"), Peers::Listening, |_| {});
    let a0 = r.a.owner(0);
    std::fs::write(r.ts.path("ro"), b"data").unwrap();
    let (mut c, root) = r.ts.client();
    let fh = c.lookup_fh(&root, "ro");
    assert_eq!(r.a.lock(&a0, &fh, true, range(0, 1)), Rofs);
    assert_eq!(r.a.lock(&a0, &fh, false, range(0, 1)), Granted, "a read lock is fine");
}

#[test]
fn a_secure_export_refuses_locks_from_an_unprivileged_port() {
    let (peer_port, _listeners) = CallbackListener::start_on(&[ip(A_IP), ip(B_IP)]);
    let ts = TestServer::builder()
        .options("rw,no_root_squash")
        .configure(move |c| c.locks.peer_portmap_port = peer_port)
        .start();
    // MOUNT needs a privileged port too on a `secure` export.
    let mut nfs =
        Client::over_tcp(rnfsd_test_support::net::connect_privileged(ip([127, 0, 0, 1]), ts.addr()));
    let root = nfs.mount(ts.export_path().to_str().unwrap()).expect("MNT from a privileged port");
    let fh = nfs.create_file(&root, "f");
    let mut low = NlmClient::connect_privileged(ip(A_IP), ts.addr(), "hosta");
    let mut high = NlmClient::connect(ip(B_IP), ts.addr(), "hostb");
    let (l0, h0) = (low.owner(0), high.owner(0));
    assert_eq!(high.lock(&h0, &fh, true, range(0, 1)), Failed, "unprivileged source port");
    assert_eq!(low.lock(&l0, &fh, true, range(0, 1)), Granted);
}

#[test]
fn a_caller_without_read_permission_is_not_granted() {
    use std::os::unix::fs::PermissionsExt;
    let mut r = Rig::new();
    let a0 = r.a.owner(0);
    std::fs::write(r.ts.path("private"), b"").unwrap();
    std::fs::set_permissions(r.ts.path("private"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(r.ts.path("public"), b"").unwrap();
    std::fs::set_permissions(r.ts.path("public"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut c, root) = r.ts.client();
    let (private, public) = (c.lookup_fh(&root, "private"), c.lookup_fh(&root, "public"));
    r.a.set_cred(rnfsd_test_support::auth_sys_named("hosta", 1000, 1000, &[]));
    assert_ne!(
        r.a.lock(&a0, &private, false, range(0, 1)),
        Granted,
        "uid 1000 may not read a 0600 root file"
    );
    assert_eq!(r.a.lock(&a0, &public, false, range(0, 1)), Granted, "a read lock with read permission");
}

#[test]
fn nfs_io_on_a_locked_file_keeps_its_locks() {
    // Opening and closing the file for READ and WRITE (the open-file cache) must not drop the
    // locks, as closing a classic POSIX-lock descriptor would.
    let mut r = Rig::new();
    let (a0, b0) = (r.a.owner(0), r.b.owner(0));
    assert_eq!(r.a.lock(&a0, &r.fh, true, range(0, 100)), Granted);
    let (mut c, _) = r.ts.client();
    for i in 0..20u64 {
        rnfsd_test_support::ok(c.write(&r.fh, i * 10, b"0123456789", xdr::nfs3::stable_how::FILE_SYNC));
        rnfsd_test_support::ok(c.read(&r.fh, 0, 100));
    }
    std::fs::read(r.ts.path("f")).unwrap();
    assert_eq!(r.b.lock(&b0, &r.fh, true, range(0, 100)), Denied);
    assert!(r.host_file().conflict(LockType::Read, 0, 0).is_some());
}
