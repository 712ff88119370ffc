//! The exports(5) parser: a whole file and a single `--export` line never panic; every parsed
//! export has an absolute path and at least one client rule; each rule's options print (as the
//! banner shows them) to text that parses back to the same options; client matching never panics.
//! Host names resolve through a fake resolver, so no input reaches DNS.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rnfsd::exports::{ExportSpec, parse_export_line_with, parse_exports_with};

/// Names ending in `.invalid` (RFC 6761) do not resolve; any other name has one documentation
/// address derived from its length, and `dual` names an IPv6 address too.
fn fake_resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    if name.ends_with(".invalid") {
        return Err(format!("cannot resolve host {name:?}"));
    }
    let mut addrs = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, name.len() as u8))];
    if name.contains("dual") {
        addrs.push(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, name.len() as u16)));
    }
    Ok(addrs)
}

const PEERS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001)),
];

fn check(spec: &ExportSpec) {
    assert!(spec.path.is_absolute(), "export path {:?} is not absolute", spec.path);
    assert!(!spec.clients.is_empty(), "export {:?} has no client rule", spec.path);
    for rule in &spec.clients {
        let printed = format!("/x *({})", rule.options);
        let again = parse_export_line_with(&printed, "fuzz", &fake_resolve)
            .unwrap_or_else(|e| panic!("options {printed:?} do not parse back: {e}"));
        assert_eq!(again.clients[0].options, rule.options, "options changed through {printed:?}");
    }
    for peer in PEERS {
        let _ = spec.options_for_named(peer, &["host.example", "dual.example"]);
    }
    let _ = rnfsd::exports::describe_export(spec);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(specs) = parse_exports_with(&text, "fuzz", &fake_resolve) {
        specs.iter().for_each(check);
    }
    if let Ok(spec) = parse_export_line_with(&text, "fuzz", &fake_resolve) {
        check(&spec);
    }
});
