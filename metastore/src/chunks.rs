//! Chunk records: whether a chunk is stored, which pool holds it, moving it between pools, and
//! garbage collection of the ones no manifest references.
//!
//! A chunk's location is recorded once, in its refcount record (`RefRecord::pool`), not in
//! the manifests that reference it: moving a chunk is one small commit whatever the number of
//! objects sharing it.

use std::collections::BTreeMap;

use crate::kv::{Tree, scan_all};
use crate::records::{RefRecord, decode, encode};
use crate::store::{MetaStore, now_ms};
use crate::txn::Reader;
use crate::{Result, Rev, keys};

/// One entry of the garbage-collection queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcItem {
    key: Vec<u8>,
    pub hash: [u8; 32],
}

/// What a pool holds, from the chunk records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolHoldings {
    pub chunks: u64,
    /// The chunks' bytes before erasure coding.
    pub bytes: u64,
}

impl MetaStore {
    /// Whether the chunk is stored (referenced, or unreferenced but not yet collected), or
    /// being deleted by garbage collection.
    pub async fn chunk_state(&self, hash: [u8; 32]) -> Result<ChunkState> {
        Ok(self.chunk_check(hash).await?.0)
    }

    /// The chunk's state and the store revision it was read at: a writer that finds it
    /// [`ChunkState::Absent`] and stores it passes that revision to
    /// [`MetaStore::with_new_chunks`].
    pub async fn chunk_check(&self, hash: [u8; 32]) -> Result<(ChunkState, Rev)> {
        self.run(move |s| {
            let read = s.kv.get_rev(Tree::Refcounts, &hash, None)?;
            let record = read
                .value
                .map(|v| decode::<RefRecord>(&v))
                .transpose()?
                .and_then(RefRecord::live);
            let state = match record {
                None => ChunkState::Absent,
                Some(r) if r.deleting => ChunkState::Deleting,
                Some(_) => ChunkState::Stored,
            };
            Ok((state, read.at))
        })
        .await
    }

    /// The stored length of a chunk that is stored and not being collected (`None`: not).
    pub async fn chunk_stored_len(&self, hash: [u8; 32]) -> Result<Option<u32>> {
        self.run(move |s| {
            Ok(s.get::<RefRecord>(Tree::Refcounts, &hash)?
                .and_then(RefRecord::live)
                .filter(|r| !r.deleting)
                .map(|r| r.len))
        })
        .await
    }

    /// True when the chunk is stored and not being collected.
    pub async fn chunk_known(&self, hash: [u8; 32]) -> Result<bool> {
        Ok(self.chunk_state(hash).await? == ChunkState::Stored)
    }

    /// The pool holding a stored chunk (`None`: not stored).
    pub async fn chunk_pool(&self, hash: [u8; 32]) -> Result<Option<u32>> {
        self.run(move |s| {
            Ok(s.get::<RefRecord>(Tree::Refcounts, &hash)?
                .and_then(RefRecord::live)
                .map(|r| r.pool))
        })
        .await
    }

    /// The current reference count of a chunk (`None`: not stored).
    pub async fn chunk_refcount(&self, hash: [u8; 32]) -> Result<Option<u64>> {
        self.run(move |s| {
            Ok(s.get::<RefRecord>(Tree::Refcounts, &hash)?
                .and_then(RefRecord::live)
                .map(|r| r.count))
        })
        .await
    }

    /// Records that a chunk's shards now live in pool `to`, if its record still names `from`.
    /// False when the chunk is no longer stored or was moved by someone else: the caller's
    /// copy in `to` is then of no use.
    pub async fn relocate_chunk(&self, hash: [u8; 32], from: u32, to: u32) -> Result<bool> {
        self.txn(move |_, tx| {
            let Some(mut record) = tx.get::<RefRecord>(Tree::Refcounts, &hash)? else {
                return Ok(false);
            };
            if record.pool != from || record.deleting || record.collected {
                return Ok(false);
            }
            record.pool = to;
            tx.put(Tree::Refcounts, hash.to_vec(), encode(&record));
            Ok(true)
        })
        .await
    }

    /// Chunks and bytes held by each pool that holds any.
    pub async fn pool_holdings(&self) -> Result<BTreeMap<u32, PoolHoldings>> {
        self.run(|s| {
            let mut out: BTreeMap<u32, PoolHoldings> = BTreeMap::new();
            scan_all(s.kv.as_ref(), Tree::Refcounts, |(_, v)| {
                let r: RefRecord = decode(&v)?;
                if r.collected {
                    return Ok(());
                }
                let h = out.entry(r.pool).or_default();
                h.chunks += 1;
                h.bytes += r.len as u64;
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    /// Chunks whose grace period has passed, oldest first.
    pub async fn gc_due(&self, limit: usize) -> Result<Vec<GcItem>> {
        let end = keys::gc(now_ms() + 1, &[0; 32]);
        self.run(move |s| {
            Ok(s.kv
                .scan(Tree::Gc, &[], Some(&end), limit)?
                .into_iter()
                .filter_map(|(key, _)| {
                    let hash = key.get(8..40)?.try_into().ok()?;
                    Some(GcItem { key, hash })
                })
                .collect())
        })
        .await
    }

    /// Starts collecting a due GC entry. Returns the pool holding the chunk when it is
    /// unreferenced: its record is then marked as being deleted (a writer neither reuses nor
    /// rewrites it until [`MetaStore::gc_finish`] removes the record), and the caller must
    /// delete its shards there, then call `gc_finish`. `None` when it is referenced again (or
    /// was already collected through another entry). A record a crashed collection left
    /// marked is collected again.
    pub async fn gc_collect(&self, item: &GcItem) -> Result<Option<u32>> {
        let item = item.clone();
        self.txn(
            move |_, tx| match tx.get::<RefRecord>(Tree::Refcounts, &item.hash)? {
                // A tombstone whose time is up: nothing is stored, the record goes.
                Some(r) if r.collected => {
                    if now_ms() >= r.kept_until_ms {
                        tx.delete(Tree::Refcounts, item.hash.to_vec());
                    }
                    tx.delete(Tree::Gc, item.key.clone());
                    Ok(None)
                }
                Some(mut r) if r.count == 0 => {
                    if !r.deleting {
                        r.deleting = true;
                        tx.put(Tree::Refcounts, item.hash.to_vec(), encode(&r));
                    }
                    Ok(Some(r.pool))
                }
                _ => {
                    tx.delete(Tree::Gc, item.key.clone());
                    Ok(None)
                }
            },
        )
        .await
    }

    /// Ends a collection [`MetaStore::gc_collect`] started, once the shards are deleted: the
    /// record goes, or on a shared store becomes a tombstone for `TOMBSTONE_KEEP_MS`.
    pub async fn gc_finish(&self, item: &GcItem) -> Result<()> {
        let item = item.clone();
        self.txn(move |s, tx| {
            tx.delete(Tree::Gc, item.key.clone());
            if let Some(r) = tx
                .get::<RefRecord>(Tree::Refcounts, &item.hash)?
                .filter(|r| r.deleting)
            {
                s.bury(tx, item.hash, r);
            }
            Ok(())
        })
        .await
    }

    /// On a shared store, marks a chunk no record names as being deleted by the orphan sweep
    /// (as garbage collection marks one), so that a writer which stored it meanwhile cannot
    /// commit it; queued for GC too, which finishes the deletion if the sweep stops midway.
    /// False when a record names it now (the sweep must leave it). On a store this process
    /// alone writes, pins already keep writers off: nothing is written, and true.
    pub async fn sweep_mark(&self, hash: [u8; 32], pool: u32) -> Result<bool> {
        self.txn(move |s, tx| {
            if s.kv.single_writer() {
                return Ok(true);
            }
            let current = tx.get::<RefRecord>(Tree::Refcounts, &hash)?;
            if current.and_then(RefRecord::live).is_some() {
                return Ok(false);
            }
            let marked = RefRecord {
                count: 0,
                len: 0,
                pool,
                deleting: true,
                collected: false,
                kept_until_ms: 0,
            };
            tx.put(Tree::Refcounts, hash.to_vec(), encode(&marked));
            tx.put(Tree::Gc, keys::gc(now_ms(), &hash), Vec::new());
            Ok(true)
        })
        .await
    }

    /// Ends an orphan sweep's deletion [`MetaStore::sweep_mark`] started.
    pub async fn sweep_finish(&self, hash: [u8; 32]) -> Result<()> {
        self.txn(move |s, tx| {
            if let Some(r) = tx
                .get::<RefRecord>(Tree::Refcounts, &hash)?
                .filter(|r| r.deleting)
            {
                s.bury(tx, hash, r);
            }
            Ok(())
        })
        .await
    }
}

/// What the metadata says of a chunk's shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    Absent,
    Stored,
    /// Garbage collection is deleting them: wait, then write the chunk again.
    Deleting,
}
