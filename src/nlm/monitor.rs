//! The status monitor rnfsd is for this host's own lock manager. rnfsd owns NSM (program 100024)
//! on its host, so the host's NFS client (the kernel's lockd, when it mounts another server with
//! locking) asks rnfsd, as it would ask rpc.statd, to watch the servers it holds locks on
//! (SM_MON), and is called back (the `my_id` of the request, with its 16 `priv` bytes) when one of
//! them sends SM_NOTIFY. This module keeps those monitors.
//!
//! - Only this host may ask: the caller's address is the address it reached, from a privileged
//!   port (statd asks only the first; any local user could otherwise have root's rnfsd call
//!   local programs from a privileged port).
//! - The callback can only go to the lock manager (program 100021) on this host's loopback, never
//!   to the `my_name` the caller gave (as statd).
//! - A notice matches a monitor when it names the monitored host or comes from its address.
//! - The monitors are kept in the state directory (`nsm-monitors`) with the boot they were made
//!   in (the kernel's `boot_id`): after a reboot of this host they are the servers to tell that it
//!   restarted (as sm-notify does at boot) and are forgotten; after a restart of rnfsd alone, the
//!   host's lock manager still holds its locks and monitors, so they are kept and nobody is told.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use super::store::{escape_name, unescape_name};
use crate::fs::state::write_atomically;

const MONITORS_FILE: &str = "nsm-monitors";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Monitors kept at once: one per (server, local program) pair; a host's lockd asks one per
/// server it locks on.
pub const MAX_MONITORS: usize = 1024;

/// One SM_MON request: the host watched, and the local program to call back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    pub mon_name: Bytes,
    pub callback: Callback,
    pub priv_: [u8; 16],
}

/// The `my_id` of a request: the program called back when a monitored host restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The name the caller gave itself (kept to match UNMON; the callback goes to loopback).
    pub my_name: Bytes,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
}

/// Why a monitor was not added.
#[derive(Debug)]
pub enum MonitorError {
    /// MAX_MONITORS are kept already.
    Full,
    /// The state directory could not record it.
    Io(io::Error),
}

/// The monitors, as kept in the state directory.
pub struct Monitors {
    dir: PathBuf,
    boot: String,
    list: Mutex<Vec<Monitor>>,
}

fn boot_id() -> String {
    std::fs::read_to_string(BOOT_ID).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn parse_line(line: &str) -> Option<Monitor> {
    let parts: Vec<&str> = line.split(' ').collect();
    let ["monitor", prog, vers, proc_, priv_, mon_name, my_name] = parts.as_slice() else { return None };
    let priv_bytes = unescape_name(priv_)?;
    Some(Monitor {
        mon_name: Bytes::from(unescape_name(mon_name)?),
        callback: Callback {
            my_name: Bytes::from(unescape_name(my_name)?),
            prog: prog.parse().ok()?,
            vers: vers.parse().ok()?,
            proc_: proc_.parse().ok()?,
        },
        priv_: priv_bytes.try_into().ok()?,
    })
}

impl Monitors {
    /// The monitors of the previous run, and the hosts to tell that this host restarted: those
    /// monitored before a reboot (then the list starts empty), none after a restart of rnfsd
    /// alone (then the list is kept).
    pub fn load(dir: &Path) -> io::Result<(Monitors, Vec<Bytes>)> {
        Self::load_in_boot(dir, boot_id())
    }

    fn load_in_boot(dir: &Path, boot: String) -> io::Result<(Monitors, Vec<Bytes>)> {
        let path = dir.join(MONITORS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut lines = text.lines();
        let same_boot = lines.next().and_then(|l| l.strip_prefix("boot ")) == Some(boot.as_str());
        let mut list = Vec::new();
        for (n, line) in lines.enumerate() {
            match parse_line(line) {
                Some(m) if list.len() < MAX_MONITORS => list.push(m),
                Some(_) => {}
                None => tracing::warn!("{}:{}: not a monitor record; skipped", path.display(), n + 2),
            }
        }
        let mut to_notify = Vec::new();
        if !same_boot {
            for m in list.drain(..) {
                if !to_notify.contains(&m.mon_name) {
                    to_notify.push(m.mon_name);
                }
            }
        }
        let monitors = Monitors { dir: dir.to_path_buf(), boot, list: Mutex::new(list) };
        if !same_boot && !text.is_empty() {
            let list = monitors.lock();
            monitors.save(&list)?;
        }
        Ok((monitors, to_notify))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Monitor>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, list: &[Monitor]) -> io::Result<()> {
        let mut text = format!("boot {}\n", self.boot);
        for m in list {
            let c = &m.callback;
            text.push_str(&format!(
                "monitor {} {} {} {} {} {}\n",
                c.prog,
                c.vers,
                c.proc_,
                escape_name(&m.priv_),
                escape_name(&m.mon_name),
                escape_name(&c.my_name)
            ));
        }
        write_atomically(&self.dir, MONITORS_FILE, text.as_bytes(), 0o600)
    }

    /// SM_MON: adds the monitor, or renews the `priv` of the same host and callback.
    pub fn add(&self, m: Monitor) -> Result<(), MonitorError> {
        let mut list = self.lock();
        let mut next = list.clone();
        let full = next.len() >= MAX_MONITORS;
        match next.iter_mut().find(|x| x.mon_name == m.mon_name && x.callback == m.callback) {
            Some(same) => same.priv_ = m.priv_,
            None if full => return Err(MonitorError::Full),
            None => next.push(m),
        }
        self.save(&next).map_err(MonitorError::Io)?;
        *list = next;
        Ok(())
    }

    /// SM_UNMON (`mon_name` given) or SM_UNMON_ALL (`None`): removes the callback's monitors.
    /// Returns how many went.
    pub fn remove(&self, mon_name: Option<&[u8]>, callback: &Callback) -> io::Result<usize> {
        let mut list = self.lock();
        let next: Vec<Monitor> = list
            .iter()
            .filter(|m| !(&m.callback == callback && mon_name.is_none_or(|n| m.mon_name == n)))
            .cloned()
            .collect();
        let removed = list.len() - next.len();
        if removed > 0 {
            self.save(&next)?;
            *list = next;
        }
        Ok(removed)
    }

    /// The monitors a notice from `sender` naming `name` is about.
    pub fn matching(&self, name: &[u8], sender: IpAddr) -> Vec<Monitor> {
        let sender = sender.to_canonical();
        self.lock()
            .iter()
            .filter(|m| {
                m.mon_name == name
                    || std::str::from_utf8(&m.mon_name)
                        .ok()
                        .and_then(|s| s.parse::<IpAddr>().ok())
                        .is_some_and(|ip| ip.to_canonical() == sender)
            })
            .cloned()
            .collect()
    }

    /// Every monitored host, once each.
    pub fn hosts(&self) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = Vec::new();
        for m in self.lock().iter() {
            if !out.contains(&m.mon_name) {
                out.push(m.mon_name.clone());
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mon(name: &str, proc_: u32) -> Monitor {
        Monitor {
            mon_name: Bytes::copy_from_slice(name.as_bytes()),
            callback: Callback { my_name: Bytes::from_static(b"this host"), prog: 100021, vers: 3, proc_ },
            priv_: *b"0123456789abc\n \\",
        }
    }

    #[test]
    fn monitors_survive_a_restart_in_the_same_boot() {
        let dir = tempfile::tempdir().unwrap();
        let (m, notify) = Monitors::load_in_boot(dir.path(), "boot-1".into()).unwrap();
        assert!(notify.is_empty() && m.is_empty());
        m.add(mon("10.0.2.100", 16)).unwrap();
        m.add(mon("server b", 16)).unwrap();
        let (again, notify) = Monitors::load_in_boot(dir.path(), "boot-1".into()).unwrap();
        assert!(notify.is_empty(), "rnfsd restarted, the host did not: nobody is told");
        assert_eq!(*again.lock(), vec![mon("10.0.2.100", 16), mon("server b", 16)]);
    }

    #[test]
    fn after_a_reboot_the_monitored_hosts_are_to_be_told_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _) = Monitors::load_in_boot(dir.path(), "boot-1".into()).unwrap();
        m.add(mon("10.0.2.100", 16)).unwrap();
        m.add(mon("10.0.2.100", 17)).unwrap();
        m.add(mon("server b", 16)).unwrap();
        let (after, notify) = Monitors::load_in_boot(dir.path(), "boot-2".into()).unwrap();
        assert_eq!(notify, vec![Bytes::from_static(b"10.0.2.100"), Bytes::from_static(b"server b")]);
        assert!(after.is_empty());
        let (_, notify) = Monitors::load_in_boot(dir.path(), "boot-3".into()).unwrap();
        assert!(notify.is_empty(), "told once, not at every boot");
    }

    #[test]
    fn mon_renews_unmon_and_unmon_all_remove() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _) = Monitors::load_in_boot(dir.path(), "b".into()).unwrap();
        m.add(mon("s1", 16)).unwrap();
        let mut renewed = mon("s1", 16);
        renewed.priv_ = [7; 16];
        m.add(renewed.clone()).unwrap();
        assert_eq!(*m.lock(), vec![renewed]);
        m.add(mon("s2", 16)).unwrap();
        m.add(mon("s2", 17)).unwrap();
        let cb = mon("", 16).callback;
        assert_eq!(m.remove(Some(b"s1"), &cb).unwrap(), 1);
        assert_eq!(m.remove(Some(b"s1"), &cb).unwrap(), 0);
        assert_eq!(m.remove(None, &cb).unwrap(), 1, "UNMON_ALL removes this callback's only");
        assert_eq!(*m.lock(), vec![mon("s2", 17)]);
    }

    #[test]
    fn a_notice_matches_by_name_or_by_the_sender_address() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _) = Monitors::load_in_boot(dir.path(), "b".into()).unwrap();
        m.add(mon("10.0.2.100", 16)).unwrap();
        m.add(mon("serverb", 16)).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(m.matching(b"anything", ip("10.0.2.100")).len(), 1);
        assert_eq!(m.matching(b"serverb", ip("10.0.2.7")).len(), 1);
        assert_eq!(m.matching(b"other", ip("10.0.2.7")).len(), 0);
        assert_eq!(m.matching(b"x", ip("::ffff:10.0.2.100")).len(), 1);
    }

    #[test]
    fn the_list_is_bounded_and_damaged_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("boot b\nmonitor nonsense\n");
        for i in 0..MAX_MONITORS + 5 {
            text.push_str(&format!("monitor 100021 3 16 {} s{i} this\\x20host\n", "x".repeat(16)));
        }
        std::fs::write(dir.path().join(MONITORS_FILE), text).unwrap();
        let (m, notify) = Monitors::load_in_boot(dir.path(), "b".into()).unwrap();
        assert!(notify.is_empty());
        assert_eq!(m.len(), MAX_MONITORS);
        assert!(matches!(m.add(mon("one more", 16)), Err(MonitorError::Full)));
        m.add(mon("s0", 16)).expect("renewing a kept host needs no room");
    }
}
