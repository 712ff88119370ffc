//! The lock manager's state: which owner holds which ranges of which file, who waits, which
//! clients are recorded, and the grace period. Each (owner, file) holds its own open file
//! description with Linux OFD locks on it (`F_OFD_SETLK`), so the kernel arbitrates between NFS
//! owners and the host's own processes, and closing the description releases exactly that
//! owner's locks. No call here ever waits for a lock: a conflicting blocking request becomes a
//! [`Waiter`], retried after every unlock rnfsd makes on the file and, for locks of host
//! processes (which rnfsd is not told about), on every poll.
//!
//! An owner is (client address, caller name, svid, owner handle): svids start at 0 on every Linux
//! client, so two clients behind one address are still two owners when their names differ.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use xdr::nlm::{netobj, nlm4_holder, nlm4_lock, nlm4_stats, nlm4_testrply};

use super::ranges::{Ranges, nlm_range};
use super::store::{ClientRecord, ClientStore};
use crate::config::LockConfig;
use crate::fs::sys::{LockKind, ofd_getlk, ofd_setlk};

/// Open file descriptions held for locks, over every client; beyond it LOCK answers
/// DENIED_NOLOCKS, so no client can exhaust the server's descriptors.
pub const MAX_HOLDINGS: usize = 16_384;
/// Of [`MAX_HOLDINGS`], what one client address may hold.
pub const MAX_HOLDINGS_PER_CLIENT: usize = 4_096;
/// Blocked requests queued at once, and per client address.
pub const MAX_WAITERS: usize = 4_096;
pub const MAX_WAITERS_PER_CLIENT: usize = 256;

/// Who sent a request: the client's address and the local address it reached.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: IpAddr,
    pub local: IpAddr,
}

/// A lock owner (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerKey {
    pub addr: IpAddr,
    pub caller_name: Bytes,
    pub svid: i32,
    pub oh: Bytes,
}

impl OwnerKey {
    pub fn of(addr: IpAddr, lock: &nlm4_lock) -> OwnerKey {
        OwnerKey { addr, caller_name: lock.caller_name.0.clone(), svid: lock.svid, oh: lock.oh.0.clone() }
    }
}

/// A lock taken for a waiter whose client has not yet confirmed it (answered GRANTED to the
/// callback, or re-sent its LOCK): released when the client refuses it, cancels it, or lets
/// `deadline` pass.
#[derive(Debug, Clone, Copy)]
struct Unclaimed {
    start: u64,
    end: u64,
    deadline: Instant,
}

/// One owner's open file description on one file and what it holds.
#[derive(Debug)]
struct Holding {
    fd: OwnedFd,
    writable: bool,
    ranges: Ranges,
    unclaimed: Vec<Unclaimed>,
}

/// A blocked LOCK.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub owner: OwnerKey,
    pub start: u64,
    pub end: u64,
    pub exclusive: bool,
    /// The LOCK's cookie and lock, which the GRANTED callback repeats.
    pub cookie: netobj,
    pub alock: nlm4_lock,
    pub local: IpAddr,
}

#[derive(Debug, Default)]
struct FileLocks {
    holders: HashMap<OwnerKey, Holding>,
    waiters: Vec<Waiter>,
}

impl FileLocks {
    fn is_idle(&self) -> bool {
        self.holders.is_empty() && self.waiters.is_empty()
    }
}

#[derive(Debug)]
struct RecordedClient {
    record: ClientRecord,
    /// Whether it took a lock since this start (the others are from before and are forgotten
    /// when grace ends).
    this_run: bool,
}

#[derive(Debug, Default)]
struct Inner {
    files: HashMap<Bytes, FileLocks>,
    clients: HashMap<(IpAddr, Bytes), RecordedClient>,
    holdings: usize,
    waiters: usize,
    /// Reclaims granted since start, for the operator's report.
    reclaimed: u64,
}

/// A lock taken for a waiter, for the callback task to announce with GRANTED.
#[derive(Debug)]
pub struct Grant {
    pub fh: Bytes,
    pub waiter: Waiter,
}

/// What the callback task sends.
#[derive(Debug)]
pub enum Outgoing {
    /// GRANTED for a lock taken for a waiter.
    Granted(Box<Grant>),
    /// The `_RES` call (procedure `proc_`, encoded arguments `body`) answering a `_MSG` call
    /// from `to`, sent from `from`.
    Res { to: IpAddr, from: IpAddr, proc_: u32, body: Bytes, slot: super::callback::Slot },
    /// The status monitor's callback to this host's own lock manager (the `my_id` of an SM_MON):
    /// program `prog` version `vers` procedure `proc_` on loopback, with the encoded `status`.
    Status { prog: u32, vers: u32, proc_: u32, body: Bytes, slot: super::callback::Slot },
    /// SM_NOTIFY telling `host`, a server this host's lock manager asked to monitor, that this
    /// host restarted with state `state`.
    Reboot { host: Bytes, state: i32 },
}

/// How a LOCK request asks (its arguments, once decoded and checked).
pub struct LockRequest<'a> {
    pub peer: Peer,
    pub fh: &'a Bytes,
    pub cookie: &'a netobj,
    pub alock: &'a nlm4_lock,
    pub exclusive: bool,
    pub block: bool,
    pub reclaim: bool,
    /// NM_LOCK: the client runs no status monitor, so it is not recorded.
    pub monitored: bool,
}

/// Opens the file again for locking: a description open for writing when it can be (a write
/// lock needs one), else for reading.
pub type Opener<'a> = &'a dyn Fn(bool) -> std::io::Result<OwnedFd>;

/// Counts for the operator's report.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockCounts {
    pub holdings: usize,
    pub waiters: usize,
    pub clients: usize,
    pub grace: bool,
    /// Reclaims granted since the server started.
    pub reclaimed: u64,
}

pub struct LockTable {
    inner: Mutex<Inner>,
    store: ClientStore,
    config: LockConfig,
    grace_until: Mutex<Option<Instant>>,
    grants: tokio::sync::mpsc::UnboundedSender<Outgoing>,
}

impl std::fmt::Debug for LockTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockTable").field("counts", &self.counts()).finish()
    }
}

impl LockTable {
    /// A table whose previous run recorded `previous` clients: with any, a grace period starts.
    /// Without one (`--lock-grace 0`) they are forgotten at once, and the state directory's
    /// record with them: the end of grace, which forgets them otherwise, never comes, and a
    /// client kept on record would be told of every later restart too. (They are still told of
    /// this one: [`super::Locking::start`] notifies from its own copy of `previous`.)
    pub fn new(
        config: LockConfig,
        store: ClientStore,
        previous: Vec<ClientRecord>,
        grants: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    ) -> LockTable {
        let grace_until =
            (!previous.is_empty() && !config.grace.is_zero()).then(|| Instant::now() + config.grace);
        let forget = grace_until.is_none() && !previous.is_empty();
        let clients = match forget {
            true => HashMap::new(),
            false => previous
                .into_iter()
                .map(|record| {
                    ((record.addr, record.caller_name.clone()), RecordedClient { record, this_run: false })
                })
                .collect(),
        };
        let table = LockTable {
            inner: Mutex::new(Inner { clients, ..Inner::default() }),
            store,
            config,
            grace_until: Mutex::new(grace_until),
            grants,
        };
        if forget {
            table.save_clients(&table.lock_inner());
        }
        table
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        // Every change keeps the maps consistent before anything can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether only reclaims are granted now. The first call after grace ended forgets the
    /// clients of the previous run that did not come back.
    pub fn in_grace(&self) -> bool {
        let mut grace = self.grace_until.lock().unwrap_or_else(|e| e.into_inner());
        match *grace {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *grace = None;
                drop(grace);
                tracing::info!("lock grace period over: every lock request is served");
                let mut inner = self.lock_inner();
                inner.clients.retain(|_, c| c.this_run);
                self.save_clients(&inner);
                false
            }
            None => false,
        }
    }

    pub fn counts(&self) -> LockCounts {
        let grace = self.grace_until.lock().is_ok_and(|g| g.is_some_and(|u| Instant::now() < u));
        let inner = self.lock_inner();
        LockCounts {
            holdings: inner.holdings,
            waiters: inner.waiters,
            clients: inner.clients.len(),
            grace,
            reclaimed: inner.reclaimed,
        }
    }

    fn save_clients(&self, inner: &Inner) {
        if let Err(e) = self.store.save(inner.clients.values().map(|c| &c.record)) {
            tracing::error!("cannot record lock clients in the state directory: {e}");
        }
    }

    /// Records the client before its first lock is granted, so that a restart notifies it.
    fn record_client(&self, inner: &mut Inner, peer: Peer, caller_name: &Bytes) -> Result<(), nlm4_stats> {
        let key = (peer.addr, caller_name.clone());
        if let Some(c) = inner.clients.get_mut(&key) {
            if c.this_run && c.record.local == peer.local {
                return Ok(());
            }
            c.this_run = true;
            c.record.local = peer.local;
        } else {
            let record =
                ClientRecord { addr: peer.addr, caller_name: caller_name.clone(), local: peer.local };
            inner.clients.insert(key, RecordedClient { record, this_run: true });
        }
        if let Err(e) = self.store.save(inner.clients.values().map(|c| &c.record)) {
            // Granting a lock that a restart would silently lose is worse than refusing it.
            tracing::error!("cannot record lock client {} in the state directory: {e}", peer.addr);
            return Err(nlm4_stats::DeniedNolocks);
        }
        Ok(())
    }

    /// LOCK and NM_LOCK.
    pub fn lock(&self, req: LockRequest<'_>, open: Opener<'_>) -> nlm4_stats {
        let Some((start, end)) = nlm_range(req.alock.l_offset, req.alock.l_len) else {
            return nlm4_stats::Fbig;
        };
        let in_grace = self.in_grace();
        if in_grace && !req.reclaim {
            return nlm4_stats::DeniedGracePeriod;
        }
        if req.reclaim && !in_grace {
            tracing::warn!(client = %req.peer.addr, caller = %crate::logsafe::escaped(&req.alock.caller_name.0),
                "lock reclaim refused: the server is not in its grace period");
            return nlm4_stats::Denied;
        }
        let owner = OwnerKey::of(req.peer.addr, req.alock);
        // Open a description before taking the table's lock: opening may wait for the disk.
        let fresh = if self.lock_inner().files.get(req.fh).is_some_and(|f| f.holders.contains_key(&owner)) {
            None
        } else {
            match open(true).map(|fd| (fd, true)).or_else(|_| open(false).map(|fd| (fd, false))) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    tracing::info!(client = %req.peer.addr, "lock: cannot open the file: {e}");
                    return nlm4_stats::Failed;
                }
            }
        };
        let mut inner = self.lock_inner();
        if req.monitored {
            if let Err(stat) = self.record_client(&mut inner, req.peer, &req.alock.caller_name.0) {
                return stat;
            }
        }
        let per_client = |inner: &Inner| {
            inner.files.values().flat_map(|f| f.holders.keys()).filter(|o| o.addr == req.peer.addr).count()
        };
        let inner = &mut *inner;
        let has_holding = inner.files.get(req.fh).is_some_and(|f| f.holders.contains_key(&owner));
        if !has_holding {
            if inner.holdings >= MAX_HOLDINGS || per_client(inner) >= MAX_HOLDINGS_PER_CLIENT {
                tracing::warn!(client = %req.peer.addr, "lock refused: too many locked files");
                return nlm4_stats::DeniedNolocks;
            }
            let Some((fd, writable)) = fresh else { return nlm4_stats::Failed };
            inner.holdings += 1;
            inner.files.entry(req.fh.clone()).or_default().holders.insert(
                owner.clone(),
                Holding { fd, writable, ranges: Ranges::default(), unclaimed: Vec::new() },
            );
        }
        let file = inner.files.get_mut(req.fh).expect("inserted above");
        let holding = file.holders.get_mut(&owner).expect("inserted above");
        if req.exclusive && !holding.writable {
            let stat = nlm4_stats::Failed;
            Self::drop_if_empty(inner, req.fh, &owner);
            return stat;
        }
        let kind = if req.exclusive { LockKind::Write } else { LockKind::Read };
        match ofd_setlk(holding.fd.as_fd(), kind, start, end_len(start, end)) {
            Ok(()) => {
                holding.ranges.lock(start, end, req.exclusive);
                // A re-sent LOCK claims a lock taken for it while it waited.
                holding.unclaimed.retain(|u| !(u.start < end && start < u.end));
                file.waiters.retain(|w| !(w.owner == owner && w.start == start && w.end == end));
                Self::recount_waiters(inner);
                if req.reclaim {
                    inner.reclaimed += 1;
                }
                nlm4_stats::Granted
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                if !req.block {
                    Self::drop_if_empty(inner, req.fh, &owner);
                    return nlm4_stats::Denied;
                }
                let queued =
                    file.waiters.iter().any(|w| w.owner == owner && w.start == start && w.end == end);
                if !queued {
                    let client_waiters = inner
                        .files
                        .values()
                        .flat_map(|f| f.waiters.iter())
                        .filter(|w| w.owner.addr == req.peer.addr)
                        .count();
                    if inner.waiters >= MAX_WAITERS || client_waiters >= MAX_WAITERS_PER_CLIENT {
                        Self::drop_if_empty(inner, req.fh, &owner);
                        return nlm4_stats::DeniedNolocks;
                    }
                    let file = inner.files.get_mut(req.fh).expect("present");
                    file.waiters.push(Waiter {
                        owner,
                        start,
                        end,
                        exclusive: req.exclusive,
                        cookie: req.cookie.clone(),
                        alock: req.alock.clone(),
                        local: req.peer.local,
                    });
                    inner.waiters += 1;
                }
                nlm4_stats::Blocked
            }
            Err(e) => {
                tracing::warn!(client = %req.peer.addr, "lock failed: {e}");
                Self::drop_if_empty(inner, req.fh, &owner);
                if e.raw_os_error() == Some(libc::ENOLCK) {
                    nlm4_stats::DeniedNolocks
                } else {
                    nlm4_stats::Failed
                }
            }
        }
    }

    fn recount_waiters(inner: &mut Inner) {
        inner.waiters = inner.files.values().map(|f| f.waiters.len()).sum();
    }

    /// Closes an owner's description when it holds nothing and waits for nothing on the file.
    fn drop_if_empty(inner: &mut Inner, fh: &Bytes, owner: &OwnerKey) {
        let Some(file) = inner.files.get_mut(fh) else { return };
        let waiting = file.waiters.iter().any(|w| &w.owner == owner);
        if !waiting && file.holders.get(owner).is_some_and(|h| h.ranges.is_empty()) {
            file.holders.remove(owner);
            inner.holdings -= 1;
        }
        if file.is_idle() {
            inner.files.remove(fh);
        }
    }

    /// TEST: `None` when the lock could be granted, else the conflicting holder.
    pub fn test(
        &self,
        peer: Peer,
        fh: &Bytes,
        alock: &nlm4_lock,
        exclusive: bool,
        open: Opener<'_>,
    ) -> nlm4_testrply {
        let Some((start, end)) = nlm_range(alock.l_offset, alock.l_len) else {
            return nlm4_testrply::Other(nlm4_stats::Fbig);
        };
        if self.in_grace() {
            return nlm4_testrply::Other(nlm4_stats::DeniedGracePeriod);
        }
        let owner = OwnerKey::of(peer.addr, alock);
        let kind = if exclusive { LockKind::Write } else { LockKind::Read };
        let inner = self.lock_inner();
        let own = inner.files.get(fh).and_then(|f| f.holders.get(&owner));
        // The owner's own description, so its own locks do not count as conflicts; else a fresh
        // one that holds nothing.
        let found = match own {
            Some(h) => ofd_getlk(h.fd.as_fd(), kind, start, end_len(start, end)),
            None => {
                drop(inner);
                let fd = match open(false) {
                    Ok(fd) => fd,
                    Err(_) => return nlm4_testrply::Other(nlm4_stats::Failed),
                };
                let r = ofd_getlk(fd.as_fd(), kind, start, end_len(start, end));
                return self.describe_conflict(fh, &owner, r);
            }
        };
        drop(inner);
        self.describe_conflict(fh, &owner, found)
    }

    fn describe_conflict(
        &self,
        fh: &Bytes,
        owner: &OwnerKey,
        found: std::io::Result<Option<crate::fs::sys::LockRange>>,
    ) -> nlm4_testrply {
        let conflict = match found {
            Ok(Some(c)) => c,
            Ok(None) => return nlm4_testrply::Other(nlm4_stats::Granted),
            Err(e) => {
                tracing::warn!("lock test failed: {e}");
                return nlm4_testrply::Other(nlm4_stats::Failed);
            }
        };
        let exclusive = conflict.kind == LockKind::Write;
        let (cs, ce) =
            nlm_range(conflict.start, conflict.len).unwrap_or((conflict.start, super::ranges::END_OF_FILE));
        let inner = self.lock_inner();
        // Name the NFS owner holding that range, if one does: the kernel does not say.
        let holder = inner.files.get(fh).and_then(|f| {
            f.holders.iter().filter(|(o, _)| *o != owner).find_map(|(o, h)| {
                h.ranges
                    .segments()
                    .iter()
                    .find(|s| s.exclusive == exclusive && s.start <= cs && ce <= s.end)
                    .map(|_| (o.svid, o.oh.clone()))
            })
        });
        let (svid, oh) = holder.unwrap_or((0, Bytes::new()));
        nlm4_testrply::Denied(nlm4_holder {
            exclusive,
            svid,
            oh: netobj(oh),
            l_offset: conflict.start,
            l_len: conflict.len,
        })
    }

    /// UNLOCK: releases the range (nothing held there is not an error), then serves the file's
    /// waiters.
    pub fn unlock(&self, peer: Peer, fh: &Bytes, alock: &nlm4_lock) -> nlm4_stats {
        let Some((start, end)) = nlm_range(alock.l_offset, alock.l_len) else {
            return nlm4_stats::Fbig;
        };
        let owner = OwnerKey::of(peer.addr, alock);
        let mut inner = self.lock_inner();
        let inner = &mut *inner;
        let Some(holding) = inner.files.get_mut(fh).and_then(|f| f.holders.get_mut(&owner)) else {
            return nlm4_stats::Granted;
        };
        if let Err(e) = ofd_setlk(holding.fd.as_fd(), LockKind::Unlock, start, end_len(start, end)) {
            tracing::warn!(client = %peer.addr, "unlock failed: {e}");
            return nlm4_stats::Failed;
        }
        holding.ranges.unlock(start, end);
        holding.unclaimed.retain(|u| !(u.start < end && start < u.end));
        Self::drop_if_empty(inner, fh, &owner);
        self.serve_waiters(inner, fh);
        nlm4_stats::Granted
    }

    /// CANCEL: withdraws a blocked request; a lock already taken for it but not yet claimed is
    /// released too (the client gave up on it). Nothing to cancel answers DENIED.
    pub fn cancel(&self, peer: Peer, fh: &Bytes, alock: &nlm4_lock, exclusive: bool) -> nlm4_stats {
        let Some((start, end)) = nlm_range(alock.l_offset, alock.l_len) else {
            return nlm4_stats::Fbig;
        };
        let owner = OwnerKey::of(peer.addr, alock);
        let mut inner = self.lock_inner();
        let inner = &mut *inner;
        let Some(file) = inner.files.get_mut(fh) else { return nlm4_stats::Denied };
        let before = file.waiters.len();
        file.waiters
            .retain(|w| !(w.owner == owner && w.start == start && w.end == end && w.exclusive == exclusive));
        let mut found = file.waiters.len() != before;
        if let Some(h) = file.holders.get_mut(&owner) {
            if let Some(i) = h.unclaimed.iter().position(|u| u.start == start && u.end == end) {
                h.unclaimed.remove(i);
                let _ = ofd_setlk(h.fd.as_fd(), LockKind::Unlock, start, end_len(start, end));
                h.ranges.unlock(start, end);
                found = true;
            }
        }
        Self::recount_waiters(inner);
        Self::drop_if_empty(inner, fh, &owner);
        if found {
            self.serve_waiters(inner, fh);
            nlm4_stats::Granted
        } else {
            nlm4_stats::Denied
        }
    }

    /// Takes the lock for every waiter of `fh` that can have it now, in the order they came, and
    /// hands each grant to the callback task.
    fn serve_waiters(&self, inner: &mut Inner, fh: &Bytes) {
        let Some(file) = inner.files.get_mut(fh) else { return };
        let mut granted = Vec::new();
        let mut i = 0;
        while i < file.waiters.len() {
            let w = &file.waiters[i];
            let Some(h) = file.holders.get_mut(&w.owner) else {
                file.waiters.remove(i);
                continue;
            };
            let kind = if w.exclusive { LockKind::Write } else { LockKind::Read };
            match ofd_setlk(h.fd.as_fd(), kind, w.start, end_len(w.start, w.end)) {
                Ok(()) => {
                    h.ranges.lock(w.start, w.end, w.exclusive);
                    h.unclaimed.push(Unclaimed {
                        start: w.start,
                        end: w.end,
                        deadline: Instant::now() + self.config.unclaimed_grant,
                    });
                    granted.push(file.waiters.remove(i));
                }
                Err(_) => i += 1,
            }
        }
        Self::recount_waiters(inner);
        for waiter in granted {
            tracing::debug!(client = %waiter.owner.addr, svid = waiter.owner.svid, "blocked lock granted");
            let _ = self.grants.send(Outgoing::Granted(Box::new(Grant { fh: fh.clone(), waiter })));
        }
    }

    /// The periodic pass: retries every waiter (a host process may have unlocked) and releases
    /// locks taken for waiters that never claimed them.
    pub fn poll(&self) {
        let _ = self.in_grace();
        let now = Instant::now();
        let mut inner = self.lock_inner();
        let inner = &mut *inner;
        let mut expired = Vec::new();
        for (fh, file) in inner.files.iter_mut() {
            for (owner, h) in file.holders.iter_mut() {
                h.unclaimed.retain(|u| {
                    if u.deadline > now {
                        return true;
                    }
                    let _ = ofd_setlk(h.fd.as_fd(), LockKind::Unlock, u.start, end_len(u.start, u.end));
                    h.ranges.unlock(u.start, u.end);
                    tracing::info!(client = %owner.addr, svid = owner.svid,
                        "released a lock granted to a waiter that never claimed it");
                    false
                });
                if h.ranges.is_empty() {
                    expired.push((fh.clone(), owner.clone()));
                }
            }
        }
        for (fh, owner) in &expired {
            Self::drop_if_empty(inner, fh, owner);
        }
        let with_waiters: Vec<Bytes> =
            inner.files.iter().filter(|(_, f)| !f.waiters.is_empty()).map(|(fh, _)| fh.clone()).collect();
        for fh in with_waiters {
            self.serve_waiters(inner, &fh);
        }
    }

    /// The client answered GRANTED to the callback: the lock is its own now.
    pub fn claimed(&self, fh: &Bytes, w: &Waiter) {
        let mut inner = self.lock_inner();
        if let Some(h) = inner.files.get_mut(fh).and_then(|f| f.holders.get_mut(&w.owner)) {
            h.unclaimed.retain(|u| !(u.start == w.start && u.end == w.end));
        }
    }

    /// The client refused the callback (it no longer waits): release the lock taken for it.
    pub fn refused(&self, fh: &Bytes, w: &Waiter) {
        let mut inner = self.lock_inner();
        let inner = &mut *inner;
        if let Some(h) = inner.files.get_mut(fh).and_then(|f| f.holders.get_mut(&w.owner)) {
            if let Some(i) = h.unclaimed.iter().position(|u| u.start == w.start && u.end == w.end) {
                h.unclaimed.remove(i);
                let _ = ofd_setlk(h.fd.as_fd(), LockKind::Unlock, w.start, end_len(w.start, w.end));
                h.ranges.unlock(w.start, w.end);
            }
        }
        Self::drop_if_empty(inner, fh, &w.owner);
        self.serve_waiters(inner, fh);
    }

    /// Releases every lock and waiter of the clients `which` selects (a client rebooted, or sent
    /// FREE_ALL) and forgets them; returns how many clients that was.
    pub fn release_clients(&self, which: impl Fn(IpAddr, &[u8]) -> bool) -> usize {
        let mut inner = self.lock_inner();
        let inner = &mut *inner;
        let mut touched = Vec::new();
        for (fh, file) in inner.files.iter_mut() {
            let before = file.holders.len();
            file.holders.retain(|o, _| !which(o.addr, &o.caller_name));
            inner.holdings -= before - file.holders.len();
            let waiters = file.waiters.len();
            file.waiters.retain(|w| !which(w.owner.addr, &w.owner.caller_name));
            if before != file.holders.len() || waiters != file.waiters.len() {
                touched.push(fh.clone());
            }
        }
        Self::recount_waiters(inner);
        let clients = inner.clients.len();
        inner.clients.retain(|(addr, name), _| !which(*addr, name));
        let forgotten = clients - inner.clients.len();
        if forgotten > 0 {
            self.save_clients(inner);
        }
        for fh in &touched {
            if inner.files.get(fh).is_some_and(FileLocks::is_idle) {
                inner.files.remove(fh);
            } else {
                self.serve_waiters(inner, fh);
            }
        }
        forgotten.max(usize::from(!touched.is_empty()))
    }
}

/// A `start..end` range's `fcntl` length (0 to end of file).
fn end_len(start: u64, end: u64) -> u64 {
    if end == super::ranges::END_OF_FILE { 0 } else { end - start }
}

/// A shared handle on the table.
pub type Locks = Arc<LockTable>;
