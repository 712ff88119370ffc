//! rnfsd under a service manager: the sd_notify(3) readiness protocol of systemd's
//! `Type=notify`. A fake manager's datagram socket (a path, and a name in the abstract namespace,
//! as systemd gives them) is passed as NOTIFY_SOCKET: READY=1 with a STATUS= line arrives once the
//! NFS port answers, nothing more until SIGTERM, then STOPPING=1.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use rnfsd_test_support::process::{DEADLINE, Running};
use rnfsd_test_support::{call_message, record, wire};
use xdr::Xdr;
use xdr::rpc::{AcceptedStatus, OpaqueAuth, ReplyBody, ReplyHeader};

const BIN: &str = env!("CARGO_BIN_EXE_rnfsd");

/// Starts rnfsd on a fresh export with `NOTIFY_SOCKET` set to `notify_socket`.
fn start(tmp: &std::path::Path, notify_socket: &str) -> Running {
    let share = tmp.join("share");
    std::fs::create_dir(&share).unwrap();
    let state = tmp.join("state");
    Running::spawn(
        Command::new(BIN)
            .args(["serve", share.to_str().unwrap(), "--bind", "127.0.0.1", "--port", "0"])
            .args(["--mount-port", "0", "--portmap", "off", "--state-dir", state.to_str().unwrap()])
            .env("NOTIFY_SOCKET", notify_socket),
    )
}

/// The next notice on `socket`, split into its `KEY=VALUE` lines; panics after [`DEADLINE`].
fn notice(socket: &UnixDatagram) -> Vec<String> {
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notice in time");
    String::from_utf8(buf[..n].to_vec()).unwrap().lines().map(str::to_string).collect()
}

/// The NFS address from the banner's `nfs+mount  tcp ADDR` line, which precedes READY=1.
fn nfs_addr(server: &mut Running) -> SocketAddr {
    let listen = server.wait_for_line(|l| l.trim_start().starts_with("nfs+mount"));
    listen.split_whitespace().skip_while(|w| *w != "tcp").nth(1).unwrap().parse().unwrap()
}

/// An RPC NULL call to NFS v3 answers SUCCESS at `addr`.
fn nfs_answers(addr: SocketAddr) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&record(&call_message(7, 100_003, 3, 0, &OpaqueAuth::none(), &[]))).unwrap();
    let (_, body) = wire::read_fragment(&mut s).expect("a reply");
    let reply = ReplyHeader::from_bytes(&body).unwrap();
    assert!(matches!(reply.body, ReplyBody::Accepted { status: AcceptedStatus::Success, .. }));
}

/// The whole life as a manager sees it, on `socket` named `name` in NOTIFY_SOCKET.
fn ready_then_stopping(socket: UnixDatagram, name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = start(tmp.path(), name);
    let ready = notice(&socket);
    // The banner was printed before READY=1, and the port it names answers already.
    let addr = nfs_addr(&mut server);
    nfs_answers(addr);
    assert!(ready.contains(&"READY=1".to_string()), "{ready:?}");
    assert!(ready.contains(&format!("STATUS=serving 1 export on {addr}")), "{ready:?}");

    // Nothing else while serving.
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(socket.recv(&mut buf).is_err(), "a notice before any signal");
    socket.set_nonblocking(false).unwrap();

    server.signal(Signal::SIGTERM);
    let stopping = notice(&socket);
    assert!(stopping.contains(&"STOPPING=1".to_string()), "{stopping:?}");
    assert!(server.wait_exit().success());
}

#[test]
fn notify_socket_path_gets_ready_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    ready_then_stopping(socket, path.to_str().unwrap());
}

#[test]
fn abstract_notify_socket_gets_ready_then_stopping() {
    use std::os::linux::net::SocketAddrExt;
    // systemd names its socket `@/org/freedesktop/systemd1/notify/...`: a leading `@` stands for
    // the NUL byte that starts an abstract name.
    let name = format!("rnfsd-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    ready_then_stopping(socket, &format!("@{name}"));
}
