//! The NFS file handle format and its MAC.
//!
//! A handle is at most 64 bytes (NFS3_FHSIZE), in one of two kinds:
//!
//! ```text
//! kernel: [format u8 = 1 | kind u8 = 1 | export fsid u64 | kernel handle type u32 | kernel handle bytes | MAC 8]
//! tagged: [format u8 = 1 | kind u8 = 2 | export fsid u64 | kernel handle type u32 | identity 21 | kernel handle bytes | MAC 8]
//! ```
//!
//! A kernel handle too long for that layout (overlayfs with `nfs_export` on btrfs gives 44
//! bytes, 2 more than format 1 has room for) goes in the compact format 2, whose handle type is
//! one byte (the kernel's `FILEID_*` types all are): 3 more bytes of room. Only such handles use
//! it, so every handle format 1 can carry keeps the bytes it had, and clients holding them from
//! an earlier run see no change.
//!
//! The body of a *kernel* handle is what `name_to_handle_at` returned, which carries the inode and
//! its generation on ext4, xfs, btrfs and tmpfs, so handles survive restarts and renames, and a
//! reused inode number gives ESTALE rather than another file. The MAC (SipHash-2-4 keyed by a
//! secret persisted in the state directory) stops a client from forging a handle for an inode
//! outside the export, which `open_by_handle_at` would otherwise happily open.
//!
//! A *tagged* handle is for filesystems whose kernel handles may name another object later: a
//! FUSE handle is a node id with generation 0, and node ids are handed out afresh when the FUSE
//! filesystem is mounted again. It also carries the [`ObjectIdentity`] of the object it was made
//! for (file type, inode number, birth time), under the MAC, and resolution compares it with the
//! `statx` it takes anyway: a handle never resolves to another object.

use std::hash::Hasher;
use std::io::{self, Read};
use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};
use siphasher::sip::SipHasher24;

use super::attr::{Attr, FileType, Timestamp};
use super::sys::KernelHandle;

/// Largest handle NFS v3 allows (RFC 1813 §2.5, NFS3_FHSIZE).
pub const MAX_HANDLE: usize = 64;
const FORMAT_V1: u8 = 1;
const FORMAT_COMPACT: u8 = 2;
const KIND_KERNEL: u8 = 1;
const KIND_TAGGED: u8 = 2;
const HEADER: usize = 1 + 1 + 8 + 4;
/// The compact format's header: the handle type in one byte.
const COMPACT_HEADER: usize = 1 + 1 + 8 + 1;
const MAC_LEN: usize = 8;
/// The identity in a tagged handle: type (with a birth-time flag), inode, birth time.
const IDENTITY_LEN: usize = 1 + 8 + 8 + 4;
/// Room left for the kernel's handle bytes.
pub const MAX_KERNEL_BYTES: usize = MAX_HANDLE - HEADER - MAC_LEN;
/// Room left for the kernel's handle bytes in a tagged handle.
pub const MAX_TAGGED_KERNEL_BYTES: usize = MAX_KERNEL_BYTES - IDENTITY_LEN;
/// Room for the kernel's handle bytes in the compact format.
pub const MAX_COMPACT_KERNEL_BYTES: usize = MAX_HANDLE - COMPACT_HEADER - MAC_LEN;
/// Set in the identity's type byte when a birth time follows.
const HAS_BTIME: u8 = 0x80;

/// Why a handle from the wire is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Malformed, of an unknown format, or with a wrong MAC: NFS3ERR_BADHANDLE.
    #[error("malformed or forged file handle")]
    Bad,
    /// Well formed, but the file is gone or the export no longer exists: NFS3ERR_STALE.
    #[error("stale file handle")]
    Stale,
}

/// A decoded, MAC-checked handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedHandle {
    pub fsid: u64,
    pub kernel: KernelHandle,
    /// What the object was when a tagged handle was made; `None` for a kernel handle.
    pub identity: Option<ObjectIdentity>,
}

/// What names one object for good: its type, its inode number and, where the filesystem keeps
/// one, its birth time (a reused inode number comes with a new birth time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectIdentity {
    pub file_type: FileType,
    pub ino: u64,
    pub btime: Option<Timestamp>,
}

impl ObjectIdentity {
    pub fn of(attr: &Attr) -> ObjectIdentity {
        ObjectIdentity { file_type: attr.file_type, ino: attr.ino, btime: attr.btime }
    }

    /// Whether `attr` describes the object this identity was taken from.
    pub fn matches(&self, attr: &Attr) -> bool {
        *self == ObjectIdentity::of(attr)
    }

    fn type_code(t: FileType) -> u8 {
        match t {
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::BlockDevice => 3,
            FileType::CharDevice => 4,
            FileType::Symlink => 5,
            FileType::Socket => 6,
            FileType::Fifo => 7,
        }
    }

    fn from_code(code: u8) -> Option<FileType> {
        Some(match code {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::BlockDevice,
            4 => FileType::CharDevice,
            5 => FileType::Symlink,
            6 => FileType::Socket,
            7 => FileType::Fifo,
            _ => return None,
        })
    }

    fn put(&self, w: &mut BytesMut) {
        let flag = if self.btime.is_some() { HAS_BTIME } else { 0 };
        w.put_u8(Self::type_code(self.file_type) | flag);
        w.put_u64(self.ino);
        let t = self.btime.unwrap_or_default();
        w.put_i64(t.seconds);
        w.put_u32(t.nanos);
    }

    fn parse(b: &[u8]) -> Option<ObjectIdentity> {
        let file_type = Self::from_code(b[0] & !HAS_BTIME)?;
        let ino = u64::from_be_bytes(b[1..9].try_into().ok()?);
        let seconds = i64::from_be_bytes(b[9..17].try_into().ok()?);
        let nanos = u32::from_be_bytes(b[17..21].try_into().ok()?);
        let btime = (b[0] & HAS_BTIME != 0).then_some(Timestamp { seconds, nanos });
        Some(ObjectIdentity { file_type, ino, btime })
    }
}

/// The secret that authenticates handles. It lives in `STATE_DIR/handle.key` (see
/// [`super::state`]) so handles stay valid across restarts; losing it makes every handle stale.
#[derive(Clone)]
pub struct HandleKey {
    key: [u8; 16],
}

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleKey(..)")
    }
}

impl HandleKey {
    pub fn from_bytes(key: [u8; 16]) -> Self {
        HandleKey { key }
    }

    /// A value that identifies the key without revealing it, kept in the state record so a
    /// replaced or damaged key is noticed at startup.
    pub fn fingerprint(&self) -> u64 {
        let mut h = self.hasher();
        h.write(b"rnfsd key fingerprint\0");
        h.finish()
    }

    fn hasher(&self) -> SipHasher24 {
        SipHasher24::new_with_key(&self.key)
    }

    fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut h = self.hasher();
        h.write(data);
        h.finish().to_be_bytes()
    }

    /// A stable 64-bit fsid for an export path that has no `fsid=`: keyed, so it is not `st_dev`
    /// and does not change between boots or hosts that share the state directory.
    pub fn fsid_for_path(&self, path: &Path) -> u64 {
        use std::os::unix::ffi::OsStrExt;
        let mut h = self.hasher();
        h.write(b"fsid\0");
        h.write(path.as_os_str().as_bytes());
        h.finish()
    }

    /// Builds the wire handle for a kernel handle in the export `fsid`: a kernel handle, or a
    /// tagged one when `identity` is given.
    pub fn encode(
        &self,
        fsid: u64,
        kernel: &KernelHandle,
        identity: Option<&ObjectIdentity>,
    ) -> io::Result<Bytes> {
        let identity_len = if identity.is_some() { IDENTITY_LEN } else { 0 };
        let compact_room = MAX_COMPACT_KERNEL_BYTES - identity_len;
        let compact_type = u8::try_from(kernel.handle_type).ok();
        let compact = match kernel.bytes.len() {
            n if n <= MAX_KERNEL_BYTES - identity_len => None,
            n if n <= compact_room && compact_type.is_some() => compact_type,
            n => {
                return Err(io::Error::other(format!(
                    "kernel file handle of {n} bytes does not fit in an NFS v3 handle (at most {compact_room})"
                )));
            }
        };
        let mut w = BytesMut::with_capacity(MAX_HANDLE);
        w.put_u8(if compact.is_some() { FORMAT_COMPACT } else { FORMAT_V1 });
        w.put_u8(if identity.is_some() { KIND_TAGGED } else { KIND_KERNEL });
        w.put_u64(fsid);
        match compact {
            Some(handle_type) => w.put_u8(handle_type),
            None => w.put_u32(kernel.handle_type as u32),
        }
        if let Some(id) = identity {
            id.put(&mut w);
        }
        w.put_slice(&kernel.bytes);
        let mac = self.mac(&w);
        w.put_slice(&mac);
        Ok(w.freeze())
    }

    /// Parses and authenticates a wire handle.
    pub fn decode(&self, fh: &[u8]) -> Result<DecodedHandle, HandleError> {
        let header = match fh.first() {
            Some(&FORMAT_V1) => HEADER,
            Some(&FORMAT_COMPACT) => COMPACT_HEADER,
            _ => return Err(HandleError::Bad),
        };
        if fh.len() < header + MAC_LEN || fh.len() > MAX_HANDLE {
            return Err(HandleError::Bad);
        }
        let tagged = match fh[1] {
            KIND_KERNEL => false,
            KIND_TAGGED if fh.len() >= header + IDENTITY_LEN + MAC_LEN => true,
            _ => return Err(HandleError::Bad),
        };
        let (body, mac) = fh.split_at(fh.len() - MAC_LEN);
        if !constant_time_eq(&self.mac(body), mac) {
            return Err(HandleError::Bad);
        }
        let fsid = u64::from_be_bytes(body[2..10].try_into().expect("8 bytes"));
        let handle_type = if header == HEADER {
            u32::from_be_bytes(body[10..14].try_into().expect("4 bytes")) as i32
        } else {
            i32::from(body[10])
        };
        let (identity, kernel_bytes) = if tagged {
            let id = ObjectIdentity::parse(&body[header..header + IDENTITY_LEN]).ok_or(HandleError::Bad)?;
            (Some(id), &body[header + IDENTITY_LEN..])
        } else {
            (None, &body[header..])
        };
        Ok(DecodedHandle {
            fsid,
            kernel: KernelHandle { handle_type, bytes: kernel_bytes.to_vec() },
            identity,
        })
    }
}

/// The export fsid a handle claims, unauthenticated.
pub fn peek_fsid(fh: &[u8]) -> Option<u64> {
    if fh.len() < COMPACT_HEADER + MAC_LEN || !matches!(fh[0], FORMAT_V1 | FORMAT_COMPACT) {
        return None;
    }
    Some(u64::from_be_bytes(fh[2..10].try_into().ok()?))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `N` bytes from the kernel's random source.
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kh() -> KernelHandle {
        KernelHandle { handle_type: 1, bytes: vec![1, 2, 3, 4, 5, 6, 7, 8] }
    }

    fn identity(btime: Option<Timestamp>) -> ObjectIdentity {
        ObjectIdentity { file_type: FileType::Directory, ino: 0x0102_0304_0506_0708, btime }
    }

    #[test]
    fn round_trip() {
        let k = HandleKey::from_bytes([7; 16]);
        let fh = k.encode(42, &kh(), None).unwrap();
        assert!(fh.len() <= MAX_HANDLE);
        assert_eq!(k.decode(&fh).unwrap(), DecodedHandle { fsid: 42, kernel: kh(), identity: None });
        for btime in [None, Some(Timestamp { seconds: -5, nanos: 999_999_999 })] {
            let id = identity(btime);
            let fh = k.encode(42, &kh(), Some(&id)).unwrap();
            assert_eq!(fh.len(), 14 + 21 + 8 + 8);
            assert_eq!(k.decode(&fh).unwrap(), DecodedHandle { fsid: 42, kernel: kh(), identity: Some(id) });
        }
        // The kernel handle FUSE makes (node id and generation, 12 bytes) fits in a tagged handle.
        let fuse = KernelHandle { handle_type: 0x81, bytes: vec![0; 12] };
        assert!(k.encode(1, &fuse, Some(&identity(None))).unwrap().len() <= MAX_HANDLE);
        let long =
            KernelHandle { handle_type: 1, bytes: vec![0; MAX_COMPACT_KERNEL_BYTES - IDENTITY_LEN + 1] };
        assert!(k.encode(1, &long, Some(&identity(None))).is_err());
        assert!(k.encode(1, &long, None).is_ok());
    }

    #[test]
    fn handles_too_long_for_format_1_take_the_compact_format() {
        let k = HandleKey::from_bytes([7; 16]);
        // The one format 1 can still carry keeps its bytes (and its 4-byte type).
        let fits = KernelHandle { handle_type: 0xf8, bytes: vec![5; MAX_KERNEL_BYTES] };
        let fh = k.encode(3, &fits, None).unwrap();
        assert_eq!((fh[0], fh.len()), (FORMAT_V1, MAX_HANDLE));
        // overlayfs with nfs_export on btrfs: 44 bytes, type 0xf8.
        let overlay = KernelHandle { handle_type: 0xf8, bytes: (0..44).collect() };
        let fh = k.encode(3, &overlay, None).unwrap();
        assert_eq!((fh[0], fh.len()), (FORMAT_COMPACT, 11 + 44 + 8));
        assert_eq!(
            k.decode(&fh).unwrap(),
            DecodedHandle { fsid: 3, kernel: overlay.clone(), identity: None }
        );
        assert_eq!(peek_fsid(&fh), Some(3));
        let full = KernelHandle { handle_type: 0xf8, bytes: vec![9; MAX_COMPACT_KERNEL_BYTES] };
        assert_eq!(k.encode(3, &full, None).unwrap().len(), MAX_HANDLE);
        let tagged = KernelHandle { handle_type: 0x81, bytes: vec![1; MAX_TAGGED_KERNEL_BYTES + 3] };
        let id = identity(None);
        let fh = k.encode(3, &tagged, Some(&id)).unwrap();
        assert_eq!(k.decode(&fh).unwrap(), DecodedHandle { fsid: 3, kernel: tagged, identity: Some(id) });
        // A type that needs more than a byte cannot be compacted.
        let wide = KernelHandle { handle_type: 0x1_0000, bytes: vec![0; 44] };
        assert!(k.encode(3, &wide, None).is_err());
        let too_long = KernelHandle { handle_type: 1, bytes: vec![0; MAX_COMPACT_KERNEL_BYTES + 1] };
        assert!(k.encode(3, &too_long, None).is_err());
        for i in 0..fh.len() {
            let mut f = fh.to_vec();
            f[i] ^= 1;
            assert_eq!(k.decode(&f), Err(HandleError::Bad), "flipped byte {i} of a compact handle");
        }
    }

    #[test]
    fn identities_match_only_the_same_object() {
        let mut a = Attr::for_tests(FileType::Regular, 5);
        a.btime = Some(Timestamp { seconds: 10, nanos: 1 });
        let id = ObjectIdentity::of(&a);
        assert!(id.matches(&a));
        let other_ino = Attr { ino: 6, ..a.clone() };
        let other_type = Attr { file_type: FileType::Directory, ..a.clone() };
        let reborn = Attr { btime: Some(Timestamp { seconds: 10, nanos: 2 }), ..a.clone() };
        let no_btime = Attr { btime: None, ..a.clone() };
        for (what, b) in
            [("inode", other_ino), ("type", other_type), ("birth", reborn), ("no birth", no_btime)]
        {
            assert!(!id.matches(&b), "{what}");
        }
    }

    #[test]
    fn forged_or_truncated_handles_are_bad() {
        let k = HandleKey::from_bytes([7; 16]);
        let fh = k.encode(42, &kh(), None).unwrap();
        let tagged = k.encode(42, &kh(), Some(&identity(None))).unwrap();
        for i in 0..tagged.len() {
            let mut f = tagged.to_vec();
            f[i] ^= 1;
            assert_eq!(k.decode(&f), Err(HandleError::Bad), "flipped byte {i} of a tagged handle");
        }
        for i in 0..fh.len() {
            let mut f = fh.to_vec();
            f[i] ^= 1;
            assert_eq!(k.decode(&f), Err(HandleError::Bad), "flipped byte {i}");
        }
        assert_eq!(k.decode(&fh[..fh.len() - 1]), Err(HandleError::Bad));
        assert_eq!(k.decode(&[]), Err(HandleError::Bad));
        assert_eq!(k.decode(&[0u8; 65]), Err(HandleError::Bad));
        let other = HandleKey::from_bytes([8; 16]);
        assert_eq!(other.decode(&fh), Err(HandleError::Bad));
    }

    #[test]
    fn fsids_and_fingerprints_depend_on_the_key() {
        let a = HandleKey::from_bytes([1; 16]);
        let b = HandleKey::from_bytes([2; 16]);
        assert_eq!(
            a.fsid_for_path(Path::new("/x")),
            HandleKey::from_bytes([1; 16]).fsid_for_path(Path::new("/x"))
        );
        assert_ne!(a.fsid_for_path(Path::new("/x")), a.fsid_for_path(Path::new("/y")));
        assert_ne!(a.fsid_for_path(Path::new("/x")), b.fsid_for_path(Path::new("/x")));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
