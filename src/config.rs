//! Server configuration, independent of how it was given (CLI flags, an exports file): what to
//! export, where to listen, how to reach a portmapper, where to keep state, and resource limits.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::exports::ExportSpec;
use crate::rpc::drc::DrcConfig;
use crate::rpc::transport::TransportLimits;

/// The NFS port clients assume (RFC 1813 leaves it to the portmapper; everyone uses 2049).
pub const DEFAULT_NFS_PORT: u16 = 2049;
/// The MOUNT port nfs-utils' rpc.mountd uses, so firewall rules written for knfsd fit.
pub const DEFAULT_MOUNT_PORT: u16 = 20048;
/// The portmapper's well-known port.
pub const DEFAULT_PORTMAP_PORT: u16 = xdr::portmap::PMAP_PORT;

/// How the server makes itself known to portmapper clients (`rpcinfo`, `showmount`, `mount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PortmapMode {
    /// Serve an embedded portmapper when port 111 is free, else register with the running
    /// rpcbind, else warn and go on without.
    Auto,
    /// Serve the embedded portmapper; failing to bind is an error.
    Embedded,
    /// Register with a running rpcbind; failing is an error.
    Register,
    /// Neither: clients must be given `port=` and `mountport=`.
    Off,
}

impl std::fmt::Display for PortmapMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PortmapMode::Auto => "auto",
            PortmapMode::Embedded => "embedded",
            PortmapMode::Register => "register",
            PortmapMode::Off => "off",
        })
    }
}

/// Bounds on the resources one server uses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest READ/WRITE transfer offered in FSINFO (rtmax/wtmax).
    pub max_io: u32,
    /// Largest RPC record accepted on TCP (a WRITE of `max_io` plus headers).
    pub max_record: usize,
    /// TCP connections served at once, over every port. When it is reached a newcomer still gets
    /// in: the least recently active connection of the address holding the most is closed.
    pub max_connections: usize,
    /// TCP connections one client address may hold; its newest connection closes its least
    /// recently active one beyond it.
    pub max_connections_per_host: usize,
    /// TCP connections, in total, of addresses that no export lists: they can only be refused, so
    /// they get a small share of the connection limit.
    pub max_unlisted_connections: usize,
    /// TCP connections one address that no export lists may hold.
    pub max_unlisted_connections_per_host: usize,
    /// Largest record accepted from an address that no export lists: enough for NULL, MNT and
    /// the portmapper, whose answers are all such a host gets.
    pub max_unlisted_record: usize,
    /// A record must arrive whole within this time from its first byte, plus one second per
    /// `min_record_rate` bytes of its size, however often bytes arrive.
    pub record_timeout: std::time::Duration,
    /// The slowest rate (bytes per second) a big record may arrive at; see `record_timeout`.
    pub min_record_rate: usize,
    /// Bytes of received requests the server holds at once over every connection: partial
    /// records beyond each connection's first small buffer, and records waiting for or in
    /// execution. A connection that needs more waits (it is not read); a partial record that has
    /// stalled is dropped (its connection closed) to make room, oldest first.
    pub max_request_bytes: usize,
    /// Bytes of replies one connection may hold (queued for its writer or being produced). At the
    /// bound the connection's requests are not read until the client reads its replies.
    pub max_reply_bytes_per_connection: usize,
    /// Bytes of large replies (READ, READDIR...) held over every connection at once.
    pub max_reply_bytes: usize,
    /// Requests of one connection executing at once.
    pub max_inflight_per_connection: usize,
    /// Filesystem operations executing at once (the equivalent of knfsd's thread count).
    pub fs_threads: usize,
    /// Of `fs_threads`, how many one client (peer IP address) may hold at once; `None`: three
    /// quarters of them, at most 8.
    pub fs_threads_per_client: Option<usize>,
    /// Open files kept in the open-file cache.
    pub open_files: usize,
    /// Bounds and lifetimes of the duplicate-request cache.
    pub drc: DrcConfig,
}

impl Default for Limits {
    /// The transports' bounds are [`TransportLimits::default`]'s, so each default is written once.
    fn default() -> Self {
        let transport = TransportLimits::default();
        Limits {
            max_io: 1 << 20,
            max_record: transport.max_record,
            max_connections: transport.max_connections,
            max_connections_per_host: transport.max_connections_per_host,
            max_unlisted_connections: transport.max_unlisted_connections,
            max_unlisted_connections_per_host: transport.max_unlisted_connections_per_host,
            max_unlisted_record: transport.max_unlisted_record,
            record_timeout: transport.record_timeout,
            min_record_rate: transport.min_record_rate,
            max_request_bytes: transport.max_request_bytes,
            max_reply_bytes_per_connection: transport.max_reply_bytes_per_connection,
            max_reply_bytes: transport.max_reply_bytes,
            max_inflight_per_connection: transport.max_in_flight_per_connection,
            fs_threads: crate::rpc::dispatch::DEFAULT_WORKERS,
            fs_threads_per_client: None,
            open_files: 1024,
            drc: DrcConfig::default(),
        }
    }
}

/// Network locking (NLM v4 and NSM on the NFS port).
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// Whether NLM and NSM are served and registered (`--no-locks` turns them off; clients must
    /// then mount with `nolock`).
    pub enabled: bool,
    /// How long after a restart with recorded clients only reclaims are granted (`--lock-grace`).
    pub grace: std::time::Duration,
    /// The port of a client's portmapper, asked where its lock manager (for GRANTED) and status
    /// monitor (for SM_NOTIFY) listen: 111 everywhere; tests run their own elsewhere.
    pub peer_portmap_port: u16,
    /// How often waiters that a lock of another process blocks are retried: rnfsd learns of its
    /// own unlocks at once, not of a host process's.
    pub poll_interval: std::time::Duration,
    /// How long a lock taken for a waiter is kept when its GRANTED callback was not delivered and
    /// the client does not re-send its LOCK (the Linux client re-sends every 30 s).
    pub unclaimed_grant: std::time::Duration,
}

/// The grace period knfsd's nfsd and nfs-ganesha use.
pub const DEFAULT_LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(90);

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            enabled: true,
            grace: DEFAULT_LOCK_GRACE,
            peer_portmap_port: DEFAULT_PORTMAP_PORT,
            poll_interval: std::time::Duration::from_secs(1),
            unclaimed_grant: std::time::Duration::from_secs(70),
        }
    }
}

/// Everything [`Server::start`](crate::server::Server::start) needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub exports: Vec<ExportSpec>,
    pub bind: IpAddr,
    /// NFS port; MOUNT is served here too. 0 picks a free port (tests).
    pub nfs_port: u16,
    /// The separate MOUNT port; `None` serves MOUNT only on the NFS port.
    pub mount_port: Option<u16>,
    /// Whether NFS is served over UDP (`--udp`). Off by default, as in nfs-utils 2.x (`udp=n`):
    /// anyone can forge a UDP call's source, and a READ reply is hundreds of times its call, so
    /// the server would reflect floods at a victim. MOUNT and the portmapper answer over UDP
    /// either way, with bounded replies.
    pub nfs_over_udp: bool,
    pub portmap: PortmapMode,
    /// Port of the embedded portmapper, and of the rpcbind to register with.
    pub portmap_port: u16,
    /// Handle key and other state that must survive restarts.
    pub state_dir: PathBuf,
    pub limits: Limits,
    pub locks: LockConfig,
}

impl Config {
    /// A configuration for tests: one export, everything on ephemeral loopback ports, no
    /// portmapper.
    pub fn for_tests(exports: Vec<ExportSpec>, state_dir: PathBuf) -> Config {
        Config {
            exports,
            bind: IpAddr::from([127, 0, 0, 1]),
            nfs_port: 0,
            mount_port: None,
            nfs_over_udp: false,
            portmap: PortmapMode::Off,
            portmap_port: DEFAULT_PORTMAP_PORT,
            state_dir,
            limits: Limits::default(),
            locks: LockConfig::default(),
        }
    }
}

/// Where the state directory may go when none is given, in order: `/var/lib/rnfsd` for root;
/// for anyone else `$XDG_STATE_HOME/rnfsd`, `$HOME/.local/state/rnfsd`, then `.rnfsd-state` in
/// the working directory (a user without a home, or whose home it may not write).
fn state_dir_candidates() -> Vec<PathBuf> {
    if crate::fs::cred::situation().euid == 0 {
        return vec![PathBuf::from("/var/lib/rnfsd")];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        out.push(PathBuf::from(dir).join("rnfsd"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".local/state/rnfsd"));
    }
    out.push(PathBuf::from(".rnfsd-state"));
    out
}

/// The first default state directory that exists or can be made (mode 0700), or an error that
/// names every place tried and the way out.
pub fn usable_default_state_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let mut tried = Vec::new();
    for dir in state_dir_candidates() {
        match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => tried.push(format!("{} ({e})", dir.display())),
        }
    }
    Err(format!(
        "no state directory: tried {}; give --state-dir DIR, a directory this user (uid {}) can write that \
         lasts across restarts",
        tried.join(", "),
        crate::fs::cred::situation().euid
    ))
}
