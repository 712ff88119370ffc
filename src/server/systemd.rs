//! Readiness and stop notices to the service manager (systemd's `Type=notify`, sd_notify(3)):
//! `READY=1` with a `STATUS=` line once every socket is bound and the banner printed, and
//! `STOPPING=1` when shutdown begins, so `systemctl start` returns only when clients can mount
//! and units ordered after rnfsd start only then. Without `NOTIFY_SOCKET` nothing is sent.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the Unix socket NOTIFY_SOCKET names: a
//! path, or, after a leading `@`, a name in the abstract namespace, which is how systemd passes
//! it to services in many setups (and always to containers it runs). It is written here with
//! std's Unix sockets: the sd-notify crate (0.5) connects to the name as a path, so an abstract
//! socket fails with ENOENT, and libsystemd would bring a second nix, serde and crypto crates for
//! these ten lines.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use super::Server;

/// Tells the service manager the server is serving, with what it serves.
pub(super) fn ready(server: &Server) {
    let exports = server.nfs.exports().list().len();
    let plural = if exports == 1 { "" } else { "s" };
    send(&format!("READY=1\nSTATUS=serving {exports} export{plural} on {}\n", server.addrs.nfs_tcp));
}

/// Tells the service manager shutdown has begun (requests in flight may still take a while).
pub(super) fn stopping() {
    send("STOPPING=1\nSTATUS=shutting down\n");
}

/// Sends `message` when NOTIFY_SOCKET is set. A failure is logged and otherwise ignored: serving
/// matters more than the notice, and systemd reports a start that never became ready itself.
fn send(message: &str) {
    let Some(name) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send_to(name.as_bytes(), message) {
        tracing::warn!(socket = %crate::logsafe::escaped(name.as_bytes()), "cannot notify the service manager: {e}");
    }
}

fn send_to(name: &[u8], message: &str) -> io::Result<()> {
    let addr = match name.strip_prefix(b"@") {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name)?
        }
        None => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(name))?,
    };
    let sent = UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr)?;
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "notice cut short"))
    }
}
