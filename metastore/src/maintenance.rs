//! Bookkeeping for durability work: the persistent heal queue, paging through every stored
//! chunk (for the scanner), recounting chunk references from the manifests (`check`), and
//! usage totals.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::keys;
use crate::kv::{Batch, Tree, scan_all};
use crate::records::{ObjectRecord, PartRecord, RefRecord, decode, encode};
use crate::refs::RefDelta;
use crate::steps::{INTENT_ABANDONED_MS, INTENT_PREFIX, IntentRecord, chunks_in_flux};
use crate::store::MetaStore;
use crate::txn::Reader;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct HealRecord {
    len: u32,
    queued_ms: u64,
}

/// A stored chunk and its reference count (0: waiting for garbage collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub hash: [u8; 32],
    pub len: u32,
    pub refs: u64,
    pub pool: u32,
}

/// A chunk whose recorded reference count disagrees with the manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefMismatch {
    pub chunk: String,
    /// The recorded count; `None` when the chunk has no record at all.
    pub recorded: Option<u64>,
    /// References found in object versions and uploaded parts.
    pub counted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefcountCheck {
    pub chunks_recorded: u64,
    pub chunks_referenced: u64,
    pub mismatched: Vec<RefMismatch>,
    /// True when the mismatches were corrected.
    pub repaired: bool,
}

/// Totals over the whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub buckets: u64,
    /// Current objects (latest versions that are not delete markers).
    pub objects: u64,
    /// Every stored version, delete markers included.
    pub versions: u64,
    /// Sum of the sizes of every version that holds data, as clients see them.
    pub logical_bytes: u64,
    /// Bytes kept inside the metadata (small objects).
    pub inline_bytes: u64,
    /// Distinct chunks stored, and their bytes before erasure coding.
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// The same, by the pool holding the chunks.
    pub pools: std::collections::BTreeMap<u32, crate::PoolHoldings>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl MetaStore {
    /// Records that a chunk's stripe lacks shards. Survives restarts until [`Self::heal_done`].
    pub async fn heal_enqueue(&self, hash: [u8; 32], len: u32) -> Result<()> {
        self.run(move |s| {
            let mut b = Batch::default();
            let rec = HealRecord {
                len,
                queued_ms: now_ms(),
            };
            b.put(Tree::Heal, hash.to_vec(), encode(&rec));
            s.commit(b)
        })
        .await
    }

    /// Up to `limit` queued chunks: (hash, length).
    pub async fn heal_queue(&self, limit: usize) -> Result<Vec<([u8; 32], u32)>> {
        self.run(move |s| {
            s.kv.scan(Tree::Heal, &[], None, limit)?
                .into_iter()
                .filter_map(|(k, v)| {
                    let hash: [u8; 32] = k.as_slice().try_into().ok()?;
                    Some(decode::<HealRecord>(&v).map(|r| (hash, r.len)))
                })
                .collect()
        })
        .await
    }

    pub async fn heal_done(&self, hash: [u8; 32]) -> Result<()> {
        self.run(move |s| {
            let mut b = Batch::default();
            b.delete(Tree::Heal, hash.to_vec());
            s.commit(b)
        })
        .await
    }

    pub async fn heal_queue_len(&self) -> Result<u64> {
        self.count(Tree::Heal).await
    }

    /// How many chunks are stored (referenced or waiting for GC).
    pub async fn chunk_count(&self) -> Result<u64> {
        self.run(|s| {
            let mut n = 0;
            scan_all(s.kv.as_ref(), Tree::Refcounts, |(_, v)| {
                n += u64::from(decode::<RefRecord>(&v)?.live().is_some());
                Ok(())
            })?;
            Ok(n)
        })
        .await
    }

    async fn count(&self, tree: Tree) -> Result<u64> {
        self.run(move |s| {
            let mut n = 0;
            scan_all(s.kv.as_ref(), tree, |_| {
                n += 1;
                Ok(())
            })?;
            Ok(n)
        })
        .await
    }

    /// Stored chunks in hash order, starting after `after`.
    pub async fn chunks_after(
        &self,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<ChunkEntry>> {
        self.run(move |s| {
            let start = match after {
                Some(h) => {
                    let mut k = h.to_vec();
                    k.push(0);
                    k
                }
                None => Vec::new(),
            };
            // Tombstones are skipped; a page is only short at the end.
            let mut out = Vec::new();
            let mut start = start;
            loop {
                let page = s.kv.scan(Tree::Refcounts, &start, None, limit)?;
                let full = page.len() == limit;
                let Some((last, _)) = page.last() else {
                    return Ok(out);
                };
                start = last.clone();
                start.push(0);
                for (k, v) in page {
                    let Ok(hash) = <[u8; 32]>::try_from(k.as_slice()) else {
                        continue;
                    };
                    let Some(r) = decode::<RefRecord>(&v)?.live() else {
                        continue;
                    };
                    out.push(ChunkEntry {
                        hash,
                        len: r.len,
                        refs: r.count,
                        pool: r.pool,
                    });
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
                if !full {
                    return Ok(out);
                }
            }
        })
        .await
    }

    /// Recounts every chunk reference from the object versions and the parts of live uploads
    /// and compares the counts with the recorded ones; with `repair`, corrects the records (a
    /// chunk no longer referenced is queued for garbage collection) and deletes part records
    /// whose upload is gone. One transaction: on a shared store it runs again while other
    /// writers change what it read, so the counts it compares belong to one moment.
    pub async fn check_refcounts(&self, repair: bool) -> Result<RefcountCheck> {
        self.txn(move |s, tx| {
            let mut counted: HashMap<[u8; 32], (u64, u32)> = HashMap::new();
            let mut count = |chunks: &[crate::ChunkRef]| {
                for c in chunks {
                    let e = counted.entry(c.hash).or_insert((0, c.len));
                    e.0 += 1;
                }
            };
            for (_, v) in tx.scan(Tree::Versions, &[], None, usize::MAX)? {
                count(decode::<ObjectRecord>(&v)?.data.chunks());
            }
            // Parts of a completed or aborted upload are deleted after its record (a change
            // applied in steps, which a crash may cut short): their references were already
            // handed over or released with the upload record, so they count for nothing.
            let uploads: HashSet<Vec<u8>> = tx
                .scan(Tree::Uploads, &[], None, usize::MAX)?
                .into_iter()
                .filter_map(|(k, _)| {
                    let at = k.iter().rposition(|&b| b == 0)?;
                    Some(k[at + 1..].to_vec())
                })
                .collect();
            let mut stray_parts = Vec::new();
            for (k, v) in tx.scan(Tree::Parts, &[], None, usize::MAX)? {
                // `upload-id 0x00 part-number (4 bytes)`
                let upload = k.len().checked_sub(5).map(|end| &k[..end]);
                if upload.is_some_and(|id| uploads.contains(id)) {
                    count(&decode::<PartRecord>(&v)?.chunks);
                } else {
                    stray_parts.push(k);
                }
            }
            let mut recorded: HashMap<[u8; 32], RefRecord> = HashMap::new();
            for (k, v) in tx.scan(Tree::Refcounts, &[], None, usize::MAX)? {
                if let Ok(hash) = <[u8; 32]>::try_from(k.as_slice())
                    && let Some(r) = decode::<RefRecord>(&v)?.live()
                {
                    recorded.insert(hash, r);
                }
            }

            // Counts a change in steps is updating now may be off by its references for a
            // moment (increments land before the manifest, decrements after): left alone,
            // unless the change was abandoned long ago.
            let intent_end = keys::prefix_end(INTENT_PREFIX);
            let intents = tx.scan(Tree::Meta, INTENT_PREFIX, intent_end.as_deref(), usize::MAX)?;
            let in_flux = chunks_in_flux(&intents)?;
            counted.retain(|h, _| !in_flux.contains(h));
            recorded.retain(|h, _| !in_flux.contains(h));
            let mut report = RefcountCheck {
                chunks_recorded: recorded.len() as u64,
                chunks_referenced: counted.len() as u64,
                ..RefcountCheck::default()
            };
            let mut fixes = RefDelta::checked(None);
            for (hash, &(n, len)) in &counted {
                let have = recorded.get(hash).map(|r| r.count);
                if have != Some(n) {
                    report.mismatched.push(RefMismatch {
                        chunk: hex::encode(hash),
                        recorded: have,
                        counted: n,
                    });
                    fixes.set(*hash, have.unwrap_or(0), n, len, 0);
                }
            }
            for (hash, rec) in &recorded {
                if rec.count > 0 && !counted.contains_key(hash) {
                    report.mismatched.push(RefMismatch {
                        chunk: hex::encode(hash),
                        recorded: Some(rec.count),
                        counted: 0,
                    });
                    fixes.set(*hash, rec.count, 0, rec.len, rec.pool);
                }
            }
            report.mismatched.sort_by(|a, b| a.chunk.cmp(&b.chunk));
            if repair && !report.mismatched.is_empty() {
                s.apply_refs(tx, fixes)?;
                report.repaired = true;
            }
            if repair && !stray_parts.is_empty() {
                tracing::info!(
                    parts = stray_parts.len(),
                    "deleting the part records of uploads that are gone"
                );
                for k in stray_parts {
                    tx.delete(Tree::Parts, k);
                }
            }
            if repair {
                let live: Vec<Vec<u8>> = intents
                    .iter()
                    .filter(|(_, v)| {
                        decode::<IntentRecord>(v).is_ok_and(|i| {
                            now_ms().saturating_sub(i.started_ms) < INTENT_ABANDONED_MS
                        })
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for (k, _) in intents.into_iter().filter(|(k, _)| !live.contains(k)) {
                    tx.delete(Tree::Meta, k);
                }
            }
            Ok(report)
        })
        .await
    }

    /// Counts buckets, objects, versions and bytes. Reads everything: for admin use.
    pub async fn usage(&self) -> Result<Usage> {
        self.run(|s| {
            let kv = s.kv.as_ref();
            let mut u = Usage::default();
            scan_all(kv, Tree::Buckets, |_| {
                u.buckets += 1;
                Ok(())
            })?;
            scan_all(kv, Tree::Objects, |(_, v)| {
                if !decode::<ObjectRecord>(&v)?.delete_marker {
                    u.objects += 1;
                }
                Ok(())
            })?;
            scan_all(kv, Tree::Versions, |(_, v)| {
                let r: ObjectRecord = decode(&v)?;
                u.versions += 1;
                if !r.delete_marker {
                    u.logical_bytes += r.size;
                    if let crate::ObjectData::Inline(b) = &r.data {
                        u.inline_bytes += b.len() as u64;
                    }
                }
                Ok(())
            })?;
            scan_all(kv, Tree::Refcounts, |(_, v)| {
                let Some(r) = decode::<RefRecord>(&v)?.live() else {
                    return Ok(());
                };
                u.chunks += 1;
                u.chunk_bytes += r.len as u64;
                let p = u.pools.entry(r.pool).or_default();
                p.chunks += 1;
                p.bytes += r.len as u64;
                Ok(())
            })?;
            Ok(u)
        })
        .await
    }
}
