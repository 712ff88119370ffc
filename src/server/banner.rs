//! The startup banner: what is exported to whom with which options, the handle mode and key,
//! the identity requests run with, every bound address, what came of the portmapper policy, and a
//! mount command to copy. An operator reads it to check the server is serving what they meant.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::Server;
use super::register::PortmapOutcome;
use crate::config::{DEFAULT_MOUNT_PORT, DEFAULT_NFS_PORT, DEFAULT_PORTMAP_PORT};

impl Server {
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
            let why = if crate::fs::cred::situation().user_ns.is_some() {
                "open_by_handle_at needs CAP_DAC_READ_SEARCH in the initial user namespace, which a \
                 process in a user namespace (a rootless container) cannot have"
            } else {
                "open_by_handle_at needs CAP_DAC_READ_SEARCH"
            };
            let _ = writeln!(
                b,
                "  WARNING: the export root's handle does not resolve ({reason}); {why}, without it every \
                 request fails with a stale handle"
            );
        }
        let _ = writeln!(b, "identity: {}", identity_line(crate::fs::cred::situation()));
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
        let locks = match (&self.locks, self.addrs.nfs_tcp.port()) {
            (None, _) => "off (--no-locks): clients must mount with nolock".to_string(),
            (Some(t), port) => {
                let grace = if t.counts().grace {
                    format!("grace period of {} s for reclaims", self.config.locks.grace.as_secs())
                } else {
                    "no grace period".to_string()
                };
                format!("NLM v4 and NSM v1 on port {port} (tcp and udp), {grace}")
            }
        };
        let _ = writeln!(b, "locks: {locks}");
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
        // The client's lock manager finds NLM through the portmapper on port 111 (no mount
        // option names the NLM port): without one, or with locking off, it must not lock.
        if self.locks.is_none() || !portmapper_on_111 {
            opts.push_str(",nolock");
        }
        let host = display_host(self.config.bind);
        self.nfs
            .exports()
            .list()
            .iter()
            .map(|e| format!("mount -t nfs -o {opts} {host}:{} /mnt", e.spec.path.display()))
            .collect()
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

/// The banner's identity line: whom requests run as, and why, from the real situation.
fn identity_line(s: &crate::fs::cred::Situation) -> String {
    match (s.can_switch, s.user_ns.is_some()) {
        (true, false) => "running as root: requests run with the caller's uid/gid".to_string(),
        (true, true) => format!(
            "uid {} of a user namespace (uid {} outside, {} uids mapped): requests run with the caller's \
             uid/gid; callers whose uid or gid is not mapped are refused",
            s.euid,
            outside(s),
            s.mapped_uids()
        ),
        (false, true) if s.mapped_uids() <= 1 => format!(
            "uid {} of a user namespace that maps no other uid (uid {} outside): every request runs as it, \
             ownership is not mapped",
            s.euid,
            outside(s)
        ),
        (false, _) => {
            let why = if s.euid == 0 { "root without CAP_SETUID and CAP_SETGID" } else { "not root" };
            let ns = if s.user_ns.is_some() { " of a user namespace" } else { "" };
            format!("{why}: every request runs as uid {}{ns}, ownership is not mapped", s.euid)
        }
    }
}

/// What the server's uid is outside its user namespace, for the banner.
fn outside(s: &crate::fs::cred::Situation) -> String {
    s.outside_uid(s.euid).map_or_else(|| "unmapped".to_string(), |u| u.to_string())
}
