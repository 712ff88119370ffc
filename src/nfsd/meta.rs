//! Procedures about one object's attributes and its filesystem: GETATTR, SETATTR, ACCESS,
//! READLINK, FSSTAT, FSINFO and PATHCONF. [`apply_sattr`] is shared with the procedures that
//! create objects.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::stat::{FchmodatFlags, Mode, fchmodat};
use nix::unistd::{Gid, Uid, fchownat};
use xdr::nfs3::*;

use super::NfsService;
use super::fattr::{fattr, nfstime, post_op, wcc};
use super::request::{Caller, Object, Res, st};
use crate::fs::attr::stat_fd;
use crate::fs::sys::{self, TimeSet};
use crate::fs::{Attr, FileType};
use crate::rpc::CallContext;

pub fn getattr(svc: &NfsService, ctx: &CallContext, args: GETATTR3args) -> Res<GETATTR3resok, ()> {
    let obj = svc.resolve(ctx, &args.object)?;
    Ok(Nfs3Result::Ok(GETATTR3resok { obj_attributes: fattr(&obj.res.export, &obj.res.attr) }))
}

/// The path through which a descriptor can be reopened or changed with path-based calls.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Which parts of a `sattr3` to apply; CREATE of an existing file applies only the size, and
/// SYMLINK never applies a mode (Linux symlinks have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SattrScope {
    All,
    AllButMode,
    SizeOnly,
}

/// Applies `sattr` to the object `fd` (an `O_PATH` descriptor whose attributes were `attr`), as
/// the caller: size first (owner override, as knfsd: the owner may truncate a file it made
/// read-only), then mode, ownership and times, each checked by the kernel. Every change runs
/// as the caller, so the kernel clears setuid/setgid bits as it would for that caller locally.
pub fn apply_sattr(
    caller: &Caller,
    fd: BorrowedFd<'_>,
    attr: &Attr,
    sattr: &sattr3,
    scope: SattrScope,
) -> Result<(), nfsstat3> {
    if let Some(size) = sattr.size {
        match attr.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(nfsstat3::NFS3ERR_ISDIR),
            _ => return Err(nfsstat3::NFS3ERR_INVAL),
        }
        let size = i64::try_from(size).map_err(|_| nfsstat3::NFS3ERR_FBIG)?;
        let path = proc_fd_path(fd);
        let for_writing = || std::fs::OpenOptions::new().write(true).open(&path);
        let as_caller = || caller.run(|| for_writing().map_err(st));
        let file = if caller.owns(attr.uid) {
            // The owner override: opened for writing at root, so no write bit is needed, then
            // truncated as the owner. Root without CAP_DAC_OVERRIDE gets no override: the
            // owner's own permission decides.
            match for_writing() {
                Ok(file) => file,
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => as_caller()?,
                Err(e) => return Err(st(e)),
            }
        } else {
            as_caller()?
        };
        caller.run(|| file.set_len(size as u64).map_err(st))?;
    }
    if scope == SattrScope::SizeOnly {
        return Ok(());
    }
    caller.run(|| {
        if let (Some(mode), SattrScope::All) = (sattr.mode, scope) {
            match sys::chmod_fd(fd, mode & 0o7777) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => fchmodat(
                    nix::fcntl::AT_FDCWD,
                    proc_fd_path(fd).as_str(),
                    Mode::from_bits_truncate(mode & 0o7777),
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(st)?,
                r => r.map_err(st)?,
            }
        }
        // Leaving out an unchanged owner keeps a non-root caller's "set my own uid" a no-op, as
        // knfsd does, instead of an EPERM from chown.
        let uid = sattr.uid.filter(|&u| u != attr.uid).map(Uid::from_raw);
        let gid = sattr.gid.filter(|&g| g != attr.gid).map(Gid::from_raw);
        if uid.is_some() || gid.is_some() {
            fchownat(fd, "", uid, gid, nix::fcntl::AtFlags::AT_EMPTY_PATH).map_err(st)?;
        }
        let time = |t: SetTime| match t {
            SetTime::DontChange => TimeSet::Omit,
            SetTime::ServerTime => TimeSet::Now,
            SetTime::ClientTime(t) => TimeSet::At(i64::from(t.seconds), t.nseconds),
        };
        let (atime, mtime) = (time(sattr.atime), time(sattr.mtime));
        if atime != TimeSet::Omit || mtime != TimeSet::Omit {
            sys::set_times_fd(fd, atime, mtime).map_err(st)?;
        }
        Ok(())
    })
}

pub fn setattr(svc: &NfsService, ctx: &CallContext, args: SETATTR3args) -> Res<SETATTR3resok, wcc_data> {
    let obj = svc.resolve(ctx, &args.object)?;
    let pre = &obj.res.attr;
    let result = (|| {
        obj.caller.check_writable()?;
        // RFC 1813 §3.3.2: the guard compares the client's idea of ctime with the server's.
        if let Some(guard) = args.guard
            && guard != nfstime(pre.ctime)
        {
            return Err(nfsstat3::NFS3ERR_NOT_SYNC);
        }
        apply_sattr(&obj.caller, obj.res.fd.as_fd(), pre, &args.new_attributes, SattrScope::All)
    })();
    let obj_wcc = wcc(&obj.res.export, Some(pre), obj.res.fd.as_fd());
    Ok(match result {
        Ok(()) => Nfs3Result::Ok(SETATTR3resok { obj_wcc }),
        Err(s) => Nfs3Result::Err(s, obj_wcc),
    })
}

/// The ACCESS bits the caller holds on `obj`, as the kernel judges them for the caller's
/// identity. Like knfsd, only the bits meaningful for the object's type can be granted
/// (LOOKUP and DELETE for directories, EXECUTE for the rest), and a read-only export grants no
/// modification.
fn access_bits(obj: &Object, wanted: u32) -> Result<u32, nfsstat3> {
    let is_dir = obj.res.attr.file_type == FileType::Directory;
    let checks: [(u32, i32, bool); 6] = [
        (ACCESS3_READ, libc::R_OK, true),
        (ACCESS3_LOOKUP, libc::X_OK, is_dir),
        (ACCESS3_EXECUTE, libc::X_OK, !is_dir),
        (ACCESS3_MODIFY, libc::W_OK, true),
        (ACCESS3_EXTEND, libc::W_OK, true),
        (ACCESS3_DELETE, libc::W_OK, is_dir),
    ];
    let read_only = obj.caller.options.read_only;
    obj.caller.run(|| {
        let mut granted = 0;
        for (bit, mode, applies) in checks {
            if wanted & bit == 0 || !applies {
                continue;
            }
            if read_only && mode == libc::W_OK {
                continue;
            }
            if sys::access_fd(obj.res.fd.as_fd(), mode).is_ok() {
                granted |= bit;
            }
        }
        Ok(granted)
    })
}

pub fn access(svc: &NfsService, ctx: &CallContext, args: ACCESS3args) -> Res<ACCESS3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.object)?;
    let attrs = Some(fattr(&obj.res.export, &obj.res.attr));
    Ok(match access_bits(&obj, args.access) {
        Ok(access) => Nfs3Result::Ok(ACCESS3resok { obj_attributes: attrs, access }),
        Err(s) => Nfs3Result::Err(s, attrs),
    })
}

pub fn readlink(
    svc: &NfsService,
    ctx: &CallContext,
    args: READLINK3args,
) -> Res<READLINK3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.symlink)?;
    let attrs = Some(fattr(&obj.res.export, &obj.res.attr));
    if obj.res.attr.file_type != FileType::Symlink {
        return Ok(Nfs3Result::Err(nfsstat3::NFS3ERR_INVAL, attrs));
    }
    Ok(match nix::fcntl::readlinkat(obj.res.fd.as_fd(), "") {
        Ok(target) if target.len() <= MAX_PATH => Nfs3Result::Ok(READLINK3resok {
            symlink_attributes: attrs,
            data: nfspath3(bytes::Bytes::copy_from_slice(target.as_bytes())),
        }),
        Ok(_) => Nfs3Result::Err(nfsstat3::NFS3ERR_NAMETOOLONG, attrs),
        Err(e) => Nfs3Result::Err(st(e), attrs),
    })
}

pub fn fsstat(svc: &NfsService, ctx: &CallContext, args: FSSTAT3args) -> Res<FSSTAT3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.fsroot)?;
    let attrs = Some(fattr(&obj.res.export, &obj.res.attr));
    Ok(match nix::sys::statvfs::fstatvfs(obj.res.fd.as_fd()) {
        Ok(v) => {
            let frsize = v.fragment_size();
            Nfs3Result::Ok(FSSTAT3resok {
                obj_attributes: attrs,
                tbytes: v.blocks().saturating_mul(frsize),
                fbytes: v.blocks_free().saturating_mul(frsize),
                abytes: v.blocks_available().saturating_mul(frsize),
                tfiles: v.files(),
                ffiles: v.files_free(),
                afiles: v.files_available(),
                // The filesystem can change at any moment.
                invarsec: 0,
            })
        }
        Err(e) => Nfs3Result::Err(st(e), attrs),
    })
}

pub fn fsinfo(svc: &NfsService, ctx: &CallContext, args: FSINFO3args) -> Res<FSINFO3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.fsroot)?;
    let max = svc.max_io_for(ctx);
    Ok(Nfs3Result::Ok(FSINFO3resok {
        obj_attributes: Some(fattr(&obj.res.export, &obj.res.attr)),
        rtmax: max,
        rtpref: max,
        rtmult: 4096,
        wtmax: max,
        wtpref: max,
        wtmult: 4096,
        dtpref: max.min(64 * 1024),
        maxfilesize: i64::MAX as u64,
        time_delta: nfstime3 { seconds: 0, nseconds: 1 },
        properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
    }))
}

pub fn pathconf(
    svc: &NfsService,
    ctx: &CallContext,
    args: PATHCONF3args,
) -> Res<PATHCONF3resok, post_op_attr> {
    let obj = svc.resolve(ctx, &args.object)?;
    let attrs = post_op(&obj.res.export, obj.res.fd.as_fd());
    let fd = obj.res.fd.as_fd();
    let linkmax = nix::unistd::fpathconf(fd, nix::unistd::PathconfVar::LINK_MAX)
        .ok()
        .flatten()
        .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
    let name_max = nix::sys::statvfs::fstatvfs(fd)
        .map(|v| u32::try_from(v.name_max()).unwrap_or(MAX_NAME as u32))
        .unwrap_or(MAX_NAME as u32)
        .min(MAX_NAME as u32);
    Ok(Nfs3Result::Ok(PATHCONF3resok {
        obj_attributes: attrs,
        linkmax,
        name_max,
        no_trunc: true,
        chown_restricted: true,
        case_insensitive: false,
        case_preserving: true,
    }))
}

/// Current attributes of an object by descriptor, for procedures that must have them.
pub fn stat(fd: BorrowedFd<'_>) -> Result<Attr, nfsstat3> {
    stat_fd(fd).map_err(st)
}
