//! TCP record marking and the RPC message headers (RFC 5531). The input is a byte stream: its
//! first byte picks how the stream is cut into reads. Properties: reassembly never panics and
//! gives the same records and the same error however the stream is cut; no record exceeds the
//! cap; each record's call header, reply header and AUTH_SYS body decode without panicking and
//! round trip; the credential check never panics.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rnfsd_fuzz::{round_trip, selector};
use xdr::rpc::{AuthSysParams, CallHeader, RecordAssembler, RecordError, ReplyHeader};
use xdr::{Reader, Xdr};

/// The cap on one record; small, so the fuzzer reaches it.
const MAX_RECORD: usize = 2048;

/// Feeds `stream` to an assembler in reads of `step` bytes (all at once when 0) and returns the
/// records, and the error that ended the stream if one did.
fn reassemble(stream: &[u8], step: usize) -> (Vec<Vec<u8>>, Option<RecordError>) {
    let mut assembler = RecordAssembler::new(MAX_RECORD);
    let mut buffer = BytesMut::new();
    let mut records = Vec::new();
    let step = if step == 0 { stream.len().max(1) } else { step };
    for chunk in stream.chunks(step) {
        buffer.extend_from_slice(chunk);
        if let Some(missing) = assembler.fragment_missing(&buffer) {
            assert!(missing <= 4 + MAX_RECORD, "fragment_missing {missing} is over the cap");
        }
        loop {
            match assembler.next_record(&mut buffer) {
                Ok(Some(record)) => {
                    assert!(record.len() <= MAX_RECORD, "a {}-byte record passed the cap", record.len());
                    records.push(record.to_vec());
                }
                Ok(None) => break,
                Err(e) => return (records, Some(e)),
            }
        }
    }
    (records, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((cut, stream)) = selector(data) else { return };
    let whole = reassemble(stream, 0);
    let pieces = reassemble(stream, usize::from(cut % 64));
    // The error's text preview shows the bytes at hand, which depend on the cut; compare sizes.
    let size =
        |e: &Option<RecordError>| e.as_ref().map(|RecordError::TooLarge { size, max, .. }| (*size, *max));
    assert_eq!(whole.0, pieces.0, "records differ when the stream is cut in {cut}-byte reads");
    assert_eq!(size(&whole.1), size(&pieces.1), "errors differ when the stream is cut");

    // A datagram is one record: the whole stream counts as a record too.
    for record in whole.0.iter().map(Vec::as_slice).chain([stream]) {
        round_trip::<ReplyHeader>(record);
        round_trip::<AuthSysParams>(record);
        let mut r = Reader::from_slice(record);
        if let Ok(h) = CallHeader::decode(&mut r) {
            round_trip::<CallHeader>(record);
            let _ = rnfsd::rpc::Cred::from_call(&h.cred, &h.verf);
            if let Ok(sys) = AuthSysParams::from_bytes(&h.cred.body) {
                assert_eq!(AuthSysParams::from_bytes(&sys.to_bytes()).as_ref(), Ok(&sys));
            }
        }
    }
});
