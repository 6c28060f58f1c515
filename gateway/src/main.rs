//! The `tessera` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gateway::admin::{AdminCommand, run_admin};
use gateway::config::{Credentials, ServeConfig, expand_ellipsis};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "S3-compatible object storage on erasure-coded, deduplicated chunks"
)]
struct Cli {
    /// Log lines as human-readable text or as one JSON object per line. Level: RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve S3 from one or more directories (disks). `DIR` accepts ranges: /data{1...4}.
    Serve(ServeArgs),
    /// Administer a running server through its admin API (root credentials from
    /// TESSERA_ROOT_USER / TESSERA_ROOT_PASSWORD, else the development defaults).
    Admin(AdminArgs),
}

#[derive(clap::Args)]
struct AdminArgs {
    /// The server's S3 endpoint.
    #[arg(
        long,
        env = "TESSERA_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint: String,
    /// Print the server's JSON answer instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:9000")]
    address: SocketAddr,
    /// Parity shards per erasure set (default by set size: 1 disk 0, 2-3 1, 4-5 2, 6-7 3, 8+ 4).
    #[arg(long)]
    parity: Option<usize>,
    /// Seconds an unreferenced chunk is kept before its shards are deleted.
    #[arg(long, default_value_t = 600)]
    gc_grace_secs: u64,
    /// Seconds after which an unfinished multipart upload is aborted (default 7 days).
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    multipart_expiry_secs: u64,
    /// Region reported to clients.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Serve virtual-host-style requests for `BUCKET.DOMAIN` (repeatable); path-style requests
    /// keep working.
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Seconds between scheduled scanner passes over every shard (0: only on demand).
    #[arg(long, default_value_t = 24 * 3600)]
    scan_interval_secs: u64,
    /// Shard bytes per second a scheduled scanner pass may read, in MiB (0: unlimited).
    #[arg(long, default_value_t = 64)]
    scan_bandwidth_mib: u64,
    /// Seconds between probes of every disk (missing, returned, replaced, faulty).
    #[arg(long, default_value_t = 5)]
    disk_check_secs: u64,
    /// Data directories, one per disk.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<String>,
}

fn serve_config(args: ServeArgs) -> Result<ServeConfig, String> {
    let mut disks = Vec::new();
    for d in &args.dirs {
        disks.extend(expand_ellipsis(d)?.into_iter().map(PathBuf::from));
    }
    let mut seen = std::collections::HashSet::new();
    for d in &disks {
        if !seen.insert(d) {
            return Err(format!("{} is given more than once", d.display()));
        }
    }
    let credentials = root_credentials()?;
    Ok(ServeConfig {
        address: args.address,
        disks,
        parity: args.parity,
        credentials,
        gc_grace: Duration::from_secs(args.gc_grace_secs),
        multipart_expiry: Duration::from_secs(args.multipart_expiry_secs),
        region: args.region,
        domains: args.domains,
        scan: gateway::storage::ScanSchedule {
            interval: (args.scan_interval_secs > 0)
                .then(|| Duration::from_secs(args.scan_interval_secs)),
            bytes_per_sec: args.scan_bandwidth_mib << 20,
        },
        disk_check_interval: Duration::from_secs(args.disk_check_secs.max(1)),
    })
}

fn root_credentials() -> Result<Credentials, String> {
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    Credentials::from_env_values(env("TESSERA_ROOT_USER"), env("TESSERA_ROOT_PASSWORD"))
}

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off"));
    // Colour codes only for a terminal: log files and collectors get plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    let result = match cli.command {
        Command::Serve(args) => serve_config(args).and_then(|cfg| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(gateway::server::serve(cfg))
        }),
        Command::Admin(args) => root_credentials().and_then(|creds| {
            let code = run_admin(&args.endpoint, creds, args.json, args.command)?;
            std::process::exit(code)
        }),
    };
    if let Err(e) = result {
        eprintln!("tessera: error: {e}");
        std::process::exit(1);
    }
}
