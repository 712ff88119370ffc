//! The MOUNT argument decoder (`dirpath`, taken by MNT and UMNT; the other procedures take no
//! arguments) and the result decoders of every MOUNT version: never panic, round trip. The first
//! byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnfsd_fuzz::{round_trip, selector};
use xdr::mount::*;

fuzz_target!(|data: &[u8]| {
    let Some((which, data)) = selector(data) else { return };
    match which % 6 {
        0 => round_trip::<dirpath>(data),
        1 => round_trip::<mountres3>(data),
        2 => round_trip::<fhstatus>(data),
        3 => round_trip::<mountlist>(data),
        4 => round_trip::<exports>(data),
        _ => round_trip::<name>(data),
    }
});
