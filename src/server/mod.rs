//! The server process: opens the exports, binds every socket, wires NFS, MOUNT and (when it can)
//! the embedded portmapper into one dispatcher, serves them on the current tokio runtime, and
//! shuts down gracefully. [`run_until_signal`] is the whole life of the `rnfsd serve` process.
//!
//! One [`Dispatcher`] serves every socket, so the duplicate-request cache and the counters are
//! shared: a client that retransmits on another connection still hits the cache.
//!
//! The parts of that life each have a module:
//!
//! - `bind`: a TCP and a UDP socket on each port ([`ServerPort`]), ephemeral-port search, bind
//!   errors.
//! - `limits`: the descriptor rlimit, and the transports' limits from the configured ones.
//! - `register`: what is registered with a portmapper, the embedded registry, the system
//!   rpcbind.
//! - `housekeeping`: the periodic sweep of idle caches and free memory.
//! - `banner`: the startup banner ([`Server::banner`]).
//! - [`report`]: the one-line reports logged on SIGUSR1 and at shutdown.
//! - `systemd`: the readiness and stop notices of `Type=notify` (sd_notify(3)).

mod banner;
mod bind;
mod housekeeping;
mod limits;
mod register;
pub mod report;
mod systemd;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bind::ServerPort;
use bind::{bind_hint, bind_pair};
use register::{MOUNT_PROGRAM, NFS_PROGRAM, NLM_PROGRAM, NSM_PROGRAM, PMAP_PROGRAM, PortmapOutcome};
use report::{caches_line, counters_line, memory_line, tcp_line};

use crate::config::{Config, PortmapMode};
use crate::fs::{Exports, OpenExportError};
use crate::mountd::{MountBackend, MountService, MountStat, mount_status};
use crate::nfsd::NfsService;
use crate::nlm::Locking;
use crate::portmap::PortmapService;
use crate::rpc::dispatch::{Dispatcher, DispatcherConfig};
use crate::rpc::stats::StatsSnapshot;
use crate::rpc::transport::{
    BOUNDED_REPLY_MAX, TcpShared, TcpStats, UdpPolicy, serve_tcp_shared, serve_udp_with_policy,
};
use crate::rpc::{Program, Transport};

/// How long shutdown waits for in-flight calls to finish and their replies to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Blocking threads beyond `fs_threads`: portmapper registration, closing files, and DRC
/// waiters never hold a worker permit but may still need a thread.
const EXTRA_BLOCKING_THREADS: usize = 16;

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

/// Why the server could not start. Each displays as one line an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Exports(#[from] OpenExportError),
    #[error("port {port} ({}) on {addr} is in use", service.socket_name(*transport))]
    PortInUse { port: u16, service: ServerPort, transport: Transport, addr: IpAddr },
    #[error(
        "cannot bind port {port} ({}) on {addr}: {source}{}",
        service.socket_name(*transport),
        bind_hint(*port, source)
    )]
    Bind { port: u16, service: ServerPort, transport: Transport, addr: IpAddr, source: io::Error },
    #[error("could not find a free port for {service} on {addr} that is free on both TCP and UDP")]
    NoEphemeralPort { service: ServerPort, addr: IpAddr },
    #[error("NFS service: {0}")]
    Nfs(io::Error),
    #[error("lock manager state: {0}")]
    Locks(io::Error),
    #[error("--portmap register: {0}")]
    Register(String),
    /// Another lock manager (the kernel's lockd, rpc.statd) holds NLM or NSM in the system
    /// rpcbind rnfsd would register with.
    #[error("{0}")]
    OtherLockManager(String),
    #[error("tokio runtime: {0}")]
    Runtime(io::Error),
    #[error("signal handlers: {0}")]
    Signals(io::Error),
}

/// The MOUNT backend over the opened exports: MNT's handle for a path below an export root.
/// Public so that an in-process server (the fuzz targets) wires MOUNT exactly as [`Server::start`].
pub struct ExportsMountBackend {
    pub exports: Arc<Exports>,
}

impl MountBackend for ExportsMountBackend {
    fn mount(&self, export_index: usize, subpath: &[u8]) -> Result<Bytes, MountStat> {
        self.exports.mount_handle(export_index, subpath).map_err(|e| {
            let stat = mount_status(&e);
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
    /// The lock table, unless locking is off.
    locks: Option<Arc<crate::nlm::LockTable>>,
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
        limits::raise_descriptor_limit(&config.limits);
        let exports = Arc::new(Exports::open(&config.exports, &config.state_dir)?);
        let handle_check = check_handles(&exports);
        let nfs = Arc::new(NfsService::new(exports.clone(), &config.limits).map_err(StartError::Nfs)?);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let backend = Arc::new(ExportsMountBackend { exports: exports.clone() });
        let mount = Arc::new(MountService::new(config.exports.clone(), backend));

        let bind = config.bind;
        let nfs_socks = bind_pair(bind, config.nfs_port, ServerPort::Nfs).await?;
        let mount_socks = match config.mount_port {
            Some(port) => Some(bind_pair(bind, port, ServerPort::Mount).await?),
            None => None,
        };
        let portmap_socks = match config.portmap {
            PortmapMode::Off | PortmapMode::Register => None,
            PortmapMode::Embedded => Some(bind_pair(bind, config.portmap_port, ServerPort::Portmap).await?),
            PortmapMode::Auto => match bind_pair(bind, config.portmap_port, ServerPort::Portmap).await {
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
        // With the system rpcbind to register with, another lock manager registered there is a
        // start error, found before the lock manager starts (its NSM state and reboot notices).
        if config.locks.enabled && config.portmap != PortmapMode::Off && addrs.portmap_tcp.is_none() {
            register::check_other_lock_manager(config.portmap_port, addrs.nfs_tcp.port())
                .await
                .map_err(StartError::OtherLockManager)?;
        }
        let locking = match config.locks.enabled {
            true => Some(
                Locking::start(&config.locks, &config.state_dir, nfs.clone(), &shutdown, &tracker)
                    .map_err(StartError::Locks)?,
            ),
            false => None,
        };
        let services = register::services(&addrs, config.nfs_over_udp, locking.is_some());

        let mut programs: Vec<Arc<dyn Program>> = vec![nfs.clone(), mount];
        if let Some(l) = &locking {
            programs.push(l.nlm.clone());
            programs.push(l.nsm.clone());
        }
        if let Some(pm_tcp) = addrs.portmap_tcp {
            let registry = register::embedded_registry(bind, pm_tcp.port(), &services);
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

        let limits = limits::transport_limits(&config.limits);
        // Whether some export's client list admits an address, decided once per connection:
        // an address no export lists can only be refused, and gets a small share (see
        // rpc::connections). Wildcard rules read the (cached) hosts file.
        let specs = config.exports.clone();
        let tcp = TcpShared::new(limits, move |ip| specs.iter().any(|s| s.options_for(ip).is_some()));
        let udp_policy = Arc::new(udp_policy(config.nfs_over_udp));
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
        tracker.spawn(housekeeping::sweep_idle_caches(nfs.clone(), dispatcher.clone(), shutdown.clone()));

        let portmap = match (config.portmap, addrs.portmap_tcp) {
            (PortmapMode::Off, _) => PortmapOutcome::Off,
            (_, Some(a)) => PortmapOutcome::Embedded { port: a.port() },
            (mode, None) => {
                match register::register_with_rpcbind(mode, config.portmap_port, services, &addrs).await {
                    Ok(outcome) => outcome,
                    Err(reason) => {
                        shutdown.cancel();
                        tracker.close();
                        tracker.wait().await;
                        return Err(StartError::Register(reason));
                    }
                }
            }
        };

        let locks = locking.map(|l| l.table);
        Ok(Server { addrs, dispatcher, nfs, tcp, config, portmap, handle_check, locks, shutdown, tracker })
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

    /// Locks held, waiters, clients and grace, unless locking is off.
    pub fn lock_counts(&self) -> Option<crate::nlm::LockCounts> {
        self.locks.as_ref().map(|t| t.counts())
    }

    pub fn nfs(&self) -> &Arc<NfsService> {
        &self.nfs
    }

    /// Stops accepting, lets in-flight calls finish and flush (for at most `SHUTDOWN_GRACE`),
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
        register::unregister(self.portmap).await;
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

/// What the UDP sockets serve: NFS only when enabled (its READ replies are hundreds of times their
/// calls, and UDP senders can be forged), with replies as large as a datagram since READ needs
/// them; MOUNT and the portmapper always, with replies bounded to [`BOUNDED_REPLY_MAX`] bytes.
fn udp_policy(nfs_over_udp: bool) -> UdpPolicy {
    UdpPolicy {
        refused: if nfs_over_udp { Vec::new() } else { vec![NFS_PROGRAM] },
        bounded: vec![MOUNT_PROGRAM, PMAP_PROGRAM, NLM_PROGRAM, NSM_PROGRAM],
        bounded_reply_max: BOUNDED_REPLY_MAX,
    }
}

/// Runs the server on its own multi-thread runtime until SIGINT or SIGTERM, printing the banner
/// to stderr, then shuts down gracefully. SIGUSR1 logs the [`report`] lines; shutdown logs the
/// [`counters_line`] once more.
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
        systemd::ready(&server);
        let which = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = usr1.recv() => {
                    tracing::info!("{}", counters_line(&server.stats()));
                    tracing::info!("{}", memory_line());
                    tracing::info!("{}", caches_line(&server.nfs().cache_sizes()));
                    tracing::info!("{}", tcp_line(&server.tcp_stats()));
                    if let Some(c) = server.lock_counts() {
                        tracing::info!("{}", report::locks_line(&c));
                    }
                }
            }
        };
        tracing::info!("{which}: shutting down");
        systemd::stopping();
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
        let off = register::services(&addrs, false, true);
        assert!(!off.contains(&(NFS_PROGRAM, 3, Transport::Udp, 2049)), "{off:?}");
        assert!(off.contains(&(NFS_PROGRAM, 3, Transport::Tcp, 2049)));
        assert!(off.contains(&(MOUNT_PROGRAM, 3, Transport::Udp, 2049)), "MOUNT stays on UDP");
        assert!(register::services(&addrs, true, true).contains(&(NFS_PROGRAM, 3, Transport::Udp, 2049)));
        assert_eq!(udp_policy(false).refused, vec![NFS_PROGRAM]);
        assert!(udp_policy(true).refused.is_empty());
    }
}
