//! Counters of the RPC layer: calls per (program, version, procedure), RPC error replies by kind,
//! duplicate-request cache outcomes and transport events. Updated with relaxed atomics on the
//! request path; [`RpcStats::snapshot`] copies them into a plain [`StatsSnapshot`] for tests,
//! logs and metrics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of RPC-level error replies (RFC 5531 §9 `accept_stat` and `reject_stat` arms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    RpcMismatch,
    AuthError,
    ProgUnavail,
    ProgMismatch,
    ProcUnavail,
    GarbageArgs,
    SystemErr,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::RpcMismatch,
        ErrorKind::AuthError,
        ErrorKind::ProgUnavail,
        ErrorKind::ProgMismatch,
        ErrorKind::ProcUnavail,
        ErrorKind::GarbageArgs,
        ErrorKind::SystemErr,
    ];

    /// The name used in logs and span fields.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RpcMismatch => "rpc_mismatch",
            ErrorKind::AuthError => "auth_error",
            ErrorKind::ProgUnavail => "prog_unavail",
            ErrorKind::ProgMismatch => "prog_mismatch",
            ErrorKind::ProcUnavail => "proc_unavail",
            ErrorKind::GarbageArgs => "garbage_args",
            ErrorKind::SystemErr => "system_err",
        }
    }
}

/// Duplicate-request cache counters, owned by the cache itself because evictions happen there.
#[derive(Debug, Default)]
pub struct DrcCounters {
    /// A retransmission answered from a completed entry.
    pub hits: AtomicU64,
    /// A non-idempotent call that was not in the cache and executed.
    pub misses: AtomicU64,
    /// A retransmission that arrived while the original was executing and waited for it.
    pub parked: AtomicU64,
    /// A parked retransmission that got no reply (the wait timed out, or the original's entry was
    /// evicted or abandoned) and was dropped; the client retransmits again.
    pub park_dropped: AtomicU64,
    /// Entries removed to respect the entry or byte bound before their time-to-live ran out.
    pub evictions: AtomicU64,
    /// Entries removed because their time-to-live ran out.
    pub expirations: AtomicU64,
}

/// A copy of [`DrcCounters`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrcSnapshot {
    pub hits: u64,
    pub misses: u64,
    pub parked: u64,
    pub park_dropped: u64,
    pub evictions: u64,
    pub expirations: u64,
    /// Entries currently held (in progress or done).
    pub entries: usize,
    /// Bytes currently accounted to the cache.
    pub bytes: usize,
}

impl DrcCounters {
    pub(crate) fn snapshot(&self, entries: usize, bytes: usize) -> DrcSnapshot {
        DrcSnapshot {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
            park_dropped: self.park_dropped.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            expirations: self.expirations.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }
}

/// Counters of the dispatcher and the transports that feed it.
#[derive(Debug, Default)]
pub struct RpcStats {
    /// Calls that reached a known procedure, by (program, version, procedure). A mutex is enough:
    /// the critical section is one hash-map increment, far cheaper than the call it counts.
    calls: Mutex<HashMap<(u32, u32, u32), u64>>,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Records that were not a decodable call and got no reply.
    pub records_dropped: AtomicU64,
    /// TCP connections closed because a record grew over the cap.
    pub oversize_records: AtomicU64,
    /// UDP replies not sent because they exceed the largest datagram.
    pub udp_replies_too_large: AtomicU64,
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// TCP connections closed because no request arrived within the idle timeout.
    pub connections_idle_closed: AtomicU64,
}

impl RpcStats {
    pub fn count_call(&self, prog: u32, vers: u32, proc_: u32) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls.entry((prog, vers, proc_)).or_insert(0) += 1;
    }

    pub fn count_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self, drc: DrcSnapshot) -> StatsSnapshot {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        StatsSnapshot {
            calls,
            errors: ErrorKind::ALL
                .iter()
                .map(|k| (*k, self.errors[*k as usize].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            records_dropped: self.records_dropped.load(Ordering::Relaxed),
            oversize_records: self.oversize_records.load(Ordering::Relaxed),
            udp_replies_too_large: self.udp_replies_too_large.load(Ordering::Relaxed),
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            connections_idle_closed: self.connections_idle_closed.load(Ordering::Relaxed),
            drc,
        }
    }
}

/// A copy of every RPC-layer counter at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub calls: HashMap<(u32, u32, u32), u64>,
    /// Error replies sent, by kind; kinds never sent are absent.
    pub errors: HashMap<ErrorKind, u64>,
    pub records_dropped: u64,
    pub oversize_records: u64,
    pub udp_replies_too_large: u64,
    pub connections_accepted: u64,
    pub connections_idle_closed: u64,
    pub drc: DrcSnapshot,
}

impl StatsSnapshot {
    /// Calls counted for one procedure.
    pub fn calls_to(&self, prog: u32, vers: u32, proc_: u32) -> u64 {
        self.calls.get(&(prog, vers, proc_)).copied().unwrap_or(0)
    }

    /// Error replies of one kind.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }
}
