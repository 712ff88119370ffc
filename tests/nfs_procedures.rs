//! Every NFS v3 procedure against an in-process server, success paths and the main RFC 1813
//! error cases, with the host filesystem as ground truth.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use bytes::Bytes;
use rnfsd_test_support::*;
use xdr::nfs3::*;

#[test]
fn getattr_matches_the_host() {
    let ts = TestServer::rw();
    std::fs::write(ts.path("f"), b"hello").unwrap();
    let (mut c, root) = ts.client();
    let fh = c.lookup_fh(&root, "f");
    let a = c.attrs(&fh);
    let md = std::fs::metadata(ts.path("f")).unwrap();
    assert_eq!(a.type_, ftype3::NF3REG);
    assert_eq!(a.size, 5);
    assert_eq!(a.fileid, md.ino());
    assert_eq!(a.nlink, 1);
    assert_eq!(a.mode, md.mode() & 0o7777);
    assert_eq!((a.uid, a.gid), (md.uid(), md.gid()));
    assert_eq!(a.mtime, nfstime3 { seconds: md.mtime() as u32, nseconds: md.mtime_nsec() as u32 });
    let r = c.attrs(&root);
    assert_eq!(r.type_, ftype3::NF3DIR);
    assert_eq!(r.fsid, a.fsid);
}

#[test]
fn setattr_size_mode_owner_times_and_guard() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let fh = c.create_file(&root, "f");
    c.write(&fh, 0, b"0123456789", stable_how::FILE_SYNC);
    let set = |c: &mut Client, new_attributes: sattr3, guard: sattrguard3| -> SETATTR3res {
        c.nfs(procs::SETATTR, &SETATTR3args { object: fh.clone(), new_attributes, guard })
    };
    ok(set(
        &mut c,
        sattr3 { size: Some(3), mode: Some(0o600), uid: Some(1234), gid: Some(4321), ..Default::default() },
        None,
    ));
    let md = std::fs::metadata(ts.path("f")).unwrap();
    assert_eq!(md.len(), 3);
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!((md.uid(), md.gid()), (1234, 4321));
    let t = nfstime3 { seconds: 1_000_000_000, nseconds: 123_456_789 };
    let res = ok(set(
        &mut c,
        sattr3 { atime: SetTime::ClientTime(t), mtime: SetTime::ClientTime(t), ..Default::default() },
        None,
    ));
    assert_eq!(res.obj_wcc.after.as_ref().unwrap().mtime, t);
    let md = std::fs::metadata(ts.path("f")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_000_000_000, 123_456_789));
    ok(set(&mut c, sattr3 { mtime: SetTime::ServerTime, ..Default::default() }, None));
    assert!(std::fs::metadata(ts.path("f")).unwrap().mtime() > 1_000_000_000);
    // Guard: a wrong ctime is NOT_SYNC with wcc data; the right one works.
    let bad = set(
        &mut c,
        sattr3 { mode: Some(0o644), ..Default::default() },
        Some(nfstime3 { seconds: 1, nseconds: 0 }),
    );
    match bad {
        Nfs3Result::Err(nfsstat3::NFS3ERR_NOT_SYNC, wcc) => {
            assert!(wcc.before.is_some() && wcc.after.is_some())
        }
        other => panic!("guard mismatch gave {other:?}"),
    }
    assert_eq!(std::fs::metadata(ts.path("f")).unwrap().mode() & 0o7777, 0o600);
    let ctime = c.attrs(&fh).ctime;
    ok(set(&mut c, sattr3 { mode: Some(0o644), ..Default::default() }, Some(ctime)));
    assert_eq!(std::fs::metadata(ts.path("f")).unwrap().mode() & 0o7777, 0o644);
    // Size on a directory.
    let r: SETATTR3res = c.nfs(
        procs::SETATTR,
        &SETATTR3args {
            object: root.clone(),
            new_attributes: sattr3 { size: Some(0), ..Default::default() },
            guard: None,
        },
    );
    assert!(matches!(status(&r), nfsstat3::NFS3ERR_ISDIR | nfsstat3::NFS3ERR_INVAL));
}

#[test]
fn lookup_cases() {
    let ts = TestServer::rw();
    std::fs::create_dir(ts.path("d")).unwrap();
    std::fs::write(ts.path("d/f"), b"x").unwrap();
    let (mut c, root) = ts.client();
    let d = c.lookup_fh(&root, "d");
    let res = ok(c.lookup(&d, "f"));
    assert_eq!(res.obj_attributes.unwrap().fileid, std::fs::metadata(ts.path("d/f")).unwrap().ino());
    assert!(res.dir_attributes.is_some());
    match c.lookup(&d, "missing") {
        Nfs3Result::Err(nfsstat3::NFS3ERR_NOENT, dir_attrs) => assert!(dir_attrs.is_some()),
        other => panic!("{other:?}"),
    }
    // `..` of a subdirectory is the root; `..` of the root stays at the root.
    let up = ok(c.lookup(&d, ".."));
    assert_eq!(up.object, root);
    let up = ok(c.lookup(&root, ".."));
    assert_eq!(up.object, root);
    assert_eq!(up.obj_attributes.unwrap().fileid, std::fs::metadata(ts.export_path()).unwrap().ino());
    let f = c.lookup_fh(&d, "f");
    assert_eq!(status(&c.lookup(&f, "x")), nfsstat3::NFS3ERR_NOTDIR);
}

#[test]
fn access_is_judged_for_the_caller() {
    let ts = TestServer::rw();
    std::fs::write(ts.path("secret"), b"x").unwrap();
    std::fs::set_permissions(ts.path("secret"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(ts.path("open"), b"x").unwrap();
    std::fs::set_permissions(ts.path("open"), PermissionsExt::from_mode(0o666)).unwrap();
    let (mut c, root) = ts.client();
    let secret = c.lookup_fh(&root, "secret");
    let open = c.lookup_fh(&root, "open");
    let all = ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_EXECUTE;
    let access = |c: &mut Client, fh: &nfs_fh3| {
        ok(c.nfs::<_, ACCESS3res>(procs::ACCESS, &ACCESS3args { object: fh.clone(), access: all })).access
    };
    assert_eq!(access(&mut c, &secret) & (ACCESS3_READ | ACCESS3_MODIFY), ACCESS3_READ | ACCESS3_MODIFY);
    if !rnfsd::fs::cred::can_switch() {
        return;
    }
    let mut u = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 1000, &[]));
    assert_eq!(access(&mut u, &secret) & (ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND), 0);
    assert_eq!(access(&mut u, &open) & (ACCESS3_READ | ACCESS3_MODIFY), ACCESS3_READ | ACCESS3_MODIFY);
    // Directories: LOOKUP and DELETE apply, EXECUTE does not.
    let dir_bits =
        ok(u.nfs::<_, ACCESS3res>(procs::ACCESS, &ACCESS3args { object: root.clone(), access: 0x3f })).access;
    assert_ne!(dir_bits & ACCESS3_LOOKUP, 0);
    assert_eq!(dir_bits & ACCESS3_EXECUTE, 0);
}

#[test]
fn reads_are_right_from_the_page_cache_and_from_the_disk() {
    let ts = TestServer::rw();
    let data: Vec<u8> = (0..512 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(ts.path("f"), &data).unwrap();
    let (mut c, root) = ts.client();
    let fh = c.lookup_fh(&root, "f");
    let check = |c: &mut Client, what: &str| {
        for (offset, count) in
            [(0u64, 4096u32), (4096 * 7 + 13, 4096), (100_000, 65_536), (0, 512 * 1024), (500_000, 65_536)]
        {
            let r =
                c.read(&fh, offset, count).ok().unwrap_or_else(|| panic!("READ {offset}+{count} ({what})"));
            let end = (offset as usize + count as usize).min(data.len());
            assert_eq!(&r.data[..], &data[offset as usize..end], "READ {offset}+{count} ({what})");
            assert_eq!(r.eof, end == data.len(), "eof of READ {offset}+{count} ({what})");
        }
    };
    check(&mut c, "cached");
    // Evict the file's pages: small reads are first tried without waiting for the disk, which
    // must hand them to the blocking pool rather than fail or return short data.
    let f = std::fs::File::open(ts.path("f")).unwrap();
    f.sync_all().unwrap();
    nix::fcntl::posix_fadvise(&f, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED).unwrap();
    check(&mut c, "evicted");
}

#[test]
fn readlink_and_symlink() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let args = SYMLINK3args {
        where_: dirop(&root, "l"),
        symlink: symlinkdata3 {
            symlink_attributes: sattr3::default(),
            symlink_data: nfspath3(Bytes::from_static(b"../target/x")),
        },
    };
    let made = ok(c.nfs::<_, SYMLINK3res>(procs::SYMLINK, &args));
    assert_eq!(made.obj_attributes.unwrap().type_, ftype3::NF3LNK);
    assert_eq!(std::fs::read_link(ts.path("l")).unwrap().to_str().unwrap(), "../target/x");
    let fh = made.obj.unwrap();
    let rl = ok(c.nfs::<_, READLINK3res>(procs::READLINK, &READLINK3args { symlink: fh }));
    assert_eq!(rl.data.as_bytes(), b"../target/x");
    let f = c.create_file(&root, "f");
    assert_eq!(
        status(&c.nfs::<_, READLINK3res>(procs::READLINK, &READLINK3args { symlink: f })),
        nfsstat3::NFS3ERR_INVAL
    );
    assert_eq!(status(&c.nfs::<_, SYMLINK3res>(procs::SYMLINK, &args)), nfsstat3::NFS3ERR_EXIST);
}

#[test]
fn read_and_write() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let fh = c.create_file(&root, "data");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let w = ok(c.write(&fh, 0, &payload, stable_how::UNSTABLE));
    assert_eq!(w.count, payload.len() as u32);
    assert!(w.file_wcc.before.is_some() && w.file_wcc.after.is_some());
    let commit =
        ok(c.nfs::<_, COMMIT3res>(procs::COMMIT, &COMMIT3args { file: fh.clone(), offset: 0, count: 0 }));
    assert_eq!(commit.verf, w.verf, "COMMIT and WRITE verifiers agree within one server lifetime");
    for stable in [stable_how::DATA_SYNC, stable_how::FILE_SYNC] {
        let w2 = ok(c.write(&fh, 10, b"abc", stable));
        assert!(w2.committed as u32 >= stable as u32);
        assert_eq!(w2.verf, w.verf);
    }
    let mut expect = payload.clone();
    expect[10..13].copy_from_slice(b"abc");
    assert_eq!(std::fs::read(ts.path("data")).unwrap(), expect);
    let r = ok(c.read(&fh, 0, 100_000));
    assert_eq!(&r.data[..], &expect[..100_000]);
    assert!(!r.eof);
    let r = ok(c.read(&fh, 150_000, 100_000));
    assert_eq!(r.count, 50_000);
    assert!(r.eof);
    assert_eq!(&r.data[..], &expect[150_000..]);
    let r = ok(c.read(&fh, 500_000, 10));
    assert_eq!((r.count, r.eof), (0, true));
    let r = ok(c.read(&fh, 0, 0));
    assert_eq!(r.count, 0);
    assert_eq!(status(&c.write(&root, 0, b"x", stable_how::UNSTABLE)), nfsstat3::NFS3ERR_ISDIR);
    assert_eq!(status(&c.read(&root, 0, 10)), nfsstat3::NFS3ERR_ISDIR);
}

#[test]
fn create_modes_and_exclusive_verifier() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    c.create_file(&root, "u");
    std::fs::write(ts.path("u"), b"some data").unwrap();
    // UNCHECKED over an existing file applies only the size.
    let how = createhow3::UNCHECKED(sattr3 { size: Some(0), mode: Some(0o600), ..Default::default() });
    ok(c.create(&root, "u", how));
    let md = std::fs::metadata(ts.path("u")).unwrap();
    assert_eq!(md.len(), 0);
    assert_eq!(md.mode() & 0o7777, 0o644);
    let guarded = createhow3::GUARDED(sattr3 { mode: Some(0o640), ..Default::default() });
    assert_eq!(status(&c.create(&root, "u", guarded.clone())), nfsstat3::NFS3ERR_EXIST);
    let g = ok(c.create(&root, "g", guarded));
    assert!(g.dir_wcc.before.is_some() && g.dir_wcc.after.is_some());
    assert_eq!(std::fs::metadata(ts.path("g")).unwrap().mode() & 0o7777, 0o640);
    let verf = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
    let first = ok(c.create(&root, "x", createhow3::EXCLUSIVE(verf)));
    let again = ok(c.create(&root, "x", createhow3::EXCLUSIVE(verf)));
    assert_eq!(first.obj, again.obj, "a retried EXCLUSIVE create returns the same file");
    assert_eq!(status(&c.create(&root, "x", createhow3::EXCLUSIVE(*b"otherver"))), nfsstat3::NFS3ERR_EXIST);
    // Names `.` and `..` name no new file.
    assert_eq!(
        status(&c.create(&root, "..", createhow3::UNCHECKED(sattr3::default()))),
        nfsstat3::NFS3ERR_EXIST
    );
}

#[test]
fn ownership_follows_auth_sys_and_squashing() {
    if !rnfsd::fs::cred::can_switch() {
        return;
    }
    let ts = TestServer::start("rw,insecure,root_squash");
    let (c, root) = ts.client();
    drop(c);
    let mut u = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 1000, &[1000]));
    u.create_file(&root, "by1000");
    let md = std::fs::metadata(ts.path("by1000")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    let mut r = Client::tcp(ts.addr());
    r.create_file(&root, "byroot");
    let md = std::fs::metadata(ts.path("byroot")).unwrap();
    assert_eq!((md.uid(), md.gid()), (65534, 65534), "root is squashed to nobody");
    // uid 1000 cannot remove a file in a sticky directory it does not own.
    let ts2 = TestServer::rw();
    let (mut c2, root2) = ts2.client();
    c2.create_file(&root2, "rootfile");
    assert_eq!(std::fs::metadata(ts2.path("rootfile")).unwrap().uid(), 0, "no_root_squash keeps uid 0");
    std::fs::set_permissions(ts2.export_path(), PermissionsExt::from_mode(0o1777)).unwrap();
    let mut u2 = Client::tcp(ts2.addr()).with_cred(auth_sys(1000, 1000, &[]));
    assert_eq!(status(&u2.remove(&root2, "rootfile")), nfsstat3::NFS3ERR_PERM);
    assert!(ts2.path("rootfile").exists());
}

#[test]
fn mkdir_mknod_remove_rmdir() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let d = c.mkdir_fh(&root, "d");
    assert!(ts.path("d").is_dir());
    assert_eq!(status(&c.mkdir(&root, "d")), nfsstat3::NFS3ERR_EXIST);
    let mk = |c: &mut Client, n: &str, what: mknoddata3| -> MKNOD3res {
        c.nfs(procs::MKNOD, &MKNOD3args { where_: dirop(&d, n), what })
    };
    ok(mk(&mut c, "fifo", mknoddata3::FIFO(sattr3 { mode: Some(0o644), ..Default::default() })));
    ok(mk(&mut c, "sock", mknoddata3::SOCK(sattr3::default())));
    assert!(std::fs::symlink_metadata(ts.path("d/fifo")).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(ts.path("d/sock")).unwrap().file_type().is_socket());
    assert_eq!(status(&mk(&mut c, "reg", mknoddata3::Other(ftype3::NF3REG))), nfsstat3::NFS3ERR_BADTYPE);
    if rnfsd::fs::cred::can_switch() {
        let dev = devicedata3 {
            dev_attributes: sattr3 { mode: Some(0o600), ..Default::default() },
            spec: specdata3 { specdata1: 1, specdata2: 3 },
        };
        let made = ok(mk(&mut c, "null", mknoddata3::CHR(dev)));
        let a = made.obj_attributes.unwrap();
        assert_eq!((a.type_, a.rdev.specdata1, a.rdev.specdata2), (ftype3::NF3CHR, 1, 3));
    }
    c.create_file(&d, "f");
    assert_eq!(
        status(&c.nfs::<_, RMDIR3res>(procs::RMDIR, &RMDIR3args { object: dirop(&root, "d") })),
        nfsstat3::NFS3ERR_NOTEMPTY
    );
    assert_eq!(
        status(&c.nfs::<_, RMDIR3res>(procs::RMDIR, &RMDIR3args { object: dirop(&d, "f") })),
        nfsstat3::NFS3ERR_NOTDIR
    );
    assert_eq!(status(&c.remove(&root, "d")), nfsstat3::NFS3ERR_ISDIR);
    for n in ["f", "fifo", "sock", "null"] {
        if ts.path("d").join(n).exists() || std::fs::symlink_metadata(ts.path("d").join(n)).is_ok() {
            ok(c.remove(&d, n));
        }
    }
    assert_eq!(status(&c.remove(&d, "f")), nfsstat3::NFS3ERR_NOENT);
    let r = ok(c.nfs::<_, RMDIR3res>(procs::RMDIR, &RMDIR3args { object: dirop(&root, "d") }));
    assert!(r.dir_wcc.after.is_some());
    assert!(!ts.path("d").exists());
    assert_eq!(status(&c.getattr(&d)), nfsstat3::NFS3ERR_STALE);
}

#[test]
fn rename_rules() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let a = c.mkdir_fh(&root, "a");
    let b = c.mkdir_fh(&root, "b");
    let f = c.create_file(&a, "f");
    c.write(&f, 0, b"F", stable_how::FILE_SYNC);
    let g = c.create_file(&b, "g");
    c.write(&g, 0, b"G", stable_how::FILE_SYNC);
    let rename = |c: &mut Client, fd: &nfs_fh3, fname: &str, td: &nfs_fh3, tname: &str| -> RENAME3res {
        c.nfs(procs::RENAME, &RENAME3args { from: dirop(fd, fname), to: dirop(td, tname) })
    };
    let r = ok(rename(&mut c, &a, "f", &b, "g"));
    assert!(r.fromdir_wcc.after.is_some() && r.todir_wcc.after.is_some());
    assert_eq!(std::fs::read(ts.path("b/g")).unwrap(), b"F");
    assert!(!ts.path("a/f").exists());
    assert_eq!(c.attrs(&f).size, 1, "the handle follows the renamed file");
    assert_eq!(status(&c.getattr(&g)), nfsstat3::NFS3ERR_STALE, "the replaced file is gone");
    let sub = c.mkdir_fh(&b, "sub");
    c.create_file(&sub, "x");
    let e = c.mkdir_fh(&root, "e");
    let _ = e;
    assert!(matches!(
        status(&rename(&mut c, &root, "e", &b, "sub")),
        nfsstat3::NFS3ERR_NOTEMPTY | nfsstat3::NFS3ERR_EXIST
    ));
    assert_eq!(status(&rename(&mut c, &b, "g", &b, "sub")), nfsstat3::NFS3ERR_ISDIR);
    assert_eq!(status(&rename(&mut c, &root, "e", &b, "g")), nfsstat3::NFS3ERR_NOTDIR);
    assert_eq!(status(&rename(&mut c, &root, "nope", &b, "z")), nfsstat3::NFS3ERR_NOENT);
    ok(rename(&mut c, &root, "e", &a, "e2"));
    assert!(ts.path("a/e2").is_dir());
}

#[test]
fn link_counts() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let f = c.create_file(&root, "f");
    let link = |c: &mut Client, file: &nfs_fh3, n: &str| -> LINK3res {
        c.nfs(procs::LINK, &LINK3args { file: file.clone(), link: dirop(&root, n) })
    };
    let r = ok(link(&mut c, &f, "f2"));
    assert_eq!(r.file_attributes.unwrap().nlink, 2);
    assert_eq!(std::fs::metadata(ts.path("f")).unwrap().nlink(), 2);
    assert_eq!(
        std::fs::metadata(ts.path("f2")).unwrap().ino(),
        std::fs::metadata(ts.path("f")).unwrap().ino()
    );
    assert_eq!(status(&link(&mut c, &f, "f2")), nfsstat3::NFS3ERR_EXIST);
    let d = c.mkdir_fh(&root, "d");
    assert_eq!(status(&link(&mut c, &d, "d2")), nfsstat3::NFS3ERR_ISDIR);
}

#[test]
fn readdir_pages_list_every_entry_once() {
    let ts = TestServer::rw();
    std::fs::create_dir(ts.path("big")).unwrap();
    for i in 0..1000 {
        std::fs::write(ts.path(&format!("big/file-{i:04}")), b"").unwrap();
    }
    let (mut c, root) = ts.client();
    let big = c.lookup_fh(&root, "big");
    let names = c.readdir_all(&big, 1024);
    let mut sorted: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    sorted.sort();
    let before = sorted.len();
    sorted.dedup();
    assert_eq!(before, sorted.len(), "no duplicates");
    assert_eq!(sorted.len(), 1002, "1000 files plus . and ..");
    assert!(sorted.contains(&".") && sorted.contains(&".."));
    // fileids are inode numbers.
    for (n, id) in &names {
        if n.starts_with("file-") {
            assert_eq!(*id, std::fs::metadata(ts.path(&format!("big/{n}"))).unwrap().ino());
        }
    }
    // Too small for a single entry.
    assert_eq!(status(&c.readdir(&big, 0, [0; 8], 50)), nfsstat3::NFS3ERR_TOOSMALL);
}

#[test]
fn readdir_resumes_after_the_directory_changes() {
    let ts = TestServer::rw();
    std::fs::create_dir(ts.path("d")).unwrap();
    for i in 0..300 {
        std::fs::write(ts.path(&format!("d/n{i}")), b"").unwrap();
    }
    let (mut c, root) = ts.client();
    let d = c.lookup_fh(&root, "d");
    let first = ok(c.readdir(&d, 0, [0; 8], 1024));
    assert!(!first.reply.eof);
    let seen: Vec<String> =
        first.reply.entries.iter().map(|e| String::from_utf8_lossy(e.name.as_bytes()).into_owned()).collect();
    // Change the directory between pages: remove an entry not yet listed, add new ones.
    for i in 0..300 {
        let n = format!("n{i}");
        if !seen.contains(&n) {
            std::fs::remove_file(ts.path(&format!("d/{n}"))).unwrap();
            break;
        }
    }
    for i in 0..20 {
        std::fs::write(ts.path(&format!("d/new{i}")), b"").unwrap();
    }
    let mut cookie = first.reply.entries.last().unwrap().cookie;
    let mut all = seen.clone();
    loop {
        let page = ok(c.readdir(&d, cookie, first.cookieverf, 1024));
        for e in &page.reply.entries {
            all.push(String::from_utf8_lossy(e.name.as_bytes()).into_owned());
            cookie = e.cookie;
        }
        if page.reply.eof {
            break;
        }
    }
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "no entry listed twice");
    for i in 0..300 {
        let n = format!("n{i}");
        assert!(all.contains(&n) || !ts.path(&format!("d/{n}")).exists(), "{n} listed");
    }
}

/// Every READDIRPLUS entry of one full listing in replies of `maxcount` bytes: name, fileid,
/// handle and attributes.
fn listing_plus(c: &mut Client, dir: &nfs_fh3, maxcount: u32) -> Vec<(String, u64, nfs_fh3, fattr3)> {
    let (mut cookie, mut out) = (0, Vec::new());
    loop {
        let page = ok(c.readdirplus(dir, cookie, [0; 8], maxcount / 8, maxcount));
        for e in &page.reply.entries {
            let n = String::from_utf8_lossy(e.name.as_bytes()).into_owned();
            out.push((n, e.fileid, e.name_handle.clone().unwrap(), e.name_attributes.clone().unwrap()));
            cookie = e.cookie;
        }
        if page.reply.eof {
            return out;
        }
    }
}

/// A directory `d` of `n` files `e{i}`, each `i` bytes long, and a client, the root and `d`.
fn dir_of_sized_files(ts: &TestServer, n: usize) -> (Client, nfs_fh3, nfs_fh3) {
    std::fs::create_dir(ts.path("d")).unwrap();
    for i in 0..n {
        std::fs::write(ts.path(&format!("d/e{i}")), vec![0u8; i]).unwrap();
    }
    let (mut c, root) = ts.client();
    let d = c.lookup_fh(&root, "d");
    (c, root, d)
}

#[test]
fn readdirplus_entries_carry_handles_and_attributes() {
    let ts = TestServer::rw();
    let (mut c, root, d) = dir_of_sized_files(&ts, 200);
    let mut names = Vec::new();
    for (n, _, fh, attrs) in listing_plus(&mut c, &d, 1024) {
        if n.starts_with('e') {
            let looked = ok(c.lookup(&d, &n));
            assert_eq!(fh, looked.object);
            assert_eq!(attrs.size, looked.obj_attributes.unwrap().size);
        }
        names.push(n);
    }
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!((n, names.len()), (202, 202));
    assert_eq!(status(&c.readdirplus(&d, 0, [0; 8], 1024, 100)), nfsstat3::NFS3ERR_TOOSMALL);
    // `..` of the export root is the root itself.
    let top = ok(c.readdirplus(&root, 0, [0; 8], 65536, 65536));
    let dotdot = top.reply.entries.iter().find(|e| e.name.as_bytes() == b"..").unwrap();
    assert_eq!(dotdot.name_handle.as_ref(), Some(&root));
}

#[test]
fn repeated_readdirplus_listings_give_each_name_its_current_handle() {
    // From its second full listing on, a directory's handles come from the inode-handle cache;
    // a name replaced by another file in between must get the new file's handle.
    let ts = TestServer::rw();
    let (mut c, _, d) = dir_of_sized_files(&ts, 400);
    let check = |c: &mut Client, listing: &[(String, u64, nfs_fh3, fattr3)]| {
        assert_eq!(listing.len(), 402);
        for (n, fileid, fh, attrs) in listing {
            if n == "." || n == ".." {
                continue;
            }
            let looked = ok(c.lookup(&d, n));
            assert_eq!(fh, &looked.object, "handle of {n}");
            let by_handle = c.attrs(fh);
            assert_eq!(
                (by_handle.fileid, attrs.fileid, attrs.size),
                (*fileid, *fileid, by_handle.size),
                "{n}"
            );
        }
    };
    let first = listing_plus(&mut c, &d, 16384);
    check(&mut c, &first);
    let second = listing_plus(&mut c, &d, 16384);
    check(&mut c, &second);
    // (Listing the directory updates its own atime, so `.` and `..` are left out.)
    let files = |l: &[(String, u64, nfs_fh3, fattr3)]| {
        l.iter().filter(|e| e.0.starts_with('e')).cloned().collect::<Vec<_>>()
    };
    assert_eq!(files(&first), files(&second), "an unchanged directory lists the same handles and attributes");
    // Replace names behind the server's back: a new file under an old name, a rename over
    // another name, a hard link, and a removed file's name taken by a directory.
    std::fs::remove_file(ts.path("d/e5")).unwrap();
    std::fs::write(ts.path("d/e5"), b"new").unwrap();
    std::fs::rename(ts.path("d/e7"), ts.path("d/e8")).unwrap();
    std::fs::write(ts.path("d/e7"), b"seven").unwrap();
    std::fs::remove_file(ts.path("d/e9")).unwrap();
    std::fs::hard_link(ts.path("d/e10"), ts.path("d/e9")).unwrap();
    std::fs::remove_file(ts.path("d/e11")).unwrap();
    std::fs::create_dir(ts.path("d/e11")).unwrap();
    for _ in 0..2 {
        let later = listing_plus(&mut c, &d, 16384);
        check(&mut c, &later);
        let get = |n: &str| later.iter().find(|e| e.0 == n).unwrap().clone();
        let old = |n: &str| first.iter().find(|e| e.0 == n).unwrap().clone();
        assert_ne!(get("e5").2, old("e5").2);
        assert_eq!(get("e5").3.size, 3);
        assert_eq!(get("e8").2, old("e7").2, "e7's inode now under e8");
        assert_ne!(get("e7").2, old("e7").2);
        assert_eq!(get("e9").2, old("e10").2, "a hard link shares its handle");
        assert_eq!(get("e11").3.type_, ftype3::NF3DIR);
        assert_eq!(status(&c.getattr(&old("e5").2)), nfsstat3::NFS3ERR_STALE);
    }
}

/// Waits until the directory's last change is old enough for the server to keep its listing.
fn let_directory_settle() {
    std::thread::sleep(std::time::Duration::from_millis(250));
}

fn names_of(listing: &[(String, u64, nfs_fh3, fattr3)]) -> Vec<String> {
    let mut names: Vec<String> = listing.iter().map(|e| e.0.clone()).collect();
    names.sort();
    names
}

#[test]
fn kept_listings_follow_every_change_to_the_directory() {
    // A settled directory's entries are kept between listings; each change must still show at
    // once, in READDIR and READDIRPLUS alike, whether made through the server or behind it.
    let ts = TestServer::rw();
    let (mut c, _, d) = dir_of_sized_files(&ts, 300);
    let_directory_settle();
    let check = |c: &mut Client, listing: &[(String, u64, nfs_fh3, fattr3)]| {
        for (n, fileid, fh, attrs) in listing {
            if n == "." || n == ".." {
                continue;
            }
            let on_host = std::fs::symlink_metadata(ts.path(&format!("d/{n}"))).unwrap();
            assert_eq!((attrs.fileid, attrs.size), (on_host.ino(), on_host.len()), "{n}");
            assert_eq!(*fileid, on_host.ino(), "{n}");
            assert_eq!(fh, &ok(c.lookup(&d, n)).object, "handle of {n}");
        }
    };
    // Enough listings for the entries and then their handles to be kept.
    let first = listing_plus(&mut c, &d, 8192);
    for _ in 0..3 {
        let again = listing_plus(&mut c, &d, 8192);
        check(&mut c, &again);
        assert_eq!(names_of(&again), names_of(&first));
    }
    // Attributes are read afresh even when the entries are kept.
    std::fs::write(ts.path("d/e3"), vec![1u8; 5000]).unwrap();
    let listing = listing_plus(&mut c, &d, 8192);
    assert_eq!(listing.iter().find(|e| e.0 == "e3").unwrap().3.size, 5000);
    check(&mut c, &listing);
    // Changes behind the server's back, right after a kept listing was served.
    std::fs::write(ts.path("d/late"), b"late").unwrap();
    std::fs::remove_file(ts.path("d/e4")).unwrap();
    std::fs::rename(ts.path("d/e5"), ts.path("d/e5-renamed")).unwrap();
    let listing = listing_plus(&mut c, &d, 8192);
    let names = names_of(&listing);
    assert!(names.contains(&"late".to_string()) && names.contains(&"e5-renamed".to_string()));
    assert!(!names.contains(&"e4".to_string()) && !names.contains(&"e5".to_string()));
    assert_eq!(names.len(), 302);
    check(&mut c, &listing);
    // A name replaced by another file, through the server, after the directory settled again.
    let_directory_settle();
    for _ in 0..3 {
        let again = listing_plus(&mut c, &d, 8192);
        check(&mut c, &again);
    }
    let old_e6 = c.lookup_fh(&d, "e6");
    assert_eq!(status(&c.remove(&d, "e6")), nfsstat3::NFS3_OK);
    let new_e6 = c.create_file(&d, "e6");
    assert_ne!(old_e6, new_e6);
    let listing = listing_plus(&mut c, &d, 8192);
    assert_eq!(listing.iter().find(|e| e.0 == "e6").unwrap().2, new_e6);
    check(&mut c, &listing);
    // Plain READDIR pages agree, and pick up a new entry at once too.
    let_directory_settle();
    let plain = |c: &mut Client| {
        let mut names: Vec<String> = c.readdir_all(&d, 1024).into_iter().map(|(n, _)| n).collect();
        names.sort();
        names
    };
    assert_eq!(plain(&mut c), names_of(&listing));
    assert_eq!(plain(&mut c), names_of(&listing));
    c.create_file(&d, "newest");
    assert!(plain(&mut c).contains(&"newest".to_string()));
    // A kept listing is no way around the directory's permissions.
    if !rnfsd::fs::cred::can_switch() {
        return;
    }
    std::fs::set_permissions(ts.path("d"), std::fs::Permissions::from_mode(0o711)).unwrap();
    let_directory_settle();
    listing_plus(&mut c, &d, 8192);
    listing_plus(&mut c, &d, 8192);
    let mut other = Client::tcp(ts.addr()).with_cred(auth_sys(1000, 1000, &[]));
    assert_eq!(status(&other.readdirplus(&d, 0, [0; 8], 1024, 8192)), nfsstat3::NFS3ERR_ACCES);
    assert_eq!(status(&other.readdir(&d, 0, [0; 8], 8192)), nfsstat3::NFS3ERR_ACCES);
    assert_eq!(names_of(&listing_plus(&mut c, &d, 8192)).len(), 303, "root still lists it");
}

#[test]
fn a_change_through_the_server_drops_the_directory_listing_at_once() {
    // Outdated listings would be refused anyway, but until then they would hold memory and push
    // good listings out of the cache.
    let ts = TestServer::rw();
    let (mut c, root, d) = dir_of_sized_files(&ts, 50);
    let f = c.lookup_fh(&d, "e1");
    let s = c.mkdir_fh(&root, "s");
    let kept = |ts: &TestServer| ts.server().nfs().cache_sizes().listed_entries;
    let list_settled = |c: &mut Client, dirs: &[&nfs_fh3]| {
        let_directory_settle();
        for dir in dirs {
            listing_plus(c, dir, 8192);
        }
        assert!(kept(&ts) > 0, "the settled directories' listings are kept");
    };
    list_settled(&mut c, &[&d]);
    assert_eq!(status(&c.remove(&d, "missing")), nfsstat3::NFS3ERR_NOENT);
    assert!(kept(&ts) > 0, "a change that failed keeps the listing");
    c.create_file(&d, "new");
    assert_eq!(kept(&ts), 0, "CREATE");
    list_settled(&mut c, &[&d]);
    c.mkdir_fh(&d, "sub");
    assert_eq!(kept(&ts), 0, "MKDIR");
    list_settled(&mut c, &[&d]);
    assert_eq!(status(&c.remove(&d, "new")), nfsstat3::NFS3_OK);
    assert_eq!(kept(&ts), 0, "REMOVE");
    list_settled(&mut c, &[&d]);
    let rmdir = c.nfs::<_, RMDIR3res>(procs::RMDIR, &RMDIR3args { object: dirop(&d, "sub") });
    assert_eq!(status(&rmdir), nfsstat3::NFS3_OK);
    assert_eq!(kept(&ts), 0, "RMDIR");
    list_settled(&mut c, &[&d]);
    let link = c.nfs::<_, LINK3res>(procs::LINK, &LINK3args { file: f.clone(), link: dirop(&d, "e1-link") });
    assert_eq!(status(&link), nfsstat3::NFS3_OK);
    assert_eq!(kept(&ts), 0, "LINK");
    list_settled(&mut c, &[&d, &s]);
    let rename =
        c.nfs::<_, RENAME3res>(procs::RENAME, &RENAME3args { from: dirop(&d, "e2"), to: dirop(&s, "e2") });
    assert_eq!(status(&rename), nfsstat3::NFS3_OK);
    assert_eq!(kept(&ts), 0, "RENAME drops both directories' listings");
    let names = names_of(&listing_plus(&mut c, &d, 8192));
    assert!(names.contains(&"e1-link".to_string()) && !names.contains(&"e2".to_string()));
}

#[test]
fn cache_sizes_count_what_the_caches_hold() {
    let ts = TestServer::rw();
    let sizes = || ts.server().nfs().cache_sizes();
    assert_eq!((sizes().open_files, sizes().listed_entries), (0, 0));
    let (mut c, root) = ts.client();
    let f = c.create_file(&root, "f");
    assert_eq!(status(&c.write(&f, 0, b"data", stable_how::UNSTABLE)), nfsstat3::NFS3_OK);
    assert_eq!(c.lookup_fh(&root, "f"), f);
    let s = sizes();
    assert!(s.resolved_handles >= 2, "the root and f: {s:?}");
    assert!(s.inode_handles >= 1, "{s:?}");
    assert_eq!(s.open_files, 1, "f, open for the uncommitted write: {s:?}");
    assert_eq!(s.listed_entries, 0, "nothing listed yet: {s:?}");
    assert_eq!(status(&c.remove(&root, "f")), nfsstat3::NFS3_OK);
    assert_eq!(sizes().open_files, 0, "a removed file is not kept open");
}

#[test]
fn fsstat_fsinfo_pathconf() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let s = ok(c.nfs::<_, FSSTAT3res>(procs::FSSTAT, &FSSTAT3args { fsroot: root.clone() }));
    assert!(s.tbytes >= s.fbytes && s.fbytes >= s.abytes && s.tbytes > 0);
    assert!(s.tfiles >= s.ffiles);
    let i = ok(c.nfs::<_, FSINFO3res>(procs::FSINFO, &FSINFO3args { fsroot: root.clone() }));
    assert_eq!((i.rtmax, i.wtmax), (1 << 20, 1 << 20));
    assert_eq!(i.properties & 0x1b, FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME);
    assert_eq!(i.time_delta, nfstime3 { seconds: 0, nseconds: 1 });
    assert!(i.maxfilesize > 1 << 40);
    let p = ok(c.nfs::<_, PATHCONF3res>(procs::PATHCONF, &PATHCONF3args { object: root.clone() }));
    assert_eq!(p.name_max, 255);
    assert!(p.no_trunc && p.case_preserving && !p.case_insensitive);
    assert!(p.linkmax >= 1);
}

#[test]
fn read_only_export_refuses_every_mutation() {
    let ts = TestServer::start("ro,insecure,no_root_squash");
    std::fs::write(ts.path("f"), b"data").unwrap();
    std::fs::create_dir(ts.path("d")).unwrap();
    let (mut c, root) = ts.client();
    let f = c.lookup_fh(&root, "f");
    let rofs = nfsstat3::NFS3ERR_ROFS;
    assert_eq!(&ok(c.read(&f, 0, 10)).data[..], b"data");
    assert_eq!(status(&c.write(&f, 0, b"x", stable_how::FILE_SYNC)), rofs);
    assert_eq!(status(&c.create(&root, "n", createhow3::UNCHECKED(sattr3::default()))), rofs);
    assert_eq!(status(&c.mkdir(&root, "n")), rofs);
    assert_eq!(status(&c.remove(&root, "f")), rofs);
    assert_eq!(status(&c.nfs::<_, RMDIR3res>(procs::RMDIR, &RMDIR3args { object: dirop(&root, "d") })), rofs);
    assert_eq!(
        status(&c.nfs::<_, RENAME3res>(
            procs::RENAME,
            &RENAME3args { from: dirop(&root, "f"), to: dirop(&root, "g") }
        )),
        rofs
    );
    assert_eq!(
        status(&c.nfs::<_, LINK3res>(procs::LINK, &LINK3args { file: f.clone(), link: dirop(&root, "g") })),
        rofs
    );
    assert_eq!(
        status(&c.nfs::<_, SETATTR3res>(
            procs::SETATTR,
            &SETATTR3args {
                object: f.clone(),
                new_attributes: sattr3 { mode: Some(0o777), ..Default::default() },
                guard: None
            }
        )),
        rofs
    );
    let sl = SYMLINK3args {
        where_: dirop(&root, "l"),
        symlink: symlinkdata3 {
            symlink_attributes: sattr3::default(),
            symlink_data: nfspath3(Bytes::from_static(b"x")),
        },
    };
    assert_eq!(status(&c.nfs::<_, SYMLINK3res>(procs::SYMLINK, &sl)), rofs);
    let mn = MKNOD3args { where_: dirop(&root, "p"), what: mknoddata3::FIFO(sattr3::default()) };
    assert_eq!(status(&c.nfs::<_, MKNOD3res>(procs::MKNOD, &mn)), rofs);
    let acc =
        ok(c.nfs::<_, ACCESS3res>(procs::ACCESS, &ACCESS3args { object: f.clone(), access: 0x3f })).access;
    assert_eq!(acc & (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE), 0);
    assert_ne!(acc & ACCESS3_READ, 0);
    assert_eq!(std::fs::read(ts.path("f")).unwrap(), b"data");
    assert!(!ts.path("n").exists() && !ts.path("g").exists() && ts.path("d").exists());
}
