//! The "source tree" workload: what `git status` and a build do to a checked-out tree. A tree of
//! small files is laid out once (untimed); then every slot keeps visiting random files: LOOKUP
//! of the name, GETATTR (the stat of `git status`), and for one visit in four ACCESS and a READ
//! of the whole file (a compiler opening a source), with one visit in 32 replaced by a
//! READDIRPLUS of a directory. Every reply is checked: the handle LOOKUP returns, the size and
//! type GETATTR returns, the bytes READ returns, the names a listing holds.

use std::io;
use std::time::{Duration, Instant};

use xdr::nfs3::*;

use crate::conn::{Call, Conn};
use crate::{MIB, Outcome, Pattern, Setup, created_handle, decode, err, fresh_dir, xorshift};
use rnfsd_test_support::dirop;

/// One file of the tree.
struct TreeFile {
    dir: usize,
    name: String,
    fh: nfs_fh3,
    size: u32,
    /// Where in the pattern its content starts.
    base: u64,
}

/// Small files of 1 to 16 KiB, like sources.
fn file_size(k: usize) -> u32 {
    1024 * (1 + (k * 7919 % 16) as u32)
}

/// Content offsets stay inside one 1 MiB pattern block, so a file is one slice of it.
fn file_base(k: usize) -> u64 {
    (k as u64 * 16384) % (crate::PATTERN_MIB * MIB as u64)
}

fn content(p: &Pattern, base: u64, size: u32) -> bytes::Bytes {
    let within = (base % MIB as u64) as usize;
    p.block(base / MIB as u64).slice(within..within + size as usize)
}

/// Lays out `dirs` directories of `per_dir` files under a fresh `tree` directory.
fn lay_out(c: &mut Conn, top: &nfs_fh3, a: &Setup) -> io::Result<(Vec<nfs_fh3>, Vec<TreeFile>)> {
    let root = fresh_dir(c, top, "tree")?;
    let mut dirs = Vec::new();
    for d in 0..a.tree_dirs {
        dirs.push(fresh_dir(c, &root, &format!("d{d:03}"))?);
    }
    let total = a.tree_dirs * a.tree_files;
    let mut files: Vec<Option<TreeFile>> = (0..total).map(|_| None).collect();
    // Per slot: the file and whether its CREATE (false) or WRITE (true) is in flight.
    let mut state = vec![(0usize, false); 64];
    let mut next = 0usize;
    c.pipeline(64, true, |slot, reply| {
        let (k, wrote) = state[slot];
        if let Some(body) = reply {
            if !wrote {
                let fh = created_handle(body, &format!("src{k:05}.c"))?;
                let (size, base) = (file_size(k), file_base(k));
                let args = WRITE3args {
                    file: fh.clone(),
                    offset: 0,
                    count: size,
                    stable: stable_how::FILE_SYNC,
                    data: content(&a.pattern, base, size),
                };
                files[k] =
                    Some(TreeFile { dir: k / a.tree_files, name: format!("src{k:05}.c"), fh, size, base });
                state[slot].1 = true;
                return Ok(Some(Call::write(args)));
            }
            let res: WRITE3res = decode("WRITE", body)?;
            if res.status() != nfsstat3::NFS3_OK {
                return Err(err("WRITE in the tree", res.status()));
            }
        }
        if next == total {
            return Ok(None);
        }
        state[slot] = (next, false);
        let how = createhow3::GUARDED(sattr3 { mode: Some(0o644), ..Default::default() });
        let args = CREATE3args { where_: dirop(&dirs[next / a.tree_files], &format!("src{next:05}.c")), how };
        next += 1;
        Ok(Some(Call::nfs(procs::CREATE, &args)))
    })?;
    Ok((dirs, files.into_iter().map(|f| f.expect("every file was created")).collect()))
}

#[derive(Clone, Copy)]
enum Stage {
    Lookup,
    Getattr,
    Access,
    Read,
    Listing,
}

pub fn tree(c: &mut Conn, top: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let (dirs, files) = lay_out(c, top, a)?;
    let slots = a.inflight.unwrap_or(16);
    // Per slot: the file (or directory, for a listing) and the stage of the call in flight.
    let mut state = vec![(0usize, Stage::Lookup); slots];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next_random = move || xorshift(&mut rng);
    let mut bytes = 0u64;
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let t = Instant::now();
    let stats = c.pipeline(slots, true, |slot, reply| {
        let (k, stage) = state[slot];
        if let Some(body) = reply {
            let next = match stage {
                Stage::Lookup => {
                    let res: LOOKUP3res = decode("LOOKUP", body)?;
                    match res.ok() {
                        Some(ok) if ok.object == files[k].fh => {}
                        _ => return Err(io::Error::other(format!("LOOKUP {}: wrong handle", files[k].name))),
                    }
                    Some((
                        Stage::Getattr,
                        Call::nfs(procs::GETATTR, &GETATTR3args { object: files[k].fh.clone() }),
                    ))
                }
                Stage::Getattr => {
                    let res: GETATTR3res = decode("GETATTR", body)?;
                    match res.ok() {
                        Some(ok)
                            if ok.obj_attributes.type_ == ftype3::NF3REG
                                && ok.obj_attributes.size == files[k].size as u64 => {}
                        _ => {
                            return Err(io::Error::other(format!(
                                "GETATTR {}: wrong size or type",
                                files[k].name
                            )));
                        }
                    }
                    (next_random() % 4 == 0).then(|| {
                        let args = ACCESS3args { object: files[k].fh.clone(), access: ACCESS3_READ };
                        (Stage::Access, Call::nfs(procs::ACCESS, &args))
                    })
                }
                Stage::Access => {
                    let res: ACCESS3res = decode("ACCESS", body)?;
                    if res.ok().is_none_or(|ok| ok.access & ACCESS3_READ == 0) {
                        return Err(io::Error::other(format!("ACCESS {}: no read access", files[k].name)));
                    }
                    let args = READ3args { file: files[k].fh.clone(), offset: 0, count: files[k].size };
                    Some((Stage::Read, Call::nfs(procs::READ, &args)))
                }
                Stage::Read => {
                    let res: READ3res = decode("READ", body)?;
                    let ok = res.ok().filter(|ok| ok.eof && ok.data.len() == files[k].size as usize);
                    let ok = ok.ok_or_else(|| {
                        io::Error::other(format!("READ {}: short or failed", files[k].name))
                    })?;
                    a.pattern.verify(&ok.data, files[k].base)?;
                    bytes += ok.data.len() as u64;
                    None
                }
                Stage::Listing => {
                    let res: READDIRPLUS3res = decode("READDIRPLUS", body)?;
                    let status = res.status();
                    let ok = res.ok().ok_or_else(|| err("READDIRPLUS in the tree", status))?;
                    let named = ok.reply.entries.iter().filter(|e| e.name.0.starts_with(b"src")).count();
                    if !ok.reply.eof
                        || named != a.tree_files
                        || ok.reply.entries.iter().any(|e| e.name_attributes.is_none())
                    {
                        return Err(io::Error::other(format!(
                            "READDIRPLUS of d{k:03}: {named} files listed"
                        )));
                    }
                    None
                }
            };
            if let Some((stage, call)) = next {
                state[slot].1 = stage;
                return Ok(Some(call));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        let r = next_random();
        if r % 32 == 0 {
            let d = (r / 32) as usize % dirs.len();
            state[slot] = (d, Stage::Listing);
            let args = READDIRPLUS3args {
                dir: dirs[d].clone(),
                cookie: 0,
                cookieverf: [0; 8],
                dircount: 8192,
                maxcount: 65536,
            };
            return Ok(Some(Call::nfs(procs::READDIRPLUS, &args)));
        }
        let k = (r / 32) as usize % files.len();
        state[slot] = (k, Stage::Lookup);
        Ok(Some(Call::nfs(procs::LOOKUP, &LOOKUP3args { what: dirop(&dirs[files[k].dir], &files[k].name) })))
    })?;
    Ok(Outcome {
        ops: stats.calls,
        secs: t.elapsed().as_secs_f64(),
        bytes,
        stats,
        listing_ms: None,
        flood: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_slices_of_one_pattern_block() {
        let p = Pattern::new();
        for k in [0, 1, 63, 64, 999, 4095, 4096, 10_000] {
            let (size, base) = (file_size(k), file_base(k));
            assert!((1024..=16384).contains(&size));
            let data = content(&p, base, size);
            assert_eq!(data.len(), size as usize);
            p.verify(&data, base).unwrap();
        }
    }
}
