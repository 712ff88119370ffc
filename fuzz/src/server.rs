//! An rnfsd server without sockets, for the `server` fuzz target: NFS, MOUNT and the portmapper
//! wired into one [`Dispatcher`] exactly as `Server::start` wires them, over two exports in a
//! scratch directory, with records handed straight to [`Dispatcher::handle`].
//!
//! File handles are keyed by a secret, so the fuzzer cannot make valid ones; instead a record
//! names them with a placeholder, the 8-byte XDR opaque `00 00 00 04 'F' 'H' '#' n`, which is
//! replaced by the real handle number `n` (modulo the table, see [`Harness::substitute`]) before
//! the record is dispatched. The seed corpus uses them, so mutations keep reaching the
//! procedures' bodies instead of stopping at STALE.
//!
//! Calls change the exported tree; every [`RESET_EVERY`] records the tree is put back as it was,
//! so the fuzzer keeps exploring from the same starting point and the scratch disk stays small.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rnfsd::config::Limits;
use rnfsd::exports::{ExportSpec, parse_export_line};
use rnfsd::fs::Exports;
use rnfsd::mountd::MountService;
use rnfsd::nfsd::NfsService;
use rnfsd::portmap::{PortmapService, Registry};
use rnfsd::rpc::dispatch::{Dispatcher, DispatcherConfig};
use rnfsd::rpc::{Program, Transport};
use rnfsd::server::ExportsMountBackend;
use xdr::nfs3::{self, procs};
use xdr::rpc::{AcceptedStatus, AuthSysParams, CallHeader, MSG_CALL, OpaqueAuth, ReplyBody, ReplyHeader};
use xdr::{Reader, Xdr, XdrWrite, mount, portmap};

/// Records between two resets of the exported tree.
pub const RESET_EVERY: u64 = 256;

/// The placeholder prefix of a handle in a record: an opaque of length 4 holding `FH#` and the
/// handle's number.
pub const HANDLE_PLACEHOLDER: [u8; 7] = [0, 0, 0, 4, b'F', b'H', b'#'];

/// Names of the handles in the table, in placeholder order.
pub const HANDLE_NAMES: [&str; 7] =
    ["rw root", "rw file", "rw dir", "rw dir/inner", "rw link", "ro root", "ro file"];

/// The address the server answers on.
pub const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2049);

/// The callers the first input byte picks from (its low two bits), and whether the call came over
/// UDP (bit 2): an admitted host on a privileged port, the same host on an unprivileged port, a
/// host only the read-only rule admits, and a host no export lists.
pub const PEERS: [SocketAddr; 4] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 700),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40000),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 800),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 900),
];

/// The server and its scratch exports.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    dispatcher: Arc<Dispatcher>,
    rw: PathBuf,
    ro: PathBuf,
    handles: Vec<Bytes>,
    records: u64,
}

impl Harness {
    /// Creates the scratch tree under `$RNFSD_FUZZ_DIR` (default: the system temp dir), opens
    /// the exports and wires the programs.
    pub fn new() -> Harness {
        let base = std::env::var_os("RNFSD_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("rnfsd-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (rw, ro, state) = (base.join("rw"), base.join("ro"), base.join("state"));
        for d in [&rw, &ro] {
            fs::create_dir_all(d).expect("create the scratch exports");
        }
        restore_tree(&rw, &ro);
        let line = |path: &Path, clients: &str| -> ExportSpec {
            parse_export_line(&format!("{} {clients}", path.display()), "fuzz").expect("harness export line")
        };
        let specs = vec![
            line(&rw, "127.0.0.1(rw,no_root_squash,insecure,async) 127.0.0.2(ro)"),
            line(&ro, "*(ro,all_squash,anonuid=1000,anongid=1000)"),
        ];
        let exports = Arc::new(Exports::open(&specs, &state).expect("open the scratch exports"));
        let limits = Limits::default();
        let nfs = Arc::new(NfsService::new(exports.clone(), &limits).expect("NFS service"));
        let mount = Arc::new(MountService::new(specs, Arc::new(ExportsMountBackend { exports })));
        let registry = Arc::new(Registry::new());
        for vers in [portmap::VERSION_PMAP, portmap::VERSION_RPCBIND3, portmap::VERSION_RPCBIND4] {
            for transport in [Transport::Tcp, Transport::Udp] {
                registry.register(portmap::PROGRAM, vers, transport, SocketAddr::new(LOCAL.ip(), 111));
            }
        }
        registry.register(nfs3::PROGRAM, nfs3::VERSION, Transport::Tcp, LOCAL);
        let programs: Vec<Arc<dyn Program>> = vec![nfs, mount, Arc::new(PortmapService::new(registry))];
        let dispatcher = Arc::new(Dispatcher::new(
            programs,
            DispatcherConfig { workers: limits.fs_threads, drc: limits.drc, ..DispatcherConfig::default() },
        ));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut h = Harness { runtime, dispatcher, rw, ro, handles: Vec::new(), records: 0 };
        h.refresh_handles();
        h
    }

    /// The handle table, in [`HANDLE_NAMES`] order (for the seed generator).
    pub fn handles(&self) -> &[Bytes] {
        &self.handles
    }

    /// Dispatches one record as if `peer` had sent it over `transport`, after replacing handle
    /// placeholders. Returns the record as dispatched and the reply.
    pub fn handle(
        &mut self,
        record: &[u8],
        peer: SocketAddr,
        transport: Transport,
    ) -> (Bytes, Option<Bytes>) {
        self.records += 1;
        if self.records.is_multiple_of(RESET_EVERY) {
            restore_tree(&self.rw, &self.ro);
            self.refresh_handles();
        }
        let record = self.substitute(record);
        let reply = self.dispatch(record.clone(), peer, transport);
        (record, reply)
    }

    fn dispatch(&self, record: Bytes, peer: SocketAddr, transport: Transport) -> Option<Bytes> {
        self.runtime.block_on(self.dispatcher.handle(record, peer, LOCAL, transport))
    }

    /// Replaces every handle placeholder with the XDR opaque of that real handle.
    pub fn substitute(&self, record: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(record.len() + 64);
        let mut rest = record;
        while let Some(at) = find(rest, &HANDLE_PLACEHOLDER) {
            let Some(&n) = rest.get(at + HANDLE_PLACEHOLDER.len()) else { break };
            out.extend_from_slice(&rest[..at]);
            let handle = &self.handles[usize::from(n) % self.handles.len()];
            out.put_opaque(handle);
            rest = &rest[at + HANDLE_PLACEHOLDER.len() + 1..];
        }
        out.extend_from_slice(rest);
        out.freeze()
    }

    /// Fetches the handles of the tree's objects afresh (MNT, then LOOKUP), as a client would.
    fn refresh_handles(&mut self) {
        let rw_root = self.mnt(&self.rw);
        let ro_root = self.mnt(&self.ro);
        let file = self.lookup(&rw_root, "file");
        let dir = self.lookup(&rw_root, "dir");
        let inner = self.lookup(&dir, "inner");
        let link = self.lookup(&rw_root, "link");
        let ro_file = self.lookup(&ro_root, "file");
        self.handles = vec![rw_root, file, dir, inner, link, ro_root, ro_file];
    }

    fn call(&self, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Bytes {
        let record = call_record(1, prog, vers, proc_, args);
        let reply = self.dispatch(record, PEERS[0], Transport::Tcp).expect("a call has a reply");
        let mut r = Reader::new(reply);
        let header = ReplyHeader::decode(&mut r).expect("reply header");
        assert!(
            matches!(header.body, ReplyBody::Accepted { status: AcceptedStatus::Success, .. }),
            "harness call {prog}/{vers}/{proc_} failed: {header:?}"
        );
        r.rest()
    }

    fn mnt(&self, path: &Path) -> Bytes {
        let arg = mount::dirpath::from(path.as_os_str().as_encoded_bytes());
        let body = self.call(mount::PROGRAM, mount::VERSION_3, mount::mount_proc::MNT, &arg.to_bytes());
        match mount::mountres3::from_bytes(&body).expect("mountres3") {
            mount::mountres3::Ok(ok) => ok.fhandle,
            mount::mountres3::Err(stat) => panic!("MNT {} failed: {stat:?}", path.display()),
        }
    }

    fn lookup(&self, dir: &Bytes, name: &str) -> Bytes {
        let args = nfs3::LOOKUP3args {
            what: nfs3::diropargs3 { dir: nfs3::nfs_fh3(dir.clone()), name: nfs3::filename3::from(name) },
        };
        let body = self.call(nfs3::PROGRAM, nfs3::VERSION, procs::LOOKUP, &args.to_bytes());
        match nfs3::LOOKUP3res::from_bytes(&body).expect("LOOKUP3res") {
            nfs3::Nfs3Result::Ok(ok) => ok.object.0,
            nfs3::Nfs3Result::Err(stat, _) => panic!("LOOKUP {name} failed: {stat:?}"),
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An RPC call record with an AUTH_SYS credential of root (gid 0, no supplementary groups).
pub fn call_record(xid: u32, prog: u32, vers: u32, proc_: u32, args: &[u8]) -> Bytes {
    let cred =
        AuthSysParams { stamp: 0, machine_name: Bytes::from_static(b"fuzz"), uid: 0, gid: 0, gids: vec![] };
    let header = CallHeader {
        xid,
        rpcvers: 2,
        prog,
        vers,
        proc_,
        cred: cred.to_opaque_auth(),
        verf: OpaqueAuth::none(),
    };
    let mut w = BytesMut::new();
    header.encode(&mut w);
    w.extend_from_slice(args);
    w.freeze()
}

/// Puts the exported trees back as [`Harness::new`] made them: `rw/{file,dir/inner,link->file}`
/// and `ro/file`, with their modes and root's ownership; anything else in them is removed.
fn restore_tree(rw: &Path, ro: &Path) {
    clear_except(rw, &["file", "dir", "link"]);
    let dir = rw.join("dir");
    if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        let _ = fs::remove_file(&dir);
        fs::create_dir(&dir).expect("create rw/dir");
    }
    clear_except(&dir, &["inner"]);
    write_file(&rw.join("file"), b"0123456789abcdef\n");
    write_file(&dir.join("inner"), b"inner\n");
    let link = rw.join("link");
    if fs::read_link(&link).ok().as_deref() != Some(Path::new("file")) {
        let _ = fs::remove_file(&link);
        symlink("file", &link).expect("create rw/link");
    }
    clear_except(ro, &["file"]);
    write_file(&ro.join("file"), b"read only\n");
    for (path, mode) in [(rw, 0o755), (ro, 0o755), (&dir, 0o755)] {
        let _ = std::os::unix::fs::chown(path, Some(0), Some(0));
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
    }
}

/// Removes every entry of `dir` whose name is not in `keep`, and any kept name that is not of the
/// kind it should be is left for the caller to recreate.
fn clear_except(dir: &Path, keep: &[&str]) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if keep.iter().any(|k| e.file_name() == *k) {
            continue;
        }
        let path = e.path();
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir_all(&path);
            }
            _ => {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// Makes `path` a regular file with exactly `content`, mode 0644, owned by root.
fn write_file(path: &Path, content: &[u8]) {
    if !fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        let _ = fs::remove_dir_all(path);
        let _ = fs::remove_file(path);
    }
    fs::write(path, content).expect("write a scratch file");
    let _ = std::os::unix::fs::chown(path, Some(0), Some(0));
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o644));
}

/// Checks the reply to `record`: a record that says it is a CALL gets a reply with its xid, and
/// a successful reply's results decode as the procedure's result type with nothing left over;
/// anything else gets no reply.
pub fn check_reply(record: &[u8], reply: Option<&Bytes>) {
    let word = |i: usize| record.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if word(1) != Some(MSG_CALL) {
        assert!(reply.is_none(), "a record that is not a call got a reply");
        return;
    }
    let reply = reply.expect("a CALL got no reply");
    let mut r = Reader::new(reply.clone());
    let header = ReplyHeader::decode(&mut r).unwrap_or_else(|e| panic!("reply header does not decode: {e}"));
    assert_eq!(Some(header.xid), word(0), "reply xid differs from the call's");
    if !matches!(header.body, ReplyBody::Accepted { status: AcceptedStatus::Success, .. }) {
        assert_eq!(r.remaining(), 0, "an error reply carries {} extra bytes", r.remaining());
        return;
    }
    let Ok(call) = CallHeader::decode(&mut Reader::from_slice(record)) else {
        panic!("SUCCESS for a call whose header does not decode")
    };
    let results = r.rest();
    let outcome = results_decode(call.prog, call.vers, call.proc_, &results);
    if let Err(e) = outcome {
        panic!("results of {}/{}/{} do not decode: {e}", call.prog, call.vers, call.proc_);
    }
}

/// Decodes `results` as the result type of the procedure, whole.
fn results_decode(prog: u32, vers: u32, proc_: u32, b: &[u8]) -> xdr::Result<()> {
    use portmap::{pmap_proc, rpcb_proc};
    fn whole<T: Xdr>(b: &[u8]) -> xdr::Result<()> {
        T::from_bytes(b).map(drop)
    }
    match (prog, vers) {
        (nfs3::PROGRAM, nfs3::VERSION) => match proc_ {
            procs::NULL => whole::<()>(b),
            procs::GETATTR => whole::<nfs3::GETATTR3res>(b),
            procs::SETATTR => whole::<nfs3::SETATTR3res>(b),
            procs::LOOKUP => whole::<nfs3::LOOKUP3res>(b),
            procs::ACCESS => whole::<nfs3::ACCESS3res>(b),
            procs::READLINK => whole::<nfs3::READLINK3res>(b),
            procs::READ => whole::<nfs3::READ3res>(b),
            procs::WRITE => whole::<nfs3::WRITE3res>(b),
            procs::CREATE => whole::<nfs3::CREATE3res>(b),
            procs::MKDIR => whole::<nfs3::MKDIR3res>(b),
            procs::SYMLINK => whole::<nfs3::SYMLINK3res>(b),
            procs::MKNOD => whole::<nfs3::MKNOD3res>(b),
            procs::REMOVE => whole::<nfs3::REMOVE3res>(b),
            procs::RMDIR => whole::<nfs3::RMDIR3res>(b),
            procs::RENAME => whole::<nfs3::RENAME3res>(b),
            procs::LINK => whole::<nfs3::LINK3res>(b),
            procs::READDIR => whole::<nfs3::READDIR3res>(b),
            procs::READDIRPLUS => whole::<nfs3::READDIRPLUS3res>(b),
            procs::FSSTAT => whole::<nfs3::FSSTAT3res>(b),
            procs::FSINFO => whole::<nfs3::FSINFO3res>(b),
            procs::PATHCONF => whole::<nfs3::PATHCONF3res>(b),
            procs::COMMIT => whole::<nfs3::COMMIT3res>(b),
            _ => panic!("SUCCESS for NFS procedure {proc_}, which does not exist"),
        },
        (mount::PROGRAM, v) => match proc_ {
            mount::mount_proc::NULL | mount::mount_proc::UMNT | mount::mount_proc::UMNTALL => whole::<()>(b),
            mount::mount_proc::MNT if v == mount::VERSION_3 => whole::<mount::mountres3>(b),
            mount::mount_proc::MNT => whole::<mount::fhstatus>(b),
            mount::mount_proc::DUMP => whole::<mount::mountlist>(b),
            mount::mount_proc::EXPORT => whole::<mount::exports>(b),
            _ => panic!("SUCCESS for MOUNT procedure {proc_}, which does not exist"),
        },
        (portmap::PROGRAM, portmap::VERSION_PMAP) => match proc_ {
            pmap_proc::NULL => whole::<()>(b),
            pmap_proc::SET | pmap_proc::UNSET => whole::<bool>(b),
            pmap_proc::GETPORT => whole::<u32>(b),
            pmap_proc::DUMP => whole::<portmap::pmaplist>(b),
            _ => panic!("SUCCESS for PMAP procedure {proc_}, which is not served"),
        },
        (portmap::PROGRAM, _) => match proc_ {
            rpcb_proc::NULL => whole::<()>(b),
            rpcb_proc::SET | rpcb_proc::UNSET => whole::<bool>(b),
            rpcb_proc::GETADDR | rpcb_proc::GETVERSADDR => whole::<portmap::uaddr>(b),
            rpcb_proc::DUMP => whole::<portmap::rpcblist>(b),
            rpcb_proc::GETTIME => whole::<u32>(b),
            rpcb_proc::GETADDRLIST => whole::<portmap::rpcb_entry_list>(b),
            rpcb_proc::GETSTAT => whole::<portmap::rpcb_stat_byvers>(b),
            _ => panic!("SUCCESS for RPCBIND procedure {proc_}, which is not served"),
        },
        _ => panic!("SUCCESS for program {prog} version {vers}, which is not served"),
    }
}
