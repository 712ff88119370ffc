//! The write verifier (RFC 1813 §3.3.7, §3.3.21): eight bytes returned by WRITE and COMMIT that
//! change whenever data acknowledged as UNSTABLE may have been lost, so clients know to send it
//! again. It is random at every start and changes after every sync or writeback error, which the
//! open-file cache and COMMIT report to it.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fs::files::WritebackErrors;

/// The verifier of this server instance.
#[derive(Debug)]
pub struct WriteVerifier {
    boot: u64,
    /// Sync and writeback failures seen since the start.
    writeback_errors: AtomicU64,
}

impl WriteVerifier {
    /// A fresh random verifier for a new server lifetime.
    pub fn new() -> io::Result<Self> {
        Ok(WriteVerifier {
            boot: u64::from_be_bytes(crate::fs::handle::random_bytes::<8>()?),
            writeback_errors: AtomicU64::new(0),
        })
    }

    /// The verifier to send now.
    pub fn current(&self) -> [u8; 8] {
        // Each recorded writeback error moves the value; the odd multiplier keeps distinct counts
        // distinct.
        let errors = self.writeback_errors.load(Ordering::SeqCst);
        self.boot.wrapping_add(errors.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes()
    }
}

impl WritebackErrors for WriteVerifier {
    /// Data acknowledged as UNSTABLE may be lost: the next reply carries a new verifier.
    fn writeback_failed(&self, err: &io::Error) {
        self.writeback_errors.fetch_add(1, Ordering::SeqCst);
        tracing::warn!("writeback error, rotating the write verifier: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_on_writeback_error_and_differs_per_start() {
        let a = WriteVerifier::new().unwrap();
        let b = WriteVerifier::new().unwrap();
        assert_ne!(a.current(), b.current());
        let before = a.current();
        assert_eq!(before, a.current());
        a.writeback_failed(&io::Error::from_raw_os_error(libc::EIO));
        assert_ne!(before, a.current());
    }
}
