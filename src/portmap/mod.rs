//! The portmapper (RFC 1833): an embedded PMAP v2 / RPCBIND v3/v4 service answering from a
//! [`Registry`] of this server's programs, and a synchronous client that registers them with a
//! system rpcbind instead (`--portmap register`).
//!
//! The server registers its own services, including the portmapper itself (program 100000,
//! versions 2..=4) so that `rpcinfo -p` lists it as rpcbind does. Programs it does not serve
//! (NFS_ACL 100227, NLM 100021, LOCALIO 400122) are never registered, so clients that probe them
//! are told "not registered" (port 0, empty address).

pub mod client;
pub mod registry;
pub mod service;

pub use client::{
    PmapClient, RpcbindTarget, Service, find_system, register_with, register_with_system,
    registered_elsewhere, system_targets, unregister_with,
};
pub use registry::{Registration, Registry, VersionMatch};
pub use service::PortmapService;
