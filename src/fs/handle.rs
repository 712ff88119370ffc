//! The NFS file handle format and its MAC.
//!
//! A handle is at most 64 bytes (NFS3_FHSIZE):
//!
//! ```text
//! [format u8 = 1 | kind u8 = 1 (kernel) | export fsid u64 | kernel handle type u32 | kernel handle bytes | MAC 8]
//! ```
//!
//! The body of a *kernel* handle is what `name_to_handle_at` returned, which carries the inode and
//! its generation on ext4, xfs, btrfs and tmpfs, so handles survive restarts and renames, and a
//! reused inode number gives ESTALE rather than another file. The MAC (SipHash-2-4 keyed by a
//! secret persisted in the state directory) stops a client from forging a handle for an inode
//! outside the export, which `open_by_handle_at` would otherwise happily open.

use std::hash::Hasher;
use std::io::{self, Read};
use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};
use siphasher::sip::SipHasher24;

use super::sys::KernelHandle;

/// Largest handle NFS v3 allows (RFC 1813 §2.5, NFS3_FHSIZE).
pub const MAX_HANDLE: usize = 64;
const FORMAT_V1: u8 = 1;
const KIND_KERNEL: u8 = 1;
const HEADER: usize = 1 + 1 + 8 + 4;
const MAC_LEN: usize = 8;
/// Room left for the kernel's handle bytes.
pub const MAX_KERNEL_BYTES: usize = MAX_HANDLE - HEADER - MAC_LEN;

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

    /// Builds the wire handle for a kernel handle in the export `fsid`.
    pub fn encode(&self, fsid: u64, kernel: &KernelHandle) -> io::Result<Bytes> {
        if kernel.bytes.len() > MAX_KERNEL_BYTES {
            return Err(io::Error::other(format!(
                "kernel file handle of {} bytes does not fit in an NFS v3 handle (at most {MAX_KERNEL_BYTES})",
                kernel.bytes.len()
            )));
        }
        let mut w = BytesMut::with_capacity(HEADER + kernel.bytes.len() + MAC_LEN);
        w.put_u8(FORMAT_V1);
        w.put_u8(KIND_KERNEL);
        w.put_u64(fsid);
        w.put_u32(kernel.handle_type as u32);
        w.put_slice(&kernel.bytes);
        let mac = self.mac(&w);
        w.put_slice(&mac);
        Ok(w.freeze())
    }

    /// Parses and authenticates a wire handle.
    pub fn decode(&self, fh: &[u8]) -> Result<DecodedHandle, HandleError> {
        if fh.len() < HEADER + MAC_LEN || fh.len() > MAX_HANDLE || fh[0] != FORMAT_V1 || fh[1] != KIND_KERNEL
        {
            return Err(HandleError::Bad);
        }
        let (body, mac) = fh.split_at(fh.len() - MAC_LEN);
        if !constant_time_eq(&self.mac(body), mac) {
            return Err(HandleError::Bad);
        }
        let fsid = u64::from_be_bytes(body[2..10].try_into().expect("8 bytes"));
        let handle_type = u32::from_be_bytes(body[10..14].try_into().expect("4 bytes")) as i32;
        Ok(DecodedHandle { fsid, kernel: KernelHandle { handle_type, bytes: body[HEADER..].to_vec() } })
    }
}

/// The export fsid a handle claims, unauthenticated.
pub fn peek_fsid(fh: &[u8]) -> Option<u64> {
    if fh.len() < HEADER + MAC_LEN || fh[0] != FORMAT_V1 {
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

    #[test]
    fn round_trip() {
        let k = HandleKey::from_bytes([7; 16]);
        let fh = k.encode(42, &kh()).unwrap();
        assert!(fh.len() <= MAX_HANDLE);
        assert_eq!(k.decode(&fh).unwrap(), DecodedHandle { fsid: 42, kernel: kh() });
    }

    #[test]
    fn forged_or_truncated_handles_are_bad() {
        let k = HandleKey::from_bytes([7; 16]);
        let fh = k.encode(42, &kh()).unwrap();
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
