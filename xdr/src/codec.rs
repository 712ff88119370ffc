//! The XDR primitives (RFC 4506): a bounded reader over one received record, the `Xdr` trait every
//! wire type implements, encoding helpers over `BytesMut`, and the macros that derive codecs for
//! plain structs and enums.
//!
//! Every length read from the wire is checked against the bytes that remain (and against the
//! field's protocol maximum) before anything is allocated, so a four-byte length can never make the
//! decoder reserve more memory than the input itself justifies.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a decode failed. One variant per cause, so callers and tests can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    /// The input ended before the item did.
    #[error("truncated: needed {needed} bytes, {remaining} remain")]
    Truncated {
        /// Bytes the item needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A variable-length field declared more than its protocol maximum.
    #[error("{field}: length {len} exceeds maximum {max}")]
    TooLong {
        /// The field's type or name.
        field: &'static str,
        /// The length it declared.
        len: usize,
        /// The protocol maximum.
        max: usize,
    },
    /// An enum or union discriminant that the type does not define.
    #[error("{ty}: invalid discriminant {value}")]
    BadDiscriminant {
        /// The type being decoded.
        ty: &'static str,
        /// The value found.
        value: u32,
    },
    /// A boolean that was neither 0 nor 1.
    #[error("invalid boolean {0}")]
    BadBool(u32),
    /// Bytes left over after a message that must consume its whole record.
    #[error("{0} trailing bytes after message")]
    TrailingData(usize),
}

/// The result of a decode.
pub type Result<T> = std::result::Result<T, XdrError>;

/// Number of zero bytes that pad `len` up to a multiple of four.
pub const fn pad_len(len: usize) -> usize {
    (4 - (len & 3)) & 3
}

/// Encoded size of a variable-length opaque or string of `len` bytes (length word + data + pad).
pub const fn opaque_len(len: usize) -> usize {
    4 + len + pad_len(len)
}

/// A cursor over one received record. Opaque data is returned as `Bytes` slices of the record, so
/// WRITE payloads are never copied.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// A reader at the start of `buf`.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    /// A reader over a copy of `data`; convenient in tests.
    pub fn from_slice(data: &[u8]) -> Self {
        Reader::new(Bytes::copy_from_slice(data))
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Everything not yet consumed, without consuming it.
    pub fn rest(&self) -> Bytes {
        self.buf.slice(self.pos..)
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.remaining() < n {
            Err(XdrError::Truncated { needed: n, remaining: self.remaining() })
        } else {
            Ok(())
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        self.need(n)?;
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    /// An unsigned integer (RFC 4506 §4.2).
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A signed integer (RFC 4506 §4.1).
    pub fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }

    /// An unsigned hyper integer (RFC 4506 §4.5).
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A hyper integer (RFC 4506 §4.5).
    pub fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }

    /// A boolean (RFC 4506 §4.4): 0 or 1, anything else is an error.
    pub fn bool(&mut self) -> Result<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(XdrError::BadBool(v)),
        }
    }

    /// Fixed-length opaque of `N` bytes, with its padding.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.need(N + pad_len(N))?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        self.take(pad_len(N))?;
        Ok(out)
    }

    /// Variable-length opaque of at most `max` bytes, as a zero-copy slice of the record.
    pub fn opaque(&mut self, field: &'static str, max: usize) -> Result<Bytes> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(XdrError::TooLong { field, len, max });
        }
        self.need(len + pad_len(len))?;
        let data = self.buf.slice(self.pos..self.pos + len);
        self.pos += len + pad_len(len);
        Ok(data)
    }

    /// Variable-length opaque of at most `max` bytes, copied into a `Vec`.
    pub fn opaque_vec(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>> {
        Ok(self.opaque(field, max)?.to_vec())
    }

    /// A counted array of at most `max` elements. Each element occupies at least `min_size`
    /// encoded bytes, which bounds the allocation by the input that is actually present.
    pub fn array<T>(
        &mut self,
        field: &'static str,
        max: usize,
        min_size: usize,
        mut item: impl FnMut(&mut Reader) -> Result<T>,
    ) -> Result<Vec<T>> {
        let count = self.u32()? as usize;
        if count > max {
            return Err(XdrError::TooLong { field, len: count, max });
        }
        self.need(count.saturating_mul(min_size.max(1)))?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// An XDR linked list (`*next` chains, as in READDIR entries and MOUNT lists): a `bool`
    /// "value follows" before each element. Growth is bounded by the input, one element per
    /// iteration, and by `max` elements.
    pub fn list<T>(
        &mut self,
        field: &'static str,
        max: usize,
        mut item: impl FnMut(&mut Reader) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        while self.bool()? {
            if out.len() == max {
                return Err(XdrError::TooLong { field, len: max + 1, max });
            }
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Optional data (`T *`): a `bool` then the value when true.
    pub fn optional<T>(&mut self, item: impl FnOnce(&mut Reader) -> Result<T>) -> Result<Option<T>> {
        if self.bool()? { Ok(Some(item(self)?)) } else { Ok(None) }
    }

    /// Fails when bytes are left over.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(XdrError::TrailingData(n)),
        }
    }
}

/// Encoding helpers for `BytesMut`.
pub trait XdrWrite {
    /// An unsigned integer, big-endian.
    fn put_xdr_u32(&mut self, v: u32);
    /// An unsigned hyper integer, big-endian.
    fn put_xdr_u64(&mut self, v: u64);
    /// A boolean as 0 or 1.
    fn put_xdr_bool(&mut self, v: bool);
    /// Variable-length opaque or string: length, data, padding.
    fn put_opaque(&mut self, data: &[u8]);
    /// Fixed-length opaque: data and padding, no length.
    fn put_fixed(&mut self, data: &[u8]);
}

impl XdrWrite for BytesMut {
    fn put_xdr_u32(&mut self, v: u32) {
        self.put_u32(v);
    }
    fn put_xdr_u64(&mut self, v: u64) {
        self.put_u64(v);
    }
    fn put_xdr_bool(&mut self, v: bool) {
        self.put_u32(v as u32);
    }
    fn put_opaque(&mut self, data: &[u8]) {
        self.put_u32(data.len() as u32);
        self.put_fixed(data);
    }
    fn put_fixed(&mut self, data: &[u8]) {
        self.put_slice(data);
        self.put_bytes(0, pad_len(data.len()));
    }
}

/// A wire type: decoding from a record, encoding into a buffer, and the exact encoded size (used
/// to fill READDIR replies up to the client's budget without encoding twice).
pub trait Xdr: Sized {
    /// Reads one value from `r`, consuming exactly its encoding.
    fn decode(r: &mut Reader) -> Result<Self>;
    /// Appends the encoding to `w`.
    fn encode(&self, w: &mut BytesMut);
    /// How many bytes [`Xdr::encode`] appends.
    fn encoded_len(&self) -> usize;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut w = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut w);
        w.freeze()
    }

    /// Decodes a whole buffer; trailing bytes are an error.
    fn from_bytes(b: &[u8]) -> Result<Self> {
        let mut r = Reader::from_slice(b);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

impl Xdr for u32 {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.u32()
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_u32(*self)
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Xdr for i32 {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.i32()
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_i32(*self)
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Xdr for u64 {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.u64()
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_u64(*self)
    }
    fn encoded_len(&self) -> usize {
        8
    }
}

impl Xdr for i64 {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.i64()
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_i64(*self)
    }
    fn encoded_len(&self) -> usize {
        8
    }
}

impl Xdr for bool {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.bool()
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_xdr_bool(*self)
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Xdr for () {
    fn decode(_: &mut Reader) -> Result<Self> {
        Ok(())
    }
    fn encode(&self, _: &mut BytesMut) {}
    fn encoded_len(&self) -> usize {
        0
    }
}

impl<const N: usize> Xdr for [u8; N] {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.fixed::<N>()
    }
    fn encode(&self, w: &mut BytesMut) {
        w.put_fixed(self)
    }
    fn encoded_len(&self) -> usize {
        N + pad_len(N)
    }
}

/// Optional data (`T *` in XDR).
impl<T: Xdr> Xdr for Option<T> {
    fn decode(r: &mut Reader) -> Result<Self> {
        r.optional(T::decode)
    }
    fn encode(&self, w: &mut BytesMut) {
        match self {
            Some(v) => {
                w.put_xdr_bool(true);
                v.encode(w);
            }
            None => w.put_xdr_bool(false),
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, Xdr::encoded_len)
    }
}

/// Derives `Xdr` for a struct whose fields all implement `Xdr`, encoded in declaration order.
#[macro_export]
macro_rules! xdr_struct {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        $vis struct $name { $($(#[$fm])* $fvis $field: $ty),* }
        impl $crate::Xdr for $name {
            fn decode(r: &mut $crate::Reader) -> $crate::Result<Self> {
                Ok($name { $($field: <$ty as $crate::Xdr>::decode(r)?),* })
            }
            fn encode(&self, w: &mut ::bytes::BytesMut) {
                $($crate::Xdr::encode(&self.$field, w);)*
            }
            fn encoded_len(&self) -> usize {
                0 $(+ $crate::Xdr::encoded_len(&self.$field))*
            }
        }
    };
}

/// Derives `Xdr` for a C-like enum with explicit `u32` discriminants. Unknown values decode as
/// `XdrError::BadDiscriminant`.
#[macro_export]
macro_rules! xdr_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $val:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        $vis enum $name { $($(#[$vm])* $variant = $val),* }
        impl $name {
            /// The enum for a wire value, if the type defines it.
            pub fn from_u32(v: u32) -> Option<Self> {
                match v { $(x if x == $val => Some($name::$variant),)* _ => None }
            }
        }
        impl $crate::Xdr for $name {
            fn decode(r: &mut $crate::Reader) -> $crate::Result<Self> {
                let v = r.u32()?;
                $name::from_u32(v).ok_or($crate::XdrError::BadDiscriminant { ty: stringify!($name), value: v })
            }
            fn encode(&self, w: &mut ::bytes::BytesMut) {
                ::bytes::BufMut::put_u32(w, *self as u32)
            }
            fn encoded_len(&self) -> usize {
                4
            }
        }
    };
}

/// Declares a newtype over `Vec<T>` encoded as an XDR linked list (the `*next` pointer idiom of
/// RFC 4506 §4.19: each element preceded by TRUE, the list ended by FALSE), decoded with at most
/// `max` elements.
#[macro_export]
macro_rules! xdr_linked_list {
    ($(#[$meta:meta])* pub struct $name:ident($elem:ty, max = $max:expr);) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name(pub Vec<$elem>);

        impl $crate::Xdr for $name {
            fn decode(r: &mut $crate::Reader) -> $crate::codec::Result<Self> {
                Ok($name(r.list(stringify!($name), $max, <$elem as $crate::Xdr>::decode)?))
            }
            fn encode(&self, w: &mut ::bytes::BytesMut) {
                use $crate::XdrWrite;
                for e in &self.0 {
                    w.put_xdr_bool(true);
                    $crate::Xdr::encode(e, w);
                }
                w.put_xdr_bool(false);
            }
            fn encoded_len(&self) -> usize {
                4 + self.0.iter().map(|e| 4 + $crate::Xdr::encoded_len(e)).sum::<usize>()
            }
        }
    };
}

/// Declares a bounded variable-length opaque newtype over `Bytes` (names, paths, handles).
#[macro_export]
macro_rules! xdr_opaque {
    ($(#[$m:meta])* $vis:vis struct $name:ident(max = $max:expr)) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        $vis struct $name(pub ::bytes::Bytes);
        impl $name {
            /// The protocol maximum length in bytes.
            pub const MAX: usize = $max;
            /// The bytes as received or to be sent.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }
        }
        impl From<&[u8]> for $name {
            fn from(b: &[u8]) -> Self {
                $name(::bytes::Bytes::copy_from_slice(b))
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(::bytes::Bytes::copy_from_slice(s.as_bytes()))
            }
        }
        impl From<Vec<u8>> for $name {
            fn from(v: Vec<u8>) -> Self {
                $name(::bytes::Bytes::from(v))
            }
        }
        impl $crate::Xdr for $name {
            fn decode(r: &mut $crate::Reader) -> $crate::Result<Self> {
                Ok($name(r.opaque(stringify!($name), $max)?))
            }
            fn encode(&self, w: &mut ::bytes::BytesMut) {
                $crate::XdrWrite::put_opaque(w, &self.0)
            }
            fn encoded_len(&self) -> usize {
                $crate::opaque_len(self.0.len())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn opaque_golden_and_padding() {
        let mut w = BytesMut::new();
        w.put_opaque(b"abcde");
        assert_eq!(&w[..], &[0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]);
        let mut r = Reader::new(w.freeze());
        assert_eq!(&r.opaque("t", 10).unwrap()[..], b"abcde");
        r.finish().unwrap();
    }

    #[test]
    fn opaque_over_max_rejected_before_allocation() {
        let mut r = Reader::from_slice(&[0xff, 0xff, 0xff, 0xf0]);
        assert_eq!(
            r.opaque("name", 255),
            Err(XdrError::TooLong { field: "name", len: 0xffff_fff0, max: 255 })
        );
    }

    #[test]
    fn truncated_opaque_is_an_error() {
        let mut r = Reader::from_slice(&[0, 0, 0, 8, 1, 2, 3]);
        assert!(matches!(r.opaque("x", 100), Err(XdrError::Truncated { .. })));
    }

    #[test]
    fn truncated_fixed_is_an_error_not_a_loop() {
        let mut r = Reader::from_slice(&[1, 2, 3]);
        assert!(matches!(r.fixed::<8>(), Err(XdrError::Truncated { .. })));
    }

    #[test]
    fn huge_array_count_is_rejected_by_remaining_input() {
        let mut r = Reader::from_slice(&[0, 0, 0, 16, 0, 0, 0, 1]);
        assert!(matches!(r.array("gids", 16, 4, |r| r.u32()), Err(XdrError::Truncated { .. })));
        let mut r = Reader::from_slice(&[0, 0, 0, 17]);
        assert!(matches!(r.array("gids", 16, 4, |r| r.u32()), Err(XdrError::TooLong { .. })));
    }

    #[test]
    fn bad_bool() {
        assert_eq!(Reader::from_slice(&[0, 0, 0, 2]).bool(), Err(XdrError::BadBool(2)));
    }

    #[test]
    fn primitives_match_reference_encoder() {
        // xdr-codec is used only here, as an independent reference for primitive encodings.
        for v in [0u32, 1, 0x1234_5678, u32::MAX] {
            let mut theirs = Vec::new();
            xdr_codec::pack(&v, &mut theirs).unwrap();
            assert_eq!(v.to_bytes().to_vec(), theirs);
        }
        for v in [0u64, 1, 0x0102_0304_0506_0708, u64::MAX] {
            let mut theirs = Vec::new();
            xdr_codec::pack(&v, &mut theirs).unwrap();
            assert_eq!(v.to_bytes().to_vec(), theirs);
        }
        let mut theirs = Vec::new();
        xdr_codec::pack_opaque_flex(b"abcde", None, &mut theirs).unwrap();
        let mut ours = BytesMut::new();
        ours.put_opaque(b"abcde");
        assert_eq!(&ours[..], &theirs[..]);
    }

    proptest! {
        #[test]
        fn opaque_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut w = BytesMut::new();
            w.put_opaque(&data);
            prop_assert_eq!(w.len(), opaque_len(data.len()));
            let mut r = Reader::new(w.freeze());
            prop_assert_eq!(&r.opaque("t", 300).unwrap()[..], &data[..]);
            prop_assert!(r.finish().is_ok());
        }
    }
}
