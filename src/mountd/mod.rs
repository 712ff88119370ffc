//! The MOUNT program (v1 and v3): hands out export root handles, keeps the informational mount
//! list, and owns the exports configuration and client matching ([`exports`]).

pub mod exports;
pub mod hostname;
pub mod service;

pub use exports::{
    ClientMatch, ClientRule, ExportOptions, ExportSpec, ExportsError, Squash, parse_export_line,
    parse_exports,
};
pub use service::{MountBackend, MountEntry, MountService, MountStat};
