//! placeholder, filled in by the nfs3 codec work.
