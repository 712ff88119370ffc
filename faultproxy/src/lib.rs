//! rnfsd-faultproxy: a fault-injecting ONC RPC proxy for tests. It listens on a loopback address,
//! forwards every client's traffic to one upstream RPC server (TCP: one upstream connection per
//! client connection; UDP: one upstream socket per client address), reads each call's xid,
//! program and procedure, matches replies to calls by xid, and applies armed [`Rule`]s: swallow a
//! reply, swallow it and drop the connection, close after forwarding, delay a call or a reply,
//! duplicate a call, reorder two calls. Every fault that takes effect is recorded in an
//! [`EventLog`].
//!
//! Modules: [`rule`] (rules, their text form, the armed set), [`event`] (the log), [`wire`]
//! (call/reply parsing, record marking, the pending-call table), `tcp` and `udp` (the
//! forwarders), [`control`] (the line protocol of the control socket).
//!
//! From a Rust test:
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> std::io::Result<()> {
//! use rnfsd_faultproxy::{FaultProxy, Rule};
//! let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), server).await?;
//! proxy.add_rule("drop-reply-close REMOVE".parse::<Rule>().unwrap());
//! // ... point a client at proxy.addr() ...
//! assert!(proxy.fired().iter().any(|e| e.call.proc_ == 12));
//! proxy.shutdown();
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

pub mod control;
pub mod event;
pub mod rule;
mod tcp;
mod udp;
pub mod wire;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

pub use event::{CallId, Event, EventKind, EventLog, Sink};
pub use rule::{Action, Rule, RuleParseError};

use rule::RuleSet;

/// Which transport the proxy carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tcp,
    Udp,
}

/// How to start a proxy.
pub struct ProxyOptions {
    /// Where clients connect; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The RPC server behind the proxy.
    pub upstream: SocketAddr,
    pub mode: Mode,
    /// Log every call and reply too, not only the faults.
    pub log_traffic: bool,
    /// Where event lines go besides memory.
    pub sink: Option<Sink>,
}

/// State shared by the forwarders, the handle and the control socket.
pub(crate) struct Shared {
    pub(crate) rules: Mutex<RuleSet>,
    pub(crate) log: EventLog,
    next_conn: AtomicU64,
}

impl Shared {
    /// Decides the fate of one call (see [`RuleSet::on_call`]).
    pub(crate) fn on_call(&self, prog: u32, proc_: u32) -> Option<Action> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).on_call(prog, proc_)
    }

    pub(crate) fn new_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Resolves once the proxy is told to stop (or its handle is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here rather than across an await.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// A cloneable handle on a running proxy's rules and log, for the control socket.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    pub fn add_rule(&self, rule: Rule) {
        self.shared.rules.lock().unwrap_or_else(|e| e.into_inner()).add(rule);
    }

    /// Disarms every rule.
    pub fn clear_rules(&self) {
        self.shared.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The rules that can still fire, in their text form with what is left of them.
    pub fn rules(&self) -> Vec<String> {
        self.shared.rules.lock().unwrap_or_else(|e| e.into_inner()).describe()
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.shared.log.snapshot()
    }
}

/// A running proxy. Dropping it (or [`FaultProxy::shutdown`]) stops it and closes every proxied
/// connection.
pub struct FaultProxy {
    addr: SocketAddr,
    control: Control,
    stop: watch::Sender<bool>,
}

impl FaultProxy {
    /// A TCP proxy from `listen` to `upstream` on the current tokio runtime, keeping calls,
    /// replies and faults in its in-memory log.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        Self::start_with(ProxyOptions { listen, upstream, mode: Mode::Tcp, log_traffic: true, sink: None })
            .await
    }

    /// The same over UDP.
    pub async fn start_udp(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        Self::start_with(ProxyOptions { listen, upstream, mode: Mode::Udp, log_traffic: true, sink: None })
            .await
    }

    pub async fn start_with(options: ProxyOptions) -> io::Result<FaultProxy> {
        let shared = Arc::new(Shared {
            rules: Mutex::default(),
            log: EventLog::new(options.sink, options.log_traffic),
            next_conn: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let addr = match options.mode {
            Mode::Tcp => {
                let listener = TcpListener::bind(options.listen).await?;
                let addr = listener.local_addr()?;
                tokio::spawn(tcp::serve(listener, options.upstream, shared.clone(), stopped));
                addr
            }
            Mode::Udp => {
                let socket = UdpSocket::bind(options.listen).await?;
                let addr = socket.local_addr()?;
                tokio::spawn(udp::serve(Arc::new(socket), options.upstream, shared.clone(), stopped));
                addr
            }
        };
        Ok(FaultProxy { addr, control: Control { shared }, stop })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn add_rule(&self, rule: Rule) {
        self.control.add_rule(rule);
    }

    pub fn clear_rules(&self) {
        self.control.clear_rules();
    }

    pub fn rules(&self) -> Vec<String> {
        self.control.rules()
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.control.events()
    }

    /// Only the faults that took effect.
    pub fn fired(&self) -> Vec<Event> {
        self.events().into_iter().filter(|e| e.fired().is_some()).collect()
    }

    /// A handle on the rules and the log that outlives borrowing the proxy.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Stops accepting and closes every proxied connection.
    pub fn shutdown(self) {}
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
