//! rnfsd: a userspace NFSv3 server.
//!
//! Layers, with dependencies pointing one way (`xdr` ← `rpc` ← programs ← `fs`):
//!
//! - `xdr` (workspace crate): sans-IO wire types and codecs.
//! - [`rpc`]: transports (TCP record marking, UDP), the dispatch table, credentials, the
//!   duplicate-request cache and reply building.
//! - [`portmap`]: the embedded portmapper (PMAP v2, RPCBIND v3/v4) and registration with a
//!   system rpcbind.
//! - [`mountd`]: the MOUNT service, the exports file and client matching.
//! - [`nfsd`]: the NFS v3 procedures, errno → nfsstat3, the write verifier and readdir cookies.
//! - [`fs`]: the host filesystem backend: file handles, attributes, open files, credentials. Its
//!   `sys` module is the only place with `unsafe`.
//! - [`config`] and [`server`]: CLI-independent configuration and the process that serves it.
//! - [`logsafe`]: how client-supplied bytes are shown in log lines (escaped, quoted).
#![deny(unsafe_code)]

pub mod config;
pub mod fs;
pub mod logsafe;
pub mod mountd;
pub mod nfsd;
pub mod portmap;
pub mod rpc;
pub mod server;
