//! Network locking: NLM version 4 and NSM version 1, served by rnfsd itself on the NFS port.
//! Locks are real host locks (one open file description per owner and file, with OFD locks), so
//! the host's own processes and NFS clients see each other's locks.
//!
//! - `ranges`: the ranges one owner holds on one file;
//! - `table`: the lock table, waiters, recorded clients and the grace period;
//! - `store`: the NSM state number and the recorded clients in the state directory;
//! - `monitor`: the hosts this host's own lock manager asked rnfsd, as its status monitor, to
//!   watch;
//! - `service`: the NLM and NSM procedure tables;
//! - `callback`: calls to clients (GRANTED, `_RES`, SM_NOTIFY).
//!
//! [`Locking::start`] wires them and spawns the three background tasks: the callback sender, the
//! poll (waiters blocked by host processes, unclaimed grants, the end of grace), and after a
//! restart the SM_NOTIFY to every recorded client (and, after a reboot, to every server this
//! host's lock manager had asked to monitor).

pub mod callback;
pub mod monitor;
pub mod ranges;
pub mod service;
pub mod store;
pub mod table;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use xdr::Xdr;
use xdr::nlm::{nlm4_proc, nlm4_res, nlm4_stats, nlm4_testargs};
use xdr::nsm::stat_chge;

pub use service::{NlmService, NsmService};
pub use table::{LockCounts, LockTable};

use crate::config::LockConfig;
use crate::nfsd::NfsService;
use crate::rpc::Transport;
use monitor::Monitors;
use store::ClientStore;
use table::{Grant, Outgoing};

/// How long one callback step (GETPORT, the call) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// GRANTED attempts for one grant before leaving it to the client's re-sent LOCK.
const GRANTED_ATTEMPTS: u32 = 3;
/// SM_NOTIFY back-off: the first retry after 2 s, doubling up to 120 s, giving up after 15 min
/// (as nfs-utils' sm-notify).
const NOTIFY_FIRST_RETRY: Duration = Duration::from_secs(2);
const NOTIFY_MAX_RETRY: Duration = Duration::from_secs(120);
const NOTIFY_GIVE_UP: Duration = Duration::from_secs(15 * 60);

/// The running lock manager.
pub struct Locking {
    pub nlm: Arc<NlmService>,
    pub nsm: Arc<NsmService>,
    pub table: Arc<LockTable>,
    pub state: i32,
}

impl Locking {
    /// Advances the NSM state, loads the clients recorded by the previous run (a grace period
    /// starts when there are any), and spawns the background tasks.
    pub fn start(
        config: &LockConfig,
        state_dir: &Path,
        nfs: Arc<NfsService>,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<Locking> {
        let state = store::advance_state(state_dir)?;
        let clients = ClientStore::new(state_dir);
        let previous = clients.load()?;
        let (monitors, servers_to_tell) = Monitors::load(state_dir)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let table = Arc::new(LockTable::new(config.clone(), clients, previous.clone(), tx.clone()));
        if table.in_grace() {
            tracing::info!(
                "lock grace period of {} s: {} client(s) held locks before the restart and may reclaim them",
                config.grace.as_secs(),
                previous.len()
            );
        }
        let nlm = Arc::new(NlmService::new(nfs, table.clone(), tx.clone()));
        let nsm = Arc::new(NsmService::new(table.clone(), Arc::new(monitors), state, state_dir, tx));
        tracker.spawn(send_callbacks(rx, table.clone(), config.peer_portmap_port, shutdown.clone()));
        tracker.spawn(poll(table.clone(), config.poll_interval, shutdown.clone()));
        for client in previous {
            // Named by the address it used, as it knows this server.
            let notice = Notice { to: client.addr, from: client.local, mon_name: client.local.to_string() };
            tracker.spawn(notify(notice, state, config.peer_portmap_port, shutdown.clone()));
        }
        if !servers_to_tell.is_empty() {
            tracing::info!(
                "this host rebooted: telling {} server(s) its lock manager used (SM_NOTIFY)",
                servers_to_tell.len()
            );
        }
        for host in servers_to_tell {
            tracker.spawn(notify_monitored(host, state, config.peer_portmap_port, shutdown.clone()));
        }
        Ok(Locking { nlm, nsm, table, state })
    }
}

async fn send_callbacks(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Outgoing>,
    table: Arc<LockTable>,
    pmap_port: u16,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = rx.recv() => next,
        };
        let Some(out) = next else { return };
        match out {
            Outgoing::Granted(grant) => {
                tokio::spawn(send_granted(grant, table.clone(), pmap_port, shutdown.clone()));
            }
            Outgoing::Status { prog, vers, proc_, body, slot } => {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    send_status(prog, vers, proc_, body, pmap_port, shutdown).await;
                    drop(slot);
                });
            }
            Outgoing::Reboot { host, state } => {
                tokio::spawn(notify_monitored(host, state, pmap_port, shutdown.clone()));
            }
            Outgoing::Res { to, from, proc_, body, slot } => {
                tokio::spawn(async move {
                    let sent = async {
                        let nlm = callback::getport(
                            from,
                            to,
                            pmap_port,
                            xdr::nlm::PROGRAM,
                            xdr::nlm::VERSION_4,
                            Transport::Tcp,
                            CALL_TIMEOUT,
                        )
                        .await?;
                        callback::call(
                            from,
                            nlm,
                            Transport::Tcp,
                            xdr::nlm::PROGRAM,
                            xdr::nlm::VERSION_4,
                            proc_,
                            &body,
                            CALL_TIMEOUT,
                        )
                        .await
                    };
                    if let Err(e) = sent.await {
                        tracing::debug!(client = %to, "could not send the _RES answer: {e}");
                    }
                    drop(slot);
                });
            }
        }
    }
}

/// Sends GRANTED for a lock taken for a waiter, a few times; the client's answer confirms the
/// lock or (DENIED: it no longer waits) releases it.
async fn send_granted(grant: Box<Grant>, table: Arc<LockTable>, pmap_port: u16, shutdown: CancellationToken) {
    let w = &grant.waiter;
    let args = nlm4_testargs { cookie: w.cookie.clone(), exclusive: w.exclusive, alock: w.alock.clone() };
    let mut body = BytesMut::new();
    args.encode(&mut body);
    for attempt in 1..=GRANTED_ATTEMPTS {
        let sent = async {
            let to = callback::getport(
                w.local,
                w.owner.addr,
                pmap_port,
                xdr::nlm::PROGRAM,
                xdr::nlm::VERSION_4,
                Transport::Tcp,
                CALL_TIMEOUT,
            )
            .await?;
            let res = callback::call(
                w.local,
                to,
                Transport::Tcp,
                xdr::nlm::PROGRAM,
                xdr::nlm::VERSION_4,
                nlm4_proc::GRANTED,
                &body,
                CALL_TIMEOUT,
            )
            .await?;
            nlm4_res::decode(&mut xdr::Reader::new(res))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
        };
        // A client that accepts the connection and never answers holds a send for its
        // timeouts (GETPORT, then the call), and this task holds the table and every lock in it:
        // it ends with the stop instead of outliving it.
        let sent = tokio::select! {
            _ = shutdown.cancelled() => return,
            sent = sent => sent,
        };
        match sent {
            Ok(res) if res.stat == nlm4_stats::Granted => {
                table.claimed(&grant.fh, w);
                return;
            }
            Ok(res) => {
                tracing::info!(client = %w.owner.addr, "GRANTED refused ({:?}): releasing the lock", res.stat);
                let (table, fh, w) = (table.clone(), grant.fh.clone(), w.clone());
                let _ = tokio::task::spawn_blocking(move || table.refused(&fh, &w)).await;
                return;
            }
            Err(e) => {
                tracing::info!(client = %w.owner.addr, attempt, "GRANTED callback failed: {e}");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CALL_TIMEOUT) => {}
        }
    }
}

async fn poll(table: Arc<LockTable>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let t = table.clone();
        let _ = tokio::task::spawn_blocking(move || t.poll()).await;
    }
}

/// The status monitor's callback to this host's lock manager: the `status` of a monitored host
/// that restarted, to the program its SM_MON named, on loopback from a privileged port (the Linux
/// lockd accepts it from nowhere else). A few attempts, as statd.
async fn send_status(
    prog: u32,
    vers: u32,
    proc_: u32,
    body: Bytes,
    pmap_port: u16,
    shutdown: CancellationToken,
) {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for attempt in 1..=GRANTED_ATTEMPTS {
        let sent = async {
            let to = callback::getport(lo, lo, pmap_port, prog, vers, Transport::Udp, CALL_TIMEOUT).await?;
            let from = callback::Source { ip: lo, reserved_port: true };
            callback::call(from, to, Transport::Udp, prog, vers, proc_, &body, CALL_TIMEOUT).await
        };
        let sent = tokio::select! {
            _ = shutdown.cancelled() => return,
            sent = sent => sent,
        };
        match sent {
            Ok(_) => return,
            Err(e) => {
                tracing::info!(attempt, "could not tell this host's lock manager of a restarted server: {e}")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CALL_TIMEOUT) => {}
        }
    }
}

/// An SM_NOTIFY to send: to whom, from which local address, and the name it gives this host.
struct Notice {
    to: IpAddr,
    from: IpAddr,
    mon_name: String,
}

/// Tells a server this host's lock manager used that this host restarted, so it releases the
/// locks this host held there: the server named as the lock manager named it (an address, or a
/// name to resolve), this host named as its lock manager names itself (its host name).
async fn notify_monitored(host: Bytes, state: i32, pmap_port: u16, shutdown: CancellationToken) {
    let name = String::from_utf8_lossy(&host).into_owned();
    let to = match name.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => tokio::time::timeout(CALL_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|mut addrs| addrs.next())
            .map(|a| a.ip()),
    };
    let Some(to) = to else {
        tracing::warn!(server = %crate::logsafe::escaped(&host), "cannot tell the server this host restarted: its name does not resolve");
        return;
    };
    let from = if to.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    };
    notify(Notice { to, from, mon_name: callback::host_name() }, state, pmap_port, shutdown).await;
}

/// Sends an SM_NOTIFY with state `state` until it is answered, with back-off: to a client
/// recorded by the previous run, so it reclaims its locks, or to a server this host locked on.
async fn notify(n: Notice, state: i32, pmap_port: u16, shutdown: CancellationToken) {
    let mut args = BytesMut::new();
    stat_chge { mon_name: n.mon_name.as_str().into(), state }.encode(&mut args);
    let started = tokio::time::Instant::now();
    let mut wait = NOTIFY_FIRST_RETRY;
    loop {
        let sent = async {
            let mut last = None;
            for transport in [Transport::Udp, Transport::Tcp] {
                let to: std::io::Result<SocketAddr> = callback::getport(
                    n.from,
                    n.to,
                    pmap_port,
                    xdr::nsm::PROGRAM,
                    xdr::nsm::VERSION_1,
                    transport,
                    CALL_TIMEOUT,
                )
                .await;
                match to {
                    Ok(to) => match callback::call(
                        n.from,
                        to,
                        transport,
                        xdr::nsm::PROGRAM,
                        xdr::nsm::VERSION_1,
                        xdr::nsm::sm_proc::NOTIFY,
                        &args,
                        CALL_TIMEOUT,
                    )
                    .await
                    {
                        Ok(_) => return Ok(()),
                        Err(e) => last = Some(e),
                    },
                    Err(e) => last = Some(e),
                }
            }
            Err(last.expect("two attempts"))
        };
        // Up to four steps of CALL_TIMEOUT each (GETPORT and the call, over UDP then TCP): a stop
        // does not wait for them.
        let sent = tokio::select! {
            _ = shutdown.cancelled() => return,
            sent = sent => sent,
        };
        match sent {
            Ok(()) => {
                tracing::info!(peer = %n.to, state, "told the peer of the restart (SM_NOTIFY)");
                return;
            }
            Err(e) if started.elapsed() + wait > NOTIFY_GIVE_UP => {
                tracing::warn!(peer = %n.to, "gave up telling the peer of the restart: {e}");
                return;
            }
            Err(e) => tracing::debug!(peer = %n.to, "SM_NOTIFY failed, retrying in {wait:?}: {e}"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(NOTIFY_MAX_RETRY);
    }
}
