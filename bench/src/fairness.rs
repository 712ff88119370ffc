//! The fairness workloads: one well-behaved client beside a flood from another host. The
//! well-behaved client makes GETATTR calls one at a time, first alone and then while
//! `--flood-conns` connections from `--flood-from` (another address of 127/8, so a server that
//! shares its work out by client address sees a second host) keep `--flood-inflight` heavy calls
//! each in flight: 1 MiB READDIRPLUS of a directory of `--entries` files, 1 MiB READs, or 1 MiB
//! WRITEs. The result is the well-behaved client's latency under the flood (p50, p99, max), its
//! latency alone, and what the flood got through.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xdr::nfs3::*;

use crate::conn::{Call, Conn, RunStats};
use crate::{MIB, Outcome, Setup, big_dir, create_file, data_file, decode, remove_tree};

/// What the flooding connections send.
#[derive(Clone, Copy, Debug)]
pub enum Flood {
    /// READDIRPLUS from cookie 0 with maxcount 1 MiB over the big directory.
    Readdirplus,
    /// 1 MiB READs over a data file.
    Read,
    /// 1 MiB UNSTABLE WRITEs over a file of its own.
    Write,
}

/// How the flood went, reported beside the well-behaved client's latencies.
#[derive(Clone, Copy)]
pub struct FloodReport {
    pub alone_p50_us: u32,
    pub alone_p99_us: u32,
    pub max_us: u32,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
}

/// The data files the read and write floods cycle over.
const FLOOD_MIB: u64 = 64;
const FLOOD_FILE: &str = "flood-data";

/// The flood's source address: `--flood-from`, or 127.0.0.2 when the server is on IPv4
/// loopback (any address of 127/8 reaches it), otherwise whatever the kernel chooses.
fn flood_source(a: &Setup) -> Option<IpAddr> {
    a.flood_from.or(match a.host {
        IpAddr::V4(h) if h.is_loopback() => Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        _ => None,
    })
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or(0)
}

/// GETATTR of `dir`, one call at a time, for `secs`.
fn well_behaved(c: &mut Conn, dir: &nfs_fh3, secs: f64) -> io::Result<RunStats> {
    let args = GETATTR3args { object: dir.clone() };
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    c.pipeline(1, true, |_, reply| {
        if let Some(body) = reply {
            let res: GETATTR3res = decode("GETATTR", body)?;
            if !res.ok().is_some_and(|ok| ok.obj_attributes.type_ == ftype3::NF3DIR) {
                return Err(io::Error::other("GETATTR of the scratch directory failed"));
            }
        }
        Ok((Instant::now() < deadline).then(|| Call::nfs(procs::GETATTR, &args)))
    })
}

pub fn fairness(
    addr: SocketAddr,
    flood: Flood,
    c: &mut Conn,
    dir: &nfs_fh3,
    a: &Setup,
) -> io::Result<Outcome> {
    // The flood's targets, made first (untimed).
    let target = match flood {
        Flood::Readdirplus => big_dir(c, dir, a.entries)?,
        Flood::Read => data_file(c, &a.pattern, dir, a.mib.min(FLOOD_MIB))?,
        Flood::Write => {
            remove_tree(c, dir, FLOOD_FILE)?;
            create_file(c, dir, FLOOD_FILE)?
        }
    };
    let span = match flood {
        Flood::Read => a.mib.min(FLOOD_MIB),
        _ => FLOOD_MIB,
    };
    let mut alone = well_behaved(c, dir, (a.seconds / 3.0).max(0.5))?.latencies_us;
    alone.sort_unstable();

    let from = flood_source(a);
    let stop = Arc::new(AtomicBool::new(false));
    let block = a.pattern.block(0);
    let mut floods = Vec::new();
    for t in 0..a.flood_conns {
        let mut conn = Conn::connect_from(addr, from, a.uid, a.gid, 2 * MIB)?;
        let (stop, target, block) = (stop.clone(), target.clone(), block.clone());
        let inflight = a.flood_inflight;
        floods.push(std::thread::spawn(move || {
            let mut next = t as u64 * 7;
            let t0 = Instant::now();
            let stats = conn.pipeline(inflight, true, |_, reply| {
                // Every reply must be NFS3_OK: a flood of errors would measure nothing.
                if let Some(body) = reply
                    && body.get(..4) != Some(&[0, 0, 0, 0])
                {
                    return Err(io::Error::other(format!("{flood:?} flood: the server answered an error")));
                }
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                next += 1;
                let offset = (next % span) * MIB as u64;
                Ok(Some(match flood {
                    Flood::Readdirplus => Call::nfs(
                        procs::READDIRPLUS,
                        &READDIRPLUS3args {
                            dir: target.clone(),
                            cookie: 0,
                            cookieverf: [0; 8],
                            dircount: MIB as u32 / 8,
                            maxcount: MIB as u32,
                        },
                    ),
                    Flood::Read => {
                        Call::nfs(procs::READ, &READ3args { file: target.clone(), offset, count: MIB as u32 })
                    }
                    Flood::Write => Call::write(WRITE3args {
                        file: target.clone(),
                        offset,
                        count: MIB as u32,
                        stable: stable_how::UNSTABLE,
                        data: block.clone(),
                    }),
                }))
            });
            stats.map(|s| (s, t0.elapsed().as_secs_f64()))
        }));
    }
    // Let the flood fill the server's queues before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let measured = well_behaved(c, dir, a.seconds);
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut flood_calls, mut flood_bytes, mut flood_secs) = (0u64, 0u64, 0f64);
    for f in floods {
        let (s, secs) = f.join().map_err(|_| io::Error::other("a flood thread panicked"))??;
        flood_calls += s.calls;
        flood_bytes += match flood {
            Flood::Write => s.calls * MIB as u64,
            _ => s.reply_bytes,
        };
        flood_secs = flood_secs.max(secs);
    }
    let stats = measured?;
    let max_us = stats.latencies_us.iter().copied().max().unwrap_or(0);
    eprintln!(
        "rnfsd-bench: fairness {flood:?}: {} flood connections from {}, {} calls in flight each",
        a.flood_conns,
        from.map_or("the default address".to_string(), |f| f.to_string()),
        a.flood_inflight
    );
    Ok(Outcome {
        ops: stats.calls,
        secs,
        bytes: 0,
        stats,
        listing_ms: None,
        flood: Some(FloodReport {
            alone_p50_us: percentile(&alone, 0.50),
            alone_p99_us: percentile(&alone, 0.99),
            max_us,
            ops_per_s: flood_calls as f64 / flood_secs,
            mib_per_s: flood_bytes as f64 / MIB as f64 / flood_secs,
        }),
    })
}
