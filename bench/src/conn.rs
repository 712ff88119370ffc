//! One TCP connection to an RPC server: AUTH_SYS calls with record marking, and a pipelined
//! engine that keeps a fixed number of calls in flight, each slot choosing its next call from the
//! reply to its previous one.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rnfsd_test_support::{auth_sys_named, call_header, net};
use xdr::Xdr;
use xdr::nfs3::{WRITE3args, procs};
use xdr::rpc::{OpaqueAuth, record_marker};

pub use rnfsd_test_support::{MOUNT, NFS};

/// A call to make: program, procedure (version 3 for both NFS and MOUNT), encoded arguments and
/// bulk data sent after them as it is (a WRITE's payload, whose length word ends `args`).
pub struct Call {
    pub prog: u32,
    pub proc_: u32,
    pub args: Bytes,
    pub payload: Bytes,
}

impl Call {
    pub fn new(prog: u32, proc_: u32, args: &impl Xdr) -> Call {
        Call { prog, proc_, args: args.to_bytes(), payload: Bytes::new() }
    }

    pub fn nfs(proc_: u32, args: &impl Xdr) -> Call {
        Call::new(NFS, proc_, args)
    }

    /// A WRITE whose data goes to the socket from the caller's buffer. Encoding it into the
    /// arguments and then into the message would copy each MiB twice in the client, which shares
    /// the machine's cores with the server being measured.
    pub fn write(mut args: WRITE3args) -> Call {
        let payload = std::mem::take(&mut args.data);
        // With no data the encoding ends in the opaque's length word, zero; it becomes the
        // payload's length, and the payload and its padding follow on the wire.
        let mut head = BytesMut::with_capacity(args.encoded_len());
        args.encode(&mut head);
        let end = head.len();
        head[end - 4..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
        Call { prog: NFS, proc_: procs::WRITE, args: head.freeze(), payload }
    }
}

pub struct Conn {
    stream: TcpStream,
    cred: OpaqueAuth,
    next_xid: u32,
    /// Reused receive buffer: a reply body is copied out only when the caller asks for it.
    buf: Vec<u8>,
}

/// Latencies and counts of one pipelined run.
#[derive(Default)]
pub struct RunStats {
    pub calls: u64,
    pub reply_bytes: u64,
    pub latencies_us: Vec<u32>,
}

/// A random first xid per connection, as real clients choose theirs. A fixed one would make a
/// second run's first calls (MKDIR of the same name in the same directory, under the same xid)
/// look like retransmissions of the first run's to a server's duplicate-request cache, which
/// would rightly replay the old replies.
fn first_xid() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish() as u32
}

impl Conn {
    pub fn connect(addr: SocketAddr, uid: u32, gid: u32) -> io::Result<Conn> {
        Self::connect_with_buffer(addr, uid, gid, 2 << 20)
    }

    /// A connection whose replies are at most `buffer` bytes (small, for many connections).
    pub fn connect_with_buffer(addr: SocketAddr, uid: u32, gid: u32, buffer: usize) -> io::Result<Conn> {
        Self::connect_from(addr, None, uid, gid, buffer)
    }

    /// A connection from source address `from` (any of 127/8 is local), so a server that tells
    /// clients apart by address sees it as another host; `None` lets the kernel choose.
    pub fn connect_from(
        addr: SocketAddr,
        from: Option<IpAddr>,
        uid: u32,
        gid: u32,
        buffer: usize,
    ) -> io::Result<Conn> {
        let stream = match from {
            None => TcpStream::connect(addr)?,
            Some(from) => net::connect_from(SocketAddr::new(from, 0), addr)?,
        };
        stream.set_nodelay(true)?;
        let cred = auth_sys_named("rnfsd-bench", uid, gid, &[gid]);
        Ok(Conn { stream, cred, next_xid: first_xid(), buf: vec![0; buffer] })
    }

    fn send(&mut self, xid: u32, call: &Call) -> io::Result<()> {
        let header = call_header(xid, call.prog, 3, call.proc_, &self.cred);
        let mut msg = BytesMut::with_capacity(128 + call.args.len());
        msg.extend_from_slice(&[0; 4]);
        header.encode(&mut msg);
        msg.extend_from_slice(&call.args);
        let padding = [0u8; 3];
        let padding = &padding[..(4 - call.payload.len() % 4) % 4];
        let marker = record_marker(msg.len() - 4 + call.payload.len() + padding.len(), true);
        msg[..4].copy_from_slice(&marker);
        let mut parts = [IoSlice::new(&msg), IoSlice::new(&call.payload), IoSlice::new(padding)];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            match self.stream.write_vectored(parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads one reply record into the buffer; returns (xid, body range) where the body is what
    /// follows an accepted SUCCESS header.
    fn receive(&mut self) -> io::Result<(u32, std::ops::Range<usize>)> {
        let mut marker = [0u8; 4];
        self.stream.read_exact(&mut marker)?;
        let word = u32::from_be_bytes(marker);
        let len = (word & 0x7fff_ffff) as usize;
        if word & 0x8000_0000 == 0 || len > self.buf.len() || len < 24 {
            return Err(io::Error::other(format!("unexpected reply record (marker {word:#x})")));
        }
        self.stream.read_exact(&mut self.buf[..len])?;
        let b = &self.buf[..len];
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let xid = u(0);
        if u(4) != 1 || u(8) != 0 {
            return Err(io::Error::other(format!("xid {xid:#x}: call rejected by the server")));
        }
        let verf_len = u(16) as usize;
        let at = 20 + verf_len.div_ceil(4) * 4;
        if at + 4 > len || u(at) != 0 {
            return Err(io::Error::other(format!(
                "xid {xid:#x}: RPC error (accept status {})",
                u(at.min(len - 4))
            )));
        }
        Ok((xid, at + 4..len))
    }

    /// One call, waiting for its reply body.
    pub fn call(&mut self, call: &Call) -> io::Result<Bytes> {
        self.next_xid = self.next_xid.wrapping_add(1);
        let xid = self.next_xid;
        self.send(xid, call)?;
        let (got, body) = self.receive()?;
        if got != xid {
            return Err(io::Error::other("reply to another call"));
        }
        Ok(Bytes::copy_from_slice(&self.buf[body]))
    }

    /// Keeps `slots` calls in flight. `step(slot, reply)` gives a slot's next call: first with no
    /// reply, then with the reply body of its previous call (or `None` to retire the slot).
    /// `keep_body` says whether replies are copied out for `step` (cheap ones are passed empty).
    pub fn pipeline(
        &mut self,
        slots: usize,
        keep_body: bool,
        mut step: impl FnMut(usize, Option<&[u8]>) -> io::Result<Option<Call>>,
    ) -> io::Result<RunStats> {
        let mut stats = RunStats::default();
        let mut outstanding: HashMap<u32, (usize, Instant)> = HashMap::with_capacity(slots * 2);
        for slot in 0..slots {
            if let Some(call) = step(slot, None)? {
                self.next_xid = self.next_xid.wrapping_add(1);
                self.send(self.next_xid, &call)?;
                outstanding.insert(self.next_xid, (slot, Instant::now()));
            }
        }
        while !outstanding.is_empty() {
            let (xid, body) = self.receive()?;
            let Some((slot, sent)) = outstanding.remove(&xid) else {
                return Err(io::Error::other(format!("reply with unknown xid {xid:#x}")));
            };
            stats.calls += 1;
            stats.reply_bytes += body.len() as u64;
            stats.latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            let next = if keep_body { step(slot, Some(&self.buf[body]))? } else { step(slot, Some(&[]))? };
            if let Some(call) = next {
                self.next_xid = self.next_xid.wrapping_add(1);
                self.send(self.next_xid, &call)?;
                outstanding.insert(self.next_xid, (slot, Instant::now()));
            }
        }
        Ok(stats)
    }
}
