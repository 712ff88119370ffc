//! The client side of the lock callbacks: what a client host runs so that a lock server can call
//! it back. A [`CallbackListener`] on one loopback address is that host's portmapper (PMAP v2
//! GETPORT, and NULL) and, on a second port, its lock manager and status monitor (NLM v4 and NSM
//! v1 over TCP and UDP). It records every call it receives, with the sender's address, and
//! answers GRANTED with a configurable status (GRANTED by default, DENIED to refuse the lock).
//!
//! The server finds the host's NLM with GETPORT at `host_ip:peer_portmap_port`, so the tests give
//! every host's listener the same portmapper port ([`CallbackListener::start_on`] picks one free
//! on all the addresses) and pass it to the server as `locks.peer_portmap_port`.

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use xdr::nlm::{nlm4_proc, nlm4_res, nlm4_stats, nlm4_testargs, nlm4_testres};
use xdr::nsm::{sm_proc, sm_status, stat_chge};
use xdr::portmap::{IPPROTO_TCP, IPPROTO_UDP, mapping, pmap_proc};
use xdr::rpc::{AcceptedStatus, CallHeader, ReplyHeader};
use xdr::{Reader, Xdr};

use crate::wait::wait_until;
use crate::wire::{DATAGRAM_MAX, PORTMAP, read_record, record};

const NLM: u32 = xdr::nlm::PROGRAM;
const NSM: u32 = xdr::nsm::PROGRAM;

/// The procedure of the Linux lockd that its status monitor calls back when a monitored host
/// restarted (the `my_proc` of its SM_MON).
pub const NLM_SM_NOTIFY: u32 = 16;

/// How often the accept and receive loops look at the stop flag.
const TICK: Duration = Duration::from_millis(20);

/// Which transport a call came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Tcp,
    Udp,
}

/// One call the listener received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The caller's address (its IP is what the Linux client checks for GRANTED).
    pub from: SocketAddr,
    pub via: Via,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    /// The arguments after the call header.
    pub args: Bytes,
}

struct Shared {
    stop: AtomicBool,
    calls: Mutex<Vec<Received>>,
    /// What GRANTED (procedure 5) answers.
    granted_reply: Mutex<nlm4_stats>,
    /// The accepted connections, shut down on drop so their threads end.
    conns: Mutex<Vec<TcpStream>>,
    /// The port GETPORT answers for NLM v4 and NSM v1.
    service_port: u16,
}

/// A client host's portmapper, lock manager and status monitor, on one loopback address.
pub struct CallbackListener {
    /// The host's address.
    pub ip: IpAddr,
    /// The portmapper's port (TCP and UDP): the server's `locks.peer_portmap_port`.
    pub portmap_port: u16,
    /// NLM's and NSM's port (TCP and UDP), as GETPORT answers it.
    pub service_port: u16,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl CallbackListener {
    /// A listener on each of `ips`, all with the same portmapper port (one free on every address,
    /// TCP and UDP); returns that port and the listeners in the order of `ips`.
    pub fn start_on(ips: &[IpAddr]) -> (u16, Vec<CallbackListener>) {
        for _ in 0..100 {
            let probe = TcpListener::bind((ips[0], 0)).unwrap();
            let port = probe.local_addr().unwrap().port();
            drop(probe);
            let listeners: Option<Vec<_>> =
                ips.iter().map(|ip| CallbackListener::start(*ip, port).ok()).collect();
            if let Some(listeners) = listeners {
                return (port, listeners);
            }
        }
        panic!("no portmapper port free on every one of {ips:?}");
    }

    /// A listener whose portmapper is at `ip:portmap_port` (TCP and UDP).
    pub fn start(ip: IpAddr, portmap_port: u16) -> std::io::Result<CallbackListener> {
        let pm_tcp = TcpListener::bind((ip, portmap_port))?;
        let pm_udp = UdpSocket::bind((ip, portmap_port))?;
        let (svc_tcp, svc_udp) = bind_pair(ip)?;
        let service_port = svc_tcp.local_addr()?.port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            granted_reply: Mutex::new(nlm4_stats::Granted),
            conns: Mutex::new(Vec::new()),
            service_port,
        });
        let mut threads = Vec::new();
        for l in [pm_tcp, svc_tcp] {
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || accept_loop(l, shared)));
        }
        for s in [pm_udp, svc_udp] {
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || udp_loop(s, shared)));
        }
        Ok(CallbackListener { ip, portmap_port, service_port, shared, threads })
    }

    /// From now on GRANTED answers `stat` (DENIED: the host refuses the lock it was granted).
    pub fn set_granted_reply(&self, stat: nlm4_stats) {
        *self.shared.granted_reply.lock().unwrap() = stat;
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<Received> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The calls of `prog` procedure `proc_` received so far.
    pub fn calls_of(&self, prog: u32, proc_: u32) -> Vec<Received> {
        self.calls().into_iter().filter(|c| c.prog == prog && c.proc_ == proc_).collect()
    }

    /// The GRANTED callbacks (procedure 5) received so far, with their senders.
    pub fn granted(&self) -> Vec<(SocketAddr, nlm4_testargs)> {
        self.decoded(NLM, nlm4_proc::GRANTED)
    }

    /// The GRANTED_MSG callbacks (procedure 10) received so far.
    pub fn granted_msgs(&self) -> Vec<(SocketAddr, nlm4_testargs)> {
        self.decoded(NLM, nlm4_proc::GRANTED_MSG)
    }

    /// The TEST_RES calls (the results of TEST_MSG).
    pub fn test_res(&self) -> Vec<(SocketAddr, nlm4_testres)> {
        self.decoded(NLM, nlm4_proc::TEST_RES)
    }

    /// The LOCK_RES, CANCEL_RES or UNLOCK_RES calls (`proc_`), the results of the `_MSG` forms.
    pub fn res(&self, proc_: u32) -> Vec<(SocketAddr, nlm4_res)> {
        self.decoded(NLM, proc_)
    }

    /// The SM_NOTIFY calls received so far.
    pub fn notifies(&self) -> Vec<(SocketAddr, Via, stat_chge)> {
        self.calls_of(NSM, sm_proc::NOTIFY)
            .into_iter()
            .map(|c| (c.from, c.via, stat_chge::from_bytes(&c.args).expect("stat_chge")))
            .collect()
    }

    /// The status callbacks received (procedure 16 with `sm_status`), with their senders.
    pub fn statuses(&self) -> Vec<(SocketAddr, Via, sm_status)> {
        self.calls_of(NLM, NLM_SM_NOTIFY)
            .into_iter()
            .map(|c| (c.from, c.via, sm_status::from_bytes(&c.args).expect("sm_status")))
            .collect()
    }

    /// Waits for the first GRANTED (procedure 5) or GRANTED_MSG callback.
    pub fn wait_granted(&self, within: Duration) -> (SocketAddr, nlm4_testargs) {
        wait_until("a GRANTED callback", within, || {
            self.granted().into_iter().next().or_else(|| self.granted_msgs().into_iter().next())
        })
    }

    /// Waits for the first call of `prog` procedure `proc_`.
    pub fn wait_call(&self, prog: u32, proc_: u32, within: Duration) -> Received {
        wait_until(&format!("a call of program {prog} procedure {proc_}"), within, || {
            self.calls_of(prog, proc_).into_iter().next()
        })
    }

    fn decoded<T: Xdr>(&self, prog: u32, proc_: u32) -> Vec<(SocketAddr, T)> {
        self.calls_of(prog, proc_)
            .into_iter()
            .map(|c| {
                let v = T::from_bytes(&c.args)
                    .unwrap_or_else(|e| panic!("program {prog} procedure {proc_} arguments: {e:?}"));
                (c.from, v)
            })
            .collect()
    }
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A port reserved on some addresses where nothing answers: TCP sockets bound to it, so no other
/// test's listener can take the port while this lives (a callback meant to fail cannot reach
/// someone else's listener). [`ClosedPort::reserve`] leaves them closed, so connections are
/// refused; [`ClosedPort::silent`] has them listen without ever accepting, so the kernel
/// completes a connection and a call on it waits for its timeout (a host that is up but hung).
pub struct ClosedPort {
    pub port: u16,
    _socks: Vec<std::os::fd::OwnedFd>,
}

impl ClosedPort {
    /// A port whose connections are completed and never answered.
    pub fn silent(ips: &[IpAddr]) -> ClosedPort {
        use nix::sys::socket::{Backlog, listen};
        let port = ClosedPort::reserve(ips);
        for s in &port._socks {
            listen(s, Backlog::new(64).unwrap()).unwrap();
        }
        port
    }

    /// A port whose connections are refused.
    pub fn reserve(ips: &[IpAddr]) -> ClosedPort {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};
        use std::os::fd::AsRawFd;
        let sock = || socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
        let v4 = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => panic!("IPv4 loopback addresses only"),
        };
        for _ in 0..100 {
            let first = sock();
            bind(first.as_raw_fd(), &SockaddrIn::from(std::net::SocketAddrV4::new(v4(ips[0]), 0))).unwrap();
            let port = getsockname::<SockaddrIn>(first.as_raw_fd()).unwrap().port();
            let mut socks = vec![first];
            for ip in &ips[1..] {
                let s = sock();
                if bind(s.as_raw_fd(), &SockaddrIn::from(std::net::SocketAddrV4::new(v4(*ip), port))).is_ok()
                {
                    socks.push(s);
                }
            }
            if socks.len() == ips.len() {
                return ClosedPort { port, _socks: socks };
            }
        }
        panic!("no port free on every one of {ips:?}");
    }
}

/// A TCP listener and a UDP socket on the same free port of `ip`.
fn bind_pair(ip: IpAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    for _ in 0..100 {
        let tcp = TcpListener::bind((ip, 0))?;
        if let Ok(udp) = UdpSocket::bind((ip, tcp.local_addr()?.port())) {
            return Ok((tcp, udp));
        }
    }
    Err(std::io::Error::new(ErrorKind::AddrInUse, "no port free for both TCP and UDP"))
}

fn accept_loop(l: TcpListener, shared: Arc<Shared>) {
    l.set_nonblocking(true).unwrap();
    while !shared.stop.load(Ordering::SeqCst) {
        match l.accept() {
            Ok((s, from)) => {
                s.set_nonblocking(false).unwrap();
                let _ = s.set_nodelay(true);
                if let Ok(c) = s.try_clone() {
                    shared.conns.lock().unwrap().push(c);
                }
                let shared = shared.clone();
                // Not joined: it ends when the peer closes or when drop shuts the stream down.
                std::thread::spawn(move || serve_tcp(s, from, shared));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                std::thread::sleep(TICK)
            }
            Err(_) => std::thread::sleep(TICK),
        }
    }
}

fn serve_tcp(mut s: TcpStream, from: SocketAddr, shared: Arc<Shared>) {
    while let Some(msg) = read_record(&mut s) {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(reply) = handle(&msg, from, Via::Tcp, &shared) else { return };
        if s.write_all(&record(&reply)).is_err() {
            return;
        }
    }
}

fn udp_loop(s: UdpSocket, shared: Arc<Shared>) {
    s.set_read_timeout(Some(TICK)).unwrap();
    let mut buf = vec![0u8; DATAGRAM_MAX];
    while !shared.stop.load(Ordering::SeqCst) {
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => continue,
        };
        if let Some(reply) = handle(&buf[..n], from, Via::Udp, &shared) {
            let _ = s.send_to(&reply, from);
        }
    }
}

/// Records a call and builds its reply; `None` for what is not a call (dropped, as a server
/// would).
fn handle(msg: &[u8], from: SocketAddr, via: Via, shared: &Shared) -> Option<Vec<u8>> {
    let mut r = Reader::from_slice(msg);
    let h = CallHeader::decode(&mut r).ok()?;
    let args = r.rest();
    shared.calls.lock().unwrap().push(Received {
        from,
        via,
        prog: h.prog,
        vers: h.vers,
        proc_: h.proc_,
        args: args.clone(),
    });
    let (status, body): (AcceptedStatus, Bytes) = match (h.prog, h.vers, h.proc_) {
        (PORTMAP, 2, pmap_proc::NULL) | (NLM, 4, nlm4_proc::NULL) | (NSM, 1, sm_proc::NULL) => {
            (AcceptedStatus::Success, Bytes::new())
        }
        (PORTMAP, 2, pmap_proc::GETPORT) => match mapping::from_bytes(&args) {
            Ok(m) => {
                let served = matches!(
                    (m.prog, m.vers, m.prot),
                    (NLM, 4, IPPROTO_TCP | IPPROTO_UDP) | (NSM, 1, IPPROTO_TCP | IPPROTO_UDP)
                );
                let port = if served { u32::from(shared.service_port) } else { 0 };
                (AcceptedStatus::Success, port.to_bytes())
            }
            Err(_) => (AcceptedStatus::GarbageArgs, Bytes::new()),
        },
        (NLM, 4, nlm4_proc::GRANTED) => match nlm4_testargs::from_bytes(&args) {
            Ok(a) => {
                let stat = *shared.granted_reply.lock().unwrap();
                (AcceptedStatus::Success, nlm4_res { cookie: a.cookie, stat }.to_bytes())
            }
            Err(_) => (AcceptedStatus::GarbageArgs, Bytes::new()),
        },
        // GRANTED_MSG and the `_RES` calls: recorded, answered with void (a real lockd would
        // send GRANTED_RES for a GRANTED_MSG; the tests read what arrived instead).
        (NLM, 4, nlm4_proc::GRANTED_MSG..=nlm4_proc::GRANTED_RES) => (AcceptedStatus::Success, Bytes::new()),
        (NSM, 1, sm_proc::NOTIFY) => (AcceptedStatus::Success, Bytes::new()),
        // The status monitor's callback to a host's own lockd (the Linux lockd's procedure 16).
        (NLM, 4, NLM_SM_NOTIFY) => (AcceptedStatus::Success, Bytes::new()),
        (PORTMAP, 2, _) | (NLM, 4, _) | (NSM, 1, _) => (AcceptedStatus::ProcUnavail, Bytes::new()),
        _ => (AcceptedStatus::ProgUnavail, Bytes::new()),
    };
    let mut out = BytesMut::new();
    ReplyHeader::accepted(h.xid, status).encode(&mut out);
    out.extend_from_slice(&body);
    Some(out.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::net::connect_from;
    use crate::wire::{auth_sys, call_message, parse_reply, udp_exchange};
    use xdr::nlm::{netobj, nlm4_lock};

    fn lock() -> nlm4_lock {
        nlm4_lock {
            caller_name: "hostb".into(),
            fh: netobj::from(&[1u8, 2, 3][..]),
            oh: "0@hostb".into(),
            svid: 0,
            l_offset: 0,
            l_len: 10,
        }
    }

    /// What a server does with the listener: GETPORT, then GRANTED at the port it answered, and
    /// SM_NOTIFY over UDP; every call is recorded with its sender.
    #[test]
    fn answers_getport_granted_and_notify() {
        let ips = [IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])];
        let (port, ls) = CallbackListener::start_on(&ips);
        assert!(ls.iter().all(|l| l.portmap_port == port));
        let l = &ls[1];
        let src = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut pm = Client::over_tcp(connect_from(src, SocketAddr::new(l.ip, port)).unwrap());
        let getport = |pm: &mut Client, prog, vers, prot| {
            let m = mapping { prog, vers, prot, port: 0 };
            u32::from_bytes(&pm.call(PORTMAP, 2, pmap_proc::GETPORT, &m.to_bytes()).unwrap()).unwrap()
        };
        assert_eq!(getport(&mut pm, NLM, 4, IPPROTO_TCP), u32::from(l.service_port));
        assert_eq!(getport(&mut pm, NSM, 1, IPPROTO_UDP), u32::from(l.service_port));
        assert_eq!(getport(&mut pm, 100003, 3, IPPROTO_TCP), 0);

        let svc = SocketAddr::new(l.ip, l.service_port);
        let mut nlm = Client::over_tcp(connect_from(src, svc).unwrap());
        let args = nlm4_testargs { cookie: netobj::from(&[9u8][..]), exclusive: true, alock: lock() };
        let reply = nlm.call(NLM, 4, nlm4_proc::GRANTED, &args.to_bytes()).unwrap();
        assert_eq!(
            nlm4_res::from_bytes(&reply).unwrap(),
            nlm4_res { cookie: args.cookie.clone(), stat: nlm4_stats::Granted }
        );
        l.set_granted_reply(nlm4_stats::Denied);
        let reply = nlm.call(NLM, 4, nlm4_proc::GRANTED, &args.to_bytes()).unwrap();
        assert_eq!(nlm4_res::from_bytes(&reply).unwrap().stat, nlm4_stats::Denied);
        let (from, got) = l.wait_granted(Duration::from_secs(1));
        assert_eq!((from.ip(), got), (src.ip(), args));
        assert_eq!(l.granted().len(), 2);
        assert!(ls[0].calls().is_empty(), "the other host's listener saw nothing");

        let udp = UdpSocket::bind(src).unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let chge = stat_chge { mon_name: "127.0.0.1".into(), state: 5 };
        let msg = call_message(77, NSM, 1, sm_proc::NOTIFY, &auth_sys(0, 0, &[]), &chge.to_bytes());
        let reply = udp_exchange(&udp, svc, &msg);
        assert!(parse_reply(77, &reply).unwrap().is_empty());
        let n = l.notifies();
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].0.ip(), n[0].1, &n[0].2), (src.ip(), Via::Udp, &chge));
        // An unknown program is PROG_UNAVAIL.
        assert!(nlm.call(100003, 3, 0, &[]).is_err());
    }

    #[test]
    fn a_closed_port_refuses_and_stays_reserved() {
        let ips = [IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])];
        let closed = ClosedPort::reserve(&ips);
        for ip in ips {
            let e = TcpStream::connect((ip, closed.port)).expect_err("nothing listens");
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
            assert!(TcpListener::bind((ip, closed.port)).is_err(), "the port stays taken");
        }
    }

    #[test]
    fn a_silent_port_connects_and_never_answers() {
        let ips = [IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3])];
        let silent = ClosedPort::silent(&ips);
        for ip in ips {
            let mut s = TcpStream::connect((ip, silent.port)).expect("the kernel completes it");
            s.write_all(&record(&[0; 40])).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let e = std::io::Read::read(&mut s, &mut [0; 4]).expect_err("nothing answers");
            assert_eq!(e.kind(), ErrorKind::WouldBlock);
            assert!(TcpListener::bind((ip, silent.port)).is_err(), "the port stays taken");
        }
    }
}
