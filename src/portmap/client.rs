//! A small synchronous PMAP v2 client for registering with a system rpcbind (`--portmap register`)
//! and for tests: SET, UNSET, GETPORT and DUMP over UDP, TCP or rpcbind's local stream socket.
//!
//! rpcbind accepts SET/UNSET over its AF_LOCAL socket (`/run/rpcbind.sock`); over 127.0.0.1 it
//! refuses them unless started with `-L` ("old-style" local calls), so registration tries the
//! local socket first. Over UDP and TCP the client sends from a privileged port when it can bind
//! one (as glibc's `bindresvport` does for root): rpcbind records such a caller as the superuser,
//! and rnfsd's embedded portmapper accepts changes only from privileged ports.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use xdr::portmap::{IPPROTO_TCP, IPPROTO_UDP, PROGRAM, VERSION_PMAP, mapping, pmap_proc, pmaplist};
use xdr::rpc::{
    AcceptedStatus, AuthSysParams, CallHeader, OpaqueAuth, RPC_VERSION, RecordAssembler, ReplyBody,
    ReplyHeader, record_marker,
};
use xdr::{Reader, Xdr};

use crate::rpc::Transport;

/// How long one call may take before it fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The local sockets rpcbind listens on, newest location first.
pub const RPCBIND_SOCKETS: [&str; 2] = ["/run/rpcbind.sock", "/var/run/rpcbind.sock"];

/// Largest reply accepted (a DUMP of a very busy rpcbind is a few KiB).
const MAX_REPLY: usize = 1 << 20;

/// Where a portmapper listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcbindTarget {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    /// rpcbind's AF_LOCAL stream socket (record marked, like TCP).
    Local(PathBuf),
}

impl std::fmt::Display for RpcbindTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcbindTarget::Udp(a) => write!(f, "udp {a}"),
            RpcbindTarget::Tcp(a) => write!(f, "tcp {a}"),
            RpcbindTarget::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One service to (un)register: program, version, transport and port.
pub type Service = (u32, u32, Transport, u16);

fn protocol(t: Transport) -> u32 {
    match t {
        Transport::Tcp => IPPROTO_TCP,
        Transport::Udp => IPPROTO_UDP,
    }
}

fn next_xid() -> u32 {
    static XID: AtomicU32 = AtomicU32::new(0);
    let seed =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) ^ std::process::id();
    seed.wrapping_add(XID.fetch_add(0x9e37_79b9, Ordering::Relaxed))
}

fn proto_err(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A PMAP v2 client for one portmapper.
#[derive(Debug, Clone)]
pub struct PmapClient {
    target: RpcbindTarget,
    timeout: Duration,
}

impl PmapClient {
    pub fn new(target: RpcbindTarget) -> Self {
        PmapClient { target, timeout: DEFAULT_TIMEOUT }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn target(&self) -> &RpcbindTarget {
        &self.target
    }

    /// PMAPPROC_NULL: is a portmapper answering there?
    pub fn null(&self) -> io::Result<()> {
        self.call(pmap_proc::NULL, &[]).map(|_| ())
    }

    /// PMAPPROC_SET; `false` when the portmapper refused (already registered, or not allowed).
    pub fn set(&self, prog: u32, vers: u32, transport: Transport, port: u16) -> io::Result<bool> {
        let m = mapping { prog, vers, prot: protocol(transport), port: u32::from(port) };
        self.call_bool(pmap_proc::SET, &m)
    }

    /// PMAPPROC_UNSET of a program version on every transport.
    pub fn unset(&self, prog: u32, vers: u32) -> io::Result<bool> {
        self.call_bool(pmap_proc::UNSET, &mapping { prog, vers, prot: 0, port: 0 })
    }

    /// PMAPPROC_GETPORT; 0 when not registered.
    pub fn getport(&self, prog: u32, vers: u32, transport: Transport) -> io::Result<u16> {
        let m = mapping { prog, vers, prot: protocol(transport), port: 0 };
        let port = self.decode::<u32>(pmap_proc::GETPORT, &m.to_bytes())?;
        u16::try_from(port).map_err(|_| proto_err(format!("GETPORT returned port {port}")))
    }

    /// PMAPPROC_DUMP.
    pub fn dump(&self) -> io::Result<Vec<mapping>> {
        Ok(self.decode::<pmaplist>(pmap_proc::DUMP, &[])?.0)
    }

    fn call_bool(&self, proc_: u32, m: &mapping) -> io::Result<bool> {
        self.decode::<bool>(proc_, &m.to_bytes())
    }

    fn decode<T: Xdr>(&self, proc_: u32, args: &[u8]) -> io::Result<T> {
        let res = self.call(proc_, args)?;
        T::decode(&mut Reader::new(res)).map_err(|e| proto_err(format!("portmapper result: {e}")))
    }

    /// Sends one call and returns the bytes of its results.
    pub fn call(&self, proc_: u32, args: &[u8]) -> io::Result<Bytes> {
        let xid = next_xid();
        let cred = AuthSysParams {
            stamp: 0,
            machine_name: Bytes::from_static(b"localhost"),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            gids: Vec::new(),
        };
        let header = CallHeader {
            xid,
            rpcvers: RPC_VERSION,
            prog: PROGRAM,
            vers: VERSION_PMAP,
            proc_,
            cred: cred.to_opaque_auth(),
            verf: OpaqueAuth::none(),
        };
        let mut msg = BytesMut::with_capacity(header.encoded_len() + args.len());
        header.encode(&mut msg);
        msg.extend_from_slice(args);
        let record = match &self.target {
            RpcbindTarget::Udp(addr) => self.exchange_udp(*addr, &msg, xid)?,
            RpcbindTarget::Tcp(addr) => {
                let mut s = match connect_from_privileged_port(*addr, self.timeout) {
                    Some(s) => s,
                    None => TcpStream::connect_timeout(addr, self.timeout)?,
                };
                self.exchange_stream(&mut s, &msg, |s, t| {
                    s.set_read_timeout(Some(t))?;
                    s.set_write_timeout(Some(t))
                })?
            }
            RpcbindTarget::Local(path) => {
                let mut s = UnixStream::connect(path)?;
                self.exchange_stream(&mut s, &msg, |s, t| {
                    s.set_read_timeout(Some(t))?;
                    s.set_write_timeout(Some(t))
                })?
            }
        };
        parse_reply(record, xid)
    }

    fn exchange_udp(&self, addr: SocketAddr, msg: &[u8], xid: u32) -> io::Result<Bytes> {
        let any: IpAddr =
            if addr.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        let privileged = PRIVILEGED_PORTS.rev().find_map(|port| match UdpSocket::bind((any, port)) {
            Ok(s) => Some(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => None,
            // Not allowed to bind one: no point trying the others.
            Err(_) => Some(None),
        });
        let sock = match privileged.flatten() {
            Some(s) => s,
            None => UdpSocket::bind((any, 0))?,
        };
        sock.connect(addr)?;
        let deadline = Instant::now() + self.timeout;
        // Retransmit a few times within the deadline: UDP may drop the call or the reply.
        let interval = self.timeout / 4;
        let mut buf = vec![0u8; 65536];
        loop {
            sock.send(msg)?;
            let resend_at = (Instant::now() + interval).min(deadline);
            loop {
                let now = Instant::now();
                if now >= resend_at {
                    break;
                }
                sock.set_read_timeout(Some(resend_at - now))?;
                match sock.recv(&mut buf) {
                    Ok(n) if n >= 4 && buf[..4] == xid.to_be_bytes() => {
                        return Ok(Bytes::copy_from_slice(&buf[..n]));
                    }
                    Ok(_) => continue,
                    // A signal (e.g. glibc's set*id broadcast) is no reason to give up.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply from portmapper at udp {addr}"),
                ));
            }
        }
    }

    fn exchange_stream<S: Read + Write>(
        &self,
        s: &mut S,
        msg: &[u8],
        set_timeouts: impl Fn(&S, Duration) -> io::Result<()>,
    ) -> io::Result<Bytes> {
        set_timeouts(s, self.timeout)?;
        let mut out = Vec::with_capacity(4 + msg.len());
        out.extend_from_slice(&record_marker(msg.len(), true));
        out.extend_from_slice(msg);
        s.write_all(&out)?;
        let mut assembler = RecordAssembler::new(MAX_REPLY);
        let mut src = BytesMut::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(rec) = assembler.next_record(&mut src).map_err(|e| proto_err(e.to_string()))? {
                return Ok(rec);
            }
            let n = match s.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "portmapper closed the connection"));
            }
            src.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The ports a client tries for a privileged source port (glibc's `bindresvport` range).
const PRIVILEGED_PORTS: std::ops::Range<u16> = 600..1024;

/// A TCP connection to `addr` from a privileged port, or `None` when this process may not bind
/// one or none is free. `timeout` bounds the connect (Linux honours the send timeout there).
fn connect_from_privileged_port(addr: SocketAddr, timeout: Duration) -> Option<TcpStream> {
    use nix::errno::Errno;
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, setsockopt, socket, sockopt,
    };
    use std::os::fd::AsRawFd;
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let any: IpAddr =
        if addr.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    for port in PRIVILEGED_PORTS.rev() {
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).ok()?;
        match bind(fd.as_raw_fd(), &SockaddrStorage::from(SocketAddr::new(any, port))) {
            Ok(()) => {}
            Err(Errno::EADDRINUSE) => continue,
            Err(_) => return None,
        }
        let tv = nix::sys::time::TimeVal::new(timeout.as_secs() as i64, timeout.subsec_micros().into());
        setsockopt(&fd, sockopt::SendTimeout, &tv).ok()?;
        return match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
            Ok(()) => Some(TcpStream::from(fd)),
            // The port is bound, but that source and destination pair is taken: try the next.
            Err(Errno::EADDRNOTAVAIL) => continue,
            Err(_) => None,
        };
    }
    None
}

fn parse_reply(record: Bytes, xid: u32) -> io::Result<Bytes> {
    let mut r = Reader::new(record);
    let h = ReplyHeader::decode(&mut r).map_err(|e| proto_err(format!("portmapper reply: {e}")))?;
    if h.xid != xid {
        return Err(proto_err(format!("portmapper reply xid {:#x}, expected {xid:#x}", h.xid)));
    }
    match h.body {
        ReplyBody::Accepted { status: AcceptedStatus::Success, .. } => Ok(r.rest()),
        ReplyBody::Accepted { status, .. } => {
            Err(proto_err(format!("portmapper call not accepted: {status:?}")))
        }
        ReplyBody::Denied(rej) => Err(proto_err(format!("portmapper call denied: {rej:?}"))),
    }
}

/// The places a system rpcbind may be reached, in the order registration tries them: its local
/// sockets, then UDP on loopback `port` (the standard 111 unless configured otherwise).
pub fn system_targets(port: u16) -> Vec<RpcbindTarget> {
    let mut v: Vec<RpcbindTarget> =
        RPCBIND_SOCKETS.iter().map(|p| RpcbindTarget::Local(PathBuf::from(p))).collect();
    v.push(RpcbindTarget::Udp((Ipv4Addr::LOCALHOST, port).into()));
    v
}

/// A client of the first system rpcbind that answers (see [`system_targets`]): the one
/// [`register_with_system`] registers with. When none answers, the error lists every place tried
/// and why it failed.
pub fn find_system(port: u16) -> io::Result<PmapClient> {
    let mut errors = Vec::new();
    for target in system_targets(port) {
        let client = PmapClient::new(target);
        match client.null() {
            Ok(()) => return Ok(client),
            Err(e) => errors.push(format!("{}: {e}", client.target())),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no system rpcbind answered ({})", errors.join("; ")),
    ))
}

/// Registers `services` with the first system rpcbind that answers (see [`find_system`]) and
/// returns where, so the same rpcbind is told to forget them at shutdown.
pub fn register_with_system(port: u16, services: &[Service]) -> io::Result<RpcbindTarget> {
    let client = find_system(port)?;
    register_with(&client, services).map(|()| client.target().clone())
}

/// The registrations of these exact `(program, version)` pairs, on TCP or UDP, at a port other
/// than `ours`: another server holds them. Read from one DUMP, else (a portmapper that does not
/// answer it) from a GETPORT per program, version and transport, which may answer another
/// version of the program.
pub fn registered_elsewhere(
    client: &PmapClient,
    programs: &[(u32, u32)],
    ours: u16,
) -> io::Result<Vec<Service>> {
    let mut found: Vec<Service> = Vec::new();
    match client.dump() {
        Ok(list) => {
            for m in list {
                let transport = match m.prot {
                    IPPROTO_TCP => Transport::Tcp,
                    IPPROTO_UDP => Transport::Udp,
                    _ => continue,
                };
                let Ok(port) = u16::try_from(m.port) else { continue };
                let entry = (m.prog, m.vers, transport, port);
                if programs.contains(&(m.prog, m.vers))
                    && port != 0
                    && port != ours
                    && !found.contains(&entry)
                {
                    found.push(entry);
                }
            }
        }
        Err(_) => {
            for &(prog, vers) in programs {
                for transport in [Transport::Tcp, Transport::Udp] {
                    let port = client.getport(prog, vers, transport)?;
                    if port != 0 && port != ours {
                        found.push((prog, vers, transport, port));
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Registers `services` with one portmapper. A service already registered on the same port is
/// fine; on another port it is an error naming it, since another server owns it (or a crashed
/// one left it behind: `rpcinfo -d PROG VERS` removes it). On an error the services registered
/// before it are removed again (see `roll_back`): the server does not start, or (`auto`) runs
/// without a portmapper, and either way would otherwise leave them registered for good.
pub fn register_with(client: &PmapClient, services: &[Service]) -> io::Result<()> {
    for (i, &service) in services.iter().enumerate() {
        if let Err(refused) = register_one(client, service) {
            let undone = roll_back(client, &services[..i], service, refused.held);
            return Err(io::Error::new(refused.error.kind(), format!("{}{undone}", refused.error)));
        }
    }
    Ok(())
}

/// Why one service could not be registered.
struct Refused {
    error: io::Error,
    /// Whether another registration may hold the program version on that transport: not known
    /// to be free.
    held: bool,
}

fn register_one(client: &PmapClient, (prog, vers, transport, port): Service) -> Result<(), Refused> {
    let unknown = |error| Refused { error, held: true };
    if client.set(prog, vers, transport, port).map_err(unknown)? {
        return Ok(());
    }
    let current = client.getport(prog, vers, transport).map_err(unknown)?;
    if current == port {
        return Ok(());
    }
    let why = if current == 0 {
        "the portmapper refused the registration (rpcbind accepts it only from its local socket or \
         with -L)"
            .to_string()
    } else {
        format!("it is already registered on port {current}")
    };
    Err(Refused {
        error: io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "cannot register program {prog} version {vers} ({transport:?}) at {}: {why}",
                client.target()
            ),
        ),
        held: current != 0,
    })
}

/// Removes `done`, what was registered before `failed` was refused, and says what it could not
/// remove, to be added to the error. UNSET removes a program version on every transport at once,
/// so when another registration may hold `failed`'s program version on its transport (`held`),
/// that program version stays registered on the others: removing it would remove the other one
/// too, and rnfsd never removes another program's registration.
fn roll_back(client: &PmapClient, done: &[Service], failed: Service, held: bool) -> String {
    let (kept, undo): (Vec<Service>, Vec<Service>) =
        done.iter().partition(|s| held && (s.0, s.1) == (failed.0, failed.1));
    let mut left = String::new();
    if let Err(e) = unregister_with(client, &undo) {
        left.push_str(&format!("; removing the registrations made before it failed too: {e}"));
    }
    for (prog, vers, transport, port) in kept {
        left.push_str(&format!(
            "; program {prog} version {vers} stays registered ({transport:?}, port {port}): removing it \
             could remove another server's registration of that version too"
        ));
    }
    left
}

/// Removes each program version of `services` (PMAP UNSET removes all transports at once).
pub fn unregister_with(client: &PmapClient, services: &[Service]) -> io::Result<()> {
    let mut done: Vec<(u32, u32)> = Vec::new();
    for &(prog, vers, _, _) in services {
        if !done.contains(&(prog, vers)) {
            client.unset(prog, vers)?;
            done.push((prog, vers));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::thread;

    use crate::portmap::{PortmapService, Registry};
    use crate::rpc::{CallContext, Cred, Program, RpcError};

    /// Answers one RPC record with the portmapper program: a minimal dispatcher for these tests.
    fn answer(
        svc: &PortmapService,
        record: &[u8],
        peer: SocketAddr,
        local: SocketAddr,
        t: Transport,
    ) -> Vec<u8> {
        let mut r = Reader::from_slice(record);
        let h = CallHeader::decode(&mut r).unwrap();
        let ctx = CallContext::new(h.xid, peer, local, t, Cred::from_call(&h.cred, &h.verf).unwrap());
        let mut body = BytesMut::new();
        let status = match svc.call(&ctx, h.vers, h.proc_, &mut r, &mut body) {
            Ok(()) => AcceptedStatus::Success,
            Err(RpcError::ProcUnavail) => AcceptedStatus::ProcUnavail,
            Err(e) => panic!("{e}"),
        };
        let mut out = BytesMut::new();
        ReplyHeader::accepted(h.xid, status).encode(&mut out);
        if status == AcceptedStatus::Success {
            out.extend_from_slice(&body);
        }
        out.to_vec()
    }

    fn spawn_udp(svc: PortmapService) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = sock.local_addr().unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let out = answer(&svc, &buf[..n], peer, local, Transport::Udp);
                let _ = sock.send_to(&out, peer);
            }
        });
        local
    }

    fn spawn_tcp(svc: PortmapService) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let peer = conn.peer_addr().unwrap();
                let mut assembler = RecordAssembler::new(MAX_REPLY);
                let mut src = BytesMut::new();
                let mut chunk = [0u8; 1024];
                loop {
                    match assembler.next_record(&mut src).unwrap() {
                        Some(rec) => {
                            let out = answer(&svc, &rec, peer, local, Transport::Tcp);
                            conn.write_all(&record_marker(out.len(), true)).unwrap();
                            conn.write_all(&out).unwrap();
                        }
                        None => match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => src.extend_from_slice(&chunk[..n]),
                        },
                    }
                }
            }
        });
        local
    }

    fn exercise(client: &PmapClient, registry: &Registry) {
        client.null().unwrap();
        assert_eq!(client.getport(100003, 3, Transport::Tcp).unwrap(), 0);
        let services = [
            (100003, 3, Transport::Tcp, 2049),
            (100003, 3, Transport::Udp, 2049),
            (100005, 3, Transport::Tcp, 20048),
        ];
        register_with(client, &services).unwrap();
        // Registering the same thing again is not an error.
        register_with(client, &services).unwrap();
        assert_eq!(client.getport(100003, 3, Transport::Udp).unwrap(), 2049);
        assert_eq!(client.getport(100005, 3, Transport::Tcp).unwrap(), 20048);
        assert_eq!(registry.entries().len(), 3);
        let dump = client.dump().unwrap();
        assert!(dump.contains(&mapping { prog: 100005, vers: 3, prot: IPPROTO_TCP, port: 20048 }));
        // Someone else's port for the same service is reported, not overwritten.
        let err = register_with(client, &[(100003, 3, Transport::Tcp, 3049)]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("port 2049"), "{err}");
        unregister_with(client, &services).unwrap();
        assert_eq!(client.getport(100003, 3, Transport::Tcp).unwrap(), 0);
        assert!(registry.entries().is_empty());
        assert!(client.dump().unwrap().is_empty());
    }

    #[test]
    fn register_over_udp_with_embedded_portmapper() {
        let registry = Arc::new(Registry::new());
        let addr = spawn_udp(PortmapService::new(registry.clone()));
        exercise(&PmapClient::new(RpcbindTarget::Udp(addr)), &registry);
    }

    #[test]
    fn register_over_tcp_with_embedded_portmapper() {
        let registry = Arc::new(Registry::new());
        let addr = spawn_tcp(PortmapService::new(registry.clone()));
        exercise(&PmapClient::new(RpcbindTarget::Tcp(addr)), &registry);
    }

    #[test]
    fn unavailable_procedure_is_an_error() {
        let addr = spawn_udp(PortmapService::new(Arc::new(Registry::new())));
        let err = PmapClient::new(RpcbindTarget::Udp(addr)).call(pmap_proc::CALLIT, &[0; 16]).unwrap_err();
        assert!(err.to_string().contains("ProcUnavail"), "{err}");
    }

    #[test]
    fn udp_timeout_when_nobody_answers() {
        // A bound socket that never replies.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = PmapClient::new(RpcbindTarget::Udp(silent.local_addr().unwrap()))
            .with_timeout(Duration::from_millis(200));
        let start = Instant::now();
        assert_eq!(client.null().unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn local_socket_that_does_not_exist_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let client = PmapClient::new(RpcbindTarget::Local(dir.path().join("rpcbind.sock")));
        assert!(client.null().is_err());
    }
}
