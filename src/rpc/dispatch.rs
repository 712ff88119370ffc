//! The dispatcher: turns one received record into at most one reply record. It decodes the call
//! header, answers every RPC-level error (RFC 5531 §9: RPC_MISMATCH, AUTH_ERROR, PROG_UNAVAIL,
//! PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR), looks the procedure up in its program's
//! table (see [`super::program`]), counts the call, consults the duplicate-request cache for
//! non-idempotent procedures, and runs the procedure where its row says: `Inline` on the async
//! worker that decoded it (the TCP reader calls the dispatcher in place, with no task of its
//! own), `TryInline` there first through its attempt and on the pool when the attempt would
//! wait, `Pool` on the blocking pool, whose slots are shared fairly between clients (see
//! `super::fair`). A panic in a procedure is caught on either kind of thread and answered
//! SYSTEM_ERR; the thread serves again only because `fs::cred` guarantees it is back at plain
//! root, or the process has aborted.
//! It is transport-agnostic: TCP and UDP hand it records and send what it returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use xdr::rpc::{AcceptedStatus, CallHeader, MSG_CALL, RPC_VERSION, RejectedReply, ReplyHeader};
use xdr::{Reader, Xdr};

use super::drc::{Drc, DrcConfig, DrcKey, DrcLookup};
use super::fair::FairShare;
use super::stats::{CallCounters, ErrorKind, RpcStats, StatsSnapshot};
use super::{CallContext, Cred, DrcClass, Placement, Program, RpcError, Transport};

/// Settings of the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Procedures executing at once on the blocking pool: the equivalent of knfsd's thread count.
    /// Calls beyond it wait for a permit without occupying a thread.
    pub workers: usize,
    /// Of those, how many one client (peer IP address) may hold at once, so that one host cannot
    /// take the whole pool.
    pub workers_per_client: usize,
    pub drc: DrcConfig,
}

/// Procedures executing at once on the pool when not configured (`--fs-threads`).
pub const DEFAULT_WORKERS: usize = 32;

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            workers: DEFAULT_WORKERS,
            workers_per_client: default_workers_per_client(DEFAULT_WORKERS),
            drc: DrcConfig::default(),
        }
    }
}

/// The registered programs, the duplicate-request cache, the bound on blocking work and the
/// counters. One per server, shared by every transport.
pub struct Dispatcher {
    /// The programs, each with its call counters. A handful: found by a scan, cheaper than
    /// hashing the program number.
    programs: Box<[Registered]>,
    drc: Drc,
    /// Slots for executing procedures on the pool, shared between clients; held for as long as
    /// the blocking closure runs.
    workers: Arc<FairShare>,
    stats: RpcStats,
}

/// A program the dispatcher serves, with its call counters.
struct Registered {
    program: Arc<dyn Program>,
    calls: CallCounters,
}

const MSG_CALL_WORD: usize = MSG_CALL as usize;
const RPC_VERSION_WORD: usize = RPC_VERSION as usize;

/// How many pool slots one client may hold when not configured: three quarters of the pool,
/// so that others always find a quarter free, and at most 8. Eight calls at once already keep a
/// disk or both cores of a small machine busy; more only crowd out the network workers and every
/// other client.
pub fn default_workers_per_client(workers: usize) -> usize {
    (workers - workers / 4).clamp(1, 8)
}

/// How many nice levels below the network workers the blocking pool's threads run. Measured on
/// 2 cores beside a flood of 1 MiB WRITEs or READDIRPLUS from another address, another client's
/// GETATTR p99 went from 8-11 ms to 1.7 ms and 0.4 ms (medians of 6 runs) at +10; +5 helped
/// READDIRPLUS but not WRITE, and +19 starved the flood (its WRITEs to half).
pub const POOL_NICE_INCREMENT: i32 = 10;

/// Lowers this pool thread's priority the first time it runs a procedure (see
/// [`POOL_NICE_INCREMENT`]). The async workers run GETATTR, LOOKUP and every connection's reads
/// and writes; when a client's 1 MiB READs or WRITEs keep all its pool threads busy on a small
/// machine, those threads compete with the async workers for the cores, and every other client's
/// cheapest call waits a scheduler slice. Below them, the pool threads still get every cycle the
/// async workers leave idle: a nice value only decides who runs first under contention.
fn run_below_network_workers() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.replace(true) {
        return;
    }
    if let Err(e) = crate::fs::sys::lower_thread_priority(POOL_NICE_INCREMENT) {
        tracing::warn!("cannot lower a pool thread's priority: {e}");
    }
}

/// Size of an accepted SUCCESS reply header with an AUTH_NONE verifier.
const SUCCESS_HEADER_LEN: usize = 24;

impl Dispatcher {
    /// A dispatcher serving `programs`.
    ///
    /// # Panics
    /// If two programs have the same program number, or a program's versions have a gap: those
    /// are wiring mistakes, not runtime conditions.
    pub fn new(programs: impl IntoIterator<Item = Arc<dyn Program>>, config: DispatcherConfig) -> Self {
        let mut registered: Vec<Registered> = Vec::new();
        for program in programs {
            let (number, name) = (program.program(), program.name());
            if let Some(old) = registered.iter().find(|r| r.program.program() == number) {
                panic!("program {number} registered twice ({} and {name})", old.program.name());
            }
            let (low, high) = program.versions();
            if let Some(gap) = (low..=high).find(|&v| program.procedure_count(v) == 0) {
                panic!("program {name} has versions {low} to {high} but no table for version {gap}");
            }
            registered.push(Registered { calls: CallCounters::new(program.as_ref()), program });
        }
        Dispatcher {
            programs: registered.into(),
            drc: Drc::new(config.drc),
            workers: FairShare::new(config.workers.max(1), config.workers_per_client),
            stats: RpcStats::default(),
        }
    }

    /// The registered program numbers with their version ranges, for portmapper registration.
    pub fn programs(&self) -> Vec<(u32, &'static str, (u32, u32))> {
        let mut v: Vec<_> = self
            .programs
            .iter()
            .map(|r| (r.program.program(), r.program.name(), r.program.versions()))
            .collect();
        v.sort_unstable_by_key(|(n, ..)| *n);
        v
    }

    /// The program numbered `prog`, if it is served.
    fn registered(&self, prog: u32) -> Option<&Registered> {
        self.programs.iter().find(|r| r.program.program() == prog)
    }

    /// Whether `record` is a call to a [`Placement::Inline`] procedure, judged from the fixed-position
    /// header words (xid, CALL, rpcvers, prog, vers, proc). Transports run such calls in place
    /// instead of spawning a task for them; anything unusual answers `false` and takes the
    /// general path, which also produces the right error.
    pub fn runs_inline(&self, record: &[u8]) -> bool {
        let word =
            |i: usize| record.get(i * 4..i * 4 + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let (Some(MSG_CALL), Some(RPC_VERSION), Some(prog), Some(vers), Some(proc_)) =
            (word(1), word(2), word(3), word(4), word(5))
        else {
            return false;
        };
        self.registered(prog)
            .and_then(|r| r.program.procedure(vers, proc_))
            .is_some_and(|info| info.run == Placement::Inline && info.drc == DrcClass::Idempotent)
    }

    /// The most bytes the reply to `record` can take (its row's
    /// [`LargestReply`](super::program::LargestReply)), for the transport to reserve before the
    /// call runs. Anything that is not a call to a registered program gets an error reply, which
    /// is small.
    pub fn reply_bound(&self, record: &[u8]) -> usize {
        use super::{SMALL_REPLY_BOUND, xdr_padded, xdr_word};
        // xid, CALL, rpcvers, prog, vers, proc, then the credential and the verifier (flavor,
        // length, body each): read in place, as for `runs_inline`.
        let word = |at| xdr_word(record, at);
        let (Some(MSG_CALL_WORD), Some(RPC_VERSION_WORD), Some(prog), Some(vers), Some(proc_)) =
            (word(4), word(8), word(12), word(16), word(20))
        else {
            return SMALL_REPLY_BOUND;
        };
        let Some(cred) = word(28).filter(|&l| l <= xdr::rpc::MAX_AUTH_BYTES) else {
            return SMALL_REPLY_BOUND;
        };
        let verf_at = 32 + xdr_padded(cred);
        let Some(verf) = word(verf_at + 4).filter(|&l| l <= xdr::rpc::MAX_AUTH_BYTES) else {
            return SMALL_REPLY_BOUND;
        };
        let (Some(args), Some(registered)) =
            (record.get(verf_at + 8 + xdr_padded(verf)..), self.registered(prog as u32))
        else {
            return SMALL_REPLY_BOUND;
        };
        registered.program.reply_bound(vers as u32, proc_ as u32, args)
    }

    /// Expires duplicate-request cache entries whose time is up and shrinks its tables, for the
    /// periodic sweep: the cache otherwise only expires entries when calls arrive. Returns how
    /// many entries went.
    pub fn expire_idle_cache(&self) -> u64 {
        self.drc.expire_idle()
    }

    /// A copy of every counter, including the cache's.
    pub fn stats(&self) -> StatsSnapshot {
        let mut calls = HashMap::new();
        for r in self.programs.iter() {
            r.calls.collect_into(&mut calls);
        }
        self.stats.snapshot(calls, self.drc.snapshot())
    }

    /// The live counters, for the transports.
    pub(crate) fn counters(&self) -> &RpcStats {
        &self.stats
    }

    /// Handles one record (a TCP record or a UDP datagram) and returns the reply record to send,
    /// or `None` when nothing is to be sent (an undecodable record, a duplicate that could not be
    /// answered).
    pub async fn handle(
        &self,
        record: Bytes,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
    ) -> Option<Bytes> {
        self.handle_until(record, peer, local, transport, None).await
    }

    /// [`Dispatcher::handle`] for a call of a connection that may be closed before the call runs
    /// (`closed` cancelled): a call still waiting for a pool slot then gives up and is never
    /// executed, so the calls a closed connection left queued hold no memory or slots once its
    /// place in the connection table has gone to another. A call already executing runs to its
    /// end, keeping its duplicate-request cache entry, so a retransmission waits for it.
    pub async fn handle_until(
        &self,
        record: Bytes,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        closed: Option<&CancellationToken>,
    ) -> Option<Bytes> {
        let start = Instant::now();
        let mut args = Reader::new(record.clone());
        let header = match CallHeader::decode(&mut args) {
            Ok(h) => h,
            Err(e) => return self.undecodable(record, peer, e),
        };
        // When enabled, every log line of the call carries these fields. The span is at debug:
        // built for every call, it costs 15-25% of a loopback GETATTR's rate, so it is built
        // only when an operator asks for it (RUST_LOG=info,rnfsd::rpc::dispatch=debug); under
        // the default filter it costs a level check. Every field is given here, none recorded
        // later: each `record` on an enabled span formats again (and the JSON formatter
        // re-parses what it had), which cost more than the span itself. The macro evaluates the
        // fields only for an enabled span: no lookup otherwise.
        let span = tracing::debug_span!(
            "rpc",
            client = %peer,
            prog = self.names(&header).0,
            proc = self.names(&header).1,
            xid = header.xid,
        );
        async {
            let (reply, status) = self.dispatch(header, args, peer, local, transport, closed).await;
            tracing::debug!(
                status,
                latency_us = start.elapsed().as_micros() as u64,
                replied = reply.is_some(),
                "rpc done"
            );
            reply
        }
        .instrument(span)
        .await
    }

    /// The names of the program and procedure a call is for, for its span; `None` for what is not
    /// served (the call is answered with an RPC error).
    fn names(&self, h: &CallHeader) -> (Option<&'static str>, Option<&'static str>) {
        let Some(r) = self.registered(h.prog) else { return (None, None) };
        (Some(r.program.name()), r.program.procedure(h.vers, h.proc_).map(|info| info.name))
    }

    /// A record whose call header does not decode. If it at least says it is a CALL and carries an
    /// xid, the caller gets GARBAGE_ARGS; anything else (a reply, noise) is dropped.
    fn undecodable(&self, record: Bytes, peer: SocketAddr, err: xdr::XdrError) -> Option<Bytes> {
        if record.len() >= 8 && u32::from_be_bytes([record[4], record[5], record[6], record[7]]) == MSG_CALL {
            let xid = u32::from_be_bytes([record[0], record[1], record[2], record[3]]);
            tracing::debug!(xid, %peer, error = %err, "undecodable call header");
            self.stats.count_error(ErrorKind::GarbageArgs);
            return Some(accepted(xid, AcceptedStatus::GarbageArgs));
        }
        tracing::debug!(%peer, len = record.len(), error = %err, "dropping a record that is not an RPC call");
        self.stats.records_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        None
    }

    /// Everything after the header decoded. Returns the reply and a status name for the log.
    async fn dispatch(
        &self,
        h: CallHeader,
        args: Reader,
        peer: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        closed: Option<&CancellationToken>,
    ) -> (Option<Bytes>, &'static str) {
        let xid = h.xid;
        if h.rpcvers != RPC_VERSION {
            let e = RpcError::RpcMismatch { low: RPC_VERSION, high: RPC_VERSION };
            return (Some(self.error_reply(xid, e)), ErrorKind::RpcMismatch.as_str());
        }
        let cred = match Cred::from_call(&h.cred, &h.verf) {
            Ok(c) => c,
            Err(stat) => {
                return (Some(self.error_reply(xid, RpcError::Auth(stat))), ErrorKind::AuthError.as_str());
            }
        };
        let Some(Registered { program, calls }) = self.registered(h.prog) else {
            return (Some(self.error_reply(xid, RpcError::ProgUnavail)), ErrorKind::ProgUnavail.as_str());
        };
        let (low, high) = program.versions();
        if h.vers < low || h.vers > high {
            let e = RpcError::ProgMismatch { low, high };
            return (Some(self.error_reply(xid, e)), ErrorKind::ProgMismatch.as_str());
        }
        let Some(info) = program.procedure(h.vers, h.proc_) else {
            return (Some(self.error_reply(xid, RpcError::ProcUnavail)), ErrorKind::ProcUnavail.as_str());
        };
        calls.count(h.vers, h.proc_);

        let ticket = match info.drc {
            DrcClass::Idempotent => None,
            DrcClass::NonIdempotent => {
                let key = DrcKey {
                    client: peer.ip().to_canonical(),
                    xid,
                    prog: h.prog,
                    vers: h.vers,
                    proc_: h.proc_,
                    args_sum: self.drc.args_checksum(&args.rest()),
                    cred_sum: self.drc.cred_checksum(&cred),
                    privileged_port: peer.port() < 1024,
                };
                match self.drc.begin(key, peer.port()) {
                    DrcLookup::Hit(reply) => return (Some(reply), "drc_replay"),
                    DrcLookup::InProgress(wait) => {
                        let reply = wait.reply().await;
                        let status = if reply.is_some() { "drc_parked_replay" } else { "drc_parked_dropped" };
                        return (reply, status);
                    }
                    DrcLookup::Miss(ticket) => Some(ticket),
                }
            }
        };

        let ctx = CallContext::new(xid, peer, local, transport, cred);
        let admitted = catch_panic(xid, || program.admit_call(&ctx, h.vers, h.proc_)).and_then(|r| r);
        let (reply, status, refused) = if let Err(e) = admitted {
            let (reply, status) = self.finish(xid, Err(e));
            (reply, status, ctx.was_refused())
        } else {
            match info.run {
                Placement::Inline => self.execute_inline(program.as_ref(), ctx, h.vers, h.proc_, args),
                Placement::Pool => {
                    match self.execute(program.clone(), ctx, h.vers, h.proc_, args, closed).await {
                        Some(done) => done,
                        None => return (None, "connection_closed"),
                    }
                }
                Placement::TryInline => {
                    match self.try_inline(program.as_ref(), &ctx, h.vers, h.proc_, args.clone()) {
                        Some(done) => done,
                        None => match self.execute(program.clone(), ctx, h.vers, h.proc_, args, closed).await
                        {
                            Some(done) => done,
                            None => return (None, "connection_closed"),
                        },
                    }
                }
            }
        };
        if let Some(ticket) = ticket {
            // A refused call changed nothing, and an RPC error other than SYSTEM_ERR means the
            // procedure never ran (undecodable arguments, unavailable): neither reply is kept, so
            // a flood of them takes no room from the calls the cache protects.
            let executed = status == "success" || status == ErrorKind::SystemErr.as_str();
            if refused || !executed {
                ticket.finish_uncached(reply.clone());
            } else {
                ticket.finish(reply.clone());
            }
        }
        (Some(reply), status)
    }

    /// Runs a [`Placement::Inline`] procedure right here. A panic is caught like on the pool and
    /// becomes SYSTEM_ERR.
    fn execute_inline(
        &self,
        program: &dyn Program,
        ctx: CallContext,
        vers: u32,
        proc_: u32,
        mut args: Reader,
    ) -> (Bytes, &'static str, bool) {
        let result = catch_panic(ctx.xid, || call_with_reply(program, &ctx, vers, proc_, &mut args));
        let (reply, status) = self.finish(ctx.xid, result.and_then(|r| r));
        (reply, status, ctx.was_refused())
    }

    /// Runs a [`Placement::TryInline`] procedure here if it can finish without waiting; `None` if it
    /// gave up (nothing was done that matters: it only reads).
    fn try_inline(
        &self,
        program: &dyn Program,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        mut args: Reader,
    ) -> Option<(Bytes, &'static str, bool)> {
        let attempt = catch_panic(ctx.xid, || {
            let mut reply = success_reply(ctx.xid);
            program.call_nonblocking(ctx, vers, proc_, &mut args, &mut reply).map(|r| r.map(|()| reply))
        });
        let (reply, status) = self.finish(ctx.xid, attempt.transpose()?.and_then(|r| r));
        Some((reply, status, ctx.was_refused()))
    }

    /// Runs the procedure on the blocking pool while holding a worker permit. A panic becomes
    /// SYSTEM_ERR. `None` when `closed` was cancelled before a permit came free: the procedure
    /// did not run.
    async fn execute(
        &self,
        program: Arc<dyn Program>,
        ctx: CallContext,
        vers: u32,
        proc_: u32,
        mut args: Reader,
        closed: Option<&CancellationToken>,
    ) -> Option<(Bytes, &'static str, bool)> {
        let xid = ctx.xid;
        let client = ctx.peer.ip().to_canonical();
        let permit = match closed {
            Some(closed) => tokio::select! {
                biased;
                _ = closed.cancelled() => return None,
                permit = self.workers.acquire(client) => permit,
            },
            None => self.workers.acquire(client).await,
        };
        let span = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            // The permit lives as long as the thread is busy, even if this call's future is dropped.
            let _permit = permit;
            run_below_network_workers();
            let _entered = span.enter();
            (call_with_reply(program.as_ref(), &ctx, vers, proc_, &mut args), ctx.was_refused())
        })
        .await;
        let (result, refused) = match joined {
            Ok((r, refused)) => (r, refused),
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(xid, "procedure panicked; answering SYSTEM_ERR");
                } else {
                    tracing::warn!(xid, "procedure was cancelled; answering SYSTEM_ERR");
                }
                (Err(RpcError::SystemErr), false)
            }
        };
        let (reply, status) = self.finish(xid, result);
        Some((reply, status, refused))
    }

    /// The reply to send for a procedure's outcome, and its status for the counters.
    fn finish(&self, xid: u32, result: Result<BytesMut, RpcError>) -> (Bytes, &'static str) {
        match result {
            Ok(reply) => (reply.freeze(), "success"),
            Err(e) => (self.error_reply(xid, e), error_kind(e).as_str()),
        }
    }

    /// Encodes the reply for an RPC-level error and counts it.
    fn error_reply(&self, xid: u32, e: RpcError) -> Bytes {
        self.stats.count_error(error_kind(e));
        match e {
            RpcError::ProgUnavail => accepted(xid, AcceptedStatus::ProgUnavail),
            RpcError::ProgMismatch { low, high } => accepted(xid, AcceptedStatus::ProgMismatch { low, high }),
            RpcError::ProcUnavail => accepted(xid, AcceptedStatus::ProcUnavail),
            RpcError::GarbageArgs => accepted(xid, AcceptedStatus::GarbageArgs),
            RpcError::SystemErr => accepted(xid, AcceptedStatus::SystemErr),
            RpcError::RpcMismatch { low, high } => {
                ReplyHeader::denied(xid, RejectedReply::RpcMismatch { low, high }).to_bytes()
            }
            RpcError::Auth(stat) => ReplyHeader::denied(xid, RejectedReply::AuthError(stat)).to_bytes(),
        }
    }
}

/// A reply buffer holding the accepted-success header, for the procedure to append its results.
fn success_reply(xid: u32) -> BytesMut {
    let mut reply = BytesMut::with_capacity(512);
    ReplyHeader::accepted(xid, AcceptedStatus::Success).encode(&mut reply);
    debug_assert_eq!(reply.len(), SUCCESS_HEADER_LEN);
    reply
}

/// Calls the procedure with a reply buffer that already holds the accepted-success header.
fn call_with_reply(
    program: &dyn Program,
    ctx: &CallContext,
    vers: u32,
    proc_: u32,
    args: &mut Reader,
) -> Result<BytesMut, RpcError> {
    let mut reply = success_reply(ctx.xid);
    program.call(ctx, vers, proc_, args, &mut reply).map(|()| reply)
}

/// Runs a procedure on this thread; a panic is logged and becomes SYSTEM_ERR, as on the pool.
fn catch_panic<T>(xid: u32, f: impl FnOnce() -> T) -> Result<T, RpcError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!(xid, "procedure panicked; answering SYSTEM_ERR");
        RpcError::SystemErr
    })
}

fn accepted(xid: u32, status: AcceptedStatus) -> Bytes {
    ReplyHeader::accepted(xid, status).to_bytes()
}

fn error_kind(e: RpcError) -> ErrorKind {
    match e {
        RpcError::ProgUnavail => ErrorKind::ProgUnavail,
        RpcError::ProgMismatch { .. } => ErrorKind::ProgMismatch,
        RpcError::ProcUnavail => ErrorKind::ProcUnavail,
        RpcError::GarbageArgs => ErrorKind::GarbageArgs,
        RpcError::SystemErr => ErrorKind::SystemErr,
        RpcError::RpcMismatch { .. } => ErrorKind::RpcMismatch,
        RpcError::Auth(_) => ErrorKind::AuthError,
    }
}
