//! The scaling phase (issue 26, item 4): large PUT and GET with 1 to 16 concurrent clients,
//! and 4 KiB PUTs with 1 to 64, each client count run on every server before the next, so the
//! curves of both servers come from the same machine state. `bench/plot_scaling.py` draws the
//! rows as PNG.

use crate::client::{Pattern, Result, S3};
use crate::workload::{self, SmallOp};

/// What one run of the phase does.
pub struct Plan {
    /// Client counts of the large PUT and GET.
    pub large_clients: Vec<usize>,
    /// Bytes each large client writes, then reads.
    pub large_bytes: u64,
    /// Client counts of the 4 KiB PUT.
    pub small_clients: Vec<usize>,
    /// 4 KiB PUTs per client count.
    pub small_ops: usize,
}

/// The key set of the 4 KiB PUTs with `clients` clients: apart from the small phase's sets.
fn small_set(clients: usize) -> usize {
    600 + clients
}

/// Runs the phase and hands each figure to `set(phase, unit, server, value)`.
pub async fn run(
    servers: &[S3],
    pattern: &Pattern,
    plan: &Plan,
    set: &mut dyn FnMut(&str, &'static str, usize, f64),
) -> Result<()> {
    let mib = plan.large_bytes >> 20;
    for &n in &plan.large_clients {
        let prefix = format!("scale{n}");
        for (i, s3) in servers.iter().enumerate() {
            let v = workload::put_streams(s3, pattern, &prefix, 40_000_000, n, plan.large_bytes)
                .await?;
            set(
                &format!("scaling: PUT, {n} client(s) x {mib} MiB"),
                "MB/s",
                i,
                v,
            );
        }
        for (i, s3) in servers.iter().enumerate() {
            let v = workload::get_streams(s3, &prefix, n, plan.large_bytes).await?;
            set(
                &format!("scaling: GET, {n} client(s) x {mib} MiB"),
                "MB/s",
                i,
                v,
            );
        }
    }
    for &n in &plan.small_clients {
        for (i, s3) in servers.iter().enumerate() {
            let s = workload::small_ops(s3, pattern, SmallOp::Put, small_set(n), plan.small_ops, n)
                .await?;
            let what = format!("scaling: 4 KiB PUT, {n} client(s)");
            set(&what, "ops/s", i, s.ops_per_sec);
            set(&format!("{what} p50"), "ms", i, s.p50_ms);
            set(&format!("{what} p99"), "ms", i, s.p99_ms);
        }
    }
    Ok(())
}
