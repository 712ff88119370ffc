//! Counters of the RPC layer: calls per (program, version, procedure), RPC error replies by kind,
//! duplicate-request cache outcomes and transport events. Updated with relaxed atomics on the
//! request path, without locks: calls have one slot per row of each procedure table
//! (`CallCounters`). [`RpcStats::snapshot`] copies them into a plain [`StatsSnapshot`] for
//! tests, logs and metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Program;

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

/// Calls that reached a known procedure of one program: a slot per procedure number of each
/// version's table, so counting is one relaxed increment.
#[derive(Debug)]
pub(crate) struct CallCounters {
    program: u32,
    /// The lowest version; `by_version[i]` is version `first_version + i`.
    first_version: u32,
    by_version: Box<[Box<[AtomicU64]>]>,
}

impl CallCounters {
    /// Slots for every procedure of every version of `program`.
    pub(crate) fn new(program: &dyn Program) -> Self {
        let (low, high) = program.versions();
        let by_version = (low..=high)
            .map(|vers| (0..program.procedure_count(vers)).map(|_| AtomicU64::new(0)).collect())
            .collect();
        CallCounters { program: program.program(), first_version: low, by_version }
    }

    /// Counts a call of a procedure the table has (others have no slot and are not counted).
    pub(crate) fn count(&self, vers: u32, proc_: u32) {
        let slot = self.by_version.get(vers.wrapping_sub(self.first_version) as usize);
        if let Some(calls) = slot.and_then(|procs| procs.get(proc_ as usize)) {
            calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds the procedures called at least once to `calls`, by (program, version, procedure).
    pub(crate) fn collect_into(&self, calls: &mut HashMap<(u32, u32, u32), u64>) {
        for (vers, procs) in (self.first_version..).zip(&self.by_version) {
            for (proc_, n) in (0..).zip(procs.iter()) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    calls.insert((self.program, vers, proc_), n);
                }
            }
        }
    }
}

/// Counters of the dispatcher and the transports that feed it (calls are counted per program,
/// in `CallCounters`).
#[derive(Debug, Default)]
pub struct RpcStats {
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
    pub fn count_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter, with the calls counted per program and the cache's counters.
    pub fn snapshot(&self, calls: HashMap<(u32, u32, u32), u64>, drc: DrcSnapshot) -> StatsSnapshot {
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
    /// Calls by (program, version, procedure); procedures never called are absent.
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
