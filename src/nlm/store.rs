//! What locking keeps in the state directory across restarts: the NSM state number
//! (`nsm-state`: odd while the server runs, two more at every start, so clients that see it change
//! know the server restarted) and the clients that held locks (`nlm-clients`, one line per client,
//! written before the client's first lock is granted), which are notified after a restart and
//! given the grace period to reclaim. Locks themselves are not kept: their clients reclaim them.
//! Both files are replaced atomically.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::fs::state::write_atomically;

const STATE_FILE: &str = "nsm-state";
const CLIENTS_FILE: &str = "nlm-clients";

/// A client of the lock manager: the address it calls from and the name it gives
/// (`caller_name`), plus the local address it reached, which callbacks are sent from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientRecord {
    pub addr: IpAddr,
    pub caller_name: Bytes,
    pub local: IpAddr,
}

/// Reads the previous NSM state number, advances it to the next odd number and writes it back.
pub fn advance_state(dir: &Path) -> io::Result<i32> {
    let previous = match std::fs::read_to_string(dir.join(STATE_FILE)) {
        Ok(text) => text.trim().parse::<i32>().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", dir.join(STATE_FILE).display()))
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => -1,
        Err(e) => return Err(e),
    };
    // Odd means up; wrap past i32::MAX to 1 rather than to a negative number.
    let next = if previous <= 0 || previous >= i32::MAX - 2 { 1 } else { (previous | 1) + 2 };
    write_atomically(dir, STATE_FILE, format!("{next}\n").as_bytes(), 0o600)?;
    Ok(next)
}

/// The recorded clients, as the file has them.
pub struct ClientStore {
    dir: PathBuf,
}

/// A caller name as the file shows it: printable ASCII as is, anything else (spaces, line
/// breaks, backslashes: the client chose these bytes) as `\xNN`, so a name is one field.
pub(super) fn escape_name(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

pub(super) fn unescape_name(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = text.get(i + 2..i + 4).filter(|_| bytes.get(i + 1) == Some(&b'x'))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

impl ClientStore {
    pub fn new(dir: &Path) -> ClientStore {
        ClientStore { dir: dir.to_path_buf() }
    }

    /// The clients recorded by the previous run. A damaged line is skipped with a warning: it can
    /// only cost that client its notice.
    pub fn load(&self) -> io::Result<Vec<ClientRecord>> {
        let path = self.dir.join(CLIENTS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let parts: Vec<&str> = line.split(' ').collect();
            let parsed = match parts.as_slice() {
                ["client", addr, local, name] => (|| {
                    Some(ClientRecord {
                        addr: addr.parse().ok()?,
                        local: local.parse().ok()?,
                        caller_name: Bytes::from(unescape_name(name)?),
                    })
                })(),
                _ => None,
            };
            match parsed {
                Some(c) => out.push(c),
                None => tracing::warn!("{}:{}: not a client record; skipped", path.display(), n + 1),
            }
        }
        Ok(out)
    }

    /// Replaces the file with `clients`.
    pub fn save<'a>(&self, clients: impl Iterator<Item = &'a ClientRecord>) -> io::Result<()> {
        let mut text = String::new();
        for c in clients {
            text.push_str(&format!("client {} {} {}\n", c.addr, c.local, escape_name(&c.caller_name)));
        }
        write_atomically(&self.dir, CLIENTS_FILE, text.as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_odd_and_rises_by_two() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(advance_state(dir.path()).unwrap(), 1);
        assert_eq!(advance_state(dir.path()).unwrap(), 3);
        std::fs::write(dir.path().join(STATE_FILE), "8\n").unwrap();
        assert_eq!(advance_state(dir.path()).unwrap(), 11);
        std::fs::write(dir.path().join(STATE_FILE), "junk").unwrap();
        assert!(advance_state(dir.path()).is_err(), "a damaged state is not silently reset");
    }

    #[test]
    fn clients_round_trip_and_damaged_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = ClientStore::new(dir.path());
        assert!(store.load().unwrap().is_empty());
        let c = ClientRecord {
            addr: "10.0.2.15".parse().unwrap(),
            caller_name: Bytes::from_static(b"guest a\n"),
            local: "10.0.2.100".parse().unwrap(),
        };
        store.save([c.clone()].iter()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CLIENTS_FILE)).unwrap(),
            "client 10.0.2.15 10.0.2.100 guest\\x20a\\x0a\n"
        );
        let mut text = std::fs::read_to_string(dir.path().join(CLIENTS_FILE)).unwrap();
        text.push_str("client nonsense\n");
        std::fs::write(dir.path().join(CLIENTS_FILE), text).unwrap();
        assert_eq!(store.load().unwrap(), vec![c]);
    }
}
