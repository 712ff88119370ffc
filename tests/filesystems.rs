//! Exports on the filesystems containers and hosts actually have, each set up in a private mount
//! namespace that goes away with the server (loop-mounted images, overlays). Needs root and the
//! filesystems' tools (btrfs-progs); skipped with the reason printed otherwise.

use rnfsd_test_support::process::{Running, free_port, have_tools, start_in_mount_namespace};
use rnfsd_test_support::*;
use xdr::nfs3::*;

/// A server on an export set up by `setup` (a shell fragment run with `$1` the work folder, which
/// must leave the export at `$1/export`), and its address and export path.
struct Mounted {
    _server: Running,
    addr: std::net::SocketAddr,
    export: String,
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
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        let dir = work.path().display().to_string();
        let script = format!(
            r#"
            set -e
            fail() {{ echo "setup failed: $*" >&2; exit 97; }}
            mount -t tmpfs -o size=300m rnfsd-fs "$1" || fail "tmpfs"
            mkdir "$1/state"
            {setup}
            exec "$2" serve --bind 127.0.0.1 --port "$3" --portmap off --state-dir "$1/state" \
                --export "$1/export *(rw,insecure,no_root_squash)"
            "#
        );
        let bin = env!("CARGO_BIN_EXE_rnfsd");
        let server = start_in_mount_namespace(&script, &dir, &[bin, &port.to_string()], port)?;
        Some(Mounted {
            _server: server,
            addr: ([127, 0, 0, 1], port).into(),
            export: format!("{dir}/export"),
            _work: work,
        })
    }
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
