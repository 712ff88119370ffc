//! A binary under test, spawned with its stderr read line by line on a thread: a test waits for a
//! line (the banner, a log message) with a deadline, and the child is killed if the test ends
//! first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a child may take to start, say something or stop before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `command` to completion with stdin closed and `RUST_LOG` unset.
pub fn output(command: &mut Command) -> Output {
    command.env_remove("RUST_LOG").stdin(Stdio::null()).output().expect("the binary runs")
}

/// A child's stderr as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running child whose stderr is collected line by line.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Spawns `command` with stdin and stdout closed, stderr piped and `RUST_LOG` unset.
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, seen: Vec::new() }
    }

    /// Reads stderr until a line satisfies `pred`, and returns it; kills the child and panics
    /// with what it said if no such line comes within [`DEADLINE`].
    pub fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no such line in time; stderr so far:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// Everything the child has written to stderr by now (after it exited: all of it).
    pub fn stderr_so_far(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("the child can be signalled");
    }

    /// Waits for the child to exit, for at most [`DEADLINE`].
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        crate::wait::wait_until("the child exits", DEADLINE, || child.try_wait().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server started by a shell `script` inside a private mount namespace (`unshare --mount`),
/// which goes away with it: the script mounts what the test needs (a tmpfs, a loop-mounted
/// image, an overlay) and `exec`s the server, which must listen on 127.0.0.1:`port`. The script
/// gets `$1` = `dir`, then `args`; it exits 97 to say the machine cannot set it up (the reason on
/// stderr), and then this returns `None` with the reason printed, as a skip.
pub fn start_in_mount_namespace(script: &str, dir: &str, args: &[&str], port: u16) -> Option<Running> {
    let mut server = Running::spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", dir])
            .args(args),
    );
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let listening = crate::wait_until("the server starts listening", DEADLINE, || {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some(Ok(()));
        }
        server.child.try_wait().unwrap().map(Err)
    });
    if let Err(status) = listening {
        let err = server.stderr_so_far();
        if status.code() == Some(97) || err.contains("unshare failed") {
            eprintln!("skipped: cannot set up the mounts here: {}", err.trim());
            return None;
        }
        panic!("the server exited ({status}): {err}");
    }
    Some(server)
}

/// Whether every one of `tools` is on PATH; names the first missing one on stderr, as a skip.
pub fn have_tools(tools: &[&str]) -> bool {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
        if !found {
            eprintln!("skipped: needs {tool}");
            return false;
        }
    }
    true
}

/// A free TCP port on 127.0.0.1 (free when asked: the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
