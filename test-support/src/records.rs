//! A raw tokio TCP connection speaking record marking, for tests that write calls byte by byte
//! (malformed headers, fragments, pipelining) and read the replies as they come.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use xdr::rpc::record_marker;

use crate::wire::{read_record_async, record};

/// How long [`RecordStream::recv`] waits for a reply before the test fails.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

pub struct RecordStream {
    /// The connection itself, for writing what no helper here writes.
    pub stream: TcpStream,
}

impl RecordStream {
    pub async fn connect(addr: SocketAddr) -> RecordStream {
        RecordStream { stream: TcpStream::connect(addr).await.unwrap() }
    }

    /// Sends `msg` as one record.
    pub async fn send(&mut self, msg: &[u8]) {
        self.stream.write_all(&record(msg)).await.unwrap();
    }

    /// Sends one record cut into `pieces` fragments, each written separately.
    pub async fn send_fragments(&mut self, msg: &[u8], pieces: usize) {
        let size = msg.len().div_ceil(pieces);
        let chunks: Vec<&[u8]> = msg.chunks(size).collect();
        for (i, c) in chunks.iter().enumerate() {
            self.stream.write_all(&record_marker(c.len(), i + 1 == chunks.len())).await.unwrap();
            self.stream.write_all(c).await.unwrap();
        }
    }

    /// The next reply record, or `None` once the server closed the connection; fails the test if
    /// neither comes within [`REPLY_WAIT`].
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        tokio::time::timeout(REPLY_WAIT, self.read_record()).await.expect("no reply in time")
    }

    /// The next record, waiting as long as it takes; `None` at end of stream.
    pub async fn read_record(&mut self) -> Option<Vec<u8>> {
        read_record_async(&mut self.stream).await.ok()
    }

    /// Sends `msg` and returns the reply.
    pub async fn call(&mut self, msg: &[u8]) -> Vec<u8> {
        self.send(msg).await;
        self.recv().await.expect("connection closed instead of replying")
    }
}
