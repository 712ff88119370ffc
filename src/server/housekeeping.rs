//! The server's periodic housekeeping: what must be let go of even when no call arrives to do
//! it. Every few seconds it closes cached open files nobody used for a while, expires
//! duplicate-request cache entries and directory listings whose time is up, and, once per idle
//! spell, hands pooled buffers and the allocator's free memory back to the system.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::nfsd::NfsService;
use crate::rpc::dispatch::Dispatcher;

/// How often the caches are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How long an unused open file or directory listing stays cached.
const IDLE_MAX: Duration = Duration::from_secs(30);

/// Sweeps the idle caches until `shutdown`: closes cached open files nobody used for a while, so
/// a client that wrote and went away does not keep descriptors (and unsynced data) forever;
/// expires duplicate-request cache entries and directory listings whose time is up. Once a whole
/// interval passes without a call, also empties the pool of I/O buffers and hands the
/// allocator's free memory back, once per idle spell, so RSS falls back after a burst of load.
pub(super) async fn sweep_idle_caches(
    nfs: Arc<NfsService>,
    dispatcher: Arc<Dispatcher>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let calls_so_far = || dispatcher.stats().calls.values().sum::<u64>();
    let mut calls_at_last_tick = calls_so_far();
    let mut released_at = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let calls = calls_so_far();
        let idle = calls == calls_at_last_tick;
        let first_idle_tick = idle && released_at != Some(calls);
        calls_at_last_tick = calls;
        if first_idle_tick {
            released_at = Some(calls);
        }
        let nfs = nfs.clone();
        let dispatcher = dispatcher.clone();
        let swept = tokio::task::spawn_blocking(move || {
            let expired = dispatcher.expire_idle_cache() + nfs.expire_idle_listings(IDLE_MAX) as u64;
            let closed = nfs.close_idle_files(IDLE_MAX);
            // Cache entries that expire later in the idle spell free memory worth returning too.
            if first_idle_tick || (idle && expired > 0) {
                crate::rpc::buffers::LARGE_BUFFERS.release();
                crate::fs::sys::release_free_memory();
            }
            closed
        });
        match swept.await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(closed = n, "closed idle files"),
            Err(e) => tracing::error!("closing idle files failed: {e}"),
        }
    }
}
