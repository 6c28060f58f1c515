//! Keeping every chunk at full redundancy.
//!
//! Three mechanisms, all built on [`erasure::ChunkStore::heal_chunk`]:
//! - the **heal queue** (persistent, in the metastore): chunks whose write could not place every
//!   shard; retried when a disk comes back and every minute;
//! - the **scanner**: a full pass over every stored chunk, verifying each shard's presence and
//!   checksum and rebuilding what is missing or corrupt; it runs on a schedule at a limited
//!   bandwidth, and at once (unthrottled) when an operator asks or a disk is replaced;
//! - the **orphan sweep**: shards on disk whose chunk the metadata does not know (left by a
//!   request that crashed before it committed) are deleted.
//!
//! Chunks are pinned while they are healed, so garbage collection never deletes a chunk a heal
//! is about to rewrite, and a sweep never deletes a chunk a request is writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use erasure::{ChunkHash, HealReport};
use serde::Serialize;
use tokio::sync::Notify;

use super::{ObjectService, now_ms};
use crate::error::Result;

/// Chunks read from the metastore per page during a pass.
const PAGE: usize = 256;

/// How the scheduled scanner behaves.
#[derive(Debug, Clone, Copy)]
pub struct ScanSchedule {
    /// Time between the end of one scheduled pass and the start of the next; `None`: only on
    /// demand.
    pub interval: Option<Duration>,
    /// Shard bytes read per second by scheduled passes; 0: unlimited.
    pub bytes_per_sec: u64,
}

/// One chunk's heal: where it is and what was found.
struct Healed {
    pool: u32,
    set: usize,
    report: Result<HealReport>,
}

/// Progress of the current or last full pass, as `tessera admin heal` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassProgress {
    pub running: bool,
    /// Passes finished since the server started.
    pub passes_finished: u64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// Chunks stored when the pass started, and those checked so far.
    pub chunks_total: u64,
    pub chunks_checked: u64,
    pub shards_missing: u64,
    pub shards_corrupt: u64,
    pub shards_rewritten: u64,
    /// Chunks that still lack shards (a disk is offline): left in the heal queue.
    pub chunks_incomplete: u64,
    /// Chunks with fewer than k readable shards.
    pub chunks_unrecoverable: Vec<String>,
    pub orphan_shards_removed: u64,
    pub bytes_read: u64,
}

impl PassProgress {
    /// Adds one chunk's findings; a chunk not whole afterwards counts as incomplete.
    pub(super) fn add(&mut self, r: &HealReport) {
        self.shards_missing += r.missing.len() as u64;
        self.shards_corrupt += r.corrupt.len() as u64;
        self.shards_rewritten += r.rewritten as u64;
        self.bytes_read += r.bytes_read;
        if !r.complete() {
            self.chunks_incomplete += 1;
        }
    }
}

/// The heal machinery's shared state.
#[derive(Debug, Default)]
pub struct HealState {
    progress: std::sync::Mutex<PassProgress>,
    /// Serialises full passes.
    pass_lock: tokio::sync::Mutex<()>,
    start_pass: Notify,
    wake_queue: Notify,
    pub queue_healed: AtomicU64,
    /// Shard bytes every pass since start has read.
    scanned_bytes: AtomicU64,
}

impl HealState {
    fn progress(&self) -> std::sync::MutexGuard<'_, PassProgress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ObjectService {
    pub fn heal_progress(&self) -> PassProgress {
        self.heal.progress().clone()
    }

    /// Chunks the heal queue brought back to full redundancy since start.
    pub fn heal_queue_healed(&self) -> u64 {
        self.heal.queue_healed.load(Relaxed)
    }

    /// Shard bytes the scanner has read since start.
    pub fn scanned_bytes(&self) -> u64 {
        self.heal.scanned_bytes.load(Relaxed)
    }

    /// Asks the scanner for a full, unthrottled pass now (no-op while one runs).
    pub fn request_heal_pass(&self) {
        self.heal.start_pass.notify_one();
    }

    /// Asks the heal-queue worker to retry now (a disk came back).
    pub fn wake_heal_queue(&self) {
        self.heal.wake_queue.notify_one();
    }

    /// Records a chunk whose stripe is short of shards.
    pub(crate) async fn queue_heal(&self, hash: ChunkHash, len: u32) {
        if let Err(e) = self.meta.heal_enqueue(hash.0, len).await {
            tracing::error!(chunk = %hash, error = %e, "cannot record a degraded chunk in the heal queue; the scanner will find it");
        }
    }

    /// Heals one chunk under a pin, saying where it is. `None` when the chunk is no longer
    /// stored.
    async fn heal_one(&self, hash: [u8; 32], len: u32) -> Result<Option<Healed>> {
        let _pin = self.locks.pin(hash).await;
        let Some(pool) = self.locator().pool_of(hash).await? else {
            return Ok(None);
        };
        let set = pool.store.layout().set_of(&ChunkHash(hash));
        let report = pool
            .store
            .heal_chunk(ChunkHash(hash), len as u64)
            .await
            .map_err(Into::into);
        Ok(Some(Healed {
            pool: pool.id,
            set,
            report,
        }))
    }

    /// Works through the heal queue once. Returns how many chunks are now complete.
    pub async fn heal_queue_pass(&self) -> Result<u64> {
        let mut healed = 0;
        for (hash, len) in self.meta.heal_queue(usize::MAX).await? {
            match self
                .heal_one(hash, len)
                .await
                .and_then(|h| h.map(|h| h.report).transpose())
            {
                Ok(Some(r)) if !r.complete() => continue,
                Ok(_) => {
                    self.meta.heal_done(hash).await?;
                    healed += 1;
                }
                Err(e) => {
                    tracing::warn!(chunk = %ChunkHash(hash), error = %e, "queued heal failed; will retry");
                }
            }
        }
        self.heal.queue_healed.fetch_add(healed, Relaxed);
        Ok(healed)
    }

    /// One full pass: every stored chunk verified and healed, then the orphan sweep.
    /// Returns the pass's own figures.
    pub async fn heal_pass(&self, bytes_per_sec: u64) -> Result<PassProgress> {
        // One pass at a time; a pass asked for while another runs starts after it.
        let _running = self.heal.pass_lock.lock().await;
        let total = self.meta.chunk_count().await.unwrap_or(0);
        {
            let mut p = self.heal.progress();
            let finished = p.passes_finished;
            *p = PassProgress {
                running: true,
                passes_finished: finished,
                started_ms: Some(now_ms()),
                chunks_total: total,
                ..PassProgress::default()
            };
        }
        let started_ms = now_ms();
        let mut findings = crate::scrub::PassFindings::default();
        let mut outcome = self.chunk_pass(bytes_per_sec, &mut findings).await;
        if outcome.is_ok() {
            outcome = self.record_pass(started_ms, &findings).await;
        }
        let swept = match &outcome {
            Ok(()) => self.sweep_orphans(true).await,
            Err(_) => Ok(0),
        };
        let mut p = self.heal.progress();
        p.running = false;
        p.finished_ms = Some(now_ms());
        p.passes_finished += 1;
        if let Ok(n) = &swept {
            p.orphan_shards_removed = *n;
        }
        let summary = p.clone();
        drop(p);
        outcome?;
        swept?;
        tracing::info!(
            chunks = summary.chunks_checked,
            missing = summary.shards_missing,
            corrupt = summary.shards_corrupt,
            rewritten = summary.shards_rewritten,
            incomplete = summary.chunks_incomplete,
            unrecoverable = summary.chunks_unrecoverable.len(),
            orphans = summary.orphan_shards_removed,
            "heal pass finished"
        );
        Ok(summary)
    }

    /// Verifies every stored chunk (reading at most `bytes_per_sec`; 0: unthrottled, and
    /// then without yielding to client I/O), noting in `findings` the sets not found whole.
    async fn chunk_pass(
        &self,
        bytes_per_sec: u64,
        findings: &mut crate::scrub::PassFindings,
    ) -> Result<()> {
        let started = Instant::now();
        let mut after = None;
        loop {
            let page = self.meta.chunks_after(after, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.hash);
            for c in page {
                if c.refs == 0 {
                    continue; // waiting for GC: not worth healing
                }
                if bytes_per_sec > 0 {
                    self.yield_to_foreground().await;
                }
                let healed = self.heal_one(c.hash, c.len).await;
                if let Ok(Some(h)) = &healed
                    && !h.report.as_ref().is_ok_and(HealReport::complete)
                {
                    findings.unclean.insert((h.pool, h.set));
                }
                let outcome = healed.and_then(|h| h.map(|h| h.report).transpose());
                let bytes_read = {
                    let mut p = self.heal.progress();
                    p.chunks_checked += 1;
                    match &outcome {
                        Ok(Some(r)) => {
                            p.add(r);
                            self.heal.scanned_bytes.fetch_add(r.bytes_read, Relaxed);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(chunk = %ChunkHash(c.hash), error = %e, "chunk cannot be rebuilt");
                            p.chunks_unrecoverable.push(hex::encode(c.hash));
                        }
                    }
                    p.bytes_read
                };
                if let Ok(Some(r)) = &outcome
                    && !r.complete()
                {
                    self.queue_heal(ChunkHash(c.hash), c.len).await;
                }
                if bytes_per_sec > 0 {
                    let due = Duration::from_secs_f64(bytes_read as f64 / bytes_per_sec as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }

    /// Deletes (with `remove`, else only counts) shards in a pool whose chunk the metadata
    /// does not place there: left by requests that never committed, or the old copy of a
    /// chunk whose move was interrupted after its record changed. A chunk pinned by a request
    /// or a move in progress is left alone.
    pub async fn sweep_orphans(&self, remove: bool) -> Result<u64> {
        let mut found = 0;
        let mut unrecorded = std::collections::HashSet::new();
        for pool in self.pools.list() {
            found += self.sweep_pool(&pool, remove, &mut unrecorded).await?;
        }
        if self.orphan_min_age.is_some() {
            self.orphans_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|h, _| unrecorded.contains(h));
        }
        if found > 0 {
            if remove {
                tracing::info!(
                    shards = found,
                    "removed orphan shards of uncommitted writes"
                );
            } else {
                tracing::info!(
                    shards = found,
                    "found orphan shards of uncommitted writes (left in place)"
                );
            }
        }
        Ok(found)
    }

    async fn sweep_pool(
        &self,
        pool: &erasure::Pool,
        remove: bool,
        unrecorded: &mut std::collections::HashSet<[u8; 32]>,
    ) -> Result<u64> {
        let mut candidates = std::collections::BTreeSet::new();
        for disk in pool.store.disks() {
            match disk.list().await {
                Ok(keys) => candidates.extend(keys.into_iter().map(|k| k.chunk.0)),
                Err(e) => {
                    tracing::debug!(disk = %disk.name(), error = %e, "orphan sweep skips an unreadable disk")
                }
            }
        }
        let placed_here = |p: Option<u32>| p == Some(pool.id);
        let mut found = 0;
        for hash in candidates {
            if placed_here(self.meta.chunk_pool(hash).await?) {
                continue;
            }
            unrecorded.insert(hash);
            if !self.old_enough_to_sweep(hash) {
                continue;
            }
            let Some(_claim) = self.locks.try_claim_delete(hash) else {
                continue;
            };
            let recorded = self.meta.chunk_pool(hash).await?;
            if placed_here(recorded) {
                continue;
            }
            // The listing may be stale: GC may have deleted this chunk since. Under the claim
            // nothing else in this process deletes or writes it, so count what is really there.
            let shards = pool.store.count_shards(ChunkHash(hash)).await as u64;
            if shards == 0 {
                continue;
            }
            found += shards;
            if !remove {
                continue;
            }
            // Recorded nowhere: another gateway may be storing it right now, unseen. Marked
            // first, as GC marks, so that such a write cannot commit it once the shards go.
            let marked = recorded.is_none();
            if marked && !self.meta.sweep_mark(hash, pool.id).await? {
                continue;
            }
            if let Err(e) = pool
                .store
                .delete_chunk(ChunkHash(hash), self.meta.fence_token())
                .await
            {
                tracing::warn!(chunk = %ChunkHash(hash), error = %e, "could not remove every orphan shard");
            }
            if marked {
                self.meta.sweep_finish(hash).await?;
            }
        }
        Ok(found)
    }

    /// Whether an unrecorded chunk may be swept now: at once when this process is the only
    /// writer, else once it has stayed unrecorded for `orphan_min_age`.
    fn old_enough_to_sweep(&self, hash: [u8; 32]) -> bool {
        let Some(min_age) = self.orphan_min_age else {
            return true;
        };
        let mut seen = self.orphans_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry(hash)
            .or_insert_with(std::time::Instant::now)
            .elapsed()
            >= min_age
    }

    /// Runs the scanner (scheduled and requested passes) and the heal-queue worker until the
    /// service is dropped.
    pub fn spawn_healers(
        self: &Arc<Self>,
        schedule: ScanSchedule,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let weak = Arc::downgrade(self);
        let state = self.heal.clone();
        let scanner = tokio::spawn(async move {
            loop {
                let requested = tokio::select! {
                    () = state.start_pass.notified() => true,
                    () = async {
                        match schedule.interval {
                            Some(d) => tokio::time::sleep(d).await,
                            None => std::future::pending().await,
                        }
                    } => false,
                };
                let Some(service) = weak.upgrade() else {
                    return;
                };
                let rate = if requested {
                    0
                } else {
                    service.scheduled_rate(schedule.bytes_per_sec).await
                };
                if let Err(e) = service.heal_pass(rate).await {
                    tracing::warn!(error = %e, "heal pass failed");
                }
            }
        });
        let weak = Arc::downgrade(self);
        let state = self.heal.clone();
        let queue = tokio::spawn(async move {
            loop {
                let Some(service) = weak.upgrade() else {
                    return;
                };
                match service.heal_queue_pass().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(chunks = n, "healed queued chunks"),
                    Err(e) => tracing::warn!(error = %e, "heal queue pass failed"),
                }
                drop(service);
                tokio::select! {
                    () = state.wake_queue.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
            }
        });
        vec![scanner, queue]
    }
}
