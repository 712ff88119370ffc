//! The duplicate-request cache (DRC): remembers the replies of non-idempotent calls so that a
//! retransmission (same xid, possibly on a new connection or over UDP) is answered with the
//! original reply instead of executing again. A REMOVE retried after its reply was lost must not
//! answer NOENT.
//!
//! The key is the client IP, xid, program, version, procedure and a keyed checksum of the
//! argument bytes. The source port is deliberately not part of the key: the Linux client usually,
//! but not always, reconnects from the same port. A different procedure or different arguments
//! under a reused xid miss.
//!
//! An entry is either in progress (the original is executing; a duplicate is parked until it
//! finishes, up to a bound) or done (its reply bytes are replayed). The cache is bounded by entry
//! count and bytes, and entries expire after a time-to-live. Eviction is oldest-first from an
//! insertion-ordered queue, so every bound costs O(1) amortised per request.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::stats::{DrcCounters, DrcSnapshot};

/// Bounds and timings of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrcConfig {
    /// Most entries held at once (in progress and done).
    pub max_entries: usize,
    /// Most bytes held at once: reply bytes plus a fixed bookkeeping charge per entry.
    pub max_bytes: usize,
    /// How long a done entry can be replayed. Clients give up retransmitting well before this.
    pub ttl: Duration,
    /// How long a duplicate waits for the original to finish before it is dropped (the client
    /// retransmits again, and by then the reply is usually cached).
    pub park_timeout: Duration,
}

impl Default for DrcConfig {
    fn default() -> Self {
        DrcConfig {
            max_entries: 32 * 1024,
            max_bytes: 64 << 20,
            ttl: Duration::from_secs(120),
            park_timeout: Duration::from_secs(30),
        }
    }
}

/// What identifies one call for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DrcKey {
    /// The client's IP address in canonical form (an IPv4-mapped IPv6 address is IPv4).
    pub client: IpAddr,
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
    /// Keyed checksum of the argument bytes, so a reused xid with other arguments misses.
    pub args_sum: u64,
}

/// Bookkeeping bytes charged per entry on top of its reply: key, entry, queue slot, map overhead.
const ENTRY_CHARGE: usize = 160;

/// Replies up to this size are stored as exact copies (see [`Drc::finish`]).
const COMPACT_REPLY_MAX: usize = 4096;

/// Table slots an idle cache keeps however few entries it holds.
const SHRINK_FLOOR: usize = 1024;

enum EntryState {
    /// The original call is executing; duplicates subscribe and wait for `Some(reply)`.
    InProgress(watch::Sender<Option<Bytes>>),
    Done(Bytes),
}

struct Entry {
    /// Distinguishes this entry from an earlier one under the same key, whose queue slot or
    /// ticket may still be around.
    seq: u64,
    /// The client's source port of the original call, for logs only.
    port: u16,
    /// Bytes charged to the cache for this entry.
    charge: usize,
    state: EntryState,
}

#[derive(Default)]
struct DrcState {
    entries: HashMap<DrcKey, Entry>,
    /// Insertion order: (seq, inserted at, key). Slots whose entry is gone or was replaced are
    /// skipped when they reach the front.
    order: VecDeque<(u64, Instant, DrcKey)>,
    next_seq: u64,
    bytes: usize,
}

impl DrcState {
    /// Removes the entry under `key` if it is still the one with `seq`.
    fn remove_if(&mut self, key: &DrcKey, seq: u64) -> bool {
        match self.entries.get(key) {
            Some(e) if e.seq == seq => {
                let e = self.entries.remove(key).expect("entry present");
                self.bytes -= e.charge;
                true
            }
            _ => false,
        }
    }
}

/// The cache. Shared by every transport through the dispatcher.
pub struct Drc {
    config: DrcConfig,
    /// A per-process random SipHash key: a client cannot craft colliding arguments.
    hasher: RandomState,
    state: Mutex<DrcState>,
    counters: DrcCounters,
}

/// The outcome of looking a call up.
pub enum DrcLookup<'a> {
    /// Not cached: execute the call and hand the reply to the ticket.
    Miss(DrcTicket<'a>),
    /// A completed duplicate: send these reply bytes.
    Hit(Bytes),
    /// The original is still executing: wait for its reply.
    InProgress(DrcWait<'a>),
}

/// The right and duty to complete an in-progress entry. Dropping it unfinished (the call was
/// abandoned) removes the entry and releases parked duplicates without a reply.
pub struct DrcTicket<'a> {
    drc: &'a Drc,
    key: DrcKey,
    seq: u64,
    finished: bool,
}

/// A parked duplicate.
pub struct DrcWait<'a> {
    drc: &'a Drc,
    rx: watch::Receiver<Option<Bytes>>,
}

impl Drc {
    pub fn new(config: DrcConfig) -> Self {
        Drc { config, hasher: RandomState::new(), state: Mutex::default(), counters: DrcCounters::default() }
    }

    pub fn config(&self) -> &DrcConfig {
        &self.config
    }

    /// The checksum of a call's argument bytes that goes into its [`DrcKey`].
    pub fn args_checksum(&self, args: &[u8]) -> u64 {
        self.hasher.hash_one(args)
    }

    /// Looks a call up; a miss inserts it as in progress.
    pub fn begin(&self, key: DrcKey, port: u16) -> DrcLookup<'_> {
        self.begin_at(key, port, Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DrcState> {
        // A panic while holding this lock leaves the state consistent (every mutation is a few
        // infallible steps), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin_at(&self, key: DrcKey, port: u16, now: Instant) -> DrcLookup<'_> {
        let mut st = self.lock();
        self.expire(&mut st, now);
        if let Some(e) = st.entries.get(&key) {
            match &e.state {
                EntryState::Done(reply) => {
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(xid = key.xid, client = %key.client, port, original_port = e.port, "drc hit, replaying");
                    return DrcLookup::Hit(reply.clone());
                }
                EntryState::InProgress(tx) => {
                    self.counters.parked.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(xid = key.xid, client = %key.client, port, "drc: original in progress, parking duplicate");
                    return DrcLookup::InProgress(DrcWait { drc: self, rx: tx.subscribe() });
                }
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let seq = st.next_seq;
        st.next_seq += 1;
        let (tx, _) = watch::channel(None);
        st.entries.insert(key, Entry { seq, port, charge: ENTRY_CHARGE, state: EntryState::InProgress(tx) });
        st.bytes += ENTRY_CHARGE;
        st.order.push_back((seq, now, key));
        self.enforce_bounds(&mut st);
        DrcLookup::Miss(DrcTicket { drc: self, key, seq, finished: false })
    }

    /// Drops entries whose time-to-live has run out; they are at the front of the queue. Returns
    /// how many went.
    fn expire(&self, st: &mut DrcState, now: Instant) -> u64 {
        let mut expired = 0;
        while let Some(&(seq, at, key)) = st.order.front() {
            if now.saturating_duration_since(at) < self.config.ttl {
                break;
            }
            st.order.pop_front();
            if st.remove_if(&key, seq) {
                expired += 1;
            }
        }
        if expired > 0 {
            self.counters.expirations.fetch_add(expired, Ordering::Relaxed);
        }
        expired
    }

    /// Evicts oldest-first until both bounds hold. An in-progress entry can be evicted too: its
    /// parked duplicates are released unanswered and its eventual reply is not stored, which keeps
    /// the bound strict no matter how many calls are executing.
    fn enforce_bounds(&self, st: &mut DrcState) {
        while st.entries.len() > self.config.max_entries || st.bytes > self.config.max_bytes {
            let Some((seq, _, key)) = st.order.pop_front() else { break };
            if st.remove_if(&key, seq) {
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn finish(&self, key: &DrcKey, seq: u64, reply: Bytes) {
        // The reply was built in a buffer with room to spare (512 bytes for a CREATE reply of
        // about 250); a cache of tens of thousands of entries keeps an exact copy instead, made
        // before the lock is taken.
        let reply = if reply.len() <= COMPACT_REPLY_MAX { Bytes::copy_from_slice(&reply) } else { reply };
        let mut st = self.lock();
        let Some(e) = st.entries.get_mut(key) else { return };
        if e.seq != seq {
            return;
        }
        // Wake parked duplicates whether or not the reply can be kept.
        if let EntryState::InProgress(tx) = &e.state {
            tx.send_replace(Some(reply.clone()));
        }
        if ENTRY_CHARGE + reply.len() > self.config.max_bytes {
            st.remove_if(key, seq);
            return;
        }
        e.charge += reply.len();
        let added = reply.len();
        e.state = EntryState::Done(reply);
        st.bytes += added;
        self.enforce_bounds(&mut st);
    }

    fn abandon(&self, key: &DrcKey, seq: u64) {
        let mut st = self.lock();
        if st.remove_if(key, seq) && st.order.len() > 2 * st.entries.len() + 64 {
            // Abandoned entries leave dead queue slots behind; drop them before they pile up.
            let DrcState { entries, order, .. } = &mut *st;
            order.retain(|(s, _, k)| entries.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    /// Drops expired entries without waiting for the next call to do it, and gives back the
    /// table space a burst of calls left behind: for a server that has gone quiet. Returns how
    /// many entries expired.
    pub fn expire_idle(&self) -> u64 {
        self.expire_idle_at(Instant::now())
    }

    fn expire_idle_at(&self, now: Instant) -> u64 {
        let mut st = self.lock();
        let expired = self.expire(&mut st, now);
        let floor = st.entries.len().max(SHRINK_FLOOR);
        if st.entries.capacity() > 4 * floor {
            st.entries.shrink_to(2 * floor);
        }
        if st.order.capacity() > 4 * floor {
            let len = st.order.len();
            st.order.shrink_to(len.max(2 * floor));
        }
        expired
    }

    /// Counters plus the current size.
    pub fn snapshot(&self) -> DrcSnapshot {
        let st = self.lock();
        self.counters.snapshot(st.entries.len(), st.bytes)
    }
}

impl DrcTicket<'_> {
    /// Stores the reply for replay and hands it to every parked duplicate.
    pub fn finish(mut self, reply: Bytes) {
        self.finished = true;
        self.drc.finish(&self.key, self.seq, reply);
    }
}

impl Drop for DrcTicket<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.drc.abandon(&self.key, self.seq);
        }
    }
}

impl DrcWait<'_> {
    /// Waits for the original's reply, at most the configured park timeout. `None` means the
    /// duplicate gets no answer (counted): the wait timed out, or the original was abandoned or
    /// evicted.
    pub async fn reply(mut self) -> Option<Bytes> {
        let waited =
            tokio::time::timeout(self.drc.config.park_timeout, self.rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(reply)) => reply.clone(),
            _ => {
                self.drc.counters.park_dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(drc: &Drc, xid: u32, proc_: u32, args: &[u8]) -> DrcKey {
        DrcKey {
            client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            xid,
            prog: 100003,
            vers: 3,
            proc_,
            args_sum: drc.args_checksum(args),
        }
    }

    fn miss(l: DrcLookup<'_>) -> DrcTicket<'_> {
        match l {
            DrcLookup::Miss(t) => t,
            DrcLookup::Hit(_) => panic!("expected a miss, got a hit"),
            DrcLookup::InProgress(_) => panic!("expected a miss, got in progress"),
        }
    }

    fn hit(l: DrcLookup<'_>) -> Bytes {
        match l {
            DrcLookup::Hit(b) => b,
            DrcLookup::Miss(_) => panic!("expected a hit, got a miss"),
            DrcLookup::InProgress(_) => panic!("expected a hit, got in progress"),
        }
    }

    #[test]
    fn done_entry_is_replayed_from_any_port() {
        let drc = Drc::new(DrcConfig::default());
        let k = key(&drc, 7, 12, b"remove foo");
        miss(drc.begin(k, 800)).finish(Bytes::from_static(b"reply-7"));
        assert_eq!(hit(drc.begin(k, 800)), &b"reply-7"[..]);
        // A retransmission over a new connection from another source port.
        assert_eq!(hit(drc.begin(k, 801)), &b"reply-7"[..]);
        let s = drc.snapshot();
        assert_eq!((s.hits, s.misses, s.entries), (2, 1, 1));
        assert_eq!(s.bytes, ENTRY_CHARGE + 7);
    }

    #[test]
    fn other_arguments_procedure_or_client_miss() {
        let drc = Drc::new(DrcConfig::default());
        let k = key(&drc, 7, 12, b"remove foo");
        miss(drc.begin(k, 800)).finish(Bytes::from_static(b"reply-7"));
        let other_args = key(&drc, 7, 12, b"remove bar");
        miss(drc.begin(other_args, 800)).finish(Bytes::from_static(b"x"));
        let other_proc = key(&drc, 7, 13, b"remove foo");
        miss(drc.begin(other_proc, 800)).finish(Bytes::from_static(b"x"));
        let other_client = DrcKey { client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), ..k };
        miss(drc.begin(other_client, 800)).finish(Bytes::from_static(b"x"));
        let other_vers = DrcKey { vers: 2, ..k };
        miss(drc.begin(other_vers, 800)).finish(Bytes::from_static(b"x"));
        assert_eq!(hit(drc.begin(k, 800)), &b"reply-7"[..]);
    }

    #[tokio::test]
    async fn duplicate_parks_until_the_original_finishes() {
        let drc = Drc::new(DrcConfig::default());
        let k = key(&drc, 9, 8, b"create");
        let ticket = miss(drc.begin(k, 700));
        let DrcLookup::InProgress(wait) = drc.begin(k, 700) else { panic!("expected in progress") };
        let (got, ()) = tokio::join!(wait.reply(), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ticket.finish(Bytes::from_static(b"created"));
        });
        assert_eq!(got.as_deref(), Some(&b"created"[..]));
        let s = drc.snapshot();
        assert_eq!((s.parked, s.park_dropped, s.misses), (1, 0, 1));
    }

    #[tokio::test]
    async fn parked_duplicate_is_released_when_the_wait_times_out_or_the_call_is_abandoned() {
        let drc = Drc::new(DrcConfig { park_timeout: Duration::from_millis(30), ..DrcConfig::default() });
        let k = key(&drc, 9, 8, b"create");
        let ticket = miss(drc.begin(k, 700));
        let DrcLookup::InProgress(wait) = drc.begin(k, 700) else { panic!("expected in progress") };
        assert_eq!(wait.reply().await, None);
        let DrcLookup::InProgress(wait) = drc.begin(k, 700) else { panic!("expected in progress") };
        drop(ticket);
        assert_eq!(wait.reply().await, None);
        assert_eq!(drc.snapshot().park_dropped, 2);
        // The abandoned call left nothing behind: the next retransmission executes.
        assert_eq!(drc.snapshot().entries, 0);
        miss(drc.begin(k, 700));
    }

    #[test]
    fn an_idle_cache_expires_its_entries_and_gives_back_its_tables() {
        let drc = Drc::new(DrcConfig { ttl: Duration::from_secs(120), ..DrcConfig::default() });
        let t0 = Instant::now();
        for xid in 0..20_000 {
            miss(drc.begin_at(key(&drc, xid, 8, b"create"), 1, t0)).finish(Bytes::from(vec![7u8; 200]));
        }
        let late = key(&drc, 99_999, 8, b"create");
        miss(drc.begin_at(late, 1, t0 + Duration::from_secs(100))).finish(Bytes::from_static(b"late"));
        // Nothing has expired yet: everything stays.
        assert_eq!(drc.expire_idle_at(t0 + Duration::from_secs(110)), 0);
        assert_eq!(drc.snapshot().entries, 20_001);
        // No call arrives, yet the first 20,000 go once their time is up, and the tables shrink.
        assert_eq!(drc.expire_idle_at(t0 + Duration::from_secs(121)), 20_000);
        let s = drc.snapshot();
        assert_eq!((s.entries, s.expirations), (1, 20_000));
        assert_eq!(s.bytes, ENTRY_CHARGE + 4);
        let st = drc.lock();
        assert!(st.entries.capacity() <= 4 * SHRINK_FLOOR, "{}", st.entries.capacity());
        assert!(st.order.capacity() <= 4 * SHRINK_FLOOR, "{}", st.order.capacity());
        drop(st);
        assert!(
            matches!(drc.begin_at(late, 1, t0 + Duration::from_secs(122)), DrcLookup::Hit(r) if r == "late")
        );
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let drc = Drc::new(DrcConfig { ttl: Duration::from_secs(120), ..DrcConfig::default() });
        let t0 = Instant::now();
        let k = key(&drc, 1, 10, b"a");
        let k2 = key(&drc, 2, 10, b"a");
        miss(drc.begin_at(k, 1, t0)).finish(Bytes::from_static(b"one"));
        miss(drc.begin_at(k2, 1, t0 + Duration::from_secs(60))).finish(Bytes::from_static(b"two"));
        assert_eq!(hit(drc.begin_at(k, 1, t0 + Duration::from_secs(119))), &b"one"[..]);
        miss(drc.begin_at(k, 1, t0 + Duration::from_secs(121)));
        assert_eq!(hit(drc.begin_at(k2, 1, t0 + Duration::from_secs(121))), &b"two"[..]);
        assert_eq!(drc.snapshot().expirations, 1);
    }

    #[test]
    fn bounded_by_entries_and_bytes_under_many_inserts() {
        let config = DrcConfig { max_entries: 1000, max_bytes: 200 * 1024, ..DrcConfig::default() };
        let drc = Drc::new(config);
        let reply = Bytes::from(vec![0xab; 300]);
        let mut keys = Vec::new();
        for xid in 0..100_000u32 {
            let k = key(&drc, xid, 12, &xid.to_be_bytes());
            miss(drc.begin(k, 1)).finish(reply.clone());
            if xid % 997 == 0 {
                let s = drc.snapshot();
                assert!(s.entries <= config.max_entries, "{s:?}");
                assert!(s.bytes <= config.max_bytes, "{s:?}");
            }
            keys.push(k);
        }
        let s = drc.snapshot();
        assert!(s.entries <= config.max_entries && s.bytes <= config.max_bytes, "{s:?}");
        // The byte bound (200 KiB / 460 bytes) binds before the entry bound.
        assert_eq!(s.entries, config.max_bytes / (ENTRY_CHARGE + 300));
        assert_eq!(s.evictions, 100_000 - s.entries as u64);
        assert!(drc.state.lock().unwrap().order.len() <= s.entries);
        assert_eq!(hit(drc.begin(keys[99_999], 1)), reply);
        miss(drc.begin(keys[0], 1));
    }

    #[test]
    fn a_reply_larger_than_the_cache_is_not_kept() {
        let drc = Drc::new(DrcConfig { max_bytes: 1024, ..DrcConfig::default() });
        let k = key(&drc, 1, 10, b"a");
        miss(drc.begin(k, 1)).finish(Bytes::from(vec![0; 2048]));
        assert_eq!(drc.snapshot().entries, 0);
        miss(drc.begin(k, 1));
    }

    #[test]
    fn abandoned_entries_do_not_grow_the_queue() {
        let drc = Drc::new(DrcConfig::default());
        for xid in 0..10_000 {
            drop(miss(drc.begin(key(&drc, xid, 1, b""), 1)));
        }
        assert_eq!(drc.snapshot().entries, 0);
        assert!(drc.state.lock().unwrap().order.len() <= 64);
    }
}
