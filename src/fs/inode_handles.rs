//! The inode-handle cache: the wire handle of each recently seen inode, keyed by the inode's
//! identity (export, inode number and birth time), so that READDIRPLUS and LOOKUP, which must
//! `statx` every object anyway, can skip `name_to_handle_at` for inodes they have met before.
//!
//! A handle never changes while its inode lives, and a reused inode number comes with a new birth
//! time, so an entry can only be found again by the inode it was made for. Filesystems that report
//! no birth time are not cached.
//!
//! A handle taken through a descriptor belongs to the same inode as a `statx` of that descriptor,
//! and is cached as *verified*. A handle taken by name (`name_to_handle_at(dir, name)` next to a
//! `statx(dir, name)`) could belong to another inode if the name was replaced between the two
//! calls, so it is kept as a *candidate* with the ctime seen: a later `statx` by name with the
//! same identity and the same ctime proves that no rename or link touched the inode in between
//! (each updates its ctime), so the name named it all along and the candidate becomes verified.
//! Only verified handles are served from the cache.
//!
//! Remembering costs more than it saves for a directory listed once, the common case for a
//! client that caches listings itself, so READDIRPLUS uses the cache only for directories it has
//! listed to the end before; this module keeps that set too.

use bytes::Bytes;

use super::attr::{Attr, Timestamp};
use super::clock::ClockCache;

/// Inodes whose handles are kept: a few hundred bytes each.
pub const INODE_HANDLE_ENTRIES: usize = 32 * 1024;

/// Directories remembered as listed.
pub const LISTED_DIRECTORIES: usize = 1024;

/// One incarnation of an inode in one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InodeKey {
    fsid: u64,
    dev_major: u32,
    dev_minor: u32,
    ino: u64,
    btime: Timestamp,
}

#[derive(Clone)]
struct Entry {
    handle: Bytes,
    /// `None` once verified; the ctime seen when a candidate was taken by name.
    candidate_ctime: Option<Timestamp>,
}

/// How attributes, and a handle to be remembered with them, were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Through a descriptor.
    Descriptor,
    /// By a name in a directory.
    Name,
}

/// Shards of the cache, each with its own lock: READDIRPLUS looks up every entry of a listing
/// from two threads at once, which contend on a single lock.
const SHARDS: usize = 16;

pub struct InodeHandles {
    shards: Vec<ClockCache<Entry, InodeKey>>,
    listed: ClockCache<(), InodeKey>,
}

impl InodeHandles {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        InodeHandles {
            shards: (0..SHARDS).map(|_| ClockCache::new(per_shard)).collect(),
            listed: ClockCache::new(LISTED_DIRECTORIES),
        }
    }

    /// Whether the directory `attr` describes was listed to the end before.
    pub fn was_listed(&self, fsid: u64, attr: &Attr) -> bool {
        Self::key(fsid, attr).is_some_and(|key| self.listed.get(&key).is_some())
    }

    /// Records that the directory `attr` describes was listed to the end.
    pub fn mark_listed(&self, fsid: u64, attr: &Attr) {
        if let Some(key) = Self::key(fsid, attr) {
            drop(self.listed.insert(key, ()));
        }
    }

    fn shard(&self, key: &InodeKey) -> &ClockCache<Entry, InodeKey> {
        // Inode numbers of one directory's files are mostly consecutive: the low bits spread them.
        &self.shards[(key.ino as usize) % SHARDS]
    }

    fn key(fsid: u64, attr: &Attr) -> Option<InodeKey> {
        Some(InodeKey {
            fsid,
            dev_major: attr.dev_major,
            dev_minor: attr.dev_minor,
            ino: attr.ino,
            btime: attr.btime?,
        })
    }

    /// The verified handle of the inode `attr` describes. Attributes read by name can verify a
    /// candidate whose ctime they match.
    pub fn get(&self, fsid: u64, attr: &Attr, seen: Provenance) -> Option<Bytes> {
        let key = Self::key(fsid, attr)?;
        let shard = self.shard(&key);
        let entry = shard.get(&key)?;
        match entry.candidate_ctime {
            None => Some(entry.handle),
            Some(ctime) if seen == Provenance::Name && ctime == attr.ctime => {
                drop(shard.insert(key, Entry { handle: entry.handle.clone(), candidate_ctime: None }));
                Some(entry.handle)
            }
            Some(_) => None,
        }
    }

    /// Remembers `handle` for the inode `attr` describes, both obtained as `provenance` says.
    pub fn remember(&self, fsid: u64, attr: &Attr, handle: &Bytes, provenance: Provenance) {
        let Some(key) = Self::key(fsid, attr) else { return };
        let candidate_ctime = match provenance {
            Provenance::Descriptor => None,
            Provenance::Name => Some(attr.ctime),
        };
        drop(self.shard(&key).insert(key, Entry { handle: handle.clone(), candidate_ctime }));
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileType;

    fn attr(ino: u64, btime: Option<i64>, ctime: i64) -> Attr {
        Attr {
            ctime: Timestamp { seconds: ctime, nanos: 0 },
            btime: btime.map(|seconds| Timestamp { seconds, nanos: 7 }),
            ..Attr::for_tests(FileType::Regular, ino)
        }
    }

    #[test]
    fn descriptor_handles_are_served_for_the_same_incarnation_only() {
        let c = InodeHandles::new(16);
        let h = Bytes::from_static(b"handle-of-5");
        c.remember(1, &attr(5, Some(100), 1), &h, Provenance::Descriptor);
        // Any later ctime: the inode is the same.
        assert_eq!(c.get(1, &attr(5, Some(100), 9), Provenance::Descriptor), Some(h.clone()));
        assert_eq!(c.get(1, &attr(5, Some(100), 9), Provenance::Name), Some(h));
        // The inode number reused by a new file, another export, no birth time.
        assert_eq!(c.get(1, &attr(5, Some(101), 9), Provenance::Name), None);
        assert_eq!(c.get(2, &attr(5, Some(100), 9), Provenance::Name), None);
        assert_eq!(c.get(1, &attr(5, None, 9), Provenance::Name), None);
    }

    #[test]
    fn name_candidates_need_a_second_sighting_with_the_same_ctime() {
        let c = InodeHandles::new(16);
        let h = Bytes::from_static(b"maybe-of-6");
        c.remember(1, &attr(6, Some(100), 3), &h, Provenance::Name);
        assert_eq!(
            c.get(1, &attr(6, Some(100), 3), Provenance::Descriptor),
            None,
            "a descriptor statx proves nothing about a name"
        );
        assert_eq!(c.get(1, &attr(6, Some(100), 4), Provenance::Name), None, "renamed or linked since");
        assert_eq!(c.get(1, &attr(6, Some(100), 3), Provenance::Name), Some(h.clone()), "verified");
        assert_eq!(c.get(1, &attr(6, Some(100), 4), Provenance::Descriptor), Some(h), "verified for good");
    }

    #[test]
    fn without_birth_time_nothing_is_kept() {
        let c = InodeHandles::new(16);
        c.remember(1, &attr(7, None, 3), &Bytes::from_static(b"x"), Provenance::Descriptor);
        assert!(c.is_empty());
    }

    #[test]
    fn listed_directories_are_remembered_per_incarnation() {
        let c = InodeHandles::new(16);
        assert!(!c.was_listed(1, &attr(9, Some(5), 1)));
        c.mark_listed(1, &attr(9, Some(5), 1));
        assert!(c.was_listed(1, &attr(9, Some(5), 2)));
        assert!(!c.was_listed(1, &attr(9, Some(6), 2)));
        assert!(!c.was_listed(2, &attr(9, Some(5), 2)));
    }

    #[test]
    fn bounded() {
        let c = InodeHandles::new(64);
        for ino in 0..1000 {
            c.remember(1, &attr(ino, Some(1), 1), &Bytes::from_static(b"h"), Provenance::Descriptor);
        }
        assert_eq!(c.len(), 64);
    }
}
