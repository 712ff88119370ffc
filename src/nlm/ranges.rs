//! The byte ranges one lock owner holds on one file, as the kernel keeps them for one open file
//! description: a new lock replaces whatever the owner held under it (so a write lock over part
//! of a read lock splits it), an unlock removes its range (splitting a lock it falls inside), and
//! adjacent or overlapping ranges of one kind merge. rnfsd keeps this copy because the kernel
//! answers `F_OFD_GETLK` with a range and a kind but not which description holds it: the copy
//! names the NFS owner of a conflict (TEST's holder) and tells when an owner holds nothing more,
//! so its descriptor can be closed.

/// One byte past the last lockable byte: the kernel's `OFFSET_MAX` + 1 (2^63).
pub const END_OF_FILE: u64 = 1 << 63;

/// A range `start..end` (`end` exclusive, [`END_OF_FILE`] for "to the end of file, however it
/// grows") held shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub exclusive: bool,
}

impl Segment {
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }

    /// The range as NLM and `fcntl` give it: first byte and length, 0 meaning to end of file.
    pub fn offset_len(&self) -> (u64, u64) {
        (self.start, if self.end == END_OF_FILE { 0 } else { self.end - self.start })
    }
}

/// An NLM range (`l_offset`, `l_len`, 0 meaning to end of file) as `start..end`, or `None` when
/// it reaches past the last lockable byte (NLM4_FBIG).
pub fn nlm_range(offset: u64, len: u64) -> Option<(u64, u64)> {
    if offset >= END_OF_FILE {
        return None;
    }
    if len == 0 {
        return Some((offset, END_OF_FILE));
    }
    let end = offset.checked_add(len)?;
    (end <= END_OF_FILE).then_some((offset, end))
}

/// The ranges of one owner on one file, sorted by start and never overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    segments: Vec<Segment>,
}

impl Ranges {
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether `start..end` is held, all of it, with at least the strength asked for (an
    /// exclusive range satisfies a shared request, as a re-sent LOCK finds it).
    pub fn covers(&self, start: u64, end: u64, exclusive: bool) -> bool {
        let mut at = start;
        for s in &self.segments {
            if s.end <= at {
                continue;
            }
            if s.start > at || (exclusive && !s.exclusive) {
                return false;
            }
            at = s.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    /// The first held segment overlapping `start..end` that conflicts with a lock of kind
    /// `exclusive` taken by someone else.
    pub fn conflicting(&self, start: u64, end: u64, exclusive: bool) -> Option<Segment> {
        self.segments.iter().copied().find(|s| s.overlaps(start, end) && (exclusive || s.exclusive))
    }

    /// Takes `start..end`, replacing what was held there.
    pub fn lock(&mut self, start: u64, end: u64, exclusive: bool) {
        self.unlock(start, end);
        let at = self.segments.partition_point(|s| s.start < start);
        self.segments.insert(at, Segment { start, end, exclusive });
        self.merge_around(at);
    }

    /// Releases `start..end`, splitting a segment it falls inside.
    pub fn unlock(&mut self, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.segments.len() + 1);
        for s in self.segments.drain(..) {
            if !s.overlaps(start, end) {
                kept.push(s);
                continue;
            }
            if s.start < start {
                kept.push(Segment { end: start, ..s });
            }
            if s.end > end {
                kept.push(Segment { start: end, ..s });
            }
        }
        self.segments = kept;
    }

    /// Merges the segment at `at` with touching neighbours of the same kind.
    fn merge_around(&mut self, mut at: usize) {
        while at > 0 {
            let (prev, cur) = (self.segments[at - 1], self.segments[at]);
            if prev.end == cur.start && prev.exclusive == cur.exclusive {
                self.segments[at - 1].end = cur.end;
                self.segments.remove(at);
                at -= 1;
            } else {
                break;
            }
        }
        while at + 1 < self.segments.len() {
            let (cur, next) = (self.segments[at], self.segments[at + 1]);
            if cur.end == next.start && cur.exclusive == next.exclusive {
                self.segments[at].end = next.end;
                self.segments.remove(at + 1);
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: u64, end: u64, exclusive: bool) -> Segment {
        Segment { start, end, exclusive }
    }

    #[test]
    fn an_unlock_inside_a_lock_splits_it() {
        let mut r = Ranges::default();
        r.lock(0, 100, true);
        r.unlock(40, 60);
        assert_eq!(r.segments(), &[seg(0, 40, true), seg(60, 100, true)]);
        assert!(r.covers(0, 40, true) && !r.covers(0, 41, false));
    }

    #[test]
    fn adjacent_locks_of_one_kind_merge_and_of_two_kinds_do_not() {
        let mut r = Ranges::default();
        r.lock(0, 10, false);
        r.lock(20, 30, false);
        r.lock(10, 20, false);
        assert_eq!(r.segments(), &[seg(0, 30, false)]);
        r.lock(10, 20, true);
        assert_eq!(r.segments(), &[seg(0, 10, false), seg(10, 20, true), seg(20, 30, false)]);
        r.lock(0, 30, true);
        assert_eq!(r.segments(), &[seg(0, 30, true)]);
    }

    #[test]
    fn conflicts_are_between_a_writer_and_anyone() {
        let mut r = Ranges::default();
        r.lock(0, 10, false);
        assert_eq!(r.conflicting(5, 6, false), None);
        assert_eq!(r.conflicting(5, 6, true), Some(seg(0, 10, false)));
        assert_eq!(r.conflicting(10, 20, true), None);
    }

    #[test]
    fn ranges_past_the_last_byte_are_too_big() {
        assert_eq!(nlm_range(0, 0), Some((0, END_OF_FILE)));
        assert_eq!(nlm_range(END_OF_FILE - 1, 1), Some((END_OF_FILE - 1, END_OF_FILE)));
        assert_eq!(nlm_range(END_OF_FILE - 1, 0), Some((END_OF_FILE - 1, END_OF_FILE)));
        assert_eq!(nlm_range(END_OF_FILE, 0), None);
        assert_eq!(nlm_range(END_OF_FILE - 1, 2), None);
        assert_eq!(nlm_range(1, u64::MAX), None);
        assert_eq!(seg(5, END_OF_FILE, true).offset_len(), (5, 0));
    }
}
