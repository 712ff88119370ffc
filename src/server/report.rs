//! The one-line reports an operator reads in the log: the RPC and duplicate-request-cache
//! counters, how full the NFS caches are, what the TCP transport holds, and where the memory is.
//! Logged on SIGUSR1, and the counters at shutdown too.

use std::fmt::Write as _;

use crate::nfsd::CacheSizes;
use crate::rpc::stats::StatsSnapshot;
use crate::rpc::transport::TcpStats;

/// The counters an operator reads when clients report lost or repeated operations, as one log
/// line: every call received, and the duplicate-request cache's outcomes and size. Logged on
/// SIGUSR1 and at shutdown.
pub fn counters_line(stats: &StatsSnapshot) -> String {
    let d = &stats.drc;
    format!(
        "counters: calls={} drc_hits={} drc_misses={} drc_parked={} drc_park_dropped={} drc_evictions={} \
         drc_expirations={} drc_entries={} drc_bytes={}",
        stats.calls.values().sum::<u64>(),
        d.hits,
        d.misses,
        d.parked,
        d.park_dropped,
        d.evictions,
        d.expirations,
        d.entries,
        d.bytes
    )
}

/// How full the NFS service's caches are, as one log line, logged on SIGUSR1 next to the
/// [`memory_line`]: they hold most of the heap in use.
pub fn caches_line(sizes: &CacheSizes) -> String {
    format!(
        "caches: resolved_handles={} inode_handles={} open_files={} listed_entries={}",
        sizes.resolved_handles, sizes.inode_handles, sizes.open_files, sizes.listed_entries
    )
}

/// What the TCP transport holds and has closed, as one log line, logged on SIGUSR1: open
/// connections (and how many of unlisted hosts), bytes of requests and large replies held against
/// their budgets, and connections closed to keep the shares and budgets.
pub fn tcp_line(s: &TcpStats) -> String {
    let t = &s.table;
    format!(
        "tcp: connections={} unlisted={} request_bytes={} large_reply_bytes={} closed_for_share={} refused={} \
         closed_stalled_record={} closed_stalled_writer={} record_timeouts={}",
        t.connections,
        t.unlisted_connections,
        s.request_bytes,
        s.large_reply_bytes,
        t.evicted_for_share,
        t.refused,
        t.evicted_stalled_records,
        t.evicted_stalled_writers,
        t.records_timed_out
    )
}

/// Where the server's memory is, as one log line: resident size; what the allocator has handed
/// out, holds free in its heaps and has mapped for large blocks; and the pool of 1 MiB I/O
/// buffers (free ones kept, and how many were allocated and reused). Logged on SIGUSR1, so an
/// operator can tell live data from memory the allocator keeps for reuse.
pub fn memory_line() -> String {
    let rss_kib = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    });
    let mut s = String::from("memory:");
    match rss_kib {
        Some(kib) => {
            let _ = write!(s, " rss_kib={kib}");
        }
        None => s.push_str(" rss_kib=unknown"),
    }
    match crate::fs::sys::heap_usage() {
        Some(h) => {
            let _ = write!(
                s,
                " heap_in_use_kib={} heap_free_kib={} heap_mapped_kib={}",
                h.in_use / 1024,
                h.free / 1024,
                h.mapped / 1024
            );
        }
        None => s.push_str(" heap=unknown"),
    }
    let pool = crate::rpc::buffers::LARGE_BUFFERS.stats();
    let _ = write!(
        s,
        " io_buffers_free={} io_buffers_free_kib={} io_buffers_allocated={} io_buffers_reused={}",
        pool.free,
        pool.free_bytes / 1024,
        pool.allocated,
        pool.reused
    );
    s
}

/// The lock manager's line: locks held (open descriptions holding locks), waiters, clients
/// recorded, whether the grace period is on, and the reclaims granted since start.
pub fn locks_line(c: &crate::nlm::LockCounts) -> String {
    format!(
        "locks: {} file(s) locked by owners, {} waiter(s), {} client(s) monitored, grace {}, {} reclaim(s) granted",
        c.holdings,
        c.waiters,
        c.clients,
        if c.grace { "on" } else { "off" },
        c.reclaimed
    )
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn tcp_line_names_every_count() {
        let shares = crate::rpc::connections::Shares {
            total: 4,
            per_host: 2,
            unlisted_total: 1,
            unlisted_per_host: 1,
        };
        let table = crate::rpc::connections::ConnectionTable::new(shares);
        let _a = table.admit(IpAddr::from([127, 0, 0, 9]), false);
        let s = TcpStats { table: table.stats(), request_bytes: 5, large_reply_bytes: 6 };
        assert_eq!(
            tcp_line(&s),
            "tcp: connections=1 unlisted=1 request_bytes=5 large_reply_bytes=6 closed_for_share=0 refused=0 \
             closed_stalled_record=0 closed_stalled_writer=0 record_timeouts=0"
        );
    }

    #[test]
    fn caches_line_names_every_cache() {
        let sizes = CacheSizes { resolved_handles: 4, inode_handles: 3, open_files: 2, listed_entries: 1 };
        assert_eq!(
            caches_line(&sizes),
            "caches: resolved_handles=4 inode_handles=3 open_files=2 listed_entries=1"
        );
    }

    #[test]
    fn memory_line_reports_resident_size_and_the_heaps() {
        let held = std::hint::black_box(vec![1u8; 1 << 20]);
        let line = memory_line();
        let field = |name: &str| -> u64 {
            let value =
                line.split(' ').find_map(|f| f.strip_prefix(name)).unwrap_or_else(|| panic!("{line}"));
            value.parse().unwrap_or_else(|_| panic!("{name} in {line}"))
        };
        assert!(field("rss_kib=") >= 1024, "{line}");
        if cfg!(target_env = "gnu") {
            // The MiB held above is in use, in a heap or mapped on its own.
            assert!(field("heap_in_use_kib=") + field("heap_mapped_kib=") >= 1024, "{line}");
            let _ = field("heap_free_kib=");
        }
        drop(held);
    }

    #[test]
    fn locks_line_names_every_count() {
        let c = crate::nlm::LockCounts { holdings: 4, waiters: 3, clients: 2, grace: true, reclaimed: 1 };
        assert_eq!(
            locks_line(&c),
            "locks: 4 file(s) locked by owners, 3 waiter(s), 2 client(s) monitored, grace on, 1 reclaim(s) granted"
        );
        let idle = crate::nlm::LockCounts::default();
        assert_eq!(
            locks_line(&idle),
            "locks: 0 file(s) locked by owners, 0 waiter(s), 0 client(s) monitored, grace off, 0 reclaim(s) granted"
        );
    }

    #[test]
    fn counters_line_sums_calls_and_shows_every_drc_counter() {
        use crate::rpc::stats::DrcSnapshot;
        let mut stats = StatsSnapshot::default();
        stats.calls.insert((xdr::nfs3::PROGRAM, 3, 12), 5);
        stats.calls.insert((xdr::mount::PROGRAM, 3, 1), 2);
        stats.drc = DrcSnapshot {
            hits: 1,
            misses: 2,
            parked: 3,
            park_dropped: 4,
            evictions: 5,
            expirations: 6,
            entries: 7,
            bytes: 8,
        };
        assert_eq!(
            counters_line(&stats),
            "counters: calls=7 drc_hits=1 drc_misses=2 drc_parked=3 drc_park_dropped=4 drc_evictions=5 \
             drc_expirations=6 drc_entries=7 drc_bytes=8"
        );
    }
}
