//! `Server::start` in-process: ephemeral ports shared by TCP and UDP, the embedded portmapper
//! answering for NFS and MOUNT, counters, `--portmap register` refusing to take over services
//! another portmapper already maps (and removing what it had registered before the refusal) or to
//! start beside another lock manager, and graceful shutdown releasing the ports.

use std::net::TcpListener;
use std::time::Duration;

use rnfsd::config::{Config, PortmapMode};
use rnfsd::exports::ExportSpec;
use rnfsd::portmap::{PmapClient, PortmapService, Registration, Registry, RpcbindTarget};
use rnfsd::rpc::Transport;
use rnfsd::rpc::dispatch::{Dispatcher, DispatcherConfig};
use rnfsd::rpc::transport::{TransportLimits, serve_udp};
use rnfsd::server::{Server, StartError};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn config(share: &std::path::Path, state: &std::path::Path) -> Config {
    Config::for_tests(vec![ExportSpec::shorthand(std::fs::canonicalize(share).unwrap())], state.to_path_buf())
}

/// A test's export and state directory, under one temporary directory.
struct Dirs {
    tmp: tempfile::TempDir,
    share: std::path::PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let share = tmp.path().join("share");
        std::fs::create_dir(&share).unwrap();
        Dirs { tmp, share }
    }

    /// A configuration exporting the share, with its state directory beside it.
    fn config(&self) -> Config {
        config(&self.share, &self.tmp.path().join("state"))
    }
}

/// Runs blocking portmapper calls off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_portmapper_maps_every_service() {
    let dirs = Dirs::new();
    let mut cfg = dirs.config();
    cfg.mount_port = Some(0);
    cfg.portmap = PortmapMode::Embedded;
    cfg.portmap_port = 0;
    let server = Server::start(cfg).await.unwrap();
    let a = *server.addrs();
    assert_eq!(a.nfs_tcp.port(), a.nfs_udp.port());
    let (mount_tcp, mount_udp) = (a.mount_tcp.unwrap(), a.mount_udp.unwrap());
    assert_eq!(mount_tcp.port(), mount_udp.port());
    assert_ne!(mount_tcp.port(), a.nfs_tcp.port());
    let pm = a.portmap_tcp.unwrap();
    assert_eq!(pm.port(), a.portmap_udp.unwrap().port());
    assert!(dirs.tmp.path().join("state/handle.key").is_file());

    let banner = server.banner();
    assert!(banner.contains(&format!("embedded on port {}", pm.port())), "{banner}");
    assert!(banner.contains(&format!("mountport={}", mount_tcp.port())), "{banner}");

    for target in [RpcbindTarget::Udp(pm), RpcbindTarget::Tcp(pm)] {
        let nfs_port = a.nfs_tcp.port();
        let mount_port = mount_tcp.port();
        blocking(move || {
            let c = PmapClient::new(target).with_timeout(Duration::from_secs(5));
            assert_eq!(c.getport(100_003, 3, Transport::Tcp).unwrap(), nfs_port);
            assert_eq!(c.getport(100_003, 3, Transport::Udp).unwrap(), 0, "NFS over UDP is off by default");
            for vers in 1..=3 {
                assert_eq!(c.getport(100_005, vers, Transport::Udp).unwrap(), mount_port);
            }
            // NFS_ACL is not served, so it must not be mapped.
            assert_eq!(c.getport(100_227, 3, Transport::Tcp).unwrap(), 0);
            let dump = c.dump().unwrap();
            assert!(dump.iter().any(|m| m.prog == 100_000 && m.vers == 4));
        })
        .await;
    }
    // GETPORT over UDP and TCP, plus DUMP, went through the shared dispatcher.
    assert!(server.stats().calls_to(100_000, 2, 3) >= 10);

    server.shutdown().await;
    // Shutdown released the sockets.
    TcpListener::bind(a.nfs_tcp).unwrap();
    TcpListener::bind(pm).unwrap();
}

/// A bare portmapper on an ephemeral UDP port of 127.0.0.1, standing in for a system rpcbind:
/// its registry (to register what another process holds) and a client to ask it.
struct FakeRpcbind {
    port: u16,
    registry: Arc<Registry>,
    client: PmapClient,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl FakeRpcbind {
    async fn start() -> FakeRpcbind {
        let registry = Arc::new(Registry::new());
        let dispatcher = Arc::new(Dispatcher::new(
            [Arc::new(PortmapService::new(registry.clone())) as _],
            DispatcherConfig::default(),
        ));
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
        tracker.spawn(serve_udp(
            Arc::new(socket),
            dispatcher,
            TransportLimits::default(),
            stop.clone(),
            tracker.clone(),
        ));
        let pm = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let client = PmapClient::new(RpcbindTarget::Udp(pm)).with_timeout(Duration::from_secs(5));
        FakeRpcbind { port, registry, client, stop, tracker }
    }

    /// `dirs`' configuration with `portmap` `mode` and this portmapper as the system rpcbind.
    fn config(&self, dirs: &Dirs, mode: PortmapMode) -> Config {
        let mut c = dirs.config();
        c.portmap = mode;
        c.portmap_port = self.port;
        c
    }

    /// GETPORT, off the async runtime.
    async fn getport(&self, prog: u32, vers: u32, transport: Transport) -> u16 {
        let c = self.client.clone();
        blocking(move || c.getport(prog, vers, transport).unwrap()).await
    }

    /// Every registration, as (program, version, netid, port), in registration order: GETPORT
    /// would answer another version of a program for one that is not registered.
    fn registered(&self) -> Vec<(u32, u32, String, u16)> {
        let port = |r: &Registration| r.socket_addr().map_or(0, |a| a.port());
        self.registry.entries().iter().map(|r| (r.prog, r.vers, r.netid.clone(), port(r))).collect()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Whether a system rpcbind's local socket exists: registration would then go to it.
fn system_rpcbind_present() -> bool {
    rnfsd::portmap::client::RPCBIND_SOCKETS.iter().any(|p| std::path::Path::new(p).exists())
}

/// For a test of registering with the system rpcbind: its directories and the stand-in rpcbind,
/// or `None` (the test is skipped) when the host runs a real one.
async fn beside_fake_rpcbind() -> Option<(Dirs, FakeRpcbind)> {
    if system_rpcbind_present() {
        return None;
    }
    Some((Dirs::new(), FakeRpcbind::start().await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_mode_registers_and_unregisters_at_shutdown() {
    let Some((dirs, pm)) = beside_fake_rpcbind().await else { return };
    let server = Server::start(pm.config(&dirs, PortmapMode::Register)).await.unwrap();
    assert!(server.addrs().portmap_tcp.is_none());
    assert!(server.banner().contains("registered with the system rpcbind"), "{}", server.banner());
    let nfs_port = server.addrs().nfs_tcp.port();
    assert_eq!(pm.getport(100_003, 3, Transport::Tcp).await, nfs_port);
    assert_eq!(pm.getport(100_005, 1, Transport::Udp).await, nfs_port);
    assert_eq!(pm.getport(100_003, 3, Transport::Udp).await, 0, "NFS over UDP is off by default");
    server.shutdown().await;
    assert_eq!(pm.getport(100_003, 3, Transport::Tcp).await, 0);
    assert_eq!(pm.getport(100_005, 3, Transport::Udp).await, 0);
    pm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_services_another_portmapper_maps() {
    if system_rpcbind_present() {
        return;
    }
    let dirs = Dirs::new();
    let mut owner_cfg = dirs.config();
    owner_cfg.portmap = PortmapMode::Embedded;
    owner_cfg.portmap_port = 0;
    let owner = Server::start(owner_cfg).await.unwrap();
    let pm_port = owner.addrs().portmap_udp.unwrap().port();

    let mut second = dirs.config();
    second.portmap = PortmapMode::Register;
    second.portmap_port = pm_port;
    let err = match Server::start(second).await {
        Ok(_) => panic!("registering over another server's services succeeded"),
        Err(e) => e,
    };
    assert!(matches!(err, StartError::Register(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("already registered on port"), "{msg}");
    owner.shutdown().await;
}

/// Registers `prog` `vers` on TCP and UDP at `port` as a privileged caller of the system
/// rpcbind would (owner "superuser"), as the kernel's lockd and rpc.statd do.
fn register_foreign(registry: &Registry, prog: u32, vers: u32, port: u16) {
    for netid in ["tcp", "udp"] {
        register_foreign_on(registry, prog, vers, netid, port);
    }
}

/// [`register_foreign`] on `netid` only.
fn register_foreign_on(registry: &Registry, prog: u32, vers: u32, netid: &str, port: u16) {
    registry
        .set(Registration {
            prog,
            vers,
            netid: netid.into(),
            addr: xdr::portmap::to_uaddr(([0, 0, 0, 0], port).into()),
            owner: "superuser".into(),
        })
        .unwrap();
}

/// A registration refused midway (MOUNT v3 is another server's) removes what this start had
/// registered before it, under `register` (which then fails) and `auto` (which then runs without
/// a portmapper, so nothing would remove them at shutdown), and leaves the other server's alone.
/// When the other server holds MOUNT v3 on UDP only, rnfsd's MOUNT v3 on TCP stays: UNSET would
/// remove both, and the error says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_refused_midway_removes_the_earlier_ones() {
    let Some((dirs, pm)) = beside_fake_rpcbind().await else { return };
    register_foreign_on(&pm.registry, 100_005, 3, "tcp", 4000);
    for mode in [PortmapMode::Register, PortmapMode::Auto] {
        let running = match Server::start(pm.config(&dirs, mode)).await {
            Err(e) if mode == PortmapMode::Register => {
                assert!(e.to_string().contains("already registered on port 4000"), "{e}");
                None
            }
            Ok(server) if mode == PortmapMode::Auto => {
                assert!(server.banner().contains("port="), "{}", server.banner());
                Some(server)
            }
            other => panic!("{mode}: {:?}", other.map(|_| "started")),
        };
        let other = (100_005, 3, "tcp".to_string(), 4000);
        assert_eq!(pm.registered(), vec![other], "{mode}: only the other server's is left");
        if let Some(server) = running {
            server.shutdown().await;
        }
    }

    pm.registry.unset(100_005, 3, None, "superuser").unwrap();
    register_foreign_on(&pm.registry, 100_005, 3, "udp", 4000);
    let err = Server::start(pm.config(&dirs, PortmapMode::Register)).await.err().expect("refused");
    let err = err.to_string();
    assert!(err.contains("already registered on port 4000"), "{err}");
    assert!(err.contains("program 100005 version 3 stays registered (Tcp"), "{err}");
    let left: Vec<(u32, u32, String)> = pm.registered().into_iter().map(|(p, v, n, _)| (p, v, n)).collect();
    assert_eq!(left, vec![(100_005, 3, "udp".into()), (100_005, 3, "tcp".into())], "{:?}", pm.registered());
    assert_eq!(pm.registered()[0].3, 4000, "the other server's is unchanged");
    pm.stop().await;
}

/// A system rpcbind where another lock manager (the kernel's lockd, rpc.statd) holds NLM v4 or
/// NSM v1 at its own port: with locking on, `register` and an `auto` that falls back to
/// registering refuse to start, with an error naming what is held where and the ways out; they
/// register nothing and leave the other registrations alone. With --no-locks rnfsd starts and
/// registers NFS and MOUNT only; without the other lock manager it starts and registers NLM too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_to_start_beside_another_lock_manager() {
    let Some((dirs, pm)) = beside_fake_rpcbind().await else { return };
    let cfg = |portmap: PortmapMode| pm.config(&dirs, portmap);
    let getport = |prog: u32, vers: u32, transport: Transport| pm.getport(prog, vers, transport);
    let registry = pm.registry.clone();

    register_foreign(&registry, 100_021, 4, 4045);
    for mode in [PortmapMode::Register, PortmapMode::Auto] {
        let err = match Server::start(cfg(mode)).await {
            Ok(_) => panic!("{mode}: started beside another lock manager"),
            Err(e) => e.to_string(),
        };
        for part in [
            "program 100021 version 4",
            "port 4045",
            "lockd",
            "rpc.statd",
            "systemctl stop rpc-statd nfs-server",
            "--no-locks",
            "nolock",
        ] {
            assert!(err.contains(part), "{mode}: {part:?} missing from: {err}");
        }
        assert!(!err.contains("100024"), "{mode}: NSM is not held: {err}");
        assert_eq!(getport(100_003, 3, Transport::Tcp).await, 0, "{mode}: registered nothing");
        assert_eq!(getport(100_005, 3, Transport::Udp).await, 0, "{mode}: registered nothing");
        assert_eq!(getport(100_021, 4, Transport::Tcp).await, 4045, "{mode}: left lockd's alone");
        assert_eq!(getport(100_021, 4, Transport::Udp).await, 4045, "{mode}: left lockd's alone");
    }

    let mut no_locks = cfg(PortmapMode::Register);
    no_locks.locks.enabled = false;
    let server = Server::start(no_locks).await.expect("--no-locks starts beside another lock manager");
    let nfs_port = server.addrs().nfs_tcp.port();
    assert_eq!(getport(100_003, 3, Transport::Tcp).await, nfs_port);
    server.shutdown().await;
    assert_eq!(getport(100_021, 4, Transport::Tcp).await, 4045, "shutdown left lockd's alone");
    assert_eq!(getport(100_021, 4, Transport::Udp).await, 4045, "shutdown left lockd's alone");

    // rpc.statd alone is another lock manager too.
    registry.unset(100_021, 4, None, "superuser").unwrap();
    register_foreign(&registry, 100_024, 1, 662);
    let err = Server::start(cfg(PortmapMode::Register)).await.err().expect("started beside rpc.statd");
    let err = err.to_string();
    assert!(err.contains("program 100024 version 1") && err.contains("port 662"), "{err}");
    assert!(!err.contains("100021"), "NLM is not held: {err}");

    registry.unset(100_024, 1, None, "superuser").unwrap();
    let server = Server::start(cfg(PortmapMode::Register)).await.expect("no other lock manager");
    let nfs_port = server.addrs().nfs_tcp.port();
    assert_eq!(getport(100_021, 4, Transport::Tcp).await, nfs_port);
    assert_eq!(getport(100_024, 1, Transport::Udp).await, nfs_port);
    server.shutdown().await;
    assert_eq!(getport(100_021, 4, Transport::Tcp).await, 0, "unregistered at shutdown");
    pm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_export_and_busy_port_are_start_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let cfg = Config::for_tests(vec![ExportSpec::shorthand(&file)], tmp.path().join("state"));
    let err = Server::start(cfg).await.err().expect("a file is not an export");
    assert!(matches!(err, StartError::Exports(_)), "{err:?}");
    assert!(err.to_string().contains("not a directory"), "{err}");

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut cfg = config(tmp.path(), &tmp.path().join("state"));
    cfg.nfs_port = port;
    let err = Server::start(cfg).await.err().expect("the port is taken");
    assert_eq!(err.to_string(), format!("port {port} (nfs/tcp) on 127.0.0.1 is in use"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfs_over_udp_is_mapped_and_announced_only_when_enabled() {
    let dirs = Dirs::new();
    for enabled in [false, true] {
        let mut cfg = dirs.config();
        cfg.nfs_over_udp = enabled;
        cfg.portmap = PortmapMode::Embedded;
        cfg.portmap_port = 0;
        let server = Server::start(cfg).await.unwrap();
        let a = *server.addrs();
        let pm = a.portmap_udp.unwrap();
        let banner = server.banner();
        assert_eq!(banner.contains("NFS over UDP is off"), !enabled, "{banner}");
        let nfs_port = a.nfs_tcp.port();
        blocking(move || {
            let c = PmapClient::new(RpcbindTarget::Udp(pm)).with_timeout(Duration::from_secs(5));
            let mapped = c.getport(100_003, 3, Transport::Udp).unwrap();
            assert_eq!(mapped, if enabled { nfs_port } else { 0 });
            assert_eq!(c.getport(100_005, 3, Transport::Udp).unwrap(), nfs_port, "MOUNT stays on UDP");
            let udp_nfs = c.dump().unwrap().into_iter().filter(|m| m.prog == 100_003 && m.prot == 17).count();
            assert_eq!(udp_nfs, usize::from(enabled));
        })
        .await;
        server.shutdown().await;
    }
}

/// A MOUNT reply over UDP is bounded, so a call with a forged source cannot make the server
/// reflect a long export list at a victim: an EXPORT list over the bound answers SYSTEM_ERR over
/// UDP (a reply no larger than the call) and the whole list over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_replies_over_udp_are_bounded() {
    use rnfsd_test_support::{call_message, read_record, record, wire};
    use xdr::rpc::{AcceptedStatus, OpaqueAuth, ReplyBody};
    let tmp = tempfile::tempdir().unwrap();
    let mut exports = Vec::new();
    for i in 0..12 {
        let dir = tmp.path().join(format!("an-export-with-a-rather-long-directory-name-{i:02}"));
        std::fs::create_dir(&dir).unwrap();
        exports.push(ExportSpec::shorthand(std::fs::canonicalize(&dir).unwrap()));
    }
    let cfg = Config::for_tests(exports, tmp.path().join("state"));
    let server = Server::start(cfg).await.unwrap();
    let (tcp, udp) = (server.addrs().nfs_tcp, server.addrs().nfs_udp);
    let call = call_message(0x0e0e, 100_005, 3, xdr::mount::mount_proc::EXPORT, &OpaqueAuth::none(), &[]);
    let (udp_reply, tcp_reply) = blocking(move || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let udp_reply = wire::udp_exchange(&s, udp, &call);
        let mut t = std::net::TcpStream::connect(tcp).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std::io::Write::write_all(&mut t, &record(&call)).unwrap();
        (udp_reply, read_record(&mut t).expect("a TCP reply"))
    })
    .await;
    let status = |reply: &[u8]| {
        let (header, r) = wire::split_reply(reply);
        match header.body {
            ReplyBody::Accepted { status, .. } => (status, r.rest().len()),
            other => panic!("{other:?}"),
        }
    };
    assert!(tcp_reply.len() > 1000, "the list is long: {} bytes", tcp_reply.len());
    assert_eq!(status(&tcp_reply).0, AcceptedStatus::Success);
    assert!(udp_reply.len() <= 512, "UDP reply of {} bytes", udp_reply.len());
    assert_eq!(status(&udp_reply), (AcceptedStatus::SystemErr, 0));
    assert_eq!(server.stats().udp_replies_too_large, 1);
    server.shutdown().await;
}
