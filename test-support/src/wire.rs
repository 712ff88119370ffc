//! ONC RPC (RFC 5531) messages as bytes, for clients written byte by byte: call headers and
//! messages, TCP record marking (blocking and tokio), reply headers, AUTH_SYS credentials and
//! datagrams. Everything goes through the project's `xdr` codecs except where a test needs bytes
//! the codecs would refuse to produce.

use std::io::{self, Read};
use std::net::UdpSocket;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use xdr::rpc::{
    AcceptedStatus, AuthSysParams, CallHeader, OpaqueAuth, RPC_VERSION, RejectedReply, ReplyBody,
    ReplyHeader, record_marker,
};
use xdr::{Reader, Xdr};

pub const PORTMAP: u32 = 100_000;
pub const NFS: u32 = 100_003;
pub const MOUNT: u32 = 100_005;

/// The largest datagram a test expects back (a UDP reply is at most 64 KiB).
pub const DATAGRAM_MAX: usize = 70_000;

/// AUTH_SYS credentials from machine `testclient`.
pub fn auth_sys(uid: u32, gid: u32, gids: &[u32]) -> OpaqueAuth {
    auth_sys_named("testclient", uid, gid, gids)
}

/// AUTH_SYS credentials from machine `machine`.
pub fn auth_sys_named(machine: &'static str, uid: u32, gid: u32, gids: &[u32]) -> OpaqueAuth {
    AuthSysParams {
        stamp: 1,
        machine_name: Bytes::from_static(machine.as_bytes()),
        uid,
        gid,
        gids: gids.to_vec(),
    }
    .to_opaque_auth()
}

/// An RPC version 2 call header with an AUTH_NONE verifier; change a field with struct update
/// syntax for a malformed one (`CallHeader { rpcvers: 3, ..call_header(..) }`).
pub fn call_header(xid: u32, prog: u32, vers: u32, proc_: u32, cred: &OpaqueAuth) -> CallHeader {
    CallHeader { xid, rpcvers: RPC_VERSION, prog, vers, proc_, cred: cred.clone(), verf: OpaqueAuth::none() }
}

/// `header` encoded, then `args`: a whole call message (without record marking).
pub fn encode_call(header: &CallHeader, args: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    header.encode(&mut out);
    out.extend_from_slice(args);
    out.to_vec()
}

/// A whole call message (without record marking).
pub fn call_message(xid: u32, prog: u32, vers: u32, proc_: u32, cred: &OpaqueAuth, args: &[u8]) -> Vec<u8> {
    encode_call(&call_header(xid, prog, vers, proc_, cred), args)
}

/// `msg` as one record: a last-fragment marker, then the bytes.
pub fn record(msg: &[u8]) -> Vec<u8> {
    let mut out = record_marker(msg.len(), true).to_vec();
    out.extend_from_slice(msg);
    out
}

/// The next fragment of a record: whether it is the record's last, and its bytes; `None` at end
/// of stream or on an error.
pub fn read_fragment(s: &mut impl Read) -> Option<(bool, Vec<u8>)> {
    let mut m = [0u8; 4];
    s.read_exact(&mut m).ok()?;
    let word = u32::from_be_bytes(m);
    let mut fragment = vec![0u8; (word & 0x7fff_ffff) as usize];
    s.read_exact(&mut fragment).ok()?;
    Some((word & 0x8000_0000 != 0, fragment))
}

/// The next whole record (its fragments joined), or `None` at end of stream or on an error.
pub fn read_record(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (last, fragment) = read_fragment(s)?;
        out.extend_from_slice(&fragment);
        if last {
            return Some(out);
        }
    }
}

/// [`read_record`] on a tokio stream; the error says why the stream ended.
pub async fn read_record_async(s: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let word = s.read_u32().await?;
        let start = out.len();
        out.resize(start + (word & 0x7fff_ffff) as usize, 0);
        s.read_exact(&mut out[start..]).await?;
        if word & 0x8000_0000 != 0 {
            return Ok(out);
        }
    }
}

/// How a call failed at the RPC level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcFailure {
    Accepted(AcceptedStatus),
    Denied(RejectedReply),
}

/// The xid of a reply (its first word).
pub fn reply_xid(reply: &[u8]) -> u32 {
    u32::from_be_bytes(reply[..4].try_into().expect("a reply of at least 4 bytes"))
}

/// A reply's header, and a reader over the results after it.
pub fn split_reply(reply: &[u8]) -> (ReplyHeader, Reader) {
    let mut r = Reader::from_slice(reply);
    let header = ReplyHeader::decode(&mut r).expect("a reply header");
    (header, r)
}

/// Checks the reply header (xid, acceptance) and returns the results.
pub fn parse_reply(xid: u32, reply: &[u8]) -> Result<Bytes, RpcFailure> {
    let (header, r) = split_reply(reply);
    assert_eq!(header.xid, xid, "reply xid");
    match header.body {
        ReplyBody::Accepted { status: AcceptedStatus::Success, .. } => Ok(r.rest()),
        ReplyBody::Accepted { status, .. } => Err(RpcFailure::Accepted(status)),
        ReplyBody::Denied(d) => Err(RpcFailure::Denied(d)),
    }
}

/// Receives one datagram, retrying when a signal interrupts the wait (a server starting in another
/// test thread changes credentials with a signal to every thread, which cuts short a receive that
/// has a timeout).
pub fn recv_datagram(s: &UdpSocket, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match s.recv_from(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|(n, _)| n),
        }
    }
}

/// Sends `msg` as a datagram to `to` and returns the reply datagram.
pub fn udp_exchange(s: &UdpSocket, to: std::net::SocketAddr, msg: &[u8]) -> Vec<u8> {
    s.send_to(msg, to).unwrap();
    let mut buf = vec![0u8; DATAGRAM_MAX];
    let n = recv_datagram(s, &mut buf).expect("a reply datagram");
    buf.truncate(n);
    buf
}

/// One call on a TCP stream: sends `msg` as a record, reads the reply record and checks it
/// answers `xid`; the results.
pub fn tcp_call(s: &mut std::net::TcpStream, xid: u32, msg: &[u8]) -> Result<Bytes, RpcFailure> {
    use std::io::Write;
    s.write_all(&record(msg)).unwrap();
    let reply = read_record(s).expect("a reply record");
    parse_reply(xid, &reply)
}
