//! The `rnfsd-faultproxy` command in front of a minimal RPC server: rules given on the command
//! line and through the control socket (`ctl`) take effect, and the event log file records them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
                    if conn.write_all(&framed(&reply)).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u32 | 0x8000_0000).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

fn read_record(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut marker = [0u8; 4];
    s.read_exact(&mut marker).ok()?;
    let len = (u32::from_be_bytes(marker) & 0x7fff_ffff) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// An NFS v3 NULL call with AUTH_NONE.
fn null_call(xid: u32) -> Vec<u8> {
    let mut msg = Vec::new();
    for word in [xid, 0, 2, 100003, 3, 0, 0, 0, 0, 0] {
        msg.extend_from_slice(&word.to_be_bytes());
    }
    framed(&msg)
}

struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(args: &[&str]) -> Proxy {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the proxy starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the proxy says where it listens");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Proxy { child, addr }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

    let deadline = Instant::now() + Duration::from_secs(20);
    while !control.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
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
