//! The `rnfsd-faultproxy` command in front of a minimal RPC server: rules given on the command
//! line and through the control socket (`ctl`) take effect, and the event log file records them.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rnfsd_test_support::process::Running;
use rnfsd_test_support::{NFS, call_message, read_record, record, wait_until};
use xdr::rpc::OpaqueAuth;

const BIN: &str = env!("CARGO_BIN_EXE_rnfsd-faultproxy");

/// An RPC server answering every call with an accepted SUCCESS reply carrying no results.
fn fake_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                while let Some(call) = read_record(&mut conn) {
                    let mut reply = call[..4].to_vec();
                    // REPLY, MSG_ACCEPTED, AUTH_NONE verifier (flavor, length), SUCCESS.
                    for word in [1u32, 0, 0, 0, 0] {
                        reply.extend_from_slice(&word.to_be_bytes());
                    }
                    if conn.write_all(&record(&reply)).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// An NFS v3 NULL call with AUTH_NONE.
fn null_call(xid: u32) -> Vec<u8> {
    record(&call_message(xid, NFS, 3, 0, &OpaqueAuth::none(), &[]))
}

struct Proxy {
    _running: Running,
    addr: SocketAddr,
}

impl Proxy {
    fn start(args: &[&str]) -> Proxy {
        let mut running = Running::spawn(Command::new(BIN).args(args));
        let line = running.wait_for_line(|l| l.contains("listening on "));
        let rest = line.split("listening on ").nth(1).unwrap();
        let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
        Proxy { _running: running, addr }
    }
}

fn ctl(socket: &Path, command: &[&str]) -> Output {
    Command::new(BIN).arg("ctl").arg(socket).args(command).output().unwrap()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultproxy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rules_from_the_command_line_and_the_control_socket_fire_and_are_logged() {
    let dir = scratch();
    let (control, log) = (dir.join("control"), dir.join("events.log"));
    let upstream = fake_upstream().to_string();
    let proxy = Proxy::start(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--rule",
        "drop-reply NULL",
        "--control",
        control.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    let mut c = TcpStream::connect(proxy.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(&null_call(1)).unwrap();
    c.write_all(&null_call(2)).unwrap();
    assert_eq!(&read_record(&mut c).expect("the reply to 2")[..4], &2u32.to_be_bytes());

    wait_until("the control socket exists", Duration::from_secs(20), || control.exists().then_some(()));
    let armed = ctl(&control, &["add", "drop-reply-close", "NULL"]);
    assert!(armed.status.success(), "{armed:?}");
    assert_eq!(String::from_utf8_lossy(&armed.stdout), "armed drop-reply-close NULL\n");
    c.write_all(&null_call(3)).unwrap();
    assert_eq!(read_record(&mut c), None, "the reply is lost and the connection closed");

    let events = ctl(&control, &["events"]);
    assert_eq!(
        String::from_utf8_lossy(&events.stdout),
        "conn=1 xid=0x00000001 prog=100003 proc=NULL action=drop-reply\n\
         conn=1 xid=0x00000003 prog=100003 proc=NULL action=drop-reply-close\n"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), String::from_utf8_lossy(&events.stdout));

    let refused = ctl(&control, &["add", "drop-reply", "UNLINK"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown NFS v3 procedure"), "{refused:?}");
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_rule_on_the_command_line_is_refused() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--rule", "delay-call WRITE"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("milliseconds"), "{out:?}");
}
