//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`: valid encodings made
//! with the project's own encoders, one file per case, named after what it is. Run by
//! `bash scripts/fuzz.sh seeds`; the files are committed, so a fuzz run starts from them.

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use rnfsd_fuzz::server::{HANDLE_PLACEHOLDER, call_record};
use xdr::nfs3::{self, procs, *};
use xdr::rpc::{AuthSysParams, CallHeader, OpaqueAuth, record_marker};
use xdr::{Xdr, mount, nlm, nsm, portmap};

/// The placeholder the `server` target replaces with real handle number `n`.
fn ph(n: u8) -> nfs_fh3 {
    let mut b = HANDLE_PLACEHOLDER[4..].to_vec();
    b.push(n);
    nfs_fh3(Bytes::from(b))
}

fn name(s: &str) -> filename3 {
    filename3::from(s)
}

fn dirop(n: u8, s: &str) -> diropargs3 {
    diropargs3 { dir: ph(n), name: name(s) }
}

fn sattr(mode: Option<u32>, size: Option<u64>) -> sattr3 {
    sattr3 { mode, uid: None, gid: None, size, atime: SetTime::DontChange, mtime: SetTime::ServerTime }
}

/// One argument body per NFS procedure, with placeholders for handles (see `server.rs`).
fn nfs_args() -> Vec<(u32, &'static str, Bytes)> {
    let sattr_any = sattr(Some(0o640), None);
    vec![
        (procs::NULL, "null", ().to_bytes()),
        (procs::GETATTR, "getattr", GETATTR3args { object: ph(0) }.to_bytes()),
        (
            procs::SETATTR,
            "setattr",
            SETATTR3args { object: ph(1), new_attributes: sattr(Some(0o4755), Some(3)), guard: None }
                .to_bytes(),
        ),
        (procs::LOOKUP, "lookup", LOOKUP3args { what: dirop(0, "dir") }.to_bytes()),
        (procs::LOOKUP, "lookup_dotdot", LOOKUP3args { what: dirop(2, "..") }.to_bytes()),
        (procs::ACCESS, "access", ACCESS3args { object: ph(1), access: 0x3f }.to_bytes()),
        (procs::READLINK, "readlink", READLINK3args { symlink: ph(4) }.to_bytes()),
        (procs::READ, "read", READ3args { file: ph(1), offset: 2, count: 64 }.to_bytes()),
        (
            procs::WRITE,
            "write",
            WRITE3args {
                file: ph(1),
                offset: 4,
                count: 5,
                stable: stable_how::FILE_SYNC,
                data: Bytes::from_static(b"hello"),
            }
            .to_bytes(),
        ),
        (
            procs::CREATE,
            "create",
            CREATE3args { where_: dirop(0, "new"), how: createhow3::UNCHECKED(sattr_any.clone()) }.to_bytes(),
        ),
        (
            procs::CREATE,
            "create_exclusive",
            CREATE3args { where_: dirop(2, "excl"), how: createhow3::EXCLUSIVE(*b"verifier") }.to_bytes(),
        ),
        (
            procs::MKDIR,
            "mkdir",
            MKDIR3args { where_: dirop(0, "sub"), attributes: sattr_any.clone() }.to_bytes(),
        ),
        (
            procs::SYMLINK,
            "symlink",
            SYMLINK3args {
                where_: dirop(0, "sym"),
                symlink: symlinkdata3 {
                    symlink_attributes: sattr_any.clone(),
                    symlink_data: nfspath3::from("../../etc/passwd"),
                },
            }
            .to_bytes(),
        ),
        (
            procs::MKNOD,
            "mknod_fifo",
            MKNOD3args { where_: dirop(0, "fifo"), what: mknoddata3::FIFO(sattr_any.clone()) }.to_bytes(),
        ),
        (procs::REMOVE, "remove", REMOVE3args { object: dirop(0, "file") }.to_bytes()),
        (procs::RMDIR, "rmdir", RMDIR3args { object: dirop(0, "dir") }.to_bytes()),
        (procs::RENAME, "rename", RENAME3args { from: dirop(2, "inner"), to: dirop(0, "moved") }.to_bytes()),
        (procs::LINK, "link", LINK3args { file: ph(1), link: dirop(2, "hard") }.to_bytes()),
        (
            procs::READDIR,
            "readdir",
            READDIR3args { dir: ph(0), cookie: 0, cookieverf: [0; 8], count: 4096 }.to_bytes(),
        ),
        (
            procs::READDIRPLUS,
            "readdirplus",
            READDIRPLUS3args { dir: ph(2), cookie: 0, cookieverf: [0; 8], dircount: 1024, maxcount: 8192 }
                .to_bytes(),
        ),
        (procs::FSSTAT, "fsstat", FSSTAT3args { fsroot: ph(0) }.to_bytes()),
        (procs::FSINFO, "fsinfo", FSINFO3args { fsroot: ph(5) }.to_bytes()),
        (procs::PATHCONF, "pathconf", PATHCONF3args { object: ph(6) }.to_bytes()),
        (procs::COMMIT, "commit", COMMIT3args { file: ph(1), offset: 0, count: 0 }.to_bytes()),
    ]
}

fn mount_args() -> Vec<(u32, u32, &'static str, Bytes)> {
    use mount::mount_proc::*;
    let path = |p: &str| mount::dirpath::from(p).to_bytes();
    vec![
        (mount::VERSION_3, NULL, "null", Bytes::new()),
        (mount::VERSION_3, MNT, "mnt_missing", path("/nonexistent")),
        (mount::VERSION_1, MNT, "mnt_v1_missing", path("/x/../y")),
        (mount::VERSION_3, DUMP, "dump", Bytes::new()),
        (mount::VERSION_3, UMNT, "umnt", path("/srv")),
        (mount::VERSION_3, UMNTALL, "umntall", Bytes::new()),
        (mount::VERSION_3, EXPORT, "export", Bytes::new()),
    ]
}

fn portmap_args() -> Vec<(u32, u32, &'static str, Bytes)> {
    use portmap::{mapping, pmap_proc, rpcb, rpcb_proc};
    let m = mapping { prog: 100003, vers: 3, prot: portmap::IPPROTO_TCP, port: 2049 }.to_bytes();
    let r = rpcb {
        r_prog: 100005,
        r_vers: 3,
        r_netid: "tcp".into(),
        r_addr: "127.0.0.1.78.80".into(),
        r_owner: "fuzz".into(),
    }
    .to_bytes();
    vec![
        (2, pmap_proc::GETPORT, "pmap_getport", m.clone()),
        (2, pmap_proc::SET, "pmap_set", m.clone()),
        (2, pmap_proc::UNSET, "pmap_unset", m),
        (2, pmap_proc::DUMP, "pmap_dump", Bytes::new()),
        (3, rpcb_proc::GETADDR, "rpcb3_getaddr", r.clone()),
        (4, rpcb_proc::SET, "rpcb4_set", r.clone()),
        (4, rpcb_proc::UNSET, "rpcb4_unset", r.clone()),
        (4, rpcb_proc::GETVERSADDR, "rpcb4_getversaddr", r.clone()),
        (4, rpcb_proc::GETADDRLIST, "rpcb4_getaddrlist", r),
        (4, rpcb_proc::DUMP, "rpcb4_dump", Bytes::new()),
        (4, rpcb_proc::GETSTAT, "rpcb4_getstat", Bytes::new()),
        (3, rpcb_proc::GETTIME, "rpcb3_gettime", Bytes::new()),
    ]
}

fn write(dir: &Path, file: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), bytes).unwrap();
}

fn with_selector(s: u8, b: &[u8]) -> Vec<u8> {
    let mut v = vec![s];
    v.extend_from_slice(b);
    v
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");

    // nfs3_args: selector = procedure number, then the argument body (placeholder handles are
    // ordinary 8-byte handles to the decoder).
    for (p, label, args) in nfs_args() {
        write(&corpus.join("nfs3_args"), &format!("{p:02}_{label}"), &with_selector(p as u8, &args));
    }
    let ok_attr = fattr3 {
        type_: ftype3::NF3REG,
        mode: 0o644,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 5,
        used: 4096,
        rdev: specdata3 { specdata1: 0, specdata2: 0 },
        fsid: 1,
        fileid: 2,
        atime: nfstime3 { seconds: 1, nseconds: 2 },
        mtime: nfstime3 { seconds: 3, nseconds: 4 },
        ctime: nfstime3 { seconds: 5, nseconds: 6 },
    };
    write(&corpus.join("nfs3_args"), "22_fattr3", &with_selector(22, &ok_attr.to_bytes()));
    let getattr_ok: GETATTR3res = Nfs3Result::Ok(GETATTR3resok { obj_attributes: ok_attr.clone() });
    write(&corpus.join("nfs3_args"), "23_getattr_res", &with_selector(23, &getattr_ok.to_bytes()));
    let readdir_ok: READDIR3res = Nfs3Result::Ok(READDIR3resok {
        dir_attributes: Some(ok_attr),
        cookieverf: [1; 8],
        reply: dirlist3 {
            entries: vec![
                entry3 { fileid: 1, name: name("a"), cookie: 1 },
                entry3 { fileid: 2, name: name("bb"), cookie: 2 },
            ],
            eof: true,
        },
    });
    write(&corpus.join("nfs3_args"), "38_readdir_res", &with_selector(38, &readdir_ok.to_bytes()));

    // mount_args and portmap_args: selector = the target's type index.
    write(
        &corpus.join("mount_args"),
        "0_dirpath",
        &with_selector(0, &mount::dirpath::from("/srv/a").to_bytes()),
    );
    let mres = mount::mountres3::Ok(mount::mountres3_ok {
        fhandle: Bytes::from_static(&[7; 28]),
        auth_flavors: vec![1, 0],
    });
    write(&corpus.join("mount_args"), "1_mountres3", &with_selector(1, &mres.to_bytes()));
    write(
        &corpus.join("mount_args"),
        "2_fhstatus",
        &with_selector(2, &mount::fhstatus::Ok([3; 32]).to_bytes()),
    );
    let ml = mount::mountlist(vec![mount::mountbody {
        ml_hostname: mount::name::from("h"),
        ml_directory: mount::dirpath::from("/d"),
    }]);
    write(&corpus.join("mount_args"), "3_mountlist", &with_selector(3, &ml.to_bytes()));
    let ex = mount::exports(vec![mount::exportnode {
        ex_dir: mount::dirpath::from("/srv"),
        ex_groups: vec![mount::name::from("*")],
    }]);
    write(&corpus.join("mount_args"), "4_exports", &with_selector(4, &ex.to_bytes()));
    for (i, (_, _, label, args)) in portmap_args().into_iter().enumerate() {
        let sel = if label.starts_with("pmap") { 0 } else { 1 };
        if !args.is_empty() {
            write(&corpus.join("portmap_args"), &format!("{i:02}_{label}"), &with_selector(sel, &args));
        }
    }
    nlm_seeds(&corpus.join("nlm_args"));
    write(&corpus.join("portmap_args"), "uaddr_v4", b"\x07127.0.0.1.8.1");
    write(&corpus.join("portmap_args"), "uaddr_v6", b"\x07::1.0.111");

    // rpc_record: record-marked streams (selector = read size).
    let null = call_record(0x1234, nfs3::PROGRAM, nfs3::VERSION, procs::NULL, &[]);
    let mut stream = vec![7u8];
    stream.extend_from_slice(&record_marker(null.len(), true));
    stream.extend_from_slice(&null);
    write(&corpus.join("rpc_record"), "one_record", &stream);
    let mut split = vec![3u8];
    split.extend_from_slice(&record_marker(10, false));
    split.extend_from_slice(&null[..10]);
    split.extend_from_slice(&record_marker(null.len() - 10, true));
    split.extend_from_slice(&null[10..]);
    split.extend_from_slice(&record_marker(0, true));
    write(&corpus.join("rpc_record"), "two_fragments_then_empty", &split);
    let gids = AuthSysParams {
        stamp: 9,
        machine_name: Bytes::from_static(b"client"),
        uid: 1000,
        gid: 50,
        gids: vec![4, 24, 27],
    };
    let h = CallHeader {
        xid: 5,
        rpcvers: 2,
        prog: 100005,
        vers: 3,
        proc_: 1,
        cred: gids.to_opaque_auth(),
        verf: OpaqueAuth::none(),
    };
    let mut w = BytesMut::new();
    h.encode(&mut w);
    let mut one = vec![0u8];
    one.extend_from_slice(&record_marker(w.len(), true));
    one.extend_from_slice(&w);
    write(&corpus.join("rpc_record"), "auth_sys_gids", &one);

    // exports_parse: exports(5) text.
    let exports_seeds: [(&str, &str); 5] = [
        (
            "file",
            "# comment\n/srv/a 10.0.0.0/24(rw,no_root_squash) 192.168.1.7(ro,insecure)\n\"/srv/b c\" -async \\\n  2001:db8::/32(rw) *(ro)\n",
        ),
        ("wildcard_fsid", "/srv/\\040x *.example.com(rw,anonuid=1000,anongid=100,fsid=7)\n"),
        ("names", "/srv/n host.example(rw,all_squash) dual.example(ro,nordirplus) gone.invalid(rw)\n"),
        ("netmask", "/srv/m 10.1.0.0/255.255.0.0(rw,sync,secure,root_squash) [::1](ro) @group(rw)\n"),
        ("fsid_uuid", "/srv/u *(fsid=root) *(fsid=12345678-1234-1234-1234-123456789abc)\n/srv/u2 (rw)\n"),
    ];
    for (label, text) in exports_seeds {
        write(&corpus.join("exports_parse"), label, text.as_bytes());
    }

    // server: selector byte (caller and transport), then a whole call record.
    let mut xid = 0x100;
    let mut server = |label: String, who: u8, prog: u32, vers: u32, proc_: u32, args: &[u8]| {
        xid += 1;
        write(
            &corpus.join("server"),
            &label,
            &with_selector(who, &call_record(xid, prog, vers, proc_, args)),
        );
    };
    for (p, label, args) in nfs_args() {
        server(format!("nfs_{p:02}_{label}"), 0, nfs3::PROGRAM, nfs3::VERSION, p, &args);
    }
    for (p, label, args) in
        nfs_args().into_iter().filter(|(p, ..)| [procs::GETATTR, procs::WRITE, procs::CREATE].contains(p))
    {
        server(format!("nfs_{p:02}_{label}_unlisted_udp"), 3 | 4, nfs3::PROGRAM, nfs3::VERSION, p, &args);
        server(format!("nfs_{p:02}_{label}_ro_host"), 2, nfs3::PROGRAM, nfs3::VERSION, p, &args);
    }
    // MNT of the real exports is in the harness; the fuzzer mutates these toward other paths.
    for (v, p, label, args) in mount_args() {
        server(format!("mount_v{v}_{label}"), 1, mount::PROGRAM, v, p, &args);
    }
    for (v, p, label, args) in portmap_args() {
        server(format!("portmap_{label}"), 0, portmap::PROGRAM, v, p, &args);
    }
    server("rpc_bad_version".into(), 0, nfs3::PROGRAM, 2, procs::NULL, &[]);
    server("rpc_bad_program".into(), 0, 100_227, 3, 0, &[]);
    let mut reply_record = with_selector(0, &null);
    reply_record[8] = 1; // msg_type REPLY: must get no reply
    write(&corpus.join("server"), "not_a_call", &reply_record);
    println!("seeds written under {}", corpus.display());

    // Show what each server seed gets from a fresh harness, to see that the seeds reach the
    // procedures (an NFS status of 0 is NFS3_OK) rather than stopping at the RPC layer.
    let mut harness = rnfsd_fuzz::server::Harness::new();
    let mut names: Vec<_> =
        fs::read_dir(corpus.join("server")).unwrap().flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let data = fs::read(&path).unwrap();
        let peer = rnfsd_fuzz::server::PEERS[usize::from(data[0] & 3)];
        let transport =
            if data[0] & 4 != 0 { rnfsd::rpc::Transport::Udp } else { rnfsd::rpc::Transport::Tcp };
        let (sent, reply) = harness.handle(&data[1..], peer, transport);
        rnfsd_fuzz::server::check_reply(&sent, reply.as_ref());
        let shown = reply.map_or("no reply".to_string(), |r| {
            let words: Vec<u32> =
                r.chunks(4).take(7).map(|c| u32::from_be_bytes(c.try_into().unwrap_or([0; 4]))).collect();
            format!(
                "reply_stat {} accept_stat {} first result word {}",
                words[2],
                words.get(5).unwrap_or(&0),
                words.get(6).map_or("-".to_string(), |w| w.to_string())
            )
        });
        println!("{:40} {shown}", path.file_name().unwrap().to_string_lossy());
    }
}

/// nlm_args: selector = the target's type index. A LOCK, TEST and UNLOCK as the Linux client
/// sends them, a DENIED TEST result, and the status monitor's MON and NOTIFY.
fn nlm_seeds(dir: &Path) {
    let alock = nlm::nlm4_lock {
        caller_name: "client".into(),
        fh: nlm::netobj(Bytes::from_static(&[7; 28])),
        oh: "0@client".into(),
        svid: 0,
        l_offset: 0,
        l_len: 0,
    };
    let cookie = nlm::netobj(Bytes::from_static(&[0, 0, 0, 1]));
    let test = nlm::nlm4_testargs { cookie: cookie.clone(), exclusive: true, alock: alock.clone() };
    write(dir, "0_testargs", &with_selector(0, &test.to_bytes()));
    let holder = nlm::nlm4_holder { exclusive: true, svid: 3, oh: "3@other".into(), l_offset: 10, l_len: 5 };
    let denied = nlm::nlm4_testres { cookie: cookie.clone(), test_stat: nlm::nlm4_testrply::Denied(holder) };
    write(dir, "1_testres_denied", &with_selector(1, &denied.to_bytes()));
    let lock = nlm::nlm4_lockargs {
        cookie: cookie.clone(),
        block: true,
        exclusive: true,
        alock: alock.clone(),
        reclaim: false,
        state: 3,
    };
    write(dir, "2_lockargs", &with_selector(2, &lock.to_bytes()));
    let unlock = nlm::nlm4_unlockargs { cookie: cookie.clone(), alock };
    write(dir, "4_unlockargs", &with_selector(4, &unlock.to_bytes()));
    let res = nlm::nlm4_res { cookie, stat: nlm::nlm4_stats::Blocked };
    write(dir, "5_res", &with_selector(5, &res.to_bytes()));
    let mon = nsm::mon {
        mon_id: nsm::mon_id {
            mon_name: "client".into(),
            my_id: nsm::my_id { my_name: "127.0.0.1".into(), my_prog: 100021, my_vers: 4, my_proc: 16 },
        },
        priv_: [1; nsm::SM_PRIV_SIZE],
    };
    write(dir, "10_mon", &with_selector(10, &mon.to_bytes()));
    let notify = nsm::stat_chge { mon_name: "client".into(), state: 5 };
    write(dir, "12_notify", &with_selector(12, &notify.to_bytes()));
}
