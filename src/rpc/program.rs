//! The procedure table. An RPC program is an [`RpcService`]: a program number, a name and one table
//! per version, each a static array of [`Procedure`] rows indexed by procedure number (knfsd's
//! `nfsd_procedures3`). A row holds every fact about one procedure: its name, whether the
//! duplicate-request cache keeps its reply, where it runs, how large its reply can be, and its
//! handler, which decodes the arguments, refuses bytes after them, runs the procedure and
//! encodes its results. The same row drives dispatch, the cache, the tracing span's `proc` name,
//! the call counters and PROC_UNAVAIL (a number without a row).
//!
//! The dispatcher sees a service through [`Program`], which is implemented once, here, for every
//! [`RpcService`]: there is one dispatcher for all programs, and no program decodes or matches
//! procedure numbers itself. A call costs a few bounds-checked indexings of static tables and
//! one indirect call, to the row's handler; nothing is allocated and nothing is locked.
//!
//! Adding a procedure is a row in its version's table plus its function; adding a program is a
//! type implementing [`RpcService`] with its tables, registered with the dispatcher.

use bytes::BytesMut;
use xdr::{Reader, Xdr};

use super::{CallContext, DrcClass, RpcError, SMALL_REPLY_BOUND};

/// What a row runs for a call: decodes the arguments, runs the procedure and appends its results
/// to `reply`, which already holds the accepted reply header. Rows get one from `handler!`,
/// which refuses arguments followed by more bytes (GARBAGE_ARGS) before anything runs.
pub type Handler<S> = fn(&S, &CallContext, &mut Reader, &mut BytesMut) -> Result<(), RpcError>;

/// The first attempt at a [`RunOn::TryInline`] procedure, on the network worker that decoded the
/// call, given the row's handler. `None` means it would have to wait for the disk and did nothing
/// that matters (it appended nothing the dispatcher keeps): the procedure then runs on the pool
/// with the original arguments and a fresh reply buffer.
pub type Attempt<S> =
    fn(&S, &CallContext, &mut Reader, &mut BytesMut, Handler<S>) -> Option<Result<(), RpcError>>;

/// Where a procedure executes.
pub enum RunOn<S> {
    /// On the async worker that decoded the call. For procedures that touch only memory or make
    /// a few metadata system calls on objects the server already holds (GETATTR, LOOKUP, ACCESS,
    /// the portmapper, MOUNT): handing them to another thread costs several times the work
    /// itself (GETATTR measured at ~5 µs of server CPU inline against ~20 µs through the pool,
    /// the difference being futex wake-ups and context switches).
    Inline,
    /// On the bounded blocking pool: file data, syncs, directory reads and every change, whose
    /// system calls may wait for the disk.
    Pool,
    /// First the [`Attempt`] on the async worker, which gives up when the work would wait for the
    /// disk (READ of data not in the page cache); then on the pool.
    TryInline(Attempt<S>),
}

/// The most bytes a procedure's reply can take, judged from its argument bytes before it runs
/// (knfsd's `pc_xdrressize`), so the transport can reserve room for it and bound the replies a
/// connection holds. A reply that turns out larger is still sent.
pub enum LargestReply<S> {
    /// [`SMALL_REPLY_BOUND`]: attributes, wcc data, a handle or a short list.
    Small,
    /// What the function reads from the argument bytes: the count a READ or READDIR asks for.
    /// It runs for every such call, so it reads the few words it needs in place rather than
    /// decoding the arguments.
    FromArgs(fn(&S, &[u8]) -> usize),
}

/// One row of a procedure table: everything the server knows about one procedure.
pub struct Procedure<S> {
    /// The procedure number; [`by_number`] puts the row at this index.
    pub number: u32,
    /// The name in the RFC, for the tracing span and logs.
    pub name: &'static str,
    pub drc: DrcClass,
    pub run: RunOn<S>,
    pub reply: LargestReply<S>,
    pub handler: Handler<S>,
}

// Rows are plain data (function pointers and names) whatever the service type, so they are
// `Copy` without requiring `S: Copy`, as a derive would.
impl<S> Clone for RunOn<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for RunOn<S> {}
impl<S> Clone for LargestReply<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for LargestReply<S> {}
impl<S> Clone for Procedure<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Procedure<S> {}

/// A row, with its columns in the order the tables list them.
pub const fn row<S>(
    number: u32,
    name: &'static str,
    drc: DrcClass,
    run: RunOn<S>,
    reply: LargestReply<S>,
    handler: Handler<S>,
) -> Procedure<S> {
    Procedure { number, name, drc, run, reply, handler }
}

/// A version's table from its rows, each at the index of its procedure number; the numbers
/// without a row answer PROC_UNAVAIL. The rows may come in several groups (procedures versions
/// share, then the ones only this version has). Evaluated at compile time: two rows with one
/// number, or a table longer or shorter than its highest procedure, fail the build.
pub const fn by_number<S, const N: usize>(groups: &[&[Procedure<S>]]) -> [Option<Procedure<S>>; N] {
    let mut table = [None; N];
    let mut len = 0;
    let mut g = 0;
    while g < groups.len() {
        let mut i = 0;
        while i < groups[g].len() {
            let row = groups[g][i];
            let n = row.number as usize;
            assert!(n < N, "a procedure number beyond the table's length");
            assert!(table[n].is_none(), "two rows for one procedure number");
            table[n] = Some(row);
            if n >= len {
                len = n + 1;
            }
            i += 1;
        }
        g += 1;
    }
    assert!(len == N, "the table's length is not its highest procedure number plus one");
    table
}

/// One version of a program and its procedures.
pub struct Version<S: 'static> {
    pub number: u32,
    pub procedures: &'static [Option<Procedure<S>>],
}

/// An RPC program: its number, its name and its tables. Programs implement this (never
/// [`Program`], which every `RpcService` is); the dispatcher takes them as `Arc<dyn Program>`.
pub trait RpcService: Send + Sync + Sized + 'static {
    /// The RPC program number, e.g. 100003 for NFS.
    const PROGRAM: u32;
    /// A short name for logs and the tracing span, e.g. "nfs".
    const NAME: &'static str;
    /// Every supported version, lowest first, without gaps.
    const VERSIONS: &'static [Version<Self>];

    /// Decides, before any procedure of the program runs, whether the program takes the call at
    /// all, and may count it. Runs once per executed call (not for duplicate-request cache
    /// replays), after the table lookup; an error is the call's reply. Most programs take every
    /// call.
    fn admit(&self, _ctx: &CallContext, _vers: u32, _proc: u32) -> Result<(), RpcError> {
        Ok(())
    }
}

/// What the dispatcher knows about one procedure, read from its row.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo {
    pub name: &'static str,
    pub drc: DrcClass,
    pub run: Placement,
}

/// [`RunOn`] without the attempt: what the dispatcher decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Inline,
    Pool,
    TryInline,
}

/// An [`RpcService`] as the dispatcher sees it, implemented once for every one of them: the one
/// dispatcher of every program's calls.
///
/// Handlers run on a blocking-pool thread, or on the async worker that decoded the call for
/// [`RunOn::Inline`] procedures (and the attempt of a [`RunOn::TryInline`] one). Either way they
/// are synchronous, so a procedure may switch the thread's identity inside it: the switch is per
/// thread and is undone before the handler returns, hence before the worker polls another task
/// (see [`crate::fs::cred`] for the rule and what happens when it cannot be undone). On `Err`
/// the dispatcher discards whatever was appended to the reply and sends the RPC error.
pub trait Program: Send + Sync + 'static {
    /// The RPC program number.
    fn program(&self) -> u32;
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// Lowest and highest supported version.
    fn versions(&self) -> (u32, u32);
    /// How many procedure numbers version `vers` has (its table's length), for the counters.
    fn procedure_count(&self, vers: u32) -> usize;
    /// The row of a procedure of a supported version, or `None` (PROC_UNAVAIL).
    fn procedure(&self, vers: u32, proc_: u32) -> Option<ProcInfo>;
    /// The most bytes the reply to this call can take (see [`LargestReply`]).
    fn reply_bound(&self, vers: u32, proc_: u32, args: &[u8]) -> usize;
    /// [`RpcService::admit`], which the dispatcher runs once before executing a call.
    fn admit_call(&self, ctx: &CallContext, vers: u32, proc_: u32) -> Result<(), RpcError>;
    /// Runs the row's handler: PROG_MISMATCH for a version without a table, PROC_UNAVAIL for a
    /// number without a row.
    fn call(
        &self,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        args: &mut Reader,
        reply: &mut BytesMut,
    ) -> Result<(), RpcError>;
    /// Runs a [`RunOn::TryInline`] row's attempt; `None` when it gave up (or the row is not
    /// TryInline), and the dispatcher then runs [`Program::call`] on the pool.
    fn call_nonblocking(
        &self,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        args: &mut Reader,
        reply: &mut BytesMut,
    ) -> Option<Result<(), RpcError>>;
}

/// The table of version `vers`, if the service has one.
fn version<S: RpcService>(vers: u32) -> Option<&'static Version<S>> {
    let first = S::VERSIONS.first()?.number;
    S::VERSIONS.get(vers.wrapping_sub(first) as usize).filter(|v| v.number == vers)
}

fn row_of<S: RpcService>(vers: u32, proc_: u32) -> Option<&'static Procedure<S>> {
    version::<S>(vers)?.procedures.get(proc_ as usize)?.as_ref()
}

impl<S: RpcService> Program for S {
    fn program(&self) -> u32 {
        S::PROGRAM
    }

    fn name(&self) -> &'static str {
        S::NAME
    }

    fn versions(&self) -> (u32, u32) {
        match (S::VERSIONS.first(), S::VERSIONS.last()) {
            (Some(low), Some(high)) => (low.number, high.number),
            _ => (1, 0),
        }
    }

    fn procedure_count(&self, vers: u32) -> usize {
        version::<S>(vers).map_or(0, |v| v.procedures.len())
    }

    fn procedure(&self, vers: u32, proc_: u32) -> Option<ProcInfo> {
        let row = row_of::<S>(vers, proc_)?;
        let run = match row.run {
            RunOn::Inline => Placement::Inline,
            RunOn::Pool => Placement::Pool,
            RunOn::TryInline(_) => Placement::TryInline,
        };
        Some(ProcInfo { name: row.name, drc: row.drc, run })
    }

    fn reply_bound(&self, vers: u32, proc_: u32, args: &[u8]) -> usize {
        match row_of::<S>(vers, proc_).map(|row| row.reply) {
            Some(LargestReply::FromArgs(bound)) => bound(self, args),
            Some(LargestReply::Small) | None => SMALL_REPLY_BOUND,
        }
    }

    fn admit_call(&self, ctx: &CallContext, vers: u32, proc_: u32) -> Result<(), RpcError> {
        self.admit(ctx, vers, proc_)
    }

    fn call(
        &self,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        args: &mut Reader,
        reply: &mut BytesMut,
    ) -> Result<(), RpcError> {
        let Some(table) = version::<S>(vers) else {
            let (low, high) = self.versions();
            return Err(RpcError::ProgMismatch { low, high });
        };
        let row =
            table.procedures.get(proc_ as usize).and_then(Option::as_ref).ok_or(RpcError::ProcUnavail)?;
        (row.handler)(self, ctx, args, reply)
    }

    fn call_nonblocking(
        &self,
        ctx: &CallContext,
        vers: u32,
        proc_: u32,
        args: &mut Reader,
        reply: &mut BytesMut,
    ) -> Option<Result<(), RpcError>> {
        let row = row_of::<S>(vers, proc_)?;
        match row.run {
            RunOn::TryInline(attempt) => attempt(self, ctx, args, reply, row.handler),
            RunOn::Inline | RunOn::Pool => None,
        }
    }
}

/// What a procedure returns, and how it becomes reply bytes or an RPC error.
pub trait Outcome {
    fn encode_into(self, reply: &mut BytesMut) -> Result<(), RpcError>;
}

/// The usual outcome: results to encode, or an RPC-level failure.
impl<T: Xdr> Outcome for Result<T, RpcError> {
    fn encode_into(self, reply: &mut BytesMut) -> Result<(), RpcError> {
        self.map(|res| res.encode(reply))
    }
}

/// The outcome of a procedure that appended its results to the reply itself (READ, which reads
/// file data straight into the reply buffer).
impl Outcome for () {
    fn encode_into(self, _: &mut BytesMut) -> Result<(), RpcError> {
        Ok(())
    }
}

/// Decodes a call's arguments, refusing bytes after them (GARBAGE_ARGS): a decoder stopping short
/// of the end means client and server disagree about the arguments, and nothing may run on a
/// guess.
pub fn arguments<A: Xdr>(args: &mut Reader) -> Result<A, RpcError> {
    let decoded = A::decode(args)?;
    args.finish()?;
    Ok(decoded)
}

/// The handler `handler!` makes of a procedure `fn(&S, &CallContext, Args) -> impl Outcome`.
#[inline(always)]
pub fn decode_run_encode<S, A: Xdr, O: Outcome>(
    svc: &S,
    ctx: &CallContext,
    args: &mut Reader,
    reply: &mut BytesMut,
    procedure: impl FnOnce(&S, &CallContext, A) -> O,
) -> Result<(), RpcError> {
    let args = arguments(args)?;
    procedure(svc, ctx, args).encode_into(reply)
}

/// The handler `handler!(writes ...)` makes of a procedure that appends to the reply itself,
/// `fn(&S, &CallContext, Args, &mut BytesMut) -> impl Outcome`.
#[inline(always)]
pub fn decode_run<S, A: Xdr, O: Outcome>(
    svc: &S,
    ctx: &CallContext,
    args: &mut Reader,
    reply: &mut BytesMut,
    procedure: impl FnOnce(&S, &CallContext, A, &mut BytesMut) -> O,
) -> Result<(), RpcError> {
    let args = arguments(args)?;
    procedure(svc, ctx, args, reply).encode_into(reply)
}

/// NULL, which every program has: no arguments, no results.
pub fn null<S>(_: &S, _: &CallContext, (): ()) -> Result<(), RpcError> {
    Ok(())
}

/// A row's [`Handler`] for a procedure: `handler!(path)` for
/// `fn(&S, &CallContext, Args) -> impl Outcome`, `handler!(writes path)` for one that appends to
/// the reply buffer itself, `fn(&S, &CallContext, Args, &mut BytesMut) -> impl Outcome`. Either
/// way the arguments are decoded and checked complete first ([`arguments`]).
macro_rules! handler {
    (writes $procedure:expr) => {
        |svc, ctx, args, reply| $crate::rpc::program::decode_run(svc, ctx, args, reply, $procedure)
    };
    ($procedure:expr) => {
        |svc, ctx, args, reply| $crate::rpc::program::decode_run_encode(svc, ctx, args, reply, $procedure)
    };
}
pub(crate) use handler;
