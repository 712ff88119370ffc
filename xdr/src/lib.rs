//! Sans-IO wire types and hand-written XDR codecs (RFC 4506) for the programs rnfsd serves.
//!
//! - [`codec`]: the bounded [`Reader`], the [`Xdr`] trait, encoding helpers and codec macros.
//! - [`rpc`]: ONC RPC v2 messages, AUTH_NONE/AUTH_SYS and TCP record marking (RFC 5531).
//! - [`portmap`]: PMAP v2 and RPCBIND v3/v4 (RFC 1833).
//! - [`mount`]: MOUNT v1 and v3 (RFC 1813 appendix I, RFC 1094 appendix A).
//! - [`nfs3`]: every NFS v3 argument and result type (RFC 1813).
//! - [`nlm`]: the Network Lock Manager, version 4 (XNFS chapter 10).
//! - [`nsm`]: the Network Status Monitor, version 1 (XNFS chapter 11).
//!
//! Nothing here does I/O. RFC type names (`fattr3`, `WRITE3args`) are used only in this crate.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod codec;
pub mod mount;
pub mod nfs3;
pub mod nlm;
pub mod nsm;
pub mod portmap;
pub mod rpc;

pub use codec::{Reader, Result, Xdr, XdrError, XdrWrite, opaque_len, pad_len};
