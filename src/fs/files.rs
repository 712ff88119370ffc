//! The open-file cache: regular files opened for READ and WRITE stay open between requests,
//! keyed by their wire handle, so a stream of WRITEs costs one `pwrite` each rather than an
//! open, a write and a close. The cache is bounded by count and closes idle files.
//!
//! It also keeps the write path honest: a file with UNSTABLE data that was never committed is
//! synced before it is closed, and every sync or writeback failure is reported to the
//! [`WritebackErrors`] the cache was made with (the NFS write verifier, which changes on it so
//! clients resend what may have been lost).

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::clock::ClockCache;

/// Where a failed sync or writeback is reported: data acknowledged as UNSTABLE may be lost.
pub trait WritebackErrors: Send + Sync + std::fmt::Debug {
    fn writeback_failed(&self, err: &io::Error);
}

/// What a cached file is open for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Read,
    ReadWrite,
}

impl OpenMode {
    /// Whether a file open in this mode serves a request that needs `needed`.
    fn serves(self, needed: OpenMode) -> bool {
        self == OpenMode::ReadWrite || needed == OpenMode::Read
    }
}

/// An open regular file.
#[derive(Debug)]
pub struct OpenFile {
    pub file: File,
    pub mode: OpenMode,
    /// UNSTABLE data was written and not yet committed.
    dirty: AtomicBool,
    errors: Arc<dyn WritebackErrors>,
}

impl OpenFile {
    pub fn new(file: File, mode: OpenMode, errors: Arc<dyn WritebackErrors>) -> Self {
        OpenFile { file, mode, dirty: AtomicBool::new(false), errors }
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Makes written data durable (`fdatasync`). A failure is a writeback error.
    pub fn sync_data(&self) -> io::Result<()> {
        self.sync_with(File::sync_data)
    }

    /// Makes written data and all metadata durable (`fsync`), for FILE_SYNC writes. A failure is
    /// a writeback error.
    pub fn sync_all(&self) -> io::Result<()> {
        self.sync_with(File::sync_all)
    }

    fn sync_with(&self, sync: impl FnOnce(&File) -> io::Result<()>) -> io::Result<()> {
        self.dirty.store(false, Ordering::Release);
        if let Err(e) = sync(&self.file) {
            self.dirty.store(true, Ordering::Release);
            self.errors.writeback_failed(&e);
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        // Closing loses the descriptor that would report a later writeback error, so flush first.
        if self.dirty.load(Ordering::Acquire)
            && let Err(e) = self.file.sync_data()
        {
            self.errors.writeback_failed(&e);
        }
    }
}

#[derive(Clone)]
struct Entry {
    file: Arc<OpenFile>,
    /// Milliseconds since the cache was made, at the last use (for idle closing).
    last_used: Arc<AtomicU64>,
}

/// Bounded cache of open files keyed by wire handle, with CLOCK eviction (O(1) per open).
pub struct OpenFileCache {
    entries: ClockCache<Entry>,
    epoch: Instant,
    errors: Arc<dyn WritebackErrors>,
}

impl OpenFileCache {
    /// A cache of at most `capacity` files, whose sync and writeback failures go to `errors`.
    pub fn new(capacity: usize, errors: Arc<dyn WritebackErrors>) -> Self {
        OpenFileCache { entries: ClockCache::new(capacity), epoch: Instant::now(), errors }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The cached file for `key`, opening it with `open(mode)` when it is not cached, or when
    /// it is needed for writing and the cached one is open for reading only.
    pub fn get_or_open(
        &self,
        key: &Bytes,
        mode: OpenMode,
        open: impl FnOnce(OpenMode) -> io::Result<File>,
    ) -> io::Result<Arc<OpenFile>> {
        let now = self.now_ms();
        if let Some(e) = self.entries.get_if(key, |e| e.file.mode.serves(mode)) {
            e.last_used.store(now, Ordering::Relaxed);
            return Ok(e.file);
        }
        let file = Arc::new(OpenFile::new(open(mode)?, mode, self.errors.clone()));
        let entry = Entry { file: file.clone(), last_used: Arc::new(AtomicU64::new(now)) };
        // Closing what left the cache (and syncing dirty files) happens outside the lock.
        drop(self.entries.insert(key.clone(), entry));
        Ok(file)
    }

    /// The cached file for `key`, if any, without opening.
    pub fn get(&self, key: &Bytes) -> Option<Arc<OpenFile>> {
        self.entries.get(key).map(|e| e.file)
    }

    /// Forgets a file (it was removed, or its handle went stale).
    pub fn remove(&self, key: &Bytes) {
        drop(self.entries.remove(key));
    }

    /// Closes files unused for `max_idle`.
    pub fn close_idle(&self, max_idle: Duration) -> usize {
        let limit = max_idle.as_millis() as u64;
        let now = self.now_ms();
        let idle =
            self.entries.take_where(|e| now.saturating_sub(e.last_used.load(Ordering::Relaxed)) >= limit);
        idle.len()
    }

    /// Syncs and closes everything (shutdown).
    pub fn close_all(&self) {
        drop(self.entries.drain());
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Ignored;
    impl WritebackErrors for Ignored {
        fn writeback_failed(&self, _: &io::Error) {}
    }

    #[test]
    fn bounded_and_reopens_for_write() {
        let dir = tempfile::tempdir().unwrap();
        let cache = OpenFileCache::new(2, Arc::new(Ignored));
        let mut opens = 0;
        for i in 0..5u8 {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, b"x").unwrap();
            cache
                .get_or_open(&Bytes::from(vec![i]), OpenMode::Read, |_| {
                    opens += 1;
                    File::open(&p)
                })
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(opens, 5);
        let p = dir.path().join("f4");
        let f = cache.get_or_open(&Bytes::from(vec![4u8]), OpenMode::ReadWrite, |mode| {
            assert_eq!(mode, OpenMode::ReadWrite);
            std::fs::OpenOptions::new().read(true).write(true).open(&p)
        });
        assert_eq!(f.unwrap().mode, OpenMode::ReadWrite);
        assert_eq!(cache.close_idle(Duration::ZERO), 2);
        assert!(cache.is_empty());
    }
}
