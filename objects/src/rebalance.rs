//! Moving chunks between pools: rebalance (until every pool is about as full as the others)
//! and decommission (until one pool holds nothing).
//!
//! One job at a time, recorded in the metadata (the `move-job` setting) with a cursor in chunk
//! hash order, so a restarted or newly active gateway resumes it where it was. Moving one
//! chunk:
//! 1. pin it (GC, the orphan sweep and cleanups leave it alone) and check its record still
//!    names the source pool;
//! 2. read it from the source (verified, rebuilt from parity if need be), write a full stripe
//!    in the destination and flush it;
//! 3. change the record's pool in one transaction that succeeds only if it still names the
//!    source;
//! 4. only then delete the source's shards.
//!
//! Readers look the pool up per chunk and ask again when a read fails, so a read that raced
//! step 4 finds the new copy. A crash between 2 and 3 leaves shards the orphan sweep removes
//! from the destination; one between 3 and 4, shards it removes from the source. References
//! added or dropped during a move change the count, never the pool, so nothing is lost or
//! leaked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use erasure::{ChunkHash, PoolState};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::pool_records::RecordedState;
use super::{ObjectService, now_ms};
use crate::error::{Error, Result};

const JOB_SETTING: &str = "move-job";
const JOB_VERSION: u32 = 1;
/// Pools count as balanced when each one's fill is within this fraction of the mean fill.
pub const BALANCE_TOLERANCE: f64 = 0.05;
/// Chunks moved at once.
const PARALLEL_MOVES: usize = 4;
/// How often the job's cursor and figures are written down.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Passes over the chunks a rebalance makes at most (writes during a pass can leave pools
/// apart again).
const MAX_PASSES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MoveKind {
    Rebalance,
    Decommission { pool: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    /// Stopped by an operator (rebalance stop, decommission cancel).
    Stopped,
    Finished,
    Failed(String),
}

/// A move job and its progress, as recorded and as `admin rebalance status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveJob {
    pub v: u32,
    #[serde(flatten)]
    pub kind: MoveKind,
    pub state: JobState,
    /// Bytes of chunks moved per second at most; 0: unthrottled.
    pub bandwidth: u64,
    pub started_ms: i64,
    #[serde(default)]
    pub finished_ms: Option<i64>,
    /// The last chunk (hex) the current pass has dealt with.
    #[serde(default)]
    pub cursor: Option<String>,
    pub pass: u32,
    pub chunks_moved: u64,
    pub bytes_moved: u64,
    /// Chunks that could not be moved (unreadable, or no room): left where they are.
    pub chunks_failed: u64,
    /// Bytes still to move, as estimated at the start of the pass.
    #[serde(default)]
    pub bytes_to_move: u64,
    /// Bytes moved per second since this gateway (re)started the job.
    #[serde(default)]
    pub rate_bytes_per_sec: u64,
    #[serde(default)]
    pub eta_secs: Option<u64>,
}

/// What moves in one pass: how many bytes each pool should give away (positive) or may take
/// (negative).
struct Plan {
    excess: BTreeMap<u32, i64>,
}

impl ObjectService {
    /// The current or last move job.
    pub async fn move_job(&self) -> Result<Option<MoveJob>> {
        let Some(bytes) = self.meta.setting(JOB_SETTING).await? else {
            return Ok(None);
        };
        let job: MoveJob = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("the recorded move job is unreadable: {e}")))?;
        if job.v > JOB_VERSION {
            return Err(Error::Internal(format!(
                "the recorded move job has version {}, this tessera reads up to {JOB_VERSION}",
                job.v
            )));
        }
        Ok(Some(job))
    }

    async fn save_job(&self, job: &MoveJob) -> Result<()> {
        let bytes = serde_json::to_vec(job).map_err(|e| Error::Internal(e.to_string()))?;
        self.meta.put_setting(JOB_SETTING, bytes, true).await?;
        Ok(())
    }

    /// Starts a rebalance or a decommission. Refused while another job runs, and a
    /// decommission when the other pools lack the room.
    pub async fn start_move(self: &Arc<Self>, kind: MoveKind, bandwidth: u64) -> Result<MoveJob> {
        if let Some(job) = self.move_job().await?
            && job.state == JobState::Running
        {
            return Err(Error::InvalidArgument(format!(
                "a {} is running already: stop it first",
                kind_name(&job.kind)
            )));
        }
        match kind {
            MoveKind::Rebalance => {
                if self.pools.list().len() < 2 {
                    return Err(Error::InvalidArgument(
                        "there is only one pool: nothing to rebalance (add one with `tessera admin pool add`)"
                            .into(),
                    ));
                }
            }
            MoveKind::Decommission { pool } => self.check_decommission(pool).await?,
        }
        let job = MoveJob {
            v: JOB_VERSION,
            kind,
            state: JobState::Running,
            bandwidth,
            started_ms: now_ms(),
            finished_ms: None,
            cursor: None,
            pass: 1,
            chunks_moved: 0,
            bytes_moved: 0,
            chunks_failed: 0,
            bytes_to_move: 0,
            rate_bytes_per_sec: 0,
            eta_secs: None,
        };
        if let MoveKind::Decommission { pool } = kind {
            self.set_recorded_state(pool, RecordedState::Draining)
                .await?;
            self.pools.set_state(pool, PoolState::Draining);
        }
        self.save_job(&job).await?;
        self.spawn_move_job();
        Ok(job)
    }

    async fn check_decommission(&self, pool: u32) -> Result<()> {
        let Some(target) = self.pools.get(pool) else {
            return Err(Error::InvalidArgument(format!(
                "there is no pool {pool} in service"
            )));
        };
        let others: Vec<_> = self
            .pools
            .list()
            .into_iter()
            .filter(|p| p.id != pool && p.state() == PoolState::Active)
            .collect();
        if others.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "pool {pool} is the only pool that takes data: add another before decommissioning it"
            )));
        }
        if pool == self.pools.home() {
            match self.home_handover.0.get() {
                Some(h) => {
                    h.next_home(pool).map_err(Error::InvalidArgument)?;
                }
                None => {
                    return Err(Error::InvalidArgument(format!(
                        "pool {pool} is the home pool (its disks are the command line's) and this server cannot hand that role over"
                    )));
                }
            }
        }
        let held = self.meta.pool_holdings().await?;
        let needed = held.get(&target.id).map_or(0, |h| h.bytes);
        let mut room = 0u64;
        for p in &others {
            p.refresh_space().await;
            match p.space().free {
                Some(free) => room += free,
                None => return Ok(()), // space not known (test stores): nothing to check
            }
        }
        if needed > room {
            return Err(Error::InvalidArgument(format!(
                "pool {pool} holds {needed} bytes but the other pools have room for {room} only: add capacity first"
            )));
        }
        Ok(())
    }

    /// Stops the running job (rebalance stop, decommission cancel): a cancelled decommission
    /// returns its pool to service.
    pub async fn stop_move(&self) -> Result<Option<MoveJob>> {
        let Some(mut job) = self.move_job().await? else {
            return Ok(None);
        };
        if job.state == JobState::Running {
            job.state = JobState::Stopped;
            job.finished_ms = Some(now_ms());
            self.save_job(&job).await?;
            self.mover.stop.notify_waiters();
            if let MoveKind::Decommission { pool } = job.kind {
                self.set_recorded_state(pool, RecordedState::Active).await?;
                self.pools.set_state(pool, PoolState::Active);
            }
        }
        Ok(Some(job))
    }

    /// Stops this process's run of the job at its next step without recording anything (the
    /// server is stopping: the job stays `running` in the metadata for whoever runs next).
    pub fn halt_move_job(&self) {
        self.mover.halted.store(true, Relaxed);
        self.mover.stop.notify_waiters();
    }

    /// Runs the recorded job if it is running and no task of this process runs it yet
    /// (at start: resumes a job a restart or a takeover interrupted).
    pub fn spawn_move_job(self: &Arc<Self>) {
        if self.mover.running.swap(true, Relaxed) {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            let outcome = service.run_move_job().await;
            service.mover.running.store(false, Relaxed);
            if let Err(e) = outcome {
                tracing::error!(error = %e, "chunk move job failed");
                if let Ok(Some(mut job)) = service.move_job().await
                    && job.state == JobState::Running
                {
                    job.state = JobState::Failed(e.to_string());
                    job.finished_ms = Some(now_ms());
                    let _ = service.save_job(&job).await;
                }
            }
        });
    }

    async fn run_move_job(self: &Arc<Self>) -> Result<()> {
        let Some(mut job) = self.move_job().await? else {
            return Ok(());
        };
        if job.state != JobState::Running {
            return Ok(());
        }
        if let MoveKind::Decommission { pool } = job.kind {
            self.pools.set_state(pool, PoolState::Draining);
        }
        tracing::info!(job = ?job.kind, pass = job.pass, cursor = ?job.cursor, "chunk move job running");
        let resumed_bytes = job.bytes_moved;
        let started = Instant::now();
        loop {
            if self.mover.halted.load(Relaxed) {
                return Ok(());
            }
            let plan = self.plan(&job.kind).await?;
            job.bytes_to_move = plan.excess.values().filter(|e| **e > 0).sum::<i64>() as u64;
            if job.bytes_to_move == 0 && job.cursor.is_none() {
                return self.finish_job(job).await;
            }
            let stopped = self
                .move_pass(&mut job, plan, started, resumed_bytes)
                .await?;
            if stopped {
                return Ok(());
            }
            if self.mover.halted.load(Relaxed) {
                return Ok(());
            }
            let plan = self.plan(&job.kind).await?;
            let left = plan.excess.values().any(|e| *e > 0);
            if !left || job.pass >= MAX_PASSES {
                return self.finish_job(job).await;
            }
            job.pass += 1;
            job.cursor = None;
            self.save_job(&job).await?;
        }
    }

    async fn finish_job(&self, mut job: MoveJob) -> Result<()> {
        if let MoveKind::Decommission { pool } = job.kind {
            let held = self.meta.pool_holdings().await?;
            if let Some(h) = held.get(&pool).filter(|h| h.chunks > 0) {
                job.state = JobState::Failed(format!(
                    "pool {pool} still holds {} chunk(s) ({} bytes) that could not be moved; see the log, then start the decommission again",
                    h.chunks, h.bytes
                ));
                job.finished_ms = Some(now_ms());
                return self.save_job(&job).await;
            }
            if pool == self.pools.home() {
                if let Err(why) = self.hand_over_home(pool).await {
                    job.state = JobState::Failed(format!(
                        "pool {pool} is empty but its role as home pool could not be handed over: {why}"
                    ));
                    job.finished_ms = Some(now_ms());
                    return self.save_job(&job).await;
                }
            } else {
                self.set_recorded_state(pool, RecordedState::Retired)
                    .await?;
                self.pools.remove(pool);
                tracing::info!(
                    pool,
                    "pool decommissioned: it holds nothing and is retired; its disks can be removed"
                );
            }
        }
        job.state = JobState::Finished;
        job.finished_ms = Some(now_ms());
        job.cursor = None;
        job.eta_secs = Some(0);
        tracing::info!(job = ?job.kind, chunks = job.chunks_moved, bytes = job.bytes_moved, "chunk move job finished");
        self.save_job(&job).await
    }

    /// Retires the emptied home pool: the server moves what it anchors to the next home, then
    /// one write records the old home retired and the new one home.
    async fn hand_over_home(&self, from: u32) -> std::result::Result<(), String> {
        let h = self
            .home_handover
            .0
            .get()
            .ok_or("this server cannot hand the home pool's role over")?
            .clone();
        let to = h.next_home(from)?;
        h.hand_over(from, to).await?;
        self.record_new_home(from, to, h.deployment_id())
            .await
            .map_err(|e| e.to_string())?;
        self.pools.set_home(to);
        self.pools.remove(from);
        h.release(from).await;
        tracing::warn!(
            pool = from,
            home = to,
            "home pool decommissioned: it holds nothing and is retired; pool {to} is the home pool now: restart the server with pool {to}'s disks on the command line (in the order they were added), then remove pool {from}'s disks"
        );
        Ok(())
    }

    /// How many bytes each pool should give away or take so that all are within the
    /// tolerance of the mean fill (rebalance), or so that one pool is emptied (decommission).
    async fn plan(&self, kind: &MoveKind) -> Result<Plan> {
        let held = self.meta.pool_holdings().await?;
        let pools = self.pools.list();
        let mut excess = BTreeMap::new();
        match kind {
            MoveKind::Decommission { pool } => {
                excess.insert(*pool, held.get(pool).map_or(0, |h| h.bytes) as i64);
            }
            MoveKind::Rebalance => {
                let mut capacity = BTreeMap::new();
                for p in pools.iter().filter(|p| p.state() == PoolState::Active) {
                    p.refresh_space().await;
                    capacity.insert(p.id, p.space().capacity);
                }
                // Unknown capacities (test stores) count as equal.
                let known = capacity.values().all(Option::is_some);
                let cap = |id: &u32| -> f64 {
                    if known {
                        capacity[id].unwrap_or(1).max(1) as f64
                    } else {
                        1.0
                    }
                };
                let total_bytes: u64 = capacity
                    .keys()
                    .map(|id| held.get(id).map_or(0, |h| h.bytes))
                    .sum();
                let total_cap: f64 = capacity.keys().map(cap).sum();
                let mean_fill = total_bytes as f64 / total_cap;
                let balanced = capacity.keys().all(|id| {
                    let fill = held.get(id).map_or(0, |h| h.bytes) as f64 / cap(id);
                    (fill - mean_fill).abs() <= BALANCE_TOLERANCE * mean_fill
                });
                for id in capacity.keys() {
                    let have = held.get(id).map_or(0, |h| h.bytes) as f64;
                    let target = mean_fill * cap(id);
                    let e = if balanced { 0 } else { (have - target) as i64 };
                    excess.insert(*id, e);
                }
            }
        }
        Ok(Plan { excess })
    }

    /// One pass over every chunk record from the job's cursor. True when the job was stopped.
    async fn move_pass(
        self: &Arc<Self>,
        job: &mut MoveJob,
        mut plan: Plan,
        started: Instant,
        resumed_bytes: u64,
    ) -> Result<bool> {
        let mut after = match &job.cursor {
            Some(hex) => Some(
                ChunkHash::from_hex(hex)
                    .ok_or_else(|| Error::Internal(format!("bad move cursor {hex}")))?
                    .0,
            ),
            None => None,
        };
        let mut last_save = Instant::now();
        let stop = self.mover.stop.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        loop {
            if self.mover.halted.load(Relaxed) {
                return Ok(true);
            }
            let page = self.meta.chunks_after(after, 256).await?;
            let Some(last) = page.last() else {
                job.cursor = None;
                self.save_job(job).await?;
                return Ok(false);
            };
            let page_end = last.hash;
            // Decide destinations up front (the plan's budgets), then move in parallel.
            let mut moves = Vec::new();
            for c in &page {
                let Some(to) = self.destination(job, &mut plan, c) else {
                    continue;
                };
                moves.push((c.hash, c.len, c.pool, to));
            }
            let mut done = futures::stream::iter(moves)
                .map(|(hash, len, from, to)| {
                    let service = self.clone();
                    async move { (len, service.move_chunk(hash, len, from, to).await) }
                })
                .buffer_unordered(PARALLEL_MOVES);
            loop {
                let next = tokio::select! {
                    next = done.next() => next,
                    () = &mut stop => {
                        tracing::info!("chunk move job stopped");
                        return Ok(true);
                    }
                };
                let Some((len, outcome)) = next else { break };
                match outcome {
                    Ok(true) => {
                        job.chunks_moved += 1;
                        job.bytes_moved += len as u64;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        job.chunks_failed += 1;
                        tracing::warn!(error = %e, "a chunk could not be moved; it stays where it is");
                    }
                }
                // Throttle on the bytes this gateway moved since it (re)started the job.
                let moved_here = job.bytes_moved - resumed_bytes;
                if job.bandwidth > 0 {
                    let due = Duration::from_secs_f64(moved_here as f64 / job.bandwidth as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                // Progress shows mid-page too; the cursor stays at the last finished page, so a
                // resume repeats at most one page, whose moved chunks it finds already moved.
                if self
                    .save_progress(job, &plan, started, resumed_bytes, &mut last_save)
                    .await?
                {
                    return Ok(true);
                }
            }
            drop(done);
            after = Some(page_end);
            job.cursor = Some(hex::encode(page_end));
            if self
                .save_progress(job, &plan, started, resumed_bytes, &mut last_save)
                .await?
            {
                return Ok(true);
            }
        }
    }

    /// Records the job's progress, rate and ETA, at most every [`SAVE_EVERY`]. True when the
    /// job was stopped meanwhile (by another gateway, or a stop that raced this one): a stopped
    /// job must stay stopped.
    async fn save_progress(
        &self,
        job: &mut MoveJob,
        plan: &Plan,
        started: Instant,
        resumed_bytes: u64,
        last_save: &mut Instant,
    ) -> Result<bool> {
        if last_save.elapsed() < SAVE_EVERY {
            return Ok(false);
        }
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        job.rate_bytes_per_sec = ((job.bytes_moved - resumed_bytes) as f64 / elapsed) as u64;
        let left: i64 = plan.excess.values().filter(|e| **e > 0).sum();
        job.eta_secs =
            (job.rate_bytes_per_sec > 0).then(|| left.max(0) as u64 / job.rate_bytes_per_sec);
        if self
            .move_job()
            .await?
            .is_some_and(|j| j.state != JobState::Running)
        {
            return Ok(true);
        }
        self.save_job(job).await?;
        *last_save = Instant::now();
        Ok(false)
    }

    /// Where a chunk should go in this pass, if anywhere; takes its bytes off the budgets.
    fn destination(
        &self,
        job: &MoveJob,
        plan: &mut Plan,
        c: &metastore::ChunkEntry,
    ) -> Option<u32> {
        let from_excess = *plan.excess.get(&c.pool)?;
        if from_excess <= 0 {
            return None;
        }
        let to = match job.kind {
            MoveKind::Decommission { .. } => self.pools.choose(&ChunkHash(c.hash)).ok()?.id,
            MoveKind::Rebalance => {
                if c.refs == 0 {
                    return None; // waiting for GC: not worth moving
                }
                // The pool furthest below its target.
                let (&to, &room) = plan.excess.iter().min_by_key(|(_, e)| **e)?;
                if room >= 0 {
                    return None;
                }
                to
            }
        };
        if to == c.pool {
            return None;
        }
        *plan.excess.entry(c.pool).or_default() -= c.len as i64;
        *plan.excess.entry(to).or_default() += c.len as i64;
        Some(to)
    }

    /// Moves one chunk from pool `from` to pool `to` (see the module docs). False when there
    /// was nothing to move (gone, or no longer in `from`).
    pub(crate) async fn move_chunk(
        &self,
        hash: [u8; 32],
        len: u32,
        from: u32,
        to: u32,
    ) -> Result<bool> {
        let _pin = self.locks.pin(hash).await;
        if self.meta.chunk_pool(hash).await? != Some(from) {
            return Ok(false);
        }
        let source = self.pools.store(from)?;
        let dest = self.pools.store(to)?;
        let data = source.get_chunk(ChunkHash(hash), len as u64).await?;
        let report = dest.put_chunk(ChunkHash(hash), data).await?;
        let written: std::collections::BTreeSet<usize> =
            report.disks_written.iter().copied().collect();
        let failed = dest.sync_disks(&written).await;
        let durable = written.len() - failed.len();
        if durable < dest.layout().write_quorum() {
            return Err(erasure::Error::WriteQuorum {
                written: durable,
                needed: dest.layout().write_quorum(),
                detail: format!("flushing shards failed on disk(s) {failed:?}"),
            }
            .into());
        }
        if !self.meta.relocate_chunk(hash, from, to).await? {
            // Collected or moved meanwhile: this copy is of no use.
            if self.meta.chunk_pool(hash).await? != Some(to)
                && let Err(e) = dest
                    .delete_chunk(ChunkHash(hash), self.meta.fence_token())
                    .await
            {
                tracing::warn!(chunk = %ChunkHash(hash), error = %e, "could not remove an unneeded copy; the orphan sweep will");
            }
            return Ok(false);
        }
        if durable < dest.layout().set_size {
            self.queue_heal(ChunkHash(hash), len).await;
        }
        if let Err(e) = source
            .delete_chunk(ChunkHash(hash), self.meta.fence_token())
            .await
        {
            tracing::warn!(chunk = %ChunkHash(hash), error = %e, "could not remove a moved chunk's old shards; the orphan sweep will");
        }
        Ok(true)
    }
}

fn kind_name(kind: &MoveKind) -> &'static str {
    match kind {
        MoveKind::Rebalance => "rebalance",
        MoveKind::Decommission { .. } => "decommission",
    }
}

/// The mover's in-process state: whether a task runs the job, and how to stop it.
#[derive(Debug, Default)]
pub(crate) struct Mover {
    running: std::sync::atomic::AtomicBool,
    stop: tokio::sync::Notify,
    /// Set when this process stops serving: the job's run ends at its next step (the
    /// notification alone reaches only a pass that is waiting on it).
    halted: std::sync::atomic::AtomicBool,
}
