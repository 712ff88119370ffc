//! Binding the server's ports: each is a TCP listener and a UDP socket on the same number, so a
//! client (and the portmapper) can use one port for either transport. Owns the ephemeral-port
//! search, the UDP receive buffer size, and the start errors a bind can end in.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpListener, UdpSocket};

use super::StartError;
use crate::rpc::Transport;

/// Attempts at finding an ephemeral port free on both TCP and UDP.
const EPHEMERAL_ATTEMPTS: usize = 16;

/// Receive buffer for UDP sockets. The kernel charges each datagram its buffer size (one to two
/// KiB even for a small one), so the default of about 200 KiB overflows after a burst of a couple
/// of hundred datagrams while the workers are busy, and every further datagram is dropped.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// One of the ports the server binds. Displays as its name in errors (`nfs`, `mount`, `portmap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPort {
    /// The NFS port, which serves MOUNT too.
    Nfs,
    /// The separate MOUNT port.
    Mount,
    /// The embedded portmapper's port.
    Portmap,
}

impl ServerPort {
    /// The port and transport as one name, as errors show it: `nfs/tcp`.
    pub fn socket_name(self, transport: Transport) -> &'static str {
        match (self, transport) {
            (ServerPort::Nfs, Transport::Tcp) => "nfs/tcp",
            (ServerPort::Nfs, Transport::Udp) => "nfs/udp",
            (ServerPort::Mount, Transport::Tcp) => "mount/tcp",
            (ServerPort::Mount, Transport::Udp) => "mount/udp",
            (ServerPort::Portmap, Transport::Tcp) => "portmap/tcp",
            (ServerPort::Portmap, Transport::Udp) => "portmap/udp",
        }
    }
}

impl fmt::Display for ServerPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerPort::Nfs => "nfs",
            ServerPort::Mount => "mount",
            ServerPort::Portmap => "portmap",
        })
    }
}

/// The hint a failed bind's error ends with: what a low port needs.
pub(super) fn bind_hint(port: u16, e: &io::Error) -> &'static str {
    if port < 1024 && e.kind() == io::ErrorKind::PermissionDenied {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    } else {
        ""
    }
}

fn bind_error(
    addr: IpAddr,
    port: u16,
    service: ServerPort,
    transport: Transport,
    e: io::Error,
) -> StartError {
    if e.kind() == io::ErrorKind::AddrInUse {
        StartError::PortInUse { port, service, transport, addr }
    } else {
        StartError::Bind { port, service, transport, addr, source: e }
    }
}

/// A TCP listener and a UDP socket bound to the same port, with their addresses.
#[derive(Debug)]
pub(super) struct BoundPair {
    pub(super) tcp: TcpListener,
    pub(super) udp: UdpSocket,
    pub(super) tcp_addr: SocketAddr,
    pub(super) udp_addr: SocketAddr,
}

/// Binds TCP and UDP on the same port. Port 0 picks an ephemeral TCP port and then UDP on the
/// same number, retrying with another port when that UDP port is taken.
pub(super) async fn bind_pair(addr: IpAddr, port: u16, service: ServerPort) -> Result<BoundPair, StartError> {
    let attempts = if port == 0 { EPHEMERAL_ATTEMPTS } else { 1 };
    for _ in 0..attempts {
        let tcp = TcpListener::bind(SocketAddr::new(addr, port))
            .await
            .map_err(|e| bind_error(addr, port, service, Transport::Tcp, e))?;
        let tcp_addr = tcp.local_addr().map_err(|e| bind_error(addr, port, service, Transport::Tcp, e))?;
        let udp = match UdpSocket::bind(SocketAddr::new(addr, tcp_addr.port())).await {
            Ok(udp) => udp,
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(bind_error(addr, tcp_addr.port(), service, Transport::Udp, e)),
        };
        let udp_addr =
            udp.local_addr().map_err(|e| bind_error(addr, tcp_addr.port(), service, Transport::Udp, e))?;
        enlarge_receive_buffer(&udp, service.socket_name(Transport::Udp));
        return Ok(BoundPair { tcp, udp, tcp_addr, udp_addr });
    }
    Err(StartError::NoEphemeralPort { service, addr })
}

fn enlarge_receive_buffer(udp: &UdpSocket, name: &str) {
    use nix::sys::socket::{setsockopt, sockopt};
    // Root may go past net.core.rmem_max; anyone else gets at most rmem_max.
    if setsockopt(udp, sockopt::RcvBufForce, &UDP_RECEIVE_BUFFER).is_err()
        && let Err(e) = setsockopt(udp, sockopt::RcvBuf, &UDP_RECEIVE_BUFFER)
    {
        tracing::debug!("{name}: cannot enlarge the receive buffer: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ephemeral_pairs_share_the_port_and_busy_ports_are_reported() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let pair = bind_pair(lo, 0, ServerPort::Nfs).await.unwrap();
        let port = pair.tcp_addr.port();
        assert_eq!(pair.udp_addr.port(), port);
        assert_eq!(pair.udp.local_addr().unwrap(), pair.udp_addr);
        let err = bind_pair(lo, port, ServerPort::Nfs).await.unwrap_err();
        assert_eq!(err.to_string(), format!("port {port} (nfs/tcp) on 127.0.0.1 is in use"));
    }
}
