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
use crate::{Result, keys};

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
    /// True when the chunk is stored: referenced, or unreferenced but not yet collected.
    pub async fn chunk_known(&self, hash: [u8; 32]) -> Result<bool> {
        self.run(move |s| Ok(s.kv.get(Tree::Refcounts, &hash)?.is_some()))
            .await
    }

    /// The pool holding a stored chunk (`None`: not stored).
    pub async fn chunk_pool(&self, hash: [u8; 32]) -> Result<Option<u32>> {
        self.run(move |s| Ok(s.get::<RefRecord>(Tree::Refcounts, &hash)?.map(|r| r.pool)))
            .await
    }

    /// The current reference count of a chunk (`None`: not stored).
    pub async fn chunk_refcount(&self, hash: [u8; 32]) -> Result<Option<u64>> {
        self.run(move |s| Ok(s.get::<RefRecord>(Tree::Refcounts, &hash)?.map(|r| r.count)))
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
            if record.pool != from {
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

    /// Settles a due GC entry. Returns the pool holding the chunk when it is unreferenced: its
    /// refcount record is gone and the caller must now delete its shards there. `None` when it
    /// is referenced again (or was already collected through another entry).
    pub async fn gc_collect(&self, item: GcItem) -> Result<Option<u32>> {
        self.txn(move |_, tx| {
            tx.delete(Tree::Gc, item.key.clone());
            match tx.get::<RefRecord>(Tree::Refcounts, &item.hash)? {
                Some(RefRecord { count: 0, pool, .. }) => {
                    tx.delete(Tree::Refcounts, item.hash.to_vec());
                    Ok(Some(pool))
                }
                _ => Ok(None),
            }
        })
        .await
    }
}
