//! The duplicate-request cache (DRC): remembers the replies of non-idempotent calls so that a
//! retransmission (same xid, possibly on a new connection or over UDP) is answered with the
//! original reply instead of executing again. A REMOVE retried after its reply was lost must not
//! answer NOENT.
//!
//! The key is the client IP, xid, program, version, procedure, a keyed checksum of the argument
//! bytes, a keyed checksum of the credential (flavor, uid, gid and groups) and whether the source
//! port is privileged. A reused xid with other arguments misses, and so does a call from the same
//! host under another identity: a cached reply is only ever given to the caller it belongs to.
//! The source port itself is deliberately not part of the key: a client that reconnects (the
//! Linux client usually, but not always, keeps its port) retransmits from a new one, and must
//! still be answered from the cache. Only its class counts, so that on a `secure` export a local
//! user on the client host, sending from an unprivileged port, cannot collect the reply of a call
//! made from a privileged one. (knfsd keys on the full address including the port; ganesha keeps
//! a cache per connection and carries it over on reconnect.)
//!
//! An entry is either in progress (the original is executing; a duplicate is parked until it
//! finishes, up to a bound) or done (its reply bytes are replayed). Entries expire after a
//! time-to-live.
//!
//! Every client address has its own share: its entries in insertion order, with a bound on their
//! count and bytes. A client over its share gives back its own oldest entries. When the cache as
//! a whole is over its bounds, the client holding the most bytes gives back first, so one client
//! can never evict another's entries while it holds more than that client; any number of
//! clients each keep at least an equal part of the cache. The whole-cache bounds are applied
//! when a call completes and its reply is kept, not when it starts: a call that turns out to be
//! refused (see [`DrcTicket::finish_uncached`]) then costs no other client anything, and the
//! cache exceeds its bounds by at most the calls in progress (each one charged
//! [`ENTRY_CHARGE`] bytes, and bounded per client by its share). Every bound costs O(log
//! clients) amortised per request.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::Cred;
use super::stats::{DrcCounters, DrcSnapshot};

/// Bounds and timings of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrcConfig {
    /// Most entries held at once (in progress and done).
    pub max_entries: usize,
    /// Most bytes held at once: reply bytes plus a fixed bookkeeping charge per entry.
    pub max_bytes: usize,
    /// Most entries one client address holds (capped by `max_entries`).
    pub max_entries_per_client: usize,
    /// Most bytes one client address holds (capped by `max_bytes`).
    pub max_bytes_per_client: usize,
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
            max_entries_per_client: 16 * 1024,
            max_bytes_per_client: 32 << 20,
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
    /// Keyed checksum of the credential ([`Drc::cred_checksum`]), so another identity misses.
    pub cred_sum: u64,
    /// Whether the source port is below 1024 (exports(5) `secure`).
    pub privileged_port: bool,
}

/// Bookkeeping bytes charged per entry on top of its reply: key, entry, queue slot, map overhead.
pub const ENTRY_CHARGE: usize = 192;

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

/// One client address's part of the cache.
#[derive(Default)]
struct Share {
    /// Its entries in insertion order: (seq, inserted at, key). Slots whose entry is gone are
    /// skipped when they reach the front, and swept when they pile up.
    order: VecDeque<(u64, Instant, DrcKey)>,
    entries: usize,
    bytes: usize,
}

/// The tables' hasher: foldhash with a per-process random seed. Every lookup of a call hashes
/// its key several times, and SipHash made the DRC a seventh of a CREATE's cost; the key's
/// checksums are already SipHash under a secret key, so a client cannot aim at a bucket.
type FastHash = foldhash::fast::RandomState;

#[derive(Default)]
struct DrcState {
    entries: HashMap<DrcKey, Entry, FastHash>,
    shares: HashMap<IpAddr, Share, FastHash>,
    /// (bytes held, client) of every share, to find the largest client.
    by_bytes: BTreeSet<(usize, IpAddr)>,
    next_seq: u64,
    bytes: usize,
}

impl DrcState {
    /// Adjusts a client's share by `entries` and `bytes` (signed), keeping the index in order and
    /// dropping a share that holds nothing.
    fn account(&mut self, client: IpAddr, entries: isize, bytes: isize) {
        let share = self.shares.entry(client).or_default();
        self.by_bytes.remove(&(share.bytes, client));
        share.entries = share.entries.checked_add_signed(entries).expect("share entry count");
        share.bytes = share.bytes.checked_add_signed(bytes).expect("share byte count");
        self.bytes = self.bytes.checked_add_signed(bytes).expect("cache byte count");
        if share.entries == 0 {
            self.shares.remove(&client);
        } else {
            self.by_bytes.insert((share.bytes, client));
            // Slots of entries removed out of order (abandoned, refused, expired on a hit) stay
            // in the queue until they reach its front; sweep them before they pile up.
            if share.order.len() > 2 * share.entries + 64 {
                let entries = &self.entries;
                share.order.retain(|(s, _, k)| entries.get(k).is_some_and(|e| e.seq == *s));
            }
        }
    }

    /// Removes the entry under `key` if it is still the one with `seq`.
    fn remove_if(&mut self, key: &DrcKey, seq: u64) -> bool {
        match self.entries.get(key) {
            Some(e) if e.seq == seq => {
                let e = self.entries.remove(key).expect("entry present");
                self.account(key.client, -1, -(e.charge as isize));
                true
            }
            _ => false,
        }
    }

    /// Removes the oldest live entry of `client`. `false` if it has none.
    fn pop_oldest(&mut self, client: IpAddr) -> bool {
        loop {
            let Some(share) = self.shares.get_mut(&client) else { return false };
            let Some((seq, _, key)) = share.order.pop_front() else { return false };
            if self.remove_if(&key, seq) {
                return true;
            }
        }
    }

    /// Removes the entries of `client` whose time-to-live has run out (they are at the front of
    /// its queue). Returns how many went.
    fn expire_client(&mut self, client: IpAddr, now: Instant, ttl: Duration) -> u64 {
        let mut expired = 0;
        while let Some(share) = self.shares.get_mut(&client) {
            let Some(&(seq, at, key)) = share.order.front() else { break };
            if now.saturating_duration_since(at) < ttl {
                break;
            }
            share.order.pop_front();
            if self.remove_if(&key, seq) {
                expired += 1;
            }
        }
        expired
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

    /// The checksum of a call's credential that goes into its [`DrcKey`]: the flavor and the
    /// identity it claims. The AUTH_SYS stamp and machine name are left out: a client may
    /// marshal a new stamp when it retransmits, and neither decides what the call may do.
    pub fn cred_checksum(&self, cred: &Cred) -> u64 {
        self.hasher.hash_one((cred.flavor as u32, cred.uid, cred.gid, &cred.gids))
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

    /// A client's bounds: its share, never more than the whole cache.
    fn client_bounds(&self) -> (usize, usize) {
        let c = &self.config;
        (c.max_entries_per_client.min(c.max_entries), c.max_bytes_per_client.min(c.max_bytes))
    }

    fn begin_at(&self, key: DrcKey, port: u16, now: Instant) -> DrcLookup<'_> {
        let mut st = self.lock();
        self.count_expired(st.expire_client(key.client, now, self.config.ttl));
        let seq = st.next_seq;
        let slot = match st.entries.entry(key) {
            std::collections::hash_map::Entry::Vacant(slot) => slot,
            std::collections::hash_map::Entry::Occupied(e) => match &e.get().state {
                EntryState::Done(reply) => {
                    self.counters.hits.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(xid = key.xid, client = %key.client, port, original_port = e.get().port, "drc hit, replaying");
                    return DrcLookup::Hit(reply.clone());
                }
                EntryState::InProgress(tx) => {
                    self.counters.parked.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(xid = key.xid, client = %key.client, port, "drc: original in progress, parking duplicate");
                    return DrcLookup::InProgress(DrcWait { drc: self, rx: tx.subscribe() });
                }
            },
        };
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let (tx, _) = watch::channel(None);
        slot.insert(Entry { seq, port, charge: ENTRY_CHARGE, state: EntryState::InProgress(tx) });
        st.next_seq += 1;
        st.shares.entry(key.client).or_default().order.push_back((seq, now, key));
        st.account(key.client, 1, ENTRY_CHARGE as isize);
        self.enforce_client_bounds(&mut st, key.client);
        DrcLookup::Miss(DrcTicket { drc: self, key, seq, finished: false })
    }

    fn count_expired(&self, expired: u64) {
        if expired > 0 {
            self.counters.expirations.fetch_add(expired, Ordering::Relaxed);
        }
    }

    /// Evicts `client`'s oldest entries until it is within its share. An in-progress entry can
    /// be evicted too: its parked duplicates are released unanswered and its eventual reply is
    /// not stored, which keeps the share strict no matter how many of its calls are executing.
    fn enforce_client_bounds(&self, st: &mut DrcState, client: IpAddr) {
        let (max_entries, max_bytes) = self.client_bounds();
        while st.shares.get(&client).is_some_and(|s| s.entries > max_entries || s.bytes > max_bytes) {
            if !st.pop_oldest(client) {
                break;
            }
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Evicts until the whole cache is within its bounds, always from the client holding the
    /// most bytes.
    fn enforce_cache_bounds(&self, st: &mut DrcState) {
        while st.entries.len() > self.config.max_entries || st.bytes > self.config.max_bytes {
            let Some(&(_, largest)) = st.by_bytes.last() else { break };
            if !st.pop_oldest(largest) {
                break;
            }
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finish(&self, key: &DrcKey, seq: u64, reply: Bytes, keep: bool) {
        // The reply was built in a buffer with room to spare (512 bytes for a CREATE reply of
        // about 250); a cache of tens of thousands of entries keeps an exact copy instead, made
        // before the lock is taken.
        let reply =
            if keep && reply.len() <= COMPACT_REPLY_MAX { Bytes::copy_from_slice(&reply) } else { reply };
        let mut st = self.lock();
        let Some(e) = st.entries.get_mut(key) else { return };
        if e.seq != seq {
            return;
        }
        // Wake parked duplicates whether or not the reply can be kept.
        if let EntryState::InProgress(tx) = &e.state {
            tx.send_replace(Some(reply.clone()));
        }
        if !keep || ENTRY_CHARGE + reply.len() > self.client_bounds().1 {
            st.remove_if(key, seq);
            return;
        }
        let added = reply.len();
        e.charge += added;
        e.state = EntryState::Done(reply);
        st.account(key.client, 0, added as isize);
        self.enforce_client_bounds(&mut st, key.client);
        self.enforce_cache_bounds(&mut st);
    }

    fn abandon(&self, key: &DrcKey, seq: u64) {
        self.lock().remove_if(key, seq);
    }

    /// Drops expired entries without waiting for the next call to do it, and gives back the
    /// table space a burst of calls left behind: for a server that has gone quiet. Returns how
    /// many entries expired.
    pub fn expire_idle(&self) -> u64 {
        self.expire_idle_at(Instant::now())
    }

    fn expire_idle_at(&self, now: Instant) -> u64 {
        let mut st = self.lock();
        let clients: Vec<IpAddr> = st.shares.keys().copied().collect();
        let expired = clients.into_iter().map(|c| st.expire_client(c, now, self.config.ttl)).sum();
        self.count_expired(expired);
        let floor = st.entries.len().max(SHRINK_FLOOR);
        if st.entries.capacity() > 4 * floor {
            st.entries.shrink_to(2 * floor);
        }
        for share in st.shares.values_mut() {
            if share.order.capacity() > 4 * share.order.len().max(64) {
                let len = share.order.len();
                share.order.shrink_to(2 * len.max(64));
            }
        }
        if st.shares.capacity() > 4 * st.shares.len().max(64) {
            let len = st.shares.len();
            st.shares.shrink_to(2 * len.max(64));
        }
        expired
    }

    /// Counters plus the current size.
    pub fn snapshot(&self) -> DrcSnapshot {
        let st = self.lock();
        self.counters.snapshot(st.entries.len(), st.bytes)
    }

    /// Entries and bytes `client` holds.
    pub fn client_usage(&self, client: IpAddr) -> (usize, usize) {
        self.lock().shares.get(&client).map_or((0, 0), |s| (s.entries, s.bytes))
    }
}

impl DrcTicket<'_> {
    /// Stores the reply for replay and hands it to every parked duplicate.
    pub fn finish(mut self, reply: Bytes) {
        self.finished = true;
        self.drc.finish(&self.key, self.seq, reply, true);
    }

    /// Hands the reply to every parked duplicate but does not keep it: the call was refused
    /// before it changed anything (or never executed), so a retransmission may simply run.
    pub fn finish_uncached(mut self, reply: Bytes) {
        self.finished = true;
        self.drc.finish(&self.key, self.seq, reply, false);
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
            cred_sum: drc.cred_checksum(&Cred::sys(0, 0, vec![])),
            privileged_port: true,
        }
    }

    fn key_of(drc: &Drc, client: [u8; 4], xid: u32) -> DrcKey {
        DrcKey { client: IpAddr::V4(Ipv4Addr::from(client)), ..key(drc, xid, 12, &xid.to_be_bytes()) }
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

    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
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
        let config = DrcConfig {
            ttl: Duration::from_secs(120),
            max_entries_per_client: 32 * 1024,
            ..DrcConfig::default()
        };
        let drc = Drc::new(config);
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
        let order = &st.shares.values().next().unwrap().order;
        assert!(order.capacity() <= 4 * 64, "{}", order.capacity());
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
        assert!(drc.lock().shares.values().map(|sh| sh.order.len()).sum::<usize>() <= s.entries);
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
        assert!(drc.lock().shares.is_empty());
        assert!(drc.lock().by_bytes.is_empty());
    }

    #[test]
    fn another_credential_or_port_class_misses() {
        let drc = Drc::new(DrcConfig::default());
        let k = key(&drc, 7, 12, b"remove foo");
        miss(drc.begin(k, 800)).finish(Bytes::from_static(b"reply-7"));
        let other_uid = DrcKey { cred_sum: drc.cred_checksum(&Cred::sys(1000, 0, vec![])), ..k };
        miss(drc.begin(other_uid, 800)).finish(Bytes::from_static(b"x"));
        let other_groups = DrcKey { cred_sum: drc.cred_checksum(&Cred::sys(0, 0, vec![4])), ..k };
        miss(drc.begin(other_groups, 800)).finish(Bytes::from_static(b"x"));
        let none = DrcKey { cred_sum: drc.cred_checksum(&Cred::none()), ..k };
        miss(drc.begin(none, 800)).finish(Bytes::from_static(b"x"));
        let unprivileged = DrcKey { privileged_port: false, ..k };
        miss(drc.begin(unprivileged, 40_000)).finish(Bytes::from_static(b"x"));
        // The machine name and stamp are not part of the identity.
        let renamed = Cred { machine: "elsewhere".into(), ..Cred::sys(0, 0, vec![]) };
        assert_eq!(drc.cred_checksum(&renamed), k.cred_sum);
        assert_eq!(hit(drc.begin(k, 801)), &b"reply-7"[..]);
    }

    #[test]
    fn an_uncached_finish_answers_parked_duplicates_and_keeps_nothing() {
        let drc = Drc::new(DrcConfig::default());
        let k = key(&drc, 3, 2, b"setattr");
        let ticket = miss(drc.begin(k, 1));
        let DrcLookup::InProgress(wait) = drc.begin(k, 1) else { panic!("expected in progress") };
        ticket.finish_uncached(Bytes::from_static(b"badhandle"));
        let got = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(wait.reply());
        assert_eq!(got.as_deref(), Some(&b"badhandle"[..]));
        assert_eq!((drc.snapshot().entries, drc.snapshot().bytes), (0, 0));
        miss(drc.begin(k, 1));
    }

    #[test]
    fn a_client_over_its_share_evicts_its_own_entries() {
        let config = DrcConfig { max_entries: 1000, max_entries_per_client: 100, ..DrcConfig::default() };
        let drc = Drc::new(config);
        let victim = key_of(&drc, [10, 0, 0, 1], 1);
        miss(drc.begin(victim, 1)).finish(Bytes::from_static(b"mine"));
        for xid in 0..10_000 {
            miss(drc.begin(key_of(&drc, [10, 0, 0, 2], xid), 1)).finish(Bytes::from(vec![1; 100]));
        }
        assert_eq!(drc.client_usage(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))).0, 100);
        assert_eq!(hit(drc.begin(victim, 1)), &b"mine"[..]);
    }

    #[test]
    fn when_the_cache_is_full_the_largest_client_gives_back_first() {
        // The per-client share is the whole cache, so only the global bound decides.
        let config = DrcConfig { max_entries: 1000, max_bytes: 64 << 20, ..DrcConfig::default() };
        let drc = Drc::new(config);
        let small: Vec<DrcKey> = (0..50).map(|xid| key_of(&drc, [10, 0, 0, 1], xid)).collect();
        for k in &small {
            miss(drc.begin(*k, 1)).finish(Bytes::from_static(b"small"));
        }
        // Many flooders, each growing until the cache is full.
        for xid in 0..20_000 {
            let flooder = [10, 0, 1, (xid % 3) as u8];
            miss(drc.begin(key_of(&drc, flooder, xid), 1)).finish(Bytes::from(vec![1; 200]));
            assert!(drc.snapshot().entries <= 1000);
        }
        for k in &small {
            assert_eq!(hit(drc.begin(*k, 1)), &b"small"[..]);
        }
        let shares: Vec<usize> =
            (0..3).map(|i| drc.client_usage(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))).0).collect();
        assert!(shares.iter().all(|&n| (300..=320).contains(&n)), "{shares:?}");
    }

    #[test]
    fn calls_in_progress_do_not_evict_other_clients() {
        let config = DrcConfig { max_entries: 100, ..DrcConfig::default() };
        let drc = Drc::new(config);
        let kept: Vec<DrcKey> = (0..100).map(|xid| key_of(&drc, [10, 0, 0, 1], xid)).collect();
        for k in &kept {
            miss(drc.begin(*k, 1)).finish(Bytes::from_static(b"kept"));
        }
        // A flood of calls that are all refused: each is in progress for a moment, then dropped.
        for xid in 0..10_000 {
            let ticket = miss(drc.begin(key_of(&drc, [10, 0, 0, 2], xid), 1));
            ticket.finish_uncached(Bytes::from_static(b"refused"));
        }
        let s = drc.snapshot();
        assert_eq!((s.entries, s.evictions), (100, 0));
        for k in &kept {
            assert_eq!(hit(drc.begin(*k, 1)), &b"kept"[..]);
        }
    }
}
