//! Attributes in their wire forms: host [`Attr`] to `fattr3` (with the export's fsid and the
//! inode as fileid), weak cache consistency data, and NFS times.

use std::os::fd::BorrowedFd;

use xdr::nfs3::{fattr3, ftype3, nfstime3, post_op_attr, specdata3, wcc_attr, wcc_data};

use crate::fs::attr::stat_fd;
use crate::fs::{Attr, Export, FileType, Timestamp};

pub fn nfstime(t: Timestamp) -> nfstime3 {
    // nfstime3 seconds are unsigned 32-bit: times before 1970 or after 2106 wrap, as on knfsd.
    nfstime3 { seconds: t.seconds as u32, nseconds: t.nanos }
}

pub fn ftype(t: FileType) -> ftype3 {
    match t {
        FileType::Regular => ftype3::NF3REG,
        FileType::Directory => ftype3::NF3DIR,
        FileType::BlockDevice => ftype3::NF3BLK,
        FileType::CharDevice => ftype3::NF3CHR,
        FileType::Symlink => ftype3::NF3LNK,
        FileType::Socket => ftype3::NF3SOCK,
        FileType::Fifo => ftype3::NF3FIFO,
    }
}

pub fn fattr(export: &Export, a: &Attr) -> fattr3 {
    fattr3 {
        type_: ftype(a.file_type),
        mode: a.mode,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        used: a.used,
        rdev: specdata3 { specdata1: a.rdev_major, specdata2: a.rdev_minor },
        fsid: export.fsid,
        fileid: a.ino,
        atime: nfstime(a.atime),
        mtime: nfstime(a.mtime),
        ctime: nfstime(a.ctime),
    }
}

pub fn wcc_attr(a: &Attr) -> wcc_attr {
    wcc_attr { size: a.size, mtime: nfstime(a.mtime), ctime: nfstime(a.ctime) }
}

/// Current attributes of `fd`, or none when they cannot be read (post_op_attr is optional
/// precisely so a reply never fails for want of attributes).
pub fn post_op(export: &Export, fd: BorrowedFd<'_>) -> post_op_attr {
    stat_fd(fd).ok().map(|a| fattr(export, &a))
}

/// Weak cache consistency data: `pre` taken before the operation, the rest read now.
pub fn wcc(export: &Export, pre: Option<&Attr>, fd: BorrowedFd<'_>) -> wcc_data {
    wcc_data { before: pre.map(wcc_attr), after: post_op(export, fd) }
}
