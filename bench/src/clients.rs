//! The many-clients workload: N TCP connections at once, as N client machines would hold, each
//! with a few calls in flight. A directory tree of `--files` files (1,000 per directory) is made
//! first (untimed); then connection `t` of N walks the files `t`, `t + N`, `t + 2N`, ... with a
//! LOOKUP and a GETATTR each, so that together the connections touch every file once before
//! touching any again. Every LOOKUP's handle and every GETATTR's type is checked.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use xdr::nfs3::*;

use crate::conn::{Call, Conn, RunStats};
use crate::{Outcome, Setup, created_handle, decode, fresh_dir};
use rnfsd_test_support::dirop;

const PER_DIR: u64 = 1000;

fn file_name(i: u64) -> String {
    format!("f{i:07}")
}

/// Creates the files; returns the directories and every file's handle.
fn lay_out(c: &mut Conn, top: &nfs_fh3, files: u64) -> io::Result<(Vec<nfs_fh3>, Vec<nfs_fh3>)> {
    let root = fresh_dir(c, top, "clients")?;
    let mut dirs = Vec::new();
    for d in 0..files.div_ceil(PER_DIR) {
        dirs.push(fresh_dir(c, &root, &format!("d{d:04}"))?);
    }
    let mut handles: Vec<Option<nfs_fh3>> = vec![None; files as usize];
    let mut in_flight = vec![0u64; 64];
    let mut next = 0u64;
    c.pipeline(64, true, |slot, reply| {
        if let Some(body) = reply {
            let i = in_flight[slot];
            handles[i as usize] = Some(created_handle(body, &file_name(i))?);
        }
        if next == files {
            return Ok(None);
        }
        in_flight[slot] = next;
        let how = createhow3::GUARDED(sattr3 { mode: Some(0o644), ..Default::default() });
        let args = CREATE3args { where_: dirop(&dirs[(next / PER_DIR) as usize], &file_name(next)), how };
        next += 1;
        Ok(Some(Call::nfs(procs::CREATE, &args)))
    })?;
    Ok((dirs, handles.into_iter().map(|h| h.expect("every file was created")).collect()))
}

/// Lets the process hold `n` more descriptors, up to the hard limit.
fn allow_descriptors(n: u64) -> io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    let want = (n + 64).min(hard);
    if want > soft {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard).map_err(io::Error::from)?;
    }
    if n + 64 > hard {
        return Err(io::Error::other(format!(
            "{n} connections need more descriptors than the hard limit {hard}"
        )));
    }
    Ok(())
}

pub fn clients(addr: SocketAddr, c: &mut Conn, top: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let (dirs, handles) = lay_out(c, top, a.files)?;
    let (dirs, handles) = (Arc::new(dirs), Arc::new(handles));
    let n = a.clients;
    allow_descriptors(n as u64)?;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Conn::connect_with_buffer(addr, a.uid, a.gid, 64 << 10)?);
    }
    let inflight = a.inflight.unwrap_or(2);
    let start = Arc::new(Barrier::new(n + 1));
    let seconds = a.seconds;
    let mut threads = Vec::with_capacity(n);
    for (t, mut conn) in conns.into_iter().enumerate() {
        let (dirs, handles, start) = (dirs.clone(), handles.clone(), start.clone());
        let thread = std::thread::Builder::new().stack_size(256 << 10).spawn(move || {
            start.wait();
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let files = handles.len() as u64;
            // Per slot: the file and whether its LOOKUP (false) or GETATTR (true) is in flight.
            let mut state = vec![(0u64, false); inflight];
            let mut visit = 0u64;
            let mut touched = 0u64;
            let stats = conn.pipeline(inflight, true, |slot, reply| {
                let (i, got_handle) = state[slot];
                if let Some(body) = reply {
                    if !got_handle {
                        let res: LOOKUP3res = decode("LOOKUP", body)?;
                        if !res.ok().is_some_and(|ok| ok.object == handles[i as usize]) {
                            return Err(io::Error::other(format!("LOOKUP {}: wrong handle", file_name(i))));
                        }
                        state[slot].1 = true;
                        return Ok(Some(Call::nfs(
                            procs::GETATTR,
                            &GETATTR3args { object: handles[i as usize].clone() },
                        )));
                    }
                    let res: GETATTR3res = decode("GETATTR", body)?;
                    if !res.ok().is_some_and(|ok| ok.obj_attributes.type_ == ftype3::NF3REG) {
                        return Err(io::Error::other(format!(
                            "GETATTR {}: not a regular file",
                            file_name(i)
                        )));
                    }
                }
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                let k = t as u64 + visit * n as u64;
                visit += 1;
                if k < files {
                    touched += 1;
                }
                let i = k % files;
                state[slot] = (i, false);
                let args = LOOKUP3args { what: dirop(&dirs[(i / PER_DIR) as usize], &file_name(i)) };
                Ok(Some(Call::nfs(procs::LOOKUP, &args)))
            });
            stats.map(|s| (s, touched))
        })?;
        threads.push(thread);
    }
    start.wait();
    let t = Instant::now();
    let mut stats = RunStats::default();
    let mut touched = 0u64;
    for thread in threads {
        let (s, k) = thread.join().map_err(|_| io::Error::other("a client thread panicked"))??;
        stats.calls += s.calls;
        stats.reply_bytes += s.reply_bytes;
        stats.latencies_us.extend(s.latencies_us);
        touched += k;
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "rnfsd-bench: clients: {n} connections, {inflight} calls in flight each, {touched} of {} files touched",
        a.files
    );
    Ok(Outcome { ops: stats.calls, secs, bytes: 0, stats, listing_ms: None, flood: None })
}
