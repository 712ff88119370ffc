//! The TCP transport: an accept loop bounded by a connection semaphore, and per connection a
//! reader that reassembles record-marked records (RFC 5531 §11), runs each record as its own task
//! so one connection's requests execute concurrently, and a single writer task that sends replies
//! in completion order (clients match replies by xid).
//!
//! Backpressure: a connection with `max_in_flight_per_connection` requests executing is not read
//! until one finishes, and the reply queue to the writer is bounded.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use xdr::rpc::{RecordAssembler, record_marker};

use super::Transport;
use super::buffers::{LARGE_BUFFER_MIN, LARGE_BUFFER_SIZE, LARGE_BUFFERS};
use super::dispatch::Dispatcher;
use super::transport::TransportLimits;

/// How much the reader asks the socket for at a time.
const READ_CHUNK: usize = 64 << 10;
/// First and longest pause after a failed accept. Running out of file descriptors (EMFILE) makes
/// every accept fail at once; pausing lets connections close instead of spinning on the error.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves RPC over TCP on `listener` until `shutdown` is cancelled. Every connection and request
/// task is spawned on `tracker`; after `shutdown`, close the tracker and wait on it to let
/// in-flight requests finish and their replies flush. The listener is closed when this returns.
pub async fn serve_tcp(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    limits: TransportLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = connections.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
        };
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = ACCEPT_BACKOFF_MIN;
                a
            }
            Err(e) if is_per_connection_error(&e) => {
                tracing::debug!(error = %e, "accept: connection failed before it was accepted");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed; pausing");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        dispatcher.counters().connections_accepted.fetch_add(1, Ordering::Relaxed);
        let conn = Connection {
            peer,
            dispatcher: dispatcher.clone(),
            limits,
            closing: shutdown.child_token(),
            tracker: tracker.clone(),
        };
        tracker.spawn(async move {
            conn.serve(stream).await;
            drop(permit);
        });
    }
    tracing::debug!("tcp accept loop stopped");
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    dispatcher: Arc<Dispatcher>,
    limits: TransportLimits,
    /// Cancelled on server shutdown (it is a child of the server's token) or when the writer
    /// fails; either way the reader stops taking new records.
    closing: CancellationToken,
    /// Where request tasks are spawned, so shutdown waits for them.
    tracker: TaskTracker,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let peer = self.peer;
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection gone before it was served");
                return;
            }
        };
        // Replies are whole records written at once; Nagle would only delay them.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY failed");
        }
        tracing::debug!(%peer, "connection accepted");
        let (mut rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<Bytes>(self.limits.reply_queue.max(1));
        let writer =
            self.tracker.spawn(write_replies(wr, rx, self.limits.write_timeout, self.closing.clone(), peer));

        let max_in_flight = self.limits.max_in_flight_per_connection.max(1);
        let in_flight = Arc::new(Semaphore::new(max_in_flight));
        let mut assembler = RecordAssembler::new(self.limits.max_record);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        'conn: loop {
            loop {
                let record = match assembler.next_record(&mut buf) {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "closing connection");
                        self.dispatcher.counters().oversize_records.fetch_add(1, Ordering::Relaxed);
                        break 'conn;
                    }
                };
                // A large record (a WRITE) filled a pooled buffer: it goes back once its call has
                // run, and the next record starts in a small buffer of its own.
                let recycle = (record.len() >= LARGE_BUFFER_MIN).then(|| record.clone());
                if recycle.is_some() && buf.is_empty() {
                    buf = BytesMut::with_capacity(READ_CHUNK);
                }
                let permit = tokio::select! {
                    biased;
                    _ = self.closing.cancelled() => break 'conn,
                    p = in_flight.clone().acquire_owned() => p.expect("the in-flight semaphore is never closed"),
                };
                // A quick call runs right here: spawning a task for it would cost more than
                // the call, and its reply still goes through the writer in order of completion.
                if self.dispatcher.runs_inline(&record) {
                    let reply = self.dispatcher.handle(record, peer, local, Transport::Tcp).await;
                    if let Some(recycle) = recycle {
                        LARGE_BUFFERS.give_back(recycle);
                    }
                    if let Some(reply) = reply
                        && tx.send(reply).await.is_err()
                    {
                        break 'conn;
                    }
                    drop(permit);
                    continue;
                }
                let dispatcher = self.dispatcher.clone();
                let tx = tx.clone();
                self.tracker.spawn(async move {
                    let reply = dispatcher.handle(record, peer, local, Transport::Tcp).await;
                    if let Some(recycle) = recycle {
                        LARGE_BUFFERS.give_back(recycle);
                    }
                    if let Some(reply) = reply {
                        // A send error means the writer is gone, i.e. the connection is closing.
                        let _ = tx.send(reply).await;
                    }
                    drop(permit);
                });
            }
            // A fragment of up to a transfer is read into a pooled buffer, and no further than
            // its end, so the record it becomes owns the buffer alone and can return it. What
            // the peer has not sent yet is not touched: a lying marker costs reserved address
            // space, not memory. A larger fragment is read into one allocation instead of a
            // buffer that doubles (and copies) its way up; that reservation follows the peer's
            // claim only as far as twice what it has actually sent.
            let missing = assembler.fragment_missing(&buf).unwrap_or(0);
            let whole = buf.len() + missing;
            let limit = if missing > 0 && (LARGE_BUFFER_MIN..=LARGE_BUFFER_SIZE).contains(&whole) {
                LARGE_BUFFERS.reserve(&mut buf, missing);
                missing
            } else {
                buf.reserve(READ_CHUNK.max(missing.min(2 * buf.len())));
                usize::MAX
            };
            let mut room = (&mut buf).limit(limit);
            let read = tokio::select! {
                biased;
                _ = self.closing.cancelled() => break,
                r = tokio::time::timeout(self.limits.idle_timeout, rd.read_buf(&mut room)) => r,
            };
            match read {
                Ok(Ok(0)) => {
                    tracing::debug!(%peer, "connection closed by peer");
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "read failed; closing connection");
                    break;
                }
                // A connection waiting on its own slow requests is not idle.
                Err(_) if in_flight.available_permits() < max_in_flight => {}
                Err(_) => {
                    tracing::debug!(%peer, "closing idle connection");
                    self.dispatcher.counters().connections_idle_closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        // The writer ends once every request task has sent its reply and dropped its sender.
        drop(tx);
        let _ = writer.await;
        tracing::debug!(%peer, "connection done");
    }
}

/// Most replies gathered into one `writev`.
const MAX_BATCH_REPLIES: usize = 64;
/// Stop gathering once this many bytes are queued for one `writev`.
const MAX_BATCH_BYTES: usize = 2 << 20;

/// Sends each reply as a single-fragment record. Every reply that is ready when the writer wakes
/// goes out in one vectored write (marker and body as separate slices, bodies not copied), so a
/// busy connection costs one system call per batch rather than per reply.
async fn write_replies(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Bytes>,
    write_timeout: Duration,
    closing: CancellationToken,
    peer: SocketAddr,
) {
    let mut batch = ReplyBatch::default();
    while let Some(reply) = rx.recv().await {
        batch.push(reply);
        while batch.replies < MAX_BATCH_REPLIES && batch.bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(reply) => batch.push(reply),
                Err(_) => break,
            }
        }
        match tokio::time::timeout(write_timeout, batch.write_all(&mut wr)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "write failed; closing connection");
                closing.cancel();
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "client is not reading its replies; closing connection");
                closing.cancel();
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Record markers and reply bodies waiting to be written, in order.
#[derive(Default)]
struct ReplyBatch {
    /// Markers and bodies alternate.
    parts: std::collections::VecDeque<Bytes>,
    /// How much of the front part has been sent. Parts are not advanced, so a sent body is
    /// still its whole buffer and a pooled one can go back.
    front_sent: usize,
    replies: usize,
    bytes: usize,
}

impl ReplyBatch {
    fn push(&mut self, reply: Bytes) {
        self.bytes += 4 + reply.len();
        self.replies += 1;
        self.parts.push_back(Bytes::copy_from_slice(&record_marker(reply.len(), true)));
        self.parts.push_back(reply);
    }

    async fn write_all(&mut self, wr: &mut OwnedWriteHalf) -> io::Result<()> {
        while !self.parts.is_empty() {
            let sent = self.front_sent;
            let slices: Vec<io::IoSlice<'_>> = self
                .parts
                .iter()
                .enumerate()
                .map(|(i, b)| io::IoSlice::new(if i == 0 { &b[sent..] } else { b }))
                .collect();
            let mut written = wr.write_vectored(&slices).await?;
            drop(slices);
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while written > 0 {
                let front = self.parts.front().expect("written bytes come from queued parts");
                let left = front.len() - self.front_sent;
                if written >= left {
                    written -= left;
                    self.front_sent = 0;
                    let done = self.parts.pop_front().expect("the front part exists");
                    // Markers and small replies never came from the pool.
                    if done.len() >= LARGE_BUFFER_MIN {
                        LARGE_BUFFERS.give_back(done);
                    }
                } else {
                    self.front_sent += written;
                    written = 0;
                }
            }
        }
        self.replies = 0;
        self.bytes = 0;
        Ok(())
    }
}
