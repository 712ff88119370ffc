//! The MOUNT program (100005, versions 1 to 3; RFC 1813 appendix I, RFC 1094 appendix A) as an
//! [`RpcService`] (its tables are `V1`, `V2` and `V3`): MNT checks the export's client rules and
//! the `secure` port rule and asks a [`MountBackend`] for the root handle; UMNT/UMNTALL/DUMP keep
//! the informational mount list; EXPORT lists the exports for `showmount -e`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Component;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use xdr::mount::{
    self as wire, FHSIZE, FHSIZE3, PROGRAM, VERSION_1, VERSION_2, VERSION_3, dirpath, fhstatus, mount_proc,
};
use xdr::rpc::AuthFlavor;

use crate::exports::ExportSpec;
use crate::logsafe::escaped;
use crate::rpc::DrcClass::{Idempotent, NonIdempotent};
use crate::rpc::RunOn::Inline;
use crate::rpc::program::LargestReply::Small;
use crate::rpc::program::{Procedure, Version, by_number, handler, null, row};
use crate::rpc::{CallContext, RpcError, RpcService};

/// MOUNT v3 status (`mountstat3`).
pub use xdr::mount::mountstat3 as MountStat;

/// The flavors MNT offers, preferred first: clients pick the first one they support.
pub const AUTH_FLAVORS: [u32; 2] = [AuthFlavor::Sys as u32, AuthFlavor::None as u32];

/// `NFSERR_IO`, the v1 status for a handle that does not fit in 32 bytes.
const NFSERR_IO: u32 = 5;

/// Entries kept in the mount list. It is informational (showmount -a), so when full the oldest
/// entry is dropped rather than letting callers grow it without bound.
pub const MAX_MOUNT_LIST: usize = 4096;

/// Computes export root handles; implemented by the filesystem layer.
pub trait MountBackend: Send + Sync {
    /// The handle of `subpath` (relative, `/`-separated, no `.` or `..`, empty for the export
    /// root) inside export `export_index` (an index into the exports the service was built with).
    fn mount(&self, export_index: usize, subpath: &[u8]) -> Result<Bytes, MountStat>;
}

/// One mount-list entry: the client's address and the path it mounted, as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub client: String,
    pub path: String,
}

/// The MOUNT service over a fixed list of exports.
pub struct MountService {
    exports: Vec<ExportSpec>,
    backend: Arc<dyn MountBackend>,
    mounts: Mutex<Vec<MountEntry>>,
}

/// Splits an absolute request path into its components, dropping empty and `.` ones. `None` for
/// a relative path or one with `..` (which could name something outside the export it starts in).
fn request_components(path: &[u8]) -> Option<Vec<&[u8]>> {
    if path.first() != Some(&b'/') {
        return None;
    }
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
    if parts.iter().any(|c| *c == b"..") { None } else { Some(parts) }
}

fn export_components(spec: &ExportSpec) -> Vec<&[u8]> {
    spec.path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(OsStr::as_bytes(s)),
            _ => None,
        })
        .collect()
}

impl MountService {
    pub fn new(exports: Vec<ExportSpec>, backend: Arc<dyn MountBackend>) -> Self {
        MountService { exports, backend, mounts: Mutex::new(Vec::new()) }
    }

    pub fn exports(&self) -> &[ExportSpec] {
        &self.exports
    }

    /// The current mount list, oldest first.
    pub fn mounts(&self) -> Vec<MountEntry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<MountEntry>> {
        // Each change is one push/retain, so a poisoned list is still consistent.
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The export whose path is the longest component-wise prefix of `path`, with the rest of
    /// the path below it (`/`-joined, empty for the export itself).
    pub fn find_export(&self, path: &[u8]) -> Result<(usize, Vec<u8>), MountStat> {
        let req = request_components(path).ok_or(MountStat::Inval)?;
        let (index, depth) = self
            .exports
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let ec = export_components(e);
                req.starts_with(&ec).then_some((i, ec.len()))
            })
            .max_by_key(|&(i, depth)| (depth, std::cmp::Reverse(i)))
            .ok_or(MountStat::NoEnt)?;
        Ok((index, req[depth..].join(&b'/')))
    }

    /// MNT, shared by all versions: the handle of the requested path, or why not.
    fn mount(&self, ctx: &CallContext, path: &dirpath) -> Result<Bytes, MountStat> {
        let shown = String::from_utf8_lossy(path.as_bytes()).into_owned();
        // The path as the log shows it: the client chose these bytes.
        let logged = escaped(path.as_bytes());
        let (index, subpath) = self.find_export(path.as_bytes()).inspect_err(|stat| {
            tracing::info!(client = %ctx.peer, path = %logged, "mount refused: {stat:?} (no such export)")
        })?;
        let spec = &self.exports[index];
        let Some(options) = spec.options_for(ctx.peer.ip()) else {
            tracing::warn!(client = %ctx.peer, path = %logged, export = %escaped(spec.path.as_os_str().as_bytes()),
                "mount refused: no client rule of the export admits this address");
            return Err(MountStat::Access);
        };
        if options.secure && ctx.peer.port() >= 1024 {
            tracing::warn!(client = %ctx.peer, path = %logged, export = %escaped(spec.path.as_os_str().as_bytes()),
                "mount refused: source port {} is not below 1024 and the export is `secure` \
                 (add `insecure` to allow unprivileged clients)", ctx.peer.port());
            return Err(MountStat::Access);
        }
        let handle = self.backend.mount(index, &subpath).inspect_err(
            |stat| tracing::info!(client = %ctx.peer, path = %logged, "mount failed: {stat:?}"),
        )?;
        if handle.len() > FHSIZE3 {
            tracing::error!(len = handle.len(), "mount backend returned a handle over 64 bytes");
            return Err(MountStat::ServerFault);
        }
        let client = ctx.peer.ip().to_canonical().to_string();
        let mut mounts = self.lock();
        if !mounts.iter().any(|m| m.client == client && m.path == shown) {
            if mounts.len() >= MAX_MOUNT_LIST {
                mounts.remove(0);
            }
            mounts.push(MountEntry { client, path: shown.clone() });
        }
        tracing::info!(client = %ctx.peer, path = %logged, export = %escaped(spec.path.as_os_str().as_bytes()),
            options = %options, "mounted");
        Ok(handle)
    }

    fn mount_list(&self) -> wire::mountlist {
        wire::mountlist(
            self.lock()
                .iter()
                .map(|m| wire::mountbody {
                    ml_hostname: truncate(&m.client, xdr::mount::MNTNAMLEN).into(),
                    ml_directory: truncate(&m.path, xdr::mount::MNTPATHLEN).into(),
                })
                .collect(),
        )
    }

    fn export_list(&self) -> wire::exports {
        wire::exports(
            self.exports
                .iter()
                .map(|e| wire::exportnode {
                    ex_dir: dirpath::from(e.path.as_os_str().as_bytes()),
                    ex_groups: e
                        .client_texts()
                        .into_iter()
                        .map(|t| wire::name::from(truncate(t, xdr::mount::MNTNAMLEN)))
                        .collect(),
                })
                .collect(),
        )
    }
}

/// Cuts a string to at most `max` bytes (on a character boundary) so that a reply never carries
/// more than its field's protocol maximum.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The v1 `fhstatus` status for a v3 failure: the v3 codes below 10000 are the UNIX errnos v1
/// uses; the others have no v1 equivalent and become EIO.
fn v1_status(stat: MountStat) -> u32 {
    match stat as u32 {
        s if s < 10000 => s,
        _ => NFSERR_IO,
    }
}

/// A MOUNT version's table, with `mnt` for MNT: versions 1 and 2 (RFC 1094 appendix A) have the
/// same procedures as version 3 (RFC 1813 appendix I), but MNT answers an `fhstatus` with a
/// 32-byte handle instead of a `mountres3`. MNT, UMNT and UMNTALL change the mount list, so the
/// duplicate-request cache replays them. Everything runs inline: the mount list is in memory, and
/// MNT's backend call is a lookup or two.
#[rustfmt::skip]
const fn mount_table(mnt: Procedure<MountService>) -> [Option<Procedure<MountService>>; 6] {
    use mount_proc::*;
    by_number(&[&[
        //  number   name       DRC            runs on  largest reply  handler
        row(NULL,    "NULL",    Idempotent,    Inline,  Small,         handler!(null)),
        mnt,
        row(DUMP,    "DUMP",    Idempotent,    Inline,  Small,         handler!(MountService::dump)),
        row(UMNT,    "UMNT",    NonIdempotent, Inline,  Small,         handler!(MountService::umnt)),
        row(UMNTALL, "UMNTALL", NonIdempotent, Inline,  Small,         handler!(MountService::umntall)),
        row(EXPORT,  "EXPORT",  Idempotent,    Inline,  Small,         handler!(MountService::export)),
    ]])
}

/// MOUNT version 1.
#[rustfmt::skip]
const V1: [Option<Procedure<MountService>>; 6] =
    mount_table(row(mount_proc::MNT, "MNT", NonIdempotent, Inline, Small, handler!(MountService::mnt1::<1>)));
/// MOUNT version 2: version 1's procedures (its PATHCONF, for NFSv2, is not served).
#[rustfmt::skip]
const V2: [Option<Procedure<MountService>>; 6] =
    mount_table(row(mount_proc::MNT, "MNT", NonIdempotent, Inline, Small, handler!(MountService::mnt1::<2>)));
/// MOUNT version 3.
#[rustfmt::skip]
const V3: [Option<Procedure<MountService>>; 6] =
    mount_table(row(mount_proc::MNT, "MNT", NonIdempotent, Inline, Small, handler!(MountService::mnt3)));

impl RpcService for MountService {
    const PROGRAM: u32 = PROGRAM;
    const NAME: &'static str = "mount";
    const VERSIONS: &'static [Version<Self>] = &[
        Version { number: VERSION_1, procedures: &V1 },
        Version { number: VERSION_2, procedures: &V2 },
        Version { number: VERSION_3, procedures: &V3 },
    ];
}

/// The procedures, as the tables call them.
impl MountService {
    /// MNT of version 3: the handle and the flavors the client may use.
    fn mnt3(&self, ctx: &CallContext, path: dirpath) -> Result<wire::mountres3, RpcError> {
        Ok(match self.mnt(ctx, &path) {
            Ok(fhandle) => {
                wire::mountres3::Ok(wire::mountres3_ok { fhandle, auth_flavors: AUTH_FLAVORS.to_vec() })
            }
            Err(stat) => wire::mountres3::Err(stat),
        })
    }

    /// MNT of versions 1 and 2 (`VERS`): the handle padded to 32 bytes, when it fits.
    fn mnt1<const VERS: u32>(&self, ctx: &CallContext, path: dirpath) -> Result<fhstatus, RpcError> {
        Ok(match self.mnt(ctx, &path) {
            Ok(h) if h.len() <= FHSIZE => {
                let mut fh = [0u8; FHSIZE];
                fh[..h.len()].copy_from_slice(&h);
                fhstatus::Ok(fh)
            }
            Ok(h) => {
                tracing::warn!(client = %ctx.peer, len = h.len(),
                    "MOUNT v{VERS} MNT: the {}-byte handle does not fit the 32-byte v1 handle \
                     (NFSv2 is not served; mount with vers=3)", h.len());
                fhstatus::Err(NFSERR_IO)
            }
            Err(stat) => fhstatus::Err(v1_status(stat)),
        })
    }

    /// [`MountService::mount`], which every version's MNT runs. A failed MNT changed nothing (the
    /// mount list only grows on success), so the call is marked refused.
    fn mnt(&self, ctx: &CallContext, path: &dirpath) -> Result<Bytes, MountStat> {
        self.mount(ctx, path).inspect_err(|_| ctx.refuse())
    }

    fn dump(&self, _: &CallContext, (): ()) -> Result<wire::mountlist, RpcError> {
        Ok(self.mount_list())
    }

    fn umnt(&self, ctx: &CallContext, path: dirpath) -> Result<(), RpcError> {
        let shown = String::from_utf8_lossy(path.as_bytes());
        let client = ctx.peer.ip().to_canonical().to_string();
        self.lock().retain(|m| !(m.client == client && m.path == shown));
        Ok(())
    }

    fn umntall(&self, ctx: &CallContext, (): ()) -> Result<(), RpcError> {
        let client = ctx.peer.ip().to_canonical().to_string();
        self.lock().retain(|m| m.client != client);
        Ok(())
    }

    fn export(&self, _: &CallContext, (): ()) -> Result<wire::exports, RpcError> {
        Ok(self.export_list())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::parse_exports;
    use crate::rpc::{Cred, DrcClass, Program, Transport};
    use bytes::BytesMut;
    use xdr::mount::{exports, mountlist, mountres3, name};
    use xdr::{Reader, Xdr};

    /// Returns `H<index>:<subpath>` as the handle; "missing" is NOENT, "long" a 40-byte handle.
    struct FakeBackend {
        calls: Mutex<Vec<(usize, Vec<u8>)>>,
    }

    impl MountBackend for FakeBackend {
        fn mount(&self, export_index: usize, subpath: &[u8]) -> Result<Bytes, MountStat> {
            self.calls.lock().unwrap().push((export_index, subpath.to_vec()));
            match subpath {
                b"missing" => Err(MountStat::NoEnt),
                b"long" => Ok(Bytes::from(vec![7u8; 40])),
                b"huge" => Ok(Bytes::from(vec![7u8; 65])),
                _ => {
                    let mut h = format!("H{export_index}:").into_bytes();
                    h.extend_from_slice(subpath);
                    Ok(Bytes::from(h))
                }
            }
        }
    }

    fn service() -> (MountService, Arc<FakeBackend>) {
        let specs = parse_exports(
            "/srv 10.0.0.0/8(rw)\n/srv/data *(rw,insecure)\n/export/secure 10.0.0.0/8(rw) 192.0.2.0/24(ro,insecure)\n",
            "exports",
        )
        .unwrap();
        let backend = Arc::new(FakeBackend { calls: Mutex::new(Vec::new()) });
        (MountService::new(specs, backend.clone()), backend)
    }

    fn ctx(peer: &str) -> CallContext {
        CallContext::new(
            1,
            peer.parse().unwrap(),
            "10.0.0.1:2049".parse().unwrap(),
            Transport::Tcp,
            Cred::sys(0, 0, vec![]),
        )
    }

    fn run_call(
        s: &MountService,
        c: &CallContext,
        vers: u32,
        p: u32,
        args: &[u8],
    ) -> Result<Bytes, RpcError> {
        let mut out = BytesMut::new();
        s.call(c, vers, p, &mut Reader::from_slice(args), &mut out)?;
        Ok(out.freeze())
    }

    fn mnt3(s: &MountService, peer: &str, path: &str) -> mountres3 {
        let b = run_call(s, &ctx(peer), 3, mount_proc::MNT, &dirpath::from(path).to_bytes()).unwrap();
        mountres3::from_bytes(&b).unwrap()
    }

    fn handle(res: mountres3) -> Vec<u8> {
        match res {
            mountres3::Ok(ok) => {
                assert_eq!(ok.auth_flavors, vec![1, 0]);
                ok.fhandle.to_vec()
            }
            mountres3::Err(e) => panic!("{e:?}"),
        }
    }

    thread_local! {
        /// The buffer of the test running on this thread while it captures its log lines.
        static CAPTURE: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
    }

    /// Where the process-wide test subscriber writes: the capturing thread's buffer, or nowhere.
    struct ThreadCapture;

    impl std::io::Write for ThreadCapture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(sink) = c.borrow().as_ref() {
                    sink.lock().unwrap().extend_from_slice(buf);
                }
            });
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with every log line of this thread captured, and returns the lines.
    ///
    /// The subscriber is global, not a thread's scoped default: tracing caches each callsite's
    /// interest process-wide, and a callsite first reached by another test's thread while a
    /// scoped subscriber was being registered could stay disabled for every thread (seen in CI:
    /// the successful mount's line was missing).
    fn captured_log(f: impl FnOnce()) -> String {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| ThreadCapture)
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the unit tests");
        });
        // A callsite another thread was registering while the subscriber was installed may have
        // cached "never" from the state before; recompute every callsite's interest now.
        tracing::callsite::rebuild_interest_cache();
        let buffer = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
        f();
        CAPTURE.with(|c| *c.borrow_mut() = None);
        let text = buffer.lock().unwrap().clone();
        String::from_utf8(text).unwrap()
    }

    /// A newline in a client's MNT path cannot start a log line of its own: refused (unknown
    /// export, client not listed) and successful mounts all log the path escaped.
    #[test]
    fn mnt_paths_cannot_forge_log_lines() {
        let (s, _) = service();
        let forged = "rnfsd: mounted /etc by 10.0.0.1";
        let log = captured_log(|| {
            let unlisted = format!("/srv/x\n{forged}");
            assert_eq!(mnt3(&s, "192.168.1.1:700", &unlisted), mountres3::Err(MountStat::Access));
            let unknown = format!("/nope\n{forged}");
            assert_eq!(mnt3(&s, "10.1.1.1:700", &unknown), mountres3::Err(MountStat::NoEnt));
            let below = format!("/srv/data/x\r\n{forged}\x1b[2J\u{202e}");
            assert!(matches!(mnt3(&s, "10.1.1.1:700", &below), mountres3::Ok(_)));
        });
        assert_eq!(log.lines().count(), 3, "one line per call:\n{log}");
        for line in log.lines() {
            assert!(!line.trim_start().starts_with("rnfsd:"), "forged line in the log:\n{log}");
            assert!(line.contains(&format!("\\n{forged}")), "the newline is shown escaped: {line}");
            assert!(!line.contains('\x1b') && !line.contains('\r') && !line.contains('\u{202e}'), "{line:?}");
        }
    }

    #[test]
    fn mnt_longest_prefix_and_subdirectories() {
        let (s, backend) = service();
        assert_eq!(handle(mnt3(&s, "10.1.1.1:700", "/srv")), b"H0:");
        assert_eq!(handle(mnt3(&s, "10.1.1.1:700", "/srv/")), b"H0:");
        assert_eq!(handle(mnt3(&s, "10.1.1.1:700", "/srv/other/x")), b"H0:other/x");
        assert_eq!(handle(mnt3(&s, "10.1.1.1:700", "/srv/data")), b"H1:");
        assert_eq!(handle(mnt3(&s, "10.1.1.1:700", "//srv/./data/a//b")), b"H1:a/b");
        // "/srv/database" is not inside "/srv/data": prefixes are compared by component.
        assert_eq!(handle(mnt3(&s, "10.1.1.1:700", "/srv/database")), b"H0:database");
        assert_eq!(mnt3(&s, "10.1.1.1:700", "/srv/data/missing"), mountres3::Err(MountStat::NoEnt));
        assert_eq!(mnt3(&s, "10.1.1.1:700", "/nope"), mountres3::Err(MountStat::NoEnt));
        assert_eq!(mnt3(&s, "10.1.1.1:700", "/srv/../etc"), mountres3::Err(MountStat::Inval));
        assert_eq!(mnt3(&s, "10.1.1.1:700", "srv"), mountres3::Err(MountStat::Inval));
        assert_eq!(mnt3(&s, "10.1.1.1:700", "/srv/data/huge"), mountres3::Err(MountStat::ServerFault));
        assert_eq!(backend.calls.lock().unwrap()[2], (0, b"other/x".to_vec()));
    }

    #[test]
    fn mnt_checks_clients_and_secure_port() {
        let (s, backend) = service();
        // Not in 10/8: no rule of /srv admits it.
        assert_eq!(mnt3(&s, "172.16.0.1:700", "/srv"), mountres3::Err(MountStat::Access));
        // /srv is `secure` by default: an unprivileged source port is refused.
        assert_eq!(mnt3(&s, "10.1.1.1:40000", "/srv"), mountres3::Err(MountStat::Access));
        // /srv/data is `insecure` and open to everyone.
        assert_eq!(handle(mnt3(&s, "172.16.0.1:40000", "/srv/data")), b"H1:");
        assert_eq!(handle(mnt3(&s, "[::ffff:192.0.2.9]:40000", "/export/secure")), b"H2:");
        assert_eq!(mnt3(&s, "[2001:db8::1]:700", "/export/secure"), mountres3::Err(MountStat::Access));
        // Refused mounts never reach the backend.
        assert_eq!(backend.calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn mount_list_dump_umnt_umntall() {
        let (s, _) = service();
        handle(mnt3(&s, "10.1.1.1:700", "/srv"));
        handle(mnt3(&s, "10.1.1.1:701", "/srv"));
        handle(mnt3(&s, "10.1.1.1:700", "/srv/data"));
        handle(mnt3(&s, "[::ffff:10.2.2.2]:700", "/srv/data"));
        let dump = |s: &MountService| {
            let b = run_call(s, &ctx("10.9.9.9:1"), 3, mount_proc::DUMP, &[]).unwrap();
            mountlist::from_bytes(&b)
                .unwrap()
                .0
                .into_iter()
                .map(|m| {
                    (
                        String::from_utf8(m.ml_hostname.0.to_vec()).unwrap(),
                        String::from_utf8(m.ml_directory.0.to_vec()).unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            dump(&s),
            [pair("10.1.1.1", "/srv"), pair("10.1.1.1", "/srv/data"), pair("10.2.2.2", "/srv/data")]
        );
        let umnt = run_call(&s, &ctx("10.1.1.1:800"), 3, mount_proc::UMNT, &dirpath::from("/srv").to_bytes())
            .unwrap();
        assert!(umnt.is_empty());
        assert_eq!(dump(&s), [pair("10.1.1.1", "/srv/data"), pair("10.2.2.2", "/srv/data")]);
        run_call(&s, &ctx("10.2.2.2:800"), 1, mount_proc::UMNTALL, &[]).unwrap();
        assert_eq!(dump(&s), [pair("10.1.1.1", "/srv/data")]);
        assert_eq!(s.mounts(), [MountEntry { client: "10.1.1.1".into(), path: "/srv/data".into() }]);
    }

    #[test]
    fn export_lists_paths_and_clients() {
        let (s, _) = service();
        for vers in 1..=3 {
            let b = run_call(&s, &ctx("203.0.113.1:40000"), vers, mount_proc::EXPORT, &[]).unwrap();
            let e = exports::from_bytes(&b).unwrap();
            assert_eq!(e.0.len(), 3);
            assert_eq!(e.0[2].ex_dir.as_bytes(), b"/export/secure");
            let groups: Vec<&[u8]> = e.0[2].ex_groups.iter().map(|g| g.as_bytes()).collect();
            assert_eq!(groups, [&b"10.0.0.0/8"[..], b"192.0.2.0/24"]);
            assert_eq!(e.0[1].ex_groups, vec![name::from("*")]);
        }
    }

    #[test]
    fn mnt_v1_pads_short_handles_and_refuses_long_ones() {
        let (s, _) = service();
        let mnt1 = |path: &str| {
            let b = run_call(&s, &ctx("10.1.1.1:700"), 1, mount_proc::MNT, &dirpath::from(path).to_bytes())
                .unwrap();
            fhstatus::from_bytes(&b).unwrap()
        };
        let mut want = [0u8; 32];
        want[..7].copy_from_slice(b"H1:a/bc");
        assert_eq!(mnt1("/srv/data/a/bc"), fhstatus::Ok(want));
        assert_eq!(mnt1("/srv/data/long"), fhstatus::Err(5));
        assert_eq!(mnt1("/srv/data/missing"), fhstatus::Err(2));
        assert_eq!(mnt1("/srv/data/huge"), fhstatus::Err(5));
        let b = run_call(&s, &ctx("172.16.0.1:700"), 2, mount_proc::MNT, &dirpath::from("/srv").to_bytes())
            .unwrap();
        assert_eq!(fhstatus::from_bytes(&b).unwrap(), fhstatus::Err(13));
    }

    #[test]
    fn table_and_errors() {
        let (s, _) = service();
        assert_eq!(s.versions(), (1, 3));
        assert_eq!(s.procedure(3, mount_proc::MNT).unwrap().drc, DrcClass::NonIdempotent);
        assert_eq!(s.procedure(1, mount_proc::EXPORT).unwrap().drc, DrcClass::Idempotent);
        assert!(s.procedure(3, 6).is_none());
        assert!(s.procedure(4, 0).is_none());
        assert_eq!(run_call(&s, &ctx("10.1.1.1:1"), 3, 6, &[]), Err(RpcError::ProcUnavail));
        assert_eq!(run_call(&s, &ctx("10.1.1.1:1"), 3, mount_proc::NULL, &[]).unwrap().len(), 0);
        // A path over MNTPATHLEN, and a truncated one, are garbage.
        let mut long = BytesMut::new();
        xdr::XdrWrite::put_opaque(&mut long, &[b'a'; 1025]);
        assert_eq!(run_call(&s, &ctx("10.1.1.1:1"), 3, mount_proc::MNT, &long), Err(RpcError::GarbageArgs));
        assert_eq!(
            run_call(&s, &ctx("10.1.1.1:1"), 3, mount_proc::UMNT, &[0, 0, 0, 9, b'/']),
            Err(RpcError::GarbageArgs)
        );
    }

    /// Bytes after the arguments are garbage, as NFS has it: nothing runs on arguments client and
    /// server disagree about.
    #[test]
    fn bytes_after_the_arguments_are_garbage() {
        let (s, backend) = service();
        let c = ctx("10.1.1.1:700");
        let path = dirpath::from("/srv").to_bytes();
        let no_args: &[u8] = &[];
        for vers in 1..=3 {
            for (p, args) in [
                (mount_proc::NULL, no_args),
                (mount_proc::MNT, &path),
                (mount_proc::DUMP, no_args),
                (mount_proc::UMNT, &path),
                (mount_proc::UMNTALL, no_args),
                (mount_proc::EXPORT, no_args),
            ] {
                let longer = [args, &[0, 0, 0, 0]].concat();
                assert_eq!(
                    run_call(&s, &c, vers, p, &longer),
                    Err(RpcError::GarbageArgs),
                    "v{vers} proc {p}"
                );
            }
        }
        assert!(backend.calls.lock().unwrap().is_empty(), "no MNT ran");
        assert!(s.mounts().is_empty());
    }

    #[test]
    fn mount_list_is_bounded() {
        let specs = vec![ExportSpec::shorthand("/x")];
        let s = MountService::new(specs, Arc::new(FakeBackend { calls: Mutex::new(Vec::new()) }));
        for i in 0..(MAX_MOUNT_LIST + 10) {
            let path = format!("/x/{i}");
            let b = run_call(
                &s,
                &ctx("10.0.0.1:40000"),
                3,
                mount_proc::MNT,
                &dirpath::from(path.as_str()).to_bytes(),
            );
            assert!(matches!(mountres3::from_bytes(&b.unwrap()).unwrap(), mountres3::Ok(_)));
        }
        let m = s.mounts();
        assert_eq!(m.len(), MAX_MOUNT_LIST);
        assert_eq!(m[0].path, "/x/10");
    }
}
