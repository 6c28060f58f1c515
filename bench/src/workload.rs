//! The benchmark's phases. Each runs against one server and returns its figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Pattern, Result, S3};

pub const BUCKET: &str = "bench";
pub const LIST_BUCKET: &str = "bench-list";
pub const SMALL: u64 = 4096;

/// Sizes and counts of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub large_bytes: u64,
    pub small_ops: usize,
    pub list_keys: usize,
    pub list_secs: f64,
    pub dedup_bytes: u64,
    pub parallel_puts: usize,
    pub parallel_bytes: u64,
}

/// Transfer rate in MB/s (10^6 bytes per second, the unit of the targets).
pub fn mb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// Throughput of `streams` concurrent PUTs of `size` bytes each.
pub async fn put_streams(
    s3: &S3,
    pattern: &Pattern,
    prefix: &str,
    seed: u64,
    streams: usize,
    size: u64,
) -> Result<f64> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let (s3, pattern) = (s3.clone(), pattern.clone());
            let key = format!("{prefix}-{i}");
            tokio::spawn(async move { s3.put(BUCKET, &key, &pattern, seed + i as u64, size).await })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(mb_per_sec(size * streams as u64, started.elapsed()))
}

/// Throughput of `streams` concurrent GETs of the objects [`put_streams`] wrote.
pub async fn get_streams(s3: &S3, prefix: &str, streams: usize, size: u64) -> Result<f64> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let s3 = s3.clone();
            let key = format!("{prefix}-{i}");
            tokio::spawn(async move { s3.get(BUCKET, &key).await })
        })
        .collect();
    for t in tasks {
        let got = t.await.map_err(|e| e.to_string())??;
        if got != size {
            return Err(format!("GET {prefix}-*: {got} bytes, expected {size}"));
        }
    }
    Ok(mb_per_sec(size * streams as u64, started.elapsed()))
}

/// Ops per second and latency percentiles of a small-object phase.
#[derive(Debug, Clone, Copy)]
pub struct OpStats {
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallOp {
    Put,
    Get,
    Head,
    Delete,
}

/// `ops` operations on keys `small-{set}-{i}`, by `clients` concurrent workers.
pub async fn small_ops(
    s3: &S3,
    pattern: &Pattern,
    op: SmallOp,
    set: usize,
    ops: usize,
    clients: usize,
) -> Result<OpStats> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (s3, pattern, next) = (s3.clone(), pattern.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ops {
                        return Ok::<_, String>(latencies);
                    }
                    let key = format!("small-{set}-{i}");
                    let t = Instant::now();
                    match op {
                        SmallOp::Put => {
                            s3.put(BUCKET, &key, &pattern, (set * 1_000_000 + i) as u64, SMALL)
                                .await?
                        }
                        SmallOp::Get => {
                            let n = s3.get(BUCKET, &key).await?;
                            if n != SMALL {
                                return Err(format!("GET {key}: {n} bytes"));
                            }
                        }
                        SmallOp::Head => s3.head(BUCKET, &key).await?,
                        SmallOp::Delete => s3.delete(BUCKET, &key).await?,
                    }
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(ops);
    for w in workers {
        all.extend(w.await.map_err(|e| e.to_string())??);
    }
    Ok(OpStats::of(all, started.elapsed()))
}

impl OpStats {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        OpStats {
            ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        }
    }
}

/// 4 KiB operations on the keys `small-{set}-{0..keys}` (written by [`small_ops`]), round
/// robin by `clients` workers, until `stop` is set. PUTs overwrite those keys.
pub async fn small_ops_until(
    s3: &S3,
    pattern: &Pattern,
    op: SmallOp,
    (set, keys): (usize, usize),
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Result<OpStats> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (s3, pattern, next, stop) =
                (s3.clone(), pattern.clone(), next.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let key = format!("small-{set}-{}", n % keys);
                    let t = Instant::now();
                    match op {
                        SmallOp::Get => {
                            let got = s3.get(BUCKET, &key).await?;
                            if got != SMALL {
                                return Err(format!("GET {key}: {got} bytes"));
                            }
                        }
                        SmallOp::Put => {
                            s3.put(BUCKET, &key, &pattern, (set * 1_000_000 + n) as u64, SMALL)
                                .await?
                        }
                        SmallOp::Head => s3.head(BUCKET, &key).await?,
                        SmallOp::Delete => {
                            return Err("DELETE until stopped runs out of keys".into());
                        }
                    }
                    latencies.push(t.elapsed());
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.map_err(|e| e.to_string())??);
    }
    Ok(OpStats::of(all, started.elapsed()))
}

/// Writes `count` objects `{prefix}-{i}` of `size` bytes, `streams` at a time.
pub async fn put_many(
    s3: &S3,
    pattern: &Pattern,
    prefix: &str,
    count: u64,
    size: u64,
    streams: usize,
) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..streams)
        .map(|_| {
            let (s3, pattern, next) = (s3.clone(), pattern.clone(), next.clone());
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as u64;
                    if i >= count {
                        return Ok::<_, String>(());
                    }
                    s3.put(
                        BUCKET,
                        &format!("{prefix}-{i}"),
                        &pattern,
                        20_000_000 + i,
                        size,
                    )
                    .await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Fills the listing bucket with `keys` small objects (8 writers).
pub async fn fill_list_bucket(s3: &S3, pattern: &Pattern, keys: usize) -> Result<()> {
    s3.create_bucket(LIST_BUCKET).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (s3, pattern, next) = (s3.clone(), pattern.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= keys {
                        return Ok::<_, String>(());
                    }
                    let key = format!("dir{:02}/obj{i:06}", i % 16);
                    s3.put(LIST_BUCKET, &key, &pattern, 7_000_000 + i as u64, 16)
                        .await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// ListObjectsV2 pages (1000 keys each) per second, listing the whole bucket repeatedly for
/// at least `secs`.
pub async fn list_pages(s3: &S3, expected_keys: usize, secs: f64) -> Result<f64> {
    let started = Instant::now();
    let mut pages = 0;
    loop {
        let (mut keys, mut token) = (0, None);
        loop {
            let (n, next) = s3.list_page(LIST_BUCKET, token.as_deref()).await?;
            pages += 1;
            keys += n;
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        if keys != expected_keys {
            return Err(format!(
                "listing found {keys} keys, expected {expected_keys}"
            ));
        }
        if started.elapsed().as_secs_f64() >= secs {
            return Ok(pages as f64 / started.elapsed().as_secs_f64());
        }
    }
}
