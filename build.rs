//! Build script: records the git revision the binary is built from, for `rnfsd --version`, as the
//! `RNFSD_GIT_REVISION` environment variable of the compilation: the 12-hex-digit commit, with
//! `-dirty` when the work tree has changes, or `unknown` outside a git checkout (a source tarball,
//! a vendored copy inside another repository) or without git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let revision = match checkout_of(&manifest_dir) {
        Some(checkout) => {
            watch(&checkout);
            revision(&manifest_dir).unwrap_or_else(|| "unknown".to_string())
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=RNFSD_GIT_REVISION={revision}");
    // Once a rerun-if-changed is printed, cargo reruns the script only for the files named, not
    // for every change in the package: the sources are named so that `-dirty` follows edits.
    for path in ["build.rs", "Cargo.toml", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// The git directories of the checkout whose top is `dir`, or `None` when `dir` is not the top
/// of a checkout (a crate unpacked inside some other repository must not take its revision).
struct Checkout {
    /// The work tree's own git directory (`.git`, or `.git/worktrees/NAME` for a worktree): HEAD
    /// and the index are here.
    git_dir: PathBuf,
    /// The directory shared by every worktree: branch refs and packed-refs are here.
    common_dir: PathBuf,
}

fn checkout_of(dir: &Path) -> Option<Checkout> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    Some(Checkout {
        git_dir: absolute(git(dir, &["rev-parse", "--git-dir"])?),
        common_dir: absolute(git(dir, &["rev-parse", "--git-common-dir"])?),
    })
}

/// Asks cargo to rerun the script when HEAD moves: HEAD itself (a checkout, a detached commit),
/// the branch ref it names (a commit), packed-refs (where a fresh clone keeps that ref) and the
/// index (a commit or `git add` changes what is dirty). Only existing files are named: cargo
/// reruns a script every build for a path that does not exist.
fn watch(c: &Checkout) {
    let mut paths = vec![c.git_dir.join("HEAD"), c.git_dir.join("index"), c.common_dir.join("packed-refs")];
    if let Ok(head) = std::fs::read_to_string(c.git_dir.join("HEAD"))
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        paths.push(c.common_dir.join(reference));
    }
    for p in paths.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

/// `git rev-parse --short=12 HEAD`, with `-dirty` when `git status --porcelain` lists anything.
fn revision(dir: &Path) -> Option<String> {
    let rev = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // Without optional locks, status does not refresh the index: a rewritten index would make
    // cargo run this script again on the next build.
    let dirty = git(dir, &["--no-optional-locks", "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}

/// A git command's trimmed standard output, or `None` when git is missing or the command fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
