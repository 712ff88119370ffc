//! The TCP connection table: which client address holds which connections, each address's
//! share of the connection limit, and which connection gives way when a newcomer arrives. Also
//! the shared state a connection publishes about itself (when it last completed a record, whether
//! a partial record of it has stalled, whether its writer is stuck), so another connection that
//! needs memory can drop the one that is hoarding it.
//!
//! The policy (knfsd closes its oldest temporary socket when over its limit; this does the same
//! per address, so one address can only ever push out its own connections or those of an address
//! holding more than it does):
//!
//! - An address at its per-host share closes its own least recently active connection for the
//!   newcomer. Its other connections and everyone else's are untouched.
//! - With every slot taken, the newcomer takes the least recently active connection of the
//!   address holding the most. If the newcomer's own address holds as many, it takes its own
//!   instead. So a fresh address is never refused, and a heavy one only churns itself.
//! - Addresses that no export lists ("unlisted": all they can get is NULL, MNT's refusal and the
//!   portmapper) have a small share of their own, per address and in total, and never push out
//!   a listed address's connection: when every slot is taken by listed hosts they are refused.
//!
//! "Active" is when a connection last completed a record (or was accepted): trickling bytes
//! that never complete a record does not count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How many connections each kind of address may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// Over every address.
    pub total: usize,
    /// Per listed address.
    pub per_host: usize,
    /// Over every unlisted address.
    pub unlisted_total: usize,
    /// Per unlisted address.
    pub unlisted_per_host: usize,
}

/// What one connection lets others know about it. Times are nanoseconds since the table's
/// epoch; 0 means "not now".
pub struct ConnState {
    pub host: IpAddr,
    /// Whether some export lists the address.
    pub listed: bool,
    epoch: Instant,
    /// When it was accepted, and when it last completed a record (0: never).
    accepted: u64,
    last_active: AtomicU64,
    /// When bytes of its partial record last arrived, while it holds budget for one.
    partial_progress: AtomicU64,
    /// When its writer last made progress, while replies wait to be sent.
    writer_progress: AtomicU64,
    /// Set while the connection itself holds back (waiting for budget or for its own calls):
    /// a record it is not reading has not stalled by the peer's doing.
    paused: AtomicBool,
    /// Cancelled when the connection is closed by the table: its reader and writer stop and
    /// drop what they hold at once.
    evicted: CancellationToken,
    /// Whether the table still counts it.
    counted: AtomicBool,
}

impl ConnState {
    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    /// How it ranks for being closed to make room, least valuable first: whether it ever
    /// completed a record, and since when it has been inactive.
    fn activity(&self) -> (bool, u64) {
        match self.last_active.load(Ordering::Relaxed) {
            0 => (false, self.accepted),
            t => (true, t),
        }
    }

    /// A record was completed.
    pub fn touch(&self) {
        self.last_active.store(self.now(), Ordering::Relaxed);
    }

    /// Bytes of a partial record that holds request budget arrived (or `false`: it holds none).
    pub fn partial_progress(&self, holding: bool) {
        self.partial_progress.store(if holding { self.now() } else { 0 }, Ordering::Relaxed);
    }

    /// Starts the stall clock of a partial record that holds request budget, unless it runs
    /// already: a record of which only the marker arrived holds the budget its claimed size took,
    /// and must be as easy to close as one that stopped halfway.
    pub fn partial_holding(&self) {
        let _ = self.partial_progress.compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The writer sent something (or `false`: it has nothing left to send).
    pub fn writer_progress(&self, waiting: bool) {
        self.writer_progress.store(if waiting { self.now() } else { 0 }, Ordering::Relaxed);
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }

    /// How long `stamp` has been standing still, if it is set.
    fn stalled_for(&self, stamp: &AtomicU64) -> Option<Duration> {
        match stamp.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Duration::from_nanos(self.now().saturating_sub(t))),
        }
    }
}

/// A connection that completed a record this recently is not closed for a newcomer of its own
/// address.
const BUSY: Duration = Duration::from_secs(1);

/// Why a connection was closed by the table, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Share,
    StalledRecord,
    StalledWriter,
}

#[derive(Default)]
struct Host {
    listed: bool,
    conns: Vec<Arc<ConnState>>,
}

#[derive(Default)]
struct Inner {
    hosts: HashMap<IpAddr, Host>,
    total: usize,
    unlisted: usize,
}

/// Counters of the table, for the operator and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub connections: usize,
    pub unlisted_connections: usize,
    /// Connections closed to make room for a newcomer.
    pub evicted_for_share: u64,
    /// Newcomers refused (unlisted, with every slot taken by listed addresses).
    pub refused: u64,
    /// Connections closed because their partial record had stalled while others needed memory.
    pub evicted_stalled_records: u64,
    /// Connections closed because their writer had stalled while others needed reply memory.
    pub evicted_stalled_writers: u64,
    /// Connections closed because a record did not arrive whole within its deadline.
    pub records_timed_out: u64,
}

/// Every TCP connection of the server, over all its ports.
pub struct ConnectionTable {
    shares: Shares,
    epoch: Instant,
    inner: Mutex<Inner>,
    evicted_for_share: AtomicU64,
    refused: AtomicU64,
    evicted_stalled_records: AtomicU64,
    evicted_stalled_writers: AtomicU64,
    records_timed_out: AtomicU64,
}

/// A connection the table counts; dropping it gives its slot back.
pub struct Admitted {
    table: Arc<ConnectionTable>,
    pub state: Arc<ConnState>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.remove(&self.state);
    }
}

impl ConnectionTable {
    pub fn new(shares: Shares) -> Arc<ConnectionTable> {
        Arc::new(ConnectionTable {
            shares,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            evicted_for_share: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted_stalled_records: AtomicU64::new(0),
            evicted_stalled_writers: AtomicU64::new(0),
            records_timed_out: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Counts and lists stay consistent whatever a panicking holder was doing.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection from `host`, closing another per the policy in the module doc,
    /// or `None` when it is refused.
    pub fn admit(self: &Arc<Self>, host: IpAddr, listed: bool) -> Option<Admitted> {
        let host = host.to_canonical();
        let mut inner = self.lock();
        let held = inner.hosts.get(&host).map_or(0, |h| h.conns.len());
        let per_host = if listed { self.shares.per_host } else { self.shares.unlisted_per_host };
        if per_host == 0 {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if held >= per_host {
            // Its own connections give way, but not one it is using: then the newcomer waits
            // (is refused and retries) instead of knocking out its own host's mount.
            if !self.evict_lru_of(&mut inner, host, Some(BUSY)) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        } else if !listed && inner.unlisted >= self.shares.unlisted_total {
            if !self.evict_for(&mut inner, host, |h| !h.listed) {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        } else if inner.total >= self.shares.total {
            // Unlisted addresses give way first; they never push out a listed one.
            let evicted = listed
                && (self.evict_for(&mut inner, host, |h| !h.listed)
                    || self.evict_for(&mut inner, host, |_| true));
            if !evicted {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let state = Arc::new(ConnState {
            host,
            listed,
            epoch: self.epoch,
            accepted: (self.epoch.elapsed().as_nanos() as u64).max(1),
            last_active: AtomicU64::new(0),
            partial_progress: AtomicU64::new(0),
            writer_progress: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            evicted: CancellationToken::new(),
            counted: AtomicBool::new(true),
        });
        let entry = inner.hosts.entry(host).or_default();
        entry.listed = listed;
        entry.conns.push(state.clone());
        inner.total += 1;
        if !listed {
            inner.unlisted += 1;
        }
        Some(Admitted { table: self.clone(), state })
    }

    /// Among the addresses `eligible` accepts, closes the least recently active connection of
    /// the one holding the most, or of `newcomer`'s own address when it holds as many. Returns
    /// whether one was closed.
    fn evict_for(&self, inner: &mut Inner, newcomer: IpAddr, eligible: impl Fn(&Host) -> bool) -> bool {
        let own = inner.hosts.get(&newcomer).filter(|h| eligible(h)).map_or(0, |h| h.conns.len());
        let heaviest = inner
            .hosts
            .iter()
            .filter(|(_, h)| eligible(h) && !h.conns.is_empty())
            .max_by_key(|(_, h)| (h.conns.len(), std::cmp::Reverse(lru_stamp(h))))
            .map(|(ip, h)| (*ip, h.conns.len()));
        let victim = match heaviest {
            None => return false,
            Some((_, most)) if own > 0 && own >= most => newcomer,
            Some((ip, _)) => ip,
        };
        self.evict_lru_of(inner, victim, None)
    }

    /// Closes `host`'s connection that matters least: the oldest of those that never completed
    /// a record, else the least recently active, unless that was active within `spare_busy`.
    fn evict_lru_of(&self, inner: &mut Inner, host: IpAddr, spare_busy: Option<Duration>) -> bool {
        let Some(h) = inner.hosts.get(&host) else { return false };
        let Some(victim) = h.conns.iter().min_by_key(|c| c.activity()).cloned() else {
            return false;
        };
        if let (Some(busy), (true, at)) = (spare_busy, victim.activity())
            && Duration::from_nanos(victim.now().saturating_sub(at)) < busy
        {
            return false;
        }
        self.evict_locked(inner, &victim, Reason::Share);
        true
    }

    fn evict_locked(&self, inner: &mut Inner, victim: &Arc<ConnState>, reason: Reason) {
        tracing::debug!(peer = %victim.host, ?reason, "closing a connection to make room");
        match reason {
            Reason::Share => &self.evicted_for_share,
            Reason::StalledRecord => &self.evicted_stalled_records,
            Reason::StalledWriter => &self.evicted_stalled_writers,
        }
        .fetch_add(1, Ordering::Relaxed);
        Self::uncount(inner, victim);
        victim.evicted.cancel();
    }

    fn uncount(inner: &mut Inner, state: &Arc<ConnState>) {
        if !state.counted.swap(false, Ordering::AcqRel) {
            return;
        }
        inner.total -= 1;
        if !state.listed {
            inner.unlisted -= 1;
        }
        if let Some(h) = inner.hosts.get_mut(&state.host) {
            h.conns.retain(|c| !Arc::ptr_eq(c, state));
            if h.conns.is_empty() {
                inner.hosts.remove(&state.host);
            }
        }
    }

    fn remove(&self, state: &Arc<ConnState>) {
        let mut inner = self.lock();
        Self::uncount(&mut inner, state);
    }

    /// Closes, to free request memory for `asking`, the connection (other than `asking`) whose
    /// partial record has made no progress for the longest, if that is at least `stalled`.
    /// Returns whether one was closed.
    pub fn evict_stalled_record(&self, asking: &ConnState, stalled: Duration) -> bool {
        self.evict_stalled(asking, stalled, Reason::StalledRecord, |c| &c.partial_progress)
    }

    /// Closes, to free reply memory for `asking`, the connection whose writer has made no
    /// progress for the longest, if that is at least `stalled`.
    pub fn evict_stalled_writer(&self, asking: &ConnState, stalled: Duration) -> bool {
        self.evict_stalled(asking, stalled, Reason::StalledWriter, |c| &c.writer_progress)
    }

    fn evict_stalled(
        &self,
        asking: &ConnState,
        stalled: Duration,
        reason: Reason,
        stamp: impl Fn(&ConnState) -> &AtomicU64,
    ) -> bool {
        let mut inner = self.lock();
        let victim = inner
            .hosts
            .values()
            .flat_map(|h| h.conns.iter())
            .filter(|c| !std::ptr::eq(c.as_ref(), asking))
            // A paused connection is not reading its record by its own choice; its writer, on
            // the other hand, waits for the peer, and pausing is what a peer that reads no
            // replies makes the reader do.
            .filter(|c| reason != Reason::StalledRecord || !c.paused.load(Ordering::Relaxed))
            .filter_map(|c| Some((c.stalled_for(stamp(c))?, c)))
            .filter(|(d, _)| *d >= stalled)
            .max_by_key(|(d, _)| *d)
            .map(|(_, c)| c.clone());
        match victim {
            Some(v) => {
                self.evict_locked(&mut inner, &v, reason);
                true
            }
            None => false,
        }
    }

    /// A connection was closed because its record missed its deadline.
    pub fn count_record_timeout(&self) {
        self.records_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> TableStats {
        let inner = self.lock();
        TableStats {
            connections: inner.total,
            unlisted_connections: inner.unlisted,
            evicted_for_share: self.evicted_for_share.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            evicted_stalled_records: self.evicted_stalled_records.load(Ordering::Relaxed),
            evicted_stalled_writers: self.evicted_stalled_writers.load(Ordering::Relaxed),
            records_timed_out: self.records_timed_out.load(Ordering::Relaxed),
        }
    }
}

/// When a host's least recently active connection was last active.
fn lru_stamp(h: &Host) -> u64 {
    h.conns.iter().map(|c| c.activity()).min().unwrap_or((false, 0)).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    const SHARES: Shares = Shares { total: 6, per_host: 4, unlisted_total: 2, unlisted_per_host: 1 };

    #[test]
    fn a_host_over_its_share_closes_its_own_oldest() {
        let t = ConnectionTable::new(SHARES);
        let mine: Vec<_> = (0..4).map(|_| t.admit(ip(2), true).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(2));
        mine[1].state.touch();
        mine[0].state.touch();
        let _fifth = t.admit(ip(2), true).unwrap();
        let closed: Vec<bool> = mine.iter().map(|a| a.state.evicted().is_cancelled()).collect();
        assert_eq!(closed, [false, false, true, false], "the least recently active one went");
        assert_eq!(t.stats().connections, 4);
    }

    #[test]
    fn when_full_a_fresh_address_gets_in_and_the_heaviest_gives_way() {
        let t = ConnectionTable::new(SHARES);
        let heavy: Vec<_> = (0..4).map(|_| t.admit(ip(2), true).unwrap()).collect();
        let light: Vec<_> = (0..2).map(|_| t.admit(ip(3), true).unwrap()).collect();
        let fresh = t.admit(ip(4), true).expect("a fresh address is never refused");
        assert_eq!(heavy.iter().filter(|a| a.state.evicted().is_cancelled()).count(), 1);
        assert!(light.iter().all(|a| !a.state.evicted().is_cancelled()));
        // An address holding fewer than the heaviest still takes from the heaviest...
        let again = t.admit(ip(3), true).unwrap();
        let closed = |v: &[Admitted]| v.iter().filter(|a| a.state.evicted().is_cancelled()).count();
        assert_eq!((closed(&heavy), closed(&light)), (2, 0));
        // ... and one as heavy as any other churns its own connections.
        let third = t.admit(ip(3), true).unwrap();
        assert_eq!((closed(&heavy), closed(&light)), (2, 1));
        assert_eq!(t.stats().connections, 6);
        drop((fresh, again, third));
        assert_eq!(t.stats().connections, 3);
    }

    #[test]
    fn unlisted_hosts_have_a_small_share_and_never_push_out_listed_ones() {
        let t = ConnectionTable::new(SHARES);
        let a = t.admit(ip(9), false).unwrap();
        let b = t.admit(ip(9), false).unwrap();
        assert!(a.state.evicted().is_cancelled(), "one per unlisted host");
        let c = t.admit(ip(10), false).unwrap();
        assert_eq!(t.stats().unlisted_connections, 2);
        let d = t.admit(ip(11), false).unwrap();
        assert_eq!(t.stats().unlisted_connections, 2, "the unlisted share is full: one gave way");
        let listed: Vec<_> = (0..4).map(|_| t.admit(ip(1), true).unwrap()).collect();
        assert!(
            !b.state.evicted().is_cancelled()
                || !c.state.evicted().is_cancelled()
                || !d.state.evicted().is_cancelled()
        );
        // Full: a listed newcomer takes an unlisted slot first.
        let e = t.admit(ip(2), true).unwrap();
        assert_eq!(t.stats().unlisted_connections, 1);
        let f = t.admit(ip(3), true).unwrap();
        assert_eq!(t.stats().unlisted_connections, 0);
        // Now every slot is a listed host's: an unlisted newcomer is refused.
        assert!(t.admit(ip(12), false).is_none());
        assert_eq!(t.stats().refused, 1);
        assert!(listed.iter().all(|a| !a.state.evicted().is_cancelled()));
        drop((e, f));
    }

    #[test]
    fn the_longest_stalled_partial_record_goes_first() {
        let t = ConnectionTable::new(SHARES);
        let asking = t.admit(ip(1), true).unwrap();
        let old = t.admit(ip(2), true).unwrap();
        let young = t.admit(ip(3), true).unwrap();
        let paused = t.admit(ip(4), true).unwrap();
        old.state.partial_progress(true);
        paused.state.partial_progress(true);
        paused.state.set_paused(true);
        std::thread::sleep(Duration::from_millis(20));
        young.state.partial_progress(true);
        assert!(!t.evict_stalled_record(&asking.state, Duration::from_secs(5)), "nothing stalled that long");
        assert!(t.evict_stalled_record(&asking.state, Duration::from_millis(10)));
        assert!(old.state.evicted().is_cancelled());
        assert!(!young.state.evicted().is_cancelled() && !paused.state.evicted().is_cancelled());
        assert_eq!(t.stats().evicted_stalled_records, 1);
    }

    /// A connection whose peer reads no replies has its reader paused (waiting for reply room);
    /// that does not shield its stalled writer.
    #[test]
    fn a_paused_connection_with_a_stalled_writer_can_be_closed() {
        let t = ConnectionTable::new(SHARES);
        let asking = t.admit(ip(1), true).unwrap();
        let hoarder = t.admit(ip(2), true).unwrap();
        hoarder.state.writer_progress(true);
        hoarder.state.set_paused(true);
        std::thread::sleep(Duration::from_millis(20));
        assert!(t.evict_stalled_writer(&asking.state, Duration::from_millis(10)));
        assert!(hoarder.state.evicted().is_cancelled());
        assert_eq!(t.stats().evicted_stalled_writers, 1);
    }
}
