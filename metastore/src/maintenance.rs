//! Bookkeeping for durability work: the persistent heal queue, paging through every stored
//! chunk (for the scanner), recounting chunk references from the manifests (`check`), and
//! usage totals.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::keys;
use crate::kv::{Batch, SnapshotRead, Tree, scan_all};
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
    /// Object versions whose data is encrypted, by key (`Encryption::key_label`; counted by
    /// the same scan, so a server can tell which objects need a key it lacks).
    pub encrypted: std::collections::BTreeMap<String, EncryptedVersions>,
}

/// How many versions one master key encrypts, and the first few of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EncryptedVersions {
    pub versions: u64,
    /// `bucket/key` (with ` version ID` for a versioned one), at most [`EXAMPLES`].
    pub examples: Vec<String>,
}

/// How many encrypted versions a check names per master key.
const EXAMPLES: usize = 20;

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
    /// Distinct chunks stored, and their bytes before erasure coding (as stored: compressed
    /// and sealed where they are).
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// The same chunks' data before compression: the bytes after dedup alone. Compressed
    /// chunks count their data length, as object versions name it (the chunks of uploads
    /// not completed yet count as stored).
    pub chunk_data_bytes: u64,
    /// The same, by the pool holding the chunks.
    pub pools: std::collections::BTreeMap<u32, crate::PoolHoldings>,
    /// Objects and bytes by bucket (the web console's bucket list). Not in `admin info`'s
    /// JSON, which stays one small document however many buckets there are.
    #[serde(skip_serializing)]
    pub by_bucket: std::collections::BTreeMap<String, BucketUsage>,
}

/// One bucket's share of [`Usage`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BucketUsage {
    /// Current objects, and the sum of their sizes.
    pub objects: u64,
    pub bytes: u64,
    /// Every version that holds data (current or not), and the sum of their sizes.
    pub versions: u64,
    pub version_bytes: u64,
}

/// The bucket of an Objects or Versions tree key (`bucket 0x00 ...`); borrowed, so the
/// usage scan allocates nothing per key.
fn bucket_of(key: &[u8]) -> &str {
    let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
    std::str::from_utf8(&key[..end]).unwrap_or_default()
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
    /// whose upload is gone.
    ///
    /// Writers are never held up. The recount reads one snapshot of the store (a RocksDB
    /// snapshot, or etcd at one revision), so manifests and counts belong to one moment and
    /// every mismatch it reports was there at that moment. A repair then corrects each count
    /// by the error found (counted minus recorded, in a short transaction on the count as it
    /// is now), which keeps every change writers made since the snapshot. Repairs are
    /// serialised (the admin API runs on the leader alone), so no error is corrected twice.
    pub async fn check_refcounts(&self, repair: bool) -> Result<RefcountCheck> {
        let _one_at_a_time = self.inner.check_lock.lock().await;
        let found = self.recount().await?;
        let mut report = RefcountCheck {
            chunks_recorded: found.recorded.len() as u64,
            chunks_referenced: found.counted.len() as u64,
            mismatched: found.mismatches.iter().map(Drift::report).collect(),
            repaired: false,
            encrypted: found.encrypted.clone(),
        };
        report.mismatched.sort_by(|a, b| a.chunk.cmp(&b.chunk));
        if !repair {
            return Ok(report);
        }
        for group in found.mismatches.chunks(REPAIR_GROUP) {
            let group = group.to_vec();
            self.txn(move |s, tx| {
                let mut fixes = RefDelta::checked(None);
                for d in &group {
                    let now = tx
                        .get::<RefRecord>(Tree::Refcounts, &d.hash)?
                        .and_then(RefRecord::live);
                    // Its shards are being deleted: no count can bring them back (the shard
                    // check reports the chunk).
                    if d.counted > d.recorded.unwrap_or(0) && now.is_some_and(|r| r.deleting) {
                        continue;
                    }
                    fixes.set(d.hash, d.recorded.unwrap_or(0), d.counted, d.len, d.pool);
                }
                s.apply_refs(tx, fixes)
            })
            .await?;
        }
        report.repaired = !report.mismatched.is_empty();
        for group in found.stray_parts.chunks(REPAIR_GROUP) {
            tracing::info!(
                parts = group.len(),
                "deleting the part records of uploads that are gone"
            );
            let group = group.to_vec();
            // Upload ids are never reused: a part whose upload was gone stays stray.
            self.txn(move |_, tx| {
                for k in &group {
                    tx.delete(Tree::Parts, k.clone());
                }
                Ok(())
            })
            .await?;
        }
        for group in found.abandoned_intents.chunks(REPAIR_GROUP) {
            let group = group.to_vec();
            self.txn(move |_, tx| {
                for (k, v) in &group {
                    // Only the very record found abandoned: a read that guards it.
                    if tx.get_raw(Tree::Meta, k)?.as_ref() == Some(v) {
                        tx.delete(Tree::Meta, k.clone());
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(report)
    }

    /// The recount of [`Self::check_refcounts`], over one snapshot, on the blocking pool.
    async fn recount(&self) -> Result<Recount> {
        self.run(|s| {
            let mut out = None;
            s.kv.with_snapshot(&mut |snap| {
                out = Some(recount_in(snap)?);
                Ok(())
            })?;
            out.ok_or_else(|| crate::Error::Backend("the snapshot read did not run".into()))
        })
        .await
    }

    /// Counts buckets, objects, versions and bytes. Reads everything: for admin use.
    pub async fn usage(&self) -> Result<Usage> {
        self.run(|s| {
            let kv = s.kv.as_ref();
            let mut u = Usage::default();
            scan_all(kv, Tree::Buckets, |(k, _)| {
                u.buckets += 1;
                u.by_bucket.insert(
                    String::from_utf8_lossy(&k).into_owned(),
                    BucketUsage::default(),
                );
                Ok(())
            })?;
            scan_all(kv, Tree::Objects, |(k, v)| {
                let r: ObjectRecord = decode(&v)?;
                if !r.delete_marker {
                    u.objects += 1;
                    if let Some(b) = u.by_bucket.get_mut(bucket_of(&k)) {
                        b.objects += 1;
                        b.bytes += r.size;
                    }
                }
                Ok(())
            })?;
            // Compressed chunks (data length, stored length), from the manifests: the
            // refcount records know only the stored length.
            let mut compressed: HashMap<[u8; 32], (u32, u32)> = HashMap::new();
            scan_all(kv, Tree::Versions, |(k, v)| {
                let r: ObjectRecord = decode(&v)?;
                u.versions += 1;
                if !r.delete_marker {
                    u.logical_bytes += r.size;
                    if let Some(b) = u.by_bucket.get_mut(bucket_of(&k)) {
                        b.versions += 1;
                        b.version_bytes += r.size;
                    }
                    if let crate::ObjectData::Inline(b) = &r.data {
                        u.inline_bytes += b.len() as u64;
                    }
                }
                for c in r.data.chunks().iter().filter(|c| c.plain_len > 0) {
                    compressed.insert(c.hash, (c.plain_len, c.len));
                }
                Ok(())
            })?;
            scan_all(kv, Tree::Refcounts, |(_, v)| {
                let Some(r) = decode::<RefRecord>(&v)?.live() else {
                    return Ok(());
                };
                u.chunks += 1;
                u.chunk_bytes += r.len as u64;
                u.chunk_data_bytes += r.len as u64;
                let p = u.pools.entry(r.pool).or_default();
                p.chunks += 1;
                p.bytes += r.len as u64;
                Ok(())
            })?;
            for (plain, stored) in compressed.values() {
                u.chunk_data_bytes =
                    (u.chunk_data_bytes + *plain as u64).saturating_sub(*stored as u64);
            }
            Ok(u)
        })
        .await
    }
}

/// Mismatches corrected (and stray records deleted) per transaction: small, so that writers
/// touching the same keys rarely conflict with a repair, and well inside etcd's limits.
const REPAIR_GROUP: usize = 128;

/// A chunk whose recorded count differed from the references counted, in the snapshot.
#[derive(Debug, Clone)]
struct Drift {
    hash: [u8; 32],
    recorded: Option<u64>,
    counted: u64,
    len: u32,
    pool: u32,
}

impl Drift {
    fn report(&self) -> RefMismatch {
        RefMismatch {
            chunk: hex::encode(self.hash),
            recorded: self.recorded,
            counted: self.counted,
        }
    }
}

/// What one snapshot held.
struct Recount {
    counted: HashMap<[u8; 32], (u64, u32, u32)>,
    recorded: HashMap<[u8; 32], RefRecord>,
    mismatches: Vec<Drift>,
    /// Part records of uploads that are gone.
    stray_parts: Vec<Vec<u8>>,
    /// Intent records (key, value) of changes abandoned long ago.
    abandoned_intents: Vec<(Vec<u8>, Vec<u8>)>,
    encrypted: std::collections::BTreeMap<String, EncryptedVersions>,
}

fn recount_in(snap: &dyn SnapshotRead) -> Result<Recount> {
    // (references, length, pool) by chunk.
    let mut counted: HashMap<[u8; 32], (u64, u32, u32)> = HashMap::new();
    let mut count = |chunks: &[crate::ChunkRef]| {
        for c in chunks {
            counted.entry(c.hash).or_insert((0, c.len, c.stored_in)).0 += 1;
        }
    };
    let mut encrypted: std::collections::BTreeMap<String, EncryptedVersions> = Default::default();
    scan_all(snap, Tree::Versions, |(k, v)| {
        let record = decode::<ObjectRecord>(&v)?;
        count(record.data.chunks());
        if let Some(e) = &record.encryption {
            let found = encrypted.entry(e.key_label()).or_default();
            found.versions += 1;
            if found.examples.len() < EXAMPLES {
                found
                    .examples
                    .push(version_name(&k, record.version_id.as_deref()));
            }
        }
        Ok(())
    })?;
    // Parts of a completed or aborted upload are deleted after its record (a change applied
    // in steps, which a crash may cut short): their references were already handed over or
    // released with the upload record, so they count for nothing.
    let mut uploads: HashSet<Vec<u8>> = HashSet::new();
    scan_all(snap, Tree::Uploads, |(k, _)| {
        if let Some(at) = k.iter().rposition(|&b| b == 0) {
            uploads.insert(k[at + 1..].to_vec());
        }
        Ok(())
    })?;
    let mut stray_parts = Vec::new();
    scan_all(snap, Tree::Parts, |(k, v)| {
        // `upload-id 0x00 part-number (4 bytes)`
        let upload = k.len().checked_sub(5).map(|end| &k[..end]);
        if upload.is_some_and(|id| uploads.contains(id)) {
            count(&decode::<PartRecord>(&v)?.chunks);
        } else {
            stray_parts.push(k);
        }
        Ok(())
    })?;
    let mut recorded: HashMap<[u8; 32], RefRecord> = HashMap::new();
    scan_all(snap, Tree::Refcounts, |(k, v)| {
        if let Ok(hash) = <[u8; 32]>::try_from(k.as_slice())
            && let Some(r) = decode::<RefRecord>(&v)?.live()
        {
            recorded.insert(hash, r);
        }
        Ok(())
    })?;

    // Counts a change in steps is updating now may be off by its references for a moment
    // (increments land before the manifest, decrements after): left alone, unless the change
    // was abandoned long ago.
    let intent_end = keys::prefix_end(INTENT_PREFIX);
    let intents = snap.scan(Tree::Meta, INTENT_PREFIX, intent_end.as_deref(), usize::MAX)?;
    let in_flux = chunks_in_flux(&intents)?;
    counted.retain(|h, _| !in_flux.contains(h));
    recorded.retain(|h, _| !in_flux.contains(h));
    let abandoned_intents = intents
        .into_iter()
        .filter(|(_, v)| {
            decode::<IntentRecord>(v)
                .is_ok_and(|i| now_ms().saturating_sub(i.started_ms) >= INTENT_ABANDONED_MS)
        })
        .collect();

    let mut mismatches = Vec::new();
    for (hash, &(n, len, pool)) in &counted {
        let have = recorded.get(hash);
        if have.map(|r| r.count) != Some(n) {
            mismatches.push(Drift {
                hash: *hash,
                recorded: have.map(|r| r.count),
                counted: n,
                len,
                pool: have.map_or(pool, |r| r.pool),
            });
        }
    }
    for (hash, rec) in &recorded {
        if rec.count > 0 && !counted.contains_key(hash) {
            mismatches.push(Drift {
                hash: *hash,
                recorded: Some(rec.count),
                counted: 0,
                len: rec.len,
                pool: rec.pool,
            });
        }
    }
    Ok(Recount {
        counted,
        recorded,
        mismatches,
        stray_parts,
        abandoned_intents,
        encrypted,
    })
}

/// `bucket/key` of a version's key (`bucket 0x00 key 0x00 sort`), with its version id.
fn version_name(key: &[u8], version_id: Option<&str>) -> String {
    let text = String::from_utf8_lossy(key);
    let mut parts = text.splitn(2, '\0');
    let bucket = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("");
    let object = rest.rsplit_once('\0').map_or(rest, |(k, _)| k);
    match version_id {
        Some(v) => format!("{bucket}/{object} version {v}"),
        None => format!("{bucket}/{object}"),
    }
}
