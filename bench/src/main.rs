//! `tessera-bench`: drives one or two S3 servers through the same workload, phase by phase
//! and interleaved (each phase runs on every server before the next begins, so both see the
//! same machine state), then prints a table with ratios and writes the figures as JSON.
//!
//! ```text
//! cargo run --release -p tessera-bench -- --target tessera --vs s3s-fs
//! ```

mod check;
mod client;
mod garage;
mod rebalance;
mod scaling;
mod server;
mod workload;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde::Serialize;

use client::{Pattern, S3};
use server::{ACCESS_KEY, SECRET_KEY, Server, Target};
use workload::{Plan, SmallOp};

#[derive(Parser)]
#[command(name = "tessera-bench", about = "S3 benchmark, side by side")]
struct Args {
    /// The server under test: `tessera`, `tessera:DISKS` (default 4 disks),
    /// `tessera-nodes:NODES` (a gateway over NODES loopback storage nodes of one disk each),
    /// `s3s-fs`, `garage` (single node, fsync on), `garage-nosync`, or an
    /// `http(s)://HOST:PORT` endpoint that is already running (several,
    /// comma-separated, are driven together: requests take them in turn).
    #[arg(long, default_value = "tessera")]
    target: String,
    /// A second server to run the same workload against, interleaved; ratios are target/vs.
    #[arg(long)]
    vs: Option<String>,
    /// The tessera binary to start [default: $CARGO_TARGET_DIR/release/tessera, else
    /// ~/.cache/tessera-target/release/tessera].
    #[arg(long)]
    tessera_bin: Option<PathBuf>,
    /// The s3s-fs binary to start (`cargo install s3s-fs --version 0.14.1 --features binary`).
    #[arg(long, default_value = "s3s-fs")]
    s3s_fs_bin: PathBuf,
    /// The Garage binary to start for `garage` and `garage-nosync` (`cargo install garage
    /// --version 2.5.0 --locked --root ~/.cache/garage`) [default: ~/.cache/garage/bin/garage].
    #[arg(long)]
    garage_bin: Option<PathBuf>,
    /// Where started servers keep their data (a real disk, not tmpfs) [default: a temporary
    /// directory under ~/.cache].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// For `https://` targets: trust the CA certificates of FILE (PEM) instead of the
    /// system's.
    #[arg(long, value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Access key and secret for `http://` targets.
    #[arg(long, default_value = ACCESS_KEY)]
    access_key: String,
    #[arg(long, default_value = SECRET_KEY)]
    secret_key: String,
    /// Size of each large object.
    #[arg(long, default_value_t = 256)]
    large_mib: u64,
    /// Operations per small-object phase.
    #[arg(long, default_value_t = 2000)]
    small_ops: usize,
    /// Keys in the listing bucket.
    #[arg(long, default_value_t = 10_000)]
    list_keys: usize,
    /// Seconds of listing.
    #[arg(long, default_value_t = 3.0)]
    list_secs: f64,
    /// Size of the object uploaded twice for the dedup phase (0: skip).
    #[arg(long, default_value_t = 1024)]
    dedup_mib: u64,
    /// Concurrent large PUTs of the memory phase (0: skip).
    #[arg(long, default_value_t = 8)]
    parallel_puts: usize,
    /// Size of each of those PUTs.
    #[arg(long, default_value_t = 1024)]
    parallel_mib: u64,
    /// After the other phases, restart each tessera started here without `parity` of its
    /// disks and time the large GET again.
    #[arg(long)]
    degraded: bool,
    /// Data written before the rebalance phase adds a second pool and rebalances (tessera on
    /// local disks only).
    #[arg(long, default_value_t = 2048)]
    rebalance_mib: u64,
    /// Seconds of 4 KiB GETs without a rebalance, the reference for those during it.
    #[arg(long, default_value_t = 10.0)]
    rebalance_baseline_secs: f64,
    /// Objects stored before the check phase runs `tessera admin check` during 4 KiB PUTs.
    #[arg(long, default_value_t = 100_000)]
    check_objects: usize,
    /// Seconds of 4 KiB PUTs without a check, and at least as long with checks.
    #[arg(long, default_value_t = 20.0)]
    check_secs: f64,
    /// Client counts of the scaling phase's large PUT and GET (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    scaling_clients: Vec<usize>,
    /// Size of the object each of those clients writes and reads.
    #[arg(long, default_value_t = 64)]
    scaling_mib: u64,
    /// Client counts of the scaling phase's 4 KiB PUT (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    scaling_small_clients: Vec<usize>,
    /// Phases to run (comma-separated): large, small, list, dedup, parallel; scaling, and
    /// rebalance and check (tessera only), are not run unless named.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "large,small,list,dedup,parallel"
    )]
    phases: Vec<String>,
    /// Encrypt everything the target stores (SSE-S3, by its bucket's default encryption), so
    /// that `--vs` of the same server shows what encryption costs.
    #[arg(long)]
    encrypt_target: bool,
    /// Start the `--vs` tessera servers with `--compression off`, so that `--vs` of the same
    /// server shows what compression costs and saves.
    #[arg(long)]
    uncompressed_vs: bool,
    /// Object contents: `random` (incompressible) or `text` (log lines, compressible).
    #[arg(long, default_value = "random")]
    payload: String,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "bench-results.json")]
    json: PathBuf,
}

/// One line of the results table: a figure per server.
#[derive(Serialize)]
struct Row {
    phase: String,
    unit: &'static str,
    values: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct Report {
    servers: Vec<String>,
    plan: String,
    rows: Vec<Row>,
}

impl Report {
    fn set(&mut self, phase: &str, unit: &'static str, server: usize, value: f64) {
        let n = self.servers.len();
        let row = match self.rows.iter_mut().position(|r| r.phase == phase) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    phase: phase.into(),
                    unit,
                    values: vec![None; n],
                });
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.values[server] = Some(value);
        eprintln!("  {:<12} {phase}: {value:.2} {unit}", self.servers[server]);
    }

    fn print(&self) {
        let mut header = format!("{:<44} {:<7}", "phase", "unit");
        for s in &self.servers {
            header.push_str(&format!(" {s:>12}"));
        }
        if self.servers.len() == 2 {
            header.push_str(&format!(" {:>8}", "ratio"));
        }
        println!("{header}");
        println!("{}", "-".repeat(header.len()));
        for r in &self.rows {
            let mut line = format!("{:<44} {:<7}", r.phase, r.unit);
            for v in &r.values {
                line.push_str(&match v {
                    Some(v) => format!(" {v:>12.2}"),
                    None => format!(" {:>12}", "-"),
                });
            }
            if let [Some(a), Some(b)] = r.values[..]
                && b != 0.0
            {
                line.push_str(&format!(" {:>8.2}", a / b));
            }
            println!("{line}");
        }
    }
}

fn reset_peaks(servers: &[Server]) {
    for s in servers {
        s.reset_peak_rss();
    }
}

/// Peak RSS of each started server since the last [`reset_peaks`].
fn read_peaks(report: &mut Report, servers: &[Server], phase: &str) {
    for (i, s) in servers.iter().enumerate() {
        if let Some(rss) = s.peak_rss() {
            report.set(
                &format!("server peak RSS: {phase} phase"),
                "MiB",
                i,
                rss as f64 / MIB as f64,
            );
        }
    }
}

fn default_tessera_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/tessera-target")
        });
    target.join("release/tessera")
}

const MIB: u64 = 1 << 20;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("tessera-bench: error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let tessera_bin = args.tessera_bin.clone().unwrap_or_else(default_tessera_bin);
    let work = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            tempfile::Builder::new().prefix("run-").tempdir_in(d)
        }
        None => {
            let base = PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache");
            std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
            tempfile::Builder::new()
                .prefix("tessera-bench-")
                .tempdir_in(base)
        }
    }
    .map_err(|e| e.to_string())?;
    let mut specs = vec![args.target.clone()];
    specs.extend(args.vs.clone());
    let mut servers = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let garage_bin = args.garage_bin.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/garage/bin/garage")
        });
        let target = Target::parse(spec, (&tessera_bin, &args.s3s_fs_bin, &garage_bin))?;
        let name = if specs.iter().filter(|s| *s == spec).count() > 1 {
            format!("{spec}#{}", i + 1)
        } else {
            spec.clone()
        };
        let name = if i == 0 && args.encrypt_target {
            format!("{name}+sse")
        } else {
            name
        };
        let (name, env) = if i > 0 && args.uncompressed_vs {
            let off = vec![("TESSERA_COMPRESSION".to_owned(), "off".to_owned())];
            (format!("{name}-nozstd"), off)
        } else {
            (name, Vec::new())
        };
        servers.push(Server::start(target, &name, work.path(), env)?);
    }
    let clients = servers
        .iter()
        .map(|s| {
            let (ak, sk) = if s.is_external() {
                (args.access_key.as_str(), args.secret_key.as_str())
            } else {
                (s.access_key.as_str(), s.secret_key.as_str())
            };
            S3::new(&s.url, ak, sk, args.ca_bundle.as_deref())
        })
        .collect::<Result<Vec<_>, _>>()?;
    for c in &clients {
        c.create_bucket(workload::BUCKET).await?;
    }
    if args.encrypt_target {
        clients[0].encrypt_by_default(workload::BUCKET).await?;
    }
    let plan = Plan {
        large_bytes: args.large_mib * MIB,
        small_ops: args.small_ops,
        list_keys: args.list_keys,
        list_secs: args.list_secs,
        dedup_bytes: args.dedup_mib * MIB,
        parallel_puts: args.parallel_puts,
        parallel_bytes: args.parallel_mib * MIB,
    };
    let mut report = Report {
        servers: servers.iter().map(|s| s.name.clone()).collect(),
        plan: format!("{plan:?}"),
        rows: Vec::new(),
    };
    let pattern = match args.payload.as_str() {
        "random" => Pattern::new(),
        "text" => Pattern::text(),
        other => return Err(format!("--payload {other}: random or text")),
    };
    let phase = |name: &str| args.phases.iter().any(|p| p == name);
    let started = Instant::now();

    if phase("large") {
        reset_peaks(&servers);
        for streams in [1, 4] {
            let prefix = format!("large{streams}");
            let what = format!("large PUT, {streams} stream(s) x {} MiB", args.large_mib);
            // Two rounds in opposite orders, each server's figure the mean of its two: on one
            // machine the server driven second got 1.3-1.6x the first's rate with identical
            // binaries (BENCHMARKS, "Memory"), which one order alone would put in the ratio.
            let rounds = if clients.len() > 1 { 2 } else { 1 };
            let mut sums = vec![0.0; clients.len()];
            for round in 0..rounds {
                let order: Vec<usize> = match round {
                    0 => (0..clients.len()).collect(),
                    _ => (0..clients.len()).rev().collect(),
                };
                for i in order {
                    let v = workload::put_streams(
                        &clients[i],
                        &pattern,
                        &format!("{prefix}{}", ["", "-again"][round]),
                        1000 * streams as u64 + 500 * round as u64,
                        streams,
                        plan.large_bytes,
                    )
                    .await?;
                    if rounds > 1 {
                        report.set(&format!("{what}, round {}", round + 1), "MB/s", i, v);
                    }
                    sums[i] += v;
                }
            }
            for (i, sum) in sums.into_iter().enumerate() {
                report.set(&what, "MB/s", i, sum / rounds as f64);
            }
            for (i, c) in clients.iter().enumerate() {
                let v = workload::get_streams(c, &prefix, streams, plan.large_bytes).await?;
                report.set(
                    &format!("large GET, {streams} stream(s) x {} MiB", args.large_mib),
                    "MB/s",
                    i,
                    v,
                );
            }
        }
    }

    if phase("large") {
        read_peaks(&mut report, &servers, "large");
    }

    if phase("small") {
        reset_peaks(&servers);
        let ops = [
            (SmallOp::Put, "PUT"),
            (SmallOp::Get, "GET"),
            (SmallOp::Head, "HEAD"),
            (SmallOp::Delete, "DELETE"),
        ];
        for (op, label) in ops {
            for clients_n in [1, 8] {
                for (i, c) in clients.iter().enumerate() {
                    // Each client count works on its own key set, so DELETE finds every key.
                    let s =
                        workload::small_ops(c, &pattern, op, clients_n, plan.small_ops, clients_n)
                            .await?;
                    let what = format!("4 KiB {label}, {clients_n} client(s)");
                    report.set(&what, "ops/s", i, s.ops_per_sec);
                    report.set(&format!("{what} p50"), "ms", i, s.p50_ms);
                    report.set(&format!("{what} p99"), "ms", i, s.p99_ms);
                }
            }
        }
    }

    if phase("small") {
        read_peaks(&mut report, &servers, "small");
    }

    if phase("list") {
        reset_peaks(&servers);
        for (i, c) in clients.iter().enumerate() {
            let t = Instant::now();
            workload::fill_list_bucket(c, &pattern, plan.list_keys).await?;
            report.set(
                &format!("fill: {} x 16 B PUT, 8 clients", plan.list_keys),
                "ops/s",
                i,
                plan.list_keys as f64 / t.elapsed().as_secs_f64(),
            );
        }
        for (i, c) in clients.iter().enumerate() {
            let v = workload::list_pages(c, plan.list_keys, plan.list_secs).await?;
            report.set(
                &format!("LIST pages of 1000, bucket of {}", plan.list_keys),
                "ops/s",
                i,
                v,
            );
        }
    }

    if phase("list") {
        read_peaks(&mut report, &servers, "list");
    }

    if phase("dedup") && plan.dedup_bytes > 0 {
        reset_peaks(&servers);
        for (i, (c, s)) in clients.iter().zip(&servers).enumerate() {
            let before = s.disk_bytes();
            let t = Instant::now();
            c.put(
                workload::BUCKET,
                "dedup-first",
                &pattern,
                9_000_000,
                plan.dedup_bytes,
            )
            .await?;
            let first = t.elapsed();
            let middle = s.disk_bytes();
            let t = Instant::now();
            c.put(
                workload::BUCKET,
                "dedup-again",
                &pattern,
                9_000_000,
                plan.dedup_bytes,
            )
            .await?;
            let again = t.elapsed();
            let after = s.disk_bytes();
            let mib = args.dedup_mib;
            report.set(
                &format!("dedup: first PUT of {mib} MiB"),
                "MB/s",
                i,
                workload::mb_per_sec(plan.dedup_bytes, first),
            );
            report.set(
                &format!("dedup: same {mib} MiB again"),
                "MB/s",
                i,
                workload::mb_per_sec(plan.dedup_bytes, again),
            );
            report.set(
                "dedup: speed-up of the second PUT",
                "x",
                i,
                first.as_secs_f64() / again.as_secs_f64(),
            );
            if let (Some(b), Some(m), Some(a)) = (before, middle, after) {
                report.set(
                    "dedup: disk growth, first PUT",
                    "% obj",
                    i,
                    m.saturating_sub(b) as f64 * 100.0 / plan.dedup_bytes as f64,
                );
                report.set(
                    "dedup: disk growth, second PUT",
                    "% obj",
                    i,
                    a.saturating_sub(m) as f64 * 100.0 / plan.dedup_bytes as f64,
                );
            }
        }
    }

    if phase("dedup") && plan.dedup_bytes > 0 {
        read_peaks(&mut report, &servers, "dedup");
    }

    if phase("parallel") && plan.parallel_puts > 0 && plan.parallel_bytes > 0 {
        reset_peaks(&servers);
        for (i, c) in clients.iter().enumerate() {
            let v = workload::put_streams(
                c,
                &pattern,
                "parallel",
                5_000_000,
                plan.parallel_puts,
                plan.parallel_bytes,
            )
            .await?;
            report.set(
                &format!(
                    "{} parallel PUTs x {} MiB",
                    plan.parallel_puts, args.parallel_mib
                ),
                "MB/s",
                i,
                v,
            );
        }
    }

    if phase("parallel") && plan.parallel_puts > 0 && plan.parallel_bytes > 0 {
        read_peaks(&mut report, &servers, "parallel PUTs");
    }

    if phase("scaling") {
        let plan = scaling::Plan {
            large_clients: args.scaling_clients.clone(),
            large_bytes: args.scaling_mib * MIB,
            small_clients: args.scaling_small_clients.clone(),
            small_ops: args.small_ops,
        };
        let mut set = |phase: &str, unit, i, v| report.set(phase, unit, i, v);
        scaling::run(&clients, &pattern, &plan, &mut set).await?;
    }

    if phase("check") {
        for (i, (c, s)) in clients.iter().zip(&servers).enumerate() {
            if s.admin().is_err() {
                eprintln!(
                    "  {:<12} check: skipped (a tessera started here only)",
                    s.name
                );
                continue;
            }
            let f = check::run(c, s, &pattern, args.check_objects, args.check_secs).await?;
            let n = args.check_objects;
            report.set(
                &format!("check: checks of {n} objects run"),
                "count",
                i,
                f64::from(f.checks),
            );
            report.set(
                &format!("check: one check of {n} objects"),
                "s",
                i,
                f.check_secs,
            );
            for (when, stats) in [("without check", &f.baseline), ("during checks", &f.during)] {
                let what = format!("check: 4 KiB PUT, 8 clients, {when}");
                report.set(&what, "ops/s", i, stats.ops_per_sec);
                report.set(&format!("{what} p99"), "ms", i, stats.p99_ms);
            }
            report.set(
                "check: PUT rate during checks / without",
                "x",
                i,
                f.during.ops_per_sec / f.baseline.ops_per_sec,
            );
        }
    }

    if phase("rebalance") {
        for (i, (c, s)) in clients.iter().zip(&servers).enumerate() {
            if !s.is_local_tessera() {
                eprintln!(
                    "  {:<12} rebalance: skipped (tessera on local disks only)",
                    s.name
                );
                continue;
            }
            let r = rebalance::run(
                c,
                s,
                &pattern,
                args.rebalance_mib * MIB,
                args.rebalance_baseline_secs,
            )
            .await?;
            report.set(
                "rebalance: chunk data moved",
                "MiB",
                i,
                r.moved_bytes as f64 / MIB as f64,
            );
            report.set("rebalance: unthrottled rate", "MB/s", i, r.rate_mb_s);
            for (label, st) in [
                ("without rebalance", r.baseline),
                ("during rebalance", r.during),
            ] {
                report.set(
                    &format!("4 KiB GET, 4 clients, {label}"),
                    "ops/s",
                    i,
                    st.ops_per_sec,
                );
                report.set(
                    &format!("4 KiB GET, 4 clients, {label} p50"),
                    "ms",
                    i,
                    st.p50_ms,
                );
                report.set(
                    &format!("4 KiB GET, 4 clients, {label} p99"),
                    "ms",
                    i,
                    st.p99_ms,
                );
            }
        }
    }

    if args.degraded && phase("large") {
        for (i, s) in servers.iter_mut().enumerate() {
            let Some(m) = s.tessera_parity().filter(|m| *m > 0) else {
                continue;
            };
            s.restart_without_disks(m)?;
            let v = workload::get_streams(&clients[i], "large1", 1, plan.large_bytes).await?;
            report.set(
                &format!("degraded GET ({m} disks missing), 1 stream"),
                "MB/s",
                i,
                v,
            );
        }
    }

    println!();
    println!(
        "tessera-bench: {} in {:.0} s; data under {}",
        report.servers.join(" vs "),
        started.elapsed().as_secs_f64(),
        work.path().display()
    );
    println!();
    report.print();
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&args.json, json).map_err(|e| format!("{}: {e}", args.json.display()))?;
    println!();
    println!("figures written to {}", args.json.display());
    for mut s in servers {
        s.stop();
    }
    Ok(())
}
