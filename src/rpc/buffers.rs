//! Large I/O buffers kept for reuse: READ replies and incoming WRITE records of up to a transfer
//! (1 MiB) cycle through [`LARGE_BUFFERS`] instead of the allocator. And byte budgets
//! ([`ByteBudget`]): how many bytes of requests and replies the transports may hold at once, so
//! what peers make the server buffer is bounded in total, not only per connection.
//!
//! Each buffer is a block of its own outside the allocator's heaps (the allocator maps blocks of
//! this size separately, see `fs::sys::tune_malloc`). Reusing one costs no page faults; keeping
//! them out of the heaps means the heaps need no large reserve for them; and emptying the pool
//! when the server falls idle hands their memory straight back to the kernel. A buffer comes back
//! when the last reference to its bytes is gone: the writer returns a reply once it is sent, the
//! TCP reader returns a record once its call has run. A buffer something else still refers to
//! (say, a reply the duplicate-request cache keeps) is simply freed later by its last owner.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Capacity of a pooled buffer: the largest transfer plus room for the RPC and NFS headers of a
/// READ reply or a WRITE call (both well under a page).
pub const LARGE_BUFFER_SIZE: usize = (1 << 20) + 4096;

/// Growth that is worth a pooled buffer: smaller blocks come cheaply from the heaps.
pub const LARGE_BUFFER_MIN: usize = 128 << 10;

/// How many free buffers the pool keeps; more in flight than this are freed when they return.
const KEEP: usize = 32;

/// The pool every transport and procedure shares.
pub static LARGE_BUFFERS: LargeBuffers = LargeBuffers::new(LARGE_BUFFER_SIZE, KEEP);

/// A bounded stack of free buffers of one size.
pub struct LargeBuffers {
    size: usize,
    keep: usize,
    free: Mutex<Vec<BytesMut>>,
    /// Buffers allocated because the pool was empty.
    allocated: AtomicU64,
    /// Buffers handed out from the pool.
    reused: AtomicU64,
}

/// What the pool holds and has done, for the operator's memory line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub free: usize,
    pub free_bytes: usize,
    pub allocated: u64,
    pub reused: u64,
}

impl LargeBuffers {
    pub const fn new(size: usize, keep: usize) -> Self {
        LargeBuffers {
            size,
            keep,
            free: Mutex::new(Vec::new()),
            allocated: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    /// An empty buffer with room for `size` bytes.
    pub fn take(&self) -> BytesMut {
        if let Some(buf) = self.lock().pop() {
            self.reused.fetch_add(1, Ordering::Relaxed);
            return buf;
        }
        self.allocated.fetch_add(1, Ordering::Relaxed);
        BytesMut::with_capacity(self.size)
    }

    /// Makes room for `additional` more bytes in `buf`. When that means growing it into a large
    /// block that a pooled buffer can hold, what `buf` holds moves into a pooled buffer (it is
    /// a header at most: callers grow before the bulk arrives); otherwise `buf` grows as usual.
    pub fn reserve(&self, buf: &mut BytesMut, additional: usize) {
        let needed = buf.len() + additional;
        if buf.capacity() - buf.len() >= additional || needed < LARGE_BUFFER_MIN || needed > self.size {
            buf.reserve(additional);
            return;
        }
        let mut large = self.take();
        large.extend_from_slice(buf);
        *buf = large;
    }

    /// Takes back the bytes of a finished reply or record. Kept if nothing else refers to them
    /// and they fill a buffer of the pool's size, give or take where they started in it;
    /// otherwise dropped as usual.
    pub fn give_back(&self, bytes: Bytes) {
        if bytes.len() > self.size {
            return;
        }
        let Ok(mut buf) = bytes.try_into_mut() else { return };
        // A record starts a few bytes into its buffer (after its record marker).
        if !(self.size - 4096..=self.size).contains(&buf.capacity()) {
            return;
        }
        buf.clear();
        // With nothing left in it, the buffer reclaims the bytes before its start in place.
        buf.reserve(self.size);
        let mut free = self.lock();
        if free.len() < self.keep {
            free.push(buf);
        }
    }

    /// Frees every buffer the pool holds, for when the server falls idle.
    pub fn release(&self) -> usize {
        std::mem::take(&mut *self.lock()).len()
    }

    pub fn stats(&self) -> PoolStats {
        let free = self.lock().len();
        PoolStats {
            free,
            free_bytes: free * self.size,
            allocated: self.allocated.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BytesMut>> {
        // The list is valid whatever a panicking holder was doing.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A number of bytes that holders draw from and give back, shared by every connection: the bytes
/// of requests being received or run, or of replies waiting to be sent. Holders ask before they
/// grow, and wait (they stop reading their socket) while the budget is spent.
pub struct ByteBudget {
    limit: usize,
    used: AtomicUsize,
    /// Holders waiting for room; bytes coming back wake them only when there are any, so the
    /// common case costs no lock.
    waiting: AtomicUsize,
    released: Notify,
}

impl ByteBudget {
    pub fn new(limit: usize) -> Arc<ByteBudget> {
        Arc::new(ByteBudget {
            limit,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            released: Notify::new(),
        })
    }

    /// Bytes held now, over every holder.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `n` bytes if they fit. A budget nobody holds anything of always gives, so one
    /// request larger than the whole budget still runs (alone) instead of waiting forever.
    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used == 0 || used.saturating_add(n) <= self.limit).then(|| used + n)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        if n > 0 {
            self.used.fetch_sub(n, Ordering::SeqCst);
            if self.waiting.load(Ordering::SeqCst) > 0 {
                self.released.notify_waiters();
            }
        }
    }
}

/// Bytes held of a [`ByteBudget`]; they go back when it is dropped or shrunk.
pub struct Charge {
    budget: Arc<ByteBudget>,
    bytes: usize,
}

impl Charge {
    /// Nothing held yet.
    pub fn none(budget: &Arc<ByteBudget>) -> Charge {
        Charge { budget: budget.clone(), bytes: 0 }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds exactly `target` bytes if the budget has room for the growth (shrinking always
    /// succeeds). Returns whether it does.
    pub fn try_resize(&mut self, target: usize) -> bool {
        if target <= self.bytes {
            self.budget.give(self.bytes - target);
            self.bytes = target;
            return true;
        }
        if !self.budget.try_take(target - self.bytes) {
            return false;
        }
        self.bytes = target;
        true
    }

    /// Holds exactly `target` bytes, waiting for the budget to have room.
    pub async fn resize(&mut self, target: usize) {
        if self.try_resize(target) {
            return;
        }
        let budget = self.budget.clone();
        // Counted as waiting before looking again, so a release in between is not missed (the
        // releaser sees the count after giving its bytes back); uncounted however this ends.
        budget.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&budget);
        loop {
            let released = budget.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.try_resize(target) {
                return;
            }
            released.await;
        }
    }

    /// Holds exactly `target` bytes, over the budget if need be: for memory that already exists
    /// (a reply came out larger than was reserved for it). Callers keep the excess small.
    pub fn force_resize(&mut self, target: usize) {
        if !self.try_resize(target) {
            self.budget.used.fetch_add(target - self.bytes, Ordering::AcqRel);
            self.bytes = target;
        }
    }

    /// Moves what this charge holds beyond `keep` bytes into a new charge, for memory that
    /// changes hands (a received record goes on to its call); `None` when there is none.
    pub fn split_off_beyond(&mut self, keep: usize) -> Option<Charge> {
        let moved = self.bytes.saturating_sub(keep);
        if moved == 0 {
            return None;
        }
        self.bytes -= moved;
        Some(Charge { budget: self.budget.clone(), bytes: moved })
    }
}

struct Waiting<'a>(&'a ByteBudget);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Buf, BufMut};

    use super::*;

    const SIZE: usize = LARGE_BUFFER_SIZE;

    #[test]
    fn a_sent_reply_comes_back_as_the_same_buffer() {
        let pool = LargeBuffers::new(SIZE, 4);
        let mut reply = BytesMut::with_capacity(64);
        reply.put_slice(b"rpc header");
        pool.reserve(&mut reply, 1 << 20);
        assert_eq!(&reply[..], b"rpc header", "the header moved along");
        assert!(reply.capacity() >= SIZE);
        let at = reply.as_ptr();
        reply.put_bytes(7, 1 << 20);
        pool.give_back(reply.freeze());
        assert_eq!(pool.stats().free, 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), at, "the same memory is handed out again");
        assert!(again.is_empty() && again.capacity() >= SIZE);
        assert_eq!(pool.stats(), PoolStats { free: 0, free_bytes: 0, allocated: 1, reused: 1 });
    }

    #[test]
    fn a_record_taken_from_after_its_marker_comes_back_whole() {
        let pool = LargeBuffers::new(SIZE, 4);
        let mut buf = pool.take();
        let at = buf.as_ptr();
        buf.put_bytes(1, SIZE);
        buf.advance(4);
        let record = buf.split_to(SIZE - 4 - 100).freeze();
        drop(buf);
        let keep = record.clone();
        drop(record);
        pool.give_back(keep);
        let again = pool.take();
        assert_eq!(again.as_ptr(), at);
        assert!(again.capacity() >= SIZE);
    }

    #[test]
    fn shared_small_or_surplus_buffers_are_not_kept() {
        let pool = LargeBuffers::new(SIZE, 2);
        // Still referred to elsewhere (a cached reply).
        let shared = pool.take().freeze();
        let cached = shared.clone();
        pool.give_back(shared);
        assert_eq!(pool.stats().free, 0);
        drop(cached);
        // Not of the pool's size.
        pool.give_back(BytesMut::with_capacity(4096).freeze());
        pool.give_back(Bytes::from(vec![0u8; 3 << 20]));
        assert_eq!(pool.stats().free, 0);
        // Beyond what the pool keeps.
        let bufs: Vec<_> = (0..3).map(|_| pool.take()).collect();
        for b in bufs {
            pool.give_back(b.freeze());
        }
        assert_eq!(pool.stats().free, 2);
        assert_eq!(pool.release(), 2);
        assert_eq!(pool.stats().free, 0);
    }

    #[tokio::test]
    async fn a_byte_budget_makes_holders_wait_and_gives_back_on_drop() {
        let budget = ByteBudget::new(100);
        let mut a = Charge::none(&budget);
        assert!(a.try_resize(80));
        let mut b = Charge::none(&budget);
        assert!(!b.try_resize(30), "over the budget");
        assert!(b.try_resize(20));
        assert_eq!(budget.used(), 100);
        assert!(a.split_off_beyond(80).is_none());
        let moved = a.split_off_beyond(50).unwrap();
        assert_eq!((a.bytes(), moved.bytes(), budget.used()), (50, 30, 100));
        let waiter = tokio::spawn(async move {
            b.resize(50).await;
            b
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(moved);
        let b = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!((b.bytes(), budget.used()), (50, 100));
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
        // An empty budget gives even more than its limit, so a huge request runs alone.
        let mut huge = Charge::none(&budget);
        assert!(huge.try_resize(500));
        let mut forced = Charge::none(&budget);
        forced.force_resize(10);
        assert_eq!(budget.used(), 510);
    }

    #[test]
    fn small_growth_stays_out_of_the_pool() {
        let pool = LargeBuffers::new(SIZE, 2);
        let mut reply = BytesMut::with_capacity(64);
        pool.reserve(&mut reply, 4096);
        assert!(reply.capacity() < LARGE_BUFFER_MIN);
        pool.reserve(&mut reply, 4 << 20);
        assert!(reply.capacity() >= 4 << 20);
        assert_eq!(pool.stats().allocated, 0);
    }
}
