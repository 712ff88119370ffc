//! The event log: one [`Event`] per fault that took effect and, when traffic logging is on, per
//! call and reply that passed. Events are kept in memory (so a test can assert what actually
//! happened) and written as lines (`conn=2 xid=0x5e1a0c07 prog=100003 proc=REMOVE
//! action=drop-reply-close`) to an optional sink, such as stderr or a file.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::rule::{Action, proc_name};

/// The identity of one call, as read from its header (RFC 5531 §9 `call_body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallId {
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc_: u32,
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xid={:#010x} prog={} proc=", self.xid, self.prog)?;
        match proc_name(self.prog, self.proc_) {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.proc_),
        }
    }
}

/// What the traffic log adds to a call or reply line for the procedures whose effect on data a
/// test may want to follow: NFSv3 WRITE and COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    #[default]
    None,
    /// A WRITE call: its range and the stability asked for (`stable_how`).
    Write { offset: u64, count: u32, stable: u32 },
    /// A COMMIT call: its range (`count` 0 means to the end of the file).
    Commit { offset: u64, count: u32 },
    /// A successful WRITE reply: bytes written, the stability granted and the write verifier.
    WriteDone { count: u32, committed: u32, verf: [u8; 8] },
    /// A successful COMMIT reply: the write verifier.
    CommitDone { verf: [u8; 8] },
    /// A WRITE or COMMIT reply with an error status (`nfsstat3`).
    Failed { status: u32 },
}

fn stable_name(stable: u32) -> &'static str {
    match stable {
        0 => "UNSTABLE",
        1 => "DATA_SYNC",
        2 => "FILE_SYNC",
        _ => "?",
    }
}

fn write_verf(f: &mut fmt::Formatter<'_>, verf: &[u8; 8]) -> fmt::Result {
    f.write_str(" verf=")?;
    verf.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Detail::None => Ok(()),
            Detail::Write { offset, count, stable } => {
                write!(f, " offset={offset} count={count} stable={}", stable_name(stable))
            }
            Detail::Commit { offset, count } => write!(f, " offset={offset} count={count}"),
            Detail::WriteDone { count, committed, verf } => {
                write!(f, " count={count} committed={}", stable_name(committed))?;
                write_verf(f, &verf)
            }
            Detail::CommitDone { verf } => write_verf(f, &verf),
            Detail::Failed { status } => write!(f, " status={status}"),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A call was forwarded upstream (traffic logging only).
    Call,
    /// A reply was forwarded to the client (traffic logging only).
    Reply,
    /// A reply came back for an xid the proxy never saw a call for; it was forwarded.
    UnmatchedReply,
    /// A rule's fault took effect on this call or its reply.
    Fired(Action),
}

/// One line of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The client connection (TCP) or client address (UDP) it happened on, numbered from 1 in
    /// order of arrival.
    pub conn: u64,
    pub call: CallId,
    pub kind: EventKind,
    /// For traffic lines of WRITE and COMMIT: their arguments or results.
    pub detail: Detail,
}

impl Event {
    /// The fault this event records, if it is one.
    pub fn fired(&self) -> Option<Action> {
        match self.kind {
            EventKind::Fired(a) => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn={} {}", self.conn, self.call)?;
        match self.kind {
            EventKind::Call => write!(f, " call{}", self.detail),
            EventKind::Reply => write!(f, " reply{}", self.detail),
            EventKind::UnmatchedReply => f.write_str(" reply-without-call"),
            EventKind::Fired(a) => write!(f, " action={}", a.name()),
        }
    }
}

/// Where event lines are written besides memory.
pub type Sink = Box<dyn Write + Send>;

struct Inner {
    events: Mutex<Vec<Event>>,
    sink: Option<Mutex<Sink>>,
    traffic: bool,
}

/// A shared, cheaply cloned event log.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl EventLog {
    /// A log writing each event's line to `sink`, if any. With `traffic`, plain calls and replies
    /// are logged too, not only faults.
    pub fn new(sink: Option<Sink>, traffic: bool) -> EventLog {
        EventLog { inner: Arc::new(Inner { events: Mutex::default(), sink: sink.map(Mutex::new), traffic }) }
    }

    pub fn record(&self, event: Event) {
        if matches!(event.kind, EventKind::Call | EventKind::Reply) && !self.inner.traffic {
            return;
        }
        if let Some(sink) = &self.inner.sink {
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            // A log that cannot be written must not stop the traffic it describes.
            let _ = writeln!(sink, "{event}");
            let _ = sink.flush();
        }
        self.inner.events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }

    /// Records a call forwarded upstream, with its WRITE or COMMIT arguments when traffic is
    /// logged.
    pub fn call_passed(&self, conn: u64, call: CallId, record: &bytes::Bytes) {
        self.passed(conn, call, EventKind::Call, || crate::wire::call_detail(record, &call));
    }

    /// Records a reply forwarded to the client, with its WRITE or COMMIT results when traffic is
    /// logged.
    pub fn reply_passed(&self, conn: u64, call: CallId, record: &[u8]) {
        self.passed(conn, call, EventKind::Reply, || crate::wire::reply_detail(record, &call));
    }

    /// Records forwarded traffic when traffic is logged; `detail` is decoded only then.
    fn passed(&self, conn: u64, call: CallId, kind: EventKind, detail: impl FnOnce() -> Detail) {
        if self.inner.traffic {
            self.record(Event { conn, call, kind, detail: detail() });
        }
    }

    /// Every event so far, oldest first.
    pub fn snapshot(&self) -> Vec<Event> {
        self.inner.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_name_the_procedure_and_the_action() {
        let out = Shared::default();
        let log = EventLog::new(Some(Box::new(out.clone())), false);
        let call = CallId { xid: 0x5e1a0c07, prog: 100003, vers: 3, proc_: 12 };
        log.record(Event { conn: 2, call, kind: EventKind::Call, detail: Detail::None });
        log.record(Event {
            conn: 2,
            call,
            kind: EventKind::Fired(Action::DropReplyClose),
            detail: Detail::None,
        });
        let mount = CallId { xid: 1, prog: 100005, vers: 3, proc_: 1 };
        log.record(Event {
            conn: 3,
            call: mount,
            kind: EventKind::Fired(Action::DropReply),
            detail: Detail::None,
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "conn=2 xid=0x5e1a0c07 prog=100003 proc=REMOVE action=drop-reply-close\n\
             conn=3 xid=0x00000001 prog=100005 proc=1 action=drop-reply\n"
        );
        // Without traffic logging the plain call was not kept.
        assert_eq!(log.snapshot().len(), 2);
        assert_eq!(log.snapshot()[0].fired(), Some(Action::DropReplyClose));
    }

    #[test]
    fn traffic_logging_keeps_calls_and_replies() {
        let log = EventLog::new(None, true);
        let call = CallId { xid: 9, prog: 100003, vers: 3, proc_: 0 };
        log.record(Event { conn: 1, call, kind: EventKind::Call, detail: Detail::None });
        log.record(Event { conn: 1, call, kind: EventKind::Reply, detail: Detail::None });
        let kinds: Vec<_> = log.snapshot().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Call, EventKind::Reply]);
        assert_eq!(log.snapshot()[1].to_string(), "conn=1 xid=0x00000009 prog=100003 proc=NULL reply");
    }
}
