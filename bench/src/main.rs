//! `rnfsd-bench`: drives an NFSv3 server over TCP with the workloads of the project's benchmark
//! table and reports throughput, latency percentiles and the server's CPU time. It works against
//! any NFSv3 server (rnfsd, nfs-ganesha, knfsd) and verifies the data it reads.
#![deny(unsafe_code)]

mod clients;
mod conn;
mod fairness;
mod tree;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use rnfsd_test_support::dirop;
use xdr::Xdr;
use xdr::nfs3::*;

use conn::{Call, Conn, MOUNT, RunStats};

#[derive(Parser)]
#[command(about = "Load generator for NFSv3 servers")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// NFS port.
    #[arg(long, default_value_t = 2049)]
    port: u16,
    /// MOUNT port (default: the NFS port).
    #[arg(long)]
    mount_port: Option<u16>,
    /// Exported path to mount.
    #[arg(long)]
    export: String,
    /// Workloads to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "write,read,randread,create,getattr,lookup,readdirplus,tree,clients"
    )]
    workload: Vec<Workload>,
    /// Calls in flight (default: the workload's).
    #[arg(long)]
    inflight: Option<usize>,
    /// Seconds for the timed open-ended workloads (getattr, lookup, randread, readdirplus).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// 1 MiB transfers of the write and read workloads.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Files of the create and clients workloads.
    #[arg(long, default_value_t = 10_000)]
    files: u64,
    /// Directories of the tree workload.
    #[arg(long, default_value_t = 20)]
    tree_dirs: usize,
    /// Files per directory of the tree workload.
    #[arg(long, default_value_t = 50)]
    tree_files: usize,
    /// Connections of the clients workload.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Entries of the readdirplus directory.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
    /// Pids whose CPU time (utime + stime) is reported per workload.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Flooding connections of the fairness workloads.
    #[arg(long, default_value_t = 2)]
    flood_conns: usize,
    /// Calls in flight on each flooding connection.
    #[arg(long, default_value_t = 16)]
    flood_inflight: usize,
    /// Source address of the flooding connections (default: 127.0.0.2 when the server is on
    /// 127.0.0.0/8, so the server sees another host than the well-behaved client).
    #[arg(long)]
    flood_from: Option<std::net::IpAddr>,
    /// AUTH_SYS uid and gid.
    #[arg(long, default_value_t = 0)]
    uid: u32,
    #[arg(long, default_value_t = 0)]
    gid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    Write,
    Read,
    Randread,
    Create,
    Getattr,
    Lookup,
    Readdirplus,
    /// A source tree: LOOKUP, GETATTR, some ACCESS + READ, some READDIRPLUS.
    Tree,
    /// Many connections (`--clients`), each with LOOKUP + GETATTR over `--files` files.
    Clients,
    /// GETATTR latency of a well-behaved client (1 call in flight) beside another address
    /// flooding 1 MiB READDIRPLUS calls.
    FairnessReaddirplus,
    /// The same beside a flood of 1 MiB READs.
    FairnessRead,
    /// The same beside a flood of 1 MiB WRITEs.
    FairnessWrite,
}

/// What a workload measured.
struct Outcome {
    ops: u64,
    secs: f64,
    bytes: u64,
    stats: RunStats,
    /// For readdirplus: milliseconds per full listing.
    listing_ms: Option<Listings>,
    /// For the fairness workloads: the flood, and the well-behaved client alone.
    flood: Option<fairness::FloodReport>,
}

/// Times of full listings: the median, and the first (the server has seen none of the entries).
#[derive(Clone, Copy)]
struct Listings {
    median_ms: f64,
    first_ms: f64,
}

const MIB: usize = 1 << 20;
const SCRATCH: &str = "rnfsd-bench.d";

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("rnfsd-bench: {e}");
        std::process::exit(1);
    }
}

fn err(what: &str, status: nfsstat3) -> io::Error {
    io::Error::other(format!("{what}: {status:?}"))
}

fn decode<T: Xdr>(what: &str, body: &[u8]) -> io::Result<T> {
    T::from_bytes(body).map_err(|e| io::Error::other(format!("{what}: undecodable reply: {e}")))
}

/// The command line and the pattern, which the workloads share.
struct Setup {
    args: Args,
    pattern: Pattern,
}

impl std::ops::Deref for Setup {
    type Target = Args;
    fn deref(&self) -> &Args {
        &self.args
    }
}

fn run(args: Args) -> io::Result<()> {
    let args = &Setup { args, pattern: Pattern::new() };
    let nfs_addr = SocketAddr::new(args.host, args.port);
    let mount_addr = SocketAddr::new(args.host, args.mount_port.unwrap_or(args.port));
    let root = mount(mount_addr, &args.export, args.uid, args.gid)?;
    let mut c = Conn::connect(nfs_addr, args.uid, args.gid)?;
    let dir = fresh_dir(&mut c, &root, SCRATCH)?;
    for &w in &args.workload {
        let cpu0 = cpu_seconds(&args.server_pid);
        let out = match w {
            Workload::Write => write(&mut c, &dir, args),
            Workload::Read => read(&mut c, &dir, args),
            Workload::Randread => randread(&mut c, &dir, args),
            Workload::Create => create(&mut c, &dir, args),
            Workload::Getattr => getattr(&mut c, &dir, args),
            Workload::Lookup => lookup(&mut c, &dir, args),
            Workload::Readdirplus => readdirplus(&mut c, &dir, args),
            Workload::Tree => tree::tree(&mut c, &dir, args),
            Workload::Clients => clients::clients(nfs_addr, &mut c, &dir, args),
            Workload::FairnessReaddirplus => {
                fairness::fairness(nfs_addr, fairness::Flood::Readdirplus, &mut c, &dir, args)
            }
            Workload::FairnessRead => fairness::fairness(nfs_addr, fairness::Flood::Read, &mut c, &dir, args),
            Workload::FairnessWrite => {
                fairness::fairness(nfs_addr, fairness::Flood::Write, &mut c, &dir, args)
            }
        }
        .map_err(|e| io::Error::other(format!("{w:?}: {e}")))?;
        let cpu = cpu_seconds(&args.server_pid).zip(cpu0).map(|(a, b)| a - b);
        report(w, &out, cpu, memory_kib(&args.server_pid));
    }
    remove_tree(&mut c, &root, SCRATCH)?;
    Ok(())
}

fn report(w: Workload, o: &Outcome, cpu: Option<f64>, memory: Option<(u64, u64)>) {
    let mut lat = o.stats.latencies_us.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0)
    };
    let name = w.to_possible_value().map_or_else(|| format!("{w:?}"), |v| v.get_name().to_string());
    let mibs = o.bytes as f64 / MIB as f64 / o.secs;
    let ops = o.ops as f64 / o.secs;
    let cpu_s = cpu.map_or("-".to_string(), |c| format!("{c:.2}"));
    let listing = o.listing_ms.map_or(String::new(), |l| {
        format!(" listing_ms={:.2} first_listing_ms={:.2}", l.median_ms, l.first_ms)
    });
    let flood = o.flood.map_or(String::new(), |f| {
        format!(
            " max_us={} alone_p50_us={} alone_p99_us={} flood_ops_per_s={:.0} flood_mib_per_s={:.1}",
            f.max_us, f.alone_p50_us, f.alone_p99_us, f.ops_per_s, f.mib_per_s
        )
    });
    let rss =
        memory.map_or(String::new(), |(rss, hwm)| format!(" server_rss_kib={rss} server_hwm_kib={hwm}"));
    println!(
        "result workload={name} ops={} secs={:.3} ops_per_s={ops:.0} mib_per_s={mibs:.1} p50_us={} p99_us={} server_cpu_s={cpu_s}{listing}{flood}{rss}",
        o.ops,
        o.secs,
        pct(0.50),
        pct(0.99)
    );
}

/// User plus system CPU seconds of the pids, from /proc/PID/stat.
fn cpu_seconds(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        ticks += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / 100.0)
}

/// Resident and peak resident KiB (VmRSS, VmHWM) of the first pid, from /proc/PID/status.
fn memory_kib(pids: &[u32]) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids.first()?)).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn mount(addr: SocketAddr, export: &str, uid: u32, gid: u32) -> io::Result<nfs_fh3> {
    let mut c = Conn::connect(addr, uid, gid)?;
    let body = c.call(&Call::new(MOUNT, 1, &xdr::mount::dirpath::from(export)))?;
    let res: xdr::mount::mountres3 = decode("MNT", &body)?;
    match res {
        xdr::mount::mountres3::Ok(ok) => Ok(nfs_fh3(ok.fhandle)),
        other => Err(io::Error::other(format!("MNT {export}: {other:?}"))),
    }
}

fn lookup_fh(c: &mut Conn, dir: &nfs_fh3, n: &str) -> io::Result<Option<nfs_fh3>> {
    let body = c.call(&Call::nfs(procs::LOOKUP, &LOOKUP3args { what: dirop(dir, n) }))?;
    Ok(decode::<LOOKUP3res>("LOOKUP", &body)?.ok().map(|ok| ok.object))
}

/// Removes `n` in `dir` and everything below it.
fn remove_tree(c: &mut Conn, dir: &nfs_fh3, n: &str) -> io::Result<()> {
    let Some(fh) = lookup_fh(c, dir, n)? else { return Ok(()) };
    let attrs: GETATTR3res =
        decode("GETATTR", &c.call(&Call::nfs(procs::GETATTR, &GETATTR3args { object: fh.clone() }))?)?;
    let is_dir = attrs.ok().is_some_and(|a| a.obj_attributes.type_ == ftype3::NF3DIR);
    if is_dir {
        for child in list_names(c, &fh)? {
            remove_tree(c, &fh, &child)?;
        }
        let r: RMDIR3res =
            decode("RMDIR", &c.call(&Call::nfs(procs::RMDIR, &RMDIR3args { object: dirop(dir, n) }))?)?;
        if r.status() != nfsstat3::NFS3_OK {
            return Err(err(&format!("RMDIR {n}"), r.status()));
        }
    } else {
        let r: REMOVE3res =
            decode("REMOVE", &c.call(&Call::nfs(procs::REMOVE, &REMOVE3args { object: dirop(dir, n) }))?)?;
        if r.status() != nfsstat3::NFS3_OK {
            return Err(err(&format!("REMOVE {n}"), r.status()));
        }
    }
    Ok(())
}

/// Every name in a directory but `.` and `..`, with READDIR.
fn list_names(c: &mut Conn, dir: &nfs_fh3) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    let (mut cookie, mut verf) = (0, [0u8; 8]);
    loop {
        let args = READDIR3args { dir: dir.clone(), cookie, cookieverf: verf, count: 65536 };
        let res: READDIR3res = decode("READDIR", &c.call(&Call::nfs(procs::READDIR, &args))?)?;
        let status = res.status();
        let ok = res.ok().ok_or_else(|| err("READDIR", status))?;
        for e in &ok.reply.entries {
            let n = String::from_utf8_lossy(&e.name.0).into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
            cookie = e.cookie;
        }
        verf = ok.cookieverf;
        if ok.reply.eof || ok.reply.entries.is_empty() {
            return Ok(names);
        }
    }
}

/// A new empty directory `n` in `dir` (an old one is removed first).
fn fresh_dir(c: &mut Conn, dir: &nfs_fh3, n: &str) -> io::Result<nfs_fh3> {
    remove_tree(c, dir, n)?;
    let args =
        MKDIR3args { where_: dirop(dir, n), attributes: sattr3 { mode: Some(0o777), ..Default::default() } };
    let res: MKDIR3res = decode("MKDIR", &c.call(&Call::nfs(procs::MKDIR, &args))?)?;
    let status = res.status();
    res.ok().and_then(|ok| ok.obj).ok_or_else(|| err(&format!("MKDIR {n}"), status))
}

/// The handle a CREATE reply carries; `what` names the file in the error.
fn created_handle(body: &[u8], what: &str) -> io::Result<nfs_fh3> {
    let res: CREATE3res = decode("CREATE", body)?;
    let status = res.status();
    res.ok().and_then(|ok| ok.obj).ok_or_else(|| err(&format!("CREATE {what}"), status))
}

/// A xorshift64 step: cheap pseudo-random picks that repeat from run to run.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn create_file(c: &mut Conn, dir: &nfs_fh3, n: &str) -> io::Result<nfs_fh3> {
    let args = CREATE3args {
        where_: dirop(dir, n),
        how: createhow3::UNCHECKED(sattr3 { mode: Some(0o644), ..Default::default() }),
    };
    let res: CREATE3res = decode("CREATE", &c.call(&Call::nfs(procs::CREATE, &args))?)?;
    let status = res.status();
    match res.ok().and_then(|ok| ok.obj) {
        Some(fh) => Ok(fh),
        None if status == nfsstat3::NFS3_OK => {
            lookup_fh(c, dir, n)?.ok_or_else(|| err("LOOKUP after CREATE", nfsstat3::NFS3ERR_NOENT))
        }
        None => Err(err(&format!("CREATE {n}"), status)),
    }
}

/// The byte at `offset` of the benchmark file: every byte depends on its offset, so data from
/// the wrong place is caught.
fn pattern(offset: u64) -> u8 {
    let block = offset / 4096;
    (offset as u8).wrapping_mul(31) ^ (block as u8).wrapping_add((block >> 8) as u8)
}

/// The file's content repeats every [`PATTERN_MIB`] MiB; it is generated once so that neither
/// writing nor checking it is what the benchmark measures.
const PATTERN_MIB: u64 = 64;

struct Pattern {
    blocks: Vec<Bytes>,
}

impl Pattern {
    fn new() -> Pattern {
        let blocks = (0..PATTERN_MIB)
            .map(|i| Bytes::from((0..MIB as u64).map(|j| pattern(i * MIB as u64 + j)).collect::<Vec<u8>>()))
            .collect();
        Pattern { blocks }
    }

    /// The 1 MiB block that starts at file offset `i` MiB.
    fn block(&self, i: u64) -> Bytes {
        self.blocks[(i % PATTERN_MIB) as usize].clone()
    }

    fn verify(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let mut at = 0;
        while at < data.len() {
            let o = offset + at as u64;
            let block = &self.blocks[((o / MIB as u64) % PATTERN_MIB) as usize];
            let within = (o % MIB as u64) as usize;
            let n = (MIB - within).min(data.len() - at);
            if data[at..at + n] != block[within..within + n] {
                let bad = (0..n).find(|&k| data[at + k] != block[within + k]).unwrap_or(0);
                return Err(io::Error::other(format!("data read back differs at byte {}", o + bad as u64)));
            }
            at += n;
        }
        Ok(())
    }
}

const DATA_FILE: &str = "data";

/// Writes `mib` MiB of the pattern with UNSTABLE writes, `inflight` at a time, then COMMITs.
fn write_file(c: &mut Conn, p: &Pattern, fh: &nfs_fh3, mib: u64, inflight: usize) -> io::Result<RunStats> {
    let mut next = 0u64;
    let mut stats = c.pipeline(inflight, false, |_, _| {
        if next == mib {
            return Ok(None);
        }
        let i = next;
        next += 1;
        let data = p.block(i);
        let args = WRITE3args {
            file: fh.clone(),
            offset: i * MIB as u64,
            count: MIB as u32,
            stable: stable_how::UNSTABLE,
            data,
        };
        Ok(Some(Call::write(args)))
    })?;
    let t = Instant::now();
    let res: COMMIT3res = decode(
        "COMMIT",
        &c.call(&Call::nfs(procs::COMMIT, &COMMIT3args { file: fh.clone(), offset: 0, count: 0 }))?,
    )?;
    if res.status() != nfsstat3::NFS3_OK {
        return Err(err("COMMIT", res.status()));
    }
    stats.calls += 1;
    stats.latencies_us.push(t.elapsed().as_micros() as u32);
    Ok(stats)
}

fn write(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    remove_tree(c, dir, DATA_FILE)?;
    let fh = create_file(c, dir, DATA_FILE)?;
    let t = Instant::now();
    let stats = write_file(c, &a.pattern, &fh, a.mib, a.inflight.unwrap_or(16))?;
    Ok(Outcome {
        ops: stats.calls,
        secs: t.elapsed().as_secs_f64(),
        bytes: a.mib * MIB as u64,
        stats,
        listing_ms: None,
        flood: None,
    })
}

/// The data file, written first (untimed) when it is missing or too short.
fn data_file(c: &mut Conn, p: &Pattern, dir: &nfs_fh3, mib: u64) -> io::Result<nfs_fh3> {
    if let Some(fh) = lookup_fh(c, dir, DATA_FILE)? {
        let res: GETATTR3res =
            decode("GETATTR", &c.call(&Call::nfs(procs::GETATTR, &GETATTR3args { object: fh.clone() }))?)?;
        if res.ok().is_some_and(|a| a.obj_attributes.size >= mib * MIB as u64) {
            return Ok(fh);
        }
        remove_tree(c, dir, DATA_FILE)?;
    }
    let fh = create_file(c, dir, DATA_FILE)?;
    write_file(c, p, &fh, mib, 16)?;
    Ok(fh)
}

/// A successful READ reply's data, where it lies in `body`. Only the part before the data is
/// decoded (from a short copy): decoding the whole reply would copy every MiB once more in the
/// client, which shares the machine's cores with the server being measured.
fn read_data(body: &[u8], offset: u64) -> io::Result<&[u8]> {
    const HEAD: usize = 4 + 4 + 84 + 12;
    let undecodable =
        |e: xdr::XdrError| io::Error::other(format!("READ at {offset}: undecodable reply: {e}"));
    let mut r = xdr::Reader::from_slice(&body[..body.len().min(HEAD)]);
    let status = nfsstat3::decode(&mut r).map_err(undecodable)?;
    if status != nfsstat3::NFS3_OK {
        return Err(err(&format!("READ at {offset}"), status));
    }
    post_op_attr::decode(&mut r).map_err(undecodable)?;
    let _count = r.u32().map_err(undecodable)?;
    let _eof = r.bool().map_err(undecodable)?;
    let len = r.u32().map_err(undecodable)? as usize;
    let at = r.position();
    body.get(at..at + len).ok_or_else(|| {
        io::Error::other(format!(
            "READ at {offset}: reply of {} bytes holds no {len} bytes of data",
            body.len()
        ))
    })
}

fn check_read(p: &Pattern, body: &[u8], offset: u64, want: usize) -> io::Result<usize> {
    let data = read_data(body, offset)?;
    if data.len() != want {
        return Err(io::Error::other(format!("READ at {offset}: {} bytes, expected {want}", data.len())));
    }
    p.verify(data, offset)?;
    Ok(data.len())
}

fn read(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let fh = data_file(c, &a.pattern, dir, a.mib)?;
    let mut offsets = vec![0u64; a.inflight.unwrap_or(16)];
    let mut next = 0u64;
    let mut bytes = 0u64;
    let t = Instant::now();
    let stats = c.pipeline(offsets.len(), true, |slot, reply| {
        if let Some(body) = reply {
            bytes += check_read(&a.pattern, body, offsets[slot], MIB)? as u64;
        }
        if next == a.mib {
            return Ok(None);
        }
        offsets[slot] = next * MIB as u64;
        next += 1;
        Ok(Some(Call::nfs(
            procs::READ,
            &READ3args { file: fh.clone(), offset: offsets[slot], count: MIB as u32 },
        )))
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

fn randread(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let mib = a.mib.min(64);
    let fh = data_file(c, &a.pattern, dir, mib)?;
    let blocks = mib * (MIB as u64 / 4096);
    let mut offsets = vec![0u64; a.inflight.unwrap_or(64)];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = 0u64;
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let t = Instant::now();
    let stats = c.pipeline(offsets.len(), true, |slot, reply| {
        if let Some(body) = reply {
            bytes += check_read(&a.pattern, body, offsets[slot], 4096)? as u64;
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        offsets[slot] = (xorshift(&mut rng) % blocks) * 4096;
        Ok(Some(Call::nfs(procs::READ, &READ3args { file: fh.clone(), offset: offsets[slot], count: 4096 })))
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

/// CREATE, SETATTR (mode) and REMOVE of `files` files, each slot carrying one file through the
/// three calls.
fn create(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let sub = fresh_dir(c, dir, "create")?;
    let slots = a.inflight.unwrap_or(64);
    // Per slot: the file index and the stage of its last call (0 CREATE, 1 SETATTR, 2 REMOVE).
    let mut state = vec![(0u64, 0u8); slots];
    let mut next = 0u64;
    let t = Instant::now();
    let stats = c.pipeline(slots, true, |slot, reply| {
        let (file, stage) = state[slot];
        let call = match reply {
            Some(body) if stage == 0 => {
                let fh = created_handle(body, &format!("f{file}"))?;
                state[slot].1 = 1;
                let args = SETATTR3args {
                    object: fh,
                    new_attributes: sattr3 { mode: Some(0o600), ..Default::default() },
                    guard: None,
                };
                return Ok(Some(Call::nfs(procs::SETATTR, &args)));
            }
            Some(body) if stage == 1 => {
                let res: SETATTR3res = decode("SETATTR", body)?;
                if res.status() != nfsstat3::NFS3_OK {
                    return Err(err(&format!("SETATTR f{file}"), res.status()));
                }
                state[slot].1 = 2;
                Call::nfs(procs::REMOVE, &REMOVE3args { object: dirop(&sub, &format!("f{file}")) })
            }
            other => {
                if let Some(body) = other {
                    let res: REMOVE3res = decode("REMOVE", body)?;
                    if res.status() != nfsstat3::NFS3_OK {
                        return Err(err(&format!("REMOVE f{file}"), res.status()));
                    }
                }
                if next == a.files {
                    return Ok(None);
                }
                state[slot] = (next, 0);
                next += 1;
                let how = createhow3::GUARDED(sattr3 { mode: Some(0o644), ..Default::default() });
                Call::nfs(
                    procs::CREATE,
                    &CREATE3args { where_: dirop(&sub, &format!("f{}", state[slot].0)), how },
                )
            }
        };
        Ok(Some(call))
    })?;
    let secs = t.elapsed().as_secs_f64();
    if !list_names(c, &sub)?.is_empty() {
        return Err(io::Error::other("files left behind after REMOVE"));
    }
    Ok(Outcome { ops: stats.calls, secs, bytes: 0, stats, listing_ms: None, flood: None })
}

/// The same call repeated with `inflight` in flight for the configured time.
fn repeat(
    c: &mut Conn,
    a: &Args,
    call: impl Fn() -> Call,
    check: impl Fn(&[u8]) -> io::Result<()>,
) -> io::Result<Outcome> {
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let t = Instant::now();
    let mut n = 0u64;
    let stats = c.pipeline(a.inflight.unwrap_or(64), true, |_, reply| {
        if let Some(body) = reply {
            // Checking every reply would measure the checker: one in 1024.
            n += 1;
            if n % 1024 == 1 {
                check(body)?;
            }
        }
        Ok((Instant::now() < deadline).then(&call))
    })?;
    Ok(Outcome {
        ops: stats.calls,
        secs: t.elapsed().as_secs_f64(),
        bytes: 0,
        stats,
        listing_ms: None,
        flood: None,
    })
}

fn getattr(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let args = GETATTR3args { object: dir.clone() };
    repeat(
        c,
        a,
        || Call::nfs(procs::GETATTR, &args),
        |b| {
            let res: GETATTR3res = decode("GETATTR", b)?;
            match res.ok() {
                Some(ok) if ok.obj_attributes.type_ == ftype3::NF3DIR => Ok(()),
                _ => Err(io::Error::other("GETATTR of the scratch directory failed")),
            }
        },
    )
}

fn lookup(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let target = "lookup-target";
    remove_tree(c, dir, target)?;
    let fh = create_file(c, dir, target)?;
    let args = LOOKUP3args { what: dirop(dir, target) };
    repeat(
        c,
        a,
        || Call::nfs(procs::LOOKUP, &args),
        |b| {
            let res: LOOKUP3res = decode("LOOKUP", b)?;
            match res.ok() {
                Some(ok) if ok.object == fh => Ok(()),
                _ => Err(io::Error::other("LOOKUP did not return the file's handle")),
            }
        },
    )
}

/// The directory "bigdir" of `entries` empty files, made first (untimed) unless it is there.
fn big_dir(c: &mut Conn, dir: &nfs_fh3, entries: u64) -> io::Result<nfs_fh3> {
    if let Some(fh) = lookup_fh(c, dir, "bigdir")?
        && list_names(c, &fh)?.len() as u64 == entries
    {
        return Ok(fh);
    }
    let fh = fresh_dir(c, dir, "bigdir")?;
    let mut next = 0u64;
    c.pipeline(64, false, |_, _| {
        if next == entries {
            return Ok(None);
        }
        next += 1;
        let how = createhow3::UNCHECKED(sattr3::default());
        Ok(Some(Call::nfs(
            procs::CREATE,
            &CREATE3args { where_: dirop(&fh, &format!("entry-{next:06}")), how },
        )))
    })?;
    Ok(fh)
}

/// Full READDIRPLUS listings (maxcount 64 KiB, dircount 8 KiB, as the Linux client asks) of a
/// directory of `entries` files, repeated for the configured time.
fn readdirplus(c: &mut Conn, dir: &nfs_fh3, a: &Setup) -> io::Result<Outcome> {
    let big = big_dir(c, dir, a.entries)?;
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut listings = Vec::new();
    let mut stats = RunStats::default();
    let t = Instant::now();
    while listings.is_empty() || Instant::now() < deadline {
        let start = Instant::now();
        let (mut cookie, mut verf, mut seen) = (0u64, [0u8; 8], 0u64);
        loop {
            let args = READDIRPLUS3args {
                dir: big.clone(),
                cookie,
                cookieverf: verf,
                dircount: 8192,
                maxcount: 65536,
            };
            let call_start = Instant::now();
            let body = c.call(&Call::nfs(procs::READDIRPLUS, &args))?;
            stats.latencies_us.push(call_start.elapsed().as_micros() as u32);
            stats.calls += 1;
            let res: READDIRPLUS3res = decode("READDIRPLUS", &body)?;
            let status = res.status();
            let ok = res.ok().ok_or_else(|| err("READDIRPLUS", status))?;
            for e in &ok.reply.entries {
                if e.name_handle.is_none() || e.name_attributes.is_none() {
                    return Err(io::Error::other("READDIRPLUS entry without handle or attributes"));
                }
                seen += 1;
                cookie = e.cookie;
            }
            verf = ok.cookieverf;
            if ok.reply.eof {
                break;
            }
        }
        // The listing includes `.` and `..` on most servers.
        if seen < a.entries {
            return Err(io::Error::other(format!("listing returned {seen} entries, expected {}", a.entries)));
        }
        listings.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let first_ms = listings[0];
    listings.sort_by(f64::total_cmp);
    let median_ms = listings[listings.len() / 2];
    Ok(Outcome {
        ops: stats.calls,
        secs: t.elapsed().as_secs_f64(),
        bytes: 0,
        stats,
        listing_ms: Some(Listings { median_ms, first_ms }),
        flood: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_checked_across_blocks() {
        let p = Pattern::new();
        let start = 3 * MIB as u64 - 5_000;
        let mut b: Vec<u8> = (0..10_000u64).map(|i| pattern(start + i)).collect();
        p.verify(&b, start).unwrap();
        // The content repeats every PATTERN_MIB MiB.
        p.verify(&b, start + PATTERN_MIB * MIB as u64).unwrap();
        assert!(p.verify(&b, start + 4096).is_err(), "data from another offset");
        b[7_777] ^= 1;
        let e = p.verify(&b, start).unwrap_err().to_string();
        assert!(e.contains(&(start + 7_777).to_string()), "{e}");
    }

    fn attrs() -> fattr3 {
        fattr3 {
            type_: ftype3::NF3REG,
            mode: 0o644,
            nlink: 1,
            uid: 0,
            gid: 0,
            size: 10,
            used: 4096,
            rdev: specdata3 { specdata1: 0, specdata2: 0 },
            fsid: 1,
            fileid: 2,
            atime: nfstime3 { seconds: 1, nseconds: 0 },
            mtime: nfstime3 { seconds: 1, nseconds: 0 },
            ctime: nfstime3 { seconds: 1, nseconds: 0 },
        }
    }

    #[test]
    fn read_data_is_found_in_place_with_or_without_attributes() {
        for attributes in [None, Some(attrs())] {
            let data = Bytes::from_static(b"0123456789");
            let ok = READ3resok { file_attributes: attributes, count: 10, eof: true, data: data.clone() };
            let body = READ3res::Ok(ok).to_bytes();
            assert_eq!(read_data(&body, 0).unwrap(), &data[..]);
            // A reply cut short must not pass for data.
            assert!(read_data(&body[..body.len() - 4], 0).is_err());
        }
        let failed = READ3res::Err(nfsstat3::NFS3ERR_IO, None).to_bytes();
        assert!(read_data(&failed, 7).unwrap_err().to_string().contains("READ at 7"));
    }

    #[test]
    fn a_write_sent_from_its_buffer_is_the_same_call_on_the_wire() {
        for len in [0, 1, 5, 4096] {
            let args = WRITE3args {
                file: nfs_fh3(Bytes::from_static(&[7; 20])),
                offset: 4096,
                count: len as u32,
                stable: stable_how::UNSTABLE,
                data: Bytes::from(vec![0xab; len]),
            };
            let whole = args.to_bytes();
            let call = Call::write(args);
            let mut wire = call.args.to_vec();
            wire.extend_from_slice(&call.payload);
            wire.resize(wire.len().next_multiple_of(4), 0);
            assert_eq!(wire, &whole[..], "{len} bytes");
        }
    }

    #[test]
    fn cpu_of_this_process_is_readable() {
        assert!(cpu_seconds(&[std::process::id()]).is_some());
        assert!(cpu_seconds(&[]).is_none());
    }
}
