//! Procedures on directory entries: LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME
//! and LINK. Every name is one component looked up or created with a `*at` call relative to the
//! directory's descriptor, as the caller, so nothing can reach outside the directory and the
//! kernel applies permissions and assigns ownership.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, makedev, mkdirat, mknodat};
use nix::unistd::{UnlinkatFlags, linkat, symlinkat, unlinkat};
use xdr::nfs3::*;

use super::NfsService;
use super::fattr::{fattr, nfstime, post_op, wcc};
use super::meta::{SattrScope, apply_sattr, proc_fd_path, stat};
use super::request::{Caller, Object, Res, Stop, Unresolved, component, is_dot, require_dir, st};
use crate::fs::sys::{self, TimeSet};
use crate::fs::{Export, FileType};
use crate::rpc::CallContext;

/// Default modes when a client leaves `mode` unset (Linux clients always set it).
const DEFAULT_FILE_MODE: u32 = 0o644;
const DEFAULT_DIR_MODE: u32 = 0o755;

fn open_path(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, nfsstat3> {
    openat(dir, name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()).map_err(st)
}

pub fn lookup(svc: &NfsService, ctx: &CallContext, args: LOOKUP3args) -> Res<LOOKUP3resok, post_op_attr> {
    let name = component(&args.what.name)?;
    let dir = svc.resolve(ctx, &args.what.dir)?;
    let export = &dir.res.export;
    let result = (|| {
        require_dir(&dir.res.attr)?;
        let name = name.as_ref().map_err(|&s| s)?;
        let child = dir.caller.run(|| {
            svc.exports.lookup(export, dir.res.fd.as_fd(), &dir.res.attr, name.as_bytes()).map_err(st)
        })?;
        let attr = stat(child.as_fd())?;
        // The directory may have left the export since it was resolved: its `..` must not.
        if name.as_bytes() == b".." {
            svc.exports.check_parent(export, child.as_fd(), &attr, dir.res.depth).map_err(st)?;
        }
        // A filesystem mounted inside the export is not part of it (no `crossmnt`).
        let handle =
            svc.exports.handle_for_fd(export, child.as_fd(), &attr).map_err(|e| match e.raw_os_error() {
                Some(libc::EXDEV) => nfsstat3::NFS3ERR_ACCES,
                _ => st(e),
            })?;
        Ok((handle, attr))
    })();
    let dir_attributes = post_op(export, dir.res.fd.as_fd());
    Ok(match result {
        Ok((handle, attr)) => Nfs3Result::Ok(LOOKUP3resok {
            object: nfs_fh3(handle),
            obj_attributes: Some(fattr(export, &attr)),
            dir_attributes,
        }),
        Err(s) => Nfs3Result::Err(s, dir_attributes),
    })
}

/// The reply parts for a newly created (or found) entry `name` in `dir`.
fn new_entry(
    svc: &NfsService,
    export: &Export,
    dir: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    name: &CStr,
) -> (post_op_fh3, post_op_attr) {
    let handle = svc.exports.handle_at(export, dir, name, 0).ok().map(nfs_fh3);
    (handle, post_op(export, fd))
}

/// The shared shape of CREATE, MKDIR, SYMLINK and MKNOD: check the directory and the name, run
/// `make` as the caller to create the entry (it returns a descriptor of the new object), and
/// answer with its handle, attributes and the directory's wcc data.
fn create_entry(
    svc: &NfsService,
    ctx: &CallContext,
    where_: &diropargs3,
    make: impl FnOnce(&Object, &CStr) -> Result<OwnedFd, nfsstat3>,
) -> Res<CREATE3resok, wcc_data> {
    let name = component(&where_.name)?;
    let dir = svc.resolve(ctx, &where_.dir)?;
    let export = &dir.res.export;
    let pre = &dir.res.attr;
    let result = (|| {
        dir.caller.check_writable()?;
        require_dir(pre)?;
        let name = name.as_ref().map_err(|&s| s)?;
        if is_dot(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        let fd = make(&dir, name)?;
        svc.listings.forget(export.fsid, pre);
        Ok(new_entry(svc, export, dir.res.fd.as_fd(), fd.as_fd(), name))
    })();
    let dir_wcc = wcc(export, Some(pre), dir.res.fd.as_fd());
    Ok(match result {
        Ok((obj, obj_attributes)) => Nfs3Result::Ok(CREATE3resok { obj, obj_attributes, dir_wcc }),
        Err(s) => Nfs3Result::Err(s, dir_wcc),
    })
}

/// Applies the attributes a new object was created with, besides the mode it was created with.
fn finish_new(caller: &Caller, fd: &OwnedFd, sattr: &sattr3, scope: SattrScope) -> Result<(), nfsstat3> {
    let wants_more = sattr.uid.is_some()
        || sattr.gid.is_some()
        || sattr.size.is_some_and(|s| s != 0)
        || sattr.atime != SetTime::DontChange
        || sattr.mtime != SetTime::DontChange;
    if !wants_more {
        return Ok(());
    }
    let attr = stat(fd.as_fd())?;
    let rest = sattr3 { mode: None, size: sattr.size.filter(|&s| s != 0), ..sattr.clone() };
    apply_sattr(caller, fd.as_fd(), &attr, &rest, scope)
}

/// The EXCLUSIVE create verifier as the (mtime, atime) seconds it is stored in, like knfsd: the
/// verifier survives server restarts with the file, and the client replaces both times with a
/// SETATTR right after the create succeeds (RFC 1813 §3.3.8).
fn verifier_times(verf: &createverf3) -> (u32, u32) {
    let mtime = u32::from_be_bytes(verf[0..4].try_into().expect("4 bytes")) & 0x7fff_ffff;
    let atime = u32::from_be_bytes(verf[4..8].try_into().expect("4 bytes")) & 0x7fff_ffff;
    (mtime, atime)
}

fn mknod_regular(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> nix::Result<()> {
    mknodat(dir, name, SFlag::S_IFREG, Mode::from_bits_truncate(mode & 0o7777), 0)
}

pub fn create(svc: &NfsService, ctx: &CallContext, args: CREATE3args) -> Res<CREATE3resok, wcc_data> {
    create_entry(svc, ctx, &args.where_, |dir, name| {
        let dirfd = dir.res.fd.as_fd();
        match &args.how {
            createhow3::UNCHECKED(sattr) | createhow3::GUARDED(sattr) => {
                let guarded = matches!(args.how, createhow3::GUARDED(_));
                let (fd, created) = dir.caller.run(|| {
                    let created = match mknod_regular(dirfd, name, sattr.mode.unwrap_or(DEFAULT_FILE_MODE)) {
                        Ok(()) => true,
                        Err(nix::errno::Errno::EEXIST) if !guarded => false,
                        Err(e) => return Err(st(e)),
                    };
                    Ok((open_path(dirfd, name)?, created))
                })?;
                if created {
                    finish_new(&dir.caller, &fd, sattr, SattrScope::AllButMode)?;
                } else {
                    // UNCHECKED over an existing regular file: only the size applies.
                    let attr = stat(fd.as_fd())?;
                    if attr.file_type != FileType::Regular {
                        return Err(nfsstat3::NFS3ERR_EXIST);
                    }
                    apply_sattr(&dir.caller, fd.as_fd(), &attr, sattr, SattrScope::SizeOnly)?;
                }
                Ok(fd)
            }
            createhow3::EXCLUSIVE(verf) => {
                let (mtime, atime) = verifier_times(verf);
                dir.caller.run(|| {
                    let created = match mknod_regular(dirfd, name, 0o600) {
                        Ok(()) => true,
                        Err(nix::errno::Errno::EEXIST) => false,
                        Err(e) => return Err(st(e)),
                    };
                    let fd = open_path(dirfd, name)?;
                    if created {
                        sys::set_times_fd(
                            fd.as_fd(),
                            TimeSet::At(i64::from(atime), 0),
                            TimeSet::At(i64::from(mtime), 0),
                        )
                        .map_err(st)?;
                        return Ok(fd);
                    }
                    // A retransmission of the create that made this file finds its verifier.
                    let attr = stat(fd.as_fd())?;
                    let same = attr.file_type == FileType::Regular
                        && nfstime(attr.mtime).seconds == mtime
                        && nfstime(attr.atime).seconds == atime
                        && attr.size == 0;
                    if same { Ok(fd) } else { Err(nfsstat3::NFS3ERR_EXIST) }
                })
            }
        }
    })
}

pub fn mkdir(svc: &NfsService, ctx: &CallContext, args: MKDIR3args) -> Res<CREATE3resok, wcc_data> {
    create_entry(svc, ctx, &args.where_, |dir, name| {
        let dirfd = dir.res.fd.as_fd();
        let sattr = &args.attributes;
        let fd = dir.caller.run(|| {
            let mode = sattr.mode.unwrap_or(DEFAULT_DIR_MODE) & 0o7777;
            mkdirat(dirfd, name, Mode::from_bits_truncate(mode)).map_err(st)?;
            open_path(dirfd, name)
        })?;
        // A directory has no size to set.
        let rest = sattr3 { size: None, ..sattr.clone() };
        finish_new(&dir.caller, &fd, &rest, SattrScope::AllButMode)?;
        Ok(fd)
    })
}

pub fn symlink(svc: &NfsService, ctx: &CallContext, args: SYMLINK3args) -> Res<CREATE3resok, wcc_data> {
    let target = args.symlink.symlink_data.as_bytes();
    let target = match CString::new(target) {
        Ok(t) if t.as_bytes().len() > MAX_PATH => Err(nfsstat3::NFS3ERR_NAMETOOLONG),
        Ok(t) if !t.as_bytes().is_empty() => Ok(t),
        _ => Err(nfsstat3::NFS3ERR_INVAL),
    };
    create_entry(svc, ctx, &args.where_, |dir, name| {
        let target = target?;
        let dirfd = dir.res.fd.as_fd();
        let fd = dir.caller.run(|| {
            symlinkat(target.as_c_str(), dirfd, name).map_err(st)?;
            open_path(dirfd, name)
        })?;
        let rest = sattr3 { size: None, ..args.symlink.symlink_attributes.clone() };
        finish_new(&dir.caller, &fd, &rest, SattrScope::AllButMode)?;
        Ok(fd)
    })
}

pub fn mknod(svc: &NfsService, ctx: &CallContext, args: MKNOD3args) -> Res<CREATE3resok, wcc_data> {
    create_entry(svc, ctx, &args.where_, |dir, name| {
        let (kind, sattr, dev) = match &args.what {
            mknoddata3::CHR(d) => (SFlag::S_IFCHR, &d.dev_attributes, Some(d.spec)),
            mknoddata3::BLK(d) => (SFlag::S_IFBLK, &d.dev_attributes, Some(d.spec)),
            mknoddata3::SOCK(a) => (SFlag::S_IFSOCK, a, None),
            mknoddata3::FIFO(a) => (SFlag::S_IFIFO, a, None),
            mknoddata3::Other(_) => return Err(nfsstat3::NFS3ERR_BADTYPE),
        };
        // Device nodes need CAP_MKNOD, which knfsd keeps only for callers mapped to root.
        if dev.is_some() && dir.caller.identity.uid != 0 {
            return Err(nfsstat3::NFS3ERR_PERM);
        }
        let rdev = dev.map_or(0, |d| makedev(u64::from(d.specdata1), u64::from(d.specdata2)));
        let dirfd = dir.res.fd.as_fd();
        let fd = dir.caller.run(|| {
            let mode = Mode::from_bits_truncate(sattr.mode.unwrap_or(DEFAULT_FILE_MODE) & 0o7777);
            mknodat(dirfd, name, kind, mode, rdev).map_err(st)?;
            open_path(dirfd, name)
        })?;
        let rest = sattr3 { size: None, ..sattr.clone() };
        finish_new(&dir.caller, &fd, &rest, SattrScope::AllButMode)?;
        Ok(fd)
    })
}

/// The open-file and resolved-handle caches hold descriptors by handle; an entry that is unlinked
/// must not be kept open (its space would not be freed), so its cached descriptors are dropped.
fn forget_open_file(svc: &NfsService, export: &Export, dir: BorrowedFd<'_>, name: &CStr) -> impl FnOnce() {
    let handle = svc.exports.handle_at(export, dir, name, 0).ok();
    move || {
        if let Some(h) = handle {
            svc.files.remove(&h);
            svc.exports.forget_handle(&h);
        }
    }
}

/// What REMOVE and RMDIR take away: an entry that is not a directory (unlink(2)), or a directory
/// (rmdir(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    NonDirectory,
    Directory,
}

fn remove_entry(
    svc: &NfsService,
    ctx: &CallContext,
    object: &diropargs3,
    removal: Removal,
) -> Result<(Result<(), nfsstat3>, wcc_data), Stop> {
    let name = component(&object.name)?;
    let dir = svc.resolve(ctx, &object.dir)?;
    let export = &dir.res.export;
    let pre = &dir.res.attr;
    let result = (|| {
        dir.caller.check_writable()?;
        require_dir(pre)?;
        let name = name.as_ref().map_err(|&s| s)?;
        match (name.as_bytes(), removal) {
            // rmdir(2)'s answers for these names; unlink of them is refused like knfsd does.
            (b".", Removal::Directory) => return Err(nfsstat3::NFS3ERR_INVAL),
            (b"..", Removal::Directory) => return Err(nfsstat3::NFS3ERR_NOTEMPTY),
            (b"." | b"..", Removal::NonDirectory) => return Err(nfsstat3::NFS3ERR_ACCES),
            _ => {}
        }
        let dirfd = dir.res.fd.as_fd();
        let forget = forget_open_file(svc, export, dirfd, name);
        let flag = match removal {
            Removal::NonDirectory => UnlinkatFlags::NoRemoveDir,
            Removal::Directory => UnlinkatFlags::RemoveDir,
        };
        dir.caller.run(|| unlinkat(dirfd, name.as_c_str(), flag).map_err(st))?;
        forget();
        svc.listings.forget(export.fsid, pre);
        Ok(())
    })();
    Ok((result, wcc(export, Some(pre), dir.res.fd.as_fd())))
}

pub fn remove(svc: &NfsService, ctx: &CallContext, args: REMOVE3args) -> Res<REMOVE3resok, wcc_data> {
    let (result, dir_wcc) = remove_entry(svc, ctx, &args.object, Removal::NonDirectory)?;
    Ok(match result {
        Ok(()) => Nfs3Result::Ok(REMOVE3resok { dir_wcc }),
        Err(s) => Nfs3Result::Err(s, dir_wcc),
    })
}

pub fn rmdir(svc: &NfsService, ctx: &CallContext, args: RMDIR3args) -> Res<RMDIR3resok, wcc_data> {
    let (result, dir_wcc) = remove_entry(svc, ctx, &args.object, Removal::Directory)?;
    Ok(match result {
        Ok(()) => Nfs3Result::Ok(RMDIR3resok { dir_wcc }),
        Err(s) => Nfs3Result::Err(s, dir_wcc),
    })
}

pub fn rename(svc: &NfsService, ctx: &CallContext, args: RENAME3args) -> Res<RENAME3resok, RENAME3resfail> {
    let from_name = component(&args.from.name)?;
    let to_name = component(&args.to.name)?;
    let from = svc.resolve(ctx, &args.from.dir)?;
    let to = match svc.resolve(ctx, &args.to.dir) {
        Ok(o) => o,
        Err(Unresolved(s)) => {
            let fromdir_wcc = wcc(&from.res.export, Some(&from.res.attr), from.res.fd.as_fd());
            let todir_wcc = wcc_data::default();
            return Ok(Nfs3Result::Err(s, RENAME3resfail { fromdir_wcc, todir_wcc }));
        }
    };
    let result = (|| {
        from.caller.check_writable()?;
        to.caller.check_writable()?;
        if from.res.export.fsid != to.res.export.fsid {
            return Err(nfsstat3::NFS3ERR_XDEV);
        }
        require_dir(&from.res.attr)?;
        require_dir(&to.res.attr)?;
        let from_name = from_name.as_ref().map_err(|&s| s)?;
        let to_name = to_name.as_ref().map_err(|&s| s)?;
        if is_dot(from_name) || is_dot(to_name) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let (fromfd, tofd) = (from.res.fd.as_fd(), to.res.fd.as_fd());
        let forget = forget_open_file(svc, &to.res.export, tofd, to_name);
        from.caller.run(|| renameat(fromfd, from_name.as_c_str(), tofd, to_name.as_c_str()).map_err(st))?;
        forget();
        svc.listings.forget(from.res.export.fsid, &from.res.attr);
        svc.listings.forget(to.res.export.fsid, &to.res.attr);
        Ok(())
    })();
    let fromdir_wcc = wcc(&from.res.export, Some(&from.res.attr), from.res.fd.as_fd());
    let todir_wcc = wcc(&to.res.export, Some(&to.res.attr), to.res.fd.as_fd());
    Ok(match result {
        Ok(()) => Nfs3Result::Ok(RENAME3resok { fromdir_wcc, todir_wcc }),
        Err(s) => Nfs3Result::Err(s, RENAME3resfail { fromdir_wcc, todir_wcc }),
    })
}

pub fn link(svc: &NfsService, ctx: &CallContext, args: LINK3args) -> Res<LINK3resok, LINK3resfail> {
    let name = component(&args.link.name)?;
    let file = svc.resolve(ctx, &args.file)?;
    let dir = match svc.resolve(ctx, &args.link.dir) {
        Ok(o) => o,
        Err(Unresolved(s)) => {
            let file_attributes = post_op(&file.res.export, file.res.fd.as_fd());
            return Ok(Nfs3Result::Err(
                s,
                LINK3resfail { file_attributes, linkdir_wcc: wcc_data::default() },
            ));
        }
    };
    let result = (|| {
        dir.caller.check_writable()?;
        if file.res.export.fsid != dir.res.export.fsid {
            return Err(nfsstat3::NFS3ERR_XDEV);
        }
        require_dir(&dir.res.attr)?;
        if file.res.attr.file_type == FileType::Directory {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        let name = name.as_ref().map_err(|&s| s)?;
        if is_dot(name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        // linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, which would skip the caller's
        // permission checks; the descriptor's /proc path links the same inode as the caller.
        let source = proc_fd_path(file.res.fd.as_fd());
        let dirfd = dir.res.fd.as_fd();
        dir.caller.run(|| {
            linkat(nix::fcntl::AT_FDCWD, source.as_str(), dirfd, name.as_c_str(), AtFlags::AT_SYMLINK_FOLLOW)
                .map_err(st)
        })?;
        svc.listings.forget(dir.res.export.fsid, &dir.res.attr);
        Ok(())
    })();
    let file_attributes = post_op(&file.res.export, file.res.fd.as_fd());
    let linkdir_wcc = wcc(&dir.res.export, Some(&dir.res.attr), dir.res.fd.as_fd());
    Ok(match result {
        Ok(()) => Nfs3Result::Ok(LINK3resok { file_attributes, linkdir_wcc }),
        Err(s) => Nfs3Result::Err(s, LINK3resfail { file_attributes, linkdir_wcc }),
    })
}
