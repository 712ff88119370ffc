//! The process's resource limits: the open-descriptor rlimit raised to what the configured
//! connections and caches can hold, and the transports' limits taken from the configured ones.

use crate::config::Limits;
use crate::rpc::transport::TransportLimits;

/// The transport's limits from the server's.
pub(super) fn transport_limits(l: &Limits) -> TransportLimits {
    TransportLimits {
        max_record: l.max_record,
        max_connections: l.max_connections,
        max_connections_per_host: l.max_connections_per_host,
        max_unlisted_connections: l.max_unlisted_connections,
        max_unlisted_connections_per_host: l.max_unlisted_connections_per_host,
        max_unlisted_record: l.max_unlisted_record,
        record_timeout: l.record_timeout,
        min_record_rate: l.min_record_rate,
        max_request_bytes: l.max_request_bytes,
        max_reply_bytes_per_connection: l.max_reply_bytes_per_connection,
        max_reply_bytes: l.max_reply_bytes,
        max_in_flight_per_connection: l.max_inflight_per_connection,
        ..TransportLimits::default()
    }
}

/// Raises the soft limit on open descriptors to the hard limit: every connection, cached handle
/// and cached open file holds one, and the usual soft limit of 1024 would make accept or
/// `open_by_handle_at` fail under load. Warns when even the hard limit is too low.
pub(super) fn raise_descriptor_limit(limits: &Limits) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = (limits.max_connections + limits.open_files + crate::fs::HANDLE_CACHE_ENTRIES + 256) as u64;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
    }
    let now = getrlimit(Resource::RLIMIT_NOFILE).map(|(s, _)| s).unwrap_or(soft);
    if now < needed {
        tracing::warn!(
            "the open-file limit is {now}, below the {needed} descriptors the configured connections and \
             caches can use; raise it (ulimit -n, or LimitNOFILE= in a systemd unit)"
        );
    }
}
