//! Exports on the filesystems containers and hosts actually have, each set up in a private mount
//! namespace that goes away with the server (loop-mounted images, overlays). Needs root and the
//! filesystems' tools (e2fsprogs, xfsprogs, btrfs-progs); skipped with the reason printed
//! otherwise.

use rnfsd_test_support::process::{Running, free_port, have_tools, start_in_mount_namespace};
use rnfsd_test_support::*;
use xdr::nfs3::*;

/// A server on an export set up by `setup` (a shell fragment run with `$1` the work folder, a
/// tmpfs inside the namespace, which must leave the export at `$1/export`), and its address and
/// export path. The namespace's shell restarts the server whenever it exits, with the same state
/// directory, until the test ends; `ctl` (outside the namespace) holds its pid.
struct Mounted {
    server: Running,
    addr: std::net::SocketAddr,
    export: String,
    ctl: tempfile::TempDir,
    _work: tempfile::TempDir,
}

impl Mounted {
    fn start(tools: &[&str], setup: &str) -> Option<Mounted> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (mounts)");
            return None;
        }
        if !have_tools(tools) {
            return None;
        }
        let (work, ctl) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let port = free_port();
        let dir = work.path().display().to_string();
        let script = format!(
            r#"
            set -e
            fail() {{ echo "setup failed: $*" >&2; exit 97; }}
            mount -t tmpfs -o size=300m rnfsd-fs "$1" || fail "tmpfs"
            mkdir "$1/state"
            {setup}
            while [ ! -e "$4/stop" ]; do
                "$2" serve --bind 127.0.0.1 --port "$3" --portmap off --state-dir "$1/state" \
                    --export "$1/export *(rw,insecure,no_root_squash)" &
                echo $! >"$4/pid.tmp" && mv "$4/pid.tmp" "$4/pid"
                wait $! || true
            done
            "#
        );
        let bin = env!("CARGO_BIN_EXE_rnfsd");
        let args = [bin, &port.to_string(), &ctl.path().display().to_string()];
        let server = start_in_mount_namespace(&script, &dir, &args, port)?;
        let addr = ([127, 0, 0, 1], port).into();
        Some(Mounted { server, addr, export: format!("{dir}/export"), ctl, _work: work })
    }

    fn server_pid(&self) -> i32 {
        std::fs::read_to_string(self.ctl.path().join("pid")).unwrap().trim().parse().unwrap()
    }

    /// A path of the export as the namespace sees it, for changes behind the server's back.
    fn host_path(&self, name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/{}/root{}/{name}", self.server.child.id(), self.export))
    }

    /// Stops the server with SIGTERM and waits for the next one to listen.
    fn restart(&self) {
        let old = self.server_pid();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), nix::sys::signal::Signal::SIGTERM).unwrap();
        wait_until("the server restarts", std::time::Duration::from_secs(20), || {
            let pid = std::fs::read_to_string(self.ctl.path().join("pid")).ok()?;
            (pid.trim().parse::<i32>().ok()? != old && std::net::TcpStream::connect(self.addr).is_ok())
                .then_some(())
        });
    }
}

impl Drop for Mounted {
    /// The loop stops, then its server: the namespace goes when the shell exits.
    fn drop(&mut self) {
        let _ = std::fs::write(self.ctl.path().join("stop"), "");
        let pid = nix::unistd::Pid::from_raw(self.server_pid());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.server.child.wait();
    }
}

fn read_all(c: &mut Client, fh: &nfs_fh3) -> Vec<u8> {
    match c.read(fh, 0, 4096) {
        READ3res::Ok(r) => r.data.to_vec(),
        other => panic!("READ: {other:?}"),
    }
}

/// Kernel handles on one filesystem: they survive renames through rnfsd and behind its back and a
/// restart of rnfsd, and a file removed and made again under the same name is another file
/// (STALE), never the old handle's.
fn kernel_handles_hold_on(tools: &[&str], setup: &str) {
    let Some(m) = Mounted::start(tools, setup) else { return };
    let mut c = Client::tcp(m.addr);
    let root = c.mount(&m.export).expect("MNT");
    let (d1, d2) = (c.mkdir_fh(&root, "d1"), c.mkdir_fh(&root, "d2"));
    let f = c.create_file(&d1, "f");
    ok(c.write(&f, 0, b"the file's data", stable_how::FILE_SYNC));
    let rename = RENAME3args {
        from: diropargs3 { dir: d1.clone(), name: "f".into() },
        to: diropargs3 { dir: d2.clone(), name: "g".into() },
    };
    let renamed: RENAME3res = c.nfs(procs::RENAME, &rename);
    ok(renamed);
    assert_eq!(read_all(&mut c, &f), b"the file's data", "after a RENAME through rnfsd");
    std::fs::rename(m.host_path("d2/g"), m.host_path("d1/h")).unwrap();
    assert_eq!(read_all(&mut c, &f), b"the file's data", "after a rename behind rnfsd's back");
    m.restart();
    let mut c = Client::tcp(m.addr);
    assert_eq!(read_all(&mut c, &f), b"the file's data", "after a restart");
    assert_eq!(c.lookup_fh(&d1, "h"), f, "the same handle for the same file");
    assert!(matches!(c.getattr(&d2), GETATTR3res::Ok(_)));
    assert!(matches!(c.getattr(&root), GETATTR3res::Ok(_)));
    std::fs::remove_file(m.host_path("d1/h")).unwrap();
    std::fs::write(m.host_path("d1/h"), b"another file").unwrap();
    assert!(
        matches!(c.getattr(&f), GETATTR3res::Err(nfsstat3::NFS3ERR_STALE, _)),
        "a new file under the old name"
    );
}

/// The setup of an export that is a loop-mounted image of `size` made by `mkfs`.
fn loop_image(mkfs: &str, size: &str) -> String {
    format!(
        r#"truncate -s {size} "$1/img" && {mkfs} "$1/img" >/dev/null || fail "{mkfs}"
           mkdir "$1/export" && mount -o loop "$1/img" "$1/export" || fail "loop mount""#
    )
}

#[test]
fn kernel_handles_hold_on_ext4() {
    kernel_handles_hold_on(&["unshare", "mkfs.ext4"], &loop_image("mkfs.ext4 -q -F", "64M"));
}

#[test]
fn kernel_handles_hold_on_xfs() {
    kernel_handles_hold_on(&["unshare", "mkfs.xfs"], &loop_image("mkfs.xfs -q", "300M"));
}

#[test]
fn kernel_handles_hold_on_btrfs() {
    kernel_handles_hold_on(&["unshare", "mkfs.btrfs"], &loop_image("mkfs.btrfs -q", "200M"));
}

#[test]
fn kernel_handles_hold_on_tmpfs() {
    kernel_handles_hold_on(&["unshare"], r#"mkdir "$1/export""#);
}

/// overlayfs with `index=on,nfs_export=on` on btrfs layers gives 44-byte kernel handles, two
/// bytes more than rnfsd's handle format 1 has room for: they go in the compact format, and the
/// export serves a file of the lower layer and one made through it.
#[test]
fn overlayfs_with_nfs_export_on_btrfs_is_served_with_compact_handles() {
    let setup = r#"
        truncate -s 200M "$1/btrfs.img"
        mkfs.btrfs -q "$1/btrfs.img" >/dev/null || fail "mkfs.btrfs"
        mkdir "$1/b"
        mount -o loop "$1/btrfs.img" "$1/b" || fail "loop mount"
        mkdir "$1/b/lower" "$1/b/upper" "$1/b/work" "$1/export"
        echo "from the lower layer" >"$1/b/lower/low.txt"
        mount -t overlay overlay \
            -o "lowerdir=$1/b/lower,upperdir=$1/b/upper,workdir=$1/b/work,index=on,nfs_export=on" \
            "$1/export" || fail "overlayfs with nfs_export"
    "#;
    let Some(m) = Mounted::start(&["unshare", "mkfs.btrfs"], setup) else { return };
    let mut c = Client::tcp(m.addr);
    let root = c.mount(&m.export).expect("MNT");
    let low = c.lookup_fh(&root, "low.txt");
    assert!(low.0.len() <= 64);
    assert_eq!(low.0[0], 2, "the compact format: {} bytes", low.0.len());
    let READ3res::Ok(r) = c.read(&low, 0, 100) else { panic!("READ of the lower file") };
    assert_eq!(&r.data[..], b"from the lower layer\n");
    let new = c.create_file(&root, "new.txt");
    ok(c.write(&new, 0, b"made through the overlay", stable_how::FILE_SYNC));
    let READ3res::Ok(r) = c.read(&new, 0, 100) else { panic!("READ of the new file") };
    assert_eq!(&r.data[..], b"made through the overlay");
    // A write to the lower file copies it up; its handle stays good (nfs_export's promise).
    ok(c.write(&low, 0, b"FROM", stable_how::FILE_SYNC));
    let READ3res::Ok(r) = c.read(&low, 0, 100) else { panic!("READ after copy-up") };
    assert_eq!(&r.data[..], b"FROM the lower layer\n");
}
