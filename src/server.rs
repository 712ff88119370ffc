//! The server process: opens the exports, binds every socket, wires NFS, MOUNT and (when it can)
//! the embedded portmapper into one dispatcher, serves them on the current tokio runtime, makes
//! the services known to portmapper clients, prints the startup banner, and shuts down
//! gracefully.
//!
//! One [`Dispatcher`] serves every socket, so the duplicate-request cache and the counters are
//! shared: a client that retransmits on another connection still hits the cache.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, PortmapMode};
use crate::fs::{Exports, OpenExportError};
use crate::mountd::exports::ExportSpec;
use crate::mountd::{MountBackend, MountService, MountStat};
use crate::nfsd::{CacheSizes, NfsService};
use crate::portmap::client::RPCBIND_SOCKETS;
use crate::portmap::{PmapClient, PortmapService, Registry, RpcbindTarget, Service, register_with};
use crate::rpc::dispatch::{Dispatcher, DispatcherConfig};
use crate::rpc::stats::StatsSnapshot;
use crate::rpc::transport::{
    BOUNDED_REPLY_MAX, TcpShared, TcpStats, TransportLimits, UdpPolicy, serve_tcp_shared,
    serve_udp_with_policy,
};
use crate::rpc::{Program, Transport};

/// How long shutdown waits for in-flight calls to finish and their replies to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often cached open files are checked for idleness, and how long unused ones stay open.
const IDLE_FILE_SWEEP: Duration = Duration::from_secs(10);
const IDLE_FILE_MAX: Duration = Duration::from_secs(30);
/// Attempts at finding an ephemeral port free on both TCP and UDP.
const EPHEMERAL_ATTEMPTS: usize = 16;
/// Blocking threads beyond `fs_threads`: portmapper registration, closing files, and DRC
/// waiters never hold a worker permit but may still need a thread.
const EXTRA_BLOCKING_THREADS: usize = 16;

const NFS_PROGRAM: u32 = xdr::nfs3::PROGRAM;
const NFS_VERSION: u32 = xdr::nfs3::VERSION;
const MOUNT_PROGRAM: u32 = xdr::mount::PROGRAM;
const MOUNT_VERSIONS: [u32; 3] = [xdr::mount::VERSION_1, xdr::mount::VERSION_2, xdr::mount::VERSION_3];
const PMAP_PROGRAM: u32 = xdr::portmap::PROGRAM;
const PMAP_VERSIONS: [u32; 3] =
    [xdr::portmap::VERSION_PMAP, xdr::portmap::VERSION_RPCBIND3, xdr::portmap::VERSION_RPCBIND4];
const DEFAULT_NFS_PORT: u16 = 2049;
const DEFAULT_MOUNT_PORT: u16 = 20048;
const DEFAULT_PORTMAP_PORT: u16 = xdr::portmap::PMAP_PORT;

/// The addresses the server actually listens on (with ephemeral ports resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundAddrs {
    /// NFS, and MOUNT too.
    pub nfs_tcp: SocketAddr,
    pub nfs_udp: SocketAddr,
    /// The separate MOUNT port, when configured.
    pub mount_tcp: Option<SocketAddr>,
    pub mount_udp: Option<SocketAddr>,
    /// The embedded portmapper, when it is served.
    pub portmap_tcp: Option<SocketAddr>,
    pub portmap_udp: Option<SocketAddr>,
}

/// What came of the portmapper policy.
#[derive(Debug, Clone)]
enum PortmapOutcome {
    /// `--portmap off`.
    Off,
    /// The embedded portmapper serves on this port.
    Embedded { port: u16 },
    /// The services are registered with the system rpcbind reachable at `target`; they are
    /// removed again at shutdown.
    Registered { target: RpcbindTarget, services: Vec<Service> },
    /// `auto` found no way: clients need `port=` and `mountport=`.
    Unavailable { reason: String },
}

/// Why the server could not start. Each displays as one line an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Exports(#[from] OpenExportError),
    #[error("port {port} ({service}) on {addr} is in use")]
    PortInUse { port: u16, service: &'static str, addr: IpAddr },
    #[error("cannot bind port {port} ({service}) on {addr}: {source}{}", bind_hint(*port, source))]
    Bind { port: u16, service: &'static str, addr: IpAddr, source: io::Error },
    #[error("could not find a free port for {service} on {addr} that is free on both TCP and UDP")]
    NoEphemeralPort { service: &'static str, addr: IpAddr },
    #[error("NFS service: {0}")]
    Nfs(io::Error),
    #[error("--portmap register: {0}")]
    Register(String),
    #[error("tokio runtime: {0}")]
    Runtime(io::Error),
    #[error("signal handlers: {0}")]
    Signals(io::Error),
}

fn bind_hint(port: u16, e: &io::Error) -> &'static str {
    if port < 1024 && e.kind() == io::ErrorKind::PermissionDenied {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    } else {
        ""
    }
}

/// The MOUNT backend over the opened exports: MNT's handle for a path below an export root.
/// Public so that an in-process server (the fuzz targets) wires MOUNT exactly as [`Server::start`].
pub struct ExportsMountBackend {
    pub exports: Arc<Exports>,
}

impl MountBackend for ExportsMountBackend {
    fn mount(&self, export_index: usize, subpath: &[u8]) -> Result<Bytes, MountStat> {
        self.exports.mount_handle(export_index, subpath).map_err(|e| {
            let stat = mount_stat(&e);
            if stat == MountStat::ServerFault {
                tracing::warn!(
                    export = export_index,
                    subpath = %crate::logsafe::escaped(subpath),
                    error = %e,
                    "mount: could not make the handle"
                );
            }
            stat
        })
    }
}

fn mount_stat(e: &io::Error) -> MountStat {
    match e.raw_os_error() {
        Some(libc::ENOENT) => MountStat::NoEnt,
        Some(libc::ENOTDIR) => MountStat::NotDir,
        Some(libc::EACCES) => MountStat::Access,
        Some(libc::EPERM) => MountStat::Perm,
        Some(libc::ENAMETOOLONG) => MountStat::NameTooLong,
        Some(libc::EINVAL) => MountStat::Inval,
        Some(libc::EIO) => MountStat::Io,
        _ => MountStat::ServerFault,
    }
}

/// A running server. Dropping it without [`Server::shutdown`] leaves its tasks running until
/// the runtime ends.
pub struct Server {
    addrs: BoundAddrs,
    dispatcher: Arc<Dispatcher>,
    nfs: Arc<NfsService>,
    /// The connection table and byte budgets every TCP listener shares.
    tcp: Arc<TcpShared>,
    config: Config,
    portmap: PortmapOutcome,
    /// Whether the export root handle resolved at startup (it fails without
    /// CAP_DAC_READ_SEARCH); `Err` carries the reason for the banner.
    handle_check: Result<(), String>,
    /// Cancelled to stop accepting and reading; every transport, connection and request task
    /// watches it.
    shutdown: CancellationToken,
    /// Every task the server spawned, so shutdown can wait for in-flight requests.
    tracker: TaskTracker,
}

impl Server {
    /// Opens exports (creating the state directory 0700 if missing), binds every socket, spawns
    /// the transports on the current tokio runtime, sets up the portmapper per `config.portmap`,
    /// and returns once serving.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        raise_descriptor_limit(&config);
        let exports = Arc::new(Exports::open(&config.exports, &config.state_dir)?);
        let handle_check = check_handles(&exports);
        let nfs = Arc::new(NfsService::new(exports.clone(), &config.limits).map_err(StartError::Nfs)?);
        let backend = Arc::new(ExportsMountBackend { exports: exports.clone() });
        let mount = Arc::new(MountService::new(config.exports.clone(), backend));

        let bind = config.bind;
        let nfs_socks = bind_pair(bind, config.nfs_port, "nfs").await?;
        let mount_socks = match config.mount_port {
            Some(port) => Some(bind_pair(bind, port, "mount").await?),
            None => None,
        };
        let portmap_socks = match config.portmap {
            PortmapMode::Off | PortmapMode::Register => None,
            PortmapMode::Embedded => Some(bind_pair(bind, config.portmap_port, "portmap").await?),
            PortmapMode::Auto => match bind_pair(bind, config.portmap_port, "portmap").await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::info!("embedded portmapper not started ({e}); trying the system rpcbind");
                    None
                }
            },
        };

        let addrs = BoundAddrs {
            nfs_tcp: nfs_socks.tcp_addr,
            nfs_udp: nfs_socks.udp_addr,
            mount_tcp: mount_socks.as_ref().map(|p| p.tcp_addr),
            mount_udp: mount_socks.as_ref().map(|p| p.udp_addr),
            portmap_tcp: portmap_socks.as_ref().map(|p| p.tcp_addr),
            portmap_udp: portmap_socks.as_ref().map(|p| p.udp_addr),
        };
        let services = services(&addrs, config.nfs_over_udp);

        let mut programs: Vec<Arc<dyn Program>> = vec![nfs.clone(), mount];
        if let Some(pm_tcp) = addrs.portmap_tcp {
            let registry = Arc::new(Registry::new());
            // The portmapper first, as rpcbind lists itself.
            for vers in PMAP_VERSIONS {
                for transport in [Transport::Tcp, Transport::Udp] {
                    registry.register(PMAP_PROGRAM, vers, transport, SocketAddr::new(bind, pm_tcp.port()));
                }
            }
            for &(prog, vers, transport, port) in &services {
                registry.register(prog, vers, transport, SocketAddr::new(bind, port));
            }
            programs.push(Arc::new(PortmapService::new(registry).serving_only_port(pm_tcp.port())));
        }
        let dispatcher = Arc::new(Dispatcher::new(
            programs,
            DispatcherConfig {
                workers: config.limits.fs_threads.max(1),
                workers_per_client: config.limits.fs_threads_per_client.unwrap_or_else(|| {
                    crate::rpc::dispatch::default_workers_per_client(config.limits.fs_threads.max(1))
                }),
                drc: config.limits.drc,
            },
        ));

        let limits = transport_limits(&config.limits);
        // Whether some export's client list admits an address, decided once per connection:
        // an address no export lists can only be refused, and gets a small share (see
        // rpc::connections). Wildcard rules read the (cached) hosts file.
        let specs = config.exports.clone();
        let tcp = TcpShared::new(limits, move |ip| specs.iter().any(|s| s.options_for(ip).is_some()));
        let udp_policy = Arc::new(udp_policy(config.nfs_over_udp));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        for pair in std::iter::once(nfs_socks).chain(mount_socks).chain(portmap_socks) {
            let d = dispatcher.clone();
            tracker.spawn(serve_tcp_shared(
                pair.tcp,
                d.clone(),
                tcp.clone(),
                shutdown.clone(),
                tracker.clone(),
            ));
            tracker.spawn(serve_udp_with_policy(
                Arc::new(pair.udp),
                d,
                limits,
                udp_policy.clone(),
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        tracker.spawn(sweep_idle_files(nfs.clone(), dispatcher.clone(), shutdown.clone()));

        let portmap = match (config.portmap, addrs.portmap_tcp) {
            (PortmapMode::Off, _) => PortmapOutcome::Off,
            (_, Some(a)) => PortmapOutcome::Embedded { port: a.port() },
            (mode, None) => {
                let port = config.portmap_port;
                let to_register = services.clone();
                let registered =
                    tokio::task::spawn_blocking(move || register_with_rpcbind(port, &to_register)).await;
                let registered = registered.unwrap_or_else(|e| Err(format!("registration task failed: {e}")));
                match (registered, mode) {
                    (Ok(target), _) => PortmapOutcome::Registered { target, services },
                    (Err(reason), PortmapMode::Auto) => {
                        tracing::warn!(
                            "no portmapper: {reason}. rpcinfo and showmount will not see this server, and \
                             clients must mount with -o port={},mountport={}",
                            addrs.nfs_tcp.port(),
                            addrs.mount_tcp.unwrap_or(addrs.nfs_tcp).port()
                        );
                        PortmapOutcome::Unavailable { reason }
                    }
                    (Err(reason), _) => {
                        shutdown.cancel();
                        tracker.close();
                        tracker.wait().await;
                        return Err(StartError::Register(reason));
                    }
                }
            }
        };

        Ok(Server { addrs, dispatcher, nfs, tcp, config, portmap, handle_check, shutdown, tracker })
    }

    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }

    /// A copy of the RPC counters (calls per procedure, errors, DRC).
    pub fn stats(&self) -> StatsSnapshot {
        self.dispatcher.stats()
    }

    /// What the TCP transport holds now: connections per kind, closed connections by cause, and
    /// the bytes of requests and large replies held.
    pub fn tcp_stats(&self) -> TcpStats {
        self.tcp.stats()
    }

    pub fn nfs(&self) -> &Arc<NfsService> {
        &self.nfs
    }

    /// The startup banner: exports with their effective options, handle mode, identity, ports,
    /// portmapper outcome and a mount command to copy.
    pub fn banner(&self) -> String {
        let mut b = String::new();
        let _ = writeln!(b, "rnfsd {} serving NFSv3", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(b, "exports:");
        for export in self.nfs.exports().list() {
            let origin = if export.spec.fsid.is_some() { "from fsid=" } else { "assigned" };
            let _ = writeln!(b, "  {}  (fsid {} {origin})", export.spec.path.display(), export.fsid);
            for rule in &export.spec.clients {
                let _ = writeln!(b, "    {}({})", rule.text, rule.options);
            }
        }
        let key = self.config.state_dir.join(crate::fs::state::KEY_FILE);
        let _ = writeln!(b, "file handles: kernel (name_to_handle_at), key in {}", key.display());
        if self.nfs.exports().key_origin == crate::fs::state::KeyOrigin::Created {
            let _ = writeln!(
                b,
                "  new handle key created: handles from any earlier run are stale; keep the state directory on \
                 persistent storage"
            );
        }
        if let Err(reason) = &self.handle_check {
            let _ = writeln!(
                b,
                "  WARNING: the export root's handle does not resolve ({reason}); open_by_handle_at needs \
                 CAP_DAC_READ_SEARCH, without it every request fails with a stale handle"
            );
        }
        if crate::fs::cred::can_switch() {
            let _ = writeln!(b, "identity: running as root: requests run with the caller's uid/gid");
        } else {
            let _ = writeln!(
                b,
                "identity: not root: every request runs as uid {}, ownership is not mapped",
                nix::unistd::geteuid()
            );
        }
        let _ = writeln!(b, "listening:");
        let a = &self.addrs;
        if self.config.nfs_over_udp {
            let _ = writeln!(b, "  nfs+mount  tcp {}  udp {}", a.nfs_tcp, a.nfs_udp);
        } else {
            let _ = writeln!(
                b,
                "  nfs+mount  tcp {}  (udp {}: mount only; NFS over UDP is off, --udp serves it)",
                a.nfs_tcp, a.nfs_udp
            );
        }
        if let (Some(t), Some(u)) = (a.mount_tcp, a.mount_udp) {
            let _ = writeln!(b, "  mount      tcp {t}  udp {u}");
        }
        if let (Some(t), Some(u)) = (a.portmap_tcp, a.portmap_udp) {
            let _ = writeln!(b, "  portmap    tcp {t}  udp {u}");
        }
        let pm = match &self.portmap {
            PortmapOutcome::Off => "none: clients must be given port= and mountport=".to_string(),
            PortmapOutcome::Embedded { port } => format!("embedded on port {port}"),
            PortmapOutcome::Registered { target, .. } => {
                format!("registered with the system rpcbind ({target})")
            }
            PortmapOutcome::Unavailable { reason } => {
                format!("none ({reason}): clients must be given port= and mountport=")
            }
        };
        let _ = writeln!(b, "portmapper ({}): {pm}", self.config.portmap);
        let _ = writeln!(b, "mount with:");
        for line in self.mount_commands() {
            let _ = writeln!(b, "  {line}");
        }
        b
    }

    /// One `mount` command per export. `port=`/`mountport=` are left out only when a portmapper
    /// on the standard port knows the services and they are on their standard ports.
    fn mount_commands(&self) -> Vec<String> {
        let nfs_port = self.addrs.nfs_tcp.port();
        let mount_port = self.addrs.mount_tcp.unwrap_or(self.addrs.nfs_tcp).port();
        let portmapper_on_111 = match &self.portmap {
            PortmapOutcome::Embedded { port } => *port == DEFAULT_PORTMAP_PORT,
            PortmapOutcome::Registered { .. } => self.config.portmap_port == DEFAULT_PORTMAP_PORT,
            PortmapOutcome::Off | PortmapOutcome::Unavailable { .. } => false,
        };
        let default_ports = nfs_port == DEFAULT_NFS_PORT && mount_port == DEFAULT_MOUNT_PORT;
        let mut opts = "vers=3,proto=tcp".to_string();
        if !(portmapper_on_111 && default_ports) {
            let _ = write!(opts, ",port={nfs_port},mountport={mount_port},mountproto=tcp");
        }
        // There is no NLM (lock manager) service.
        opts.push_str(",nolock");
        let host = display_host(self.config.bind);
        self.nfs
            .exports()
            .list()
            .iter()
            .map(|e| format!("mount -t nfs -o {opts} {host}:{} /mnt", e.spec.path.display()))
            .collect()
    }

    /// Stops accepting, lets in-flight calls finish and flush (for at most [`SHUTDOWN_GRACE`]),
    /// closes every cached file (syncing what is uncommitted) and removes any rpcbind
    /// registration.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait()).await.is_err() {
            tracing::warn!(
                "some requests were still running {} s after shutdown began; not waiting longer",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        let nfs = self.nfs.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || nfs.close_all_files()).await {
            tracing::error!("closing files failed: {e}");
        }
        if let PortmapOutcome::Registered { target, services } = self.portmap {
            let done = tokio::task::spawn_blocking(move || {
                crate::portmap::unregister_with(&PmapClient::new(target), &services)
            })
            .await;
            match done {
                Ok(Ok(())) => tracing::info!("removed the registrations from the system rpcbind"),
                Ok(Err(e)) => tracing::warn!("could not remove the registrations from rpcbind: {e}"),
                Err(e) => tracing::warn!("could not remove the registrations from rpcbind: {e}"),
            }
        }
    }
}

/// The address to put in a mount command: the bound address, or this host's name when bound to
/// every address.
fn display_host(bind: IpAddr) -> String {
    if !bind.is_unspecified() {
        return match bind {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "HOST".to_string())
}

/// The transport's limits from the server's.
fn transport_limits(l: &crate::config::Limits) -> TransportLimits {
    TransportLimits {
        max_record: l.max_record,
        max_connections: l.max_connections,
        max_connections_per_host: l.max_connections_per_host,
        max_unlisted_connections: l.max_unlisted_connections,
        max_unlisted_connections_per_host: l.max_unlisted_connections_per_host,
        max_unlisted_record: l.max_unlisted_record,
        record_timeout: l.record_timeout,
        min_record_rate: l.min_record_rate,
        max_request_bytes: l.max_request_bytes,
        max_reply_bytes_per_connection: l.max_reply_bytes_per_connection,
        max_reply_bytes: l.max_reply_bytes,
        max_in_flight_per_connection: l.max_inflight_per_connection,
        ..TransportLimits::default()
    }
}

/// Raises the soft limit on open descriptors to the hard limit: every connection, cached handle
/// and cached open file holds one, and the usual soft limit of 1024 would make accept or
/// `open_by_handle_at` fail under load. Warns when even the hard limit is too low.
fn raise_descriptor_limit(config: &Config) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed =
        (config.limits.max_connections + config.limits.open_files + crate::fs::HANDLE_CACHE_ENTRIES + 256)
            as u64;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
    }
    let now = getrlimit(Resource::RLIMIT_NOFILE).map(|(s, _)| s).unwrap_or(soft);
    if now < needed {
        tracing::warn!(
            "the open-file limit is {now}, below the {needed} descriptors the configured connections and \
             caches can use; raise it (ulimit -n, or LimitNOFILE= in a systemd unit)"
        );
    }
}

/// Resolves the first export's root handle once, so a missing CAP_DAC_READ_SEARCH is reported at
/// startup instead of as stale handles later.
fn check_handles(exports: &Exports) -> Result<(), String> {
    match exports.list().first() {
        Some(export) => exports.resolve(&export.root_handle).map(|_| ()).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// What this server registers with a portmapper: NFS v3 on the NFS port, MOUNT v1..=v3 on the
/// MOUNT port (the NFS port when there is none), each on TCP and UDP, except NFS over UDP when it
/// is not served.
fn services(addrs: &BoundAddrs, nfs_over_udp: bool) -> Vec<Service> {
    let nfs = addrs.nfs_tcp.port();
    let mount = addrs.mount_tcp.map_or(nfs, |a| a.port());
    let mut v = Vec::new();
    for transport in [Transport::Tcp, Transport::Udp] {
        if transport == Transport::Tcp || nfs_over_udp {
            v.push((NFS_PROGRAM, NFS_VERSION, transport, nfs));
        }
        for vers in MOUNT_VERSIONS {
            v.push((MOUNT_PROGRAM, vers, transport, mount));
        }
    }
    v
}

/// What the UDP sockets serve: NFS only when enabled (its READ replies are hundreds of times their
/// calls, and UDP senders can be forged), with replies as large as a datagram since READ needs
/// them; MOUNT and the portmapper always, with replies bounded to [`BOUNDED_REPLY_MAX`] bytes.
fn udp_policy(nfs_over_udp: bool) -> UdpPolicy {
    UdpPolicy {
        refused: if nfs_over_udp { Vec::new() } else { vec![NFS_PROGRAM] },
        bounded: vec![MOUNT_PROGRAM, PMAP_PROGRAM],
        bounded_reply_max: BOUNDED_REPLY_MAX,
    }
}

/// Registers `services` with the first rpcbind that answers: its local socket, then UDP on
/// loopback port `port`. Returns where it registered, or every failure in one line.
fn register_with_rpcbind(port: u16, services: &[Service]) -> Result<RpcbindTarget, String> {
    let mut targets: Vec<RpcbindTarget> =
        RPCBIND_SOCKETS.iter().map(|p| RpcbindTarget::Local(p.into())).collect();
    targets.push(RpcbindTarget::Udp((Ipv4Addr::LOCALHOST, port).into()));
    let mut failures = Vec::new();
    for target in targets {
        let client = PmapClient::new(target);
        if let Err(e) = client.null() {
            failures.push(format!("{}: {e}", client.target()));
            continue;
        }
        return match register_with(&client, services) {
            Ok(()) => Ok(client.target().clone()),
            Err(e) => Err(e.to_string()),
        };
    }
    Err(format!("no system rpcbind answered ({})", failures.join("; ")))
}

fn bind_error(addr: IpAddr, port: u16, service: &'static str, e: io::Error) -> StartError {
    if e.kind() == io::ErrorKind::AddrInUse {
        StartError::PortInUse { port, service, addr }
    } else {
        StartError::Bind { port, service, addr, source: e }
    }
}

/// A TCP listener and a UDP socket bound to the same port, with their addresses.
#[derive(Debug)]
struct BoundPair {
    tcp: TcpListener,
    udp: UdpSocket,
    tcp_addr: SocketAddr,
    udp_addr: SocketAddr,
}

/// Binds TCP and UDP on the same port. Port 0 picks an ephemeral TCP port and then UDP on the
/// same number, retrying with another port when that UDP port is taken.
async fn bind_pair(addr: IpAddr, port: u16, name: &'static str) -> Result<BoundPair, StartError> {
    let (tcp_name, udp_name) = match name {
        "nfs" => ("nfs/tcp", "nfs/udp"),
        "mount" => ("mount/tcp", "mount/udp"),
        _ => ("portmap/tcp", "portmap/udp"),
    };
    let attempts = if port == 0 { EPHEMERAL_ATTEMPTS } else { 1 };
    for _ in 0..attempts {
        let tcp = TcpListener::bind(SocketAddr::new(addr, port))
            .await
            .map_err(|e| bind_error(addr, port, tcp_name, e))?;
        let tcp_addr = tcp.local_addr().map_err(|e| bind_error(addr, port, tcp_name, e))?;
        let udp = match UdpSocket::bind(SocketAddr::new(addr, tcp_addr.port())).await {
            Ok(udp) => udp,
            Err(e) if port == 0 && e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(bind_error(addr, tcp_addr.port(), udp_name, e)),
        };
        let udp_addr = udp.local_addr().map_err(|e| bind_error(addr, tcp_addr.port(), udp_name, e))?;
        enlarge_receive_buffer(&udp, udp_name);
        return Ok(BoundPair { tcp, udp, tcp_addr, udp_addr });
    }
    Err(StartError::NoEphemeralPort { service: name, addr })
}

/// Receive buffer for UDP sockets. The kernel charges each datagram its buffer size (one to two
/// KiB even for a small one), so the default of about 200 KiB overflows after a burst of a couple
/// of hundred datagrams while the workers are busy, and every further datagram is dropped.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

fn enlarge_receive_buffer(udp: &UdpSocket, name: &str) {
    use nix::sys::socket::{setsockopt, sockopt};
    // Root may go past net.core.rmem_max; anyone else gets at most rmem_max.
    if setsockopt(udp, sockopt::RcvBufForce, &UDP_RECEIVE_BUFFER).is_err()
        && let Err(e) = setsockopt(udp, sockopt::RcvBuf, &UDP_RECEIVE_BUFFER)
    {
        tracing::debug!("{name}: cannot enlarge the receive buffer: {e}");
    }
}

/// Closes cached open files nobody used for a while, so a client that wrote and went away does
/// not keep descriptors (and unsynced data) forever, and expires duplicate-request cache entries
/// whose time is up even when no call arrives to do it. Once a whole interval passes without a
/// call, also empties the pool of I/O buffers and hands the allocator's free memory back, once
/// per idle spell, so RSS falls back after a burst of load.
async fn sweep_idle_files(nfs: Arc<NfsService>, dispatcher: Arc<Dispatcher>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(IDLE_FILE_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let calls_so_far = || dispatcher.stats().calls.values().sum::<u64>();
    let mut calls_at_last_tick = calls_so_far();
    let mut released_at = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let calls = calls_so_far();
        let idle = calls == calls_at_last_tick;
        let first_idle_tick = idle && released_at != Some(calls);
        calls_at_last_tick = calls;
        if first_idle_tick {
            released_at = Some(calls);
        }
        let nfs = nfs.clone();
        let dispatcher = dispatcher.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let expired = dispatcher.expire_idle_cache() + nfs.expire_idle_listings(IDLE_FILE_MAX) as u64;
            let closed = nfs.close_idle_files(IDLE_FILE_MAX);
            // Cache entries that expire later in the idle spell free memory worth returning too.
            if first_idle_tick || (idle && expired > 0) {
                crate::rpc::buffers::LARGE_BUFFERS.release();
                crate::fs::sys::release_free_memory();
            }
            closed
        });
        match swept.await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(closed = n, "closed idle files"),
            Err(e) => tracing::error!("closing idle files failed: {e}"),
        }
    }
}

/// One line per export: path, `fsid=` if set, and each client rule with its effective options
/// (what `exportfs -v` shows).
pub fn describe_export(spec: &ExportSpec) -> String {
    let mut s = spec.path.display().to_string();
    if let Some(fsid) = spec.fsid {
        let _ = write!(s, "  fsid={fsid}");
    }
    for rule in &spec.clients {
        let _ = write!(s, "  {}({})", rule.text, rule.options);
    }
    s
}

/// The counters an operator reads when clients report lost or repeated operations, as one log
/// line: every call received, and the duplicate-request cache's outcomes and size. Logged on
/// SIGUSR1 and at shutdown.
pub fn counters_line(stats: &StatsSnapshot) -> String {
    let d = &stats.drc;
    format!(
        "counters: calls={} drc_hits={} drc_misses={} drc_parked={} drc_park_dropped={} drc_evictions={} \
         drc_expirations={} drc_entries={} drc_bytes={}",
        stats.calls.values().sum::<u64>(),
        d.hits,
        d.misses,
        d.parked,
        d.park_dropped,
        d.evictions,
        d.expirations,
        d.entries,
        d.bytes
    )
}

/// How full the NFS service's caches are, as one log line, logged on SIGUSR1 next to the
/// [`memory_line`]: they hold most of the heap in use.
pub fn caches_line(sizes: &CacheSizes) -> String {
    format!(
        "caches: resolved_handles={} inode_handles={} open_files={} listed_entries={}",
        sizes.resolved_handles, sizes.inode_handles, sizes.open_files, sizes.listed_entries
    )
}

/// What the TCP transport holds and has closed, as one log line, logged on SIGUSR1: open
/// connections (and how many of unlisted hosts), bytes of requests and large replies held against
/// their budgets, and connections closed to keep the shares and budgets.
pub fn tcp_line(s: &TcpStats) -> String {
    let t = &s.table;
    format!(
        "tcp: connections={} unlisted={} request_bytes={} large_reply_bytes={} closed_for_share={} refused={} \
         closed_stalled_record={} closed_stalled_writer={} record_timeouts={}",
        t.connections,
        t.unlisted_connections,
        s.request_bytes,
        s.large_reply_bytes,
        t.evicted_for_share,
        t.refused,
        t.evicted_stalled_records,
        t.evicted_stalled_writers,
        t.records_timed_out
    )
}

/// Where the server's memory is, as one log line: resident size; what the allocator has handed
/// out, holds free in its heaps and has mapped for large blocks; and the pool of 1 MiB I/O
/// buffers (free ones kept, and how many were allocated and reused). Logged on SIGUSR1, so an
/// operator can tell live data from memory the allocator keeps for reuse.
pub fn memory_line() -> String {
    let rss_kib = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    });
    let mut s = String::from("memory:");
    match rss_kib {
        Some(kib) => {
            let _ = write!(s, " rss_kib={kib}");
        }
        None => s.push_str(" rss_kib=unknown"),
    }
    match crate::fs::sys::heap_usage() {
        Some(h) => {
            let _ = write!(
                s,
                " heap_in_use_kib={} heap_free_kib={} heap_mapped_kib={}",
                h.in_use / 1024,
                h.free / 1024,
                h.mapped / 1024
            );
        }
        None => s.push_str(" heap=unknown"),
    }
    let pool = crate::rpc::buffers::LARGE_BUFFERS.stats();
    let _ = write!(
        s,
        " io_buffers_free={} io_buffers_free_kib={} io_buffers_allocated={} io_buffers_reused={}",
        pool.free,
        pool.free_bytes / 1024,
        pool.allocated,
        pool.reused
    );
    s
}

/// Runs the server on its own multi-thread runtime until SIGINT or SIGTERM, printing the banner
/// to stderr, then shuts down gracefully. SIGUSR1 logs the [`counters_line`] and the
/// [`memory_line`].
pub fn run_until_signal(config: Config) -> Result<(), StartError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.limits.fs_threads.max(1) + EXTRA_BLOCKING_THREADS)
        .thread_name("rnfsd")
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed before serving, so a signal right after the banner is never missed.
        let mut term = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
        let mut usr1 = signal(SignalKind::user_defined1()).map_err(StartError::Signals)?;
        let server = Server::start(config).await?;
        eprint!("{}", server.banner());
        let which = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = usr1.recv() => {
                    tracing::info!("{}", counters_line(&server.stats()));
                    tracing::info!("{}", memory_line());
                    tracing::info!("{}", caches_line(&server.nfs().cache_sizes()));
                    tracing::info!("{}", tcp_line(&server.tcp_stats()));
                }
            }
        };
        tracing::info!("{which}: shutting down");
        let dispatcher = server.dispatcher.clone();
        server.shutdown().await;
        tracing::info!("{}", counters_line(&dispatcher.stats()));
        tracing::info!("stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountd::exports::parse_export_line;

    #[test]
    fn tcp_line_names_every_count() {
        let shares = crate::rpc::connections::Shares {
            total: 4,
            per_host: 2,
            unlisted_total: 1,
            unlisted_per_host: 1,
        };
        let table = crate::rpc::connections::ConnectionTable::new(shares);
        let _a = table.admit(IpAddr::from([127, 0, 0, 9]), false);
        let s = TcpStats { table: table.stats(), request_bytes: 5, large_reply_bytes: 6 };
        assert_eq!(
            tcp_line(&s),
            "tcp: connections=1 unlisted=1 request_bytes=5 large_reply_bytes=6 closed_for_share=0 refused=0 \
             closed_stalled_record=0 closed_stalled_writer=0 record_timeouts=0"
        );
    }

    #[test]
    fn caches_line_names_every_cache() {
        let sizes = CacheSizes { resolved_handles: 4, inode_handles: 3, open_files: 2, listed_entries: 1 };
        assert_eq!(
            caches_line(&sizes),
            "caches: resolved_handles=4 inode_handles=3 open_files=2 listed_entries=1"
        );
    }

    #[test]
    fn memory_line_reports_resident_size_and_the_heaps() {
        let held = std::hint::black_box(vec![1u8; 1 << 20]);
        let line = memory_line();
        let field = |name: &str| -> u64 {
            let value =
                line.split(' ').find_map(|f| f.strip_prefix(name)).unwrap_or_else(|| panic!("{line}"));
            value.parse().unwrap_or_else(|_| panic!("{name} in {line}"))
        };
        assert!(field("rss_kib=") >= 1024, "{line}");
        if cfg!(target_env = "gnu") {
            // The MiB held above is in use, in a heap or mapped on its own.
            assert!(field("heap_in_use_kib=") + field("heap_mapped_kib=") >= 1024, "{line}");
            let _ = field("heap_free_kib=");
        }
        drop(held);
    }

    #[test]
    fn describe_export_shows_fsid_and_effective_options() {
        let spec =
            parse_export_line("/srv/a 10.0.0.0/8(rw,no_root_squash,fsid=7) *(ro,insecure)", "t").unwrap();
        let line = describe_export(&spec);
        assert!(line.starts_with("/srv/a  fsid=7"), "{line}");
        assert!(line.contains("10.0.0.0/8(rw,no_root_squash,secure,sync)"), "{line}");
        assert!(line.contains("*(ro,root_squash,insecure,sync)"), "{line}");
    }

    #[test]
    fn mount_errors_map_to_mountstat() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(mount_stat(&e(libc::ENOENT)), MountStat::NoEnt);
        assert_eq!(mount_stat(&e(libc::ENOTDIR)), MountStat::NotDir);
        assert_eq!(mount_stat(&e(libc::EACCES)), MountStat::Access);
        assert_eq!(mount_stat(&e(libc::EXDEV)), MountStat::ServerFault);
    }

    #[tokio::test]
    async fn ephemeral_pairs_share_the_port_and_busy_ports_are_reported() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let pair = bind_pair(lo, 0, "nfs").await.unwrap();
        let port = pair.tcp_addr.port();
        assert_eq!(pair.udp_addr.port(), port);
        assert_eq!(pair.udp.local_addr().unwrap(), pair.udp_addr);
        let err = bind_pair(lo, port, "nfs").await.unwrap_err();
        assert_eq!(err.to_string(), format!("port {port} (nfs/tcp) on 127.0.0.1 is in use"));
    }

    #[test]
    fn counters_line_sums_calls_and_shows_every_drc_counter() {
        use crate::rpc::stats::DrcSnapshot;
        let mut stats = StatsSnapshot::default();
        stats.calls.insert((NFS_PROGRAM, 3, 12), 5);
        stats.calls.insert((MOUNT_PROGRAM, 3, 1), 2);
        stats.drc = DrcSnapshot {
            hits: 1,
            misses: 2,
            parked: 3,
            park_dropped: 4,
            evictions: 5,
            expirations: 6,
            entries: 7,
            bytes: 8,
        };
        assert_eq!(
            counters_line(&stats),
            "counters: calls=7 drc_hits=1 drc_misses=2 drc_parked=3 drc_park_dropped=4 drc_evictions=5 \
             drc_expirations=6 drc_entries=7 drc_bytes=8"
        );
    }

    #[test]
    fn services_use_the_mount_port_when_there_is_one() {
        let a = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let mut addrs = BoundAddrs {
            nfs_tcp: a(2049),
            nfs_udp: a(2049),
            mount_tcp: None,
            mount_udp: None,
            portmap_tcp: None,
            portmap_udp: None,
        };
        let s = services(&addrs, true);
        assert_eq!(s.len(), 8);
        assert!(s.iter().all(|&(_, _, _, port)| port == 2049));
        addrs.mount_tcp = Some(a(20048));
        let s = services(&addrs, true);
        assert!(s.contains(&(MOUNT_PROGRAM, 3, Transport::Udp, 20048)));
        assert!(s.contains(&(NFS_PROGRAM, 3, Transport::Tcp, 2049)));
    }

    #[test]
    fn nfs_over_udp_is_registered_only_when_served() {
        let a = SocketAddr::from(([127, 0, 0, 1], 2049));
        let addrs = BoundAddrs {
            nfs_tcp: a,
            nfs_udp: a,
            mount_tcp: None,
            mount_udp: None,
            portmap_tcp: None,
            portmap_udp: None,
        };
        let off = services(&addrs, false);
        assert!(!off.contains(&(NFS_PROGRAM, 3, Transport::Udp, 2049)), "{off:?}");
        assert!(off.contains(&(NFS_PROGRAM, 3, Transport::Tcp, 2049)));
        assert!(off.contains(&(MOUNT_PROGRAM, 3, Transport::Udp, 2049)), "MOUNT stays on UDP");
        assert!(services(&addrs, true).contains(&(NFS_PROGRAM, 3, Transport::Udp, 2049)));
        assert_eq!(udp_policy(false).refused, vec![NFS_PROGRAM]);
        assert!(udp_policy(true).refused.is_empty());
    }
}
