//! The exports configuration: which directories are served, to which clients, with which options.
//!
//! It belongs to no program: MOUNT lists the exports and hands out their root handles, the
//! filesystem backend opens them, and every NFS call is checked against the options its client
//! gets. So it sits below the programs and `fs`, and imports only `rpc`'s credentials.
//!
//! - [`model`]: an export, its client rules, and which rule (and options) a client address gets.
//! - [`parse`]: the exports(5) file format and `--export` lines.
//! - [`hostname`]: the host names wildcard rules match, from the hosts file.

pub mod hostname;
pub mod model;
pub mod parse;

pub use model::{ClientMatch, ClientRule, ExportOptions, ExportSpec, Squash, describe_export};
pub use parse::{
    ExportsError, ResolveHost, parse_export_line, parse_export_line_with, parse_exports, parse_exports_with,
};

/// What the model's and the parser's tests share: an address, and an export from one line.
#[cfg(test)]
mod testing {
    use std::net::IpAddr;

    use super::{ExportSpec, parse_export_line};

    pub(super) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    pub(super) fn one(line: &str) -> ExportSpec {
        parse_export_line(line, "test").unwrap()
    }
}
