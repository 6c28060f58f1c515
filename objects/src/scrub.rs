//! What the scanner's passes have verified, per erasure set, and how scheduled passes pace
//! themselves so that scrubbing is continuous and gentle.
//!
//! **Verified age.** A full pass that started at T and met every chunk of an erasure set whole
//! (every shard present and matching its checksum, or rewritten) proves that every shard of
//! that set older than T was good at some time after T. So a set's oldest unverified shard is
//! at most `now - T` old, T being the start of the last such clean pass. A set where some chunk
//! stayed incomplete (a disk offline, a rewrite failed) keeps its older T. The times are kept in
//! the metadata (setting `scrub`, versioned), so a restart does not forget them.
//!
//! **Pacing.** A scheduled pass reads at the rate that would finish it in [`TARGET_PASS`]
//! given the shard bytes stored, never below [`MIN_RATE`] and never above the operator's cap
//! (`--scan-bandwidth-mib`). Before each chunk it also waits, briefly and boundedly, while
//! client reads or writes are in flight, so foreground I/O goes first.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ObjectService, now_ms};
use crate::error::Result;

/// A scheduled pass aims to finish within this.
pub const TARGET_PASS: Duration = Duration::from_secs(6 * 24 * 3600);
/// Scheduled passes read at least this many shard bytes a second (small stores finish fast).
pub const MIN_RATE: u64 = 4 << 20;
/// The longest a scheduled pass waits for foreground I/O before each chunk.
const MAX_YIELD: Duration = Duration::from_millis(100);
const YIELD_STEP: Duration = Duration::from_millis(5);

/// The metadata setting that holds [`ScrubRecord`].
const SETTING: &str = "scrub";

/// Client reads and writes of chunks in flight (the scanner yields to them).
#[derive(Debug, Default)]
pub(crate) struct Foreground(AtomicUsize);

/// Counts one foreground chunk operation while it lives.
pub(crate) struct ForegroundGuard(Arc<Foreground>);

impl Foreground {
    pub(crate) fn enter(self: &Arc<Self>) -> ForegroundGuard {
        self.0.fetch_add(1, Relaxed);
        ForegroundGuard(self.clone())
    }

    fn busy(&self) -> bool {
        self.0.load(Relaxed) > 0
    }
}

impl Drop for ForegroundGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Relaxed);
    }
}

/// When each erasure set was last verified whole, by (pool, set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ScrubRecord {
    v: u32,
    /// `"POOL/SET"` -> start (ms) of the last pass that found that set whole.
    verified: BTreeMap<String, i64>,
}

/// One erasure set's scrub state, as `admin info` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SetScrub {
    pub pool: u32,
    pub set: usize,
    /// Start of the last full pass that found every shard of the set whole (ms).
    pub verified_since_ms: Option<i64>,
    /// Age of the oldest shard not verified since (seconds); `None` before the first pass.
    pub oldest_unverified_secs: Option<u64>,
}

/// The sets a pass found not whole, collected while it runs.
#[derive(Debug, Default)]
pub(crate) struct PassFindings {
    pub(crate) unclean: BTreeSet<(u32, usize)>,
}

fn key(pool: u32, set: usize) -> String {
    format!("{pool}/{set}")
}

impl ObjectService {
    /// Every erasure set of every pool with the age of its oldest unverified shard.
    pub async fn scrub_state(&self) -> Result<Vec<SetScrub>> {
        let record = self.scrub_record().await?;
        let now = now_ms();
        let mut out = Vec::new();
        for pool in self.pools.list() {
            for set in 0..pool.store.layout().sets() {
                let since = record.verified.get(&key(pool.id, set)).copied();
                out.push(SetScrub {
                    pool: pool.id,
                    set,
                    verified_since_ms: since,
                    oldest_unverified_secs: since.map(|t| ((now - t).max(0) / 1000) as u64),
                });
            }
        }
        Ok(out)
    }

    async fn scrub_record(&self) -> Result<ScrubRecord> {
        Ok(match self.meta.setting(SETTING).await? {
            // A record this version cannot read counts as no pass yet: ages show as unknown
            // until the next pass, which is the safe direction.
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => ScrubRecord::default(),
        })
    }

    /// Records a finished pass that started at `started_ms`: every set it did not find
    /// unclean is verified since then.
    pub(crate) async fn record_pass(&self, started_ms: i64, findings: &PassFindings) -> Result<()> {
        let mut record = self.scrub_record().await?;
        record.v = 1;
        for pool in self.pools.list() {
            for set in 0..pool.store.layout().sets() {
                if !findings.unclean.contains(&(pool.id, set)) {
                    record.verified.insert(key(pool.id, set), started_ms);
                }
            }
        }
        let bytes =
            serde_json::to_vec(&record).map_err(|e| crate::Error::Internal(e.to_string()))?;
        self.meta.put_setting(SETTING, bytes, true).await?;
        Ok(())
    }

    /// The read rate of a scheduled pass: enough to finish in [`TARGET_PASS`], within
    /// [`MIN_RATE`] and `cap`. A `cap` of 0 means unthrottled, as the operator asked (0).
    pub(crate) async fn scheduled_rate(&self, cap: u64) -> u64 {
        if cap == 0 {
            return 0;
        }
        let stored = self.meta.usage().await.map_or(0, |u| u.chunk_bytes);
        // Shard bytes: chunk bytes times the stripe's overhead (the widest of the pools;
        // close enough for pacing).
        let overhead = self
            .pools
            .list()
            .iter()
            .map(|p| {
                let l = p.store.layout();
                l.set_size as f64 / l.data().max(1) as f64
            })
            .fold(1.0, f64::max);
        let shard_bytes = (stored as f64 * overhead) as u64;
        (shard_bytes / TARGET_PASS.as_secs()).max(MIN_RATE).min(cap)
    }

    /// Waits, at most [`MAX_YIELD`], while client chunk reads or writes are in flight.
    pub(crate) async fn yield_to_foreground(&self) {
        let mut waited = Duration::ZERO;
        while self.foreground.busy() && waited < MAX_YIELD {
            tokio::time::sleep(YIELD_STEP).await;
            waited += YIELD_STEP;
        }
    }
}
