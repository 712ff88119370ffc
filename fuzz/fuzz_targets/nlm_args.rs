//! The NLM v4 and NSM v1 decoders (every argument and result a lock client or a peer's status
//! monitor sends): never panic, round trip. The first byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnfsd_fuzz::{round_trip, selector};
use xdr::nlm::*;
use xdr::nsm::*;

fuzz_target!(|data: &[u8]| {
    let Some((which, data)) = selector(data) else { return };
    match which % 14 {
        0 => round_trip::<nlm4_testargs>(data),
        1 => round_trip::<nlm4_testres>(data),
        2 => round_trip::<nlm4_lockargs>(data),
        3 => round_trip::<nlm4_cancargs>(data),
        4 => round_trip::<nlm4_unlockargs>(data),
        5 => round_trip::<nlm4_res>(data),
        6 => round_trip::<nlm4_shareargs>(data),
        7 => round_trip::<nlm4_shareres>(data),
        8 => round_trip::<nlm4_notify>(data),
        9 => round_trip::<sm_name>(data),
        10 => round_trip::<mon>(data),
        11 => round_trip::<mon_id>(data),
        12 => round_trip::<stat_chge>(data),
        _ => round_trip::<sm_stat_res>(data),
    }
});
