//! Golden vectors, round-trip and robustness properties for the NFS v3 codecs.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::codec::{Reader, Xdr, XdrError};

fn fh(b: &[u8]) -> nfs_fh3 {
    nfs_fh3::from(b)
}

fn sample_fattr3() -> fattr3 {
    fattr3 {
        type_: ftype3::NF3REG,
        mode: 0o644,
        nlink: 1,
        uid: 1000,
        gid: 100,
        size: 0x0000_0001_0000_0002,
        used: 4096,
        rdev: specdata3 { specdata1: 8, specdata2: 1 },
        fsid: 0x1122_3344_5566_7788,
        fileid: 42,
        atime: nfstime3 { seconds: 1, nseconds: 2 },
        mtime: nfstime3 { seconds: 3, nseconds: 4 },
        ctime: nfstime3 { seconds: 5, nseconds: 6 },
    }
}

/// Encodes, checks the length bookkeeping, decodes the whole buffer and compares.
fn round_trip<T: Xdr + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = v.to_bytes();
    prop_assert_eq!(bytes.len(), v.encoded_len());
    prop_assert_eq!(bytes.len() % 4, 0);
    let back = T::from_bytes(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, v);
    Ok(())
}

// ---- golden vectors ----

#[test]
fn fattr3_golden() {
    let expected: Vec<u8> = [
        &[0, 0, 0, 1][..],                                 // type NF3REG
        &[0, 0, 0x01, 0xa4],                               // 0o644                 // mode
        &[0, 0, 0, 1],                                     // nlink
        &[0, 0, 0x03, 0xe8],                               // uid 1000
        &[0, 0, 0, 100],                                   // gid
        &[0, 0, 0, 1, 0, 0, 0, 2],                         // size
        &[0, 0, 0, 0, 0, 0, 0x10, 0],                      // used 4096
        &[0, 0, 0, 8, 0, 0, 0, 1],                         // rdev
        &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88], // fsid
        &[0, 0, 0, 0, 0, 0, 0, 42],                        // fileid
        &[0, 0, 0, 1, 0, 0, 0, 2],                         // atime
        &[0, 0, 0, 3, 0, 0, 0, 4],                         // mtime
        &[0, 0, 0, 5, 0, 0, 0, 6],                         // ctime
    ]
    .concat();
    let a = sample_fattr3();
    assert_eq!(expected.len(), fattr3::ENCODED_LEN);
    assert_eq!(a.encoded_len(), fattr3::ENCODED_LEN);
    assert_eq!(&a.to_bytes()[..], &expected[..]);
    assert_eq!(fattr3::from_bytes(&expected).unwrap(), a);
}

#[test]
fn getattr3args_golden() {
    let args = GETATTR3args { object: fh(&[1, 2, 3, 4, 5]) };
    let expected = [0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0];
    assert_eq!(&args.to_bytes()[..], &expected);
    assert_eq!(GETATTR3args::from_bytes(&expected).unwrap(), args);
}

#[test]
fn lookup3res_failure_golden() {
    let res: LOOKUP3res = Nfs3Result::Err(nfsstat3::NFS3ERR_NOENT, None);
    let expected = [0, 0, 0, 2, 0, 0, 0, 0];
    assert_eq!(&res.to_bytes()[..], &expected);
    assert_eq!(LOOKUP3res::from_bytes(&expected).unwrap(), res);
    assert_eq!(res.status(), nfsstat3::NFS3ERR_NOENT);
}

#[test]
fn lookup3res_success_golden() {
    let res: LOOKUP3res = Nfs3Result::Ok(LOOKUP3resok {
        object: fh(&[9; 8]),
        obj_attributes: Some(sample_fattr3()),
        dir_attributes: None,
    });
    let mut expected = vec![0, 0, 0, 0, 0, 0, 0, 8, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 1];
    expected.extend_from_slice(&sample_fattr3().to_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(&res.to_bytes()[..], &expected[..]);
    assert_eq!(LOOKUP3res::from_bytes(&expected).unwrap(), res);
}

#[test]
fn write3args_golden_with_padding() {
    let args = WRITE3args {
        file: fh(&[0xaa, 0xbb, 0xcc, 0xdd, 0xee]),
        offset: 0x0102_0304_0506_0708,
        count: 3,
        stable: stable_how::FILE_SYNC,
        data: Bytes::from_static(b"abc"),
    };
    let expected: Vec<u8> = [
        &[0, 0, 0, 5, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0, 0, 0][..],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 0, 0, 3],
        &[0, 0, 0, 2],
        &[0, 0, 0, 3, b'a', b'b', b'c', 0],
    ]
    .concat();
    assert_eq!(&args.to_bytes()[..], &expected[..]);
    assert_eq!(args.encoded_len(), expected.len());
    assert_eq!(WRITE3args::from_bytes(&expected).unwrap(), args);
}

fn two_entry_readdir() -> READDIR3resok {
    READDIR3resok {
        dir_attributes: None,
        cookieverf: [1, 2, 3, 4, 5, 6, 7, 8],
        reply: dirlist3 {
            entries: vec![
                entry3 { fileid: 2, name: filename3::from("."), cookie: 1 },
                entry3 { fileid: 7, name: filename3::from("hello"), cookie: 0x10 },
            ],
            eof: true,
        },
    }
}

#[test]
fn readdir3resok_two_entries_golden() {
    let ok = two_entry_readdir();
    let expected: Vec<u8> = [
        &[0, 0, 0, 0][..],         // dir_attributes absent
        &[1, 2, 3, 4, 5, 6, 7, 8], // cookieverf
        &[0, 0, 0, 1],             // entry follows
        &[0, 0, 0, 0, 0, 0, 0, 2], // fileid
        &[0, 0, 0, 1, b'.', 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 1], // cookie
        &[0, 0, 0, 1],             // entry follows
        &[0, 0, 0, 0, 0, 0, 0, 7],
        &[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0x10],
        &[0, 0, 0, 0], // no more entries
        &[0, 0, 0, 1], // eof
    ]
    .concat();
    assert_eq!(&ok.to_bytes()[..], &expected[..]);
    assert_eq!(READDIR3resok::from_bytes(&expected).unwrap(), ok);
}

#[test]
fn dirlist_budget_helpers_match_encoding() {
    let ok = two_entry_readdir();
    let entries = &ok.reply.entries;
    for e in entries {
        assert_eq!(e.encoded_len(), entry3::encoded_len_for(e.name.0.len()));
    }
    let budget: usize =
        entries.iter().map(|e| e.encoded_len() + DIRLIST_ENTRY_OVERHEAD).sum::<usize>() + DIRLIST_TRAILER_LEN;
    assert_eq!(ok.reply.encoded_len(), budget);
    assert_eq!(ok.reply.to_bytes().len(), budget);
    assert_eq!(dirlist3::default().to_bytes().len(), DIRLIST_TRAILER_LEN);

    let plus = dirlistplus3 {
        entries: vec![entryplus3 {
            fileid: 1,
            name: filename3::from("abcd"),
            cookie: 2,
            name_attributes: Some(sample_fattr3()),
            name_handle: Some(fh(&[1; 12])),
        }],
        eof: false,
    };
    let e = &plus.entries[0];
    assert_eq!(e.dircount_len(), 8 + 8 + 8);
    assert_eq!(e.encoded_len(), e.dircount_len() + 4 + 84 + 4 + 16);
    assert_eq!(plus.encoded_len(), e.encoded_len() + DIRLIST_ENTRY_OVERHEAD + DIRLIST_TRAILER_LEN);
    assert_eq!(plus.to_bytes().len(), plus.encoded_len());
}

#[test]
fn sattr3_client_time_golden() {
    let s = sattr3 {
        mode: Some(0o755),
        uid: None,
        gid: Some(7),
        size: Some(0x1_0000_0000),
        atime: SetTime::ClientTime(nfstime3 { seconds: 0x0a0b_0c0d, nseconds: 500 }),
        mtime: SetTime::ServerTime,
    };
    let expected: Vec<u8> = [
        &[0, 0, 0, 1, 0, 0, 0x01, 0xed][..],                     // 0o755 // mode
        &[0, 0, 0, 0],                                           // uid unset
        &[0, 0, 0, 1, 0, 0, 0, 7],                               // gid
        &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0],                   // size
        &[0, 0, 0, 2, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0x01, 0xf4], // atime SET_TO_CLIENT_TIME
        &[0, 0, 0, 1],                                           // mtime SET_TO_SERVER_TIME
    ]
    .concat();
    assert_eq!(&s.to_bytes()[..], &expected[..]);
    assert_eq!(sattr3::from_bytes(&expected).unwrap(), s);
    assert_eq!(&sattr3::default().to_bytes()[..], &[0u8; 24][..]);
}

#[test]
fn createhow3_exclusive_golden() {
    let how = createhow3::EXCLUSIVE([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
    let expected = [0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
    assert_eq!(&how.to_bytes()[..], &expected);
    assert_eq!(createhow3::from_bytes(&expected).unwrap(), how);
}

#[test]
fn mknoddata3_void_arm_and_bad_type() {
    let dir = mknoddata3::Other(ftype3::NF3DIR);
    assert_eq!(&dir.to_bytes()[..], &[0, 0, 0, 2]);
    assert_eq!(mknoddata3::from_bytes(&[0, 0, 0, 5]).unwrap(), mknoddata3::Other(ftype3::NF3LNK));
    assert_eq!(
        mknoddata3::from_bytes(&[0, 0, 0, 8]),
        Err(XdrError::BadDiscriminant { ty: "ftype3", value: 8 })
    );
    let chr = mknoddata3::CHR(devicedata3 {
        dev_attributes: sattr3::default(),
        spec: specdata3 { specdata1: 1, specdata2: 3 },
    });
    let mut expected = vec![0, 0, 0, 4];
    expected.extend_from_slice(&[0; 24]);
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3]);
    assert_eq!(&chr.to_bytes()[..], &expected[..]);
}

#[test]
fn result_with_unknown_status_is_bad_discriminant() {
    assert_eq!(
        GETATTR3res::from_bytes(&[0, 0, 0, 3]),
        Err(XdrError::BadDiscriminant { ty: "nfsstat3", value: 3 })
    );
    assert_eq!(
        WRITE3res::from_bytes(&[0, 0, 0x27, 0x19, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(XdrError::BadDiscriminant { ty: "nfsstat3", value: 10009 })
    );
    // A void failure arm has no body.
    assert_eq!(GETATTR3res::from_bytes(&[0, 0, 0, 70]), Ok(Nfs3Result::Err(nfsstat3::NFS3ERR_STALE, ())));
}

#[test]
fn nfsstat3_values_match_rfc() {
    for (s, v) in [
        (nfsstat3::NFS3_OK, 0),
        (nfsstat3::NFS3ERR_ACCES, 13),
        (nfsstat3::NFS3ERR_NAMETOOLONG, 63),
        (nfsstat3::NFS3ERR_REMOTE, 71),
        (nfsstat3::NFS3ERR_BADHANDLE, 10001),
        (nfsstat3::NFS3ERR_JUKEBOX, 10008),
    ] {
        assert_eq!(s as u32, v);
    }
    for s in nfsstat3::ALL {
        assert_eq!(nfsstat3::from_u32(s as u32), Some(s));
    }
    let distinct: std::collections::HashSet<_> = nfsstat3::ALL.iter().collect();
    assert_eq!(distinct.len(), nfsstat3::ALL.len());
}

#[test]
fn procedure_numbers_and_names() {
    assert_eq!(procs::NULL, 0);
    assert_eq!(procs::READDIRPLUS, 17);
    assert_eq!(procs::COMMIT, 21);
    assert_eq!(procs::name(procs::WRITE), Some("WRITE"));
    assert_eq!(procs::name(procs::PATHCONF), Some("PATHCONF"));
    assert_eq!(procs::name(22), None);
}

// ---- hostile lengths ----

const HUGE: [u8; 4] = [0xff, 0xff, 0xff, 0xf0];

fn assert_too_long<T: Xdr + Debug>(input: &[u8], field: &'static str) {
    let start = Instant::now();
    let got = T::from_bytes(input);
    assert!(start.elapsed() < Duration::from_secs(1), "decoding a huge length took {:?}", start.elapsed());
    match got {
        Err(XdrError::TooLong { field: f, len, .. }) => {
            assert_eq!(f, field);
            assert_eq!(len, 0xffff_fff0);
        }
        other => panic!("expected TooLong for {field}, got {other:?}"),
    }
}

#[test]
fn huge_lengths_are_rejected_without_allocating() {
    assert_too_long::<filename3>(&HUGE, "filename3");
    assert_too_long::<nfs_fh3>(&HUGE, "nfs_fh3");
    assert_too_long::<nfspath3>(&HUGE, "nfspath3");
    assert_too_long::<GETATTR3args>(&HUGE, "nfs_fh3");

    // WRITE3args: empty handle, offset, count, stable, then the data length.
    let mut write = vec![0u8; 4 + 8 + 4];
    write.extend_from_slice(&[0, 0, 0, 0]);
    write.extend_from_slice(&HUGE);
    assert_too_long::<WRITE3args>(&write, "data");

    // READ3res: OK, no attributes, count, eof, then the data length.
    let mut read = vec![0u8; 4 + 4 + 4 + 4];
    read.extend_from_slice(&HUGE);
    assert_too_long::<READ3res>(&read, "data");

    // READDIR3res: OK, no attributes, verifier, one entry whose name claims 4 GiB.
    let mut readdir = vec![0u8; 4 + 4 + 8];
    readdir.extend_from_slice(&[0, 0, 0, 1]);
    readdir.extend_from_slice(&[0; 8]);
    readdir.extend_from_slice(&HUGE);
    assert_too_long::<READDIR3res>(&readdir, "filename3");

    // A list "value follows" word that is a huge number instead of a boolean.
    let mut list = vec![0u8; 4 + 4 + 8];
    list.extend_from_slice(&HUGE);
    assert_eq!(READDIRPLUS3res::from_bytes(&list), Err(XdrError::BadBool(0xffff_fff0)));
}

#[test]
fn truncated_data_and_lists_are_errors() {
    // Data length within MAX_DATA but more than the input holds.
    let mut write = vec![0u8; 4 + 8 + 4 + 4];
    write.extend_from_slice(&[0, 0x10, 0, 0, 1, 2, 3]);
    assert!(matches!(WRITE3args::from_bytes(&write), Err(XdrError::Truncated { .. })));
    // A data length over MAX_DATA is refused even when the bytes are present.
    let mut big = vec![0u8; 4 + 8 + 4 + 4];
    big.extend_from_slice(&((MAX_DATA + 4) as u32).to_be_bytes());
    big.resize(big.len() + MAX_DATA + 4, 0);
    assert!(matches!(WRITE3args::from_bytes(&big), Err(XdrError::TooLong { field: "data", .. })));
    // A list that promises another entry and then ends.
    let bytes = two_entry_readdir().to_bytes();
    let cut = &bytes[..bytes.len() - 8];
    let mut with_follow = cut.to_vec();
    with_follow.extend_from_slice(&[0, 0, 0, 1]);
    assert!(matches!(READDIR3resok::from_bytes(&with_follow), Err(XdrError::Truncated { .. })));
}

#[test]
fn write_data_is_a_slice_of_the_record() {
    let args = WRITE3args {
        file: fh(&[7; 32]),
        offset: 4096,
        count: 1000,
        stable: stable_how::UNSTABLE,
        data: Bytes::from(vec![0x5a; 1000]),
    };
    let record = args.to_bytes();
    let mut r = Reader::new(record.clone());
    let decoded = WRITE3args::decode(&mut r).unwrap();
    r.finish().unwrap();
    assert_eq!(decoded, args);
    let inside = record.as_ptr() as usize..record.as_ptr() as usize + record.len();
    let data_start = decoded.data.as_ptr() as usize;
    assert!(inside.contains(&data_start));
    assert!(data_start + decoded.data.len() <= inside.end);
    assert_eq!(data_start - inside.start, 4 + 32 + 8 + 4 + 4 + 4);
}

#[test]
fn read_data_is_a_slice_of_the_record() {
    let res: READ3res = Nfs3Result::Ok(READ3resok {
        file_attributes: Some(sample_fattr3()),
        count: 5,
        eof: true,
        data: Bytes::from_static(b"hello"),
    });
    let record = res.to_bytes();
    let decoded = READ3res::decode(&mut Reader::new(record.clone())).unwrap().ok().unwrap();
    let offset = decoded.data.as_ptr() as usize - record.as_ptr() as usize;
    assert_eq!(offset, 4 + 4 + 84 + 4 + 4 + 4);
    assert_eq!(&decoded.data[..], b"hello");
}

// ---- strategies ----

fn opaque(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn arb_fh() -> impl Strategy<Value = nfs_fh3> {
    opaque(FHSIZE).prop_map(nfs_fh3)
}

fn arb_name() -> impl Strategy<Value = filename3> {
    prop_oneof![opaque(16), opaque(MAX_NAME)].prop_map(filename3)
}

fn arb_path() -> impl Strategy<Value = nfspath3> {
    prop_oneof![opaque(32), opaque(MAX_PATH)].prop_map(nfspath3)
}

fn arb_data() -> impl Strategy<Value = Bytes> {
    opaque(600)
}

fn arb_time() -> impl Strategy<Value = nfstime3> {
    (any::<u32>(), any::<u32>()).prop_map(|(seconds, nseconds)| nfstime3 { seconds, nseconds })
}

fn arb_ftype() -> impl Strategy<Value = ftype3> {
    (1u32..=7).prop_map(|v| ftype3::from_u32(v).unwrap())
}

fn arb_stable() -> impl Strategy<Value = stable_how> {
    (0u32..=2).prop_map(|v| stable_how::from_u32(v).unwrap())
}

fn arb_fattr3() -> impl Strategy<Value = fattr3> {
    (
        (arb_ftype(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u64>(), any::<u64>(), any::<(u32, u32)>(), any::<u64>(), any::<u64>()),
        (arb_time(), arb_time(), arb_time()),
    )
        .prop_map(
            |((type_, mode, nlink, uid, gid), (size, used, rdev, fsid, fileid), (atime, mtime, ctime))| {
                fattr3 {
                    type_,
                    mode,
                    nlink,
                    uid,
                    gid,
                    size,
                    used,
                    rdev: specdata3 { specdata1: rdev.0, specdata2: rdev.1 },
                    fsid,
                    fileid,
                    atime,
                    mtime,
                    ctime,
                }
            },
        )
}

fn arb_post_op_attr() -> impl Strategy<Value = post_op_attr> {
    proptest::option::of(arb_fattr3())
}

fn arb_wcc_data() -> impl Strategy<Value = wcc_data> {
    let wcc_attr = (any::<u64>(), arb_time(), arb_time()).prop_map(|(size, mtime, ctime)| wcc_attr {
        size,
        mtime,
        ctime,
    });
    (proptest::option::of(wcc_attr), arb_post_op_attr())
        .prop_map(|(before, after)| wcc_data { before, after })
}

fn arb_set_time() -> impl Strategy<Value = SetTime> {
    prop_oneof![
        Just(SetTime::DontChange),
        Just(SetTime::ServerTime),
        arb_time().prop_map(SetTime::ClientTime)
    ]
}

fn arb_sattr3() -> impl Strategy<Value = sattr3> {
    (
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        any::<Option<u64>>(),
        arb_set_time(),
        arb_set_time(),
    )
        .prop_map(|(mode, uid, gid, size, atime, mtime)| sattr3 { mode, uid, gid, size, atime, mtime })
}

fn arb_diropargs() -> impl Strategy<Value = diropargs3> {
    (arb_fh(), arb_name()).prop_map(|(dir, name)| diropargs3 { dir, name })
}

fn arb_createhow() -> impl Strategy<Value = createhow3> {
    prop_oneof![
        arb_sattr3().prop_map(createhow3::UNCHECKED),
        arb_sattr3().prop_map(createhow3::GUARDED),
        any::<[u8; 8]>().prop_map(createhow3::EXCLUSIVE),
    ]
}

fn arb_devicedata() -> impl Strategy<Value = devicedata3> {
    (arb_sattr3(), any::<(u32, u32)>()).prop_map(|(dev_attributes, (a, b))| devicedata3 {
        dev_attributes,
        spec: specdata3 { specdata1: a, specdata2: b },
    })
}

fn arb_mknoddata() -> impl Strategy<Value = mknoddata3> {
    prop_oneof![
        arb_devicedata().prop_map(mknoddata3::CHR),
        arb_devicedata().prop_map(mknoddata3::BLK),
        arb_sattr3().prop_map(mknoddata3::SOCK),
        arb_sattr3().prop_map(mknoddata3::FIFO),
        proptest::sample::select(vec![ftype3::NF3REG, ftype3::NF3DIR, ftype3::NF3LNK])
            .prop_map(mknoddata3::Other),
    ]
}

fn arb_entry3() -> impl Strategy<Value = entry3> {
    (any::<u64>(), arb_name(), any::<u64>()).prop_map(|(fileid, name, cookie)| entry3 {
        fileid,
        name,
        cookie,
    })
}

fn arb_entryplus3() -> impl Strategy<Value = entryplus3> {
    (any::<u64>(), arb_name(), any::<u64>(), arb_post_op_attr(), proptest::option::of(arb_fh())).prop_map(
        |(fileid, name, cookie, name_attributes, name_handle)| entryplus3 {
            fileid,
            name,
            cookie,
            name_attributes,
            name_handle,
        },
    )
}

fn arb_error_status() -> impl Strategy<Value = nfsstat3> {
    proptest::sample::select(nfsstat3::ALL[1..].to_vec())
}

fn arb_res<T: Debug, F: Debug>(
    ok: impl Strategy<Value = T>,
    fail: impl Strategy<Value = F>,
) -> impl Strategy<Value = Nfs3Result<T, F>> {
    prop_oneof![
        ok.prop_map(Nfs3Result::Ok),
        (arb_error_status(), fail).prop_map(|(s, f)| Nfs3Result::Err(s, f))
    ]
}

fn arb_create_resok() -> impl Strategy<Value = CREATE3resok> {
    (proptest::option::of(arb_fh()), arb_post_op_attr(), arb_wcc_data())
        .prop_map(|(obj, obj_attributes, dir_wcc)| CREATE3resok { obj, obj_attributes, dir_wcc })
}

// ---- round trips ----

/// One proptest per type: `round_trip` over values from the given strategy.
macro_rules! round_trips {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            $(
                #[test]
                fn $name(v in $strategy) {
                    round_trip(&v)?;
                }
            )*
        }
    };
}

round_trips! {
    rt_fattr3: arb_fattr3();
    rt_sattr3: arb_sattr3();
    rt_wcc_data: arb_wcc_data();
    rt_createhow3: arb_createhow();
    rt_mknoddata3: arb_mknoddata();
    rt_entry3: arb_entry3();
    rt_entryplus3: arb_entryplus3();

    rt_getattr_args: arb_fh().prop_map(|object| GETATTR3args { object });
    rt_setattr_args: (arb_fh(), arb_sattr3(), proptest::option::of(arb_time()))
        .prop_map(|(object, new_attributes, guard)| SETATTR3args { object, new_attributes, guard });
    rt_lookup_args: arb_diropargs().prop_map(|what| LOOKUP3args { what });
    rt_access_args: (arb_fh(), any::<u32>()).prop_map(|(object, access)| ACCESS3args { object, access });
    rt_readlink_args: arb_fh().prop_map(|symlink| READLINK3args { symlink });
    rt_read_args: (arb_fh(), any::<u64>(), any::<u32>())
        .prop_map(|(file, offset, count)| READ3args { file, offset, count });
    rt_write_args: (arb_fh(), any::<u64>(), any::<u32>(), arb_stable(), arb_data())
        .prop_map(|(file, offset, count, stable, data)| WRITE3args { file, offset, count, stable, data });
    rt_create_args: (arb_diropargs(), arb_createhow()).prop_map(|(where_, how)| CREATE3args { where_, how });
    rt_mkdir_args: (arb_diropargs(), arb_sattr3())
        .prop_map(|(where_, attributes)| MKDIR3args { where_, attributes });
    rt_symlink_args: (arb_diropargs(), arb_sattr3(), arb_path()).prop_map(|(where_, a, p)| SYMLINK3args {
        where_,
        symlink: symlinkdata3 { symlink_attributes: a, symlink_data: p },
    });
    rt_mknod_args: (arb_diropargs(), arb_mknoddata()).prop_map(|(where_, what)| MKNOD3args { where_, what });
    rt_remove_args: arb_diropargs().prop_map(|object| REMOVE3args { object });
    rt_rmdir_args: arb_diropargs().prop_map(|object| RMDIR3args { object });
    rt_rename_args: (arb_diropargs(), arb_diropargs()).prop_map(|(from, to)| RENAME3args { from, to });
    rt_link_args: (arb_fh(), arb_diropargs()).prop_map(|(file, link)| LINK3args { file, link });
    rt_readdir_args: (arb_fh(), any::<u64>(), any::<[u8; 8]>(), any::<u32>())
        .prop_map(|(dir, cookie, cookieverf, count)| READDIR3args { dir, cookie, cookieverf, count });
    rt_readdirplus_args: (arb_fh(), any::<u64>(), any::<[u8; 8]>(), any::<u32>(), any::<u32>()).prop_map(
        |(dir, cookie, cookieverf, dircount, maxcount)| READDIRPLUS3args { dir, cookie, cookieverf, dircount, maxcount }
    );
    rt_fsstat_args: arb_fh().prop_map(|fsroot| FSSTAT3args { fsroot });
    rt_fsinfo_args: arb_fh().prop_map(|fsroot| FSINFO3args { fsroot });
    rt_pathconf_args: arb_fh().prop_map(|object| PATHCONF3args { object });
    rt_commit_args: (arb_fh(), any::<u64>(), any::<u32>())
        .prop_map(|(file, offset, count)| COMMIT3args { file, offset, count });

    rt_getattr_res: arb_res(arb_fattr3().prop_map(|obj_attributes| GETATTR3resok { obj_attributes }), Just(()));
    rt_setattr_res: arb_res(arb_wcc_data().prop_map(|obj_wcc| SETATTR3resok { obj_wcc }), arb_wcc_data());
    rt_lookup_res: arb_res(
        (arb_fh(), arb_post_op_attr(), arb_post_op_attr()).prop_map(|(object, obj_attributes, dir_attributes)| {
            LOOKUP3resok { object, obj_attributes, dir_attributes }
        }),
        arb_post_op_attr(),
    );
    rt_access_res: arb_res(
        (arb_post_op_attr(), any::<u32>()).prop_map(|(obj_attributes, access)| ACCESS3resok { obj_attributes, access }),
        arb_post_op_attr(),
    );
    rt_readlink_res: arb_res(
        (arb_post_op_attr(), arb_path())
            .prop_map(|(symlink_attributes, data)| READLINK3resok { symlink_attributes, data }),
        arb_post_op_attr(),
    );
    rt_read_res: arb_res(
        (arb_post_op_attr(), any::<u32>(), any::<bool>(), arb_data())
            .prop_map(|(file_attributes, count, eof, data)| READ3resok { file_attributes, count, eof, data }),
        arb_post_op_attr(),
    );
    rt_write_res: arb_res(
        (arb_wcc_data(), any::<u32>(), arb_stable(), any::<[u8; 8]>())
            .prop_map(|(file_wcc, count, committed, verf)| WRITE3resok { file_wcc, count, committed, verf }),
        arb_wcc_data(),
    );
    rt_create_res: arb_res(arb_create_resok(), arb_wcc_data());
    rt_remove_res: arb_res(arb_wcc_data().prop_map(|dir_wcc| REMOVE3resok { dir_wcc }), arb_wcc_data());
    rt_rmdir_res: arb_res(arb_wcc_data().prop_map(|dir_wcc| RMDIR3resok { dir_wcc }), arb_wcc_data());
    rt_rename_res: arb_res(
        (arb_wcc_data(), arb_wcc_data()).prop_map(|(fromdir_wcc, todir_wcc)| RENAME3resok { fromdir_wcc, todir_wcc }),
        (arb_wcc_data(), arb_wcc_data())
            .prop_map(|(fromdir_wcc, todir_wcc)| RENAME3resfail { fromdir_wcc, todir_wcc }),
    );
    rt_link_res: arb_res(
        (arb_post_op_attr(), arb_wcc_data())
            .prop_map(|(file_attributes, linkdir_wcc)| LINK3resok { file_attributes, linkdir_wcc }),
        (arb_post_op_attr(), arb_wcc_data())
            .prop_map(|(file_attributes, linkdir_wcc)| LINK3resfail { file_attributes, linkdir_wcc }),
    );
    rt_readdir_res: arb_res(
        (arb_post_op_attr(), any::<[u8; 8]>(), proptest::collection::vec(arb_entry3(), 0..6), any::<bool>())
            .prop_map(|(dir_attributes, cookieverf, entries, eof)| READDIR3resok {
                dir_attributes,
                cookieverf,
                reply: dirlist3 { entries, eof },
            }),
        arb_post_op_attr(),
    );
    rt_readdirplus_res: arb_res(
        (arb_post_op_attr(), any::<[u8; 8]>(), proptest::collection::vec(arb_entryplus3(), 0..4), any::<bool>())
            .prop_map(|(dir_attributes, cookieverf, entries, eof)| READDIRPLUS3resok {
                dir_attributes,
                cookieverf,
                reply: dirlistplus3 { entries, eof },
            }),
        arb_post_op_attr(),
    );
    rt_fsstat_res: arb_res(
        (arb_post_op_attr(), any::<[u64; 6]>(), any::<u32>()).prop_map(|(obj_attributes, n, invarsec)| FSSTAT3resok {
            obj_attributes,
            tbytes: n[0],
            fbytes: n[1],
            abytes: n[2],
            tfiles: n[3],
            ffiles: n[4],
            afiles: n[5],
            invarsec,
        }),
        arb_post_op_attr(),
    );
    rt_fsinfo_res: arb_res(
        (arb_post_op_attr(), any::<[u32; 7]>(), any::<u64>(), arb_time(), any::<u32>()).prop_map(
            |(obj_attributes, n, maxfilesize, time_delta, properties)| FSINFO3resok {
                obj_attributes,
                rtmax: n[0],
                rtpref: n[1],
                rtmult: n[2],
                wtmax: n[3],
                wtpref: n[4],
                wtmult: n[5],
                dtpref: n[6],
                maxfilesize,
                time_delta,
                properties,
            }
        ),
        arb_post_op_attr(),
    );
    rt_pathconf_res: arb_res(
        (arb_post_op_attr(), any::<u32>(), any::<u32>(), any::<[bool; 4]>()).prop_map(
            |(obj_attributes, linkmax, name_max, b)| PATHCONF3resok {
                obj_attributes,
                linkmax,
                name_max,
                no_trunc: b[0],
                chown_restricted: b[1],
                case_insensitive: b[2],
                case_preserving: b[3],
            }
        ),
        arb_post_op_attr(),
    );
    rt_commit_res: arb_res(
        (arb_wcc_data(), any::<[u8; 8]>()).prop_map(|(file_wcc, verf)| COMMIT3resok { file_wcc, verf }),
        arb_wcc_data(),
    );
}

// ---- decoding hostile input never panics ----

/// Decodes `input` as every argument and result type, discarding the outcome: the property is
/// that no decode panics, overflows or loops.
fn decode_as_everything(input: &[u8]) {
    macro_rules! each {
        ($($t:ty),* $(,)?) => {
            $(
                let _ = <$t>::from_bytes(input);
                let _ = <$t>::decode(&mut Reader::from_slice(input));
            )*
        };
    }
    each!(
        GETATTR3args,
        SETATTR3args,
        LOOKUP3args,
        ACCESS3args,
        READLINK3args,
        READ3args,
        WRITE3args,
        CREATE3args,
        MKDIR3args,
        SYMLINK3args,
        MKNOD3args,
        REMOVE3args,
        RMDIR3args,
        RENAME3args,
        LINK3args,
        READDIR3args,
        READDIRPLUS3args,
        FSSTAT3args,
        FSINFO3args,
        PATHCONF3args,
        COMMIT3args,
        GETATTR3res,
        SETATTR3res,
        LOOKUP3res,
        ACCESS3res,
        READLINK3res,
        READ3res,
        WRITE3res,
        CREATE3res,
        MKDIR3res,
        SYMLINK3res,
        MKNOD3res,
        REMOVE3res,
        RMDIR3res,
        RENAME3res,
        LINK3res,
        READDIR3res,
        READDIRPLUS3res,
        FSSTAT3res,
        FSINFO3res,
        PATHCONF3res,
        COMMIT3res,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoding_random_bytes_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_as_everything(&input);
    }

    /// Random bytes fail at the first discriminant; damaged valid messages reach deeper.
    #[test]
    fn decoding_damaged_messages_never_panics(
        msg in prop_oneof![
            arb_sattr3().prop_map(|s| SETATTR3args { object: nfs_fh3::default(), new_attributes: s, guard: None }
                .to_bytes()),
            arb_mknoddata().prop_map(|what| MKNOD3args { where_: diropargs3::default(), what }.to_bytes()),
            proptest::collection::vec(arb_entryplus3(), 0..3).prop_map(|entries| {
                READDIRPLUS3res::Ok(READDIRPLUS3resok {
                    dir_attributes: None,
                    cookieverf: [0; 8],
                    reply: dirlistplus3 { entries, eof: true },
                })
                .to_bytes()
            }),
        ],
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let mut damaged = msg.to_vec();
        if !damaged.is_empty() {
            let i = flip.0.index(damaged.len());
            damaged[i] ^= flip.1;
            damaged.truncate(cut.index(damaged.len() + 1));
        }
        decode_as_everything(&damaged);
    }
}
