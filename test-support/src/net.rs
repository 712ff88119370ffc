//! Connections from a chosen source: any address of 127/8 is local, so a test (or the benchmark)
//! can be "another host" to a server that tells clients apart by address, and, as root, a
//! privileged port for `secure` exports and portmapper registrations.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, socket};

/// The privileged ports tried, highest first (below 600 are often taken by system services).
const PRIVILEGED: std::ops::Range<u16> = 600..1024;

/// A TCP connection to `dst` from `src` (port 0: one the kernel chooses), with Nagle off.
pub fn connect_from(src: SocketAddr, dst: SocketAddr) -> io::Result<TcpStream> {
    let family = if dst.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(src))?;
    connect(fd.as_raw_fd(), &SockaddrStorage::from(dst))?;
    let s = TcpStream::from(fd);
    s.set_nodelay(true)?;
    Ok(s)
}

/// A TCP connection to `dst` from a privileged port of `src` (the caller runs as root).
pub fn connect_privileged(src: IpAddr, dst: SocketAddr) -> TcpStream {
    PRIVILEGED
        .rev()
        .find_map(|port| connect_from(SocketAddr::new(src, port), dst).ok())
        .unwrap_or_else(|| panic!("no free privileged port on {src} (run as root)"))
}

/// A UDP socket on a privileged port of `ip` (the caller runs as root).
pub fn udp_privileged(ip: IpAddr) -> UdpSocket {
    PRIVILEGED
        .rev()
        .find_map(|port| UdpSocket::bind((ip, port)).ok())
        .unwrap_or_else(|| panic!("no free privileged UDP port on {ip} (run as root)"))
}

/// [`connect_from`] on tokio, with the port chosen by the kernel.
pub async fn connect_from_async(src: IpAddr, dst: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let sock =
        if dst.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    sock.bind(SocketAddr::new(src, 0))?;
    let s = sock.connect(dst).await?;
    s.set_nodelay(true)?;
    Ok(s)
}
