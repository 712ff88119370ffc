//! The `rnfsd-faultproxy` command: runs a fault-injecting proxy in front of an RPC server until
//! SIGTERM or SIGINT, with rules given on the command line and through a control socket, and
//! (`ctl`) sends commands to a running proxy's control socket.
#![deny(unsafe_code)]

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use rnfsd_faultproxy::{FaultProxy, Mode, ProxyOptions, Rule, Sink};

#[derive(Parser)]
#[command(
    name = "rnfsd-faultproxy",
    version,
    about = "A fault-injecting ONC RPC proxy for tests: drops, delays, duplicates or reorders chosen calls and replies",
    args_conflicts_with_subcommands = true,
    after_help = "RULE: ACTION [MS] [PROC] [prog=N] [count=N|always] [skip=N]\n  \
                  ACTION: drop-reply, drop-reply-close, close-after-forward, delay-call MS, delay-reply MS,\n          \
                  duplicate-call, reorder\n  \
                  PROC: an NFS v3 procedure name (REMOVE, WRITE, ...), a number, or * (default)\n  \
                  e.g. --rule 'drop-reply-close REMOVE' --rule 'delay-reply 500 WRITE count=3'"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address clients connect to, e.g. 127.0.0.1:2050.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The RPC server behind the proxy, e.g. 127.0.0.1:2049.
    #[arg(long, value_name = "ADDR")]
    upstream: Option<SocketAddr>,
    /// Proxy UDP datagrams instead of TCP connections.
    #[arg(long)]
    udp: bool,
    /// A rule armed at start (repeatable).
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<Rule>,
    /// A Unix socket taking line commands: `add RULE`, `clear`, `rules`, `events`.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Append event lines to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log every call and reply, not only the faults.
    #[arg(long)]
    log_traffic: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Send one command to a running proxy's control socket and print the answer.
    Ctl {
        /// The proxy's --control socket.
        socket: PathBuf,
        /// The command: add RULE..., clear, rules or events.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Ctl { socket, command }) = &cli.command {
        return ctl(socket, &command.join(" "));
    }
    let (Some(listen), Some(upstream)) = (cli.listen, cli.upstream) else {
        Cli::command()
            .error(clap::error::ErrorKind::MissingRequiredArgument, "--listen and --upstream are required")
            .exit();
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let sink: Sink = match &cli.log {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("rnfsd-faultproxy: cannot open the log {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::stderr()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rnfsd-faultproxy: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mode = if cli.udp { Mode::Udp } else { Mode::Tcp };
    let options = ProxyOptions { listen, upstream, mode, log_traffic: cli.log_traffic, sink: Some(sink) };
    let served = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let proxy = FaultProxy::start_with(options).await?;
        for rule in cli.rules {
            tracing::info!("armed {rule}");
            proxy.add_rule(rule);
        }
        if let Some(path) = cli.control.clone() {
            let control = proxy.control();
            tokio::spawn(async move {
                if let Err(e) = rnfsd_faultproxy::control::serve(path.clone(), control).await {
                    tracing::error!("control socket {}: {e}", path.display());
                }
            });
        }
        let transport = if cli.udp { "udp" } else { "tcp" };
        tracing::info!("listening on {} ({transport}), forwarding to {upstream}", proxy.addr());
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        proxy.shutdown();
        if let Some(path) = &cli.control {
            let _ = std::fs::remove_file(path);
        }
        Ok::<(), std::io::Error>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rnfsd-faultproxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `command` to the control socket and prints the answer; fails on `error:`.
fn ctl(socket: &PathBuf, command: &str) -> ExitCode {
    let run = || -> std::io::Result<bool> {
        let mut stream = UnixStream::connect(socket)?;
        stream.write_all(format!("{command}\n").as_bytes())?;
        for line in BufReader::new(stream).lines() {
            let line = line?;
            if line == "ok" {
                return Ok(true);
            }
            if let Some(reason) = line.strip_prefix("error: ") {
                eprintln!("rnfsd-faultproxy ctl: {reason}");
                return Ok(false);
            }
            println!("{line}");
        }
        Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the proxy closed without an answer"))
    };
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rnfsd-faultproxy ctl {}: {e}", socket.display());
            ExitCode::FAILURE
        }
    }
}
