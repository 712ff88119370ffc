//! ONC RPC version 2 messages (RFC 5531): call and reply headers with every accept and reject
//! variant, the AUTH_NONE and AUTH_SYS credential bodies, and TCP record marking (RFC 5531 §11)
//! as a sans-IO record assembler.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{Reader, Result, Xdr, XdrError, XdrWrite, opaque_len};

/// RPC protocol version this crate speaks (RFC 5531 §9, `rpcvers`).
pub const RPC_VERSION: u32 = 2;
/// Maximum size of an `opaque_auth` body (RFC 5531 §8.2).
pub const MAX_AUTH_BYTES: usize = 400;
/// Maximum length of the AUTH_SYS machine name (RFC 5531 appendix A).
pub const MAX_MACHINE_NAME: usize = 255;
/// Maximum number of supplementary groups in AUTH_SYS (RFC 5531 appendix A).
pub const MAX_AUTH_GIDS: usize = 16;

/// `msg_type` (RFC 5531 §9).
pub const MSG_CALL: u32 = 0;
/// `msg_type` of a reply (RFC 5531 §9).
pub const MSG_REPLY: u32 = 1;

crate::xdr_enum! {
    /// `auth_flavor` (RFC 5531 §8.2 and the IANA registry).
    pub enum AuthFlavor {
        /// AUTH_NONE: no credential.
        None = 0,
        /// AUTH_SYS: uid, gid and groups as the client states them (RFC 5531 appendix A).
        Sys = 1,
        /// AUTH_SHORT: a shorthand the server handed out for an earlier credential.
        Short = 2,
        /// AUTH_DH: Diffie-Hellman authentication (RFC 2695).
        Dh = 3,
        /// RPCSEC_GSS (RFC 2203).
        RpcsecGss = 6,
    }
}

crate::xdr_enum! {
    /// `auth_stat` (RFC 5531 §9): why the server rejected the credentials.
    pub enum AuthStat {
        /// AUTH_OK: success.
        Ok = 0,
        /// AUTH_BADCRED: a malformed credential or one of an unsupported flavor.
        BadCred = 1,
        /// AUTH_REJECTEDCRED: the client must begin a new session.
        RejectedCred = 2,
        /// AUTH_BADVERF: a malformed verifier.
        BadVerf = 3,
        /// AUTH_REJECTEDVERF: the verifier expired or was replayed.
        RejectedVerf = 4,
        /// AUTH_TOOWEAK: refused for security reasons.
        TooWeak = 5,
        /// AUTH_INVALIDRESP: a bogus response verifier.
        InvalidResp = 6,
        /// AUTH_FAILED: some unknown reason.
        Failed = 7,
    }
}

/// `opaque_auth` (RFC 5531 §8.2): a flavor and up to 400 bytes of body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaqueAuth {
    /// The [`AuthFlavor`] number (kept raw: unknown flavors must be answered, not undecodable).
    pub flavor: u32,
    /// The flavor's body, opaque at this layer.
    pub body: Bytes,
}

impl OpaqueAuth {
    /// The AUTH_NONE credential or verifier.
    pub fn none() -> Self {
        OpaqueAuth { flavor: AuthFlavor::None as u32, body: Bytes::new() }
    }
}

impl Xdr for OpaqueAuth {
    fn decode(r: &mut Reader) -> Result<Self> {
        let flavor = r.u32()?;
        let body = r.opaque("opaque_auth", MAX_AUTH_BYTES)?;
        Ok(OpaqueAuth { flavor, body })
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_u32(self.flavor);
        w.put_opaque(&self.body);
    }
    fn encoded_len(&self) -> usize {
        4 + opaque_len(self.body.len())
    }
}

/// `authsys_parms` (RFC 5531 appendix A), the body of an AUTH_SYS credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSysParams {
    /// An arbitrary id the client's machine generates.
    pub stamp: u32,
    /// The client's host name, as it states it.
    pub machine_name: Bytes,
    /// The caller's effective user id.
    pub uid: u32,
    /// The caller's effective group id.
    pub gid: u32,
    /// The caller's supplementary groups (at most [`MAX_AUTH_GIDS`]).
    pub gids: Vec<u32>,
}

impl Xdr for AuthSysParams {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(AuthSysParams {
            stamp: r.u32()?,
            machine_name: r.opaque("machinename", MAX_MACHINE_NAME)?,
            uid: r.u32()?,
            gid: r.u32()?,
            gids: r.array("gids", MAX_AUTH_GIDS, 4, Reader::u32)?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_u32(self.stamp);
        w.put_opaque(&self.machine_name);
        w.put_u32(self.uid);
        w.put_u32(self.gid);
        w.put_u32(self.gids.len() as u32);
        for g in &self.gids {
            w.put_u32(*g);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + opaque_len(self.machine_name.len()) + 8 + 4 + 4 * self.gids.len()
    }
}

impl AuthSysParams {
    /// Wraps these parameters as an AUTH_SYS `opaque_auth`.
    pub fn to_opaque_auth(&self) -> OpaqueAuth {
        OpaqueAuth { flavor: AuthFlavor::Sys as u32, body: self.to_bytes() }
    }
}

/// A call header (`rpc_msg` with `call_body`, RFC 5531 §9). The procedure's arguments follow it in
/// the same record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallHeader {
    /// The transaction id, which the reply repeats.
    pub xid: u32,
    /// The RPC protocol version; [`RPC_VERSION`] is the only one.
    pub rpcvers: u32,
    /// The program number.
    pub prog: u32,
    /// The program version.
    pub vers: u32,
    /// The procedure number (`proc` in the RFC).
    pub proc_: u32,
    /// The caller's credential.
    pub cred: OpaqueAuth,
    /// The verifier of the credential.
    pub verf: OpaqueAuth,
}

impl Xdr for CallHeader {
    /// Decodes `xid`, `msg_type` (which must be CALL) and the call body. The RPC version is
    /// returned as sent: answering RPC_MISMATCH is the server's decision, not the codec's.
    fn decode(r: &mut Reader) -> Result<Self> {
        let xid = r.u32()?;
        let mtype = r.u32()?;
        if mtype != MSG_CALL {
            return Err(XdrError::BadDiscriminant { ty: "msg_type (expected CALL)", value: mtype });
        }
        Ok(CallHeader {
            xid,
            rpcvers: r.u32()?,
            prog: r.u32()?,
            vers: r.u32()?,
            proc_: r.u32()?,
            cred: OpaqueAuth::decode(r)?,
            verf: OpaqueAuth::decode(r)?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_u32(self.xid);
        w.put_u32(MSG_CALL);
        w.put_u32(self.rpcvers);
        w.put_u32(self.prog);
        w.put_u32(self.vers);
        w.put_u32(self.proc_);
        self.cred.encode(w);
        self.verf.encode(w);
    }
    fn encoded_len(&self) -> usize {
        24 + self.cred.encoded_len() + self.verf.encoded_len()
    }
}

/// The status of an accepted reply (`accept_stat` and its union arms, RFC 5531 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedStatus {
    /// SUCCESS: the procedure's results follow the header.
    Success,
    /// PROG_UNAVAIL: the program is not served here.
    ProgUnavail,
    /// PROG_MISMATCH: the version is not served; these are.
    ProgMismatch {
        /// The lowest version served.
        low: u32,
        /// The highest version served.
        high: u32,
    },
    /// PROC_UNAVAIL: the program has no such procedure.
    ProcUnavail,
    /// GARBAGE_ARGS: the arguments could not be decoded.
    GarbageArgs,
    /// SYSTEM_ERR: the server failed (out of memory, a panic, ...).
    SystemErr,
}

/// A rejected reply (`rejected_reply`, RFC 5531 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedReply {
    /// RPC_MISMATCH: the RPC version is not supported; these are.
    RpcMismatch {
        /// The lowest RPC version supported.
        low: u32,
        /// The highest RPC version supported.
        high: u32,
    },
    /// AUTH_ERROR: the credential was refused, for this reason.
    AuthError(AuthStat),
}

/// The body of a reply message (`reply_body`, RFC 5531 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// MSG_ACCEPTED: the credential passed; the status says what became of the call.
    Accepted {
        /// The server's verifier.
        verf: OpaqueAuth,
        /// The outcome.
        status: AcceptedStatus,
    },
    /// MSG_DENIED: the call was not executed.
    Denied(RejectedReply),
}

/// A reply header (`rpc_msg` with `reply_body`). For `Accepted { status: Success }` the results
/// follow in the same record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The transaction id of the call answered.
    pub xid: u32,
    /// Accepted or denied, and why.
    pub body: ReplyBody,
}

impl ReplyHeader {
    /// An accepted reply with an AUTH_NONE verifier.
    pub fn accepted(xid: u32, status: AcceptedStatus) -> Self {
        ReplyHeader { xid, body: ReplyBody::Accepted { verf: OpaqueAuth::none(), status } }
    }

    /// A denied reply.
    pub fn denied(xid: u32, rejected: RejectedReply) -> Self {
        ReplyHeader { xid, body: ReplyBody::Denied(rejected) }
    }
}

impl Xdr for ReplyHeader {
    fn decode(r: &mut Reader) -> Result<Self> {
        let xid = r.u32()?;
        let mtype = r.u32()?;
        if mtype != MSG_REPLY {
            return Err(XdrError::BadDiscriminant { ty: "msg_type (expected REPLY)", value: mtype });
        }
        let body = match r.u32()? {
            0 => {
                let verf = OpaqueAuth::decode(r)?;
                let status = match r.u32()? {
                    0 => AcceptedStatus::Success,
                    1 => AcceptedStatus::ProgUnavail,
                    2 => AcceptedStatus::ProgMismatch { low: r.u32()?, high: r.u32()? },
                    3 => AcceptedStatus::ProcUnavail,
                    4 => AcceptedStatus::GarbageArgs,
                    5 => AcceptedStatus::SystemErr,
                    v => return Err(XdrError::BadDiscriminant { ty: "accept_stat", value: v }),
                };
                ReplyBody::Accepted { verf, status }
            }
            1 => ReplyBody::Denied(match r.u32()? {
                0 => RejectedReply::RpcMismatch { low: r.u32()?, high: r.u32()? },
                1 => RejectedReply::AuthError(AuthStat::decode(r)?),
                v => return Err(XdrError::BadDiscriminant { ty: "reject_stat", value: v }),
            }),
            v => return Err(XdrError::BadDiscriminant { ty: "reply_stat", value: v }),
        };
        Ok(ReplyHeader { xid, body })
    }

    fn encode(&self, w: &mut BytesMut) {
        w.put_u32(self.xid);
        w.put_u32(MSG_REPLY);
        match &self.body {
            ReplyBody::Accepted { verf, status } => {
                w.put_u32(0);
                verf.encode(w);
                match *status {
                    AcceptedStatus::Success => w.put_u32(0),
                    AcceptedStatus::ProgUnavail => w.put_u32(1),
                    AcceptedStatus::ProgMismatch { low, high } => {
                        w.put_u32(2);
                        w.put_u32(low);
                        w.put_u32(high);
                    }
                    AcceptedStatus::ProcUnavail => w.put_u32(3),
                    AcceptedStatus::GarbageArgs => w.put_u32(4),
                    AcceptedStatus::SystemErr => w.put_u32(5),
                }
            }
            ReplyBody::Denied(rej) => {
                w.put_u32(1);
                match *rej {
                    RejectedReply::RpcMismatch { low, high } => {
                        w.put_u32(0);
                        w.put_u32(low);
                        w.put_u32(high);
                    }
                    RejectedReply::AuthError(stat) => {
                        w.put_u32(1);
                        stat.encode(w);
                    }
                }
            }
        }
    }

    fn encoded_len(&self) -> usize {
        12 + match &self.body {
            ReplyBody::Accepted { verf, status } => {
                verf.encoded_len()
                    + match status {
                        AcceptedStatus::ProgMismatch { .. } => 12,
                        _ => 4,
                    }
            }
            ReplyBody::Denied(RejectedReply::RpcMismatch { .. }) => 12,
            ReplyBody::Denied(RejectedReply::AuthError(_)) => 8,
        }
    }
}

/// The last-fragment bit of a record marker (RFC 5531 §11).
pub const LAST_FRAGMENT: u32 = 0x8000_0000;

/// Builds the 4-byte record marker for a fragment of `len` bytes.
pub fn record_marker(len: usize, last: bool) -> [u8; 4] {
    let v = (len as u32 & !LAST_FRAGMENT) | if last { LAST_FRAGMENT } else { 0 };
    v.to_be_bytes()
}

/// Why a TCP record stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The fragments of one record add up to more than the connection allows.
    #[error("record of at least {size} bytes exceeds the {max}-byte limit{preview}")]
    TooLarge {
        /// Bytes of the record seen so far.
        size: usize,
        /// The limit.
        max: usize,
        /// A description of the record's start, for the log (empty if nothing could be read).
        preview: String,
    },
}

/// Reassembles record-marked fragments from a TCP byte stream (RFC 5531 §11). Sans-IO: the caller
/// appends received bytes to a buffer and asks for complete records. The *cumulative* record size is
/// capped: a peer cannot make the server buffer more than `max_record` bytes for one record, and
/// nothing is reserved on the strength of a fragment header alone.
#[derive(Debug)]
pub struct RecordAssembler {
    max_record: usize,
    /// Fragments of the record being assembled, before its last fragment arrived.
    partial: BytesMut,
}

impl RecordAssembler {
    /// An assembler that refuses records larger than `max_record` bytes.
    pub fn new(max_record: usize) -> Self {
        RecordAssembler { max_record, partial: BytesMut::new() }
    }

    /// Bytes of earlier fragments of the record being assembled, held here until its last
    /// fragment arrives.
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// How many more bytes complete the fragment whose marker starts `src`, if a marker is there
    /// and the fragment is within the cap. A reader may use it to size its next read; it is only a
    /// claim of the peer's.
    pub fn fragment_missing(&self, src: &[u8]) -> Option<usize> {
        let marker = u32::from_be_bytes(src.get(..4)?.try_into().ok()?);
        let len = (marker & !LAST_FRAGMENT) as usize;
        if self.partial.len() + len > self.max_record {
            return None;
        }
        Some((4 + len).saturating_sub(src.len()))
    }

    /// Takes the next complete record out of `src`, if one is there. Consumes complete fragments
    /// only; an incomplete fragment stays in `src` until more bytes arrive.
    pub fn next_record(&mut self, src: &mut BytesMut) -> std::result::Result<Option<Bytes>, RecordError> {
        loop {
            if src.len() < 4 {
                return Ok(None);
            }
            let marker = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
            let len = (marker & !LAST_FRAGMENT) as usize;
            let last = marker & LAST_FRAGMENT != 0;
            let total = self.partial.len() + len;
            if total > self.max_record {
                return Err(RecordError::TooLarge {
                    size: total,
                    max: self.max_record,
                    preview: text_preview(&src[..src.len().min(16)]),
                });
            }
            if src.len() < 4 + len {
                return Ok(None);
            }
            src.advance(4);
            let frag = src.split_to(len);
            if last {
                if self.partial.is_empty() {
                    return Ok(Some(frag.freeze()));
                }
                self.partial.unsplit(frag);
                return Ok(Some(std::mem::take(&mut self.partial).freeze()));
            }
            self.partial.unsplit(frag);
        }
    }
}

/// When a "record marker" is printable text (someone spoke HTTP or typed at the port), say so in
/// the log line that explains the closed connection.
fn text_preview(b: &[u8]) -> String {
    if b.len() >= 4 && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ' || *c == b'\r' || *c == b'\n') {
        format!(" (looks like text: {:?})", String::from_utf8_lossy(b))
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A NULL call to NFS v3 with AUTH_NONE, byte by byte (RFC 5531 §9 layout).
    const NULL_CALL: [u8; 40] = [
        0x12, 0x34, 0x56, 0x78, // xid
        0, 0, 0, 0, // CALL
        0, 0, 0, 2, // rpcvers
        0, 1, 0x86, 0xa3, // prog 100003
        0, 0, 0, 3, // vers
        0, 0, 0, 0, // proc NULL
        0, 0, 0, 0, 0, 0, 0, 0, // cred AUTH_NONE, len 0
        0, 0, 0, 0, 0, 0, 0, 0, // verf AUTH_NONE, len 0
    ];

    #[test]
    fn call_header_golden() {
        let h = CallHeader::from_bytes(&NULL_CALL).unwrap();
        assert_eq!(h.xid, 0x1234_5678);
        assert_eq!((h.rpcvers, h.prog, h.vers, h.proc_), (2, 100003, 3, 0));
        assert_eq!(h.to_bytes()[..], NULL_CALL[..]);
    }

    #[test]
    fn reply_golden_prog_mismatch() {
        let r = ReplyHeader::accepted(7, AcceptedStatus::ProgMismatch { low: 3, high: 3 });
        let b = r.to_bytes();
        assert_eq!(
            &b[..],
            &[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3]
        );
        assert_eq!(b.len(), r.encoded_len());
        assert_eq!(ReplyHeader::from_bytes(&b).unwrap(), r);
    }

    #[test]
    fn reply_golden_auth_error() {
        let r = ReplyHeader::denied(9, RejectedReply::AuthError(AuthStat::TooWeak));
        assert_eq!(&r.to_bytes()[..], &[0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5]);
    }

    #[test]
    fn auth_sys_golden() {
        let p = AuthSysParams {
            stamp: 1,
            machine_name: Bytes::from_static(b"host"),
            uid: 1000,
            gid: 100,
            gids: vec![4, 24],
        };
        let b = p.to_bytes();
        assert_eq!(
            &b[..],
            &[
                0, 0, 0, 1, 0, 0, 0, 4, b'h', b'o', b's', b't', 0, 0, 0x03, 0xe8, 0, 0, 0, 100, 0, 0, 0, 2,
                0, 0, 0, 4, 0, 0, 0, 24
            ]
        );
        assert_eq!(AuthSysParams::from_bytes(&b).unwrap(), p);
    }

    #[test]
    fn auth_sys_too_many_gids() {
        let mut w = BytesMut::new();
        w.put_u32(0);
        w.put_opaque(b"");
        w.put_u32(0);
        w.put_u32(0);
        w.put_u32(17);
        w.put_bytes(0, 17 * 4);
        assert!(matches!(AuthSysParams::from_bytes(&w), Err(XdrError::TooLong { .. })));
    }

    #[test]
    fn records_multi_fragment_and_cap() {
        let mut a = RecordAssembler::new(10);
        let mut src = BytesMut::new();
        src.extend_from_slice(&record_marker(3, false));
        src.extend_from_slice(b"abc");
        assert_eq!(a.next_record(&mut src).unwrap(), None);
        src.extend_from_slice(&record_marker(2, true));
        src.extend_from_slice(b"d");
        assert_eq!(a.next_record(&mut src).unwrap(), None);
        src.extend_from_slice(b"e");
        assert_eq!(a.next_record(&mut src).unwrap().as_deref(), Some(&b"abcde"[..]));
        assert!(src.is_empty());
        // Two fragments that are each under the cap but together over it.
        src.extend_from_slice(&record_marker(6, false));
        src.extend_from_slice(b"123456");
        src.extend_from_slice(&record_marker(6, true));
        assert!(matches!(a.next_record(&mut src), Err(RecordError::TooLarge { size: 12, max: 10, .. })));
    }

    #[test]
    fn record_marker_that_is_text_is_previewed() {
        let mut a = RecordAssembler::new(1 << 20);
        let mut src = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        match a.next_record(&mut src) {
            Err(RecordError::TooLarge { preview, .. }) => assert!(preview.contains("GET")),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn call_header_round_trip(xid in any::<u32>(), prog in any::<u32>(), vers in any::<u32>(), p in any::<u32>(),
                                  uid in any::<u32>(), gids in proptest::collection::vec(any::<u32>(), 0..=16),
                                  name in proptest::collection::vec(any::<u8>(), 0..=255)) {
            let cred = AuthSysParams { stamp: 0, machine_name: Bytes::from(name), uid, gid: 1, gids }.to_opaque_auth();
            let h = CallHeader { xid, rpcvers: 2, prog, vers, proc_: p, cred, verf: OpaqueAuth::none() };
            let b = h.to_bytes();
            prop_assert_eq!(b.len(), h.encoded_len());
            prop_assert_eq!(CallHeader::from_bytes(&b).unwrap(), h);
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = CallHeader::from_bytes(&data);
            let _ = ReplyHeader::from_bytes(&data);
            let _ = AuthSysParams::from_bytes(&data);
            let mut a = RecordAssembler::new(1024);
            let mut src = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = a.next_record(&mut src) {}
        }

        #[test]
        fn fragments_reassemble(data in proptest::collection::vec(any::<u8>(), 0..500), cut in 1usize..50) {
            let mut src = BytesMut::new();
            let chunks: Vec<&[u8]> = data.chunks(cut).collect();
            if chunks.is_empty() {
                src.extend_from_slice(&record_marker(0, true));
            }
            for (i, c) in chunks.iter().enumerate() {
                src.extend_from_slice(&record_marker(c.len(), i + 1 == chunks.len()));
                src.extend_from_slice(c);
            }
            let mut a = RecordAssembler::new(1000);
            prop_assert_eq!(a.next_record(&mut src).unwrap().unwrap().to_vec(), data);
        }
    }
}
