//! The `tessera` command: `serve`, `node` and `admin`. This crate holds the command line and
//! configuration, start-up wiring and shutdown, and the admin client; the work is done by the
//! library crates (gateway, objects, cluster, iam, metastore, erasure).

mod admin;
mod banner;
mod config;
mod ellipsis;
mod etcd;
mod local_meta;
mod node;
mod pools;
mod server;

use admin::{AdminCommand, run_admin};
use clap::{Parser, Subcommand};
use config::{Credentials, EnvSettings, FileConfig, LogFormat, ServeArgs, ServeConfig};

/// jemalloc rather than glibc malloc: with many threads glibc keeps per-thread arenas whose
/// freed memory stays resident (peak RSS during 8 parallel 1 GiB PUTs: see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "S3-compatible object storage on erasure-coded, deduplicated chunks"
)]
struct Cli {
    /// Log lines as human-readable text or as one JSON object per line [default: text].
    /// Level: RUST_LOG.
    #[arg(long, global = true, value_enum, env = "TESSERA_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve S3 from one or more directories (disks) and/or storage nodes (`--node URL`).
    /// `DIR` and `URL` accept ranges: /data{1...4}, http://10.0.0.{1...6}:9100.
    Serve(Box<ServeArgs>),
    /// Serve the shards of one or more directories to tessera gateways (storage node). Needs
    /// TESSERA_CLUSTER_SECRET, the same as the gateway's.
    Node(NodeArgs),
    /// Administer a running server through its admin API (root credentials from
    /// TESSERA_ROOT_USER / TESSERA_ROOT_PASSWORD, else the development defaults).
    Admin(AdminArgs),
    /// Asks a running server whether it is alive (or, with --ready, ready) and exits 0 if so:
    /// a health check for images without curl (Docker HEALTHCHECK).
    Health(HealthArgs),
}

#[derive(clap::Args)]
struct HealthArgs {
    /// The server's S3 endpoint.
    #[arg(
        long,
        env = "TESSERA_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint: String,
    /// Ask for readiness (every erasure set has its write quorum; the active gateway on
    /// etcd) rather than liveness.
    #[arg(long)]
    ready: bool,
    /// With an https:// endpoint: trust the CA certificates of FILE (PEM) instead of the
    /// system's.
    #[arg(long, env = "TESSERA_CA_BUNDLE", value_name = "FILE")]
    ca_bundle: Option<std::path::PathBuf>,
}

/// `tessera health`: exit 0 when the probe answers 200.
fn run_health(args: &HealthArgs) -> Result<i32, String> {
    if let Some(ca) = &args.ca_bundle {
        cluster::tls::trust_only(ca)?;
    }
    let endpoint: http::Uri = args
        .endpoint
        .parse()
        .map_err(|e| format!("invalid endpoint {}: {e}", args.endpoint))?;
    let authority = endpoint
        .authority()
        .ok_or_else(|| format!("endpoint {} has no host", args.endpoint))?
        .clone();
    let path = if args.ready {
        "/.tessera/health/ready"
    } else {
        "/.tessera/health/live"
    };
    let request = http::Request::get(path)
        .header(http::header::HOST, authority.as_str())
        .body(http_body_util::Empty::new())
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (status, body) = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            admin::exchange(&endpoint, request),
        )
        .await
        .map_err(|_| format!("{authority} did not answer within 5 s"))?
    })?;
    println!(
        "{} {}",
        status.as_u16(),
        String::from_utf8_lossy(&body).trim()
    );
    Ok(if status == http::StatusCode::OK { 0 } else { 1 })
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Address to listen on.
    #[arg(long, env = "TESSERA_NODE_ADDRESS", default_value = "0.0.0.0:9100")]
    address: std::net::SocketAddr,
    /// Serve HTTPS with `public.crt` and `private.key` of DIR, reloaded when they change
    /// (gateways then name this node https://HOST:PORT) [default: plain HTTP].
    #[arg(long, env = "TESSERA_CERTS_DIR", value_name = "DIR")]
    certs_dir: Option<std::path::PathBuf>,
    /// Directories to serve, one per disk. Ranges: /data{1...4}.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<String>,
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
    /// With an https:// endpoint: trust the CA certificates of FILE (PEM) instead of the
    /// system's.
    #[arg(long, global = true, env = "TESSERA_CA_BUNDLE", value_name = "FILE")]
    ca_bundle: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A secret from the environment: from here on only a redacting, zeroizing [`SecretString`].
fn secret_var(name: &str) -> Option<secrecy::SecretString> {
    env_var(name).map(secrecy::SecretString::from)
}

fn root_credentials() -> Result<Credentials, String> {
    Credentials::from_env_values(
        env_var("TESSERA_ROOT_USER"),
        secret_var("TESSERA_ROOT_PASSWORD"),
    )
}

fn serve_config(args: ServeArgs, log_format: Option<LogFormat>) -> Result<ServeConfig, String> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    args.resolve(
        file,
        EnvSettings {
            root_user: env_var("TESSERA_ROOT_USER"),
            root_password: secret_var("TESSERA_ROOT_PASSWORD"),
            log_format,
            cluster_secret: secret_var("TESSERA_CLUSTER_SECRET"),
            previous_root_password: secret_var("TESSERA_PREVIOUS_ROOT_PASSWORD"),
        },
    )
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off"));
    // Colour codes only for a terminal: log files and collectors get plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

fn fail(e: String) -> ! {
    eprintln!("tessera: error: {e}");
    std::process::exit(1);
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            // The config file is read before logging starts, since it may choose the format.
            let cfg = serve_config(*args, cli.log_format).unwrap_or_else(|e| fail(e));
            init_logging(cfg.log_format);
            let served = tokio::runtime::Builder::new_multi_thread()
                // File I/O, hashing and RocksDB run on the blocking pool. A bounded pool
                // queues work beyond what the cores and disks can do anyway, instead of
                // growing hundreds of threads, each with its own allocator cache.
                .max_blocking_threads(64)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(server::serve(cfg)));
            if let Err(e) = served {
                fail(e);
            }
        }
        Command::Node(args) => {
            init_logging(cli.log_format.unwrap_or_default());
            let mut dirs = Vec::new();
            for d in &args.dirs {
                dirs.extend(
                    config::expand_ellipsis(d)
                        .unwrap_or_else(|e| fail(e))
                        .into_iter()
                        .map(std::path::PathBuf::from),
                );
            }
            let secret = secret_var("TESSERA_CLUSTER_SECRET")
                .unwrap_or_else(|| secrecy::SecretString::from(""));
            let served = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| {
                    rt.block_on(node::run_node(args.address, dirs, secret, args.certs_dir))
                });
            if let Err(e) = served {
                fail(e);
            }
        }
        Command::Health(args) => {
            let code = run_health(&args).unwrap_or_else(|e| fail(e));
            std::process::exit(code)
        }
        Command::Admin(args) => {
            init_logging(cli.log_format.unwrap_or_default());
            if let Some(ca) = &args.ca_bundle {
                cluster::tls::trust_only(ca).unwrap_or_else(|e| fail(e));
            }
            let code = root_credentials()
                .and_then(|creds| run_admin(&args.endpoint, creds, args.json, args.command))
                .unwrap_or_else(|e| fail(e));
            std::process::exit(code)
        }
    }
}
