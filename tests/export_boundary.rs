//! The export boundary: a directory that is no longer below its export's root answers
//! NFS3ERR_STALE for every operation through that export's handles, so `..` never leaves the
//! export and its options never apply outside it; and a handle never resolves to an object other
//! than the one it was made for (FUSE filesystems, whose kernel handles are node ids that a
//! remount hands out again).
//!
//! These tests need root (handles resolve with `open_by_handle_at`); without it they print why
//! and pass. The FUSE tests also need `bindfs` and `/dev/fuse`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rnfsd_test_support::*;
use xdr::nfs3::*;

fn skip_unless_root(test: &str) -> bool {
    if rnfsd::fs::cred::can_switch() {
        return false;
    }
    eprintln!("{test}: skipped: needs root (open_by_handle_at and identity switching)");
    true
}

fn mkdir_777(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// `base/export` exported `rw,no_root_squash`, with `base/export/a/b/c` inside and
/// `base/secret` outside.
fn moved_out_setup() -> (TestServer, std::path::PathBuf) {
    let base = tempfile::tempdir().unwrap();
    let export = base.path().join("export");
    mkdir_777(&export.join("a/b/c"));
    std::fs::write(base.path().join("secret"), b"top secret").unwrap();
    std::fs::write(export.join("a/inside"), b"inside").unwrap();
    let line = format!("{} *(rw,insecure,no_root_squash)", export.display());
    (TestServer::with_export_lines(base, &[line]), export)
}

/// Every procedure that takes the handle of the moved-out directory `dir` answers STALE, and
/// nothing is created, removed or renamed through it.
fn assert_stale_for_everything(c: &mut Client, dir: &nfs_fh3, file_inside_export: &nfs_fh3, host_dir: &Path) {
    let stale = nfsstat3::NFS3ERR_STALE;
    assert_eq!(status(&c.getattr(dir)), stale, "GETATTR");
    assert_eq!(status(&c.lookup(dir, "..")), stale, "LOOKUP ..");
    assert_eq!(status(&c.lookup(dir, ".")), stale, "LOOKUP .");
    assert_eq!(status(&c.lookup(dir, "inside")), stale, "LOOKUP of an entry");
    assert_eq!(status(&c.readdir(dir, 0, [0; 8], 4096)), stale, "READDIR");
    assert_eq!(status(&c.readdirplus(dir, 0, [0; 8], 4096, 32768)), stale, "READDIRPLUS");
    let access: ACCESS3res = c.nfs(procs::ACCESS, &ACCESS3args { object: dir.clone(), access: 0x3f });
    assert_eq!(status(&access), stale, "ACCESS");
    let setattr: SETATTR3res = c.nfs(
        procs::SETATTR,
        &SETATTR3args {
            object: dir.clone(),
            new_attributes: sattr3 { mode: Some(0o700), ..Default::default() },
            guard: None,
        },
    );
    assert_eq!(status(&setattr), stale, "SETATTR");
    let how = createhow3::UNCHECKED(sattr3 { mode: Some(0o644), ..Default::default() });
    assert_eq!(status(&c.create(dir, "planted", how)), stale, "CREATE");
    assert_eq!(status(&c.mkdir(dir, "planted-dir")), stale, "MKDIR");
    let symlink: SYMLINK3res = c.nfs(
        procs::SYMLINK,
        &SYMLINK3args {
            where_: dirop(dir, "planted-link"),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3(bytes::Bytes::from_static(b"/etc/shadow")),
            },
        },
    );
    assert_eq!(status(&symlink), stale, "SYMLINK");
    assert_eq!(status(&c.remove(dir, "inside")), stale, "REMOVE");
    let rmdir: RMDIR3res = c.nfs(procs::RMDIR, &RMDIR3args { object: dirop(dir, "b") });
    assert_eq!(status(&rmdir), stale, "RMDIR");
    let rename: RENAME3res =
        c.nfs(procs::RENAME, &RENAME3args { from: dirop(dir, "inside"), to: dirop(dir, "renamed") });
    assert_eq!(status(&rename), stale, "RENAME within");
    let link: LINK3res =
        c.nfs(procs::LINK, &LINK3args { file: file_inside_export.clone(), link: dirop(dir, "linked") });
    assert_eq!(status(&link), stale, "LINK into");
    for name in ["planted", "planted-dir", "planted-link", "renamed", "linked"] {
        assert!(!host_dir.join(name).exists(), "{name} was created outside the export");
    }
    assert!(host_dir.join("inside").exists(), "REMOVE went through");
    assert!(host_dir.join("b").exists(), "RMDIR went through");
}

#[test]
fn a_directory_moved_out_of_the_export_is_stale_for_every_operation() {
    if skip_unless_root("a_directory_moved_out_of_the_export_is_stale_for_every_operation") {
        return;
    }
    let (ts, export) = moved_out_setup();
    let base = export.parent().unwrap().to_path_buf();
    let mut c = Client::tcp(ts.addr());
    let root = c.mount(export.to_str().unwrap()).unwrap();
    let a = c.lookup_fh(&root, "a");
    let b = c.lookup_fh(&a, "b");
    let kept = c.create_file(&root, "kept");
    // Resolved (and cached) while inside.
    assert!(c.getattr(&a).is_ok() && c.getattr(&b).is_ok());
    std::fs::rename(export.join("a"), base.join("a")).unwrap();
    assert_stale_for_everything(&mut c, &a, &kept, &base.join("a"));
    assert_eq!(status(&c.getattr(&b)), nfsstat3::NFS3ERR_STALE, "a directory below the moved one");
    assert_eq!(status(&c.lookup(&b, "..")), nfsstat3::NFS3ERR_STALE);
    // The export itself is unharmed.
    assert!(c.getattr(&root).is_ok() && c.getattr(&kept).is_ok());
}

#[test]
fn dotdot_never_climbs_out_of_a_moved_directory() {
    if skip_unless_root("dotdot_never_climbs_out_of_a_moved_directory") {
        return;
    }
    let (ts, export) = moved_out_setup();
    let base = export.parent().unwrap().to_path_buf();
    let mut c = Client::tcp(ts.addr());
    let root = c.mount(export.to_str().unwrap()).unwrap();
    let a = c.lookup_fh(&root, "a");
    let b = c.lookup_fh(&a, "b");
    let c_dir = c.lookup_fh(&b, "c");
    std::fs::rename(export.join("a"), base.join("a")).unwrap();
    // Climb from the deepest handle as far as `..` goes, trying to reach base/secret.
    let mut cur = c_dir;
    for level in 0..8 {
        if let Some(ok) = c.lookup(&cur, "secret").ok() {
            let data = c.read(&ok.object, 0, 100).ok().map(|r| r.data);
            panic!("reached the secret outside the export after {level} `..`: {data:?}");
        }
        match c.lookup(&cur, "..").ok() {
            Some(ok) => cur = ok.object,
            None => break,
        }
    }
    assert_eq!(status(&c.lookup(&cur, "..")), nfsstat3::NFS3ERR_STALE, "the climb ends in STALE");
}

#[test]
fn a_directory_moved_back_or_within_the_export_works_again() {
    if skip_unless_root("a_directory_moved_back_or_within_the_export_works_again") {
        return;
    }
    let (ts, export) = moved_out_setup();
    let base = export.parent().unwrap().to_path_buf();
    let mut c = Client::tcp(ts.addr());
    let root = c.mount(export.to_str().unwrap()).unwrap();
    let a = c.lookup_fh(&root, "a");
    let b = c.lookup_fh(&a, "b");
    std::fs::rename(export.join("a"), base.join("a")).unwrap();
    assert_eq!(status(&c.getattr(&b)), nfsstat3::NFS3ERR_STALE);
    std::fs::rename(base.join("a"), export.join("a")).unwrap();
    assert!(c.getattr(&b).is_ok(), "moved back in");
    assert_eq!(c.lookup_fh(&b, ".."), a);
    // Deeper, and then shallower, within the export.
    mkdir_777(&export.join("x/y/z"));
    std::fs::rename(export.join("a"), export.join("x/y/z/a")).unwrap();
    assert!(c.getattr(&b).is_ok(), "moved deeper within the export");
    assert_eq!(c.lookup_fh(&b, ".."), a);
    let listing = c.readdirplus(&b, 0, [0; 8], 4096, 32768).ok().expect("READDIRPLUS ok");
    let dotdot = listing.reply.entries.iter().find(|e| e.name.as_bytes() == b"..").expect("`..` listed");
    assert_eq!(dotdot.name_handle.as_ref(), Some(&a), "READDIRPLUS `..` of a subdirectory");
    let z = c.lookup_fh(&a, "..");
    let y = c.lookup_fh(&z, "..");
    assert_eq!(c.lookup_fh(&y, ".."), c.lookup_fh(&root, "x"));
    std::fs::rename(export.join("x/y/z/a/b"), export.join("b")).unwrap();
    assert!(c.getattr(&b).is_ok(), "moved up to the root");
    assert_eq!(c.lookup_fh(&b, ".."), root);
    // `..` of the root is the root, in LOOKUP and in READDIRPLUS.
    assert_eq!(c.lookup_fh(&root, ".."), root);
    let listing = c.readdirplus(&root, 0, [0; 8], 4096, 32768).ok().expect("READDIRPLUS ok");
    let dotdot = listing.reply.entries.iter().find(|e| e.name.as_bytes() == b"..").expect("`..` listed");
    assert_eq!(dotdot.name_handle.as_ref(), Some(&root));
    assert_eq!(dotdot.fileid, std::fs::metadata(&export).unwrap().ino());
}

#[test]
fn a_rename_out_of_an_inner_export_leaves_its_handles_no_way_out() {
    if skip_unless_root("a_rename_out_of_an_inner_export_leaves_its_handles_no_way_out") {
        return;
    }
    // /X exported root_squash, /X/inner no_root_squash (the scenario).
    let base = tempfile::tempdir().unwrap();
    let outer = base.path().join("X");
    let inner = outer.join("inner");
    mkdir_777(&inner.join("proj"));
    std::fs::write(base.path().join("secret"), b"top secret").unwrap();
    let lines = [
        format!("{} *(rw,insecure,root_squash)", outer.display()),
        format!("{} *(rw,insecure,no_root_squash)", inner.display()),
    ];
    let ts = TestServer::with_export_lines(base, &lines);
    let mut c = Client::tcp(ts.addr());
    let inner_root = c.mount(inner.to_str().unwrap()).unwrap();
    let proj = c.lookup_fh(&inner_root, "proj");
    assert!(c.getattr(&proj).is_ok());
    // Through the outer export (as the squashed user): inner/proj → /X/proj.
    let outer_root = c.mount(outer.to_str().unwrap()).unwrap();
    let inner_via_outer = c.lookup_fh(&outer_root, "inner");
    let rename: RENAME3res = c.nfs(
        procs::RENAME,
        &RENAME3args { from: dirop(&inner_via_outer, "proj"), to: dirop(&outer_root, "proj") },
    );
    assert!(rename.is_ok(), "RENAME through the outer export: {:?}", rename.status());
    // The inner handle of proj climbs nowhere and creates nothing as root in the outer export.
    assert_eq!(status(&c.lookup(&proj, "..")), nfsstat3::NFS3ERR_STALE, "LOOKUP ..");
    let how = createhow3::UNCHECKED(sattr3 { mode: Some(0o4755), ..Default::default() });
    assert_eq!(status(&c.create(&proj, "rootfile", how)), nfsstat3::NFS3ERR_STALE, "CREATE");
    assert_eq!(status(&c.mkdir(&proj, "rootdir")), nfsstat3::NFS3ERR_STALE, "MKDIR");
    assert!(!outer.join("proj/rootfile").exists(), "a root-owned file in the root_squash export");
    assert!(!outer.join("proj/rootdir").exists());
    // Through the outer export the directory is its own again, under the outer export's rules.
    let proj_outer = c.lookup_fh(&outer_root, "proj");
    let made = c.create_file(&proj_outer, "squashed");
    assert_ne!(c.attrs(&made).uid, 0, "the outer export squashes root");
    // Moved back into the inner export, the inner handle works again.
    std::fs::rename(outer.join("proj"), inner.join("proj")).unwrap();
    assert!(c.getattr(&proj).is_ok());
    assert_eq!(c.lookup_fh(&proj, ".."), inner_root);
}

/// A bindfs (FUSE) mount of `src` at `mnt`, unmounted when dropped.
struct Bindfs(std::path::PathBuf);

impl Bindfs {
    fn mount(src: &Path, mnt: &Path) -> Option<Bindfs> {
        let ok = std::process::Command::new("bindfs").arg(src).arg(mnt).status().ok()?.success();
        ok.then(|| Bindfs(mnt.to_path_buf()))
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        // Lazily if still in use (a test that failed while a server held it open).
        let umount = |args: &[&str]| std::process::Command::new("umount").args(args).arg(&self.0).status();
        if !umount(&[]).is_ok_and(|s| s.success()) {
            let _ = umount(&["-l"]);
        }
    }
}

fn start(
    rt: &tokio::runtime::Runtime,
    export: &Path,
    state: &Path,
) -> Result<rnfsd::server::Server, rnfsd::server::StartError> {
    let line = format!("{} *(rw,insecure,no_root_squash)", export.display());
    let spec = rnfsd::exports::parse_export_line(&line, "test").unwrap();
    rt.block_on(rnfsd::server::Server::start(rnfsd::config::Config::for_tests(
        vec![spec],
        state.to_path_buf(),
    )))
}

#[test]
fn fuse_handles_never_resolve_to_another_file_after_a_remount() {
    if skip_unless_root("fuse_handles_never_resolve_to_another_file_after_a_remount") {
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        eprintln!("fuse_handles_never_resolve_to_another_file_after_a_remount: skipped: no /dev/fuse");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let (src, mnt, state) = (base.path().join("src"), base.path().join("mnt"), base.path().join("state"));
    mkdir_777(&src.join("d"));
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(src.join("a"), b"file A").unwrap();
    std::fs::write(src.join("b"), b"file B").unwrap();
    let Some(fuse) = Bindfs::mount(&src, &mnt) else {
        eprintln!(
            "fuse_handles_never_resolve_to_another_file_after_a_remount: skipped: bindfs is missing or cannot mount"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = match start(&rt, &mnt, &state) {
        Err(e) => {
            // No birth time from this FUSE filesystem: its handles cannot be checked, so rnfsd
            // refuses to export it, saying why.
            let msg = e.to_string();
            eprintln!("refused as expected: {msg}");
            assert!(msg.contains(mnt.to_str().unwrap()), "names the export: {msg}");
            assert!(msg.contains("FUSE") && msg.contains("birth time"), "says why: {msg}");
            return;
        }
        Ok(server) => server,
    };
    // This FUSE filesystem reports birth times: handles are tagged and checked.
    let mut c = Client::tcp(server.addrs().nfs_tcp);
    let root = c.mount(mnt.to_str().unwrap()).unwrap();
    let (a, b, d) = (c.lookup_fh(&root, "a"), c.lookup_fh(&root, "b"), c.lookup_fh(&root, "d"));
    rt.block_on(server.shutdown());
    // Mounted again, with the names looked up in another order: node ids change hands.
    drop(fuse);
    let _fuse = Bindfs::mount(&src, &mnt).expect("bindfs mounts again");
    for n in ["d", "b", "a"] {
        std::fs::symlink_metadata(mnt.join(n)).unwrap();
    }
    let server = start(&rt, &mnt, &state).expect("starts again");
    let mut c = Client::tcp(server.addrs().nfs_tcp);
    // Each old handle answers STALE or for its own object, never for another.
    for (what, fh, kind) in [("a", &a, ftype3::NF3REG), ("b", &b, ftype3::NF3REG), ("d", &d, ftype3::NF3DIR)]
    {
        if let Some(ok) = c.getattr(fh).ok() {
            assert_eq!(ok.obj_attributes.type_, kind, "the old handle of {what} names another object");
        }
        if let Some(ok) = c.read(fh, 0, 100).ok() {
            assert_eq!(kind, ftype3::NF3REG, "READ through the old handle of the directory");
            assert_eq!(ok.data, format!("file {}", what.to_uppercase()).as_bytes(), "old handle of {what}");
        }
    }
    let _ = c.write(&a, 0, b"written through a", stable_how::FILE_SYNC);
    assert_eq!(std::fs::read(src.join("b")).unwrap(), b"file B", "the old handle of a wrote into b");
    assert!(src.join("d").is_dir());
    let root = c.mount(mnt.to_str().unwrap()).unwrap();
    let fresh = c.lookup_fh(&root, "b");
    assert!(c.read(&fresh, 0, 100).ok().is_some());
    rt.block_on(server.shutdown());
}
