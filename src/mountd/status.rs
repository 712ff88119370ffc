//! The one table from host errors (`errno`) to MOUNT status codes (`mountstat3`), the MOUNT
//! counterpart of [`nfsd::status`](crate::nfsd::status). MNT's backend maps the error that kept it
//! from making a root handle through [`mount_status`]; anything the table does not name is a
//! server fault.

use std::io;

use super::MountStat;

/// The MOUNT status for the error that kept MNT from making a handle.
pub fn mount_status(e: &io::Error) -> MountStat {
    match e.raw_os_error() {
        Some(libc::ENOENT) => MountStat::NoEnt,
        Some(libc::ENOTDIR) => MountStat::NotDir,
        Some(libc::EACCES) => MountStat::Access,
        Some(libc::EPERM) => MountStat::Perm,
        Some(libc::ENAMETOOLONG) => MountStat::NameTooLong,
        Some(libc::EINVAL) => MountStat::Inval,
        Some(libc::EIO) => MountStat::Io,
        _ => MountStat::ServerFault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_errors_map_to_mountstat() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(mount_status(&e(libc::ENOENT)), MountStat::NoEnt);
        assert_eq!(mount_status(&e(libc::ENOTDIR)), MountStat::NotDir);
        assert_eq!(mount_status(&e(libc::EACCES)), MountStat::Access);
        assert_eq!(mount_status(&e(libc::EXDEV)), MountStat::ServerFault);
    }
}
