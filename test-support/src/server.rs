//! rnfsd running in the test's process on 127.0.0.1 (ephemeral ports) over a temporary export
//! and a temporary state directory, built with [`TestServer::builder`] or one of the shorthands.
//! The server keeps how it was configured, so [`TestServer::restart`] brings back the same one
//! (same export, same state directory, so the same file handles) after a graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rnfsd::config::{Config, Limits};
use rnfsd::exports::{ExportSpec, parse_export_line};
use rnfsd::server::Server;
use tempfile::TempDir;
use xdr::nfs3::nfs_fh3;

use crate::client::Client;

/// The options of the default export: read-write from unprivileged ports, and root stays root
/// (tests running as root act as root).
pub const RW: &str = "rw,insecure,no_root_squash";

/// A change to the configuration, applied at every start.
type Configure = Box<dyn Fn(&mut Config) + Send + Sync>;

/// rnfsd running in this process over a temporary export directory.
pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    export: TempDir,
    state: TempDir,
    /// The client list of the export line, e.g. `*(rw)`; unused with `export_lines`.
    clients: String,
    /// Whole exports(5) lines to serve instead of `{export} {clients}`, when not empty.
    export_lines: Vec<String>,
    limits: Limits,
    nfs_over_udp: bool,
    configure: Option<Configure>,
}

/// How to start a [`TestServer`]; by default one export of a fresh directory to `*(`[`RW`]`)`.
pub struct TestServerBuilder {
    export: Option<TempDir>,
    export_under: Option<PathBuf>,
    clients: String,
    export_lines: Vec<String>,
    limits: Limits,
    nfs_over_udp: bool,
    configure: Option<Configure>,
}

impl TestServerBuilder {
    /// The export is open to everyone with these exports(5) options: `*(options)`.
    pub fn options(self, options: &str) -> Self {
        self.clients(&format!("*({options})"))
    }

    /// The export's client list as in exports(5), e.g. `127.0.0.1(rw,insecure)`.
    pub fn clients(mut self, clients: &str) -> Self {
        self.clients = clients.to_string();
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The export is a fresh directory made under `parent` (`/dev/shm` for a tmpfs export, where
    /// calls may run on the async workers; a disk directory for the blocking pool).
    pub fn export_under(mut self, parent: &Path) -> Self {
        self.export_under = Some(parent.to_path_buf());
        self
    }

    /// Serve these whole exports(5) `lines` (several exports, or exports below `base`); `base`
    /// is kept as [`TestServer::export_path`] so that it lives as long as the server.
    pub fn export_lines(mut self, base: TempDir, lines: &[String]) -> Self {
        self.export = Some(base);
        self.export_lines = lines.to_vec();
        self
    }

    /// NFS is served over UDP too (`--udp`).
    pub fn nfs_over_udp(mut self) -> Self {
        self.nfs_over_udp = true;
        self
    }

    /// Any other change to the configuration (the portmapper, a MOUNT port...), made after the
    /// builder's own at every start.
    pub fn configure(mut self, f: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// Starts the server; panics if it does not start.
    pub fn start(self) -> TestServer {
        let export = match (self.export, &self.export_under) {
            (Some(base), _) => base,
            (None, parent) => {
                let dir = match parent {
                    Some(parent) => tempfile::tempdir_in(parent).unwrap(),
                    None => tempfile::tempdir().unwrap(),
                };
                // Everyone may create here, so that tests acting as other users can.
                std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))
                    .unwrap();
                dir
            }
        };
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut ts = TestServer {
            runtime,
            server: None,
            export,
            state: tempfile::tempdir().unwrap(),
            clients: self.clients,
            export_lines: self.export_lines,
            limits: self.limits,
            nfs_over_udp: self.nfs_over_udp,
            configure: self.configure,
        };
        ts.boot();
        ts
    }
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            export: None,
            export_under: None,
            clients: format!("*({RW})"),
            export_lines: Vec::new(),
            limits: Limits::default(),
            nfs_over_udp: false,
            configure: None,
        }
    }

    /// A server exporting a fresh directory with `*(options)`.
    pub fn start(options: &str) -> TestServer {
        TestServer::builder().options(options).start()
    }

    /// A server exporting a fresh directory with `*(options)` under the given limits.
    pub fn with_limits(options: &str, limits: Limits) -> TestServer {
        TestServer::builder().options(options).limits(limits).start()
    }

    /// A server exporting a fresh directory made under `parent` (e.g. `/dev/shm`, for the
    /// memory-backed execution paths) with `*(options)`.
    pub fn start_under(parent: &Path, options: &str) -> TestServer {
        TestServer::builder().options(options).export_under(parent).start()
    }

    /// A server exporting a fresh directory made under `parent` with `*(options)` and `limits`.
    pub fn with_export_in(options: &str, limits: Limits, parent: &Path) -> TestServer {
        TestServer::builder().options(options).limits(limits).export_under(parent).start()
    }

    /// A server with the given exports(5) `lines`; see [`TestServerBuilder::export_lines`].
    pub fn with_export_lines(base: TempDir, lines: &[String]) -> TestServer {
        TestServer::builder().export_lines(base, lines).start()
    }

    /// The default export: `*(`[`RW`]`)`.
    pub fn rw() -> TestServer {
        TestServer::builder().start()
    }

    /// This server restarted with NFS over UDP enabled (`--udp`).
    pub fn with_nfs_over_udp(mut self) -> TestServer {
        self.nfs_over_udp = true;
        self.restart();
        self
    }

    /// From the next [`TestServer::restart`] on, the export is open to everyone with `options`.
    pub fn set_options(&mut self, options: &str) {
        self.set_clients(&format!("*({options})"));
    }

    /// From the next [`TestServer::restart`] on, the export's client list is `clients`.
    pub fn set_clients(&mut self, clients: &str) {
        self.clients = clients.to_string();
        self.export_lines.clear();
    }

    fn specs(&self) -> Vec<ExportSpec> {
        if !self.export_lines.is_empty() {
            return self.export_lines.iter().map(|l| parse_export_line(l, "test").unwrap()).collect();
        }
        let line = format!("{} {}", self.export.path().display(), self.clients);
        vec![parse_export_line(&line, "test").unwrap()]
    }

    fn boot(&mut self) {
        let mut config = Config::for_tests(self.specs(), self.state.path().to_path_buf());
        config.limits = self.limits.clone();
        config.nfs_over_udp = self.nfs_over_udp;
        if let Some(configure) = &self.configure {
            configure(&mut config);
        }
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

    /// The running server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is running")
    }

    /// The runtime the server runs on, for starting things beside it (a fault proxy).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// NFS (and MOUNT) over TCP.
    pub fn addr(&self) -> SocketAddr {
        self.server().addrs().nfs_tcp
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.server().addrs().nfs_udp
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.export.path().join(rel)
    }

    pub fn export_path(&self) -> &Path {
        self.export.path()
    }

    pub fn state_path(&self) -> &Path {
        self.state.path()
    }

    pub fn stats(&self) -> rnfsd::rpc::stats::StatsSnapshot {
        self.server().stats()
    }

    pub fn tcp_stats(&self) -> rnfsd::rpc::transport::TcpStats {
        self.server().tcp_stats()
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
