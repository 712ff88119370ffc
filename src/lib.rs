//! rnfsd: a userspace NFSv3 server.
//!
//! Layers, with dependencies pointing one way (`xdr` ← `rpc` ← programs ← `fs`):
//!
//! - `xdr` (workspace crate): sans-IO wire types and codecs.
//! - [`rpc`]: transports (TCP record marking, UDP), the dispatch table, credentials, the
//!   duplicate-request cache and reply building.
//! - [`exports`]: the exports configuration (model, exports(5) parser, client matching). It
//!   belongs to no program: `mountd`, `nfsd` and `fs` all read it.
//! - [`portmap`]: the embedded portmapper (PMAP v2, RPCBIND v3/v4) and registration with a
//!   system rpcbind.
//! - [`mountd`]: the MOUNT service and errno → mountstat3.
//! - [`nfsd`]: the NFS v3 procedures, errno → nfsstat3, the write verifier and readdir cookies.
//! - [`fs`]: the host filesystem backend: file handles, attributes, open files, credentials. Its
//!   `sys` module is the only place with `unsafe`.
//! - [`config`] and [`server`]: CLI-independent configuration and the process that serves it
//!   (startup, binding, portmapper registration, housekeeping, banner, log reports, shutdown).
//! - [`logsafe`]: how client-supplied bytes are shown in log lines (escaped, quoted).
#![deny(unsafe_code)]

pub mod config;
pub mod exports;
pub mod fs;
pub mod logsafe;
pub mod mountd;
pub mod nfsd;
pub mod nlm;
pub mod portmap;
pub mod rpc;
pub mod server;
