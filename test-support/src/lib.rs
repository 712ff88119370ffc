//! Test support shared by rnfsd's integration tests, the fault proxy's tests and the benchmark:
//! one place for what they all need, so that a new program's test client (NLM, NSM) is written
//! once, here.
//!
//! - [`wire`]: ONC RPC messages as bytes: call headers, TCP record marking (blocking and tokio),
//!   reply parsing, AUTH_SYS credentials, datagrams.
//! - [`net`]: connections from a chosen loopback source address or a privileged port.
//! - [`client`]: a synchronous RPC client with typed NFS v3 and MOUNT v3 calls.
//! - [`nlm`]: an NLM v4 and NSM v1 client host (its own loopback address, caller name, owners).
//! - [`callback`]: what a client host serves for lock callbacks: a portmapper, NLM and NSM that
//!   record the GRANTED, `_RES` and SM_NOTIFY calls they receive.
//! - [`hostlock`]: a host process's OFD locks on an exported file.
//! - [`nfs`]: small NFS v3 argument and result helpers.
//! - [`records`]: a raw tokio TCP connection speaking record marking.
//! - [`process`]: a spawned binary whose stderr is read line by line.
//! - [`wait`]: polling for a condition with a bounded deadline, instead of sleeping and hoping.
//! - [`server`] (feature `server`): rnfsd in this process over a temporary export.
//!
//! It is a crate of its own (like h2's `tests/h2-support`) so that every test binary and the
//! benchmark link the same code; with the `server` feature off it does not build rnfsd.

pub mod callback;
pub mod client;
pub mod hostlock;
pub mod net;
pub mod nfs;
pub mod nlm;
pub mod process;
pub mod records;
#[cfg(feature = "server")]
pub mod server;
pub mod wait;
pub mod wire;

pub use client::Client;
pub use nfs::{dirop, name, ok, status};
#[cfg(feature = "server")]
pub use server::{TestServer, TestServerBuilder};
pub use wait::{poll_until, wait_until, wait_until_async};
pub use wire::{
    MOUNT, NFS, PORTMAP, RpcFailure, auth_sys, auth_sys_named, call_header, call_message, parse_reply,
    read_record, record, reply_xid,
};
