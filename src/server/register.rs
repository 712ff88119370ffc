//! Making the services known to portmapper clients (`rpcinfo`, `showmount`, `mount`): what this
//! server registers, the embedded portmapper's registry, and registration with a system rpcbind
//! and its removal at shutdown. [`PortmapOutcome`] is what came of the `--portmap` policy; the
//! banner reports it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::BoundAddrs;
use crate::config::PortmapMode;
use crate::mountd::MountService;
use crate::nfsd::NfsService;
use crate::nlm::{NlmService, NsmService};
use crate::portmap::PortmapService;
use crate::portmap::{
    PmapClient, Registry, RpcbindTarget, Service, find_system, register_with_system, registered_elsewhere,
    unregister_with,
};
use crate::rpc::{RpcService, Transport};

pub(super) const NFS_PROGRAM: u32 = <NfsService as RpcService>::PROGRAM;
pub(super) const MOUNT_PROGRAM: u32 = <MountService as RpcService>::PROGRAM;
pub(super) const NLM_PROGRAM: u32 = <NlmService as RpcService>::PROGRAM;
pub(super) const NSM_PROGRAM: u32 = <NsmService as RpcService>::PROGRAM;
pub(super) const PMAP_PROGRAM: u32 = <PortmapService as RpcService>::PROGRAM;

/// The version numbers a program's tables serve: what is registered is what is served.
fn versions<S: RpcService>() -> impl Iterator<Item = u32> {
    S::VERSIONS.iter().map(|v| v.number)
}

/// What came of the portmapper policy.
#[derive(Debug, Clone)]
pub(super) enum PortmapOutcome {
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

/// What this server registers with a portmapper: NFS v3 on the NFS port, MOUNT v1..=v3 on the
/// MOUNT port (the NFS port when there is none), each on TCP and UDP, except NFS over UDP when it
/// is not served, and with `locks` NLM v4 and NSM v1 on the NFS port.
pub(super) fn services(addrs: &BoundAddrs, nfs_over_udp: bool, locks: bool) -> Vec<Service> {
    let nfs = addrs.nfs_tcp.port();
    let mount = addrs.mount_tcp.map_or(nfs, |a| a.port());
    let mut v = Vec::new();
    for transport in [Transport::Tcp, Transport::Udp] {
        if transport == Transport::Tcp || nfs_over_udp {
            v.extend(versions::<NfsService>().map(|vers| (NFS_PROGRAM, vers, transport, nfs)));
        }
        for vers in versions::<MountService>() {
            v.push((MOUNT_PROGRAM, vers, transport, mount));
        }
        if locks {
            v.extend(versions::<NlmService>().map(|vers| (NLM_PROGRAM, vers, transport, nfs)));
            v.extend(versions::<NsmService>().map(|vers| (NSM_PROGRAM, vers, transport, nfs)));
        }
    }
    v
}

/// The embedded portmapper's registry: the portmapper itself on `portmap_port` first, as rpcbind
/// lists itself, then `services`, all at the bound address `bind`.
pub(super) fn embedded_registry(bind: IpAddr, portmap_port: u16, services: &[Service]) -> Arc<Registry> {
    let registry = Arc::new(Registry::new());
    for vers in versions::<PortmapService>() {
        for transport in [Transport::Tcp, Transport::Udp] {
            registry.register(PMAP_PROGRAM, vers, transport, SocketAddr::new(bind, portmap_port));
        }
    }
    for &(prog, vers, transport, port) in services {
        registry.register(prog, vers, transport, SocketAddr::new(bind, port));
    }
    registry
}

/// Registers `services` with the system rpcbind (its local socket, then UDP on loopback
/// `portmap_port`), for `--portmap register` or an `auto` that could not serve the embedded
/// portmapper. Under `auto` a failure is warned about (clients then need `port=` and
/// `mountport=`) and the server goes on; otherwise it is the error returned.
pub(super) async fn register_with_rpcbind(
    mode: PortmapMode,
    portmap_port: u16,
    services: Vec<Service>,
    addrs: &BoundAddrs,
) -> Result<PortmapOutcome, String> {
    let to_register = services.clone();
    let registered = tokio::task::spawn_blocking(move || {
        register_with_system(portmap_port, &to_register).map_err(|e| e.to_string())
    })
    .await;
    let registered = registered.unwrap_or_else(|e| Err(format!("registration task failed: {e}")));
    match (registered, mode) {
        (Ok(target), _) => Ok(PortmapOutcome::Registered { target, services }),
        (Err(reason), PortmapMode::Auto) => {
            tracing::warn!(
                "no portmapper: {reason}. rpcinfo and showmount will not see this server, and clients must \
                 mount with -o port={},mountport={}",
                addrs.nfs_tcp.port(),
                addrs.mount_tcp.unwrap_or(addrs.nfs_tcp).port()
            );
            Ok(PortmapOutcome::Unavailable { reason })
        }
        (Err(reason), _) => Err(reason),
    }
}

/// Before registering with the system rpcbind with locking on: fails when another process has
/// NLM v4 or NSM v1 registered there at a port that is not rnfsd's NFS port (most likely the
/// kernel's lockd and rpc.statd). Clients would send their lock calls or reboot notices to it, and
/// rnfsd cannot take over its registrations: it never removes them. When no rpcbind answers, or it
/// cannot be asked, this decides nothing: the registration that follows reports it. So does it
/// when NFS v3 itself is registered elsewhere (another NFS server, whose lock manager that is).
pub(super) async fn check_other_lock_manager(portmap_port: u16, nfs_port: u16) -> Result<(), String> {
    let programs: Vec<(u32, u32)> = versions::<NfsService>()
        .map(|v| (NFS_PROGRAM, v))
        .chain(versions::<NlmService>().map(|v| (NLM_PROGRAM, v)))
        .chain(versions::<NsmService>().map(|v| (NSM_PROGRAM, v)))
        .collect();
    let found = tokio::task::spawn_blocking(move || {
        let client = find_system(portmap_port).ok()?;
        let held = registered_elsewhere(&client, &programs, nfs_port).ok()?;
        Some((client.target().clone(), held))
    })
    .await;
    let Ok(Some((target, held))) = found else { return Ok(()) };
    if held.is_empty() || held.iter().any(|s| s.0 == NFS_PROGRAM) {
        return Ok(());
    }
    Err(other_lock_manager(&target, &held))
}

/// The startup error for [`check_other_lock_manager`]: what is held where, what it most likely
/// is, and the ways out.
fn other_lock_manager(target: &RpcbindTarget, held: &[Service]) -> String {
    let mut programs: Vec<(u32, u32)> = Vec::new();
    for &(prog, vers, _, _) in held {
        if !programs.contains(&(prog, vers)) {
            programs.push((prog, vers));
        }
    }
    programs.sort_unstable();
    let mut what = Vec::new();
    for &(prog, vers) in &programs {
        let name = if prog == NLM_PROGRAM { "NLM" } else { "NSM" };
        let mine: Vec<&Service> = held.iter().filter(|s| (s.0, s.1) == (prog, vers)).collect();
        let mut ports: Vec<u16> = Vec::new();
        for s in &mine {
            if !ports.contains(&s.3) {
                ports.push(s.3);
            }
        }
        let at: Vec<String> = ports
            .iter()
            .map(|&port| {
                let on: Vec<&str> = mine
                    .iter()
                    .filter(|s| s.3 == port)
                    .map(|s| if s.2 == Transport::Tcp { "tcp" } else { "udp" })
                    .collect();
                format!("port {port} ({})", on.join(" and "))
            })
            .collect();
        what.push(format!("{name} (program {prog} version {vers}) at {}", at.join(", ")));
    }
    let removals: Vec<String> = programs.iter().map(|(p, v)| format!("rpcinfo -d {p} {v}")).collect();
    format!(
        "another lock manager is registered with the system rpcbind ({target}): {}. It is most likely the \
         kernel's lockd and rpc.statd (packages nfs-common, nfs-kernel-server), and clients would send their \
         locks and reboot notices to it instead of to rnfsd. Either stop it (e.g. `systemctl stop rpc-statd \
         nfs-server`, and unmount this host's NFS mounts, which keep lockd running), or start rnfsd with \
         --no-locks (rnfsd then serves no NLM, and clients must mount with nolock). rnfsd never removes \
         another program's registration; one left behind by a process that is gone can be removed with {}",
        what.join("; "),
        removals.join(" and ")
    )
}

/// Removes the registrations made at startup from the rpcbind that took them, if any.
pub(super) async fn unregister(outcome: PortmapOutcome) {
    let PortmapOutcome::Registered { target, services } = outcome else { return };
    let done =
        tokio::task::spawn_blocking(move || unregister_with(&PmapClient::new(target), &services)).await;
    match done {
        Ok(Ok(())) => tracing::info!("removed the registrations from the system rpcbind"),
        Ok(Err(e)) => tracing::warn!("could not remove the registrations from rpcbind: {e}"),
        Err(e) => tracing::warn!("could not remove the registrations from rpcbind: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = services(&addrs, true, false);
        assert_eq!(s.len(), 8);
        assert!(s.iter().all(|&(_, _, _, port)| port == 2049));
        addrs.mount_tcp = Some(a(20048));
        let s = services(&addrs, true, false);
        assert!(s.contains(&(MOUNT_PROGRAM, 3, Transport::Udp, 20048)));
        assert!(s.contains(&(NFS_PROGRAM, 3, Transport::Tcp, 2049)));
    }

    #[test]
    fn other_lock_manager_names_each_program_and_its_ports() {
        let target = RpcbindTarget::Local("/run/rpcbind.sock".into());
        let held = [
            (NLM_PROGRAM, 4, Transport::Tcp, 4045),
            (NLM_PROGRAM, 4, Transport::Udp, 4045),
            (NSM_PROGRAM, 1, Transport::Tcp, 662),
            (NSM_PROGRAM, 1, Transport::Udp, 663),
        ];
        let msg = other_lock_manager(&target, &held);
        assert!(
            msg.starts_with(
                "another lock manager is registered with the system rpcbind (/run/rpcbind.sock): NLM (program \
                 100021 version 4) at port 4045 (tcp and udp); NSM (program 100024 version 1) at port 662 (tcp), \
                 port 663 (udp). It is most likely the kernel's lockd and rpc.statd"
            ),
            "{msg}"
        );
        assert!(msg.ends_with("rpcinfo -d 100021 4 and rpcinfo -d 100024 1"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}
