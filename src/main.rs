//! The `rnfsd` command line: parses flags into a [`Config`] and runs the server until SIGTERM or
//! SIGINT.
#![deny(unsafe_code)]

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rnfsd::config::{
    Config, DEFAULT_MOUNT_PORT, DEFAULT_NFS_PORT, DEFAULT_PORTMAP_PORT, Limits, LockConfig, PortmapMode,
    usable_default_state_dir,
};
use rnfsd::exports::{ExportSpec, parse_export_line, parse_exports};

/// The version `--version` prints: the package's, and the git revision it was built from (see
/// build.rs), so a report names the exact commit.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("RNFSD_GIT_REVISION"), ")");

#[derive(Parser, Debug)]
#[command(name = "rnfsd", version = VERSION, about = "A userspace NFSv3 server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve directories over NFSv3.
    ///
    /// `rnfsd serve /srv/share` exports one directory to every client with
    /// `rw,insecure,root_squash,sync`. Use --exports for an exports(5) file, or --export for
    /// single exports(5) lines.
    Serve(ServeArgs),
    /// Print the man page or shell completions, generated from this command line, to stdout.
    ///
    /// `rnfsd generate man > rnfsd.8` writes the manual page (serve's options included);
    /// `rnfsd generate completions bash > /usr/share/bash-completion/completions/rnfsd` the
    /// completions of a shell.
    #[command(subcommand)]
    Generate(Generate),
}

#[derive(Subcommand, Debug)]
enum Generate {
    /// The rnfsd(8) manual page, as roff.
    Man,
    /// Completions for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Directories to export with the defaults `*(rw,insecure,root_squash,sync)`.
    paths: Vec<PathBuf>,
    /// An exports(5) file (path, then `client(options)` items).
    #[arg(long, env = "RNFSD_EXPORTS")]
    exports: Option<PathBuf>,
    /// One exports(5) line, e.g. '/srv/share 10.0.0.0/8(rw) *(ro)'. Repeatable.
    #[arg(long = "export", value_name = "LINE")]
    export_lines: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0", env = "RNFSD_BIND")]
    bind: IpAddr,
    /// NFS port (MOUNT is served on it too).
    #[arg(long, default_value_t = DEFAULT_NFS_PORT, env = "RNFSD_PORT")]
    port: u16,
    /// Separate MOUNT port (0 = serve MOUNT only on the NFS port).
    #[arg(long, default_value_t = DEFAULT_MOUNT_PORT, env = "RNFSD_MOUNT_PORT")]
    mount_port: u16,
    /// Serve NFS over UDP too (off by default: UDP calls can forge their source, and READ
    /// replies would reflect floods at it). MOUNT and the portmapper answer over UDP anyway.
    #[arg(long, env = "RNFSD_UDP", value_parser = clap::builder::BoolishValueParser::new())]
    udp: bool,
    /// Portmapper: auto (embedded on 111 if free, else register with rpcbind, else warn),
    /// embedded, register, or off.
    #[arg(long, value_enum, default_value_t = PortmapMode::Auto, env = "RNFSD_PORTMAP")]
    portmap: PortmapMode,
    /// Port of the portmapper (embedded, or the rpcbind to register with).
    #[arg(long, default_value_t = DEFAULT_PORTMAP_PORT, hide = true)]
    portmap_port: u16,
    /// Directory for state that must survive restarts (the file handle key).
    #[arg(long, env = "RNFSD_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Filesystem operations executing at once.
    #[arg(long, default_value_t = Limits::default().fs_threads)]
    fs_threads: usize,
    /// TCP connections served at once, over every port. When it is reached, a newcomer closes
    /// the least recently active connection of the address holding the most.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// TCP connections one client address may hold (raise it for many clients behind one NAT
    /// address); beyond it, the address's least recently active connection is closed.
    #[arg(long, default_value_t = Limits::default().max_connections_per_host)]
    max_connections_per_host: usize,
    /// Seconds a TCP record may take to arrive from its first byte (plus a second per 128 KiB
    /// of its size); a record late beyond that closes its connection.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().record_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    record_timeout: u64,
    /// MiB of received requests held at once over every connection (partial records beyond each
    /// connection's first 128 KiB, and records until their call has run).
    #[arg(long, value_name = "MIB", default_value_t = (Limits::default().max_request_bytes >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    max_request_memory: u64,
    /// MiB of large replies (over 64 KiB: READ, READDIR...) held at once over every connection.
    #[arg(long, value_name = "MIB", default_value_t = (Limits::default().max_reply_bytes >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(16..=1 << 20))]
    max_reply_memory: u64,
    /// Of --fs-threads, how many one client address may use at once (default: three quarters,
    /// at most 8), so one host cannot take them all.
    #[arg(long)]
    fs_threads_per_client: Option<usize>,
    /// Serve no network locks (NLM and NSM stay unregistered): clients must mount with
    /// `-o nolock`, and each client's locks are then local to it.
    #[arg(long, env = "RNFSD_NO_LOCKS", value_parser = clap::builder::BoolishValueParser::new())]
    no_locks: bool,
    /// Seconds after a restart during which only clients reclaiming their locks get them (only
    /// when some client held locks before the restart).
    #[arg(long, value_name = "SECONDS", default_value_t = rnfsd::config::DEFAULT_LOCK_GRACE.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    lock_grace: u64,
    /// Port of the clients' portmappers, for lock callbacks and reboot notices (tests).
    #[arg(long, default_value_t = DEFAULT_PORTMAP_PORT, hide = true)]
    lock_peer_portmap_port: u16,
    /// Only check the exports and print them, then exit.
    #[arg(long)]
    check_exports: bool,
    /// More logging (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log lines as text (for people) or as one JSON object a line (for a log collector).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "RNFSD_LOG_FORMAT")]
    log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// `TIME LEVEL SPANS: TARGET: MESSAGE FIELDS`, client-chosen bytes escaped.
    Text,
    /// One JSON object per line: timestamp, level, target, the event's fields (`message`
    /// among them) at the top, and `spans`, the fields of the request's span (client, prog,
    /// proc, xid). JSON escaping keeps every value on its line.
    Json,
}

fn load_exports(args: &ServeArgs) -> Result<Vec<ExportSpec>, String> {
    let mut specs = Vec::new();
    for p in &args.paths {
        let canonical = std::fs::canonicalize(p).map_err(|e| format!("export path {}: {e}", p.display()))?;
        specs.push(ExportSpec::shorthand(canonical));
    }
    for line in &args.export_lines {
        specs.push(parse_export_line(line, "--export").map_err(|e| e.to_string())?);
    }
    if let Some(file) = &args.exports {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        specs.extend(parse_exports(&text, &file.display().to_string()).map_err(|e| e.to_string())?);
    }
    if specs.is_empty() {
        return Err("nothing to export: give a directory (rnfsd serve /srv/share) or --exports FILE".into());
    }
    for s in &mut specs {
        let canonical = std::fs::canonicalize(&s.path)
            .map_err(|e| format!("{}: export path {}: {e}", s.origin, s.path.display()))?;
        if !canonical.is_dir() {
            return Err(format!("{}: export path {} is not a directory", s.origin, s.path.display()));
        }
        s.path = canonical;
    }
    Ok(specs)
}

/// `rnfsd generate`: the man page or a shell's completions on stdout.
fn generate(what: Generate) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let written = match what {
        Generate::Man => man_page(cmd, &mut out),
        Generate::Completions { shell } => {
            clap_complete::generate(shell, &mut cmd, "rnfsd", &mut out);
            Ok(())
        }
    };
    match written {
        // A reader that stopped early (`| head`) is not an error of ours.
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rnfsd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// rnfsd(8): clap_mangen's page of the top command, then a section per subcommand with its
/// synopsis, description and options (the page of the top command alone would list `serve`
/// without a single one of its flags, and those are what an operator looks up).
fn man_page(mut cmd: clap::Command, out: &mut impl std::io::Write) -> std::io::Result<()> {
    // Building gives each subcommand its full name (`rnfsd serve`) for its synopsis.
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    // No SUBCOMMANDS section: it would point at rnfsd-serve(8) pages that are not made; each
    // subcommand has its section here instead.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut roff = Vec::new();
        let page = clap_mangen::Man::new(sub.clone()).section("8");
        page.render_synopsis_section(&mut roff)?;
        page.render_description_section(&mut roff)?;
        page.render_options_section(&mut roff)?;
        // The subcommand's sections become subsections of its own.
        let roff = String::from_utf8_lossy(&roff).replace("\n.SH ", "\n.SS ");
        writeln!(out, ".SH \"RNFSD {}\"", sub.get_name().to_uppercase())?;
        out.write_all(roff.as_bytes())?;
    }
    man.render_version_section(out)
}

fn main() -> ExitCode {
    // Two arenas per core bound the memory freed buffers leave behind (see the function).
    rnfsd::fs::sys::tune_malloc(2 * std::thread::available_parallelism().map_or(2, |n| n.get().max(2)));
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Generate(what) => return generate(what),
    };
    let default_level = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // The request's fields are in `spans`; the current span alone would repeat them.
        LogFormat::Json => {
            logs.json().flatten_event(true).with_current_span(false).with_span_list(true).init()
        }
    }

    let exports = match load_exports(&args) {
        Ok(e) => e,
        Err(msg) => {
            eprintln!("rnfsd: {msg}");
            return ExitCode::from(2);
        }
    };
    if args.check_exports {
        for e in &exports {
            println!("{}", rnfsd::exports::describe_export(e));
        }
        return ExitCode::SUCCESS;
    }
    let state_dir = match args.state_dir.clone().map_or_else(usable_default_state_dir, Ok) {
        Ok(dir) => dir,
        Err(msg) => {
            eprintln!("rnfsd: {msg}");
            return ExitCode::from(1);
        }
    };
    let config = Config {
        exports,
        bind: args.bind,
        nfs_port: args.port,
        mount_port: (args.mount_port != 0 && args.mount_port != args.port).then_some(args.mount_port),
        nfs_over_udp: args.udp,
        portmap: args.portmap,
        portmap_port: args.portmap_port,
        state_dir,
        limits: Limits {
            fs_threads: args.fs_threads.max(1),
            max_connections: args.max_connections.max(1),
            max_connections_per_host: args.max_connections_per_host.max(1),
            record_timeout: std::time::Duration::from_secs(args.record_timeout),
            max_request_bytes: (args.max_request_memory as usize) << 20,
            max_reply_bytes: (args.max_reply_memory as usize) << 20,
            fs_threads_per_client: args.fs_threads_per_client.map(|n| n.max(1)),
            ..Limits::default()
        },
        locks: LockConfig {
            enabled: !args.no_locks,
            grace: std::time::Duration::from_secs(args.lock_grace),
            peer_portmap_port: args.lock_peer_portmap_port,
            ..LockConfig::default()
        },
    };
    match rnfsd::server::run_until_signal(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rnfsd: {e}");
            ExitCode::FAILURE
        }
    }
}
