//! The portmapper argument decoders (PMAP v2 `mapping`, RPCBIND v3/v4 `rpcb`), the result
//! decoders of the portmapper client, and the universal-address parser: never panic, round trip.
//! The first byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnfsd_fuzz::{round_trip, selector};
use xdr::portmap::*;

fuzz_target!(|data: &[u8]| {
    let Some((which, data)) = selector(data) else { return };
    match which % 8 {
        0 => round_trip::<mapping>(data),
        1 => round_trip::<rpcb>(data),
        2 => round_trip::<pmaplist>(data),
        3 => round_trip::<rpcblist>(data),
        4 => round_trip::<rpcb_entry_list>(data),
        5 => round_trip::<rpcb_stat_byvers>(data),
        6 => round_trip::<uaddr>(data),
        _ => {
            // A universal address (RFC 1833 §2.2.1) that parses prints back to one that parses to
            // the same socket address.
            let Ok(text) = std::str::from_utf8(data) else { return };
            if let Some(addr) = from_uaddr(text) {
                let printed = to_uaddr(addr);
                assert_eq!(from_uaddr(&printed), Some(addr), "{text:?} -> {addr} -> {printed:?}");
            }
        }
    }
});
