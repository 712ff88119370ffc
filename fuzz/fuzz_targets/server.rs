//! The whole server without sockets: one record to the dispatcher (NFS, MOUNT and the portmapper
//! over two scratch exports, see `rnfsd_fuzz::server`). The first input byte picks the caller
//! (`PEERS`, low two bits) and the transport (UDP when bit 2 is set); the rest is the record, with
//! handle placeholders replaced by real handles. Properties: nothing panics, a caught panic
//! included (libFuzzer's panic hook aborts first); a CALL gets a well-formed reply with its xid,
//! whose results decode as the procedure's result type; anything else gets no reply.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use rnfsd::rpc::Transport;
use rnfsd_fuzz::server::{Harness, PEERS, check_reply};

static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&who, record)) = data.split_first() else { return };
    let peer = PEERS[usize::from(who & 3)];
    let transport = if who & 4 != 0 { Transport::Udp } else { Transport::Tcp };
    let mut harness = HARNESS.get_or_init(|| Mutex::new(Harness::new())).lock().unwrap();
    let (sent, reply) = harness.handle(record, peer, transport);
    check_reply(&sent, reply.as_ref());
});
