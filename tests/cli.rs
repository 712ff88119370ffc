//! The `rnfsd` binary as an operator meets it: one-line errors with a non-zero exit for a missing
//! export path, a bad exports line and a port in use; `--check-exports`; and a real start that
//! prints the banner, answers an RPC NULL call on the NFS port and exits 0 on SIGTERM; NFS over UDP
//! only with `--udp` or `RNFSD_UDP`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::Signal;
use rnfsd_test_support::process::{self, Running, stderr_of};
use rnfsd_test_support::{call_message, record, wire};
use xdr::Xdr;
use xdr::rpc::{AcceptedStatus, OpaqueAuth, ReplyBody, ReplyHeader};

const BIN: &str = env!("CARGO_BIN_EXE_rnfsd");

fn rnfsd(args: &[&str]) -> Output {
    process::output(Command::new(BIN).args(args))
}

/// The lines starting with `rnfsd:`: the error message an operator sees.
fn error_lines(out: &Output) -> Vec<String> {
    stderr_of(out).lines().filter(|l| l.starts_with("rnfsd: ")).map(str::to_string).collect()
}

fn state_dir(tmp: &Path) -> String {
    tmp.join("state").display().to_string()
}

#[test]
fn missing_export_path_is_one_line_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let missing_s = missing.display().to_string();
    let out = rnfsd(&["serve", &missing_s, "--portmap", "off", "--state-dir", &state_dir(tmp.path())]);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "stderr: {}", stderr_of(&out));
    assert!(errors[0].contains(&missing_s), "{}", errors[0]);
}

#[test]
fn bad_exports_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let file = tmp.path().join("exports");
    std::fs::write(
        &file,
        format!("# exports\n{} *(rw)\n{} *(rw,frobnicate)\n", share.display(), share.display()),
    )
    .unwrap();
    let file_s = file.display().to_string();
    let out =
        rnfsd(&["serve", "--exports", &file_s, "--portmap", "off", "--state-dir", &state_dir(tmp.path())]);
    assert!(!out.status.success());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "stderr: {}", stderr_of(&out));
    assert!(errors[0].starts_with(&format!("rnfsd: {file_s}:3: ")), "{}", errors[0]);
    assert!(errors[0].contains("frobnicate"), "{}", errors[0]);
}

#[test]
fn port_in_use_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = rnfsd(&[
        "serve",
        share.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--mount-port",
        "0",
        "--portmap",
        "off",
        "--state-dir",
        &state_dir(tmp.path()),
    ]);
    assert!(!out.status.success());
    let errors = error_lines(&out);
    assert_eq!(
        errors,
        vec![format!("rnfsd: port {port} (nfs/tcp) on 127.0.0.1 is in use")],
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn check_exports_prints_effective_options() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let file = tmp.path().join("exports");
    std::fs::write(&file, format!("{} 10.0.0.0/8(rw,no_root_squash,fsid=9) *(ro)\n", share.display()))
        .unwrap();
    let out = rnfsd(&["serve", "--exports", file.to_str().unwrap(), "--check-exports"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let canonical = std::fs::canonicalize(&share).unwrap();
    assert_eq!(
        stdout,
        format!(
            "{}  fsid=9  10.0.0.0/8(rw,no_root_squash,secure,sync)  *(ro,root_squash,secure,sync)\n",
            canonical.display()
        )
    );
}

/// A started server whose stderr is collected line by line.
fn start(args: &[&str]) -> Running {
    Running::spawn(Command::new(BIN).args(args).env_remove("RNFSD_UDP"))
}

/// [`start`] with one environment variable set for the child.
fn start_with_env(args: &[&str], key: &str, value: &str) -> Running {
    Running::spawn(Command::new(BIN).args(args).env(key, value))
}

/// Sends an RPC NULL call for `prog`/`vers` over TCP and returns the reply header.
fn rpc_null(addr: SocketAddr, prog: u32, vers: u32) -> ReplyHeader {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let xid = 0x5eed_0001;
    s.write_all(&record(&call_message(xid, prog, vers, 0, &OpaqueAuth::none(), &[]))).unwrap();
    let (last, body) = wire::read_fragment(&mut s).expect("a reply");
    assert!(last, "single-fragment reply expected");
    let reply = ReplyHeader::from_bytes(&body).unwrap_or_else(|e| panic!("reply: {e}"));
    assert_eq!(reply.xid, xid);
    reply
}

fn assert_success(reply: &ReplyHeader) {
    assert!(
        matches!(reply.body, ReplyBody::Accepted { status: AcceptedStatus::Success, .. }),
        "{:?}",
        reply.body
    );
}

#[test]
fn serves_and_exits_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let state = state_dir(tmp.path());
    let mut server = start(&[
        "serve",
        share.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--mount-port",
        "0",
        "--portmap",
        "off",
        "--state-dir",
        &state,
    ]);
    server.wait_for_line(|l| l.starts_with("rnfsd ") && l.contains("serving NFSv3"));
    let listen = server.wait_for_line(|l| l.trim_start().starts_with("nfs+mount"));
    let addr: SocketAddr = listen
        .split_whitespace()
        .skip_while(|w| *w != "tcp")
        .nth(1)
        .unwrap_or_else(|| panic!("no tcp address in {listen:?}"))
        .parse()
        .unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    let mount_line = server.wait_for_line(|l| l.trim_start().starts_with("mount -t nfs"));
    assert!(mount_line.contains(&format!("port={}", addr.port())), "{mount_line}");
    assert!(mount_line.contains(&format!("127.0.0.1:{}", std::fs::canonicalize(&share).unwrap().display())));

    // NFS v3 and MOUNT v3 both answer on the NFS port.
    assert_success(&rpc_null(addr, 100_003, 3));
    assert_success(&rpc_null(addr, 100_005, 3));
    // The handle key was persisted in the state directory.
    assert!(Path::new(&state).join("handle.key").is_file());

    // SIGUSR1 logs the counters (two NULL calls so far) and the server keeps serving.
    server.signal(Signal::SIGUSR1);
    let counters = server.wait_for_line(|l| l.contains("counters: "));
    assert!(counters.contains("counters: calls=2 drc_hits=0 drc_misses=0 drc_parked=0"), "{counters}");
    assert!(counters.contains("drc_entries=0 drc_bytes=0"), "{counters}");
    let memory = server.wait_for_line(|l| l.contains("memory: "));
    assert!(memory.contains("memory: rss_kib="), "{memory}");
    let caches = server.wait_for_line(|l| l.contains("caches: "));
    assert!(caches.contains("caches: resolved_handles="), "{caches}");
    assert!(caches.contains(" open_files=0 listed_entries=0"), "{caches}");
    assert_success(&rpc_null(addr, 100_003, 3));

    server.signal(Signal::SIGTERM);
    // The counters again at shutdown, then the last line.
    let counters = server.wait_for_line(|l| l.contains("counters: "));
    assert!(counters.contains("counters: calls=3 "), "{counters}");
    server.wait_for_line(|l| l.contains("stopped"));
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status:?}; stderr:\n{}", server.seen.join("\n"));
}

/// Starts rnfsd on `share` with `state`, waits for its banner and stops it; returns the banner.
fn banner_of_a_start(share: &Path, state: &str) -> Vec<String> {
    let mut server = start(&[
        "serve",
        share.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--portmap",
        "off",
        "--state-dir",
        state,
    ]);
    server.wait_for_line(|l| l.starts_with("mount with:"));
    server.signal(Signal::SIGTERM);
    server.wait_exit();
    server.seen.clone()
}

#[test]
fn state_dir_key_is_kept_and_damage_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let state = state_dir(tmp.path());
    let new_key = |banner: &[String]| banner.iter().any(|l| l.contains("new handle key created"));

    let first = banner_of_a_start(&share, &state);
    assert!(new_key(&first), "the first start says it made a key:\n{}", first.join("\n"));
    let fsid_line = |banner: &[String]| banner.iter().find(|l| l.contains("(fsid ")).cloned().unwrap();
    let second = banner_of_a_start(&share, &state);
    assert!(!new_key(&second), "a restart reuses the key:\n{}", second.join("\n"));
    assert_eq!(fsid_line(&first), fsid_line(&second), "the export keeps its fsid");

    let key = Path::new(&state).join("handle.key");
    let good = std::fs::read(&key).unwrap();
    let serve = ["serve", share.to_str().unwrap(), "--port", "0", "--portmap", "off", "--state-dir", &state];

    std::fs::remove_file(&key).unwrap();
    let out = rnfsd(&serve);
    assert!(!out.status.success());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "stderr: {}", stderr_of(&out));
    assert!(errors[0].contains("handle.key is missing") && errors[0].contains("Restore"), "{}", errors[0]);
    assert!(!key.exists(), "no new key replaces a lost one");

    std::fs::write(&key, &good[..5]).unwrap();
    let errors = error_lines(&rnfsd(&serve));
    assert!(errors.len() == 1 && errors[0].contains("exactly 16 bytes"), "{errors:?}");

    let mut other = good.clone();
    other[0] ^= 0xff;
    std::fs::write(&key, &other).unwrap();
    let errors = error_lines(&rnfsd(&serve));
    assert!(errors.len() == 1 && errors[0].contains("does not match"), "{errors:?}");

    std::fs::write(&key, &good).unwrap();
    let third = banner_of_a_start(&share, &state);
    assert_eq!(fsid_line(&first), fsid_line(&third), "the restored key serves the same handles");
}

/// The status of an RPC NULL call for `prog`/`vers` over UDP.
fn udp_null_status(addr: SocketAddr, prog: u32, vers: u32) -> AcceptedStatus {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reply =
        wire::udp_exchange(&s, addr, &call_message(0x5eed_0002, prog, vers, 0, &OpaqueAuth::none(), &[]));
    match ReplyHeader::from_bytes(&reply).unwrap().body {
        ReplyBody::Accepted { status, .. } => status,
        other => panic!("{other:?}"),
    }
}

/// NFS over UDP is off unless `--udp` or `RNFSD_UDP` says otherwise; MOUNT answers over UDP
/// either way, and the banner says which.
#[test]
fn nfs_over_udp_needs_the_udp_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let state = state_dir(tmp.path());
    for (flag, env, served) in [(None, None, false), (Some("--udp"), None, true), (None, Some("1"), true)] {
        let mut args = vec![
            "serve",
            share.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--mount-port",
            "0",
            "--portmap",
            "off",
            "--state-dir",
            &state,
        ];
        args.extend(flag);
        let mut server = match env {
            Some(v) => start_with_env(&args, "RNFSD_UDP", v),
            None => start(&args),
        };
        let listen = server.wait_for_line(|l| l.trim_start().starts_with("nfs+mount"));
        assert_eq!(listen.contains("NFS over UDP is off"), !served, "{listen}");
        let addr: SocketAddr = listen
            .split_whitespace()
            .skip_while(|w| *w != "tcp")
            .nth(1)
            .unwrap_or_else(|| panic!("no tcp address in {listen:?}"))
            .parse()
            .unwrap();
        let nfs = udp_null_status(addr, 100_003, 3);
        assert_eq!(nfs, if served { AcceptedStatus::Success } else { AcceptedStatus::ProgUnavail });
        assert_eq!(udp_null_status(addr, 100_005, 3), AcceptedStatus::Success);
        server.signal(Signal::SIGTERM);
        server.wait_for_line(|l| l.contains("stopped"));
    }
}

#[test]
fn limit_flags_out_of_range_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().display().to_string();
    for (flag, value) in [
        ("--max-request-memory", "1"),
        ("--max-reply-memory", "0"),
        ("--record-timeout", "0"),
        ("--max-request-memory", "lots"),
    ] {
        let out =
            rnfsd(&["serve", &share, "--portmap", "off", "--state-dir", &state_dir(tmp.path()), flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {:?}", out.status);
        assert!(stderr_of(&out).contains(flag), "{flag} {value}: {}", stderr_of(&out));
    }
}

/// Without --state-dir, a plain user whose home it may not write (uid 65534 with HOME=/root, as
/// `setpriv --reuid` leaves it) falls back to `.rnfsd-state` in the working directory; where it
/// cannot write that either, the start fails with one line naming what was tried and
/// --state-dir.
#[test]
fn a_user_without_a_writable_home_gets_a_state_directory_or_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run the server as another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let share = tmp.path().join("share");
    let work = tmp.path().join("work");
    std::fs::create_dir(&share).unwrap();
    std::fs::create_dir(&work).unwrap();
    std::fs::set_permissions(&share, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_nobody = |cwd: &Path| {
        let mut c = Command::new(BIN);
        c.args(["serve", share.to_str().unwrap(), "--bind", "127.0.0.1", "--port", "0"])
            .args(["--mount-port", "0", "--portmap", "off"])
            .current_dir(cwd)
            .env("HOME", "/root")
            .env_remove("XDG_STATE_HOME")
            .env_remove("RNFSD_STATE_DIR")
            .env_remove("RNFSD_UDP")
            .uid(65534)
            .gid(65534);
        c
    };
    let mut server = Running::spawn(&mut as_nobody(&work));
    let key = server.wait_for_line(|l| l.starts_with("file handles: "));
    assert!(key.contains("key in .rnfsd-state/handle.key"), "{key}");
    assert!(work.join(".rnfsd-state/handle.key").is_file());
    server.signal(Signal::SIGTERM);
    assert!(server.wait_exit().success());

    // The export itself as the working directory, made unwritable to the user.
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(work.join(".rnfsd-state")).unwrap();
    let out = process::output(&mut as_nobody(&work));
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.starts_with("rnfsd: no state directory: tried /root/.local/state/rnfsd ("), "{err}");
    assert!(err.contains(".rnfsd-state (Permission denied") && err.contains("give --state-dir DIR"), "{err}");
}

#[test]
fn generate_man_is_a_roff_page_with_serve_and_its_flags() {
    let out = rnfsd(&["generate", "man"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains("\n.TH ") || page.starts_with(".TH "), "{page}");
    assert!(page.contains(".TH rnfsd 8"), "{page}");
    assert!(page.contains("RNFSD SERVE"), "{page}");
    // roff escapes the dashes of a flag: `\-\-exports`.
    for flag in ["exports", "state\\-dir", "log\\-format", "port"] {
        assert!(page.contains(&format!("\\-\\-{flag}")), "--{flag} missing:\n{page}");
    }
}

#[test]
fn generate_completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = rnfsd(&["generate", "completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr_of(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("rnfsd"), "{shell}:\n{script}");
        // fish spells a long flag `-l export`; bash and zsh `--export`.
        assert!(script.contains("--export") || script.contains("-l export"), "{shell}:\n{script}");
    }
    let bash = String::from_utf8(rnfsd(&["generate", "completions", "bash"]).stdout).unwrap();
    assert!(bash.contains("--export") && bash.contains("--state-dir") && bash.contains("serve"), "{bash}");
    assert!(!rnfsd(&["generate", "completions", "tcsh"]).status.success());
}

/// `--version` names the commit this checkout is at, as `git rev-parse` abbreviates it to 12.
#[test]
fn version_names_the_git_revision() {
    let out = rnfsd(&["--version"]);
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(version.starts_with(&format!("rnfsd {} (git ", env!("CARGO_PKG_VERSION"))), "{version}");
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let rev = String::from_utf8(head.stdout).unwrap().trim().to_string();
            assert_eq!(rev.len(), 12);
            assert!(version.contains(&format!("(git {rev}")), "{version} should name {rev}");
        }
        // Not a checkout (a source tarball): the revision is unknown.
        _ => assert!(version.contains("(git unknown)"), "{version}"),
    }
}

/// Starts rnfsd on a fresh export with `extra` arguments, MNTs `path` with `xid` over TCP, and
/// stops it; returns every stderr line and the export's canonical path.
fn log_of_a_mount(extra: &[&str], xid: u32, path: Option<&str>) -> (Vec<String>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let canonical = std::fs::canonicalize(&share).unwrap().display().to_string();
    let state = state_dir(tmp.path());
    let mut args = vec!["serve", &canonical, "--bind", "127.0.0.1", "--port", "0", "--mount-port", "0"];
    args.extend(["--portmap", "off", "--state-dir", &state]);
    args.extend(extra);
    let mut server = start(&args);
    let listen = server.wait_for_line(|l| l.trim_start().starts_with("nfs+mount"));
    let addr: SocketAddr =
        listen.split_whitespace().skip_while(|w| *w != "tcp").nth(1).unwrap().parse().unwrap();
    server.wait_for_line(|l| l.trim_start().starts_with("mount -t nfs"));
    let mut client = rnfsd_test_support::client::Client::tcp(addr);
    let dirpath = xdr::mount::dirpath(bytes::Bytes::copy_from_slice(path.unwrap_or(&canonical).as_bytes()));
    client.call_xid(xid, 100_005, 3, 1, &dirpath.to_bytes()).expect("MNT answered");
    server.wait_for_line(|l| l.contains("mount"));
    server.signal(Signal::SIGTERM);
    server.wait_for_line(|l| l.contains("stopped"));
    server.wait_exit();
    // The lines after the first that matched (with -v, a debug line may say "stopped" too).
    server.stderr_so_far();
    (server.seen.clone(), canonical)
}

/// The log lines after the banner (whose last lines are the mount commands).
fn after_banner(lines: &[String]) -> Vec<&String> {
    let last = lines.iter().rposition(|l| l.trim_start().starts_with("mount -t nfs")).expect("a banner");
    lines[last + 1..].iter().collect()
}

/// With the call span enabled (`-v`), every request-level line carries the call's fields.
#[test]
fn json_logs_carry_the_request_fields() {
    let xid = 0x4a50_0001;
    let (lines, export) = log_of_a_mount(&["--log-format", "json", "-v"], xid, None);
    let parsed: Vec<serde_json::Value> = after_banner(&lines)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let mounted = parsed.iter().find(|v| v["message"] == "mounted").expect("a mounted line");
    assert_eq!(mounted["level"], "INFO");
    let span = mounted["spans"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "rpc")).unwrap();
    assert!(span["client"].as_str().unwrap().starts_with("127.0.0.1:"), "{mounted}");
    assert_eq!(span["prog"], "mount", "{mounted}");
    assert_eq!(span["proc"], "MNT", "{mounted}");
    assert_eq!(span["xid"], xid, "{mounted}");
    // The export is a field of the lines that find a request's export (resolution, MNT).
    assert_eq!(mounted["export"], format!("\"{export}\""), "{mounted}");
    // The shutdown lines are JSON too.
    assert!(parsed.iter().any(|v| v["message"] == "stopped"));
}

/// A path a client chose, with a newline and a fake JSON object in it, stays inside its line in
/// either format.
#[test]
fn client_chosen_bytes_do_not_break_a_log_line() {
    let evil = "/nope\n{\"message\":\"mounted\"}\r\u{1b}[2K";
    let (lines, _) = log_of_a_mount(&["--log-format", "json"], 1, Some(evil));
    let parsed: Vec<serde_json::Value> = after_banner(&lines)
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert!(!parsed.iter().any(|v| v["message"] == "mounted"), "{lines:?}");
    let refused =
        parsed.iter().find(|v| v["message"].as_str().is_some_and(|m| m.contains("refused"))).unwrap();
    assert_eq!(refused["path"], "\"/nope\\n{\\\"message\\\":\\\"mounted\\\"}\\r\\x1b[2K\"", "{refused}");

    let (lines, _) = log_of_a_mount(&[], 1, Some(evil));
    let refused: Vec<_> = after_banner(&lines).into_iter().filter(|l| l.contains("refused")).collect();
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("{\"message\"")), "{lines:?}");
}

#[test]
fn text_logs_carry_the_request_fields() {
    let (lines, export) = log_of_a_mount(&["-v"], 0x4a50_0002, None);
    let mounted = after_banner(&lines).into_iter().find(|l| l.contains(" mounted")).expect("a mounted line");
    for field in
        ["rpc{client=127.0.0.1:", "prog=\"mount\"", "proc=\"MNT\"", &format!("xid={}", 0x4a50_0002u32)]
    {
        assert!(mounted.contains(field), "{field} missing: {mounted}");
    }
    assert!(mounted.contains(&format!("export=\"{export}\"")), "{mounted}");
}
