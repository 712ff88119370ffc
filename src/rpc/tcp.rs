//! The TCP transport: an accept loop that admits each connection through the server's
//! [`ConnectionTable`] (per-address shares, see [`connections`](super::connections)), and per
//! connection a reader that reassembles record-marked records (RFC 5531 §11) and a single writer
//! task that sends replies in completion order (clients match replies by xid). The reader runs a
//! call to an inline procedure ([`Dispatcher::runs_inline`]: small, idempotent, no disk waits)
//! itself, before it reads the next record, since a task would cost more than the call; every
//! other record becomes a task of its own, so one connection's slow requests execute
//! concurrently (on the blocking pool, or inline in that task when the dispatcher finds they
//! need not wait).
//!
//! What a peer can make the server hold is bounded:
//! - a record must arrive whole within `record_timeout` from its first byte (plus a second per
//!   `min_record_rate` bytes of its size), however often bytes trickle in;
//! - request bytes (partial records beyond a connection's first 128 KiB buffer, and records until
//!   their call has run) come out of one budget shared by every connection. A connection that
//!   needs more waits, unread; while it waits, the connection whose partial record has stalled
//!   the longest is closed to make room;
//! - before a call runs, room for its largest reply ([`Dispatcher::reply_bound`]) is reserved
//!   from the connection's reply budget (and, for large replies, from a budget shared by every
//!   connection) until the reply is written. A client that does not read its replies therefore
//!   stops having its requests read; while the shared budget is spent, the connection whose
//!   writer has stalled the longest is closed;
//! - `max_in_flight_per_connection` requests execute at once per connection;
//! - an address that no export lists gets small records and few requests in flight: all it can
//!   be given is NULL, MNT's refusal and the portmapper.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use xdr::rpc::{RecordAssembler, record_marker};

use super::Transport;
use super::buffers::{ByteBudget, Charge, LARGE_BUFFER_MIN, LARGE_BUFFER_SIZE, LARGE_BUFFERS};
use super::connections::{Admitted, ConnState, ConnectionTable, Shares, TableStats};
use super::dispatch::Dispatcher;
use super::transport::TransportLimits;

/// How much the reader asks the socket for at a time.
const READ_CHUNK: usize = 64 << 10;
/// A connection's read buffer up to this capacity is not counted against the request budget:
/// it holds small calls, and waiting for budget there would stall GETATTRs behind others' WRITEs.
const UNCOUNTED_BUFFER: usize = 2 * READ_CHUNK;
/// Replies larger than this also come out of the budget shared by every connection.
const LARGE_REPLY: usize = 64 << 10;
/// Requests of an unlisted address executing at once, and its idle timeout.
const UNLISTED_IN_FLIGHT: usize = 2;
const UNLISTED_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// While waiting for a spent budget, how often to look for a stalled holder to close, and how
/// long a holder must have made no progress to count as stalled.
const STALL_CHECK: Duration = Duration::from_millis(100);
const STALLED: Duration = Duration::from_secs(1);
/// First and longest pause after a failed accept. Running out of file descriptors (EMFILE) makes
/// every accept fail at once; pausing lets connections close instead of spinning on the error.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What every TCP connection of one server shares, over all its ports: the limits, the
/// connection table, which addresses some export lists, and the byte budgets.
pub struct TcpShared {
    limits: TransportLimits,
    table: Arc<ConnectionTable>,
    /// Whether some export's client list admits the address (computed once per connection).
    listed: Box<dyn Fn(IpAddr) -> bool + Send + Sync>,
    requests: Arc<ByteBudget>,
    large_replies: Arc<ByteBudget>,
}

/// What the TCP transport holds now, for the operator and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpStats {
    pub table: TableStats,
    /// Bytes of requests held (partial records beyond the uncounted buffers, records running).
    pub request_bytes: usize,
    /// Bytes reserved for or held by large replies not yet written.
    pub large_reply_bytes: usize,
}

impl TcpShared {
    pub fn new(
        limits: TransportLimits,
        listed: impl Fn(IpAddr) -> bool + Send + Sync + 'static,
    ) -> Arc<TcpShared> {
        let shares = Shares {
            total: limits.max_connections,
            per_host: limits.max_connections_per_host,
            unlisted_total: limits.max_unlisted_connections,
            unlisted_per_host: limits.max_unlisted_connections_per_host,
        };
        Arc::new(TcpShared {
            limits,
            table: ConnectionTable::new(shares),
            listed: Box::new(listed),
            requests: ByteBudget::new(limits.max_request_bytes),
            large_replies: ByteBudget::new(limits.max_reply_bytes),
        })
    }

    pub fn stats(&self) -> TcpStats {
        TcpStats {
            table: self.table.stats(),
            request_bytes: self.requests.used(),
            large_reply_bytes: self.large_replies.used(),
        }
    }
}

/// Serves RPC over TCP on `listener` until `shutdown` is cancelled, with a connection table and
/// budgets of its own and every address counted as listed. See [`serve_tcp_shared`].
pub async fn serve_tcp(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    limits: TransportLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    serve_tcp_shared(listener, dispatcher, TcpShared::new(limits, |_| true), shutdown, tracker).await
}

/// Serves RPC over TCP on `listener` until `shutdown` is cancelled; every listener of a server
/// passes the same `shared`, so the connection shares and budgets hold over all its ports. Every
/// connection and request task is spawned on `tracker`; after `shutdown`, close the tracker and
/// wait on it to let in-flight requests finish and their replies flush. The listener is closed
/// when this returns.
pub async fn serve_tcp_shared(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    shared: Arc<TcpShared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
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
        // Accepting every connection and deciding here (rather than leaving the excess in the
        // listen backlog) is what lets a newcomer in when one address holds every slot.
        let listed = (shared.listed)(peer.ip());
        let Some(admitted) = shared.table.admit(peer.ip(), listed) else {
            tracing::debug!(%peer, "refusing a connection from an unlisted address: every slot is taken");
            drop(stream);
            continue;
        };
        dispatcher.counters().connections_accepted.fetch_add(1, Ordering::Relaxed);
        let conn = Connection {
            peer,
            dispatcher: dispatcher.clone(),
            shared: shared.clone(),
            closing: shutdown.child_token(),
            tracker: tracker.clone(),
        };
        tracker.spawn(conn.serve(stream, admitted));
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
    shared: Arc<TcpShared>,
    /// Cancelled on server shutdown (it is a child of the server's token) or when the writer
    /// fails; either way the reader stops taking new records.
    closing: CancellationToken,
    /// Where request tasks are spawned, so shutdown waits for them.
    tracker: TaskTracker,
}

/// A reply on its way to the writer, with the reply budget it holds until it is written.
struct QueuedReply {
    reply: Bytes,
    room: ReplyRoom,
}

/// Reply budget reserved for one call: of its connection, and for large replies of the server.
struct ReplyRoom {
    connection: Charge,
    /// Only for large replies: small ones stay off the budget every connection shares.
    server: Option<Charge>,
}

impl ReplyRoom {
    /// Holds what the finished reply takes instead of what was reserved. (A reply larger than
    /// its call's bound said, which no procedure of this server makes beyond a few KiB, is
    /// counted on its connection only.)
    fn fit(&mut self, len: usize) {
        self.connection.force_resize(len + 4);
        if len <= LARGE_REPLY {
            self.server = None;
        } else if let Some(server) = &mut self.server {
            server.force_resize(len);
        }
    }
}

/// When the record being received began, to hold it to its deadline.
#[derive(Default)]
struct RecordClock {
    started: Option<Instant>,
}

impl RecordClock {
    /// The time by which a record of `size` bytes must have arrived, if one is being received.
    fn deadline(&self, limits: &TransportLimits, size: usize) -> Option<Instant> {
        let rate = limits.min_record_rate.max(1) as u64;
        let allowance = limits.record_timeout + Duration::from_millis(size as u64 * 1000 / rate);
        self.started.map(|s| s + allowance)
    }

    /// The connection held back (waiting for budget or for its calls): that time is not the
    /// peer's.
    fn pause(&mut self, waited: Duration) {
        if let Some(s) = &mut self.started {
            *s += waited;
        }
    }
}

/// Request bytes a connection's buffers count against the budget.
fn request_bytes(buf: &BytesMut, assembler: &RecordAssembler) -> usize {
    buf.capacity().saturating_sub(UNCOUNTED_BUFFER) + assembler.partial_len()
}

impl Connection {
    async fn serve(self, stream: TcpStream, admitted: Admitted) {
        let peer = self.peer;
        let state = admitted.state.clone();
        let limits = self.shared.limits;
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
        let (max_record, max_in_flight, idle_timeout) = if state.listed {
            (limits.max_record, limits.max_in_flight_per_connection.max(1), limits.idle_timeout)
        } else {
            (
                limits.max_record.min(limits.max_unlisted_record),
                limits.max_in_flight_per_connection.clamp(1, UNLISTED_IN_FLIGHT),
                limits.idle_timeout.min(UNLISTED_IDLE_TIMEOUT),
            )
        };
        tracing::debug!(%peer, listed = state.listed, "connection accepted");
        let evicted = state.evicted().clone();
        let (mut rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<QueuedReply>(limits.reply_queue.max(1));
        let writer = self.tracker.spawn(write_replies(
            wr,
            rx,
            limits.write_timeout,
            self.closing.clone(),
            state.clone(),
            peer,
        ));

        let in_flight = Arc::new(Semaphore::new(max_in_flight));
        let connection_replies = ByteBudget::new(limits.max_reply_bytes_per_connection);
        let mut assembler = RecordAssembler::new(max_record);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        // Request budget for what `buf` and the assembler hold beyond the uncounted buffer.
        let mut held = Charge::none(&self.shared.requests);
        let mut clock = RecordClock::default();
        // Waiting on a token registers a waiter under its lock; these two are registered once
        // for the connection rather than at every read.
        let mut evicted_wait = std::pin::pin!(evicted.cancelled());
        let mut closing_wait = std::pin::pin!(self.closing.cancelled());
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
                state.touch();
                clock.started = None;
                // A large record (a WRITE) filled a pooled buffer: it goes back once its call has
                // run, and the next record starts in a small buffer of its own.
                let recycle = (record.len() >= LARGE_BUFFER_MIN).then(|| record.clone());
                if recycle.is_some() && buf.is_empty() {
                    buf = BytesMut::with_capacity(READ_CHUNK);
                }
                // The record's memory stays counted until its call has run.
                let record_bytes = held.split_off_beyond(request_bytes(&buf, &assembler));
                state.partial_progress(held.bytes() > 0);

                let mut room = ReplyRoom { connection: Charge::none(&connection_replies), server: None };
                // Inline procedures have small results; asking costs a header decode.
                let inline = self.dispatcher.runs_inline(&record);
                let bound =
                    if inline { super::SMALL_REPLY_BOUND } else { self.dispatcher.reply_bound(&record) } + 4;
                let permit = match self.try_reserve(&mut room, bound, &in_flight) {
                    Some(p) => p,
                    None => {
                        let waited_from = Instant::now();
                        state.set_paused(true);
                        let permit = tokio::select! {
                            biased;
                            _ = &mut evicted_wait => break 'conn,
                            _ = &mut closing_wait => break 'conn,
                            p = self.reserve(&mut room, bound, &state, &in_flight) => p,
                        };
                        state.set_paused(false);
                        clock.pause(waited_from.elapsed());
                        permit
                    }
                };
                // A quick call runs right here: spawning a task for it would cost more than
                // the call, and its reply still goes through the writer in order of completion.
                if inline {
                    let reply = self.dispatcher.handle(record, peer, local, Transport::Tcp).await;
                    drop(record_bytes);
                    if let Some(recycle) = recycle {
                        LARGE_BUFFERS.give_back(recycle);
                    }
                    if let Some(reply) = reply {
                        room.fit(reply.len());
                        if tx.send(QueuedReply { reply, room }).await.is_err() {
                            break 'conn;
                        }
                    }
                    drop(permit);
                    continue;
                }
                let dispatcher = self.dispatcher.clone();
                let tx = tx.clone();
                let closed = evicted.clone();
                self.tracker.spawn(async move {
                    let reply =
                        dispatcher.handle_until(record, peer, local, Transport::Tcp, Some(&closed)).await;
                    drop(record_bytes);
                    if let Some(recycle) = recycle {
                        LARGE_BUFFERS.give_back(recycle);
                    }
                    if let Some(reply) = reply {
                        room.fit(reply.len());
                        // A send error means the writer is gone, i.e. the connection is closing.
                        let _ = tx.send(QueuedReply { reply, room }).await;
                    }
                    drop(permit);
                });
            }
            // A fragment of up to a transfer is read into a pooled buffer, and no further than
            // its end, so the record it becomes owns the buffer alone and can return it. What
            // the peer has not sent yet is not touched: a lying marker costs budget and reserved
            // address space, not memory. A larger fragment is read into one allocation of its
            // size instead of a buffer that doubles (and copies) its way up.
            let missing = assembler.fragment_missing(&buf).unwrap_or(0);
            let whole = buf.len() + missing;
            let pooled = missing > 0 && (LARGE_BUFFER_MIN..=LARGE_BUFFER_SIZE).contains(&whole);
            let spare = buf.capacity() - buf.len();
            let grown = if pooled && spare < missing {
                LARGE_BUFFER_SIZE
            } else if whole > READ_CHUNK && spare < missing {
                whole
            } else {
                buf.capacity()
            };
            let needed = grown.saturating_sub(UNCOUNTED_BUFFER) + assembler.partial_len();
            if needed > held.bytes() {
                let waited_from = Instant::now();
                state.set_paused(true);
                tokio::select! {
                    biased;
                    _ = &mut evicted_wait => break,
                    _ = &mut closing_wait => break,
                    _ = self.reserve_request_bytes(&mut held, needed, &state) => {}
                }
                state.set_paused(false);
                clock.pause(waited_from.elapsed());
            }
            let limit = if pooled {
                LARGE_BUFFERS.reserve(&mut buf, missing);
                missing
            } else if grown > buf.capacity() {
                let mut exact = BytesMut::with_capacity(grown);
                exact.extend_from_slice(&buf);
                buf = exact;
                usize::MAX
            } else {
                buf.reserve(READ_CHUNK);
                usize::MAX
            };
            held.force_resize(request_bytes(&buf, &assembler));
            if held.bytes() > 0 {
                state.partial_holding();
            }
            if !buf.is_empty() || assembler.partial_len() > 0 {
                clock.started.get_or_insert_with(Instant::now);
            }
            let deadline = clock.deadline(&limits, whole.max(buf.len()) + assembler.partial_len());
            let wait = deadline.map_or(idle_timeout, |d| d.saturating_duration_since(Instant::now()));
            let mut room = (&mut buf).limit(limit);
            let read = tokio::select! {
                biased;
                _ = &mut evicted_wait => break,
                _ = &mut closing_wait => break,
                r = tokio::time::timeout(wait, rd.read_buf(&mut room)) => r,
            };
            match read {
                Ok(Ok(0)) => {
                    tracing::debug!(%peer, "connection closed by peer");
                    break;
                }
                // The clock of a record these bytes begin starts once they are looked at, above.
                Ok(Ok(_)) => state.partial_progress(held.bytes() > 0),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "read failed; closing connection");
                    break;
                }
                Err(_) if deadline.is_some() => {
                    tracing::debug!(%peer, "closing a connection whose record did not arrive in time");
                    self.shared.table.count_record_timeout();
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
        drop(held);
        // The writer ends once every request task has sent its reply and dropped its sender (or
        // at once when the connection was closed by the table).
        drop(tx);
        let _ = writer.await;
        drop(admitted);
        tracing::debug!(%peer, "connection done");
    }

    /// [`Connection::reserve`] when everything is at hand, without waiting (the common case).
    /// On `None` nothing is held beyond what `room` already had.
    fn try_reserve(
        &self,
        room: &mut ReplyRoom,
        bound: usize,
        in_flight: &Arc<Semaphore>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if bound > LARGE_REPLY || !room.connection.try_resize(bound) {
            return None;
        }
        in_flight.clone().try_acquire_owned().ok()
    }

    /// Reserves room for a call's reply (`bound` bytes) and an in-flight permit. While the
    /// server's budget for large replies is spent, closes the connection whose writer has stalled
    /// the longest.
    async fn reserve(
        &self,
        room: &mut ReplyRoom,
        bound: usize,
        state: &ConnState,
        in_flight: &Arc<Semaphore>,
    ) -> tokio::sync::OwnedSemaphorePermit {
        room.connection.resize(bound).await;
        if bound > LARGE_REPLY {
            let server = room.server.insert(Charge::none(&self.shared.large_replies));
            loop {
                tokio::select! {
                    _ = server.resize(bound) => break,
                    _ = tokio::time::sleep(STALL_CHECK) => {
                        self.shared.table.evict_stalled_writer(state, STALLED);
                    }
                }
            }
        }
        in_flight.clone().acquire_owned().await.expect("the in-flight semaphore is never closed")
    }

    /// Grows `held` to `target` request bytes. While the budget is spent, closes the connection
    /// whose partial record has stalled the longest.
    async fn reserve_request_bytes(&self, held: &mut Charge, target: usize, state: &ConnState) {
        loop {
            tokio::select! {
                _ = held.resize(target) => return,
                _ = tokio::time::sleep(STALL_CHECK) => {
                    self.shared.table.evict_stalled_record(state, STALLED);
                }
            }
        }
    }
}

/// Most replies gathered into one `writev`.
const MAX_BATCH_REPLIES: usize = 64;
/// Stop gathering once this many bytes are queued for one `writev`.
const MAX_BATCH_BYTES: usize = 2 << 20;
/// Most bytes one `writev` is offered, and written between two yields of the writer: a batch of
/// 1 MiB READ replies is copied in slices, so no worker thread is held for milliseconds.
const WRITE_SLICE: usize = 512 << 10;

/// Sends each reply as a single-fragment record. Every reply that is ready when the writer wakes
/// goes out in one vectored write (marker and body as separate slices, bodies not copied), so a
/// busy connection costs one system call per batch rather than per reply. The reply budget a
/// reply holds goes back once it is written. When the table closes the connection, the writer
/// stops at once and drops what is queued.
async fn write_replies(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<QueuedReply>,
    write_timeout: Duration,
    closing: CancellationToken,
    state: Arc<ConnState>,
    peer: SocketAddr,
) {
    let evicted = state.evicted().clone();
    let mut evicted_wait = std::pin::pin!(evicted.cancelled());
    let mut batch = ReplyBatch::default();
    let mut rooms = Vec::new();
    loop {
        let queued = tokio::select! {
            biased;
            _ = &mut evicted_wait => return,
            q = rx.recv() => q,
        };
        let Some(first) = queued else { break };
        batch.push(first.reply);
        rooms.push(first.room);
        while batch.replies < MAX_BATCH_REPLIES && batch.bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(q) => {
                    batch.push(q.reply);
                    rooms.push(q.room);
                }
                Err(_) => break,
            }
        }
        state.writer_progress(true);
        let written = tokio::select! {
            biased;
            _ = &mut evicted_wait => return,
            r = tokio::time::timeout(write_timeout, batch.write_all(&mut wr, &state)) => r,
        };
        state.writer_progress(false);
        rooms.clear();
        match written {
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

    async fn write_all(&mut self, wr: &mut OwnedWriteHalf, state: &ConnState) -> io::Result<()> {
        let mut since_yield = 0;
        while !self.parts.is_empty() {
            let sent = self.front_sent;
            let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(self.parts.len());
            let mut offered = 0;
            for (i, part) in self.parts.iter().enumerate() {
                let part = if i == 0 { &part[sent..] } else { &part[..] };
                let take = part.len().min(WRITE_SLICE - offered);
                slices.push(io::IoSlice::new(&part[..take]));
                offered += take;
                if offered == WRITE_SLICE {
                    break;
                }
            }
            let mut written = wr.write_vectored(&slices).await?;
            drop(slices);
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            state.writer_progress(true);
            // Copying a slice into the socket takes tens of microseconds; between slices the
            // worker thread goes back to its queue, where other connections' calls wait.
            since_yield += written;
            if since_yield >= WRITE_SLICE && !self.parts.is_empty() {
                since_yield = 0;
                tokio::task::yield_now().await;
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
