//! Every NFSv3 argument decoder (the server's side), and every result decoder (the test client's
//! side): never panic, round trip. The first byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnfsd_fuzz::{round_trip, selector};
use xdr::nfs3::*;

fuzz_target!(|data: &[u8]| {
    let Some((which, data)) = selector(data) else { return };
    match which % 44 {
        0 => round_trip::<()>(data),
        1 => round_trip::<GETATTR3args>(data),
        2 => round_trip::<SETATTR3args>(data),
        3 => round_trip::<LOOKUP3args>(data),
        4 => round_trip::<ACCESS3args>(data),
        5 => round_trip::<READLINK3args>(data),
        6 => round_trip::<READ3args>(data),
        7 => round_trip::<WRITE3args>(data),
        8 => round_trip::<CREATE3args>(data),
        9 => round_trip::<MKDIR3args>(data),
        10 => round_trip::<SYMLINK3args>(data),
        11 => round_trip::<MKNOD3args>(data),
        12 => round_trip::<REMOVE3args>(data),
        13 => round_trip::<RMDIR3args>(data),
        14 => round_trip::<RENAME3args>(data),
        15 => round_trip::<LINK3args>(data),
        16 => round_trip::<READDIR3args>(data),
        17 => round_trip::<READDIRPLUS3args>(data),
        18 => round_trip::<FSSTAT3args>(data),
        19 => round_trip::<FSINFO3args>(data),
        20 => round_trip::<PATHCONF3args>(data),
        21 => round_trip::<COMMIT3args>(data),
        22 => round_trip::<fattr3>(data),
        23 => round_trip::<GETATTR3res>(data),
        24 => round_trip::<SETATTR3res>(data),
        25 => round_trip::<LOOKUP3res>(data),
        26 => round_trip::<ACCESS3res>(data),
        27 => round_trip::<READLINK3res>(data),
        28 => round_trip::<READ3res>(data),
        29 => round_trip::<WRITE3res>(data),
        30 => round_trip::<CREATE3res>(data),
        31 => round_trip::<MKDIR3res>(data),
        32 => round_trip::<SYMLINK3res>(data),
        33 => round_trip::<MKNOD3res>(data),
        34 => round_trip::<REMOVE3res>(data),
        35 => round_trip::<RMDIR3res>(data),
        36 => round_trip::<RENAME3res>(data),
        37 => round_trip::<LINK3res>(data),
        38 => round_trip::<READDIR3res>(data),
        39 => round_trip::<READDIRPLUS3res>(data),
        40 => round_trip::<FSSTAT3res>(data),
        41 => round_trip::<FSINFO3res>(data),
        42 => round_trip::<PATHCONF3res>(data),
        _ => round_trip::<COMMIT3res>(data),
    }
});
