//! Test support: an in-process rnfsd on 127.0.0.1 over a temporary export, and a small
//! synchronous ONC RPC client (TCP record marking and UDP, AUTH_NONE or AUTH_SYS) with typed NFS
//! v3 and MOUNT v3 calls built on the project's `xdr` crate.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rnfsd::config::{Config, Limits};
use rnfsd::exports::{ExportSpec, parse_export_line};
use rnfsd::server::Server;
use xdr::nfs3::*;
use xdr::rpc::{
    AcceptedStatus, AuthSysParams, CallHeader, OpaqueAuth, ReplyBody, ReplyHeader, record_marker,
};
use xdr::{Reader, Xdr};

pub const NFS: u32 = 100003;
pub const MOUNT: u32 = 100005;

/// rnfsd running in this process over a temporary export directory.
pub struct TestServer {
    pub runtime: tokio::runtime::Runtime,
    pub server: Option<Server>,
    pub export: tempfile::TempDir,
    pub state: tempfile::TempDir,
    /// The exports(5) options, e.g. `rw,insecure,no_root_squash`.
    pub options: String,
    /// The server's resource limits (worker threads, DRC bounds...).
    pub limits: Limits,
    /// Whether NFS is served over UDP (`--udp`); off, as by default.
    pub nfs_over_udp: bool,
    /// Whole exports(5) lines to serve instead of `{export} *(options)`, when not empty.
    pub export_lines: Vec<String>,
}

impl TestServer {
    /// A server exporting a fresh directory with `*(options)`.
    pub fn start(options: &str) -> TestServer {
        TestServer::with_limits(options, Limits::default())
    }

    /// A server exporting a fresh directory with `*(options)` under the given limits.
    pub fn with_limits(options: &str, limits: Limits) -> TestServer {
        TestServer::in_dir(tempfile::tempdir().unwrap(), options, limits)
    }

    /// A server exporting a fresh directory made under `parent` (e.g. `/dev/shm`, for the
    /// memory-backed execution paths) with `*(options)`.
    pub fn start_under(parent: &Path, options: &str) -> TestServer {
        TestServer::with_export_in(options, Limits::default(), parent)
    }

    /// A server exporting a fresh directory made under `parent`: `/dev/shm` for a tmpfs export
    /// (where calls may run on the async workers), a disk directory for the blocking pool.
    pub fn with_export_in(options: &str, limits: Limits, parent: &Path) -> TestServer {
        TestServer::in_dir(tempfile::tempdir_in(parent).unwrap(), options, limits)
    }

    fn in_dir(export: tempfile::TempDir, options: &str, limits: Limits) -> TestServer {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        std::fs::set_permissions(export.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut ts = TestServer {
            runtime,
            server: None,
            export,
            state,
            options: options.to_string(),
            limits,
            nfs_over_udp: false,
            export_lines: Vec::new(),
        };
        ts.boot();
        ts
    }

    /// A server with the given exports(5) `lines` (several exports, or exports below `base`).
    /// `base` is kept as [`TestServer::export`] so it lives as long as the server.
    pub fn with_export_lines(base: tempfile::TempDir, lines: &[String]) -> TestServer {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut ts = TestServer {
            runtime,
            server: None,
            export: base,
            state: tempfile::tempdir().unwrap(),
            options: String::new(),
            limits: Limits::default(),
            nfs_over_udp: false,
            export_lines: lines.to_vec(),
        };
        ts.boot();
        ts
    }

    /// The default export: `rw,insecure,no_root_squash`, so tests running as root act as root.
    pub fn rw() -> TestServer {
        TestServer::start("rw,insecure,no_root_squash")
    }

    /// This server restarted with NFS over UDP enabled (`--udp`).
    pub fn with_nfs_over_udp(mut self) -> TestServer {
        self.nfs_over_udp = true;
        self.restart();
        self
    }

    fn specs(&self) -> Vec<ExportSpec> {
        if !self.export_lines.is_empty() {
            return self.export_lines.iter().map(|l| parse_export_line(l, "test").unwrap()).collect();
        }
        let line = format!("{} *({})", self.export.path().display(), self.options);
        vec![parse_export_line(&line, "test").unwrap()]
    }

    fn boot(&mut self) {
        let mut config = Config::for_tests(self.specs(), self.state.path().to_path_buf());
        config.limits = self.limits.clone();
        config.nfs_over_udp = self.nfs_over_udp;
        let server = self.runtime.block_on(Server::start(config)).expect("server starts");
        self.server = Some(server);
    }

    /// Graceful shutdown, then a new server on the same export and state directory.
    pub fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.shutdown());
        }
        self.boot();
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addrs().nfs_tcp
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().addrs().nfs_udp
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.export.path().join(rel)
    }

    pub fn export_path(&self) -> &Path {
        self.export.path()
    }

    pub fn stats(&self) -> rnfsd::rpc::stats::StatsSnapshot {
        self.server.as_ref().unwrap().stats()
    }

    /// A client over TCP with AUTH_SYS root credentials, and the export's root handle.
    pub fn client(&self) -> (Client, nfs_fh3) {
        let mut c = Client::tcp(self.addr());
        let root = c.mount(self.export.path().to_str().unwrap()).expect("MNT succeeds");
        (c, root)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.shutdown());
        }
    }
}

/// How a call failed at the RPC level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcFailure {
    Accepted(AcceptedStatus),
    Denied(xdr::rpc::RejectedReply),
}

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

pub fn auth_sys(uid: u32, gid: u32, gids: &[u32]) -> OpaqueAuth {
    AuthSysParams { stamp: 1, machine_name: Bytes::from_static(b"testclient"), uid, gid, gids: gids.to_vec() }
        .to_opaque_auth()
}

/// Encodes a whole call message (without record marking).
pub fn call_message(xid: u32, prog: u32, vers: u32, proc_: u32, cred: &OpaqueAuth, args: &[u8]) -> Vec<u8> {
    let header =
        CallHeader { xid, rpcvers: 2, prog, vers, proc_, cred: cred.clone(), verf: OpaqueAuth::none() };
    let mut out = BytesMut::new();
    header.encode(&mut out);
    out.extend_from_slice(args);
    out.to_vec()
}

impl Client {
    pub fn tcp(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client { transport: Transport::Tcp(s), cred: auth_sys(0, 0, &[]), next_xid: rand_xid() }
    }

    pub fn udp(addr: SocketAddr) -> Client {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
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
        match &mut self.transport {
            Transport::Tcp(s) => {
                let mut record = record_marker(msg.len(), true).to_vec();
                record.extend_from_slice(msg);
                s.write_all(&record).unwrap();
                read_record(s).expect("a reply record")
            }
            Transport::Udp(s, addr) => {
                s.send_to(msg, *addr).unwrap();
                let mut buf = vec![0u8; 70_000];
                let (n, _) = s.recv_from(&mut buf).expect("a UDP reply");
                buf.truncate(n);
                buf
            }
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

fn rand_xid() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    u32::from_ne_bytes(b)
}

pub fn read_record(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut m = [0u8; 4];
        s.read_exact(&mut m).ok()?;
        let word = u32::from_be_bytes(m);
        let len = (word & 0x7fff_ffff) as usize;
        let start = out.len();
        out.resize(start + len, 0);
        s.read_exact(&mut out[start..]).ok()?;
        if word & 0x8000_0000 != 0 {
            return Some(out);
        }
    }
}

/// Checks the reply header (xid, acceptance) and returns the results.
pub fn parse_reply(xid: u32, reply: &[u8]) -> Result<Bytes, RpcFailure> {
    let mut r = Reader::new(Bytes::copy_from_slice(reply));
    let header = ReplyHeader::decode(&mut r).expect("a reply header");
    assert_eq!(header.xid, xid, "reply xid");
    match header.body {
        ReplyBody::Accepted { status: AcceptedStatus::Success, .. } => Ok(r.rest()),
        ReplyBody::Accepted { status, .. } => Err(RpcFailure::Accepted(status)),
        ReplyBody::Denied(d) => Err(RpcFailure::Denied(d)),
    }
}

pub fn name(s: &str) -> filename3 {
    filename3(Bytes::copy_from_slice(s.as_bytes()))
}

pub fn dirop(dir: &nfs_fh3, n: &str) -> diropargs3 {
    diropargs3 { dir: dir.clone(), name: name(n) }
}
