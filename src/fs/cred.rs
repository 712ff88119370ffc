//! Per-request identity: the uid, gid and groups a request executes as. When the server runs as
//! root, the blocking thread that executes a request takes on the caller's filesystem identity
//! for the duration of the operation, so the kernel enforces permissions and assigns ownership
//! exactly as it would for a local process of that user.

use std::io;

use super::sys;

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
    /// no switch, which saves ten system calls per request.
    pub fn is_root_equivalent(&self) -> bool {
        self.uid == 0 && self.gid == 0 && self.groups.iter().all(|&g| g == 0)
    }
}

/// Whether this process can switch identities (it runs as root). Without root every operation
/// runs as the server's own user.
pub fn can_switch() -> bool {
    sys::effective_uid() == 0
}

/// Runs `f` with this thread's filesystem identity set to `id`, then restores root. Must run on a
/// blocking worker thread, never an async executor thread.
pub fn with_identity<T>(id: &Identity, f: impl FnOnce() -> T) -> io::Result<T> {
    if !can_switch() {
        return Ok(f());
    }
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
    static AT_PLAIN_ROOT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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

/// Restores the thread to root when dropped, even if the operation panicked.
struct IdentityGuard;

impl IdentityGuard {
    fn enter(id: &Identity) -> io::Result<IdentityGuard> {
        if let Err(e) = sys::set_thread_fs_identity(id.uid, id.gid, &id.groups) {
            // Put the thread back in a known state before reporting.
            let _ = sys::set_thread_fs_identity(0, 0, &[]);
            return Err(e);
        }
        Ok(IdentityGuard)
    }
}

impl Drop for IdentityGuard {
    fn drop(&mut self) {
        let restored = sys::set_thread_fs_identity(0, 0, &[]);
        AT_PLAIN_ROOT.set(restored.is_ok());
        if let Err(e) = restored {
            // A thread stuck with a user's identity would run later requests with the wrong
            // permissions; there is no safe way to continue.
            panic!("cannot restore the worker thread's identity to root: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        if !can_switch() {
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

    #[test]
    fn permissions_are_enforced_for_the_identity() {
        if !can_switch() {
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
}
