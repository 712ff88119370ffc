//! What the TCP and UDP transports share: their limits, and the entry points that serve a bound
//! socket until shutdown ([`serve_tcp`], [`serve_udp`]). The transports own sockets and framing
//! only; every decision about a record is the [`Dispatcher`](super::dispatch::Dispatcher)'s.

use std::time::Duration;

pub use super::tcp::{TcpShared, TcpStats, serve_tcp, serve_tcp_shared};
pub use super::udp::{BOUNDED_REPLY_MAX, UdpPolicy, serve_udp, serve_udp_with_policy};

/// The largest UDP payload over IPv4 (65535 − 20-byte IP header − 8-byte UDP header). A reply
/// that does not fit is not sent: NFS clients over UDP negotiate transfer sizes that fit.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Bounds on what peers can make the transports hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportLimits {
    /// Largest TCP record, all fragments together. A record over it closes the connection. It must
    /// hold the largest WRITE the server advertises plus its headers.
    pub max_record: usize,
    /// TCP connections served at once. A newcomer beyond it closes the least recently active
    /// connection of the address holding the most (see [`connections`](super::connections)).
    pub max_connections: usize,
    /// TCP connections one listed client address may hold.
    pub max_connections_per_host: usize,
    /// TCP connections of addresses that no export lists, in total and per address.
    pub max_unlisted_connections: usize,
    pub max_unlisted_connections_per_host: usize,
    /// Largest TCP record from an address that no export lists.
    pub max_unlisted_record: usize,
    /// A TCP record must arrive whole within this time from its first byte, plus a second per
    /// `min_record_rate` bytes of its size.
    pub record_timeout: Duration,
    pub min_record_rate: usize,
    /// Bytes of TCP requests held over every connection (partial records beyond a connection's
    /// first buffer, and records until their call has run).
    pub max_request_bytes: usize,
    /// Bytes of replies one TCP connection may hold before its requests are no longer read.
    pub max_reply_bytes_per_connection: usize,
    /// Bytes of large TCP replies held over every connection.
    pub max_reply_bytes: usize,
    /// Requests of one TCP connection executing at once. When it is reached the connection is not
    /// read until one finishes, which pushes back on the client.
    pub max_in_flight_per_connection: usize,
    /// Replies of one TCP connection waiting for the writer.
    pub reply_queue: usize,
    /// A TCP connection with nothing in flight that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// A single reply write that makes no complete progress for this long closes the connection
    /// (the client stopped reading).
    pub write_timeout: Duration,
    /// UDP datagrams being handled at once, over the whole socket.
    pub max_udp_in_flight: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_record: (1 << 20) + (64 << 10),
            max_connections: 1024,
            max_connections_per_host: 128,
            max_unlisted_connections: 64,
            max_unlisted_connections_per_host: 4,
            max_unlisted_record: 8 << 10,
            record_timeout: Duration::from_secs(15),
            min_record_rate: 128 << 10,
            max_request_bytes: 128 << 20,
            max_reply_bytes_per_connection: 32 << 20,
            max_reply_bytes: 256 << 20,
            max_in_flight_per_connection: 64,
            reply_queue: 64,
            idle_timeout: Duration::from_secs(6 * 60),
            write_timeout: Duration::from_secs(120),
            max_udp_in_flight: 256,
        }
    }
}
