//! `tessera admin pool ...`, `rebalance ...` and `decommission ...`: the commands that call
//! the admin API's pool routes (`gateway/src/admin/pools.rs`).

use gateway::admin::ADMIN_PREFIX;
use serde_json::Value;

use super::client::{Client, query_value, show};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum PoolCommand {
    /// Lists the pools: state, layout, space and what each holds.
    List,
    /// Adds a pool of new, empty disks while the server runs: local directories of the
    /// gateway or storage node URLs, with ellipsis (`/mnt/new{1...4}`,
    /// `http://10.0.0.{7...12}:9100`).
    Add {
        #[arg(required = true, value_name = "SPEC")]
        disks: Vec<String>,
        /// Parity of the new pool's erasure sets (default: as at first start, by set size).
        #[arg(long)]
        parity: Option<usize>,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum RebalanceCommand {
    /// Moves chunks between pools until each is within 5% of the mean fill.
    Start {
        /// At most this many MiB of chunks moved per second (default: unthrottled).
        #[arg(long)]
        bandwidth_mib: Option<u64>,
    },
    /// Shows progress: chunks and bytes moved, rate, ETA.
    Status,
    /// Stops it; `start` begins again from the pools' state then.
    Stop,
}

fn mib(v: &Value) -> String {
    v.as_u64()
        .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}

pub(super) fn print_pools(pools: &Value) {
    out!(
        "{:>4}  {:<9} {:>5}  {:<7} {:>12} {:>12} {:>9} {:>6}",
        "pool",
        "state",
        "disks",
        "EC",
        "capacity",
        "held",
        "chunks",
        "fill"
    );
    for p in pools.as_array().into_iter().flatten() {
        out!(
            "{:>4}  {:<9} {:>5}  {:<7} {:>12} {:>12} {:>9} {:>6}",
            p["id"],
            p["state"].as_str().unwrap_or(""),
            p["disks"],
            format!("{}+{}", p["data"], p["parity"]),
            mib(&p["capacity"]),
            mib(&p["chunk_bytes"]),
            p["chunks"],
            p["fill"]
                .as_f64()
                .map_or("-".into(), |f| format!("{:.2}%", f * 100.0))
        );
        for d in p["disk_list"].as_array().into_iter().flatten() {
            out!(
                "        {} ({})",
                d["path"].as_str().unwrap_or(""),
                d["state"].as_str().unwrap_or("")
            );
        }
    }
}

pub(super) fn job_line(job: &Value) -> String {
    if job.is_null() {
        return "no rebalance or decommission has run".into();
    }
    let what = match job["kind"].as_str() {
        Some("decommission") => format!("decommission of pool {}", job["pool"]),
        _ => "rebalance".into(),
    };
    let state = match &job["state"] {
        Value::String(s) => s.clone(),
        other => other["failed"]
            .as_str()
            .map_or(other.to_string(), |why| format!("failed: {why}")),
    };
    let eta = job["eta_secs"]
        .as_u64()
        .map_or("-".into(), |s| format!("{s} s"));
    format!(
        "{what}: {state}, pass {}, {} chunk(s) / {} moved, {} failed, {}/s, {} left, ETA {eta}",
        job["pass"],
        job["chunks_moved"],
        mib(&job["bytes_moved"]),
        job["chunks_failed"],
        mib(&job["rate_bytes_per_sec"]),
        mib(&job["bytes_to_move"]),
    )
}

fn bandwidth(q: &mut Vec<String>, mib: Option<u64>) {
    if let Some(m) = mib {
        q.push(format!("bandwidth_mib={m}"));
    }
}

fn path(op: &str, q: &[String]) -> String {
    if q.is_empty() {
        format!("{ADMIN_PREFIX}{op}")
    } else {
        format!("{ADMIN_PREFIX}{op}?{}", q.join("&"))
    }
}

pub(super) async fn run_pool(client: &Client, json: bool, c: PoolCommand) -> Result<i32, String> {
    match c {
        PoolCommand::List => {
            let v = client.call("GET", &path("pools", &[])).await?;
            show(json, &v, print_pools);
        }
        PoolCommand::Add { disks, parity } => {
            let mut q: Vec<String> = disks
                .iter()
                .map(|d| format!("disk={}", query_value(d)))
                .collect();
            if let Some(p) = parity {
                q.push(format!("parity={p}"));
            }
            let v = client.call("POST", &path("pools", &q)).await?;
            show(json, &v, |p| {
                out!("pool {} added:", p["id"]);
                print_pools(&Value::Array(vec![p.clone()]));
            });
        }
    }
    Ok(0)
}

pub(super) async fn run_rebalance(
    client: &Client,
    json: bool,
    c: RebalanceCommand,
) -> Result<i32, String> {
    let v = match c {
        RebalanceCommand::Start { bandwidth_mib } => {
            let mut q = Vec::new();
            bandwidth(&mut q, bandwidth_mib);
            client.call("POST", &path("rebalance", &q)).await?
        }
        RebalanceCommand::Status => client.call("GET", &path("rebalance", &[])).await?,
        RebalanceCommand::Stop => client.call("DELETE", &path("rebalance", &[])).await?,
    };
    show(json, &v, |j| out!("{}", job_line(j)));
    Ok(0)
}

/// `decommission POOL | status | cancel`.
pub(super) async fn run_decommission(
    client: &Client,
    json: bool,
    target: &str,
    bandwidth_mib: Option<u64>,
) -> Result<i32, String> {
    let v = match target {
        "status" => client.call("GET", &path("decommission", &[])).await?,
        "cancel" => client.call("DELETE", &path("decommission", &[])).await?,
        pool => {
            let id: u32 = pool
                .parse()
                .map_err(|_| format!("{pool:?} is not a pool number, `status` or `cancel`"))?;
            let mut q = vec![format!("pool={id}")];
            bandwidth(&mut q, bandwidth_mib);
            client.call("POST", &path("decommission", &q)).await?
        }
    };
    show(json, &v, |j| out!("{}", job_line(j)));
    Ok(0)
}
