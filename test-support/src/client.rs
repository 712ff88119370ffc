//! A synchronous ONC RPC client over TCP (record marking) or UDP, with AUTH_SYS credentials
//! (root by default) and typed NFS v3 and MOUNT v3 calls built on the project's `xdr` crate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use bytes::Bytes;
use xdr::Xdr;
use xdr::nfs3::*;
use xdr::rpc::OpaqueAuth;

use crate::nfs::dirop;
use crate::wire::{
    DATAGRAM_MAX, MOUNT, NFS, RpcFailure, auth_sys, call_message, parse_reply, read_record, record,
    recv_datagram,
};

/// How long a call waits for its reply before the test fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

enum Transport {
    Tcp(TcpStream),
    Udp(UdpSocket, SocketAddr),
}

/// A synchronous RPC client.
pub struct Client {
    transport: Transport,
    pub cred: OpaqueAuth,
    next_xid: u32,
}

impl Client {
    pub fn tcp(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Client { transport: Transport::Tcp(s), cred: auth_sys(0, 0, &[]), next_xid: rand_xid() }
    }

    /// A client on a connection made elsewhere (from another source address, a privileged port).
    pub fn over_tcp(s: TcpStream) -> Client {
        s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Client { transport: Transport::Tcp(s), cred: auth_sys(0, 0, &[]), next_xid: rand_xid() }
    }

    pub fn udp(addr: SocketAddr) -> Client {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Client { transport: Transport::Udp(s, addr), cred: auth_sys(0, 0, &[]), next_xid: rand_xid() }
    }

    pub fn with_cred(mut self, cred: OpaqueAuth) -> Client {
        self.cred = cred;
        self
    }

    pub fn fresh_xid(&mut self) -> u32 {
        self.next_xid = self.next_xid.wrapping_add(1);
        self.next_xid
    }

    /// Sends one message and returns the whole reply message.
    pub fn exchange(&mut self, msg: &[u8]) -> Vec<u8> {
        self.send(msg);
        self.recv()
    }

    /// Sends one message: as a record over TCP, as a datagram over UDP.
    pub fn send(&mut self, msg: &[u8]) {
        match &mut self.transport {
            Transport::Tcp(s) => s.write_all(&record(msg)).unwrap(),
            Transport::Udp(s, addr) => {
                s.send_to(msg, *addr).unwrap();
            }
        }
    }

    /// The next whole reply message.
    pub fn recv(&mut self) -> Vec<u8> {
        match &mut self.transport {
            Transport::Tcp(s) => read_record(s).expect("a reply record"),
            Transport::Udp(s, _) => {
                let mut buf = vec![0u8; DATAGRAM_MAX];
                let n = recv_datagram(s, &mut buf).expect("a UDP reply");
                buf.truncate(n);
                buf
            }
        }
    }

    /// How long a reply may take from now on (20 s unless changed).
    pub fn set_timeout(&mut self, timeout: Duration) {
        match &self.transport {
            Transport::Tcp(s) => s.set_read_timeout(Some(timeout)).unwrap(),
            Transport::Udp(s, _) => s.set_read_timeout(Some(timeout)).unwrap(),
        }
    }

    /// Sends raw bytes on the TCP stream.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.transport {
            Transport::Tcp(s) => s.write_all(bytes).unwrap(),
            Transport::Udp(s, addr) => {
                s.send_to(bytes, *addr).unwrap();
            }
        }
    }

    pub fn read_reply(&mut self) -> Option<Vec<u8>> {
        match &mut self.transport {
            Transport::Tcp(s) => read_record(s),
            Transport::Udp(..) => None,
        }
    }

    /// Calls with a given xid; returns the result bytes after the reply header.
    pub fn call_xid(
        &mut self,
        xid: u32,
        prog: u32,
        vers: u32,
        proc_: u32,
        args: &[u8],
    ) -> Result<Bytes, RpcFailure> {
        let msg = call_message(xid, prog, vers, proc_, &self.cred.clone(), args);
        let reply = self.exchange(&msg);
        parse_reply(xid, &reply)
    }

    pub fn call(&mut self, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Result<Bytes, RpcFailure> {
        let xid = self.fresh_xid();
        self.call_xid(xid, prog, vers, proc_, args)
    }

    /// A typed NFS v3 call.
    pub fn nfs<A: Xdr, R: Xdr>(&mut self, proc_: u32, args: &A) -> R {
        let body =
            self.call(NFS, 3, proc_, &args.to_bytes()).unwrap_or_else(|e| panic!("NFS proc {proc_}: {e:?}"));
        R::from_bytes(&body).unwrap_or_else(|e| panic!("NFS proc {proc_} reply: {e:?}"))
    }

    /// An NFS v3 call expected to fail at the RPC level.
    pub fn nfs_rpc_error<A: Xdr>(&mut self, proc_: u32, args: &A) -> RpcFailure {
        self.call(NFS, 3, proc_, &args.to_bytes()).expect_err("an RPC-level error")
    }

    /// MOUNT v3 MNT of `path`.
    pub fn mount(&mut self, path: &str) -> Result<nfs_fh3, xdr::mount::mountstat3> {
        let args = xdr::mount::dirpath(Bytes::copy_from_slice(path.as_bytes()));
        let body = self.call(MOUNT, 3, 1, &args.to_bytes()).expect("MNT answered");
        match xdr::mount::mountres3::from_bytes(&body).expect("mountres3") {
            xdr::mount::mountres3::Ok(ok) => Ok(nfs_fh3(ok.fhandle)),
            xdr::mount::mountres3::Err(s) => Err(s),
        }
    }

    pub fn getattr(&mut self, fh: &nfs_fh3) -> GETATTR3res {
        self.nfs(procs::GETATTR, &GETATTR3args { object: fh.clone() })
    }

    pub fn attrs(&mut self, fh: &nfs_fh3) -> fattr3 {
        self.getattr(fh).ok().expect("GETATTR ok").obj_attributes
    }

    pub fn lookup(&mut self, dir: &nfs_fh3, name: &str) -> LOOKUP3res {
        self.nfs(procs::LOOKUP, &LOOKUP3args { what: dirop(dir, name) })
    }

    pub fn lookup_fh(&mut self, dir: &nfs_fh3, name: &str) -> nfs_fh3 {
        self.lookup(dir, name).ok().unwrap_or_else(|| panic!("LOOKUP {name}")).object
    }

    pub fn create(&mut self, dir: &nfs_fh3, name: &str, how: createhow3) -> CREATE3res {
        self.nfs(procs::CREATE, &CREATE3args { where_: dirop(dir, name), how })
    }

    /// Creates a regular file (UNCHECKED, mode 0644) and returns its handle.
    pub fn create_file(&mut self, dir: &nfs_fh3, name: &str) -> nfs_fh3 {
        let how = createhow3::UNCHECKED(sattr3 { mode: Some(0o644), ..Default::default() });
        self.create(dir, name, how).ok().unwrap_or_else(|| panic!("CREATE {name}")).obj.expect("handle")
    }

    pub fn mkdir(&mut self, dir: &nfs_fh3, name: &str) -> MKDIR3res {
        let attributes = sattr3 { mode: Some(0o755), ..Default::default() };
        self.nfs(procs::MKDIR, &MKDIR3args { where_: dirop(dir, name), attributes })
    }

    pub fn mkdir_fh(&mut self, dir: &nfs_fh3, name: &str) -> nfs_fh3 {
        self.mkdir(dir, name).ok().unwrap_or_else(|| panic!("MKDIR {name}")).obj.expect("handle")
    }

    pub fn write(&mut self, fh: &nfs_fh3, offset: u64, data: &[u8], stable: stable_how) -> WRITE3res {
        let args = WRITE3args {
            file: fh.clone(),
            offset,
            count: data.len() as u32,
            stable,
            data: Bytes::copy_from_slice(data),
        };
        self.nfs(procs::WRITE, &args)
    }

    pub fn read(&mut self, fh: &nfs_fh3, offset: u64, count: u32) -> READ3res {
        self.nfs(procs::READ, &READ3args { file: fh.clone(), offset, count })
    }

    pub fn remove(&mut self, dir: &nfs_fh3, name: &str) -> REMOVE3res {
        self.nfs(procs::REMOVE, &REMOVE3args { object: dirop(dir, name) })
    }

    pub fn readdir(&mut self, dir: &nfs_fh3, cookie: u64, verf: cookieverf3, count: u32) -> READDIR3res {
        self.nfs(procs::READDIR, &READDIR3args { dir: dir.clone(), cookie, cookieverf: verf, count })
    }

    pub fn readdirplus(
        &mut self,
        dir: &nfs_fh3,
        cookie: u64,
        verf: cookieverf3,
        dircount: u32,
        maxcount: u32,
    ) -> READDIRPLUS3res {
        self.nfs(
            procs::READDIRPLUS,
            &READDIRPLUS3args { dir: dir.clone(), cookie, cookieverf: verf, dircount, maxcount },
        )
    }

    /// Every name in `dir` by paging READDIR with `count`.
    pub fn readdir_all(&mut self, dir: &nfs_fh3, count: u32) -> Vec<(String, u64)> {
        let (mut cookie, mut verf, mut out) = (0, [0u8; 8], Vec::new());
        for _ in 0..100_000 {
            let ok = self.readdir(dir, cookie, verf, count).ok().expect("READDIR ok");
            verf = ok.cookieverf;
            for e in &ok.reply.entries {
                out.push((String::from_utf8_lossy(e.name.as_bytes()).into_owned(), e.fileid));
                cookie = e.cookie;
            }
            if ok.reply.eof {
                return out;
            }
            assert!(!ok.reply.entries.is_empty(), "a page without entries and without eof");
        }
        panic!("READDIR never reached eof");
    }
}

/// A random first xid, so that two clients (or two runs) do not look like retransmissions of
/// each other to the server's duplicate-request cache.
fn rand_xid() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    u32::from_ne_bytes(b)
}
