//! File handles, the duplicate-request cache, RPC-level errors, restarts, MOUNT, and bad input
//! from the network: the server answers correctly or drops the offender and keeps serving.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use bytes::Bytes;
use rnfsd_test_support::*;
use xdr::Xdr;
use xdr::nfs3::*;
use xdr::rpc::{AcceptedStatus, AuthStat, RejectedReply, record_marker};

fn null_works(ts: &TestServer) {
    let mut c = Client::tcp(ts.addr());
    c.call(NFS, 3, 0, &[]).expect("NULL answers");
}

#[test]
fn bad_forged_and_stale_handles() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let garbage = nfs_fh3(Bytes::from_static(b"not a handle at all"));
    assert_eq!(c.getattr(&garbage).status(), nfsstat3::NFS3ERR_BADHANDLE);
    let f = c.create_file(&root, "f");
    let mut forged = f.0.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(c.getattr(&nfs_fh3(Bytes::from(forged))).status(), nfsstat3::NFS3ERR_BADHANDLE);
    // An inner byte flipped: the MAC no longer matches either.
    let mut forged = f.0.to_vec();
    forged[12] ^= 0x40;
    assert_eq!(c.getattr(&nfs_fh3(Bytes::from(forged))).status(), nfsstat3::NFS3ERR_BADHANDLE);
    // Longer than NFS3_FHSIZE does not decode at all.
    let mut args = BytesMut::new();
    args.extend_from_slice(&65u32.to_be_bytes());
    args.extend_from_slice(&[0u8; 68]);
    assert_eq!(c.call(NFS, 3, procs::GETATTR, &args), Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs)));
    std::fs::remove_file(ts.path("f")).unwrap();
    assert_eq!(c.getattr(&f).status(), nfsstat3::NFS3ERR_STALE);
}

use bytes::BytesMut;

#[test]
fn handles_survive_rename_and_restart() {
    let mut ts = TestServer::rw();
    std::fs::create_dir(ts.path("d")).unwrap();
    let (mut c, root) = ts.client();
    let d = c.lookup_fh(&root, "d");
    let f = c.create_file(&d, "f");
    let w = c.write(&f, 0, b"persist", stable_how::FILE_SYNC).ok().unwrap();
    std::fs::rename(ts.path("d/f"), ts.path("moved")).unwrap();
    assert_eq!(c.attrs(&f).size, 7);
    drop(c);
    ts.restart();
    let mut c = Client::tcp(ts.addr());
    assert_eq!(c.attrs(&f).size, 7, "handle valid after restart");
    assert_eq!(c.attrs(&root).type_, ftype3::NF3DIR);
    assert_eq!(&c.read(&f, 0, 100).ok().unwrap().data[..], b"persist");
    let w2 = c.write(&f, 0, b"P", stable_how::UNSTABLE).ok().unwrap();
    assert_ne!(w.verf, w2.verf, "a new server lifetime has a new write verifier");
    let mnt_root = c.mount(ts.export_path().to_str().unwrap()).unwrap();
    assert_eq!(mnt_root, root, "the root handle is stable");
}

#[test]
fn write_and_commit_share_one_verifier_per_lifetime() {
    let mut ts = TestServer::rw().with_nfs_over_udp();
    let (mut tcp, root) = ts.client();
    let fh = tcp.create_file(&root, "v");
    let mut udp = Client::udp(ts.udp_addr());
    let mut seen = std::collections::HashSet::new();
    for (i, stable) in [stable_how::UNSTABLE, stable_how::DATA_SYNC, stable_how::FILE_SYNC]
        .into_iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let c = if i % 2 == 0 { &mut tcp } else { &mut udp };
        let w = c.write(&fh, i as u64 * 10, b"0123456789", stable).ok().expect("WRITE");
        seen.insert(w.verf);
        let commit: COMMIT3res = c.nfs(procs::COMMIT, &COMMIT3args { file: fh.clone(), offset: 0, count: 0 });
        seen.insert(commit.ok().expect("COMMIT").verf);
    }
    assert_eq!(seen.len(), 1, "WRITE and COMMIT over TCP and UDP must return one verifier: {seen:?}");
    let before = *seen.iter().next().unwrap();
    drop((tcp, udp));
    ts.restart();
    let mut c = Client::tcp(ts.addr());
    let after = c.write(&fh, 0, b"x", stable_how::UNSTABLE).ok().expect("WRITE after restart").verf;
    assert_ne!(after, before, "a new lifetime has a new verifier, so clients resend uncommitted data");
}

#[test]
fn exclusive_create_verifier_survives_restart() {
    let mut ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let verf = *b"excl-ver";
    let created = c.create(&root, "x", createhow3::EXCLUSIVE(verf)).ok().expect("EXCLUSIVE create").obj;
    drop(c);
    ts.restart();
    let mut c = Client::tcp(ts.addr());
    // The client retransmits its EXCLUSIVE create after the restart: same verifier, same file.
    let retried =
        c.create(&root, "x", createhow3::EXCLUSIVE(verf)).ok().expect("EXCLUSIVE retry after restart");
    assert_eq!(retried.obj, created, "the retried create returns the file it made");
    let other = c.create(&root, "x", createhow3::EXCLUSIVE(*b"another!"));
    assert_eq!(other.status(), nfsstat3::NFS3ERR_EXIST, "a different verifier must get EXIST");
}

#[test]
fn drc_replays_non_idempotent_replies() {
    let ts = TestServer::rw();
    std::fs::write(ts.path("victim"), b"x").unwrap();
    let (mut c, root) = ts.client();
    let args = REMOVE3args { object: dirop(&root, "victim") }.to_bytes();
    let xid = 0x5eed_0001;
    let msg = call_message(xid, NFS, 3, procs::REMOVE, &c.cred.clone(), &args);
    let first = c.exchange(&msg);
    assert!(!ts.path("victim").exists());
    // The same request on a new connection: the stored reply, byte for byte.
    let mut c2 = Client::tcp(ts.addr());
    let second = c2.exchange(&msg);
    assert_eq!(first, second);
    let res = REMOVE3res::from_bytes(&parse_reply(xid, &second).unwrap()).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK);
    assert!(ts.stats().drc.hits >= 1, "{:?}", ts.stats().drc);
    // The same xid with other arguments is a new request.
    let other = REMOVE3args { object: dirop(&root, "other") }.to_bytes();
    let msg2 = call_message(xid, NFS, 3, procs::REMOVE, &c.cred.clone(), &other);
    let res = REMOVE3res::from_bytes(&parse_reply(xid, &c.exchange(&msg2)).unwrap()).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3ERR_NOENT);
}

#[test]
fn drc_over_udp() {
    let ts = TestServer::rw().with_nfs_over_udp();
    std::fs::create_dir(ts.path("gone")).unwrap();
    let (c, root) = ts.client();
    let mut u = Client::udp(ts.udp_addr()).with_cred(c.cred.clone());
    let args = RMDIR3args { object: dirop(&root, "gone") }.to_bytes();
    let xid = 0x5eed_0002;
    let msg = call_message(xid, NFS, 3, procs::RMDIR, &u.cred.clone(), &args);
    let a = u.exchange(&msg);
    let b = u.exchange(&msg);
    assert_eq!(a, b);
    let res = RMDIR3res::from_bytes(&parse_reply(xid, &b).unwrap()).unwrap();
    assert_eq!(res.status(), nfsstat3::NFS3_OK);
    assert!(!ts.path("gone").exists());
}

#[test]
fn rpc_error_replies() {
    let ts = TestServer::rw();
    let mut c = Client::tcp(ts.addr());
    assert_eq!(c.call(200_000, 1, 0, &[]), Err(RpcFailure::Accepted(AcceptedStatus::ProgUnavail)));
    for v in [2, 4] {
        assert_eq!(
            c.call(NFS, v, 0, &[]),
            Err(RpcFailure::Accepted(AcceptedStatus::ProgMismatch { low: 3, high: 3 }))
        );
    }
    assert_eq!(c.call(NFS, 3, 22, &[]), Err(RpcFailure::Accepted(AcceptedStatus::ProcUnavail)));
    assert_eq!(
        c.call(NFS, 3, procs::GETATTR, &[0, 0]),
        Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs))
    );
    // RPC version 3.
    let mut msg = call_message(77, NFS, 3, 0, &c.cred.clone(), &[]);
    msg[8..12].copy_from_slice(&3u32.to_be_bytes());
    let reply = c.exchange(&msg);
    assert_eq!(
        parse_reply(77, &reply),
        Err(RpcFailure::Denied(RejectedReply::RpcMismatch { low: 2, high: 2 }))
    );
    // An unknown auth flavor.
    let mut bad = Client::tcp(ts.addr()).with_cred(xdr::rpc::OpaqueAuth { flavor: 6, body: Bytes::new() });
    assert!(matches!(
        bad.call(NFS, 3, 0, &[]),
        Err(RpcFailure::Denied(RejectedReply::AuthError(
            AuthStat::BadCred | AuthStat::RejectedCred | AuthStat::TooWeak
        )))
    ));
}

#[test]
fn names_with_slash_or_nul_are_garbage() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    for bad in [&b"a/b"[..], b"a\0b", b"", b"/etc"] {
        let args = LOOKUP3args {
            what: diropargs3 { dir: root.clone(), name: filename3(Bytes::copy_from_slice(bad)) },
        };
        assert_eq!(
            c.nfs_rpc_error(procs::LOOKUP, &args),
            RpcFailure::Accepted(AcceptedStatus::GarbageArgs),
            "{bad:?}"
        );
        let args = CREATE3args {
            where_: diropargs3 { dir: root.clone(), name: filename3(Bytes::copy_from_slice(bad)) },
            how: createhow3::UNCHECKED(sattr3::default()),
        };
        assert_eq!(c.nfs_rpc_error(procs::CREATE, &args), RpcFailure::Accepted(AcceptedStatus::GarbageArgs));
    }
    assert_eq!(std::fs::read_dir(ts.export_path()).unwrap().count(), 0);
}

#[test]
fn symlinks_to_outside_are_never_followed() {
    let ts = TestServer::rw();
    std::os::unix::fs::symlink("/etc", ts.path("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ts.path("passwd")).unwrap();
    let (mut c, root) = ts.client();
    let l = c.lookup(&root, "etc").ok().unwrap();
    assert_eq!(l.obj_attributes.unwrap().type_, ftype3::NF3LNK);
    assert_eq!(c.lookup(&l.object, "passwd").status(), nfsstat3::NFS3ERR_NOTDIR);
    let p = c.lookup_fh(&root, "passwd");
    assert_eq!(c.read(&p, 0, 100).status(), nfsstat3::NFS3ERR_INVAL);
    // CREATE through a symlink name does not create the target.
    let r = c.create(&root, "passwd", createhow3::UNCHECKED(sattr3 { size: Some(0), ..Default::default() }));
    assert_ne!(r.status(), nfsstat3::NFS3_OK);
    assert!(std::fs::metadata("/etc/passwd").unwrap().len() > 0);
    // `..` at the root stays inside.
    let mut fh = root.clone();
    for _ in 0..5 {
        fh = c.lookup_fh(&fh, "..");
    }
    assert_eq!(c.attrs(&fh).fileid, std::fs::metadata(ts.export_path()).unwrap().ino());
}

#[test]
fn random_and_truncated_input_does_not_stop_the_server() {
    let ts = TestServer::rw();
    let (mut c, root) = ts.client();
    let mut seed = 0x1234_5678u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Random records on one connection each (the server may close the connection).
    for i in 0..300 {
        let len = (rnd() % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        let mut s = std::net::TcpStream::connect(ts.addr()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
        if i % 2 == 0 {
            let _ = s.write_all(&record_marker(body.len(), true));
        }
        let _ = s.write_all(&body);
    }
    // Random datagrams.
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..300 {
        let len = (rnd() % 300) as usize;
        let body: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        u.send_to(&body, ts.udp_addr()).unwrap();
    }
    // Every procedure with truncated arguments: GARBAGE_ARGS, never a crash.
    let full = WRITE3args {
        file: root.clone(),
        offset: 0,
        count: 4,
        stable: stable_how::UNSTABLE,
        data: Bytes::from_static(b"abcd"),
    }
    .to_bytes();
    for proc_ in 1..22 {
        for cut in [0, 3, 7, full.len() - 1] {
            let r = c.call(NFS, 3, proc_, &full[..cut]);
            assert!(r.is_err() || proc_ == procs::NULL, "proc {proc_} cut {cut}: {r:?}");
        }
    }
    // An oversized fragment closes that connection; others keep working.
    let mut big = Client::tcp(ts.addr());
    big.send_raw(&record_marker(64 << 20, true));
    big.send_raw(&[0u8; 1024]);
    assert!(big.read_reply().is_none(), "the connection is closed");
    // Huge counts are clamped, not honoured.
    let f = c.create_file(&root, "f");
    let r = c.read(&f, 0, u32::MAX).ok().unwrap();
    assert_eq!(r.count, 0);
    let rd = c.readdir(&root, 0, [0; 8], u32::MAX).ok().unwrap();
    assert!(rd.reply.eof);
    null_works(&ts);
}

#[test]
fn mount_protocol() {
    let ts = TestServer::start("rw,insecure");
    let mut c = Client::tcp(ts.addr());
    let path = ts.export_path().to_str().unwrap().to_string();
    let args = xdr::mount::dirpath(Bytes::copy_from_slice(path.as_bytes())).to_bytes();
    let body = c.call(MOUNT, 3, 1, &args).unwrap();
    match xdr::mount::mountres3::from_bytes(&body).unwrap() {
        xdr::mount::mountres3::Ok(ok) => assert!(ok.auth_flavors.contains(&1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.mount("/definitely/not/exported"), Err(xdr::mount::mountstat3::NoEnt));
    let exports = xdr::mount::exports::from_bytes(&c.call(MOUNT, 3, 5, &[]).unwrap()).unwrap();
    assert!(exports.0.iter().any(|e| e.ex_dir.as_bytes() == path.as_bytes()));
    let dump = xdr::mount::mountlist::from_bytes(&c.call(MOUNT, 3, 2, &[]).unwrap()).unwrap();
    assert!(dump.0.iter().any(|m| m.ml_directory.as_bytes() == path.as_bytes()));
    c.call(MOUNT, 3, 3, &args).unwrap();
    let dump = xdr::mount::mountlist::from_bytes(&c.call(MOUNT, 3, 2, &[]).unwrap()).unwrap();
    assert!(!dump.0.iter().any(|m| m.ml_directory.as_bytes() == path.as_bytes()));
    // MOUNT v1 answers too.
    c.call(MOUNT, 1, 0, &[]).unwrap();
}

/// MOUNT refuses bytes after its arguments (GARBAGE_ARGS) exactly as NFS does, and mounts
/// nothing.
#[test]
fn mount_refuses_bytes_after_the_arguments_like_nfs() {
    let ts = TestServer::start("rw,insecure");
    let mut c = Client::tcp(ts.addr());
    let path = ts.export_path().to_str().unwrap().to_string();
    let mut args = xdr::mount::dirpath(Bytes::copy_from_slice(path.as_bytes())).to_bytes().to_vec();
    args.extend_from_slice(&[0, 0, 0, 0]);
    let garbage = Err(RpcFailure::Accepted(AcceptedStatus::GarbageArgs));
    assert_eq!(c.call(NFS, 3, procs::NULL, &[0, 0, 0, 0]), garbage);
    assert_eq!(c.call(MOUNT, 3, 0, &[0, 0, 0, 0]), garbage);
    assert_eq!(c.call(MOUNT, 3, 1, &args), garbage);
    assert_eq!(c.call(MOUNT, 1, 1, &args), garbage);
    assert_eq!(c.call(MOUNT, 3, 5, &[0, 0, 0, 0]), garbage);
    let dump = xdr::mount::mountlist::from_bytes(&c.call(MOUNT, 3, 2, &[]).unwrap()).unwrap();
    assert!(dump.0.is_empty(), "nothing was mounted: {dump:?}");
}

#[test]
fn clients_outside_the_export_list_are_refused() {
    let ts = TestServer::start("rw,insecure");
    let (mut c, root) = ts.client();
    c.create_file(&root, "f");
    drop(c);
    // The same export, restricted to a network 127.0.0.1 is not in.
    let mut ts2 = ts;
    ts2.set_clients("10.0.0.0/8(rw,insecure)");
    ts2.restart();
    let mut c = Client::tcp(ts2.addr());
    assert_eq!(c.mount(ts2.export_path().to_str().unwrap()), Err(xdr::mount::mountstat3::Access));
    assert_eq!(c.getattr(&root).status(), nfsstat3::NFS3ERR_ACCES);
}

#[test]
fn secure_exports_refuse_unprivileged_ports() {
    let mut ts = TestServer::start("rw,insecure");
    let (c, root) = ts.client();
    drop(c);
    // Same export and state directory (so the same handles), now `secure`.
    ts.set_options("rw");
    ts.restart();
    let mut c = Client::tcp(ts.addr());
    // This test client's source port is above 1023.
    assert_eq!(c.mount(ts.export_path().to_str().unwrap()), Err(xdr::mount::mountstat3::Access));
    assert_eq!(c.getattr(&root).status(), nfsstat3::NFS3ERR_PERM);
}

/// NFS over UDP is off by default, as in nfs-utils 2.x (`udp=n`): a READ call with a forged
/// source would make the server reflect hundreds of times its size at the victim. NFS calls over
/// UDP answer PROG_UNAVAIL (no data); MOUNT keeps answering over UDP on the same socket.
#[test]
fn nfs_over_udp_is_off_by_default_and_mount_still_answers() {
    let ts = TestServer::rw();
    std::fs::write(ts.path("big"), vec![b'x'; 32 << 10]).unwrap();
    let (mut c, root) = ts.client();
    let file = c.lookup_fh(&root, "big");
    let mut u = Client::udp(ts.udp_addr());
    let read = READ3args { file, offset: 0, count: 32 << 10 }.to_bytes();
    let prog_unavail = RpcFailure::Accepted(AcceptedStatus::ProgUnavail);
    assert_eq!(u.call(NFS, 3, procs::READ, &read).map(|b| b.len()), Err(prog_unavail.clone()));
    assert_eq!(u.call(NFS, 3, procs::NULL, &[]).map(|b| b.len()), Err(prog_unavail));
    assert_eq!(u.mount(ts.export_path().to_str().unwrap()), Ok(root), "MOUNT over UDP answers");
}

/// With `--udp`, the same READ over UDP returns the data.
#[test]
fn nfs_over_udp_serves_reads_when_enabled() {
    let ts = TestServer::rw().with_nfs_over_udp();
    std::fs::write(ts.path("big"), vec![b'x'; 32 << 10]).unwrap();
    let (mut c, root) = ts.client();
    let file = c.lookup_fh(&root, "big");
    let mut u = Client::udp(ts.udp_addr());
    let res = u.read(&file, 0, 32 << 10).ok().expect("READ over UDP");
    assert_eq!(res.data.len(), 32 << 10);
}

/// A name over 255 bytes (PATHCONF's name_max) or a symlink target over 4,096 bytes is
/// NFS3ERR_NAMETOOLONG (RFC 1813 §3.3), answered with the directory's attributes like any other
/// failure, not GARBAGE_ARGS. Only names no client could mean (longer than a whole path) stay
/// undecodable.
#[test]
fn overlong_names_and_targets_are_nametoolong() {
    let ts = TestServer::rw();
    std::fs::write(ts.path("file"), b"x").unwrap();
    let (mut c, root) = ts.client();
    let file = c.lookup_fh(&root, "file");
    let op = |name: &[u8]| diropargs3 { dir: root.clone(), name: filename3(Bytes::copy_from_slice(name)) };
    let dir_wcc_present = |w: &wcc_data| w.before.is_some() && w.after.is_some();
    for len in [256, 1000, 4096] {
        let long = vec![b'n'; len];
        let r: LOOKUP3res = c.nfs(procs::LOOKUP, &LOOKUP3args { what: op(&long) });
        match r {
            Nfs3Result::Err(s, dir_attributes) => {
                assert_eq!(s, nfsstat3::NFS3ERR_NAMETOOLONG, "LOOKUP {len}");
                assert!(dir_attributes.is_some(), "LOOKUP {len}: the directory's attributes");
            }
            Nfs3Result::Ok(_) => panic!("LOOKUP of a {len}-byte name succeeded"),
        }
        let creates: [(u32, Bytes); 4] = [
            (
                procs::CREATE,
                CREATE3args { where_: op(&long), how: createhow3::UNCHECKED(sattr3::default()) }.to_bytes(),
            ),
            (procs::MKDIR, MKDIR3args { where_: op(&long), attributes: sattr3::default() }.to_bytes()),
            (
                procs::SYMLINK,
                SYMLINK3args {
                    where_: op(&long),
                    symlink: symlinkdata3 {
                        symlink_attributes: sattr3::default(),
                        symlink_data: nfspath3::from("t"),
                    },
                }
                .to_bytes(),
            ),
            (
                procs::MKNOD,
                MKNOD3args { where_: op(&long), what: mknoddata3::FIFO(sattr3::default()) }.to_bytes(),
            ),
        ];
        for (proc_, args) in creates {
            let body = c.call(NFS, 3, proc_, &args).unwrap_or_else(|e| panic!("proc {proc_} {len}: {e:?}"));
            match CREATE3res::from_bytes(&body).unwrap() {
                Nfs3Result::Err(s, w) => {
                    assert_eq!(s, nfsstat3::NFS3ERR_NAMETOOLONG, "proc {proc_} {len}");
                    assert!(dir_wcc_present(&w), "proc {proc_} {len}: wcc data");
                }
                Nfs3Result::Ok(_) => panic!("proc {proc_} created a {len}-byte name"),
            }
        }
        for proc_ in [procs::REMOVE, procs::RMDIR] {
            let body = c.call(NFS, 3, proc_, &REMOVE3args { object: op(&long) }.to_bytes()).unwrap();
            match REMOVE3res::from_bytes(&body).unwrap() {
                Nfs3Result::Err(s, w) => {
                    assert_eq!(s, nfsstat3::NFS3ERR_NAMETOOLONG, "proc {proc_} {len}");
                    assert!(dir_wcc_present(&w), "proc {proc_} {len}: wcc data");
                }
                Nfs3Result::Ok(_) => panic!("proc {proc_} of a {len}-byte name succeeded"),
            }
        }
        for (from, to) in [(&long[..], &b"file2"[..]), (b"file", &long[..])] {
            let r: RENAME3res = c.nfs(procs::RENAME, &RENAME3args { from: op(from), to: op(to) });
            match r {
                Nfs3Result::Err(s, w) => {
                    assert_eq!(s, nfsstat3::NFS3ERR_NAMETOOLONG, "RENAME {len}");
                    assert!(dir_wcc_present(&w.fromdir_wcc) && dir_wcc_present(&w.todir_wcc));
                }
                Nfs3Result::Ok(_) => panic!("RENAME with a {len}-byte name succeeded"),
            }
        }
        let r: LINK3res = c.nfs(procs::LINK, &LINK3args { file: file.clone(), link: op(&long) });
        match r {
            Nfs3Result::Err(s, w) => {
                assert_eq!(s, nfsstat3::NFS3ERR_NAMETOOLONG, "LINK {len}");
                assert!(w.file_attributes.is_some() && dir_wcc_present(&w.linkdir_wcc));
            }
            Nfs3Result::Ok(_) => panic!("LINK to a {len}-byte name succeeded"),
        }
    }
    // A symlink target longer than PATH_MAX.
    for len in [4096, 5000] {
        let args = SYMLINK3args {
            where_: op(b"link"),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3::from(vec![b't'; len]),
            },
        };
        let r: SYMLINK3res = c.nfs(procs::SYMLINK, &args);
        match r {
            Nfs3Result::Err(s, w) => {
                assert_eq!(s, nfsstat3::NFS3ERR_NAMETOOLONG, "SYMLINK target of {len} bytes");
                assert!(dir_wcc_present(&w));
            }
            Nfs3Result::Ok(_) => panic!("SYMLINK to a {len}-byte target succeeded"),
        }
    }
    // 255 bytes is a name; a name with `/` is garbage whatever its length.
    let longest = vec![b'n'; 255];
    let r = c.create(&root, std::str::from_utf8(&longest).unwrap(), createhow3::UNCHECKED(sattr3::default()));
    assert_eq!(r.status(), nfsstat3::NFS3_OK);
    let mut slashed = vec![b'n'; 300];
    slashed[10] = b'/';
    let args = LOOKUP3args { what: op(&slashed) };
    assert_eq!(c.nfs_rpc_error(procs::LOOKUP, &args), RpcFailure::Accepted(AcceptedStatus::GarbageArgs));
    // Longer than a whole path: no name, and the decoder does not take it.
    let args = LOOKUP3args { what: op(&vec![b'n'; 4097]) };
    assert_eq!(c.nfs_rpc_error(procs::LOOKUP, &args), RpcFailure::Accepted(AcceptedStatus::GarbageArgs));
    let names: Vec<_> =
        std::fs::read_dir(ts.export_path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "only `file` and the 255-byte name: {names:?}");
}

/// Over UDP no reply is larger than the datagram that caused it unless the program is served
/// there: a datagram too short to be a call (under 40 bytes) gets no answer at all (it used to get
/// a 24-byte GARBAGE_ARGS, twice or three times its size, sent to whatever source it claimed).
#[test]
fn udp_datagrams_too_short_to_be_calls_get_no_reply() {
    let ts = TestServer::rw();
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 512];
    for len in [8usize, 12, 16, 24, 36] {
        let mut short = vec![0u8; len];
        short[..4].copy_from_slice(&0x5107_0000u32.to_be_bytes());
        // xid, CALL (0), rpcvers 2, NFS, 3, ...: a call cut short.
        if len >= 12 {
            short[8..12].copy_from_slice(&2u32.to_be_bytes());
        }
        if len >= 16 {
            short[12..16].copy_from_slice(&NFS.to_be_bytes());
        }
        u.send_to(&short, ts.udp_addr()).unwrap();
        assert!(u.recv_from(&mut buf).is_err(), "a {len}-byte datagram was answered");
    }
    // A whole call is still answered (MOUNT NULL), in at most its own size when refused (NFS).
    let mut c = Client::udp(ts.udp_addr());
    assert!(c.call(MOUNT, 3, 0, &[]).is_ok());
    let null = call_message(7, NFS, 3, procs::NULL, &xdr::rpc::OpaqueAuth::none(), &[]);
    assert_eq!(null.len(), 40);
    u.send_to(&null, ts.udp_addr()).unwrap();
    let (n, _) = u.recv_from(&mut buf).expect("PROG_UNAVAIL");
    assert!(n <= null.len(), "{n}-byte reply to a {}-byte call", null.len());
}
