//! Requests change files exactly as a local process of the mapped caller would: a WRITE, a
//! truncation (SETATTR size) and an ownership change (SETATTR uid/gid) clear the setuid and
//! setgid bits as the kernel clears them for that caller, and root mapped to root keeps them as
//! local root does. The ground truth is the kernel itself: each case is repeated on a twin file by
//! a local process running as the same uid and gid, and the modes must match. And a request
//! runs with the capabilities of its caller: on an ext4 that reserves blocks for root, an
//! ordinary or squashed caller's WRITEs get NOSPC where a local user's writes stop. Needs root
//! (the server switches identities only as root; the ext4 is loop-mounted in a private mount
//! namespace); skipped with a message otherwise.

use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rnfsd_test_support::*;
use xdr::nfs3::*;

/// Whether this run can test identities; says why not when it cannot.
fn runs_as_root() -> bool {
    if rnfsd::fs::cred::can_switch() {
        return true;
    }
    eprintln!("skipped: rnfsd switches to the caller's identity only when it runs as root");
    false
}

/// A regular file at `path` with `data`, owner `uid`:`gid` and `mode` (setuid/setgid bits too).
fn file_with(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::fs::write(path, b"0123456789").unwrap();
    chown(path, Some(uid), Some(gid)).unwrap();
    // chown clears the bits, so the mode comes last.
    std::fs::set_permissions(path, PermissionsExt::from_mode(mode)).unwrap();
    assert_eq!(mode_of(path), Octal(mode));
}

/// The permission bits of `path`, in octal (so assertions print them readably).
fn mode_of(path: &Path) -> Octal {
    Octal(std::fs::metadata(path).unwrap().mode() & 0o7777)
}

#[derive(PartialEq, Eq)]
struct Octal(u32);

impl std::fmt::Debug for Octal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Runs `script` with `sh` as a local process of `uid`:`gid` (no supplementary groups), with the
/// file as `$1`: what the kernel does for a local caller of that identity.
fn as_local(uid: u32, gid: u32, script: &str, file: &Path) {
    let status = Command::new("/bin/sh")
        .args(["-c", script, "sh"])
        .arg(file)
        .uid(uid)
        .gid(gid)
        .status()
        .expect("sh runs");
    assert!(status.success(), "local `{script}` as {uid}:{gid} failed");
}

fn setattr(c: &mut Client, fh: &nfs_fh3, new_attributes: sattr3) -> SETATTR3res {
    c.nfs(procs::SETATTR, &SETATTR3args { object: fh.clone(), new_attributes, guard: None })
}

/// The exports to test on: ext4 (or whatever /tmp is), and tmpfs, where SETATTR runs on the
/// async worker instead of the blocking pool.
fn servers(options: &str) -> Vec<TestServer> {
    let mut servers = vec![TestServer::start(options)];
    if Path::new("/dev/shm").is_dir() {
        servers.push(TestServer::start_under(Path::new("/dev/shm"), options));
    }
    servers
}

#[test]
fn write_by_a_group_member_clears_setuid_and_setgid_like_a_local_write() {
    if !runs_as_root() {
        return;
    }
    for ts in servers("rw,insecure,root_squash") {
        let (_, root) = ts.client();
        let mut user = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 50, &[50]));
        // Root-owned, group 50 may write: 04775, 02775 (group-exec set) and 04777.
        for (mode, expected) in [(0o4775, 0o775), (0o2775, 0o775), (0o6775, 0o775), (0o4777, 0o777)] {
            let (nfs, local) = (format!("nfs-{mode:o}"), format!("local-{mode:o}"));
            file_with(&ts.path(&nfs), 0, 50, mode);
            file_with(&ts.path(&local), 0, 50, mode);
            as_local(1000, 50, "printf x 1<>\"$1\"", &ts.path(&local));
            let fh = user.lookup_fh(&root, &nfs);
            let res = ok(user.write(&fh, 0, b"x", stable_how::FILE_SYNC));
            assert_eq!(std::fs::read(ts.path(&nfs)).unwrap(), b"x123456789");
            assert_eq!(
                mode_of(&ts.path(&nfs)),
                mode_of(&ts.path(&local)),
                "{}: a WRITE as 1000:50 leaves the bits a local write by 1000:50 leaves (mode was {mode:o})",
                ts.export_path().display()
            );
            assert_eq!(mode_of(&ts.path(&nfs)), Octal(expected), "mode was {mode:o}");
            assert_eq!(
                Octal(res.file_wcc.after.unwrap().mode),
                Octal(expected),
                "the reply's attributes say so too"
            );
            // Again, through the file the server now keeps open for writing.
            std::fs::set_permissions(ts.path(&nfs), PermissionsExt::from_mode(mode)).unwrap();
            ok(user.write(&fh, 1, b"y", stable_how::UNSTABLE));
            assert_eq!(mode_of(&ts.path(&nfs)), Octal(expected), "mode was {mode:o}, file open");
            // Without the group's write bit the open file is no way around the check.
            std::fs::set_permissions(ts.path(&nfs), PermissionsExt::from_mode(mode & !0o020)).unwrap();
            let refused = user.write(&fh, 2, b"z", stable_how::UNSTABLE);
            assert_eq!(refused.status(), nfsstat3::NFS3ERR_ACCES, "mode {:o}", mode & !0o020);
            assert_eq!(std::fs::read(ts.path(&nfs)).unwrap(), b"xy23456789");
        }
    }
}

#[test]
fn write_by_the_owner_clears_setuid_and_keeps_the_owner_override() {
    if !runs_as_root() {
        return;
    }
    for ts in servers("rw,insecure,root_squash") {
        let (_, root) = ts.client();
        let mut owner = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 50, &[50]));
        // 04555: the owner has no write bit, but knfsd's owner override lets it write.
        file_with(&ts.path("mine"), 1000, 50, 0o4555);
        let fh = owner.lookup_fh(&root, "mine");
        ok(owner.write(&fh, 0, b"x", stable_how::UNSTABLE));
        assert_eq!(std::fs::read(ts.path("mine")).unwrap(), b"x123456789");
        assert_eq!(
            mode_of(&ts.path("mine")),
            Octal(0o555),
            "the owner's write clears setuid, as the kernel does"
        );
        // Writing again through the cached open file does the same.
        std::fs::set_permissions(ts.path("mine"), PermissionsExt::from_mode(0o4555)).unwrap();
        ok(owner.write(&fh, 1, b"y", stable_how::UNSTABLE));
        assert_eq!(mode_of(&ts.path("mine")), Octal(0o555));
    }
}

#[test]
fn write_by_root_without_squashing_keeps_the_bits_like_local_root() {
    if !runs_as_root() {
        return;
    }
    for ts in servers("rw,insecure,no_root_squash") {
        let (mut c, root) = ts.client();
        for cred in [auth_sys(0, 0, &[]), auth_sys(0, 50, &[50])] {
            c.cred = cred;
            file_with(&ts.path("prog"), 0, 50, 0o6775);
            file_with(&ts.path("local"), 0, 50, 0o6775);
            as_local(0, 50, "printf x 1<>\"$1\"", &ts.path("local"));
            let fh = c.lookup_fh(&root, "prog");
            ok(c.write(&fh, 0, b"x", stable_how::FILE_SYNC));
            assert_eq!(mode_of(&ts.path("local")), Octal(0o6775), "local root keeps the bits (CAP_FSETID)");
            assert_eq!(mode_of(&ts.path("prog")), Octal(0o6775), "root mapped to root keeps them too");
        }
    }
}

#[test]
fn truncation_clears_setuid_and_setgid_like_a_local_truncation() {
    if !runs_as_root() {
        return;
    }
    for ts in servers("rw,insecure,root_squash") {
        let (_, root) = ts.client();
        let mut user = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 50, &[50]));
        // The owner (owner override: no write bit needed) and a group member.
        for (uid, mode) in [(1000, 0o4755), (1000, 0o6775), (0, 0o4775), (0, 0o2775)] {
            let (nfs, local) = (format!("nfs-{uid}-{mode:o}"), format!("local-{uid}-{mode:o}"));
            file_with(&ts.path(&nfs), uid, 50, mode);
            file_with(&ts.path(&local), uid, 50, mode);
            as_local(1000, 50, "truncate -s 3 \"$1\"", &ts.path(&local));
            let fh = user.lookup_fh(&root, &nfs);
            ok(setattr(&mut user, &fh, sattr3 { size: Some(3), ..Default::default() }));
            assert_eq!(std::fs::metadata(ts.path(&nfs)).unwrap().len(), 3);
            assert_eq!(
                mode_of(&ts.path(&nfs)),
                mode_of(&ts.path(&local)),
                "{}: SETATTR size as 1000:50 of a file of {uid}:50 mode {mode:o}",
                ts.export_path().display()
            );
            assert_eq!(mode_of(&ts.path(&nfs)).0 & 0o6000, 0, "mode was {mode:o}");
        }
        // The owner's override still holds for a file it made read-only.
        file_with(&ts.path("readonly"), 1000, 50, 0o4444);
        let fh = user.lookup_fh(&root, "readonly");
        ok(setattr(&mut user, &fh, sattr3 { size: Some(0), ..Default::default() }));
        assert_eq!(std::fs::metadata(ts.path("readonly")).unwrap().len(), 0);
        assert_eq!(mode_of(&ts.path("readonly")), Octal(0o444));
    }
}

#[test]
fn ownership_changes_clear_setuid_and_setgid_like_a_local_chown() {
    if !runs_as_root() {
        return;
    }
    for ts in servers("rw,insecure,no_root_squash") {
        let (_, root) = ts.client();
        // The owner gives the file to another of its groups (locally: with that group as its
        // gid); root gives it to another user.
        let cases = [
            (auth_sys(1000, 50, &[50, 60]), (1000, 60), 1000, None, Some(60)),
            (auth_sys(0, 0, &[]), (0, 0), 2000, Some(1000), None),
        ];
        for (cred, (luid, lgid), owner_before, uid, gid) in cases {
            let mut c = Client::tcp(ts.addr()).with_cred(cred);
            file_with(&ts.path("nfs"), owner_before, 50, 0o6775);
            file_with(&ts.path("local"), owner_before, 50, 0o6775);
            let owner = match (uid, gid) {
                (Some(u), None) => u.to_string(),
                (None, Some(g)) => format!(":{g}"),
                _ => unreachable!("one of the two"),
            };
            let script = format!("chown {owner} \"$1\"");
            as_local(luid, lgid, &script, &ts.path("local"));
            let fh = c.lookup_fh(&root, "nfs");
            ok(setattr(&mut c, &fh, sattr3 { uid, gid, ..Default::default() }));
            assert_eq!(mode_of(&ts.path("nfs")), mode_of(&ts.path("local")), "{script} as {luid}");
            assert_eq!(mode_of(&ts.path("nfs")), Octal(0o775), "{script} as {luid}");
            let md = std::fs::metadata(ts.path("nfs")).unwrap();
            assert_eq!((md.uid(), md.gid()), (uid.unwrap_or(owner_before), gid.unwrap_or(50)));
        }
    }
}

/// rnfsd serving a fresh ext4 filesystem that reserves half its blocks for root: `mkfs.ext4 -m
/// 50` of a sparse 64 MiB image on a tmpfs, loop-mounted in a private mount namespace
/// (`unshare --mount`) that vanishes with the server. `None` (with the reason printed) where
/// that cannot be set up: not root, no `unshare` or `mkfs.ext4`, no loop devices.
struct ReservedExt4 {
    /// Killed when this is dropped; ending the server ends its mount namespace, and the ext4 and
    /// the tmpfs go with it.
    _server: process::Running,
    addr: std::net::SocketAddr,
    export: String,
    _work: tempfile::TempDir,
}

impl ReservedExt4 {
    fn start() -> Option<ReservedExt4> {
        if !process::have_tools(&["unshare", "mkfs.ext4", "mount"]) {
            return None;
        }
        let work = tempfile::tempdir().unwrap();
        let port = process::free_port();
        let dir = work.path().display().to_string();
        let script = r#"
            set -e
            fail() { echo "setup failed: $*" >&2; exit 97; }
            mount -t tmpfs -o size=80m rnfsd-identity "$1" || fail "tmpfs"
            truncate -s 64M "$1/ext4.img"
            mkfs.ext4 -q -F -m 50 -E lazy_itable_init=0,lazy_journal_init=0 "$1/ext4.img" || fail "mkfs.ext4"
            mkdir "$1/fs" "$1/state"
            mount -o loop "$1/ext4.img" "$1/fs" || fail "loop mount"
            mkdir "$1/fs/export"
            chmod 777 "$1/fs/export"
            exec "$2" serve --bind 127.0.0.1 --port "$3" --portmap off --state-dir "$1/state" \
                --export "$1/fs/export *(rw,insecure,root_squash)"
        "#;
        let bin = env!("CARGO_BIN_EXE_rnfsd");
        let server = process::start_in_mount_namespace(script, &dir, &[bin, &port.to_string()], port)?;
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        Some(ReservedExt4 { _server: server, addr, export: format!("{dir}/fs/export"), _work: work })
    }
}

#[test]
fn writes_by_an_ordinary_caller_stop_where_its_local_writes_stop() {
    if !runs_as_root() {
        return;
    }
    let Some(fs) = ReservedExt4::start() else { return };
    let mut user = Client::tcp(fs.addr).with_cred(auth_sys(1000, 1000, &[1000]));
    let root = user.mount(&fs.export).expect("MNT");
    // The owner's WRITEs take the owner override; the squashed root (uid 65534) writes to a file
    // of its own, then to one of uid 1000 that everyone may write.
    let (u1000, squashed) = (auth_sys(1000, 1000, &[1000]), auth_sys(0, 0, &[]));
    let cases = [
        (&u1000, &u1000, "by-1000"),
        (&squashed, &squashed, "by-squashed-root"),
        (&u1000, &squashed, "of-1000-by-squashed-root"),
    ];
    for (creator, writer, name) in cases {
        user.cred = creator.clone();
        let stat: FSSTAT3res = user.nfs(procs::FSSTAT, &FSSTAT3args { fsroot: root.clone() });
        let stat = ok(stat);
        // What statfs offers a process without CAP_SYS_RESOURCE, and what root may use on top.
        let (available, free) = (stat.abytes, stat.fbytes);
        assert!(
            free > available + (20 << 20),
            "half the filesystem is reserved: {free} free, {available} available"
        );
        let fh = user.create_file(&root, name);
        ok(setattr(&mut user, &fh, sattr3 { mode: Some(0o666), ..Default::default() }));
        user.cred = writer.clone();
        let chunk = vec![0x5a_u8; 1 << 20];
        let mut written = 0u64;
        let status = loop {
            assert!(written < 128 << 20, "a 64 MiB filesystem never takes 128 MiB");
            match user.write(&fh, written, &chunk, stable_how::UNSTABLE) {
                Nfs3Result::Ok(res) => written += u64::from(res.count),
                Nfs3Result::Err(s, _) => break s,
            }
        };
        assert_eq!(status, nfsstat3::NFS3ERR_NOSPC, "{name}");
        assert!(
            written <= available,
            "{name}: {} MiB written where a local user stops at {} MiB (of {} MiB free)",
            written >> 20,
            available >> 20,
            free >> 20
        );
        assert!(written >= (available >> 20 << 20) / 2, "{name}: the writes used the non-reserved space");
        eprintln!(
            "{name}: {} KiB written, {} KiB available, {} KiB free",
            written >> 10,
            available >> 10,
            free >> 10
        );
        ok(user.remove(&root, name));
    }
}

/// The rnfsd binary started under `prefix` (setpriv, unshare) on `share`, once it serves; and its
/// NFS address. `before` gets the child's pid as soon as it runs.
fn spawn_under(
    prefix: &[&str],
    share: &Path,
    state: &Path,
    before: impl FnOnce(u32),
) -> (rnfsd_test_support::process::Running, std::net::SocketAddr) {
    let mut command = Command::new(prefix[0]);
    command
        .args(&prefix[1..])
        .arg(env!("CARGO_BIN_EXE_rnfsd"))
        .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--mount-port", "0", "--portmap", "off"])
        .arg("--state-dir")
        .arg(state)
        .arg("--export")
        .arg(format!("{} *(rw,insecure)", share.display()));
    let mut server = rnfsd_test_support::process::Running::spawn(&mut command);
    before(server.child.id());
    let listen = server.wait_for_line(|l| l.trim_start().starts_with("nfs+mount"));
    let addr = listen.split_whitespace().skip_while(|w| *w != "tcp").nth(1).unwrap().parse().unwrap();
    server.wait_for_line(|l| l.starts_with("mount with:"));
    (server, addr)
}

/// A temporary directory with an export `share` owned by `uid` and a state directory.
fn share_owned_by(uid: u32) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    chown(&share, Some(uid), Some(uid)).unwrap();
    let state = tmp.path().join("state");
    (tmp, share, state)
}

/// The banner's identity line.
fn identity_of(server: &rnfsd_test_support::process::Running) -> String {
    server.seen.iter().find(|l| l.starts_with("identity: ")).cloned().expect("an identity line")
}

/// A server that runs as root with only CAP_DAC_READ_SEARCH, CAP_SETUID and CAP_SETGID (a
/// container's `--cap-drop ALL --cap-add DAC_READ_SEARCH,SETUID,SETGID`): it cannot open a
/// user's file for writing at root (no CAP_DAC_OVERRIDE), so it must open it as the caller.
/// The caller's CREATE, WRITE, truncation and READ of its own file all work, and another user
/// still cannot write there.
#[test]
fn a_server_with_only_the_identity_capabilities_writes_and_truncates_as_the_caller() {
    if !runs_as_root() {
        return;
    }
    let (_tmp, share, state) = share_owned_by(1000);
    let setpriv = ["setpriv", "--bounding-set", "-all,+dac_read_search,+setuid,+setgid", "--"];
    let (server, addr) = spawn_under(&setpriv, &share, &state, |_| {});
    assert_eq!(identity_of(&server), "identity: running as root: requests run with the caller's uid/gid");
    let mut c = Client::tcp(addr).with_cred(auth_sys(1000, 1000, &[]));
    let root = c.mount(share.to_str().unwrap()).expect("MNT");
    let fh = c.create_file(&root, "mine");
    ok(c.write(&fh, 0, b"written by its owner", stable_how::FILE_SYNC));
    let truncate = sattr3 { size: Some(7), ..sattr3::default() };
    ok(setattr(&mut c, &fh, truncate));
    assert_eq!(std::fs::read(share.join("mine")).unwrap(), b"written");
    let READ3res::Ok(r) = c.read(&fh, 0, 100) else { panic!("READ failed") };
    assert_eq!(&r.data[..], b"written");
    assert_eq!(std::fs::metadata(share.join("mine")).unwrap().uid(), 1000);
    let mut other = Client::tcp(addr).with_cred(auth_sys(2000, 2000, &[]));
    let root2 = other.mount(share.to_str().unwrap()).expect("MNT");
    let fh2 = other.lookup_fh(&root2, "mine");
    assert!(matches!(
        other.write(&fh2, 0, b"x", stable_how::FILE_SYNC),
        WRITE3res::Err(nfsstat3::NFS3ERR_ACCES, _)
    ));
}

/// Root without CAP_SETUID and CAP_SETGID cannot switch: every request runs as the server's own
/// user (and the banner says so) instead of failing with SERVERFAULT.
#[test]
fn root_without_setuid_and_setgid_serves_every_request_as_itself() {
    if !runs_as_root() {
        return;
    }
    let (_tmp, share, state) = share_owned_by(0);
    let setpriv = ["setpriv", "--bounding-set", "-all,+dac_read_search,+dac_override", "--"];
    let (server, addr) = spawn_under(&setpriv, &share, &state, |_| {});
    assert_eq!(
        identity_of(&server),
        "identity: root without CAP_SETUID and CAP_SETGID: every request runs as uid 0, ownership is not mapped"
    );
    let mut c = Client::tcp(addr).with_cred(auth_sys(1000, 1000, &[]));
    let root = c.mount(share.to_str().unwrap()).expect("MNT");
    let fh = c.create_file(&root, "f");
    ok(c.write(&fh, 0, b"data", stable_how::FILE_SYNC));
    assert_eq!(std::fs::metadata(share.join("f")).unwrap().uid(), 0, "made by the server's own user");
}

/// rnfsd as uid 0 of a new user namespace whose uid and gid maps are `map`, written from here as
/// root of the parent namespace may (unshare's own --map-users needs newuidmap); the child waits
/// for them before it runs rnfsd.
fn spawn_in_user_ns(share: &Path, state: &Path, map: &str) -> rnfsd_test_support::process::Running {
    let written = state.with_file_name("maps-written");
    let wait = r#"while [ ! -e "$0" ]; do sleep 0.02; done; exec "$@""#;
    let unshare = ["unshare", "--user", "--", "sh", "-c", wait, written.to_str().unwrap()];
    let (server, _) = spawn_under(&unshare, share, state, |pid| {
        // unshare execs sh in the same process once the namespace exists.
        rnfsd_test_support::wait_until("the child's user namespace", Duration::from_secs(5), || {
            let own = std::fs::read_link("/proc/self/ns/user").ok();
            (std::fs::read_link(format!("/proc/{pid}/ns/user")).ok() != own).then_some(())
        });
        std::fs::write(format!("/proc/{pid}/uid_map"), map).unwrap();
        std::fs::write(format!("/proc/{pid}/gid_map"), map).unwrap();
        std::fs::write(&written, "").unwrap();
    });
    server
}

/// Root of a user namespace says whom requests run as: with uids and gids 0..65535 mapped (a
/// rootless container with subordinate ids) the callers, where mapped; with only uid 0 mapped
/// (rootless without subordinate ids) nobody else can be switched to, so every request runs as
/// the server's user. (Requests themselves need handles that resolve without
/// CAP_DAC_READ_SEARCH in the initial namespace, which kernel handles do not: issue 19's new
/// handle kind.)
#[test]
fn in_a_user_namespace_the_banner_says_whom_requests_run_as() {
    if !runs_as_root() {
        return;
    }
    let (_tmp, share, state) = share_owned_by(1000);
    let server = spawn_in_user_ns(&share, &state, "0 0 65536\n");
    assert!(
        server.seen.iter().any(|l| l.contains("does not resolve") && l.contains("a rootless container")),
        "the handle warning names the user namespace: {:?}",
        server.seen
    );
    assert_eq!(
        identity_of(&server),
        "identity: uid 0 of a user namespace (uid 0 outside, 65536 uids mapped): requests run with the \
         caller's uid/gid; callers whose uid or gid is not mapped are refused"
    );
    drop(server);
    let (_tmp, share, state) = share_owned_by(1000);
    let server = spawn_in_user_ns(&share, &state, "0 0 1\n");
    assert_eq!(
        identity_of(&server),
        "identity: uid 0 of a user namespace that maps no other uid (uid 0 outside): every request runs as \
         it, ownership is not mapped"
    );
}
