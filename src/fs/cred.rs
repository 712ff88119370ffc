//! Per-request identity: the uid, gid, groups and capabilities a request executes with. When the
//! server runs as root, the thread that executes a request takes on the caller's filesystem
//! identity for the duration of the operation, so the kernel enforces permissions, assigns
//! ownership, clears setuid/setgid bits and applies quotas and reserved blocks exactly as it
//! would for a local process of that user.
//!
//! The capability rule: a local process's capabilities follow its uid, not its groups. Any
//! non-zero uid runs with an empty effective set (a local non-root process has none: not only
//! the filesystem capabilities `setfsuid` takes away, but also CAP_SYS_RESOURCE, which lets a
//! write use ext4's reserved blocks and pass quota limits, CAP_SYS_ADMIN and the rest); uid 0,
//! whatever its gid and groups (`no_root_squash`, or `anonuid=0`), keeps exactly the
//! capabilities the server holds, as local root in another group does. The permitted set is
//! never touched, so the thread can raise its effective set again afterwards.
//!
//! The threading policy. Every call here changes only the calling thread (`setfsuid`,
//! `setfsgid`, and raw per-thread `setgroups` and `capset`, see [`super::sys`]), so switching
//! happens on whichever thread runs the procedure: a blocking-pool thread, or an async worker
//! for the procedures that run inline (LOOKUP, ACCESS, READLINK and the other small ones, READ
//! from the page cache, and on memory-backed exports every change). That is safe on an async
//! worker because a switch never spans an `.await`: [`with_identity`] takes a plain closure,
//! which cannot await, so the thread is restored before it returns to the executor and polls
//! any other task.
//!
//! The rule is that a thread is at plain root with the server's own capabilities whenever it is
//! outside [`with_identity`], so its identity is known before it serves anything else:
//! - the guard that switched restores it on every exit, a panic included (its `Drop` runs while
//!   the panic unwinds, before the dispatcher's `catch_unwind` sees it);
//! - each restoring call reports whether it took (`capset` and `setgroups` fail with an error;
//!   `setfsuid` and `setfsgid` cannot, so the ids are read back), and a thread that cannot be
//!   restored aborts the process, with a log line first, rather than go on serving with someone
//!   else's identity: the dispatcher catches panics and reuses the thread, so a panic would not
//!   do, and knfsd never continues with a wrong credential either;
//! - switches do not nest: leaving an inner one would put the rest of the outer one at root, so
//!   a nested call is a bug and panics, which unwinds through the outer guard and restores it.

use std::cell::Cell;
use std::io;

use super::sys::{self, ThreadCaps};

/// Whom an operation runs as, after the export's squashing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Identity {
    pub fn root() -> Identity {
        Identity { uid: 0, gid: 0, groups: Vec::new() }
    }

    /// Whether the kernel would treat this identity exactly like the thread's own root identity
    /// (uid 0, gid 0, no supplementary groups): group 0 among the supplementary groups adds
    /// nothing when the gid is already 0. Such calls (a client's root with `no_root_squash`) need
    /// no switch, which saves eight to twelve system calls per request.
    pub fn is_root_equivalent(&self) -> bool {
        self.uid == 0 && self.gid == 0 && self.groups.iter().all(|&g| g == 0)
    }

    /// Whether a local process of this identity has the server's capabilities: it has uid 0.
    /// Everyone else runs with none.
    pub fn keeps_capabilities(&self) -> bool {
        self.uid == 0
    }
}

/// `CAP_SETGID` and `CAP_SETUID`: setgroups and setfsgid need the first, setfsuid the second.
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

/// One line of `/proc/self/uid_map` or `gid_map`: `count` ids from `inside` are `outside` and on
/// in the parent namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// What this process may do about identities, read once from the real situation (its effective
/// capabilities and its user namespace), not from its uid alone: root in a container may lack
/// CAP_SETUID, and uid 0 of a rootless container is an ordinary user outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Situation {
    /// The effective uid (inside its user namespace).
    pub euid: u32,
    /// CAP_SETUID and CAP_SETGID are both effective: requests run as their callers.
    pub can_switch: bool,
    /// The uid and gid maps when this process runs in a user namespace other than the initial
    /// one; a caller whose ids are not mapped there cannot be switched to.
    pub user_ns: Option<(Vec<IdRange>, Vec<IdRange>)>,
}

fn parse_id_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|w| w.parse::<u32>());
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => {
                    Some(IdRange { inside, outside, count })
                }
                _ => None,
            }
        })
        .collect()
}

/// Whether `id` is mapped by `ranges`.
fn mapped(ranges: &[IdRange], id: u32) -> bool {
    ranges.iter().any(|r| id >= r.inside && id - r.inside < r.count)
}

impl Situation {
    fn read() -> Situation {
        let effective = sys::thread_caps().map(|c| c.effective).unwrap_or(0);
        let has = |cap: u32| effective & (1u64 << cap) != 0;
        let uid_map =
            std::fs::read_to_string("/proc/self/uid_map").map(|t| parse_id_map(&t)).unwrap_or_default();
        let gid_map =
            std::fs::read_to_string("/proc/self/gid_map").map(|t| parse_id_map(&t)).unwrap_or_default();
        let initial = |m: &[IdRange]| m == [IdRange { inside: 0, outside: 0, count: u32::MAX }];
        let in_initial_ns = uid_map.is_empty() || (initial(&uid_map) && initial(&gid_map));
        let user_ns = (!in_initial_ns).then_some((uid_map, gid_map));
        let mut s = Situation { euid: sys::effective_uid(), can_switch: false, user_ns };
        // A namespace that maps one uid (rootless without subordinate ids) has nobody to switch to.
        s.can_switch = has(CAP_SETUID) && has(CAP_SETGID) && s.mapped_uids() > 1;
        s
    }

    /// Whether a thread can take on `id`'s uid and gid here (its supplementary groups that are
    /// not mapped are left out: see [`with_identity`]).
    pub fn maps(&self, id: &Identity) -> bool {
        match &self.user_ns {
            None => true,
            Some((uids, gids)) => mapped(uids, id.uid) && mapped(gids, id.gid),
        }
    }

    /// What `uid` of this user namespace is outside it, if it is mapped.
    pub fn outside_uid(&self, uid: u32) -> Option<u32> {
        let (uids, _) = self.user_ns.as_ref()?;
        uids.iter()
            .find(|r| uid >= r.inside && uid - r.inside < r.count)
            .map(|r| r.outside + (uid - r.inside))
    }

    /// How many uids this user namespace maps.
    pub fn mapped_uids(&self) -> u64 {
        self.user_ns.as_ref().map_or(1 << 32, |(uids, _)| uids.iter().map(|r| u64::from(r.count)).sum())
    }
}

/// This process's [`Situation`], read at the first call (before any thread switches, since a
/// switched thread's effective set is empty).
pub fn situation() -> &'static Situation {
    static SITUATION: std::sync::OnceLock<Situation> = std::sync::OnceLock::new();
    SITUATION.get_or_init(Situation::read)
}

/// Whether this process can switch identities: it holds CAP_SETUID and CAP_SETGID. Without them
/// (a plain user, or root with those capabilities dropped) every operation runs as the server's
/// own user.
pub fn can_switch() -> bool {
    situation().can_switch
}

/// Runs `f` with this thread's filesystem identity set to `id` and, for a non-root `id`, no
/// effective capabilities; then restores root and its capabilities, even if `f` panics, or
/// aborts the process if it cannot (see the module docs). `f` must not hand the thread to other
/// work (it is a plain closure, so it cannot await), and must not call `with_identity` again:
/// that panics.
///
/// An `Err` means the switch itself failed, and the thread is back at root: `f` did not run.
pub fn with_identity<T>(id: &Identity, f: impl FnOnce() -> T) -> io::Result<T> {
    if !can_switch() {
        return Ok(f());
    }
    let here = situation();
    if !here.maps(id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("uid {} or gid {} is not mapped in this user namespace", id.uid, id.gid),
        ));
    }
    let unmapped_groups;
    let id = match &here.user_ns {
        Some((_, gids)) if id.groups.iter().any(|&g| !mapped(gids, g)) => {
            // setgroups refuses the whole list for one unmapped group; such a group cannot be
            // given to a thread here, so the request runs without it.
            unmapped_groups = Identity {
                groups: id.groups.iter().copied().filter(|&g| mapped(gids, g)).collect(),
                ..id.clone()
            };
            &unmapped_groups
        }
        _ => id,
    };
    // Also for a root-equivalent `id`, which would otherwise run as the outer caller.
    assert!(!SWITCHED.get(), "with_identity nested inside another switch");
    if id.is_root_equivalent() {
        at_plain_root()?;
        return Ok(f());
    }
    let guard = IdentityGuard::enter(id)?;
    let out = f();
    drop(guard);
    Ok(out)
}

thread_local! {
    /// Whether this thread is known to be at (uid 0, gid 0, no supplementary groups): every
    /// switch restores that, but a thread that never switched still has the groups the process
    /// started with.
    static AT_PLAIN_ROOT: Cell<bool> = const { Cell::new(false) };

    /// The thread's capabilities at root, read once before its first switch and restored after
    /// each: the server's own (nothing changes them later).
    static ROOT_CAPS: Cell<Option<ThreadCaps>> = const { Cell::new(None) };

    /// Whether an [`IdentityGuard`] has this thread at a caller's identity now.
    static SWITCHED: Cell<bool> = const { Cell::new(false) };
}

/// Puts a thread that never switched at plain root (once per thread, with the per-thread system
/// calls; glibc's setgroups would signal every thread of the process).
fn at_plain_root() -> io::Result<()> {
    if !AT_PLAIN_ROOT.get() {
        sys::set_thread_fs_identity(0, 0, &[])?;
        AT_PLAIN_ROOT.set(true);
    }
    Ok(())
}

/// This thread's capabilities at root (see [`ROOT_CAPS`]).
fn root_caps() -> io::Result<ThreadCaps> {
    match ROOT_CAPS.get() {
        Some(caps) => Ok(caps),
        None => {
            let caps = sys::thread_caps()?;
            ROOT_CAPS.set(Some(caps));
            Ok(caps)
        }
    }
}

/// A thread switched to a caller's identity; dropping it restores root, even if the operation
/// panicked, and aborts the process if that fails.
struct IdentityGuard {
    /// Whether the supplementary groups were changed (a caller with none finds the thread at
    /// plain root with none already, which saves a system call each way).
    groups_changed: bool,
    /// The capabilities to raise again, if they were dropped.
    dropped_caps: Option<ThreadCaps>,
}

impl IdentityGuard {
    /// Switches the ids first (setgroups and setfsgid need CAP_SETGID, setfsuid CAP_SETUID), then
    /// empties the effective set for a non-root identity.
    fn enter(id: &Identity) -> io::Result<IdentityGuard> {
        at_plain_root()?;
        let caps = root_caps()?;
        // From here on, dropping the guard (on an error too) puts the thread back.
        let mut guard = IdentityGuard { groups_changed: !id.groups.is_empty(), dropped_caps: None };
        SWITCHED.set(true);
        if guard.groups_changed {
            sys::set_thread_fs_identity(id.uid, id.gid, &id.groups)?;
        } else {
            sys::set_thread_fs_ids(id.uid, id.gid)?;
        }
        if !id.keeps_capabilities() {
            guard.dropped_caps = Some(caps);
            sys::set_thread_caps(ThreadCaps { effective: 0, ..caps })?;
        }
        Ok(guard)
    }
}

impl Drop for IdentityGuard {
    /// The reverse order: capabilities first, since restoring the ids needs CAP_SETUID and
    /// CAP_SETGID. Each call reports whether it took (see [`sys::set_thread_fs_ids`]), so success
    /// means the thread is at plain root with [`ROOT_CAPS`] again.
    fn drop(&mut self) {
        let restored = match self.dropped_caps {
            Some(caps) => sys::set_thread_caps(caps),
            None => Ok(()),
        }
        .and_then(|()| {
            if self.groups_changed {
                sys::set_thread_fs_identity(0, 0, &[])
            } else {
                sys::set_thread_fs_ids(0, 0)
            }
        });
        if let Err(e) = restored {
            // The thread would serve later requests with a caller's ids or without the
            // capabilities it needs to resolve handles; a panic would be caught and the thread
            // reused, so end the process. This also runs while a panic unwinds: aborting there
            // keeps the `catch_unwind` above from handing the thread back.
            tracing::error!("cannot restore the worker thread's identity to root: {e}; aborting");
            eprintln!("rnfsd: cannot restore the worker thread's identity to root: {e}; aborting");
            std::process::abort();
        }
        SWITCHED.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_ns(uid_map: &str, gid_map: &str) -> Situation {
        Situation { euid: 0, can_switch: true, user_ns: Some((parse_id_map(uid_map), parse_id_map(gid_map))) }
    }

    #[test]
    fn id_maps_say_who_is_mapped_and_what_they_are_outside() {
        let s = in_ns(
            "         0       1000          1\n         1     100000      65536\n",
            "0 1000 1\n1 100000 65536\n",
        );
        assert_eq!(s.mapped_uids(), 65537);
        assert_eq!(s.outside_uid(0), Some(1000));
        assert_eq!(s.outside_uid(1000), Some(100999));
        assert_eq!(s.outside_uid(65537), None);
        let id = |uid, gid| Identity { uid, gid, groups: vec![] };
        assert!(s.maps(&id(1000, 1000)));
        assert!(s.maps(&id(65536, 65536)));
        assert!(!s.maps(&id(65537, 1000)), "an unmapped uid");
        assert!(!s.maps(&id(1000, 70000)), "an unmapped gid");
        let initial = Situation { euid: 0, can_switch: true, user_ns: None };
        assert!(initial.maps(&id(u32::MAX - 1, 7)));
        assert_eq!(parse_id_map("junk\n0 0\n"), vec![], "damaged lines map nothing");
    }

    /// Whether the identity tests can run (as root); says so on stderr when they cannot, so a
    /// run without root shows what it did not test.
    fn switching_available() -> bool {
        let can = can_switch();
        if !can {
            eprintln!("skipped: switching identities needs root");
        }
        can
    }

    #[test]
    fn only_plain_root_skips_the_switch() {
        assert!(Identity::root().is_root_equivalent());
        assert!(Identity { uid: 0, gid: 0, groups: vec![0, 0] }.is_root_equivalent());
        assert!(!Identity { uid: 0, gid: 0, groups: vec![0, 5] }.is_root_equivalent());
        assert!(!Identity { uid: 0, gid: 5, groups: vec![] }.is_root_equivalent());
        assert!(!Identity { uid: 5, gid: 0, groups: vec![] }.is_root_equivalent());
    }

    #[test]
    fn identity_applies_to_this_thread_only() {
        if !switching_available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("owned");
        let id = Identity { uid: 4321, gid: 8765, groups: vec![8765] };
        std::thread::scope(|s| {
            s.spawn(|| {
                // The tempdir is root-owned 0700, so let the user in.
                std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))
                    .unwrap();
                with_identity(&id, || std::fs::write(&p, b"x").unwrap()).unwrap();
            })
            .join()
            .unwrap();
        });
        let md = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((md.uid(), md.gid()), (4321, 8765));
        // This thread is still root: creating a file here gives root ownership.
        std::fs::write(dir.path().join("root"), b"").unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("root")).unwrap().uid(), 0);
    }

    /// A field of this thread's `/proc/thread-self/status`, e.g. `CapEff` or `Uid`.
    fn thread_status(field: &str) -> String {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line[field.len() + 1..].trim().to_string()
    }

    /// `CapEff`, `CapPrm`, the uids and gids (real, effective, saved, filesystem) and the groups.
    fn thread_credentials() -> [String; 5] {
        ["CapEff", "CapPrm", "Uid", "Gid", "Groups"].map(thread_status)
    }

    #[test]
    fn a_user_identity_runs_with_no_capabilities() {
        if !switching_available() {
            return;
        }
        std::thread::spawn(|| {
            let before = thread_credentials();
            assert_ne!(before[0], "0000000000000000", "the test runs with capabilities");
            let id = Identity { uid: 1000, gid: 50, groups: vec![50] };
            let (eff, prm) =
                with_identity(&id, || (thread_status("CapEff"), thread_status("CapPrm"))).unwrap();
            assert_eq!(eff, "0000000000000000", "a local process of uid 1000 has no capabilities");
            assert_eq!(prm, before[1], "the permitted set stays, to raise them again");
            assert_eq!(thread_credentials(), before, "everything is back afterwards");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn root_with_other_groups_keeps_roots_capabilities() {
        if !switching_available() {
            return;
        }
        std::thread::spawn(|| {
            let before = thread_credentials();
            // no_root_squash with a gid of 50, or root_squash with anonuid=0: local root in
            // another group still has every capability root has.
            let id = Identity { uid: 0, gid: 50, groups: vec![50] };
            let (eff, fsgid) =
                with_identity(&id, || (thread_status("CapEff"), thread_status("Gid"))).unwrap();
            assert_eq!(eff, before[0]);
            assert!(fsgid.ends_with("\t50"), "the switch happened: {fsgid}");
            assert_eq!(thread_credentials(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_caller_without_groups_gets_none_on_a_thread_that_had_some() {
        if !switching_available() {
            return;
        }
        std::thread::spawn(|| {
            // A thread that never switched keeps the groups the process started with.
            sys::set_thread_fs_identity(0, 0, &[7, 8]).unwrap();
            let id = Identity { uid: 1000, gid: 50, groups: vec![] };
            let groups = with_identity(&id, || thread_status("Groups")).unwrap();
            assert_eq!(groups, "");
            let groups = with_identity(&id, || thread_status("Groups")).unwrap();
            assert_eq!(groups, "");
            assert_eq!(thread_status("Groups"), "", "the thread is at plain root afterwards");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_panic_inside_leaves_the_thread_as_it_was() {
        if !switching_available() {
            return;
        }
        std::thread::spawn(|| {
            let before = thread_credentials();
            for uid in [0, 1000] {
                let id = Identity { uid, gid: 50, groups: vec![50, 60] };
                let panicked = std::panic::catch_unwind(|| {
                    with_identity(&id, || -> () { panic!("a procedure panics") }).unwrap()
                });
                assert!(panicked.is_err());
                assert_eq!(thread_credentials(), before, "after a panic as uid {uid}");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn permissions_are_enforced_for_the_identity() {
        if !switching_available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        std::fs::write(&p, b"x").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let id = Identity { uid: 1000, gid: 1000, groups: vec![] };
        let r = std::thread::spawn(move || with_identity(&id, || std::fs::read(&p)).unwrap()).join().unwrap();
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_nested_switch_panics_and_leaves_the_thread_as_it_was() {
        if !switching_available() {
            return;
        }
        std::thread::spawn(|| {
            let before = thread_credentials();
            let outer = Identity { uid: 1000, gid: 50, groups: vec![50] };
            for inner in [Identity { uid: 2000, gid: 60, groups: vec![] }, Identity::root()] {
                let nested = std::panic::catch_unwind(|| {
                    with_identity(&outer, || with_identity(&inner, || thread_status("Uid")).unwrap())
                });
                assert!(nested.is_err(), "a switch inside another is refused: {inner:?}");
                assert_eq!(thread_credentials(), before, "after a nested switch to {inner:?}");
                // The next switch is not taken for a nested one.
                assert!(with_identity(&outer, || thread_status("Uid")).unwrap().ends_with("\t1000"));
            }
        })
        .join()
        .unwrap();
    }

    /// Set in the process [`a_thread_that_cannot_be_restored_aborts_the_process`] starts.
    const RESTORE_FAILS: &str = "RNFSD_TEST_RESTORE_FAILS";

    /// A thread whose identity cannot be restored must not serve again: not after a normal
    /// return, and not after a panic that a `catch_unwind` (the dispatcher's) would catch. The
    /// test runs itself in a child process, whose operation takes CAP_SETUID and CAP_SETGID out
    /// of the thread's permitted set so the restore fails.
    #[test]
    fn a_thread_that_cannot_be_restored_aborts_the_process() {
        if !switching_available() {
            return;
        }
        if let Some(how) = std::env::var_os(RESTORE_FAILS) {
            let panics = how == "panic";
            std::thread::spawn(move || {
                let id = Identity { uid: 1000, gid: 50, groups: vec![50] };
                let caught = std::panic::catch_unwind(|| {
                    with_identity(&id, || {
                        let caps = sys::thread_caps().unwrap();
                        // CAP_SETGID is capability 6, CAP_SETUID 7 (linux/capability.h).
                        let setid = 1 << 6 | 1 << 7;
                        sys::set_thread_caps(ThreadCaps { permitted: caps.permitted & !setid, ..caps })
                            .unwrap();
                        if panics {
                            panic!("a procedure panics");
                        }
                    })
                });
                println!("the thread went on serving after {caught:?}: {}", thread_status("Uid"));
            })
            .join()
            .unwrap();
            return;
        }
        use std::os::unix::process::ExitStatusExt;
        let name = "fs::cred::tests::a_thread_that_cannot_be_restored_aborts_the_process";
        for how in ["return", "panic"] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads=1"])
                .env(RESTORE_FAILS, how)
                .output()
                .unwrap();
            let (stdout, stderr) =
                (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.signal(), Some(libc::SIGABRT), "after a {how}: {stdout}\n{stderr}");
            assert!(
                stderr.contains("cannot restore the worker thread's identity to root"),
                "the abort is explained: {stderr}"
            );
            assert!(!stdout.contains("went on serving"), "{stdout}");
        }
    }
}
