//! placeholder, filled in by the mount codec work.
