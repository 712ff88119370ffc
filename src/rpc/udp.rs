//! The UDP transport: one datagram is one call. Each is handled as its own task under a global
//! in-flight bound, and the reply goes back to the sender as one datagram.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Transport;
use super::dispatch::Dispatcher;
use super::transport::{MAX_UDP_PAYLOAD, TransportLimits};

/// Receive buffer: larger than any UDP payload, so no call is silently truncated.
const RECV_BUF: usize = (64 << 10) + 512;
/// Pause after a failed receive so a persistent socket error cannot spin.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Serves RPC over UDP on `socket` until `shutdown` is cancelled. Request tasks are spawned on
/// `tracker`, so waiting on it after shutdown lets in-flight calls finish and send their replies.
pub async fn serve_udp(
    socket: Arc<UdpSocket>,
    dispatcher: Arc<Dispatcher>,
    limits: TransportLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "UDP socket has no local address; not serving it");
            return;
        }
    };
    let in_flight = Arc::new(Semaphore::new(limits.max_udp_in_flight.max(1)));
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = in_flight.clone().acquire_owned() => p.expect("the in-flight semaphore is never closed"),
        };
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                }
                continue;
            }
        };
        let datagram = Bytes::copy_from_slice(&buf[..len]);
        let dispatcher = dispatcher.clone();
        let socket = socket.clone();
        tracker.spawn(async move {
            if let Some(reply) = dispatcher.handle(datagram, peer, local, Transport::Udp).await {
                if reply.len() > MAX_UDP_PAYLOAD {
                    tracing::warn!(%peer, len = reply.len(), "reply too large for UDP; not sent");
                    dispatcher.counters().udp_replies_too_large.fetch_add(1, Ordering::Relaxed);
                } else if let Err(e) = socket.send_to(&reply, peer).await {
                    tracing::debug!(%peer, error = %e, "UDP send failed");
                }
            }
            drop(permit);
        });
    }
    tracing::debug!("udp receive loop stopped");
}
