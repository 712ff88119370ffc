//! NFS version 3 wire types (RFC 1813): every argument and result of the 22 procedures, with
//! hand-written codecs. The server decodes `XXX3args` and encodes `XXX3res`; test clients do the
//! opposite, so every type both encodes and decodes.
//!
//! Conventions, which code in `src/nfsd` and the test client relies on:
//!
//! - RFC 1813 names are kept (`fattr3`, `WRITE3args`, `NFS3ERR_STALE`), with fields named as in
//!   the RFC. Rust keywords get a trailing underscore (`fattr3::type_`, `CREATE3args::where_`).
//! - Optional data and `bool set_it` + value unions encode identically, so both are `Option<T>`
//!   aliases: [`post_op_attr`], [`pre_op_attr`], [`post_op_fh3`], [`sattrguard3`], [`set_mode3`],
//!   [`set_uid3`], [`set_gid3`], [`set_size3`]. `set_atime`/`set_mtime` are [`SetTime`].
//! - Every procedure result is one generic union, [`Nfs3Result<T, F>`]: the `nfsstat3` status
//!   word, then `T` (the `XXX3resok`) when it is `NFS3_OK`, else `F` (the `XXX3resfail`). Every
//!   procedure has `XXX3resok`, `XXX3resfail` and `XXX3res = Nfs3Result<XXX3resok, XXX3resfail>`.
//!   Where the RFC's resfail body is a single `post_op_attr` or `wcc_data`, `XXX3resfail` is a type
//!   alias for that type (e.g. `LOOKUP3resfail = post_op_attr`, `WRITE3resfail = wcc_data`,
//!   `GETATTR3resfail = ()`), so a failure is built as `Nfs3Result::Err(status, attrs)`. Only
//!   RENAME and LINK, whose failure bodies have two fields, have resfail structs. Single-field
//!   `XXX3resok` bodies stay structs, to keep the RFC field names.
//! - NULL takes and returns `()` (void).
//! - READ and WRITE data is a `Bytes` slice of the received record (zero copy), bounded by
//!   [`MAX_DATA`].
//! - READDIR(PLUS) entry lists are XDR linked lists: each entry is preceded by a `TRUE` word and
//!   the list ends with `FALSE`, then `eof`. [`entry3`] and [`entryplus3`] have their own codecs so
//!   the server can budget a reply with `encoded_len()` per entry plus
//!   [`DIRLIST_ENTRY_OVERHEAD`] each and [`DIRLIST_TRAILER_LEN`] once.

#![allow(non_camel_case_types, clippy::upper_case_acronyms)]

mod ops;
mod result;
#[cfg(test)]
mod tests;
mod types;

pub use ops::*;
pub use result::Nfs3Result;
pub use types::*;

/// NFS program number (RFC 1813 §1.2, `NFS_PROGRAM`).
pub const PROGRAM: u32 = 100003;
/// The protocol version this module implements (RFC 1813 §1.2, `NFS_V3`).
pub const VERSION: u32 = 3;

/// Maximum file handle size in bytes (RFC 1813 §2.4, `NFS3_FHSIZE`).
pub const FHSIZE: usize = 64;
/// Size of the READDIR cookie verifier (RFC 1813 §2.4, `NFS3_COOKIEVERFSIZE`).
pub const COOKIEVERFSIZE: usize = 8;
/// Size of the exclusive CREATE verifier (RFC 1813 §2.4, `NFS3_CREATEVERFSIZE`).
pub const CREATEVERFSIZE: usize = 8;
/// Size of the WRITE/COMMIT verifier (RFC 1813 §2.4, `NFS3_WRITEVERFSIZE`).
pub const WRITEVERFSIZE: usize = 8;
/// Longest name served. RFC 1813 leaves `filename3` unbounded (§2.5); 255 is the POSIX
/// `NAME_MAX` every Linux filesystem shares, and what PATHCONF reports. A longer name decodes
/// (up to [`MAX_NAME_DECODED`]) and the procedure answers NFS3ERR_NAMETOOLONG.
pub const MAX_NAME: usize = 255;
/// Longest symlink target served. RFC 1813 §2.5 leaves `nfspath3` unbounded; Linux allows
/// targets shorter than `PATH_MAX` (4096 bytes with the NUL), and knfsd's `NFS3_MAXPATHLEN` is the
/// same `PATH_MAX`. A longer target decodes (up to [`MAX_PATH_DECODED`]) and SYMLINK answers
/// NFS3ERR_NAMETOOLONG.
pub const MAX_PATH: usize = 4096;
/// Longest `filename3` the decoder takes: a name longer than a whole path (`PATH_MAX`) is no name
/// any client means, and is undecodable (GARBAGE_ARGS). Between [`MAX_NAME`] and this, the
/// procedures answer NFS3ERR_NAMETOOLONG with the directory's attributes, as RFC 1813 §3.3 has
/// it. The bound costs nothing: the name is a slice of the received record, never a copy.
pub const MAX_NAME_DECODED: usize = 4096;
/// Longest `nfspath3` the decoder takes (a UDP datagram's worth); over [`MAX_PATH`] SYMLINK
/// answers NFS3ERR_NAMETOOLONG.
pub const MAX_PATH_DECODED: usize = 65_536;
/// Largest READ or WRITE payload (the `rtmax`/`wtmax` FSINFO advertises, RFC 1813 §3.3.19), and
/// so the bound on READ/WRITE opaque data.
pub const MAX_DATA: usize = 1 << 20;
/// Bound on READDIR(PLUS) list length when decoding; the input size bounds it first in practice.
pub const MAX_DIR_ENTRIES: usize = 1 << 20;

/// Bytes the linked-list encoding adds before each READDIR(PLUS) entry (the `TRUE` "value
/// follows" word), on top of the entry's own `encoded_len()`.
pub const DIRLIST_ENTRY_OVERHEAD: usize = 4;
/// Bytes a `dirlist3`/`dirlistplus3` spends after its entries: the terminating `FALSE` and `eof`.
pub const DIRLIST_TRAILER_LEN: usize = 8;

/// Procedure numbers (RFC 1813 §3.2 and the program definition in §3.3).
pub mod procs {
    /// Does nothing: a ping (§3.3.0).
    pub const NULL: u32 = 0;
    /// Gets a file's attributes (§3.3.1).
    pub const GETATTR: u32 = 1;
    /// Sets a file's attributes (§3.3.2).
    pub const SETATTR: u32 = 2;
    /// Looks a name up in a directory (§3.3.3).
    pub const LOOKUP: u32 = 3;
    /// Checks access rights (§3.3.4).
    pub const ACCESS: u32 = 4;
    /// Reads a symbolic link (§3.3.5).
    pub const READLINK: u32 = 5;
    /// Reads from a file (§3.3.6).
    pub const READ: u32 = 6;
    /// Writes to a file (§3.3.7).
    pub const WRITE: u32 = 7;
    /// Creates a regular file (§3.3.8).
    pub const CREATE: u32 = 8;
    /// Creates a directory (§3.3.9).
    pub const MKDIR: u32 = 9;
    /// Creates a symbolic link (§3.3.10).
    pub const SYMLINK: u32 = 10;
    /// Creates a special file: device, socket or FIFO (§3.3.11).
    pub const MKNOD: u32 = 11;
    /// Removes a file (§3.3.12).
    pub const REMOVE: u32 = 12;
    /// Removes a directory (§3.3.13).
    pub const RMDIR: u32 = 13;
    /// Renames a file or directory (§3.3.14).
    pub const RENAME: u32 = 14;
    /// Creates a hard link (§3.3.15).
    pub const LINK: u32 = 15;
    /// Reads directory entries (§3.3.16).
    pub const READDIR: u32 = 16;
    /// Reads directory entries with their attributes and handles (§3.3.17).
    pub const READDIRPLUS: u32 = 17;
    /// Gets dynamic file system information: space and file slots (§3.3.18).
    pub const FSSTAT: u32 = 18;
    /// Gets static file system information: transfer sizes, properties (§3.3.19).
    pub const FSINFO: u32 = 19;
    /// Gets POSIX pathconf information (§3.3.20).
    pub const PATHCONF: u32 = 20;
    /// Commits cached data to stable storage (§3.3.21).
    pub const COMMIT: u32 = 21;

    /// Every procedure's RFC name, indexed by procedure number.
    pub const NAMES: [&str; 22] = [
        "NULL",
        "GETATTR",
        "SETATTR",
        "LOOKUP",
        "ACCESS",
        "READLINK",
        "READ",
        "WRITE",
        "CREATE",
        "MKDIR",
        "SYMLINK",
        "MKNOD",
        "REMOVE",
        "RMDIR",
        "RENAME",
        "LINK",
        "READDIR",
        "READDIRPLUS",
        "FSSTAT",
        "FSINFO",
        "PATHCONF",
        "COMMIT",
    ];

    /// The RFC name of procedure `proc_`, or `None` when NFS v3 does not define it.
    pub fn name(proc_: u32) -> Option<&'static str> {
        NAMES.get(proc_ as usize).copied()
    }
}

/// ACCESS permission bits (RFC 1813 §3.3.4). Read data from a file or read a directory.
pub const ACCESS3_READ: u32 = 0x0001;
/// Look up a name in a directory.
pub const ACCESS3_LOOKUP: u32 = 0x0002;
/// Rewrite existing file data or modify existing directory entries.
pub const ACCESS3_MODIFY: u32 = 0x0004;
/// Write new data or add directory entries.
pub const ACCESS3_EXTEND: u32 = 0x0008;
/// Delete an existing directory entry.
pub const ACCESS3_DELETE: u32 = 0x0010;
/// Execute a file (no meaning for a directory).
pub const ACCESS3_EXECUTE: u32 = 0x0020;

/// FSINFO `properties` bits (RFC 1813 §3.3.19). The file system supports hard links.
pub const FSF3_LINK: u32 = 0x0001;
/// The file system supports symbolic links.
pub const FSF3_SYMLINK: u32 = 0x0002;
/// PATHCONF answers the same for every file of the file system.
pub const FSF3_HOMOGENEOUS: u32 = 0x0008;
/// SETATTR can set file times.
pub const FSF3_CANSETTIME: u32 = 0x0010;
