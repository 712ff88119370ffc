//! Shared checks of the fuzz targets: the codec properties every decoder must have, and the
//! in-process server the `server` target feeds records to ([`server`]).

use std::fmt::Debug;

use xdr::{Reader, Xdr};

pub mod server;

/// The properties of one XDR decoder on arbitrary input: decoding never panics (the fuzzer
/// catches that), and whatever decodes re-encodes to exactly as many bytes as it consumed
/// (`encoded_len` agrees) and decodes again to an equal value.
pub fn round_trip<T: Xdr + PartialEq + Debug>(data: &[u8]) {
    let mut r = Reader::from_slice(data);
    let Ok(value) = T::decode(&mut r) else { return };
    let encoded = value.to_bytes();
    assert_eq!(encoded.len(), value.encoded_len(), "encoded_len disagrees with encode for {value:?}");
    assert_eq!(encoded.len(), r.position(), "re-encoding {value:?} is not as long as its input");
    let again = T::from_bytes(&encoded).unwrap_or_else(|e| panic!("re-decoding {value:?} failed: {e}"));
    assert_eq!(again, value, "decode(encode(v)) != v");
}

/// Splits the selector byte a multi-decoder target starts with from the bytes to decode.
pub fn selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}
