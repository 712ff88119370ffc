//! placeholder, filled in by the portmap codec work.
