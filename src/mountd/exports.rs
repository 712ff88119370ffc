//! Exports: the exports(5) file format, the CLI shorthand, and matching a client address to the
//! options it gets.

use std::net::IpAddr;
use std::path::PathBuf;

/// Which callers are mapped to the anonymous uid/gid (exports(5) root_squash, all_squash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squash {
    /// no_root_squash: every uid is taken as sent.
    None,
    /// root_squash (the default): uid 0 and gid 0 become anonuid/anongid.
    Root,
    /// all_squash: every uid and gid become anonuid/anongid.
    All,
}

/// The options one client gets for one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// `ro` (default) / `rw`.
    pub read_only: bool,
    pub squash: Squash,
    /// `anonuid=` / `anongid=`, default 65534.
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// `secure` (default): requests must come from a source port below 1024.
    pub secure: bool,
    /// `sync` (default) / `async`: with async, stable WRITEs and COMMIT do not wait for the disk.
    pub sync: bool,
    /// `nordirplus`: READDIRPLUS answers NFS3ERR_NOTSUPP.
    pub no_readdirplus: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            read_only: true,
            squash: Squash::Root,
            anon_uid: 65534,
            anon_gid: 65534,
            secure: true,
            sync: true,
            no_readdirplus: false,
        }
    }
}

/// Who a client rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMatch {
    /// `*` or an empty client (everyone).
    Any,
    /// A single address (IPv4 or IPv6), or a host name resolved when the exports were loaded.
    Addrs(Vec<IpAddr>),
    /// `addr/len` or `addr/dotted-mask`.
    Network { addr: IpAddr, prefix: u8 },
    /// A host name pattern with `*`, `?` (matched against the reverse lookup of the peer).
    Wildcard(String),
}

/// One `client(options)` item of an exports line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    /// The client as written, for the banner and showmount.
    pub text: String,
    pub matcher: ClientMatch,
    pub options: ExportOptions,
}

/// One exported directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// The absolute, canonical path on the host.
    pub path: PathBuf,
    /// `fsid=` when given; otherwise the server assigns one and persists it in the state dir.
    pub fsid: Option<u64>,
    pub clients: Vec<ClientRule>,
    /// Where it was defined (`file:line`, or `command line`), for error messages.
    pub origin: String,
}
