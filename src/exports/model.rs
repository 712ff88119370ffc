//! What an export is, independent of how it was written down: the exported directory, its client
//! rules and the options each rule grants, and which rule a client address falls under
//! (exports(5) precedence). [`describe_export`] shows one as `exportfs -v` does.

use std::fmt;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use xdr::rpc::AuthFlavor;

use super::hostname;
use crate::rpc::Cred;

/// Which callers are mapped to the anonymous uid/gid (exports(5) root_squash, all_squash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Squash {
    /// no_root_squash: every uid is taken as sent.
    None,
    /// root_squash (the default): uid 0 and gid 0 become anonuid/anongid.
    Root,
    /// all_squash: every uid and gid become anonuid/anongid.
    All,
}

/// The options one client gets for one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// `ro` (default) / `rw`.
    pub read_only: bool,
    pub squash: Squash,
    /// `anonuid=` / `anongid=`, default 65534.
    pub anon_uid: u32,
    pub anon_gid: u32,
    /// `secure` (default): requests must come from a source port below 1024.
    pub secure: bool,
    /// `sync` (default) / `async`: with async, stable WRITEs and COMMIT do not wait for the disk.
    pub sync: bool,
    /// `nordirplus`: READDIRPLUS answers NFS3ERR_NOTSUPP.
    pub no_readdirplus: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            read_only: true,
            squash: Squash::Root,
            anon_uid: 65534,
            anon_gid: 65534,
            secure: true,
            sync: true,
            no_readdirplus: false,
        }
    }
}

impl ExportOptions {
    /// The uid, gid and supplementary groups a call runs with under these options.
    ///
    /// AUTH_NONE callers are anonymous. `all_squash` maps everyone to anonuid/anongid with no
    /// supplementary groups. `root_squash` maps uid 0 to anonuid and gid 0 to anongid, in the
    /// supplementary groups too (as knfsd does: group 0 often grants as much as uid 0).
    pub fn effective_ids(&self, cred: &Cred) -> (u32, u32, Vec<u32>) {
        if cred.flavor != AuthFlavor::Sys || self.squash == Squash::All {
            return (self.anon_uid, self.anon_gid, Vec::new());
        }
        match self.squash {
            Squash::None => (cred.uid, cred.gid, cred.gids.clone()),
            _ => {
                let uid = if cred.uid == 0 { self.anon_uid } else { cred.uid };
                let gid = if cred.gid == 0 { self.anon_gid } else { cred.gid };
                let gids = cred.gids.iter().map(|&g| if g == 0 { self.anon_gid } else { g }).collect();
                (uid, gid, gids)
            }
        }
    }
}

/// The effective options in exports(5) words, e.g. `rw,root_squash,secure,sync`, for the banner.
impl fmt::Display for ExportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let squash = match self.squash {
            Squash::None => "no_root_squash",
            Squash::Root => "root_squash",
            Squash::All => "all_squash",
        };
        write!(
            f,
            "{},{},{},{}",
            if self.read_only { "ro" } else { "rw" },
            squash,
            if self.secure { "secure" } else { "insecure" },
            if self.sync { "sync" } else { "async" }
        )?;
        let default = ExportOptions::default();
        if self.anon_uid != default.anon_uid {
            write!(f, ",anonuid={}", self.anon_uid)?;
        }
        if self.anon_gid != default.anon_gid {
            write!(f, ",anongid={}", self.anon_gid)?;
        }
        if self.no_readdirplus {
            f.write_str(",nordirplus")?;
        }
        Ok(())
    }
}

/// Who a client rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMatch {
    /// `*` or an empty client (everyone).
    Any,
    /// A single address (IPv4 or IPv6), or a host name resolved when the exports were loaded.
    Addrs(Vec<IpAddr>),
    /// `addr/len` or `addr/dotted-mask`.
    Network { addr: IpAddr, prefix: u8 },
    /// A host name pattern with `*`, `?` (matched against the reverse lookup of the peer).
    Wildcard(String),
}

impl ClientMatch {
    /// exports(5) precedence: single hosts, then networks, then wildcards, then everyone.
    fn rank(&self) -> u8 {
        match self {
            ClientMatch::Addrs(_) => 0,
            ClientMatch::Network { .. } => 1,
            ClientMatch::Wildcard(_) => 2,
            ClientMatch::Any => 3,
        }
    }

    /// Whether `peer` (already canonical: IPv4-mapped IPv6 turned into IPv4) matches. `names` are
    /// the peer's host names, consulted only by wildcard rules.
    fn matches(&self, peer: IpAddr, names: &mut dyn FnMut() -> Vec<String>) -> bool {
        match self {
            ClientMatch::Any => true,
            ClientMatch::Addrs(addrs) => addrs.contains(&peer),
            ClientMatch::Network { addr, prefix } => in_network(peer, *addr, *prefix),
            ClientMatch::Wildcard(pattern) => names().iter().any(|n| hostname::wildcard_match(pattern, n)),
        }
    }
}

fn in_network(peer: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (peer, net) {
        (IpAddr::V4(p), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(p) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(p) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// One `client(options)` item of an exports line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRule {
    /// The client as written, for the banner and showmount.
    pub text: String,
    pub matcher: ClientMatch,
    pub options: ExportOptions,
}

/// One exported directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// The absolute, canonical path on the host.
    pub path: PathBuf,
    /// `fsid=` when given; otherwise the server assigns one and persists it in the state dir.
    pub fsid: Option<u64>,
    pub clients: Vec<ClientRule>,
    /// Where it was defined (`file:line`, or `command line`), for error messages.
    pub origin: String,
}

impl ExportSpec {
    /// The export `rnfsd serve PATH` creates: everyone gets `rw,insecure,root_squash,sync`.
    ///
    /// - `rw`: a quick share is for reading and writing.
    /// - `insecure`: clients may use source ports >= 1024, so non-root clients (macOS Finder,
    ///   user-space clients) can mount.
    /// - `root_squash`: a remote root still does not act as root here.
    /// - `sync`: stable writes and COMMIT wait for the disk, so acknowledged data is durable.
    ///
    /// The path is taken as given; the server canonicalizes it when it opens the export.
    pub fn shorthand(path: impl Into<PathBuf>) -> ExportSpec {
        let options = ExportOptions { read_only: false, secure: false, ..ExportOptions::default() };
        ExportSpec {
            path: path.into(),
            fsid: None,
            clients: vec![ClientRule { text: "*".to_string(), matcher: ClientMatch::Any, options }],
            origin: "command line".to_string(),
        }
    }

    /// The options `peer` gets, or `None` when no rule admits it. Precedence follows exports(5):
    /// single hosts, then networks, then wildcard names, then `*`; within a kind the first rule on
    /// the line wins. IPv4-mapped IPv6 peers match IPv4 rules. Wildcard rules look the peer up in
    /// the hosts file (see [`hostname`]).
    pub fn options_for(&self, peer: IpAddr) -> Option<&ExportOptions> {
        self.options_with_names(peer, &mut || hostname::names_for(peer))
    }

    /// [`options_for`](Self::options_for) with the peer's host names supplied by the caller.
    pub fn options_for_named(&self, peer: IpAddr, names: &[&str]) -> Option<&ExportOptions> {
        self.options_with_names(peer, &mut || names.iter().map(|n| n.to_ascii_lowercase()).collect())
    }

    fn options_with_names(
        &self,
        peer: IpAddr,
        names: &mut dyn FnMut() -> Vec<String>,
    ) -> Option<&ExportOptions> {
        let peer = peer.to_canonical();
        let mut cached: Option<Vec<String>> = None;
        let mut lookup = || cached.get_or_insert_with(&mut *names).clone();
        (0..4).find_map(|rank| {
            self.clients
                .iter()
                .filter(|c| c.matcher.rank() == rank)
                .find(|c| c.matcher.matches(peer, &mut lookup))
                .map(|c| &c.options)
        })
    }

    /// The client texts, in file order (the `ex_groups` of a MOUNT EXPORT reply).
    pub fn client_texts(&self) -> Vec<&str> {
        self.clients.iter().map(|c| c.text.as_str()).collect()
    }
}

/// One line per export: path, `fsid=` if set, and each client rule with its effective options
/// (what `exportfs -v` shows).
pub fn describe_export(spec: &ExportSpec) -> String {
    let mut s = spec.path.display().to_string();
    if let Some(fsid) = spec.fsid {
        let _ = write!(s, "  fsid={fsid}");
    }
    for rule in &spec.clients {
        let _ = write!(s, "  {}({})", rule.text, rule.options);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::parse_export_line;
    use crate::exports::testing::{ip, one};

    #[test]
    fn matching_precedence() {
        let s = one(
            "/a *(ro) *.lab(rw,insecure) 10.0.0.0/8(rw,async) 10.1.0.0/16(rw,nordirplus) 10.1.2.3(rw,all_squash)",
        );
        assert_eq!(s.options_for(ip("10.1.2.3")).unwrap().squash, Squash::All);
        // Two networks match: the first on the line wins, not the longest prefix.
        assert!(!s.options_for(ip("10.1.9.9")).unwrap().sync);
        assert!(!s.options_for(ip("::ffff:10.1.2.3")).unwrap().read_only);
        assert_eq!(s.options_for(ip("::ffff:10.1.2.3")).unwrap().squash, Squash::All);
        assert!(!s.options_for_named(ip("192.0.2.1"), &["box.LAB"]).unwrap().secure);
        assert!(s.options_for_named(ip("192.0.2.1"), &["box.other"]).unwrap().read_only);
        assert!(s.options_for(ip("2001:db8::1")).unwrap().read_only);

        let restricted = one("/a 10.0.0.0/8(rw) 2001:db8::/32(rw)");
        assert!(restricted.options_for(ip("10.200.0.1")).is_some());
        assert!(restricted.options_for(ip("2001:db8:1::5")).is_some());
        assert!(restricted.options_for(ip("11.0.0.1")).is_none());
        assert!(restricted.options_for(ip("2001:db9::1")).is_none());
        let zero = one("/a 0.0.0.0/0(rw)");
        assert!(zero.options_for(ip("203.0.113.9")).is_some());
        assert!(zero.options_for(ip("::2")).is_none());
    }

    #[test]
    fn squashing() {
        let o = |s: &str| one(&format!("/a *({s})")).clients[0].options.clone();
        let root = Cred::sys(0, 0, vec![0, 5]);
        let user = Cred::sys(1000, 100, vec![0, 10]);
        let rs = o("anonuid=99,anongid=98");
        assert_eq!(rs.effective_ids(&root), (99, 98, vec![98, 5]));
        assert_eq!(rs.effective_ids(&user), (1000, 100, vec![98, 10]));
        assert_eq!(rs.effective_ids(&Cred::none()), (99, 98, vec![]));
        let none = o("no_root_squash");
        assert_eq!(none.effective_ids(&root), (0, 0, vec![0, 5]));
        assert_eq!(none.effective_ids(&Cred::none()), (65534, 65534, vec![]));
        let all = o("all_squash");
        assert_eq!(all.effective_ids(&user), (65534, 65534, vec![]));
    }

    #[test]
    fn shorthand_defaults() {
        let s = ExportSpec::shorthand("/srv");
        assert_eq!(s.clients[0].options.to_string(), "rw,root_squash,insecure,sync");
        assert_eq!(s.options_for(ip("198.51.100.1")), Some(&s.clients[0].options));
        assert_eq!(s.origin, "command line");
    }

    #[test]
    fn describe_export_shows_fsid_and_effective_options() {
        let spec =
            parse_export_line("/srv/a 10.0.0.0/8(rw,no_root_squash,fsid=7) *(ro,insecure)", "t").unwrap();
        let line = describe_export(&spec);
        assert!(line.starts_with("/srv/a  fsid=7"), "{line}");
        assert!(line.contains("10.0.0.0/8(rw,no_root_squash,secure,sync)"), "{line}");
        assert!(line.contains("*(ro,root_squash,insecure,sync)"), "{line}");
    }
}
