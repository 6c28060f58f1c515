//! The rebalance phase (issue 20's benchmark): fill a tessera on local disks, measure 4 KiB
//! GET latency, add a second pool as large as the first, rebalance unthrottled while the same
//! GETs run, and report the move rate and both latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::client::{Pattern, Result, S3};
use crate::server::{Admin, Server};
use crate::workload::{self, OpStats, SmallOp};

/// The key set of the small objects read during the phase.
const SMALL_SET: usize = 900;
const SMALL_KEYS: usize = 1000;
const GET_CLIENTS: usize = 4;
const LARGE: u64 = 16 << 20;
/// How often `rebalance status` is asked (the "during" window ends at most this late).
const POLL: Duration = Duration::from_millis(250);

pub struct Figures {
    pub moved_bytes: u64,
    /// Chunk bytes moved (before erasure coding) over the job's run time, in 10^6 B/s.
    pub rate_mb_s: f64,
    pub baseline: OpStats,
    pub during: OpStats,
}

/// GETs run until `done` says so; `rebalance status` is polled every [`POLL`] meanwhile in both
/// measurements, so its own cost weighs on both alike. Returns the GET figures and the last
/// status.
async fn gets_while(
    s3: &S3,
    pattern: &Pattern,
    adm: &Admin,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> Result<(OpStats, serde_json::Value)> {
    let stop = Arc::new(AtomicBool::new(false));
    let gets = {
        let (s3, pattern, stop) = (s3.clone(), pattern.clone(), stop.clone());
        tokio::spawn(async move {
            let keys = (SMALL_SET, SMALL_KEYS);
            workload::small_ops_until(&s3, &pattern, SmallOp::Get, keys, GET_CLIENTS, stop).await
        })
    };
    let status = loop {
        tokio::time::sleep(POLL).await;
        let status = adm.call(&["rebalance", "status"]).await;
        match status {
            Ok(s) if !done(&s) => continue,
            other => {
                stop.store(true, Ordering::Relaxed);
                break other;
            }
        }
    };
    let stats = gets.await.map_err(|e| e.to_string())??;
    Ok((stats, status?))
}

pub async fn run(
    s3: &S3,
    server: &Server,
    pattern: &Pattern,
    fill_bytes: u64,
    baseline_secs: f64,
) -> Result<Figures> {
    let adm = server.admin()?;
    workload::put_many(
        s3,
        pattern,
        "rebalance",
        fill_bytes.div_ceil(LARGE),
        LARGE,
        4,
    )
    .await?;
    workload::small_ops(s3, pattern, SmallOp::Put, SMALL_SET, SMALL_KEYS, 8).await?;
    let started = std::time::Instant::now();
    let (baseline, _) = gets_while(s3, pattern, &adm, |_| {
        started.elapsed().as_secs_f64() >= baseline_secs
    })
    .await?;

    server.add_local_pool()?;
    adm.call(&["rebalance", "start"]).await?;
    let (during, job) = gets_while(s3, pattern, &adm, |s| s["state"] != "running").await?;
    if job["state"] != "finished" {
        return Err(format!("the rebalance did not finish: {job}"));
    }
    let moved_bytes = job["bytes_moved"].as_u64().unwrap_or(0);
    let (Some(start), Some(end)) = (job["started_ms"].as_i64(), job["finished_ms"].as_i64()) else {
        return Err(format!("the rebalance status lacks its times: {job}"));
    };
    let secs = ((end - start) as f64 / 1000.0).max(0.001);
    Ok(Figures {
        moved_bytes,
        rate_mb_s: moved_bytes as f64 / 1e6 / secs,
        baseline,
        during,
    })
}
