//! The check phase (issue 28's benchmark): fill a tessera with many 4 KiB objects, run 4 KiB
//! PUTs from 8 clients alone, then the same PUTs while `tessera admin check` runs back to
//! back, and report both rates. A check that held writers up would show in the second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Pattern, Result, S3};
use crate::server::Server;
use crate::workload::{self, OpStats, SmallOp};

/// The key sets: the objects the check counts, and the keys the measured PUTs overwrite.
const FILL_SET: usize = 28;
const PUT_SET: usize = 29;
const PUT_KEYS: usize = 1000;
const CLIENTS: usize = 8;

pub struct Figures {
    pub baseline: OpStats,
    pub during: OpStats,
    /// Checks run during the second measurement, and their mean duration.
    pub checks: u32,
    pub check_secs: f64,
}

/// PUTs for at least `secs`, and, with `check`, `admin check` back to back meanwhile (the
/// window ends with the first check to end after `secs`).
async fn puts_while(
    s3: &S3,
    pattern: &Pattern,
    server: &Server,
    secs: f64,
    check: bool,
) -> Result<(OpStats, u32, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let puts = {
        let (s3, pattern, stop) = (s3.clone(), pattern.clone(), stop.clone());
        tokio::spawn(async move {
            let keys = (PUT_SET, PUT_KEYS);
            workload::small_ops_until(&s3, &pattern, SmallOp::Put, keys, CLIENTS, stop).await
        })
    };
    let started = Instant::now();
    let (mut checks, mut check_time) = (0u32, Duration::ZERO);
    let outcome = async {
        if !check {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            return Ok(());
        }
        let adm = server.admin()?;
        while started.elapsed().as_secs_f64() < secs {
            let t = Instant::now();
            let report = adm.call(&["check", "--no-repair"]).await?;
            check_time += t.elapsed();
            checks += 1;
            let mismatched = report["refcounts"]["mismatched"]
                .as_array()
                .map_or(0, Vec::len);
            if mismatched > 0 {
                return Err(format!(
                    "the check found {mismatched} wrong counts: {report}"
                ));
            }
        }
        Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let stats = puts.await.map_err(|e| e.to_string())??;
    outcome?;
    let mean = check_time.as_secs_f64() / f64::from(checks.max(1));
    Ok((stats, checks, mean))
}

pub async fn run(
    s3: &S3,
    server: &Server,
    pattern: &Pattern,
    objects: usize,
    secs: f64,
) -> Result<Figures> {
    workload::small_ops(s3, pattern, SmallOp::Put, FILL_SET, objects, 16).await?;
    workload::small_ops(s3, pattern, SmallOp::Put, PUT_SET, PUT_KEYS, CLIENTS).await?;
    let (baseline, _, _) = puts_while(s3, pattern, server, secs, false).await?;
    let (during, checks, check_secs) = puts_while(s3, pattern, server, secs, true).await?;
    Ok(Figures {
        baseline,
        during,
        checks,
        check_secs,
    })
}
