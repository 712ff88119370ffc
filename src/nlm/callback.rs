//! Calls rnfsd makes to its lock clients: the GRANTED callback of a blocked lock and the `_RES`
//! answers of the `_MSG` procedures to a client's lock manager, and SM_NOTIFY to its status
//! monitor after a restart. Each finds the program through the client's portmapper (GETPORT) and
//! is sent *from the local address the client used*: the Linux client accepts GRANTED only from
//! the address it mounted. The status monitor's callback to this host's own lock manager goes
//! from a privileged port on loopback, the only source the Linux lockd accepts it from. Every
//! step has a timeout; nothing here is called with a lock held.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xdr::portmap::{IPPROTO_TCP, IPPROTO_UDP, mapping, pmap_proc};
use xdr::rpc::{
    AcceptedStatus, AuthSysParams, CallHeader, OpaqueAuth, RPC_VERSION, RecordAssembler, ReplyBody,
    ReplyHeader, record_marker,
};
use xdr::{Reader, Xdr};

use crate::rpc::Transport;

/// The largest reply accepted to a callback (they are a status and a cookie).
const MAX_REPLY: usize = 64 * 1024;

fn next_xid() -> u32 {
    static XID: AtomicU32 = AtomicU32::new(0);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
            ^ std::process::id().rotate_left(16);
    seed.wrapping_add(XID.fetch_add(0x9e37_79b9, Ordering::Relaxed))
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Where a call is sent from: an address, and whether from a privileged port.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub ip: IpAddr,
    /// Bind a port below 1024 when this process may (else an ephemeral one, and the callee may
    /// refuse the call).
    pub reserved_port: bool,
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        Source { ip, reserved_port: false }
    }
}

/// One of a bounded number of callbacks in flight: taken when one is queued, given back when it
/// is dropped (sent or given up), so that forged calls cannot make the server send unbounded
/// traffic.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot of `count`, unless `max` are taken.
    pub fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lowest port tried for a privileged source port (as the kernel's RPC client).
const RESERVED_LOW: u16 = 665;

/// This host's name, as its lock manager gives it in `caller_name` and SM_MON.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// One RPC call from `from` to `to` over `transport`, AUTH_SYS root with this host's name as the
/// machine name; the bytes of the results, or why not.
#[allow(clippy::too_many_arguments)]
pub async fn call(
    from: impl Into<Source>,
    to: SocketAddr,
    transport: Transport,
    prog: u32,
    vers: u32,
    proc_: u32,
    args: &[u8],
    timeout: Duration,
) -> io::Result<Bytes> {
    let from = from.into();
    let xid = next_xid();
    let cred =
        AuthSysParams { stamp: 0, machine_name: Bytes::from(host_name()), uid: 0, gid: 0, gids: Vec::new() };
    let header = CallHeader {
        xid,
        rpcvers: RPC_VERSION,
        prog,
        vers,
        proc_,
        cred: cred.to_opaque_auth(),
        verf: OpaqueAuth::none(),
    };
    let mut msg = BytesMut::with_capacity(header.encoded_len() + args.len());
    header.encode(&mut msg);
    msg.extend_from_slice(args);
    let exchange = async {
        match transport {
            Transport::Tcp => tcp_exchange(from, to, &msg).await,
            Transport::Udp => udp_exchange(from, to, &msg, xid, timeout).await,
        }
    };
    let record = tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        io::Error::new(io::ErrorKind::TimedOut, format!("no reply from {to} within {timeout:?}"))
    })??;
    let mut r = Reader::new(record);
    let h = ReplyHeader::decode(&mut r).map_err(|e| bad(format!("reply from {to}: {e}")))?;
    if h.xid != xid {
        return Err(bad(format!("reply from {to} has xid {:#x}, not {xid:#x}", h.xid)));
    }
    match h.body {
        ReplyBody::Accepted { status: AcceptedStatus::Success, .. } => Ok(r.rest()),
        ReplyBody::Accepted { status, .. } => Err(bad(format!("{to} did not accept the call: {status:?}"))),
        ReplyBody::Denied(why) => Err(bad(format!("{to} denied the call: {why:?}"))),
    }
}

/// Binds `bind` to `from`'s address: to a free privileged port when asked and permitted, else to
/// an ephemeral one.
fn bind_from<S>(from: Source, bind: impl Fn(SocketAddr) -> io::Result<S>) -> io::Result<S> {
    if from.reserved_port {
        for port in (RESERVED_LOW..1024).rev() {
            match bind(SocketAddr::new(from.ip, port)) {
                Ok(s) => return Ok(s),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => {
                    tracing::debug!("no privileged source port: {e}");
                    break;
                }
            }
        }
    }
    bind(SocketAddr::new(from.ip, 0))
}

fn socket_for(from: Source) -> io::Result<tokio::net::TcpSocket> {
    bind_from(from, |addr| {
        let s =
            if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        s.bind(addr)?;
        Ok(s)
    })
}

async fn tcp_exchange(from: Source, to: SocketAddr, msg: &[u8]) -> io::Result<Bytes> {
    let mut stream = socket_for(from)?.connect(to).await?;
    let mut out = Vec::with_capacity(4 + msg.len());
    out.extend_from_slice(&record_marker(msg.len(), true));
    out.extend_from_slice(msg);
    stream.write_all(&out).await?;
    let mut assembler = RecordAssembler::new(MAX_REPLY);
    let mut src = BytesMut::new();
    loop {
        if let Some(rec) = assembler.next_record(&mut src).map_err(|e| bad(e.to_string()))? {
            return Ok(rec);
        }
        if stream.read_buf(&mut src).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{to} closed the connection")));
        }
    }
}

async fn udp_exchange(
    from: Source,
    to: SocketAddr,
    msg: &[u8],
    xid: u32,
    timeout: Duration,
) -> io::Result<Bytes> {
    let sock = bind_from(from, std::net::UdpSocket::bind)?;
    sock.set_nonblocking(true)?;
    let sock = tokio::net::UdpSocket::from_std(sock)?;
    sock.connect(to).await?;
    let mut buf = vec![0u8; MAX_REPLY];
    loop {
        sock.send(msg).await?;
        // Retransmit a few times within the caller's timeout: UDP may lose either datagram.
        match tokio::time::timeout(timeout / 4, sock.recv(&mut buf)).await {
            Ok(Ok(n)) if n >= 4 && buf[..4] == xid.to_be_bytes() => {
                return Ok(Bytes::copy_from_slice(&buf[..n]));
            }
            Ok(Ok(_)) | Err(_) => continue,
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Where program `prog` version `vers` listens on `host` over `transport`, asked of the
/// portmapper at `host:pmap_port` over TCP from `from`.
pub async fn getport(
    from: IpAddr,
    host: IpAddr,
    pmap_port: u16,
    prog: u32,
    vers: u32,
    transport: Transport,
    timeout: Duration,
) -> io::Result<SocketAddr> {
    let prot = match transport {
        Transport::Tcp => IPPROTO_TCP,
        Transport::Udp => IPPROTO_UDP,
    };
    let mut args = BytesMut::new();
    mapping { prog, vers, prot, port: 0 }.encode(&mut args);
    let res = call(
        from,
        SocketAddr::new(host, pmap_port),
        Transport::Tcp,
        xdr::portmap::PROGRAM,
        xdr::portmap::VERSION_PMAP,
        pmap_proc::GETPORT,
        &args,
        timeout,
    )
    .await?;
    let port = u32::decode(&mut Reader::new(res)).map_err(|e| bad(format!("GETPORT result: {e}")))?;
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(SocketAddr::new(host, p)),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the portmapper of {host} has no program {prog} version {vers}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back_when_dropped() {
        let count = Arc::new(AtomicUsize::new(0));
        let taken: Vec<Slot> = (0..3).map(|_| Slot::take(&count, 3).expect("room")).collect();
        assert!(Slot::take(&count, 3).is_none(), "full");
        drop(taken);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        assert!(Slot::take(&count, 3).is_some());
    }
}
