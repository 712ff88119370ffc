//! The UDP transport: one datagram is one call. Each is handled as its own task under a global
//! in-flight bound, and the reply goes back to the sender as one datagram.
//!
//! Two things make UDP different from TCP, and both are handled here:
//! - **Where the reply comes from.** On a socket bound to a wildcard address the kernel picks the
//!   reply's source address by routing, which on a multi-homed host can differ from the address
//!   the client sent to, and the client then drops the reply. So the destination address of every
//!   call is read from its IP_PKTINFO / IPV6_PKTINFO control message and the reply is sent from
//!   it.
//! - **Reflection.** The sender's address is not verified, so a call with a forged source makes
//!   the server send its reply to a victim. [`UdpPolicy`] says which programs are not served over
//!   UDP at all (NFS unless enabled: a 32 KiB READ reply is 374 times its call) and which have
//!   their replies bounded in size (MOUNT, the portmapper), so what the server reflects stays
//!   small.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, sendmsg,
    setsockopt, sockopt,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use xdr::Xdr;
use xdr::rpc::{AcceptedStatus, MSG_CALL, ReplyHeader};

use super::Transport;
use super::dispatch::Dispatcher;
use super::stats::ErrorKind;
use super::transport::{MAX_UDP_PAYLOAD, TransportLimits};

/// Receive buffer: larger than any UDP payload, so no call is silently truncated.
const RECV_BUF: usize = (64 << 10) + 512;
/// Pause after a failed receive so a persistent socket error cannot spin.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);
/// The smallest RPC call: xid, message type, rpcvers, prog, vers, proc, and two empty
/// AUTH_NONE opaque_auths (RFC 5531 §9). A shorter datagram is not a call and gets no reply: the
/// GARBAGE_ARGS a TCP peer would get is 24 bytes, more than such a datagram, and over UDP it
/// would go to whatever source the datagram claims.
pub const MIN_CALL_LEN: usize = 40;

/// The largest reply sent over UDP for a [bounded](UdpPolicy::bounded) program. The smallest
/// possible call (an AUTH_NONE header) is 40 bytes, so nothing reflects more than 12.8 times what
/// it received. Every reply MOUNT and the portmapper give a mounting client fits: MNT's handle and
/// flavors are about 100 bytes, GETPORT 28, a portmap v2 DUMP of rnfsd's own registrations about
/// 360. A longer list (a large EXPORT, an rpcbind v3/v4 DUMP) is answered over TCP, which
/// `showmount` and `rpcinfo` try first.
pub const BOUNDED_REPLY_MAX: usize = 512;

/// What each program may do over UDP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpPolicy {
    /// Programs not served over UDP: their calls are answered PROG_UNAVAIL (a reply smaller than
    /// the call), as if the program did not exist on this transport.
    pub refused: Vec<u32>,
    /// Programs whose UDP replies are at most [`UdpPolicy::bounded_reply_max`] bytes. A longer
    /// reply is not sent; the call is answered SYSTEM_ERR instead.
    pub bounded: Vec<u32>,
    /// The bound for `bounded` programs ([`BOUNDED_REPLY_MAX`] in the server).
    pub bounded_reply_max: usize,
}

/// Serves RPC over UDP on `socket` with every program served and replies bounded only by the
/// datagram size. See [`serve_udp_with_policy`].
pub async fn serve_udp(
    socket: Arc<UdpSocket>,
    dispatcher: Arc<Dispatcher>,
    limits: TransportLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    serve_udp_with_policy(socket, dispatcher, limits, Arc::new(UdpPolicy::default()), shutdown, tracker).await
}

/// Serves RPC over UDP on `socket` under `policy` until `shutdown` is cancelled. Request tasks
/// are spawned on `tracker`, so waiting on it after shutdown lets in-flight calls finish and send
/// their replies.
pub async fn serve_udp_with_policy(
    socket: Arc<UdpSocket>,
    dispatcher: Arc<Dispatcher>,
    limits: TransportLimits,
    policy: Arc<UdpPolicy>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "UDP socket has no local address; not serving it");
            return;
        }
    };
    if local.ip().is_unspecified()
        && let Err(e) = request_destination_addresses(&socket, local)
    {
        tracing::warn!(
            %local,
            error = %e,
            "cannot learn the destination address of UDP calls; replies leave from the address the kernel \
             picks, which clients of a multi-homed host may drop"
        );
    }
    let in_flight = Arc::new(Semaphore::new(limits.max_udp_in_flight.max(1)));
    let mut buf = vec![0u8; RECV_BUF];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo);
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = in_flight.clone().acquire_owned() => p.expect("the in-flight semaphore is never closed"),
        };
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = socket.async_io(Interest::READABLE, || receive(&socket, &mut buf, &mut control)) => r,
        };
        let (len, peer, reply_from) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                }
                continue;
            }
        };
        if len < MIN_CALL_LEN {
            tracing::trace!(%peer, len, "UDP datagram too short to be a call; not answered");
            dispatcher.counters().records_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let datagram = Bytes::copy_from_slice(&buf[..len]);
        let dispatcher = dispatcher.clone();
        let socket = socket.clone();
        let policy = policy.clone();
        // The address the call was sent to, for the portmapper's universal addresses.
        let local = reply_from.map_or(local, |f| SocketAddr::new(f.addr, local.port()));
        tracker.spawn(async move {
            let program = call_program(&datagram);
            let reply = match program {
                Some((xid, prog)) if policy.refused.contains(&prog) => {
                    dispatcher.counters().count_error(ErrorKind::ProgUnavail);
                    Some(ReplyHeader::accepted(xid, AcceptedStatus::ProgUnavail).to_bytes())
                }
                _ => dispatcher.handle(datagram, peer, local, Transport::Udp).await,
            };
            if let Some(reply) = reply.and_then(|r| bound_reply(&dispatcher, &policy, program, peer, r)) {
                let sent = socket
                    .async_io(Interest::WRITABLE, || send(&socket, &reply, peer, reply_from.as_ref()))
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(%peer, error = %e, "UDP send failed");
                }
            }
            drop(permit);
        });
    }
    tracing::debug!("udp receive loop stopped");
}

/// The reply to send for `reply`, or `None` when nothing can be: a reply longer than a datagram
/// is dropped, and one over a bounded program's bound becomes SYSTEM_ERR.
fn bound_reply(
    dispatcher: &Dispatcher,
    policy: &UdpPolicy,
    program: Option<(u32, u32)>,
    peer: SocketAddr,
    reply: Bytes,
) -> Option<Bytes> {
    let too_large = || dispatcher.counters().udp_replies_too_large.fetch_add(1, Ordering::Relaxed);
    if reply.len() > MAX_UDP_PAYLOAD {
        tracing::warn!(%peer, len = reply.len(), "reply too large for UDP; not sent");
        too_large();
        return None;
    }
    match program {
        Some((xid, prog)) if policy.bounded.contains(&prog) && reply.len() > policy.bounded_reply_max => {
            tracing::debug!(
                %peer,
                prog,
                len = reply.len(),
                max = policy.bounded_reply_max,
                "UDP reply over the reflection bound; answering SYSTEM_ERR (the call works over TCP)"
            );
            too_large();
            dispatcher.counters().count_error(ErrorKind::SystemErr);
            Some(ReplyHeader::accepted(xid, AcceptedStatus::SystemErr).to_bytes())
        }
        _ => Some(reply),
    }
}

/// The xid and program number of a datagram that is an RPC call, read from their fixed
/// positions. Anything else is the dispatcher's to judge.
fn call_program(datagram: &[u8]) -> Option<(u32, u32)> {
    let word = |i: usize| {
        datagram.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes(b.try_into().expect("four bytes")))
    };
    (word(1)? == MSG_CALL).then_some((word(0)?, word(3)?))
}

/// Where a reply leaves from: the destination address of its call, and for an IPv6 link-local
/// address the interface it came in on (the address alone does not name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReplyFrom {
    addr: IpAddr,
    ifindex: u32,
}

/// Asks the kernel to report each datagram's destination address. On an IPv6 socket this covers
/// IPv4 calls too (as v4-mapped addresses).
fn request_destination_addresses(socket: &UdpSocket, local: SocketAddr) -> nix::Result<()> {
    match local {
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4PacketInfo, &true),
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true),
    }
}

/// One `recvmsg`: the datagram into `buf`, its sender, and where the reply should come from.
fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<ReplyFrom>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())?;
    let peer = msg
        .address
        .as_ref()
        .and_then(std_addr)
        .ok_or_else(|| io::Error::other("a datagram without an IP sender address"))?;
    let mut reply_from = None;
    // A truncated control buffer only loses the destination address; the call is still served.
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            reply_from = match cmsg {
                ControlMessageOwned::Ipv4PacketInfo(info) => Some(ReplyFrom {
                    addr: Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)).into(),
                    ifindex: 0,
                }),
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    let addr = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    let ifindex = if addr.is_unicast_link_local() { info.ipi6_ifindex } else { 0 };
                    Some(ReplyFrom { addr: addr.into(), ifindex })
                }
                _ => reply_from,
            };
        }
    }
    // A call sent to a broadcast or multicast address cannot be answered from that address.
    let reply_from = reply_from.filter(|f| usable_source(f.addr));
    Ok((msg.bytes, peer, reply_from))
}

/// Whether `addr` can be the source address of a unicast reply.
fn usable_source(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

fn std_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(std::net::SocketAddrV4::from(*v4).into());
    }
    addr.as_sockaddr_in6().map(|v6| std::net::SocketAddrV6::from(*v6).into())
}

/// One `sendmsg` of `reply` to `peer`, from `from` when the call's destination is known.
fn send(socket: &UdpSocket, reply: &[u8], peer: SocketAddr, from: Option<&ReplyFrom>) -> io::Result<usize> {
    let iov = [IoSlice::new(reply)];
    let to = SockaddrStorage::from(peer);
    let fd = socket.as_raw_fd();
    let sent = match (from.map(|f| (f.addr, f.ifindex)), to.family()) {
        (Some((IpAddr::V4(src), _)), Some(nix::sys::socket::AddressFamily::Inet)) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr { s_addr: u32::from(src).to_be() },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            sendmsg(fd, &iov, &[ControlMessage::Ipv4PacketInfo(&info)], MsgFlags::empty(), Some(&to))
        }
        (Some((IpAddr::V6(src), ifindex)), Some(nix::sys::socket::AddressFamily::Inet6)) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr { s6_addr: src.octets() },
                ipi6_ifindex: ifindex,
            };
            sendmsg(fd, &iov, &[ControlMessage::Ipv6PacketInfo(&info)], MsgFlags::empty(), Some(&to))
        }
        _ => return Ok(sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&to))?),
    };
    match sent {
        // The kernel refuses a source it cannot send from (say, a subnet's broadcast address the
        // call was sent to): the kernel's choice is better than no reply.
        Err(nix::errno::Errno::EINVAL) => Ok(sendmsg(fd, &iov, &[], MsgFlags::empty(), Some(&to))?),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_program_reads_xid_and_program_of_calls_only() {
        let mut call = Vec::new();
        for w in [7u32, MSG_CALL, 2, 100003, 3, 0] {
            call.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(call_program(&call), Some((7, 100003)));
        assert_eq!(call_program(&call[..12]), None);
        call[4..8].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(call_program(&call), None, "a reply is no call");
    }

    #[test]
    fn broadcast_and_multicast_destinations_are_not_reply_sources() {
        assert!(usable_source("10.0.0.1".parse().unwrap()));
        assert!(usable_source("::ffff:10.0.0.1".parse().unwrap()));
        assert!(usable_source("fd00::2".parse().unwrap()));
        assert!(!usable_source("255.255.255.255".parse().unwrap()));
        assert!(!usable_source("224.0.0.1".parse().unwrap()));
        assert!(!usable_source("ff02::1".parse().unwrap()));
        assert!(!usable_source("0.0.0.0".parse().unwrap()));
    }
}
