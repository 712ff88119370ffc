//! The MOUNT program (v1 and v3): hands out export root handles and keeps the informational mount
//! list. The exports it answers from are [`crate::exports`]; [`status`] maps host errors to the
//! MOUNT status codes.

pub mod service;
pub mod status;

pub use service::{MountBackend, MountEntry, MountService, MountStat};
pub use status::mount_status;
