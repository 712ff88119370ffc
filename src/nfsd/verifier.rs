//! The write verifier (RFC 1813 §3.3.7, §3.3.21): eight bytes returned by WRITE and COMMIT that
//! change whenever data acknowledged as UNSTABLE may have been lost, so clients know to send it
//! again. It is random at every start and changes after every sync or writeback error that the
//! open-file cache records.

use crate::fs::files::writeback_error_count;

/// The verifier of this server instance.
#[derive(Debug, Clone)]
pub struct WriteVerifier {
    boot: u64,
}

impl WriteVerifier {
    /// A fresh random verifier for a new server lifetime.
    pub fn new() -> std::io::Result<Self> {
        Ok(WriteVerifier { boot: u64::from_be_bytes(crate::fs::handle::random_bytes::<8>()?) })
    }

    /// The verifier to send now.
    pub fn current(&self) -> [u8; 8] {
        // Each recorded writeback error moves the value; the odd multiplier keeps distinct counts
        // distinct.
        self.boot.wrapping_add(writeback_error_count().wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes()
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
        crate::fs::files::note_writeback_error(&std::io::Error::from_raw_os_error(libc::EIO));
        assert_ne!(before, a.current());
    }
}
