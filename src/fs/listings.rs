//! The directory-listing cache: what `getdents` said about recently listed directories (each
//! entry's name, inode number, type and cookie), kept while a directory does not change. The pages
//! of a listing, and listings repeated over an unchanged directory, then skip `getdents`, which on
//! tmpfs costs about as much per entry as the `statx` READDIRPLUS makes of every entry anyway.
//! Attributes are not kept: they are read afresh on every call. A listing may learn its entries'
//! handles, from the inode-handle cache once it has verified them; such a handle is served
//! only to an entry whose fresh attributes show the same inode (number and birth time), the
//! inode-handle cache's own rule, which spares a lookup in that cache per entry.
//!
//! A listing is served only while the directory's ctime, mtime and size are those it was read
//! under; every call has just read them, resolving the directory's handle. Every change to a
//! directory's entries sets its ctime, but from a clock that may lag a tick behind, truncated to
//! the filesystem's granularity, so two changes in quick succession can leave the same ctime. A
//! listing is therefore kept only when the directory's ctime lies well before the listing was
//! read (git's rule for racily clean files): any later change then shows a later ctime. A ctime in
//! whole milliseconds suggests a filesystem with coarse timestamps (FAT, some network
//! filesystems), which must have been quiet for two seconds; one in nanoseconds, for a tenth.
//!
//! A listing is kept as a prefix of the directory, from its first entry on: pages extend it as
//! clients read further. Cookies are the filesystem's own, so a cookie the cache does not know is
//! simply read from the disk. The cache is bounded in entries and directories and drops what is
//! not used.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::attr::{Attr, Timestamp};
use super::sys::RawDirEntry;

/// Entries kept over all directories: about 190 bytes each with their names, handles and index,
/// so at most about 3 MiB.
pub const LISTED_ENTRIES: usize = 16 * 1024;

/// Directories kept, including those too big to keep entries for.
const LISTED_DIRECTORIES: usize = 1024;

/// One incarnation of a directory in one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DirKey {
    fsid: u64,
    dev_major: u32,
    dev_minor: u32,
    ino: u64,
    btime: Option<Timestamp>,
}

impl DirKey {
    fn of(fsid: u64, dir: &Attr) -> DirKey {
        DirKey { fsid, dev_major: dir.dev_major, dev_minor: dir.dev_minor, ino: dir.ino, btime: dir.btime }
    }
}

/// What a directory's entries were read under: any change to them changes its ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirVersion {
    ctime: Timestamp,
    mtime: Timestamp,
    size: u64,
}

impl DirVersion {
    fn of(dir: &Attr) -> DirVersion {
        DirVersion { ctime: dir.ctime, mtime: dir.mtime, size: dir.size }
    }
}

/// Whether a listing of the directory `dir`, read from `read_at` on, may be kept: its last change
/// lies so far back that any later change shows another ctime.
pub fn settled(dir: &Attr, read_at: SystemTime) -> bool {
    let coarse = dir.ctime.nanos % 1_000_000 == 0;
    let quiet = if coarse { Duration::from_secs(2) } else { Duration::from_millis(100) };
    let Ok(ctime_nanos) = u64::try_from(dir.ctime.seconds) else { return false };
    let ctime = SystemTime::UNIX_EPOCH
        + Duration::from_secs(ctime_nanos)
        + Duration::from_nanos(dir.ctime.nanos.into());
    read_at.duration_since(ctime).is_ok_and(|age| age > quiet)
}

/// The verified handle of the inode an entry named when it was learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHandle {
    pub handle: Bytes,
    pub mount_id: u64,
    pub ino: u64,
    pub btime: Timestamp,
}

impl KnownHandle {
    /// Whether the handle is that of the inode `attr` (read by the entry's name) describes: the
    /// same inode number and birth time on the same mount (not one mounted on the entry since).
    pub fn fits(&self, attr: &Attr) -> bool {
        attr.ino == self.ino && attr.btime == Some(self.btime) && attr.mount_id == self.mount_id
    }
}

/// What the cache knows of an entry's handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedHandle {
    /// The entry was read from the disk, not from a kept listing: there is nothing to learn into.
    NotKept,
    /// The entry is kept; its handle is not learned yet.
    Unknown,
    Known(KnownHandle),
}

/// An entry as the cache gives it out, or as read from the disk.
#[derive(Debug, Clone)]
pub struct ListedEntry {
    pub entry: RawDirEntry,
    pub handle: ListedHandle,
}

impl From<RawDirEntry> for ListedEntry {
    fn from(entry: RawDirEntry) -> ListedEntry {
        ListedEntry { entry, handle: ListedHandle::NotKept }
    }
}

struct Listing {
    version: DirVersion,
    /// The directory's first entries, in its order.
    entries: Vec<ListedEntry>,
    /// Index of the entry that follows each cookie.
    after: HashMap<u64, usize>,
    /// `entries` is the whole directory.
    complete: bool,
    /// The directory has more entries than the cache keeps: nothing is recorded for this version.
    oversized: bool,
    used: Instant,
}

impl Listing {
    fn empty(version: DirVersion) -> Listing {
        Listing {
            version,
            entries: Vec::new(),
            after: HashMap::new(),
            complete: false,
            oversized: false,
            used: Instant::now(),
        }
    }

    /// Where the entries following `cookie` start (0 is the directory's start).
    fn position(&self, cookie: u64) -> Option<usize> {
        if cookie == 0 { Some(0) } else { self.after.get(&cookie).copied() }
    }

    /// The cookie that resumes after the last entry kept.
    fn end_cookie(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.entry.next_offset)
    }
}

struct Inner {
    dirs: HashMap<DirKey, Listing>,
    /// Entries over all listings.
    entries: usize,
}

impl Inner {
    fn remove(&mut self, key: &DirKey) {
        if let Some(l) = self.dirs.remove(key) {
            self.entries -= l.entries.len();
        }
    }

    /// Drops the least recently used listings other than `keep` until `more` entries and one
    /// more directory fit.
    fn make_room(&mut self, keep: &DirKey, more: usize, capacity: usize) {
        while self.entries + more > capacity
            || (self.dirs.len() >= LISTED_DIRECTORIES && !self.dirs.contains_key(keep))
        {
            let oldest =
                self.dirs.iter().filter(|(k, _)| *k != keep).min_by_key(|(_, l)| l.used).map(|(k, _)| *k);
            match oldest {
                Some(k) => self.remove(&k),
                None => return,
            }
        }
    }
}

/// A page of a cached listing.
#[derive(Debug)]
pub struct CachedPage {
    pub entries: Vec<ListedEntry>,
    /// No entries follow these ones.
    pub end: bool,
}

pub struct DirListings {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl DirListings {
    pub fn new(capacity: usize) -> DirListings {
        DirListings { inner: Mutex::new(Inner { dirs: HashMap::new(), entries: 0 }), capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every step leaves the maps consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `max` entries of the directory `dir` (attributes just read) that follow `cookie`, as
    /// far as they are kept, possibly none. `None` when no listing of the directory as it is now
    /// is kept, or the cookie is not one of its entries'.
    pub fn page(&self, fsid: u64, dir: &Attr, cookie: u64, max: usize) -> Option<CachedPage> {
        let key = DirKey::of(fsid, dir);
        let mut inner = self.lock();
        let listing = inner.dirs.get_mut(&key)?;
        if listing.version != DirVersion::of(dir) {
            inner.remove(&key);
            return None;
        }
        if listing.oversized {
            return None;
        }
        let start = listing.position(cookie)?;
        listing.used = Instant::now();
        let stop = start.saturating_add(max).min(listing.entries.len());
        Some(CachedPage {
            entries: listing.entries[start..stop].to_vec(),
            end: listing.complete && stop == listing.entries.len(),
        })
    }

    /// Keeps `entries`, read from the disk from `cookie` on (0: from the start) after
    /// `dir`'s attributes were read and from `read_at` on; `end` says they reach the directory's
    /// end. They extend the directory's listing when they continue it, or start one.
    pub fn record(
        &self,
        fsid: u64,
        dir: &Attr,
        read_at: SystemTime,
        cookie: u64,
        entries: &[RawDirEntry],
        end: bool,
    ) {
        if (entries.is_empty() && !end) || !settled(dir, read_at) {
            return;
        }
        let key = DirKey::of(fsid, dir);
        let version = DirVersion::of(dir);
        let mut inner = self.lock();
        let current = inner.dirs.get(&key).filter(|l| l.version == version);
        let kept = current.map(|l| l.entries.len());
        let continues = match current {
            None => cookie == 0,
            Some(l) => !l.oversized && !l.complete && l.end_cookie() == cookie,
        };
        if !continues {
            return;
        }
        if kept.is_none() {
            // A listing of an older version, if any.
            inner.remove(&key);
        }
        if kept.unwrap_or(0) + entries.len() > self.capacity {
            inner.remove(&key);
            inner.make_room(&key, 0, self.capacity);
            let mut tombstone = Listing::empty(version);
            tombstone.oversized = true;
            inner.dirs.insert(key, tombstone);
            return;
        }
        inner.make_room(&key, entries.len(), self.capacity);
        inner.entries += entries.len();
        let listing = inner.dirs.entry(key).or_insert_with(|| Listing::empty(version));
        for e in entries {
            listing.after.insert(e.next_offset, listing.entries.len() + 1);
            listing.entries.push(ListedEntry { entry: e.clone(), handle: ListedHandle::Unknown });
        }
        listing.complete = end;
        if end {
            listing.entries.shrink_to_fit();
        }
        listing.used = Instant::now();
    }

    /// Keeps handles learned for entries of the directory `dir` (attributes read before the
    /// handles were verified), each given with the cookie that follows its entry.
    pub fn remember_handles(&self, fsid: u64, dir: &Attr, learned: Vec<(u64, KnownHandle)>) {
        let key = DirKey::of(fsid, dir);
        let mut inner = self.lock();
        let Some(listing) = inner.dirs.get_mut(&key) else { return };
        if listing.version != DirVersion::of(dir) {
            return;
        }
        for (cookie, handle) in learned {
            if let Some(&after) = listing.after.get(&cookie) {
                listing.entries[after - 1].handle = ListedHandle::Known(handle);
            }
        }
    }

    /// Drops the listing of the directory `dir` (attributes read before a change the server made
    /// to its entries). The version check would refuse that listing anyway, but only on the
    /// directory's next listing: until then it would hold its entries and push out listings that
    /// are still good.
    pub fn forget(&self, fsid: u64, dir: &Attr) {
        self.lock().remove(&DirKey::of(fsid, dir));
    }

    /// Drops listings unused for `max_idle`; returns how many.
    pub fn expire_idle(&self, max_idle: Duration) -> usize {
        let mut inner = self.lock();
        let stale: Vec<DirKey> =
            inner.dirs.iter().filter(|(_, l)| l.used.elapsed() >= max_idle).map(|(k, _)| *k).collect();
        for k in &stale {
            inner.remove(k);
        }
        if inner.dirs.is_empty() {
            inner.dirs.shrink_to_fit();
        }
        stale.len()
    }

    /// Entries kept over all directories.
    pub fn len(&self) -> usize {
        self.lock().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileType;
    use bytes::Bytes;

    fn dir(ino: u64, ctime: Timestamp) -> Attr {
        Attr {
            size: 60,
            mtime: ctime,
            ctime,
            btime: Some(Timestamp { seconds: 1, nanos: 5 }),
            ..Attr::for_tests(FileType::Directory, ino)
        }
    }

    fn at(seconds: i64, nanos: u32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    fn time(t: Timestamp) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos)
    }

    fn entries(from: u64, n: u64) -> Vec<RawDirEntry> {
        (from..from + n).map(|i| RawDirEntry::new(100 + i, i + 1, 8, format!("f{i}").as_bytes())).collect()
    }

    fn names(p: &CachedPage) -> Vec<String> {
        p.entries.iter().map(|e| String::from_utf8(e.entry.name().to_vec()).unwrap()).collect()
    }

    const CTIME: Timestamp = Timestamp { seconds: 1000, nanos: 123_456_789 };
    fn later() -> SystemTime {
        time(CTIME) + Duration::from_secs(1)
    }

    #[test]
    fn only_a_directory_quiet_for_a_while_is_settled() {
        let d = dir(1, CTIME);
        assert!(!settled(&d, time(CTIME)));
        assert!(!settled(&d, time(CTIME) + Duration::from_millis(50)));
        assert!(settled(&d, time(CTIME) + Duration::from_millis(150)));
        assert!(!settled(&d, time(CTIME) - Duration::from_secs(5)), "a clock set back");
        // Whole milliseconds: a filesystem with coarse timestamps.
        let coarse = dir(1, at(1000, 20_000_000));
        assert!(!settled(&coarse, time(at(1001, 0))));
        assert!(settled(&coarse, time(at(1003, 0))));
    }

    #[test]
    fn pages_are_served_from_a_listing_read_page_by_page() {
        let c = DirListings::new(1000);
        let d = dir(1, CTIME);
        assert!(c.page(7, &d, 0, 10).is_none());
        c.record(7, &d, later(), 0, &entries(0, 5), false);
        let p = c.page(7, &d, 0, 3).unwrap();
        assert_eq!(names(&p), ["f0", "f1", "f2"]);
        assert!(!p.end);
        // Past what is kept: nothing yet, and the disk is read from the last cookie.
        let p = c.page(7, &d, 3, 10).unwrap();
        assert_eq!(names(&p), ["f3", "f4"]);
        assert!(!p.end);
        assert!(c.page(7, &d, 5, 10).unwrap().entries.is_empty());
        // A page that does not continue the listing is not kept.
        c.record(7, &d, later(), 9, &entries(9, 2), false);
        assert!(c.page(7, &d, 10, 10).is_none());
        c.record(7, &d, later(), 5, &entries(5, 2), true);
        let p = c.page(7, &d, 5, 10).unwrap();
        assert_eq!(names(&p), ["f5", "f6"]);
        assert!(p.end);
        assert!(c.page(7, &d, 7, 10).unwrap().end);
        assert_eq!(c.len(), 7);
        // Unknown cookies, other exports and other incarnations are not served.
        assert!(c.page(7, &d, 42, 10).is_none());
        assert!(c.page(8, &d, 0, 10).is_none());
        let mut reborn = d.clone();
        reborn.btime = Some(at(2, 0));
        assert!(c.page(7, &reborn, 0, 10).is_none());
    }

    #[test]
    fn a_changed_directory_is_read_again() {
        let c = DirListings::new(1000);
        let d = dir(1, CTIME);
        c.record(7, &d, later(), 0, &entries(0, 5), true);
        let mut changed = d.clone();
        changed.ctime = at(1000, 123_456_790);
        assert!(c.page(7, &changed, 0, 10).is_none());
        assert!(c.is_empty(), "the old listing is dropped");
        assert!(c.page(7, &d, 0, 10).is_none());
        let mut grown = d.clone();
        grown.size += 20;
        c.record(7, &d, later(), 0, &entries(0, 5), true);
        assert!(c.page(7, &grown, 0, 10).is_none());
    }

    #[test]
    fn a_directory_the_server_changes_loses_its_listing_at_once() {
        let c = DirListings::new(1000);
        let (d, other) = (dir(1, CTIME), dir(2, CTIME));
        c.record(7, &d, later(), 0, &entries(0, 5), true);
        c.record(7, &other, later(), 0, &entries(0, 3), true);
        c.forget(8, &d);
        assert_eq!(c.len(), 8, "another export's directory of the same inode");
        c.forget(7, &d);
        assert_eq!(c.len(), 3);
        assert!(c.page(7, &d, 0, 10).is_none());
        assert_eq!(names(&c.page(7, &other, 0, 10).unwrap()), ["f0", "f1", "f2"]);
        c.forget(7, &d);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn a_listing_read_right_after_a_change_is_not_kept() {
        let c = DirListings::new(1000);
        let d = dir(1, CTIME);
        c.record(7, &d, time(CTIME) + Duration::from_millis(10), 0, &entries(0, 5), true);
        assert!(c.page(7, &d, 0, 10).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_in_entries_with_least_recently_used_directories_dropped_first() {
        let c = DirListings::new(10);
        let (a, b, big) = (dir(1, CTIME), dir(2, CTIME), dir(3, CTIME));
        c.record(7, &a, later(), 0, &entries(0, 4), true);
        c.record(7, &b, later(), 0, &entries(0, 4), true);
        assert!(c.page(7, &a, 0, 1).is_some());
        c.record(7, &dir(4, CTIME), later(), 0, &entries(0, 4), true);
        assert_eq!(c.len(), 8);
        assert!(c.page(7, &b, 0, 1).is_none(), "least recently used");
        assert!(c.page(7, &a, 0, 1).is_some());
        // A directory bigger than the whole cache keeps nothing, and stops being read into it.
        c.record(7, &big, later(), 0, &entries(0, 6), false);
        c.record(7, &big, later(), 6, &entries(6, 6), true);
        assert!(c.page(7, &big, 0, 1).is_none());
        assert!(c.len() <= 10);
        c.record(7, &big, later(), 0, &entries(0, 6), false);
        assert!(c.page(7, &big, 0, 1).is_none());
    }

    #[test]
    fn handles_are_learned_for_the_directory_as_it_was_listed() {
        let c = DirListings::new(100);
        let d = dir(1, CTIME);
        c.record(7, &d, later(), 0, &entries(0, 4), true);
        assert!(c.page(7, &d, 0, 10).unwrap().entries.iter().all(|e| e.handle == ListedHandle::Unknown));
        let h =
            KnownHandle { handle: Bytes::from_static(b"fh-of-f2"), mount_id: 1, ino: 102, btime: at(5, 0) };
        // f2 is followed by cookie 3; cookie 42 is no entry's.
        c.remember_handles(7, &d, vec![(3, h.clone()), (42, h.clone())]);
        let mut changed = d.clone();
        changed.mtime = at(2000, 1);
        c.remember_handles(7, &changed, vec![(1, h.clone())]);
        let p = c.page(7, &d, 0, 10).unwrap();
        let known: Vec<_> = p.entries.iter().map(|e| matches!(e.handle, ListedHandle::Known(_))).collect();
        assert_eq!(known, [false, false, true, false]);
        assert_eq!(p.entries[2].handle, ListedHandle::Known(h.clone()));
        // Served only to the same inode.
        let mut f2 = dir(102, CTIME);
        f2.btime = Some(at(5, 0));
        assert!(h.fits(&f2));
        f2.mount_id = 2;
        assert!(!h.fits(&f2), "another filesystem mounted on the entry");
        f2.mount_id = 1;
        f2.btime = Some(at(6, 0));
        assert!(!h.fits(&f2), "a new file under the same inode number");
        f2.btime = None;
        assert!(!h.fits(&f2));
    }

    #[test]
    fn idle_listings_expire() {
        let c = DirListings::new(100);
        c.record(7, &dir(1, CTIME), later(), 0, &entries(0, 4), true);
        assert_eq!(c.expire_idle(Duration::from_secs(60)), 0);
        assert_eq!(c.expire_idle(Duration::ZERO), 1);
        assert!(c.is_empty());
    }
}
