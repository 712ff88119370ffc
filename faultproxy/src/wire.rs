//! The little the proxy reads of RPC traffic: a call's identity from its header, a reply's xid,
//! the arguments and results of NFSv3 WRITE and COMMIT (offsets, stability, write verifiers, for
//! the traffic log), record marking for what it writes, and the table of calls awaiting their
//! replies, which says what to do with each reply (forward, swallow, delay).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use xdr::nfs3::{COMMIT3args, COMMIT3res, Nfs3Result, WRITE3args, WRITE3res, procs};
use xdr::rpc::{AcceptedStatus, CallHeader, MSG_REPLY, ReplyBody, ReplyHeader, record_marker};
use xdr::{Reader, Xdr};

use crate::event::{CallId, Detail};
use crate::rule::{Action, NFS_PROGRAM};

/// The identity of a call record, or `None` when the record is not a decodable call.
pub fn call_id(record: &Bytes) -> Option<CallId> {
    let h = CallHeader::decode(&mut Reader::new(record.clone())).ok()?;
    Some(CallId { xid: h.xid, prog: h.prog, vers: h.vers, proc_: h.proc_ })
}

/// The xid of a reply record, or `None` when the record is not a reply.
pub fn reply_xid(record: &[u8]) -> Option<u32> {
    if record.len() < 8 {
        return None;
    }
    let mtype = u32::from_be_bytes([record[4], record[5], record[6], record[7]]);
    (mtype == MSG_REPLY).then(|| u32::from_be_bytes([record[0], record[1], record[2], record[3]]))
}

/// Whether the traffic log decodes this call's arguments and results: NFSv3 WRITE and COMMIT.
fn has_detail(call: &CallId) -> bool {
    call.prog == NFS_PROGRAM && call.vers == 3 && matches!(call.proc_, procs::WRITE | procs::COMMIT)
}

/// What the traffic log tells of a call besides its identity: the range and stability of an NFSv3
/// WRITE, the range of a COMMIT.
pub fn call_detail(record: &Bytes, call: &CallId) -> Detail {
    if !has_detail(call) {
        return Detail::None;
    }
    let mut r = Reader::new(record.clone());
    if CallHeader::decode(&mut r).is_err() {
        return Detail::None;
    }
    if call.proc_ == procs::WRITE {
        WRITE3args::decode(&mut r)
            .map(|a| Detail::Write { offset: a.offset, count: a.count, stable: a.stable as u32 })
            .unwrap_or(Detail::None)
    } else {
        COMMIT3args::decode(&mut r)
            .map(|a| Detail::Commit { offset: a.offset, count: a.count })
            .unwrap_or(Detail::None)
    }
}

/// What the traffic log tells of a reply to `call`: for NFSv3 WRITE and COMMIT, the stability
/// granted and the write verifier, or the error status.
pub fn reply_detail(record: &[u8], call: &CallId) -> Detail {
    if !has_detail(call) {
        return Detail::None;
    }
    // Replies to WRITE and COMMIT are small: copying one costs less than threading `Bytes` through.
    let mut r = Reader::new(Bytes::copy_from_slice(record));
    match ReplyHeader::decode(&mut r) {
        Ok(ReplyHeader { body: ReplyBody::Accepted { status: AcceptedStatus::Success, .. }, .. }) => {}
        _ => return Detail::None,
    }
    if call.proc_ == procs::WRITE {
        match WRITE3res::decode(&mut r) {
            Ok(Nfs3Result::Ok(ok)) => {
                Detail::WriteDone { count: ok.count, committed: ok.committed as u32, verf: ok.verf }
            }
            Ok(Nfs3Result::Err(status, _)) => Detail::Failed { status: status as u32 },
            Err(_) => Detail::None,
        }
    } else {
        match COMMIT3res::decode(&mut r) {
            Ok(Nfs3Result::Ok(ok)) => Detail::CommitDone { verf: ok.verf },
            Ok(Nfs3Result::Err(status, _)) => Detail::Failed { status: status as u32 },
            Err(_) => Detail::None,
        }
    }
}

/// A record as one last fragment, ready for a TCP stream (RFC 5531 §11).
pub fn frame(record: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + record.len());
    out.extend_from_slice(&record_marker(record.len(), true));
    out.extend_from_slice(record);
    out
}

/// What to do with the reply to one forwarded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyPlan {
    Forward,
    /// Swallow it; the action (drop-reply or drop-reply-close) is what the log reports.
    Swallow(Action),
    Delay(Duration),
    /// The second reply to a call the proxy sent twice (duplicate-call): swallowed silently.
    SwallowDuplicate,
}

impl ReplyPlan {
    /// The plan a rule's action sets for the reply; call-side actions forward it.
    pub fn for_action(action: Option<Action>) -> ReplyPlan {
        match action {
            Some(a @ (Action::DropReply | Action::DropReplyClose)) => ReplyPlan::Swallow(a),
            Some(Action::DelayReply(d)) => ReplyPlan::Delay(d),
            _ => ReplyPlan::Forward,
        }
    }
}

/// Calls forwarded and not yet answered, by xid. One xid can be outstanding more than once (a
/// client retransmitting on the same connection, a duplicated call); its replies are matched
/// first-in, first-out, as they are indistinguishable.
#[derive(Debug, Default)]
pub struct Pending {
    by_xid: HashMap<u32, VecDeque<(CallId, ReplyPlan)>>,
}

impl Pending {
    pub fn expect(&mut self, call: CallId, plan: ReplyPlan) {
        self.by_xid.entry(call.xid).or_default().push_back((call, plan));
    }

    /// The call a reply with `xid` answers and the plan for it; `None` for a reply to no known
    /// call.
    pub fn answer(&mut self, xid: u32) -> Option<(CallId, ReplyPlan)> {
        let queue = self.by_xid.get_mut(&xid)?;
        let found = queue.pop_front();
        if queue.is_empty() {
            self.by_xid.remove(&xid);
        }
        found
    }

    /// Calls still awaiting a reply.
    pub fn len(&self) -> usize {
        self.by_xid.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_xid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xdr::rpc::{AcceptedStatus, OpaqueAuth, RecordAssembler, ReplyHeader};

    fn call_record(xid: u32, prog: u32, proc_: u32) -> Bytes {
        let h = CallHeader {
            xid,
            rpcvers: 2,
            prog,
            vers: 3,
            proc_,
            cred: OpaqueAuth::none(),
            verf: OpaqueAuth::none(),
        };
        let mut b = BytesMut::new();
        h.encode(&mut b);
        b.extend_from_slice(b"args");
        b.freeze()
    }

    #[test]
    fn reads_call_identity_and_reply_xid() {
        let call = call_record(0xdead_beef, 100003, 12);
        assert_eq!(call_id(&call), Some(CallId { xid: 0xdead_beef, prog: 100003, vers: 3, proc_: 12 }));
        assert_eq!(reply_xid(&call), None, "a call is not a reply");
        let mut reply = BytesMut::new();
        ReplyHeader::accepted(0xdead_beef, AcceptedStatus::Success).encode(&mut reply);
        assert_eq!(reply_xid(&reply), Some(0xdead_beef));
        assert_eq!(call_id(&reply.freeze()), None, "a reply is not a call");
        assert_eq!(call_id(&Bytes::from_static(b"\0\0\0\x01\0\0")), None, "truncated");
        assert_eq!(reply_xid(b"\0\0\0\x01"), None);
    }

    #[test]
    fn framed_records_reassemble_across_arbitrary_splits() {
        let records = [call_record(1, 100003, 0), call_record(2, 100003, 7), Bytes::from(vec![9u8; 5000])];
        let mut stream = Vec::new();
        for r in &records {
            stream.extend_from_slice(&frame(r));
        }
        for chunk in [1, 3, 7, 4096] {
            let mut asm = RecordAssembler::new(1 << 20);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(r) = asm.next_record(&mut buf).unwrap() {
                    got.push(r);
                }
            }
            assert_eq!(got, records, "chunk size {chunk}");
        }
    }

    #[test]
    fn replies_match_calls_by_xid_first_in_first_out() {
        let mut p = Pending::default();
        let a = CallId { xid: 5, prog: 100003, vers: 3, proc_: 12 };
        let b = CallId { xid: 6, prog: 100003, vers: 3, proc_: 13 };
        p.expect(a, ReplyPlan::Swallow(Action::DropReplyClose));
        p.expect(b, ReplyPlan::Forward);
        p.expect(a, ReplyPlan::SwallowDuplicate);
        assert_eq!(p.len(), 3);
        assert_eq!(p.answer(6), Some((b, ReplyPlan::Forward)));
        assert_eq!(p.answer(5), Some((a, ReplyPlan::Swallow(Action::DropReplyClose))));
        assert_eq!(p.answer(5), Some((a, ReplyPlan::SwallowDuplicate)));
        assert_eq!(p.answer(5), None);
        assert!(p.is_empty());
    }

    #[test]
    fn reply_plans_follow_the_action() {
        assert_eq!(ReplyPlan::for_action(None), ReplyPlan::Forward);
        assert_eq!(ReplyPlan::for_action(Some(Action::DropReply)), ReplyPlan::Swallow(Action::DropReply));
        let d = Duration::from_millis(3);
        assert_eq!(ReplyPlan::for_action(Some(Action::DelayReply(d))), ReplyPlan::Delay(d));
        assert_eq!(ReplyPlan::for_action(Some(Action::DelayCall(d))), ReplyPlan::Forward);
        assert_eq!(ReplyPlan::for_action(Some(Action::Reorder)), ReplyPlan::Forward);
    }
}
