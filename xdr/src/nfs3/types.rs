//! The NFS v3 basic data types (RFC 1813 §2.5 and §2.6): status codes, file types, handles,
//! names, times, attributes, settable attributes and weak cache consistency data.

use bytes::BytesMut;

use crate::codec::{Reader, Result, Xdr};

use super::{COOKIEVERFSIZE, CREATEVERFSIZE, FHSIZE, MAX_NAME_DECODED, MAX_PATH_DECODED, WRITEVERFSIZE};

/// `uint64` (RFC 1813 §2.5).
pub type uint64 = u64;
/// `uint32` (RFC 1813 §2.5).
pub type uint32 = u32;
/// `fileid3` (RFC 1813 §2.5): the file's unique number within its file system.
pub type fileid3 = u64;
/// `cookie3` (RFC 1813 §2.5): a READDIR resume position.
pub type cookie3 = u64;
/// `uid3` (RFC 1813 §2.5).
pub type uid3 = u32;
/// `gid3` (RFC 1813 §2.5).
pub type gid3 = u32;
/// `size3` (RFC 1813 §2.5).
pub type size3 = u64;
/// `offset3` (RFC 1813 §2.5).
pub type offset3 = u64;
/// `mode3` (RFC 1813 §2.5): permission and file-type bits, as in `st_mode` without the type.
pub type mode3 = u32;
/// `count3` (RFC 1813 §2.5).
pub type count3 = u32;

/// `cookieverf3` (RFC 1813 §2.5): validates READDIR cookies across calls.
pub type cookieverf3 = [u8; COOKIEVERFSIZE];
/// `createverf3` (RFC 1813 §2.5): the exclusive CREATE verifier.
pub type createverf3 = [u8; CREATEVERFSIZE];
/// `writeverf3` (RFC 1813 §2.5): changes when unstable writes may have been lost.
pub type writeverf3 = [u8; WRITEVERFSIZE];

crate::xdr_opaque! {
    /// `filename3` (RFC 1813 §2.5): one path component. Names up to [`MAX_NAME_DECODED`] bytes
    /// decode; the server serves names of at most [`MAX_NAME`](super::MAX_NAME).
    pub struct filename3(max = MAX_NAME_DECODED)
}

crate::xdr_opaque! {
    /// `nfspath3` (RFC 1813 §2.5): a symbolic link's target. Targets up to [`MAX_PATH_DECODED`]
    /// bytes decode; the server serves targets of at most [`MAX_PATH`](super::MAX_PATH).
    pub struct nfspath3(max = MAX_PATH_DECODED)
}

crate::xdr_opaque! {
    /// `nfs_fh3` (RFC 1813 §2.5): an opaque file handle of at most [`FHSIZE`] bytes.
    pub struct nfs_fh3(max = FHSIZE)
}

crate::xdr_enum! {
    /// `nfsstat3` (RFC 1813 §2.6): the status of every procedure result.
    pub enum nfsstat3 {
        /// Success.
        NFS3_OK = 0,
        /// Not owner: the caller is neither privileged nor the owner.
        NFS3ERR_PERM = 1,
        /// No such file or directory.
        NFS3ERR_NOENT = 2,
        /// A hard I/O error.
        NFS3ERR_IO = 5,
        /// No such device or address.
        NFS3ERR_NXIO = 6,
        /// Permission denied.
        NFS3ERR_ACCES = 13,
        /// The file exists.
        NFS3ERR_EXIST = 17,
        /// A hard link across file systems.
        NFS3ERR_XDEV = 18,
        /// No such device.
        NFS3ERR_NODEV = 19,
        /// Not a directory.
        NFS3ERR_NOTDIR = 20,
        /// Is a directory.
        NFS3ERR_ISDIR = 21,
        /// An invalid or unsupported argument.
        NFS3ERR_INVAL = 22,
        /// The file would grow too large.
        NFS3ERR_FBIG = 27,
        /// No space left on the device.
        NFS3ERR_NOSPC = 28,
        /// A change on a read-only file system.
        NFS3ERR_ROFS = 30,
        /// Too many hard links.
        NFS3ERR_MLINK = 31,
        /// A name is too long.
        NFS3ERR_NAMETOOLONG = 63,
        /// The directory is not empty.
        NFS3ERR_NOTEMPTY = 66,
        /// Quota exceeded.
        NFS3ERR_DQUOT = 69,
        /// The handle names an object that no longer exists or is no longer exported.
        NFS3ERR_STALE = 70,
        /// Too many levels of remote in the path.
        NFS3ERR_REMOTE = 71,
        /// The handle failed internal consistency checks.
        NFS3ERR_BADHANDLE = 10001,
        /// SETATTR's guard did not match the object's ctime.
        NFS3ERR_NOT_SYNC = 10002,
        /// A READDIR or READDIRPLUS cookie is stale.
        NFS3ERR_BAD_COOKIE = 10003,
        /// The operation is not supported.
        NFS3ERR_NOTSUPP = 10004,
        /// The buffer or request is too small.
        NFS3ERR_TOOSMALL = 10005,
        /// A failure on the server with no better status.
        NFS3ERR_SERVERFAULT = 10006,
        /// An object of a type the server does not support.
        NFS3ERR_BADTYPE = 10007,
        /// The request started but cannot finish in time: retry later.
        NFS3ERR_JUKEBOX = 10008,
    }
}

impl nfsstat3 {
    /// Every status, in RFC order.
    pub const ALL: [nfsstat3; 29] = [
        nfsstat3::NFS3_OK,
        nfsstat3::NFS3ERR_PERM,
        nfsstat3::NFS3ERR_NOENT,
        nfsstat3::NFS3ERR_IO,
        nfsstat3::NFS3ERR_NXIO,
        nfsstat3::NFS3ERR_ACCES,
        nfsstat3::NFS3ERR_EXIST,
        nfsstat3::NFS3ERR_XDEV,
        nfsstat3::NFS3ERR_NODEV,
        nfsstat3::NFS3ERR_NOTDIR,
        nfsstat3::NFS3ERR_ISDIR,
        nfsstat3::NFS3ERR_INVAL,
        nfsstat3::NFS3ERR_FBIG,
        nfsstat3::NFS3ERR_NOSPC,
        nfsstat3::NFS3ERR_ROFS,
        nfsstat3::NFS3ERR_MLINK,
        nfsstat3::NFS3ERR_NAMETOOLONG,
        nfsstat3::NFS3ERR_NOTEMPTY,
        nfsstat3::NFS3ERR_DQUOT,
        nfsstat3::NFS3ERR_STALE,
        nfsstat3::NFS3ERR_REMOTE,
        nfsstat3::NFS3ERR_BADHANDLE,
        nfsstat3::NFS3ERR_NOT_SYNC,
        nfsstat3::NFS3ERR_BAD_COOKIE,
        nfsstat3::NFS3ERR_NOTSUPP,
        nfsstat3::NFS3ERR_TOOSMALL,
        nfsstat3::NFS3ERR_SERVERFAULT,
        nfsstat3::NFS3ERR_BADTYPE,
        nfsstat3::NFS3ERR_JUKEBOX,
    ];
}

crate::xdr_enum! {
    /// `ftype3` (RFC 1813 §2.5): the type of a file system object.
    pub enum ftype3 {
        /// A regular file.
        NF3REG = 1,
        /// A directory.
        NF3DIR = 2,
        /// A block device.
        NF3BLK = 3,
        /// A character device.
        NF3CHR = 4,
        /// A symbolic link.
        NF3LNK = 5,
        /// A socket.
        NF3SOCK = 6,
        /// A named pipe.
        NF3FIFO = 7,
    }
}

crate::xdr_enum! {
    /// `stable_how` (RFC 1813 §3.3.7): how durable a WRITE must be before the reply.
    pub enum stable_how {
        /// The server may reply before the data is on stable storage; COMMIT makes it so.
        UNSTABLE = 0,
        /// The data, and the metadata needed to read it back, are on stable storage.
        DATA_SYNC = 1,
        /// The data and all metadata are on stable storage.
        FILE_SYNC = 2,
    }
}

crate::xdr_enum! {
    /// `createmode3` (RFC 1813 §3.3.8): the discriminant of [`createhow3`].
    pub enum createmode3 {
        /// Create, or use the existing file.
        UNCHECKED = 0,
        /// Create, failing with NFS3ERR_EXIST if the name exists.
        GUARDED = 1,
        /// Create once, identified by a verifier, so a retransmission finds its own file.
        EXCLUSIVE = 2,
    }
}

crate::xdr_enum! {
    /// `time_how` (RFC 1813 §2.6): the discriminant of `set_atime`/`set_mtime` ([`SetTime`]).
    pub enum time_how {
        /// Leave the time as it is.
        DONT_CHANGE = 0,
        /// Set it to the server's current time.
        SET_TO_SERVER_TIME = 1,
        /// Set it to the client's value.
        SET_TO_CLIENT_TIME = 2,
    }
}

crate::xdr_struct! {
    /// `specdata3` (RFC 1813 §2.5): major and minor device numbers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct specdata3 {
        /// The major device number.
        pub specdata1: u32,
        /// The minor device number.
        pub specdata2: u32,
    }
}

crate::xdr_struct! {
    /// `nfstime3` (RFC 1813 §2.5): seconds and nanoseconds since the epoch.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct nfstime3 {
        /// Seconds since 1970-01-01 00:00 UTC.
        pub seconds: u32,
        /// Nanoseconds within that second.
        pub nseconds: u32,
    }
}

crate::xdr_struct! {
    /// `fattr3` (RFC 1813 §2.6): a file's attributes; always 84 bytes on the wire.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct fattr3 {
        /// The file type (`type` in the RFC).
        pub type_: ftype3,
        /// The permission bits, with setuid, setgid and sticky.
        pub mode: mode3,
        /// The number of hard links.
        pub nlink: u32,
        /// The owner.
        pub uid: uid3,
        /// The group.
        pub gid: gid3,
        /// The size in bytes.
        pub size: size3,
        /// The bytes of disk space the file takes.
        pub used: size3,
        /// The device numbers of a block or character device.
        pub rdev: specdata3,
        /// The file system id.
        pub fsid: u64,
        /// The file id (inode number), unique within the file system.
        pub fileid: fileid3,
        /// The time of the last access.
        pub atime: nfstime3,
        /// The time the data last changed.
        pub mtime: nfstime3,
        /// The time the attributes last changed.
        pub ctime: nfstime3,
    }
}

impl fattr3 {
    /// Encoded size of every `fattr3` (RFC 1813 §2.6).
    pub const ENCODED_LEN: usize = 84;
}

/// `post_op_attr` (RFC 1813 §2.6): attributes returned after an operation, when available.
pub type post_op_attr = Option<fattr3>;

crate::xdr_struct! {
    /// `wcc_attr` (RFC 1813 §2.6): the subset of attributes captured before an operation.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct wcc_attr {
        /// The size in bytes.
        pub size: size3,
        /// The time the data last changed.
        pub mtime: nfstime3,
        /// The time the attributes last changed.
        pub ctime: nfstime3,
    }
}

/// `pre_op_attr` (RFC 1813 §2.6): attributes captured before an operation, when available.
pub type pre_op_attr = Option<wcc_attr>;

crate::xdr_struct! {
    /// `wcc_data` (RFC 1813 §2.6): weak cache consistency data, before and after a change.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct wcc_data {
        /// The attributes before the operation, if the server took them.
        pub before: pre_op_attr,
        /// The attributes after the operation.
        pub after: post_op_attr,
    }
}

/// `post_op_fh3` (RFC 1813 §2.6): the handle of a new object, when the server returns it.
pub type post_op_fh3 = Option<nfs_fh3>;

/// `set_mode3` (RFC 1813 §2.6): `bool set_it` then the mode when set.
pub type set_mode3 = Option<mode3>;
/// `set_uid3` (RFC 1813 §2.6).
pub type set_uid3 = Option<uid3>;
/// `set_gid3` (RFC 1813 §2.6).
pub type set_gid3 = Option<gid3>;
/// `set_size3` (RFC 1813 §2.6).
pub type set_size3 = Option<size3>;

/// `set_atime` and `set_mtime` (RFC 1813 §2.6): a union on [`time_how`] that leaves the time
/// alone, sets it to the server's clock, or sets it to the client's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetTime {
    /// [`time_how::DONT_CHANGE`].
    #[default]
    DontChange,
    /// [`time_how::SET_TO_SERVER_TIME`].
    ServerTime,
    /// [`time_how::SET_TO_CLIENT_TIME`], with the time.
    ClientTime(nfstime3),
}

/// `set_atime` (RFC 1813 §2.6).
pub type set_atime = SetTime;
/// `set_mtime` (RFC 1813 §2.6).
pub type set_mtime = SetTime;

impl SetTime {
    /// The union's discriminant.
    pub fn how(&self) -> time_how {
        match self {
            SetTime::DontChange => time_how::DONT_CHANGE,
            SetTime::ServerTime => time_how::SET_TO_SERVER_TIME,
            SetTime::ClientTime(_) => time_how::SET_TO_CLIENT_TIME,
        }
    }
}

impl Xdr for SetTime {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(match time_how::decode(r)? {
            time_how::DONT_CHANGE => SetTime::DontChange,
            time_how::SET_TO_SERVER_TIME => SetTime::ServerTime,
            time_how::SET_TO_CLIENT_TIME => SetTime::ClientTime(nfstime3::decode(r)?),
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        self.how().encode(w);
        if let SetTime::ClientTime(t) = self {
            t.encode(w);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + if let SetTime::ClientTime(t) = self { t.encoded_len() } else { 0 }
    }
}

crate::xdr_struct! {
    /// `sattr3` (RFC 1813 §2.6): the attributes a client asks to set; `None`/`DontChange`
    /// leaves a field unchanged. `Default` changes nothing.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct sattr3 {
        /// The new permission bits, if they change.
        pub mode: set_mode3,
        /// The new owner, if it changes.
        pub uid: set_uid3,
        /// The new group, if it changes.
        pub gid: set_gid3,
        /// The new size, if it changes.
        pub size: set_size3,
        /// How the access time changes.
        pub atime: set_atime,
        /// How the modification time changes.
        pub mtime: set_mtime,
    }
}

crate::xdr_struct! {
    /// `diropargs3` (RFC 1813 §2.6): a name within a directory.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct diropargs3 {
        /// The file handle of the directory.
        pub dir: nfs_fh3,
        /// The name in it.
        pub name: filename3,
    }
}

/// `sattrguard3` (RFC 1813 §3.3.2): SETATTR applies only if the object's ctime equals this.
pub type sattrguard3 = Option<nfstime3>;

/// `createhow3` (RFC 1813 §3.3.8): a union on [`createmode3`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum createhow3 {
    /// [`createmode3::UNCHECKED`], with the initial attributes.
    UNCHECKED(sattr3),
    /// [`createmode3::GUARDED`], with the initial attributes.
    GUARDED(sattr3),
    /// [`createmode3::EXCLUSIVE`], with the verifier.
    EXCLUSIVE(createverf3),
}

impl createhow3 {
    /// The union's discriminant.
    pub fn mode(&self) -> createmode3 {
        match self {
            createhow3::UNCHECKED(_) => createmode3::UNCHECKED,
            createhow3::GUARDED(_) => createmode3::GUARDED,
            createhow3::EXCLUSIVE(_) => createmode3::EXCLUSIVE,
        }
    }
}

impl Xdr for createhow3 {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(match createmode3::decode(r)? {
            createmode3::UNCHECKED => createhow3::UNCHECKED(sattr3::decode(r)?),
            createmode3::GUARDED => createhow3::GUARDED(sattr3::decode(r)?),
            createmode3::EXCLUSIVE => createhow3::EXCLUSIVE(createverf3::decode(r)?),
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        self.mode().encode(w);
        match self {
            createhow3::UNCHECKED(a) | createhow3::GUARDED(a) => a.encode(w),
            createhow3::EXCLUSIVE(v) => v.encode(w),
        }
    }
    fn encoded_len(&self) -> usize {
        4 + match self {
            createhow3::UNCHECKED(a) | createhow3::GUARDED(a) => a.encoded_len(),
            createhow3::EXCLUSIVE(v) => v.encoded_len(),
        }
    }
}

crate::xdr_struct! {
    /// `symlinkdata3` (RFC 1813 §3.3.10): a new symbolic link's attributes and target.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct symlinkdata3 {
        /// The initial attributes of the link.
        pub symlink_attributes: sattr3,
        /// The text of the link.
        pub symlink_data: nfspath3,
    }
}

crate::xdr_struct! {
    /// `devicedata3` (RFC 1813 §3.3.11): a new device node's attributes and device numbers.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct devicedata3 {
        /// The initial attributes of the device file.
        pub dev_attributes: sattr3,
        /// The major and minor device numbers.
        pub spec: specdata3,
    }
}

/// `mknoddata3` (RFC 1813 §3.3.11): a union on [`ftype3`]. Character and block devices carry
/// device data, sockets and FIFOs carry attributes, and every other type is the void arm, kept as
/// `Other` so the server can answer `NFS3ERR_BADTYPE`. `Other` must hold `NF3REG`, `NF3DIR` or
/// `NF3LNK`; any other type would encode a body-less arm that decodes differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum mknoddata3 {
    /// A character device.
    CHR(devicedata3),
    /// A block device.
    BLK(devicedata3),
    /// A socket, with its attributes.
    SOCK(sattr3),
    /// A named pipe, with its attributes.
    FIFO(sattr3),
    /// A type MKNOD does not create.
    Other(ftype3),
}

impl mknoddata3 {
    /// The union's discriminant.
    pub fn type_(&self) -> ftype3 {
        match self {
            mknoddata3::CHR(_) => ftype3::NF3CHR,
            mknoddata3::BLK(_) => ftype3::NF3BLK,
            mknoddata3::SOCK(_) => ftype3::NF3SOCK,
            mknoddata3::FIFO(_) => ftype3::NF3FIFO,
            mknoddata3::Other(t) => *t,
        }
    }
}

impl Xdr for mknoddata3 {
    fn decode(r: &mut Reader) -> Result<Self> {
        Ok(match ftype3::decode(r)? {
            ftype3::NF3CHR => mknoddata3::CHR(devicedata3::decode(r)?),
            ftype3::NF3BLK => mknoddata3::BLK(devicedata3::decode(r)?),
            ftype3::NF3SOCK => mknoddata3::SOCK(sattr3::decode(r)?),
            ftype3::NF3FIFO => mknoddata3::FIFO(sattr3::decode(r)?),
            t @ (ftype3::NF3REG | ftype3::NF3DIR | ftype3::NF3LNK) => mknoddata3::Other(t),
        })
    }
    fn encode(&self, w: &mut BytesMut) {
        debug_assert!(
            !matches!(
                self,
                mknoddata3::Other(ftype3::NF3CHR | ftype3::NF3BLK | ftype3::NF3SOCK | ftype3::NF3FIFO)
            ),
            "mknoddata3::Other with a type whose arm has a body"
        );
        self.type_().encode(w);
        match self {
            mknoddata3::CHR(d) | mknoddata3::BLK(d) => d.encode(w),
            mknoddata3::SOCK(a) | mknoddata3::FIFO(a) => a.encode(w),
            mknoddata3::Other(_) => {}
        }
    }
    fn encoded_len(&self) -> usize {
        4 + match self {
            mknoddata3::CHR(d) | mknoddata3::BLK(d) => d.encoded_len(),
            mknoddata3::SOCK(a) | mknoddata3::FIFO(a) => a.encoded_len(),
            mknoddata3::Other(_) => 0,
        }
    }
}
