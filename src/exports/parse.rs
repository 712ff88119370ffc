//! Reading exports: the exports(5) file format and `--export` lines, into [`ExportSpec`]s.
//!
//! Syntax accepted, one export per logical line:
//!
//! ```text
//! # comment
//! /srv/data   -async  10.0.0.0/24(rw,no_root_squash) host.example.com(ro) *(ro)
//! "/srv/with space"  2001:db8::/32(rw) \
//!                    *.lab.example.com(rw,insecure)
//! ```
//!
//! - `#` starts a comment; a `\` at the end of a line continues it on the next one.
//! - The path comes first, absolute, optionally double-quoted; `\ooo` octal escapes (`\040` for a
//!   space) are decoded as exportfs prints them.
//! - `-opts` right after the path sets defaults for every client on the line.
//! - A client is `*` (or nothing: everyone), an IPv4 or IPv6 address, `addr/len` or
//!   `addr/dotted-mask`, a wildcard name with `*`/`?`, or a host name resolved when the file is
//!   loaded. Its options follow with no space: `host(rw)`. With a space, `host (rw)` means
//!   "`host` with the defaults, and everyone read-write", exactly as exports(5) warns; we follow
//!   that meaning and log a warning.
//! - A path with no client is exported to everyone with the defaults (and a warning), as exportfs
//!   does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};

use super::model::{ClientMatch, ClientRule, ExportOptions, ExportSpec, Squash};

/// An exports file or `--export` flag that cannot be used. Displays as one line,
/// `FILE:LINE: message` (or `ORIGIN: message` without a line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ExportsError {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Parses a whole exports(5) file. `origin_file` names it in errors and in each spec's `origin`.
/// Host names are resolved now; an unresolvable one is an error. A path exported twice is an
/// error.
pub fn parse_exports(text: &str, origin_file: &str) -> Result<Vec<ExportSpec>, ExportsError> {
    parse_exports_with(text, origin_file, &resolve_host)
}

/// Resolves a client host name to its addresses; [`parse_exports_with`] takes one so that
/// callers which must not reach DNS (the fuzz targets) supply their own.
pub type ResolveHost<'a> = &'a dyn Fn(&str) -> Result<Vec<IpAddr>, String>;

/// [`parse_exports`] with host names resolved by `resolve` instead of the system resolver.
pub fn parse_exports_with(
    text: &str,
    origin_file: &str,
    resolve: ResolveHost,
) -> Result<Vec<ExportSpec>, ExportsError> {
    let mut out: Vec<ExportSpec> = Vec::new();
    for (line_no, logical) in logical_lines(text) {
        let err =
            |message: String| ExportsError { origin: origin_file.to_string(), line: Some(line_no), message };
        let origin = format!("{origin_file}:{line_no}");
        let Some(spec) = parse_logical(&logical, &origin, resolve).map_err(err)? else { continue };
        if let Some(prev) = out.iter().find(|s| s.path == spec.path) {
            return Err(err(format!("{} is already exported at {}", spec.path.display(), prev.origin)));
        }
        out.push(spec);
    }
    Ok(out)
}

/// Parses one export given on the command line (`--export 'PATH CLIENT(OPTS) ...'`), same syntax
/// as a line of the file. `origin` names it in errors (e.g. "--export").
pub fn parse_export_line(line: &str, origin: &str) -> Result<ExportSpec, ExportsError> {
    parse_export_line_with(line, origin, &resolve_host)
}

/// [`parse_export_line`] with host names resolved by `resolve` instead of the system resolver.
pub fn parse_export_line_with(
    line: &str,
    origin: &str,
    resolve: ResolveHost,
) -> Result<ExportSpec, ExportsError> {
    let err = |message: String| ExportsError { origin: origin.to_string(), line: None, message };
    let joined: String = logical_lines(line).into_iter().map(|(_, l)| l).collect::<Vec<_>>().join(" ");
    parse_logical(&joined, origin, resolve).map_err(err)?.ok_or_else(|| err("empty export".to_string()))
}

/// Joins `\`-continued lines and drops comments. Each logical line carries the number of the
/// physical line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let (content, continued) = match line.trim_end().strip_suffix('\\') {
            Some(c) => (c, true),
            None => (line, false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push_str(content);
        entry.1.push(' ');
        if !continued {
            out.extend(current.take());
        }
    }
    out.extend(current.take());
    out
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Splits a logical line into words. Double quotes group (and are removed), and a parenthesized
/// option list stays attached to the word it follows even if it contains spaces.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut tok = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(q) => tok.push(q),
                        None => return Err("unterminated double quote".to_string()),
                    }
                },
                '(' => {
                    tok.push('(');
                    loop {
                        match chars.next() {
                            Some(')') => break,
                            Some(q) if !q.is_whitespace() => tok.push(q),
                            Some(_) => {}
                            None => return Err(format!("missing ')' in {tok:?}")),
                        }
                    }
                    tok.push(')');
                    if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                        return Err(format!("unexpected text after {tok:?}"));
                    }
                }
                _ => tok.push(c),
            }
        }
        tokens.push(tok);
    }
}

/// Decodes `\ooo` octal escapes, as exportfs writes unusual bytes in paths.
fn unescape_path(p: &str) -> Result<String, String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let digits = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            let Some(d) = digits else { return Err(format!("bad escape in path {p:?} (expected \\ooo)")) };
            let v = (u32::from(d[0] - b'0') << 6) | (u32::from(d[1] - b'0') << 3) | u32::from(d[2] - b'0');
            out.push(u8::try_from(v).map_err(|_| format!("bad escape in path {p:?}"))?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("path {p:?} is not UTF-8 after unescaping"))
}

/// The parse state of one option list: the two squash flags are kept apart, as exportfs does, so
/// `no_root_squash,all_squash,no_all_squash` ends as no_root_squash.
#[derive(Debug, Clone)]
struct OptionState {
    options: ExportOptions,
    root_squash: bool,
    all_squash: bool,
    fsid: Option<u64>,
}

impl OptionState {
    fn new() -> Self {
        OptionState { options: ExportOptions::default(), root_squash: true, all_squash: false, fsid: None }
    }

    fn finish(mut self) -> (ExportOptions, Option<u64>) {
        self.options.squash = match (self.all_squash, self.root_squash) {
            (true, _) => Squash::All,
            (false, true) => Squash::Root,
            (false, false) => Squash::None,
        };
        (self.options, self.fsid)
    }

    fn apply(&mut self, list: &str, origin: &str) -> Result<(), String> {
        for opt in list.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            let o = &mut self.options;
            match (key, value) {
                ("rw", None) => o.read_only = false,
                ("ro", None) => o.read_only = true,
                ("root_squash", None) => self.root_squash = true,
                ("no_root_squash", None) => self.root_squash = false,
                ("all_squash", None) => self.all_squash = true,
                ("no_all_squash", None) => self.all_squash = false,
                ("anonuid", Some(v)) => o.anon_uid = parse_id(v).ok_or(format!("bad anonuid {v:?}"))?,
                ("anongid", Some(v)) => o.anon_gid = parse_id(v).ok_or(format!("bad anongid {v:?}"))?,
                ("secure", None) => o.secure = true,
                ("insecure", None) => o.secure = false,
                ("sync", None) => o.sync = true,
                ("async", None) => o.sync = false,
                ("nordirplus", None) => o.no_readdirplus = true,
                ("fsid", Some(v)) => self.fsid = Some(parse_fsid(v)?),
                ("sec", Some("sys")) => {
                    tracing::warn!("{origin}: option sec=sys is the only flavor served; ignored")
                }
                ("sec", Some(v)) => return Err(format!("sec={v} is not supported (only sec=sys)")),
                (
                    "wdelay" | "no_wdelay" | "subtree_check" | "no_subtree_check" | "hide" | "nohide"
                    | "crossmnt" | "no_auth_nlm" | "insecure_locks",
                    None,
                )
                | ("mp" | "mountpoint", _) => {
                    tracing::warn!("{origin}: option {opt} has no effect in rnfsd; ignored")
                }
                _ => return Err(format!("unknown export option {opt:?}")),
            }
        }
        Ok(())
    }
}

/// A uid or gid in decimal.
fn parse_id(v: &str) -> Option<u32> {
    v.parse().ok()
}

/// `fsid=N`, `fsid=root` (0) or `fsid=UUID` (32 hex digits, dashes allowed), a UUID being folded
/// to 64 bits by XOR of its halves: stable across versions and hosts.
fn parse_fsid(v: &str) -> Result<u64, String> {
    if v == "root" {
        return Ok(0);
    }
    if let Ok(n) = v.parse::<u64>() {
        return Ok(n);
    }
    let hex: String = v.chars().filter(|c| *c != '-').collect();
    match u128::from_str_radix(&hex, 16) {
        Ok(n) if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok((n >> 64) as u64 ^ n as u64)
        }
        _ => Err(format!("bad fsid {v:?} (expected a number, \"root\" or a UUID)")),
    }
}

fn parse_client(text: &str, resolve: ResolveHost) -> Result<ClientMatch, String> {
    if text.is_empty() || text == "*" {
        return Ok(ClientMatch::Any);
    }
    if text.starts_with('@') {
        return Err(format!("netgroup client {text:?} is not supported"));
    }
    if text.starts_with("gss/") {
        return Err(format!("client {text:?}: only sec=sys is supported"));
    }
    if let Some((addr, mask)) = text.split_once('/') {
        let addr = parse_ip(addr).ok_or(format!("bad network address in {text:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match mask.parse::<u8>() {
            Ok(p) if p <= max => p,
            Ok(_) => return Err(format!("prefix length in {text:?} exceeds {max}")),
            Err(_) => match (addr, mask.parse::<Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(m)) => {
                    let bits = u32::from(m);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(format!("netmask in {text:?} is not contiguous"));
                    }
                    bits.leading_ones() as u8
                }
                _ => return Err(format!("bad netmask in {text:?}")),
            },
        };
        return Ok(ClientMatch::Network { addr, prefix });
    }
    if let Some(ip) = parse_ip(text) {
        return Ok(ClientMatch::Addrs(vec![ip]));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if text.contains(['*', '?']) {
        if !text.chars().all(|c| valid(c) || c == '*' || c == '?') {
            return Err(format!("bad wildcard client {text:?}"));
        }
        return Ok(ClientMatch::Wildcard(text.to_ascii_lowercase()));
    }
    if !text.chars().all(valid) {
        return Err(format!("bad client {text:?}"));
    }
    let mut addrs: Vec<IpAddr> = Vec::new();
    for ip in resolve(text)? {
        let ip = ip.to_canonical();
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    if addrs.is_empty() {
        return Err(format!("host {text:?} has no address"));
    }
    Ok(ClientMatch::Addrs(addrs))
}

/// The system resolver (hosts file, then DNS) for client host names.
fn resolve_host(name: &str) -> Result<Vec<IpAddr>, String> {
    let resolved =
        (name, 0u16).to_socket_addrs().map_err(|e| format!("cannot resolve host {name:?}: {e}"))?;
    Ok(resolved.map(|a| a.ip()).collect())
}

/// An IPv4 or IPv6 address, IPv6 optionally in brackets; IPv4-mapped IPv6 is taken as IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    if s.contains(':') {
        s.parse::<Ipv6Addr>().ok().map(|a| IpAddr::V6(a).to_canonical())
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

fn normalize_path(raw: &str) -> Result<PathBuf, String> {
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(format!("export path {raw:?} is not absolute"));
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => return Err(format!("export path {raw:?} contains \"..\"")),
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Parses one logical line; `Ok(None)` for a blank line.
fn parse_logical(line: &str, origin: &str, resolve: ResolveHost) -> Result<Option<ExportSpec>, String> {
    let tokens = tokenize(line)?;
    let Some((path_tok, rest)) = tokens.split_first() else { return Ok(None) };
    if path_tok.starts_with('(') || path_tok.starts_with('-') {
        return Err(format!("expected an export path, found {path_tok:?}"));
    }
    let path = normalize_path(&unescape_path(path_tok)?)?;
    let mut defaults = OptionState::new();
    let mut rest = rest;
    if let Some((opts, after)) = rest.split_first().and_then(|(f, a)| Some((f.strip_prefix('-')?, a))) {
        defaults.apply(opts, origin)?;
        rest = after;
    }
    let mut clients = Vec::new();
    let mut fsid: Option<u64> = None;
    let mut previous_bare: Option<&str> = None;
    for tok in rest {
        if tok.starts_with('-') {
            return Err(format!("default options {tok:?} must directly follow the path"));
        }
        let (client, opts) = match tok.split_once('(') {
            Some((c, o)) => (c, Some(o.strip_suffix(')').unwrap_or(o))),
            None => (tok.as_str(), None),
        };
        if client.is_empty() {
            match previous_bare {
                Some(prev) => tracing::warn!(
                    "{origin}: space between {prev:?} and \"({})\": {prev} gets the default options and \
                     everyone gets ({})",
                    opts.unwrap_or(""),
                    opts.unwrap_or("")
                ),
                None => tracing::warn!("{origin}: options without a client apply to everyone (*)"),
            }
        }
        let mut state = defaults.clone();
        if let Some(o) = opts {
            state.apply(o, origin)?;
        }
        let (options, client_fsid) = state.finish();
        if let Some(f) = client_fsid {
            if fsid.is_some_and(|g| g != f) {
                return Err(format!("conflicting fsid values for {}", path.display()));
            }
            fsid = Some(f);
        }
        let matcher = parse_client(client, resolve)?;
        let text = if client.is_empty() { "*".to_string() } else { client.to_string() };
        clients.push(ClientRule { text, matcher, options });
        previous_bare = if opts.is_none() { Some(client) } else { None };
    }
    if clients.is_empty() {
        tracing::warn!(
            "{origin}: no client given for {}; exporting to everyone (*) with the defaults",
            path.display()
        );
        let (options, f) = defaults.finish();
        fsid = f;
        clients.push(ClientRule { text: "*".to_string(), matcher: ClientMatch::Any, options });
    }
    Ok(Some(ExportSpec { path, fsid, clients, origin: origin.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::testing::{ip, one};

    #[test]
    fn full_file_with_comments_continuations_and_quotes() {
        let text = "# exports\n\
                    \n\
                    /srv/a  10.0.0.0/24(rw,no_root_squash) 192.168.1.7(ro,insecure)  # trailing\n\
                    \"/srv/with space\" -async \\\n\
                    \x20   2001:db8::/32(rw) *(ro)\n\
                    /srv/\\040b *.lab.example.com(rw,anonuid=1000,anongid=100,fsid=7)\n";
        let specs = parse_exports(text, "/etc/exports").unwrap();
        assert_eq!(specs.len(), 3);
        let a = &specs[0];
        assert_eq!(a.path, PathBuf::from("/srv/a"));
        assert_eq!(a.origin, "/etc/exports:3");
        assert_eq!(a.client_texts(), ["10.0.0.0/24", "192.168.1.7"]);
        assert_eq!(a.clients[0].matcher, ClientMatch::Network { addr: ip("10.0.0.0"), prefix: 24 });
        assert_eq!(a.clients[0].options.to_string(), "rw,no_root_squash,secure,sync");
        assert_eq!(a.clients[1].options.to_string(), "ro,root_squash,insecure,sync");
        let b = &specs[1];
        assert_eq!(b.path, PathBuf::from("/srv/with space"));
        assert_eq!(b.origin, "/etc/exports:4");
        assert_eq!(b.clients[0].options.to_string(), "rw,root_squash,secure,async");
        assert_eq!(b.clients[1].options.to_string(), "ro,root_squash,secure,async");
        let c = &specs[2];
        assert_eq!(c.path, PathBuf::from("/srv/ b"));
        assert_eq!(c.fsid, Some(7));
        assert_eq!(c.clients[0].matcher, ClientMatch::Wildcard("*.lab.example.com".into()));
        assert_eq!(c.clients[0].options.to_string(), "rw,root_squash,secure,sync,anonuid=1000,anongid=100");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_exports("/ok *(rw)\n\n/bad *(rw,frobnicate)\n", "/etc/exports").unwrap_err();
        assert_eq!(e.to_string(), "/etc/exports:3: unknown export option \"frobnicate\"");
        let e = parse_exports("/a \\\n  *(rw) \\\n  host..bad(rw)\n", "f").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse_export_line("relative *(rw)", "--export").unwrap_err();
        assert_eq!(e.to_string(), "--export: export path \"relative\" is not absolute");
        let e = parse_exports("/a *\n/a/ 10.0.0.1\n", "f").unwrap_err();
        assert_eq!(e.to_string(), "f:2: /a is already exported at f:1");
        for bad in [
            "/a *(rw",
            "\"/a *(rw)",
            "/a host(rw)x",
            "/a @netgroup(rw)",
            "/a 10.0.0.0/33(rw)",
            "/a 10.0.0.0/255.0.255.0(rw)",
            "/a 10.0.0.0/x(rw)",
            "/a *(sec=krb5)",
            "/a *(anonuid=x)",
            "/a *(anonuid=-2)",
            "/a *(rw=host)",
            "/a *(fsid=abc)",
            "/a 10.0.0.1(fsid=1) 10.0.0.2(fsid=2)",
            "/a/../b *",
            "/a *(rw) -ro",
            "/a h%st(rw)",
            "(rw)",
            "/a no-such-host.invalid(rw)",
        ] {
            assert!(parse_export_line(bad, "t").is_err(), "{bad}");
        }
        let e = parse_exports("/a no-such-host.invalid(rw)\n", "/etc/exports").unwrap_err();
        assert!(
            e.to_string().starts_with("/etc/exports:1: cannot resolve host \"no-such-host.invalid\""),
            "{e}"
        );
    }

    #[test]
    fn space_before_options_means_everyone() {
        let s = one("/a 10.0.0.1 (rw)");
        assert_eq!(s.client_texts(), ["10.0.0.1", "*"]);
        assert!(s.clients[0].options.read_only);
        assert!(!s.clients[1].options.read_only);
        assert!(s.options_for(ip("10.0.0.1")).unwrap().read_only);
        assert!(!s.options_for(ip("10.9.9.9")).unwrap().read_only);
    }

    #[test]
    fn bare_path_exports_to_everyone_with_defaults() {
        let s = one("/a -rw");
        assert_eq!(s.client_texts(), ["*"]);
        assert_eq!(s.clients[0].options.to_string(), "rw,root_squash,secure,sync");
        assert_eq!(one("/a").clients[0].options, ExportOptions::default());
    }

    #[test]
    fn option_forms() {
        let o = |s: &str| one(&format!("/a *({s})")).clients[0].options.clone();
        assert_eq!(o("no_root_squash,all_squash,no_all_squash").squash, Squash::None);
        assert_eq!(o("all_squash").squash, Squash::All);
        assert_eq!(o("no_root_squash").squash, Squash::None);
        assert_eq!(o("").squash, Squash::Root);
        assert!(o("nordirplus").no_readdirplus);
        assert_eq!(o("anonuid=0").anon_uid, 0);
        let ignored = "rw,wdelay,no_wdelay,subtree_check,no_subtree_check,hide,nohide,crossmnt,no_auth_nlm,\
                       insecure_locks,sec=sys,mp,mountpoint=/x,mp=/y";
        assert!(!o(ignored).read_only);
        assert_eq!(one("/a *(fsid=root)").fsid, Some(0));
        assert_eq!(one("/a *(fsid=12345678901)").fsid, Some(12345678901));
        let uuid = one("/a *(fsid=00000000-0000-0001-0000-000000000003)").fsid;
        assert_eq!(uuid, Some(1 ^ 3));
        // Spaces inside the parentheses are tolerated.
        assert_eq!(one("/a *(rw, insecure)").clients[0].options.to_string(), "rw,root_squash,insecure,sync");
    }

    #[test]
    fn client_forms() {
        let m = |c: &str| one(&format!("/a {c}(rw)")).clients[0].matcher.clone();
        assert_eq!(m("*"), ClientMatch::Any);
        assert_eq!(m("10.1.2.3"), ClientMatch::Addrs(vec![ip("10.1.2.3")]));
        assert_eq!(m("::1"), ClientMatch::Addrs(vec![ip("::1")]));
        assert_eq!(m("[fe80::1]"), ClientMatch::Addrs(vec![ip("fe80::1")]));
        assert_eq!(m("::ffff:10.0.0.1"), ClientMatch::Addrs(vec![ip("10.0.0.1")]));
        assert_eq!(m("10.0.0.0/255.255.0.0"), ClientMatch::Network { addr: ip("10.0.0.0"), prefix: 16 });
        assert_eq!(m("2001:db8::/32"), ClientMatch::Network { addr: ip("2001:db8::"), prefix: 32 });
        assert_eq!(m("Node?.LAB"), ClientMatch::Wildcard("node?.lab".into()));
        match m("localhost") {
            ClientMatch::Addrs(a) => assert!(a.iter().all(|x| x.is_loopback()) && !a.is_empty(), "{a:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parser_never_panics_on_odd_input() {
        for text in [
            "\\",
            "\"",
            "(",
            ")",
            "/a (",
            "/a ()",
            "/a *()",
            "/a \\0",
            "/a\\777 *",
            "#\\\n/a",
            "/\u{e9} *(rw)",
        ] {
            let _ = parse_exports(text, "f");
        }
        assert_eq!(parse_exports("#\\\n/a *\n", "f").unwrap().len(), 1);
    }
}
