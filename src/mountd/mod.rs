//! The MOUNT program (v1 and v3): hands out export root handles, keeps the informational mount
//! list, and owns the exports configuration and client matching ([`exports`]).

pub mod exports;
pub mod hostname;
