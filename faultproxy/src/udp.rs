//! The UDP forwarder: one upstream socket per client address, so the server sees each client as
//! a distinct source, and a task per upstream socket carrying replies back. Each datagram is one
//! call or one reply. Dropping "the connection" over UDP means forgetting the client's upstream
//! socket: its next datagram goes out from a new one, so the server sees a new source port, as it
//! would after a TCP reconnect.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Shared;
use crate::event::{CallId, Detail, Event, EventKind};
use crate::rule::Action;
use crate::wire::{Pending, ReplyPlan, call_id, reply_xid};

/// Largest datagram carried.
const MAX_DATAGRAM: usize = 65536;

/// One client address's way to the server.
struct Route {
    conn: u64,
    upstream: Arc<UdpSocket>,
    pending: Arc<Mutex<Pending>>,
    /// Carries replies from `upstream` back to the client; aborted when the route is forgotten.
    replies: JoinHandle<()>,
    /// A call held by a reorder rule, sent after the client's next call.
    held: Option<(Bytes, CallId)>,
}

type Routes = Arc<Mutex<HashMap<SocketAddr, Route>>>;

pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let routes: Routes = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = crate::stopped(&mut stop) => break,
        };
        let (n, client) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("udp receive failed: {e}");
                continue;
            }
        };
        let datagram = Bytes::copy_from_slice(&buf[..n]);
        if let Err(e) = on_datagram(datagram, client, upstream, &socket, &shared, &routes).await {
            tracing::warn!(%client, "cannot forward to the upstream {upstream}: {e}");
        }
    }
    for (_, route) in routes.lock().unwrap_or_else(|e| e.into_inner()).drain() {
        route.replies.abort();
    }
}

async fn on_datagram(
    datagram: Bytes,
    client: SocketAddr,
    upstream: SocketAddr,
    socket: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    routes: &Routes,
) -> std::io::Result<()> {
    let existing = routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&client)
        .map(|r| (r.conn, r.upstream.clone(), r.pending.clone()));
    let (conn, up, pending) = match existing {
        Some(r) => r,
        None => open_route(client, upstream, socket, shared, routes).await?,
    };
    let Some(call) = call_id(&datagram) else {
        up.send(&datagram).await?;
        return Ok(());
    };
    let log = |call: CallId, kind| shared.log.record(Event { conn, call, kind, detail: Detail::None });
    let expect = |call: CallId, plan| pending.lock().unwrap_or_else(|e| e.into_inner()).expect(call, plan);
    let mut action = shared.on_call(call.prog, call.proc_);
    let held = routes.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&client).and_then(|r| r.held.take());
    if action == Some(Action::Reorder) && held.is_some() {
        action = None;
    }
    match action {
        Some(Action::Reorder) => {
            if let Some(r) = routes.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&client) {
                r.held = Some((datagram, call));
            }
            return Ok(());
        }
        Some(a @ Action::DelayCall(d)) => {
            // Delayed on its own, so the client's other datagrams are not held up.
            log(call, EventKind::Fired(a));
            expect(call, ReplyPlan::Forward);
            let up = up.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let _ = up.send(&datagram).await;
            });
            return Ok(());
        }
        _ => {}
    }
    expect(call, ReplyPlan::for_action(action));
    if action == Some(Action::DuplicateCall) {
        expect(call, ReplyPlan::SwallowDuplicate);
    }
    shared.log.call_passed(conn, call, &datagram);
    up.send(&datagram).await?;
    match action {
        Some(a @ Action::DuplicateCall) => {
            up.send(&datagram).await?;
            log(call, EventKind::Fired(a));
        }
        Some(a @ Action::CloseAfterForward) => {
            forget(routes, client, conn);
            log(call, EventKind::Fired(a));
        }
        _ => {}
    }
    if let Some((held_datagram, held_call)) = held {
        expect(held_call, ReplyPlan::Forward);
        log(held_call, EventKind::Fired(Action::Reorder));
        up.send(&held_datagram).await?;
    }
    Ok(())
}

/// A new upstream socket for `client`, and the task carrying its replies back.
async fn open_route(
    client: SocketAddr,
    upstream: SocketAddr,
    socket: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    routes: &Routes,
) -> std::io::Result<(u64, Arc<UdpSocket>, Arc<Mutex<Pending>>)> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::LOCALHOST, 0).into(),
    };
    let up = Arc::new(UdpSocket::bind(local).await?);
    up.connect(upstream).await?;
    let conn = shared.new_conn();
    let pending = Arc::new(Mutex::new(Pending::default()));
    let replies = tokio::spawn(carry_replies(
        up.clone(),
        socket.clone(),
        client,
        conn,
        shared.clone(),
        pending.clone(),
        routes.clone(),
    ));
    let route = Route { conn, upstream: up.clone(), pending: pending.clone(), replies, held: None };
    if let Some(old) = routes.lock().unwrap_or_else(|e| e.into_inner()).insert(client, route) {
        old.replies.abort();
    }
    tracing::debug!(conn, %client, "new udp client");
    Ok((conn, up, pending))
}

/// Forgets `client`'s route if it is still route `conn`: its reply task ends and its socket
/// closes, so late replies to it are lost.
fn forget(routes: &Routes, client: SocketAddr, conn: u64) {
    let mut routes = routes.lock().unwrap_or_else(|e| e.into_inner());
    if routes.get(&client).is_some_and(|r| r.conn == conn) {
        let route = routes.remove(&client).expect("route present");
        route.replies.abort();
    }
}

async fn carry_replies(
    up: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    conn: u64,
    shared: Arc<Shared>,
    pending: Arc<Mutex<Pending>>,
    routes: Routes,
) {
    let log = |call: CallId, kind| shared.log.record(Event { conn, call, kind, detail: Detail::None });
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = match up.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP unreachable from a stopped server shows up here; keep listening.
            Err(_) => continue,
        };
        let reply = &buf[..n];
        let xid = reply_xid(reply);
        let answered = xid.and_then(|x| pending.lock().unwrap_or_else(|e| e.into_inner()).answer(x));
        match answered {
            None => log(CallId { xid: xid.unwrap_or(0), ..CallId::default() }, EventKind::UnmatchedReply),
            Some((call, ReplyPlan::Forward)) => shared.log.reply_passed(conn, call, reply),
            Some((call, ReplyPlan::Swallow(a))) => {
                log(call, EventKind::Fired(a));
                if a == Action::DropReplyClose {
                    // The route's own task is the one being forgotten: remove it without aborting
                    // (this function returns right away).
                    let mut routes = routes.lock().unwrap_or_else(|e| e.into_inner());
                    if routes.get(&client).is_some_and(|r| r.conn == conn) {
                        routes.remove(&client);
                    }
                    return;
                }
                continue;
            }
            Some((_, ReplyPlan::SwallowDuplicate)) => continue,
            Some((call, ReplyPlan::Delay(d))) => {
                log(call, EventKind::Fired(Action::DelayReply(d)));
                let socket = socket.clone();
                let reply = reply.to_vec();
                let shared = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    shared.log.reply_passed(conn, call, &reply);
                    let _ = socket.send_to(&reply, client).await;
                });
                continue;
            }
        }
        let _ = socket.send_to(reply, client).await;
    }
}
