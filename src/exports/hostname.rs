//! Reverse name lookup for exports(5) wildcard clients (`*.example.com`), from the hosts file.
//!
//! The standard library has no reverse resolver, and `getnameinfo` would need `unsafe`, which the
//! crate confines to `fs::sys`. So wildcard rules match the names `/etc/hosts` gives an address
//! (canonical name and aliases), not DNS PTR records, as the README's exports section tells
//! operators. Answers are cached briefly, since the lookup can run for every request of a client
//! that only a wildcard rule admits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const HOSTS_FILE: &str = "/etc/hosts";
const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 4096;

type Cache = HashMap<IpAddr, (Instant, Vec<String>)>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The lower-cased names the hosts file lists for `ip` (IPv4-mapped addresses are looked up as
/// IPv4). Empty when none, or when the file cannot be read.
pub fn names_for(ip: IpAddr) -> Vec<String> {
    let ip = ip.to_canonical();
    let now = Instant::now();
    {
        let guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, names)) =
            guard.as_ref().and_then(|c| c.get(&ip)).filter(|(at, _)| now.duration_since(*at) < CACHE_TTL)
        {
            return names.clone();
        }
    }
    let names = std::fs::read_to_string(HOSTS_FILE).map(|t| names_in_hosts(&t, ip)).unwrap_or_default();
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    if cache.len() >= CACHE_MAX {
        // Addresses cycled by one host should not cost every other client its entry: expired
        // entries go first, and the whole cache only when none has expired.
        cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
    }
    cache.insert(ip, (now, names.clone()));
    names
}

/// The names hosts(5) text gives `ip`: every name on every line whose address is `ip`.
pub fn names_in_hosts(text: &str, ip: IpAddr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else { continue };
        if addr.to_canonical() != ip {
            continue;
        }
        for name in fields {
            let name = name.to_ascii_lowercase();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// exports(5) wildcard matching: `*` matches any run of characters and `?` one character, neither
/// crossing a `.` (so `*.example.com` does not match `a.b.example.com`); case-insensitive.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    // One pass over the pattern, keeping the set of name prefixes it can have matched so far:
    // O(pattern × name) time, where trying every split of every `*` was exponential in the stars.
    let name = name.as_bytes();
    let mut reached = vec![false; name.len() + 1];
    reached[0] = true;
    for &p in pattern.as_bytes() {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' => {
                // Prefix i is reached if some reached prefix j <= i leaves a dot-free run j..i.
                let mut in_run = false;
                for i in 0..=name.len() {
                    in_run |= reached[i];
                    next[i] = in_run;
                    if name.get(i) == Some(&b'.') {
                        in_run = false;
                    }
                }
            }
            _ => {
                for i in 0..name.len() {
                    let fits = if p == b'?' { name[i] != b'.' } else { p.eq_ignore_ascii_case(&name[i]) };
                    next[i + 1] = reached[i] && fits;
                }
            }
        }
        reached = next;
    }
    reached[name.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_do_not_cross_dots() {
        assert!(wildcard_match("*.example.com", "a.example.com"));
        assert!(wildcard_match("*.Example.COM", "host-1.example.com"));
        assert!(!wildcard_match("*.example.com", "a.b.example.com"));
        assert!(!wildcard_match("*.example.com", "example.com"));
        assert!(wildcard_match("node?.lab", "node7.lab"));
        assert!(!wildcard_match("node?.lab", "node10.lab"));
        assert!(!wildcard_match("node?.lab", "node..lab"));
        assert!(wildcard_match("*", "localhost"));
        assert!(!wildcard_match("*", "a.b"));
        assert!(wildcard_match("a*b*c", "aXXbYc"));
    }

    /// Found by the exports_parse fuzz target: matching backtracked over every split of every
    /// `*`, so a pattern with many stars took exponential time (a 100-star pattern ran for over
    /// 10 s), and it runs for each request of a client only a wildcard rule admits.
    #[test]
    fn many_stars_match_in_polynomial_time() {
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pattern = format!("{}s", "*".repeat(100));
            let name = "a".repeat(60);
            done_tx
                .send((wildcard_match(&pattern, &name), wildcard_match(&pattern, &format!("{name}s"))))
                .unwrap();
        });
        let outcome = done.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(outcome, Ok((false, true)), "wildcard_match did not finish within 10 s");
    }

    #[test]
    fn hosts_file_lookup() {
        let text = "127.0.0.1 localhost\n# 10.0.0.5 commented.example.com\n10.0.0.5 Build.Example.com build # x\n\
                    ::1 ip6-localhost\n10.0.0.5 alias.example.com\nbogus line\n";
        assert_eq!(
            names_in_hosts(text, "10.0.0.5".parse().unwrap()),
            ["build.example.com", "build", "alias.example.com"]
        );
        assert_eq!(
            names_in_hosts(text, "::ffff:127.0.0.1".parse::<IpAddr>().unwrap().to_canonical()),
            ["localhost"]
        );
        assert!(names_in_hosts(text, "10.9.9.9".parse().unwrap()).is_empty());
    }
}
