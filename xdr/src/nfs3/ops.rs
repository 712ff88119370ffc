//! Arguments and results of each NFS v3 procedure (RFC 1813 §3.3.0 to §3.3.21), in procedure
//! order. NULL (§3.3.0) takes and returns `()`.

use bytes::{Bytes, BytesMut};

use crate::codec::{Reader, Result, Xdr, XdrWrite, opaque_len};

use super::result::Nfs3Result;
use super::types::*;
use super::{DIRLIST_ENTRY_OVERHEAD, DIRLIST_TRAILER_LEN, MAX_DATA, MAX_DIR_ENTRIES};

// ---- GETATTR (§3.3.1) ----

crate::xdr_struct! {
    /// `GETATTR3args` (RFC 1813 §3.3.1).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct GETATTR3args {
        /// The file handle of the object.
        pub object: nfs_fh3,
    }
}

crate::xdr_struct! {
    /// `GETATTR3resok` (RFC 1813 §3.3.1).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GETATTR3resok {
        /// The object's attributes.
        pub obj_attributes: fattr3,
    }
}

/// GETATTR's failure arm is void (RFC 1813 §3.3.1).
pub type GETATTR3resfail = ();
/// `GETATTR3res` (RFC 1813 §3.3.1).
pub type GETATTR3res = Nfs3Result<GETATTR3resok, GETATTR3resfail>;

// ---- SETATTR (§3.3.2) ----

crate::xdr_struct! {
    /// `SETATTR3args` (RFC 1813 §3.3.2).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SETATTR3args {
        /// The file handle of the object.
        pub object: nfs_fh3,
        /// The attributes to change; fields left unset stay as they are.
        pub new_attributes: sattr3,
        /// If set, the change happens only when the ctime is still this one.
        pub guard: sattrguard3,
    }
}

crate::xdr_struct! {
    /// `SETATTR3resok` (RFC 1813 §3.3.2).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SETATTR3resok {
        /// The object's attributes before and after the call.
        pub obj_wcc: wcc_data,
    }
}

/// `SETATTR3resfail` (RFC 1813 §3.3.2): `obj_wcc`.
pub type SETATTR3resfail = wcc_data;
/// `SETATTR3res` (RFC 1813 §3.3.2).
pub type SETATTR3res = Nfs3Result<SETATTR3resok, SETATTR3resfail>;

// ---- LOOKUP (§3.3.3) ----

crate::xdr_struct! {
    /// `LOOKUP3args` (RFC 1813 §3.3.3).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct LOOKUP3args {
        /// The directory and the name to look up in it.
        pub what: diropargs3,
    }
}

crate::xdr_struct! {
    /// `LOOKUP3resok` (RFC 1813 §3.3.3).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct LOOKUP3resok {
        /// The file handle of the object found.
        pub object: nfs_fh3,
        /// The object's attributes.
        pub obj_attributes: post_op_attr,
        /// The directory's attributes.
        pub dir_attributes: post_op_attr,
    }
}

/// `LOOKUP3resfail` (RFC 1813 §3.3.3): `dir_attributes`.
pub type LOOKUP3resfail = post_op_attr;
/// `LOOKUP3res` (RFC 1813 §3.3.3).
pub type LOOKUP3res = Nfs3Result<LOOKUP3resok, LOOKUP3resfail>;

// ---- ACCESS (§3.3.4) ----

crate::xdr_struct! {
    /// `ACCESS3args` (RFC 1813 §3.3.4); `access` is a mask of the `ACCESS3_*` bits.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ACCESS3args {
        /// The file handle of the object.
        pub object: nfs_fh3,
        /// The `ACCESS3_*` rights asked about.
        pub access: u32,
    }
}

crate::xdr_struct! {
    /// `ACCESS3resok` (RFC 1813 §3.3.4).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ACCESS3resok {
        /// The object's attributes.
        pub obj_attributes: post_op_attr,
        /// Of the rights asked about, those granted.
        pub access: u32,
    }
}

/// `ACCESS3resfail` (RFC 1813 §3.3.4): `obj_attributes`.
pub type ACCESS3resfail = post_op_attr;
/// `ACCESS3res` (RFC 1813 §3.3.4).
pub type ACCESS3res = Nfs3Result<ACCESS3resok, ACCESS3resfail>;

// ---- READLINK (§3.3.5) ----

crate::xdr_struct! {
    /// `READLINK3args` (RFC 1813 §3.3.5).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READLINK3args {
        /// The file handle of the symbolic link.
        pub symlink: nfs_fh3,
    }
}

crate::xdr_struct! {
    /// `READLINK3resok` (RFC 1813 §3.3.5).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READLINK3resok {
        /// The symbolic link's attributes.
        pub symlink_attributes: post_op_attr,
        /// The text of the link.
        pub data: nfspath3,
    }
}

/// `READLINK3resfail` (RFC 1813 §3.3.5): `symlink_attributes`.
pub type READLINK3resfail = post_op_attr;
/// `READLINK3res` (RFC 1813 §3.3.5).
pub type READLINK3res = Nfs3Result<READLINK3resok, READLINK3resfail>;

// ---- READ (§3.3.6) ----

crate::xdr_struct! {
    /// `READ3args` (RFC 1813 §3.3.6).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READ3args {
        /// The file handle of the file.
        pub file: nfs_fh3,
        /// The byte offset in the file.
        pub offset: offset3,
        /// How many bytes to read.
        pub count: count3,
    }
}

/// `READ3resok` (RFC 1813 §3.3.6). `data` holds at most [`MAX_DATA`] bytes; decoding slices it
/// out of the received record without copying.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct READ3resok {
    /// The file's attributes.
    pub file_attributes: post_op_attr,
    /// How many bytes were read.
    pub count: count3,
    /// Whether the read reached the end of the file.
    pub eof: bool,
    /// The bytes read.
    pub data: Bytes,
}

impl Xdr for READ3resok {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(READ3resok {
            file_attributes: post_op_attr::decode(r)?,
            count: r.u32()?,
            eof: r.bool()?,
            data: r.opaque("data", MAX_DATA)?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        self.file_attributes.encode(w);
        w.put_xdr_u32(self.count);
        w.put_xdr_bool(self.eof);
        w.put_opaque(&self.data);
    }
    fn encoded_len(&self) -> usize {
        self.file_attributes.encoded_len() + 4 + 4 + opaque_len(self.data.len())
    }
}

/// `READ3resfail` (RFC 1813 §3.3.6): `file_attributes`.
pub type READ3resfail = post_op_attr;
/// `READ3res` (RFC 1813 §3.3.6).
pub type READ3res = Nfs3Result<READ3resok, READ3resfail>;

// ---- WRITE (§3.3.7) ----

/// `WRITE3args` (RFC 1813 §3.3.7). `data` holds at most [`MAX_DATA`] bytes and is a zero-copy
/// slice of the received record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WRITE3args {
    /// The file handle of the file.
    pub file: nfs_fh3,
    /// The byte offset in the file.
    pub offset: offset3,
    /// How many bytes of `data` to write.
    pub count: count3,
    /// How durable the data must be before the reply.
    pub stable: stable_how,
    /// The bytes to write.
    pub data: Bytes,
}

impl Xdr for WRITE3args {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(WRITE3args {
            file: nfs_fh3::decode(r)?,
            offset: r.u64()?,
            count: r.u32()?,
            stable: stable_how::decode(r)?,
            data: r.opaque("data", MAX_DATA)?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        self.file.encode(w);
        w.put_xdr_u64(self.offset);
        w.put_xdr_u32(self.count);
        self.stable.encode(w);
        w.put_opaque(&self.data);
    }
    fn encoded_len(&self) -> usize {
        self.file.encoded_len() + 8 + 4 + 4 + opaque_len(self.data.len())
    }
}

crate::xdr_struct! {
    /// `WRITE3resok` (RFC 1813 §3.3.7).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WRITE3resok {
        /// The file's attributes before and after the call.
        pub file_wcc: wcc_data,
        /// How many bytes were written.
        pub count: count3,
        /// How durable the written data is.
        pub committed: stable_how,
        /// The write verifier: it changes when data acknowledged as UNSTABLE may have been lost.
        pub verf: writeverf3,
    }
}

/// `WRITE3resfail` (RFC 1813 §3.3.7): `file_wcc`.
pub type WRITE3resfail = wcc_data;
/// `WRITE3res` (RFC 1813 §3.3.7).
pub type WRITE3res = Nfs3Result<WRITE3resok, WRITE3resfail>;

// ---- CREATE (§3.3.8) ----

crate::xdr_struct! {
    /// `CREATE3args` (RFC 1813 §3.3.8); the RFC's `where` field is `where_`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CREATE3args {
        /// The directory and the name of the new entry (`where` in the RFC).
        pub where_: diropargs3,
        /// The creation mode, with the initial attributes or the exclusive verifier.
        pub how: createhow3,
    }
}

crate::xdr_struct! {
    /// `CREATE3resok` (RFC 1813 §3.3.8); also the success body of MKDIR, SYMLINK and MKNOD.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct CREATE3resok {
        /// The file handle of the new file, if the server returns it.
        pub obj: post_op_fh3,
        /// The new file's attributes.
        pub obj_attributes: post_op_attr,
        /// The directory's attributes before and after the call.
        pub dir_wcc: wcc_data,
    }
}

/// `CREATE3resfail` (RFC 1813 §3.3.8): `dir_wcc`.
pub type CREATE3resfail = wcc_data;
/// `CREATE3res` (RFC 1813 §3.3.8).
pub type CREATE3res = Nfs3Result<CREATE3resok, CREATE3resfail>;

// ---- MKDIR (§3.3.9) ----

crate::xdr_struct! {
    /// `MKDIR3args` (RFC 1813 §3.3.9).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct MKDIR3args {
        /// The directory and the name of the new entry (`where` in the RFC).
        pub where_: diropargs3,
        /// The initial attributes of the directory.
        pub attributes: sattr3,
    }
}

/// `MKDIR3resok` (RFC 1813 §3.3.9): the same fields as [`CREATE3resok`].
pub type MKDIR3resok = CREATE3resok;
/// `MKDIR3resfail` (RFC 1813 §3.3.9): `dir_wcc`.
pub type MKDIR3resfail = wcc_data;
/// `MKDIR3res` (RFC 1813 §3.3.9).
pub type MKDIR3res = Nfs3Result<MKDIR3resok, MKDIR3resfail>;

// ---- SYMLINK (§3.3.10) ----

crate::xdr_struct! {
    /// `SYMLINK3args` (RFC 1813 §3.3.10).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SYMLINK3args {
        /// The directory and the name of the new entry (`where` in the RFC).
        pub where_: diropargs3,
        /// The initial attributes and the text of the link.
        pub symlink: symlinkdata3,
    }
}

/// `SYMLINK3resok` (RFC 1813 §3.3.10): the same fields as [`CREATE3resok`].
pub type SYMLINK3resok = CREATE3resok;
/// `SYMLINK3resfail` (RFC 1813 §3.3.10): `dir_wcc`.
pub type SYMLINK3resfail = wcc_data;
/// `SYMLINK3res` (RFC 1813 §3.3.10).
pub type SYMLINK3res = Nfs3Result<SYMLINK3resok, SYMLINK3resfail>;

// ---- MKNOD (§3.3.11) ----

crate::xdr_struct! {
    /// `MKNOD3args` (RFC 1813 §3.3.11).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MKNOD3args {
        /// The directory and the name of the new entry (`where` in the RFC).
        pub where_: diropargs3,
        /// The kind of special file, with its attributes and device numbers.
        pub what: mknoddata3,
    }
}

/// `MKNOD3resok` (RFC 1813 §3.3.11): the same fields as [`CREATE3resok`].
pub type MKNOD3resok = CREATE3resok;
/// `MKNOD3resfail` (RFC 1813 §3.3.11): `dir_wcc`.
pub type MKNOD3resfail = wcc_data;
/// `MKNOD3res` (RFC 1813 §3.3.11).
pub type MKNOD3res = Nfs3Result<MKNOD3resok, MKNOD3resfail>;

// ---- REMOVE (§3.3.12) ----

crate::xdr_struct! {
    /// `REMOVE3args` (RFC 1813 §3.3.12).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct REMOVE3args {
        /// The directory and the name of the entry to remove.
        pub object: diropargs3,
    }
}

crate::xdr_struct! {
    /// `REMOVE3resok` (RFC 1813 §3.3.12).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct REMOVE3resok {
        /// The directory's attributes before and after the call.
        pub dir_wcc: wcc_data,
    }
}

/// `REMOVE3resfail` (RFC 1813 §3.3.12): `dir_wcc`.
pub type REMOVE3resfail = wcc_data;
/// `REMOVE3res` (RFC 1813 §3.3.12).
pub type REMOVE3res = Nfs3Result<REMOVE3resok, REMOVE3resfail>;

// ---- RMDIR (§3.3.13) ----

crate::xdr_struct! {
    /// `RMDIR3args` (RFC 1813 §3.3.13).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct RMDIR3args {
        /// The directory and the name of the directory to remove.
        pub object: diropargs3,
    }
}

crate::xdr_struct! {
    /// `RMDIR3resok` (RFC 1813 §3.3.13).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct RMDIR3resok {
        /// The directory's attributes before and after the call.
        pub dir_wcc: wcc_data,
    }
}

/// `RMDIR3resfail` (RFC 1813 §3.3.13): `dir_wcc`.
pub type RMDIR3resfail = wcc_data;
/// `RMDIR3res` (RFC 1813 §3.3.13).
pub type RMDIR3res = Nfs3Result<RMDIR3resok, RMDIR3resfail>;

// ---- RENAME (§3.3.14) ----

crate::xdr_struct! {
    /// `RENAME3args` (RFC 1813 §3.3.14).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct RENAME3args {
        /// The directory and the name of the entry to rename.
        pub from: diropargs3,
        /// The directory and the new name.
        pub to: diropargs3,
    }
}

crate::xdr_struct! {
    /// `RENAME3resok` (RFC 1813 §3.3.14).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct RENAME3resok {
        /// The source directory's attributes before and after the call.
        pub fromdir_wcc: wcc_data,
        /// The target directory's attributes before and after the call.
        pub todir_wcc: wcc_data,
    }
}

crate::xdr_struct! {
    /// `RENAME3resfail` (RFC 1813 §3.3.14).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct RENAME3resfail {
        /// The source directory's attributes before and after the call.
        pub fromdir_wcc: wcc_data,
        /// The target directory's attributes before and after the call.
        pub todir_wcc: wcc_data,
    }
}

/// `RENAME3res` (RFC 1813 §3.3.14).
pub type RENAME3res = Nfs3Result<RENAME3resok, RENAME3resfail>;

// ---- LINK (§3.3.15) ----

crate::xdr_struct! {
    /// `LINK3args` (RFC 1813 §3.3.15): make `link` a new name for `file`.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct LINK3args {
        /// The file handle of the existing file.
        pub file: nfs_fh3,
        /// The directory and the name of the new link.
        pub link: diropargs3,
    }
}

crate::xdr_struct! {
    /// `LINK3resok` (RFC 1813 §3.3.15).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct LINK3resok {
        /// The file's attributes.
        pub file_attributes: post_op_attr,
        /// The link directory's attributes before and after the call.
        pub linkdir_wcc: wcc_data,
    }
}

crate::xdr_struct! {
    /// `LINK3resfail` (RFC 1813 §3.3.15).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct LINK3resfail {
        /// The file's attributes.
        pub file_attributes: post_op_attr,
        /// The link directory's attributes before and after the call.
        pub linkdir_wcc: wcc_data,
    }
}

/// `LINK3res` (RFC 1813 §3.3.15).
pub type LINK3res = Nfs3Result<LINK3resok, LINK3resfail>;

// ---- READDIR (§3.3.16) ----

crate::xdr_struct! {
    /// `READDIR3args` (RFC 1813 §3.3.16). `count` bounds the whole `READDIR3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READDIR3args {
        /// The file handle of the directory.
        pub dir: nfs_fh3,
        /// Where the listing resumes: 0 for the start, else the cookie of the last entry received.
        pub cookie: cookie3,
        /// The cookie verifier the server returned with that cookie (zero at the start).
        pub cookieverf: cookieverf3,
        /// The most bytes of the whole READDIR3resok the client accepts.
        pub count: count3,
    }
}

crate::xdr_struct! {
    /// `entry3` (RFC 1813 §3.3.16), without the list's `nextentry` link: inside a [`dirlist3`]
    /// each entry costs `encoded_len()` plus [`DIRLIST_ENTRY_OVERHEAD`].
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct entry3 {
        /// The file id (inode number) of the entry.
        pub fileid: fileid3,
        /// The name of the entry.
        pub name: filename3,
        /// The cookie that resumes the listing after this entry.
        pub cookie: cookie3,
    }
}

impl entry3 {
    /// `encoded_len()` of an entry whose name is `name_len` bytes, for budgeting before the
    /// entry is built.
    pub const fn encoded_len_for(name_len: usize) -> usize {
        8 + opaque_len(name_len) + 8
    }
}

/// `dirlist3` (RFC 1813 §3.3.16): the entries as an XDR linked list, then `eof`. Its encoded size
/// is the sum over entries of `encoded_len() + DIRLIST_ENTRY_OVERHEAD`, plus
/// [`DIRLIST_TRAILER_LEN`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct dirlist3 {
    /// The entries, in directory order.
    pub entries: Vec<entry3>,
    /// Whether the last entry of the directory is in this reply.
    pub eof: bool,
}

impl Xdr for dirlist3 {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(dirlist3 { entries: r.list("dirlist3", MAX_DIR_ENTRIES, entry3::decode)?, eof: r.bool()? })
    }
    fn encode(&self, w: &mut BytesMut) {
        encode_list(&self.entries, w);
        w.put_xdr_bool(self.eof);
    }
    fn encoded_len(&self) -> usize {
        list_len(&self.entries) + 4
    }
}

crate::xdr_struct! {
    /// `READDIR3resok` (RFC 1813 §3.3.16).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READDIR3resok {
        /// The directory's attributes.
        pub dir_attributes: post_op_attr,
        /// The cookie verifier to send back with this reply's cookies.
        pub cookieverf: cookieverf3,
        /// The entries and the end-of-directory flag.
        pub reply: dirlist3,
    }
}

/// `READDIR3resfail` (RFC 1813 §3.3.16): `dir_attributes`.
pub type READDIR3resfail = post_op_attr;
/// `READDIR3res` (RFC 1813 §3.3.16).
pub type READDIR3res = Nfs3Result<READDIR3resok, READDIR3resfail>;

// ---- READDIRPLUS (§3.3.17) ----

crate::xdr_struct! {
    /// `READDIRPLUS3args` (RFC 1813 §3.3.17). `dircount` bounds the directory information
    /// (see [`entryplus3::dircount_len`]); `maxcount` bounds the whole `READDIRPLUS3resok`.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READDIRPLUS3args {
        /// The file handle of the directory.
        pub dir: nfs_fh3,
        /// Where the listing resumes: 0 for the start, else the cookie of the last entry received.
        pub cookie: cookie3,
        /// The cookie verifier the server returned with that cookie (zero at the start).
        pub cookieverf: cookieverf3,
        /// The most bytes of directory information (file ids, names, cookies) the client wants.
        pub dircount: count3,
        /// The most bytes of the whole READDIRPLUS3resok the client accepts.
        pub maxcount: count3,
    }
}

crate::xdr_struct! {
    /// `entryplus3` (RFC 1813 §3.3.17), without the list's `nextentry` link: inside a
    /// [`dirlistplus3`] each entry costs `encoded_len()` plus [`DIRLIST_ENTRY_OVERHEAD`].
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct entryplus3 {
        /// The file id (inode number) of the entry.
        pub fileid: fileid3,
        /// The name of the entry.
        pub name: filename3,
        /// The cookie that resumes the listing after this entry.
        pub cookie: cookie3,
        /// The entry's attributes, if the server returns them.
        pub name_attributes: post_op_attr,
        /// The entry's file handle, if the server returns it.
        pub name_handle: post_op_fh3,
    }
}

impl entryplus3 {
    /// The bytes of this entry that count against READDIRPLUS `dircount`: the directory
    /// information alone (fileid, name, cookie), without attributes and handle (RFC 1813
    /// §3.3.17). Equal to `entry3::encoded_len_for(name.len())`.
    pub fn dircount_len(&self) -> usize {
        entry3::encoded_len_for(self.name.0.len())
    }
}

/// `dirlistplus3` (RFC 1813 §3.3.17): like [`dirlist3`], with [`entryplus3`] entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct dirlistplus3 {
    /// The entries, in directory order.
    pub entries: Vec<entryplus3>,
    /// Whether the last entry of the directory is in this reply.
    pub eof: bool,
}

impl Xdr for dirlistplus3 {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(dirlistplus3 {
            entries: r.list("dirlistplus3", MAX_DIR_ENTRIES, entryplus3::decode)?,
            eof: r.bool()?,
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        encode_list(&self.entries, w);
        w.put_xdr_bool(self.eof);
    }
    fn encoded_len(&self) -> usize {
        list_len(&self.entries) + 4
    }
}

crate::xdr_struct! {
    /// `READDIRPLUS3resok` (RFC 1813 §3.3.17).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct READDIRPLUS3resok {
        /// The directory's attributes.
        pub dir_attributes: post_op_attr,
        /// The cookie verifier to send back with this reply's cookies.
        pub cookieverf: cookieverf3,
        /// The entries and the end-of-directory flag.
        pub reply: dirlistplus3,
    }
}

/// `READDIRPLUS3resfail` (RFC 1813 §3.3.17): `dir_attributes`.
pub type READDIRPLUS3resfail = post_op_attr;
/// `READDIRPLUS3res` (RFC 1813 §3.3.17).
pub type READDIRPLUS3res = Nfs3Result<READDIRPLUS3resok, READDIRPLUS3resfail>;

/// Encodes entries as an XDR linked list: `TRUE` before each, `FALSE` at the end.
fn encode_list<T: Xdr>(entries: &[T], w: &mut BytesMut) {
    for e in entries {
        w.put_xdr_bool(true);
        e.encode(w);
    }
    w.put_xdr_bool(false);
}

/// Encoded size of [`encode_list`]'s output; with `eof` it makes [`DIRLIST_TRAILER_LEN`].
fn list_len<T: Xdr>(entries: &[T]) -> usize {
    entries.iter().map(|e| e.encoded_len() + DIRLIST_ENTRY_OVERHEAD).sum::<usize>()
        + (DIRLIST_TRAILER_LEN - 4)
}

// ---- FSSTAT (§3.3.18) ----

crate::xdr_struct! {
    /// `FSSTAT3args` (RFC 1813 §3.3.18).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct FSSTAT3args {
        /// A file handle on the file system asked about.
        pub fsroot: nfs_fh3,
    }
}

crate::xdr_struct! {
    /// `FSSTAT3resok` (RFC 1813 §3.3.18): total, free and available-to-caller bytes and file
    /// slots, and how long (seconds) the figures stay valid.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct FSSTAT3resok {
        /// The object's attributes.
        pub obj_attributes: post_op_attr,
        /// Total size of the file system in bytes.
        pub tbytes: size3,
        /// Free bytes.
        pub fbytes: size3,
        /// Free bytes available to the caller.
        pub abytes: size3,
        /// Total file slots (inodes).
        pub tfiles: size3,
        /// Free file slots.
        pub ffiles: size3,
        /// Free file slots available to the caller.
        pub afiles: size3,
        /// Seconds for which these figures are not expected to change (0: they may change at any time).
        pub invarsec: u32,
    }
}

/// `FSSTAT3resfail` (RFC 1813 §3.3.18): `obj_attributes`.
pub type FSSTAT3resfail = post_op_attr;
/// `FSSTAT3res` (RFC 1813 §3.3.18).
pub type FSSTAT3res = Nfs3Result<FSSTAT3resok, FSSTAT3resfail>;

// ---- FSINFO (§3.3.19) ----

crate::xdr_struct! {
    /// `FSINFO3args` (RFC 1813 §3.3.19).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct FSINFO3args {
        /// A file handle on the file system asked about.
        pub fsroot: nfs_fh3,
    }
}

crate::xdr_struct! {
    /// `FSINFO3resok` (RFC 1813 §3.3.19); `properties` is a mask of the `FSF3_*` bits.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct FSINFO3resok {
        /// The object's attributes.
        pub obj_attributes: post_op_attr,
        /// The largest READ count the server accepts.
        pub rtmax: u32,
        /// The preferred READ count.
        pub rtpref: u32,
        /// The suggested multiple of READ counts.
        pub rtmult: u32,
        /// The largest WRITE count the server accepts.
        pub wtmax: u32,
        /// The preferred WRITE count.
        pub wtpref: u32,
        /// The suggested multiple of WRITE counts.
        pub wtmult: u32,
        /// The preferred READDIR count.
        pub dtpref: u32,
        /// The largest file size the server supports.
        pub maxfilesize: size3,
        /// The granularity of the server's file times.
        pub time_delta: nfstime3,
        /// The `FSF3_*` properties of the file system.
        pub properties: u32,
    }
}

/// `FSINFO3resfail` (RFC 1813 §3.3.19): `obj_attributes`.
pub type FSINFO3resfail = post_op_attr;
/// `FSINFO3res` (RFC 1813 §3.3.19).
pub type FSINFO3res = Nfs3Result<FSINFO3resok, FSINFO3resfail>;

// ---- PATHCONF (§3.3.20) ----

crate::xdr_struct! {
    /// `PATHCONF3args` (RFC 1813 §3.3.20).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct PATHCONF3args {
        /// The file handle of the object.
        pub object: nfs_fh3,
    }
}

crate::xdr_struct! {
    /// `PATHCONF3resok` (RFC 1813 §3.3.20).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct PATHCONF3resok {
        /// The object's attributes.
        pub obj_attributes: post_op_attr,
        /// The most hard links a file may have.
        pub linkmax: u32,
        /// The longest file name, in bytes.
        pub name_max: u32,
        /// Whether longer names are refused rather than truncated.
        pub no_trunc: bool,
        /// Whether only a privileged user may change a file's owner.
        pub chown_restricted: bool,
        /// Whether names are compared without regard to case.
        pub case_insensitive: bool,
        /// Whether the case of names is kept as given.
        pub case_preserving: bool,
    }
}

/// `PATHCONF3resfail` (RFC 1813 §3.3.20): `obj_attributes`.
pub type PATHCONF3resfail = post_op_attr;
/// `PATHCONF3res` (RFC 1813 §3.3.20).
pub type PATHCONF3res = Nfs3Result<PATHCONF3resok, PATHCONF3resfail>;

// ---- COMMIT (§3.3.21) ----

crate::xdr_struct! {
    /// `COMMIT3args` (RFC 1813 §3.3.21); `count == 0` means "to the end of the file".
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct COMMIT3args {
        /// The file handle of the file.
        pub file: nfs_fh3,
        /// Where the range to commit starts.
        pub offset: offset3,
        /// How many bytes to commit (0: up to the end of the file).
        pub count: count3,
    }
}

crate::xdr_struct! {
    /// `COMMIT3resok` (RFC 1813 §3.3.21).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct COMMIT3resok {
        /// The file's attributes before and after the call.
        pub file_wcc: wcc_data,
        /// The write verifier: it changes when data acknowledged as UNSTABLE may have been lost.
        pub verf: writeverf3,
    }
}

/// `COMMIT3resfail` (RFC 1813 §3.3.21): `file_wcc`.
pub type COMMIT3resfail = wcc_data;
/// `COMMIT3res` (RFC 1813 §3.3.21).
pub type COMMIT3res = Nfs3Result<COMMIT3resok, COMMIT3resfail>;
