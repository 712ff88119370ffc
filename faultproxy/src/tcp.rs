//! The TCP forwarder: per accepted client connection, one upstream connection and two tasks, one
//! carrying calls upstream and one carrying replies back, both reassembling record-marked records
//! so a rule acts on whole calls and replies. A fault that closes the connection ends both tasks,
//! which drops (closes) both sockets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use xdr::rpc::RecordAssembler;

use crate::Shared;
use crate::event::{CallId, Detail, Event, EventKind};
use crate::rule::Action;
use crate::wire::{Pending, ReplyPlan, call_id, frame, reply_xid};

/// Largest record accepted in either direction: a 1 MiB READ or WRITE with headers, with room.
const MAX_RECORD: usize = 16 << 20;
/// After the client stops sending, how long its outstanding replies may take to come back.
const DRAIN: Duration = Duration::from_secs(10);

/// How one direction of a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The sender closed its side.
    Eof,
    /// A fault asked for both connections to close.
    Fault,
    /// A read or write failed, or a record was unreadable.
    Broken,
}

pub(crate) async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::stopped(&mut stop) => return,
        };
        match accepted {
            Ok((client, peer)) => {
                let conn = shared.new_conn();
                tracing::debug!(conn, %peer, "client connected");
                tokio::spawn(connection(client, conn, upstream, shared.clone(), stop.clone()));
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    client: TcpStream,
    conn: u64,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(conn, "cannot connect to the upstream {upstream}: {e}; closing the client");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rx, client_tx) = client.into_split();
    let (server_rx, server_tx) = server.into_split();
    let pending = Arc::new(Mutex::new(Pending::default()));
    let mut calls = tokio::spawn(carry_calls(client_rx, server_tx, conn, shared.clone(), pending.clone()));
    let mut replies = tokio::spawn(carry_replies(server_rx, client_tx, conn, shared, pending));
    tokio::select! {
        ended = &mut calls => {
            if matches!(ended, Ok(End::Eof)) {
                let _ = tokio::time::timeout(DRAIN, &mut replies).await;
            }
        }
        _ = &mut replies => {}
        _ = crate::stopped(&mut stop) => {}
    }
    // Aborting drops the socket halves each task owns, which closes both connections.
    calls.abort();
    replies.abort();
    tracing::debug!(conn, "connection closed");
}

/// Reads records into `buf` until one is complete; `Err` is how the stream ended.
async fn next_record(
    rx: &mut OwnedReadHalf,
    asm: &mut RecordAssembler,
    buf: &mut BytesMut,
) -> Result<Bytes, End> {
    loop {
        match asm.next_record(buf) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("unreadable record stream: {e}");
                return Err(End::Broken);
            }
        }
        buf.reserve(64 << 10);
        match rx.read_buf(buf).await {
            Ok(0) => return Err(End::Eof),
            Ok(_) => {}
            Err(_) => return Err(End::Broken),
        }
    }
}

async fn send(tx: &mut OwnedWriteHalf, record: &[u8]) -> Result<(), End> {
    tx.write_all(&frame(record)).await.map_err(|_| End::Broken)
}

/// Client to server: applies the call-side part of each rule and registers what to do with the
/// reply.
async fn carry_calls(
    mut rx: OwnedReadHalf,
    mut tx: OwnedWriteHalf,
    conn: u64,
    shared: Arc<Shared>,
    pending: Arc<Mutex<Pending>>,
) -> End {
    let mut asm = RecordAssembler::new(MAX_RECORD);
    let mut buf = BytesMut::new();
    // A call held by a reorder rule, sent after the next call.
    let mut held: Option<(Bytes, CallId)> = None;
    let log = |call: CallId, kind| shared.log.record(Event { conn, call, kind, detail: Detail::None });
    let expect = |call: CallId, plan| pending.lock().unwrap_or_else(|e| e.into_inner()).expect(call, plan);
    loop {
        let record = match next_record(&mut rx, &mut asm, &mut buf).await {
            Ok(r) => r,
            Err(end) => {
                if let Some((held_record, held_call)) = held.take() {
                    expect(held_call, ReplyPlan::Forward);
                    if send(&mut tx, &held_record).await.is_err() {
                        return End::Broken;
                    }
                }
                return end;
            }
        };
        let Some(call) = call_id(&record) else {
            // Not a call the proxy understands: pass it on untouched.
            if let Err(end) = send(&mut tx, &record).await {
                return end;
            }
            continue;
        };
        let mut action = shared.on_call(call.prog, call.proc_);
        if action == Some(Action::Reorder) && held.is_some() {
            // This call is the one the held call waits for; it is sent first either way.
            action = None;
        }
        match action {
            Some(Action::Reorder) => {
                held = Some((record, call));
                continue;
            }
            Some(a @ Action::DelayCall(d)) => {
                log(call, EventKind::Fired(a));
                tokio::time::sleep(d).await;
            }
            _ => {}
        }
        expect(call, ReplyPlan::for_action(action));
        if action == Some(Action::DuplicateCall) {
            expect(call, ReplyPlan::SwallowDuplicate);
        }
        shared.log.call_passed(conn, call, &record);
        if let Err(end) = send(&mut tx, &record).await {
            return end;
        }
        match action {
            Some(a @ Action::DuplicateCall) => {
                if let Err(end) = send(&mut tx, &record).await {
                    return end;
                }
                log(call, EventKind::Fired(a));
            }
            Some(a @ Action::CloseAfterForward) => {
                let _ = tx.flush().await;
                log(call, EventKind::Fired(a));
                return End::Fault;
            }
            _ => {}
        }
        if let Some((held_record, held_call)) = held.take() {
            expect(held_call, ReplyPlan::Forward);
            log(held_call, EventKind::Fired(Action::Reorder));
            if let Err(end) = send(&mut tx, &held_record).await {
                return end;
            }
        }
    }
}

/// Server to client: applies each reply's plan.
async fn carry_replies(
    mut rx: OwnedReadHalf,
    mut tx: OwnedWriteHalf,
    conn: u64,
    shared: Arc<Shared>,
    pending: Arc<Mutex<Pending>>,
) -> End {
    let mut asm = RecordAssembler::new(MAX_RECORD);
    let mut buf = BytesMut::new();
    let log = |call: CallId, kind| shared.log.record(Event { conn, call, kind, detail: Detail::None });
    loop {
        let record = match next_record(&mut rx, &mut asm, &mut buf).await {
            Ok(r) => r,
            Err(end) => return end,
        };
        let xid = reply_xid(&record);
        let answered = xid.and_then(|x| pending.lock().unwrap_or_else(|e| e.into_inner()).answer(x));
        match answered {
            None => log(CallId { xid: xid.unwrap_or(0), ..CallId::default() }, EventKind::UnmatchedReply),
            Some((call, ReplyPlan::Forward)) => shared.log.reply_passed(conn, call, &record),
            Some((call, ReplyPlan::Swallow(a))) => {
                log(call, EventKind::Fired(a));
                if a == Action::DropReplyClose {
                    return End::Fault;
                }
                continue;
            }
            Some((_, ReplyPlan::SwallowDuplicate)) => continue,
            Some((call, ReplyPlan::Delay(d))) => {
                log(call, EventKind::Fired(Action::DelayReply(d)));
                tokio::time::sleep(d).await;
                shared.log.reply_passed(conn, call, &record);
            }
        }
        if let Err(end) = send(&mut tx, &record).await {
            return end;
        }
    }
}
