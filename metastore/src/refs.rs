//! Chunk reference counting: the changes a transaction makes to chunks' counts
//! ([`RefDelta`]), how they are applied next to the manifests that cause them (a count at 0
//! queues the chunk for GC; an increment of a chunk being deleted fails), and the tombstone a
//! collected chunk leaves on a shared store.

use std::collections::HashMap;
use std::sync::Arc;

use crate::kv::Tree;
use crate::records::{ChunkRef, RefRecord, encode};
use crate::store::{Inner, now_ms};
use crate::txn::{Reader, RefChange, Rev, Tx};
use crate::{Error, Result, keys};

/// Chunks a writer stored itself, each with the store revision at which it found the chunk
/// not stored.
pub(crate) type NewChunks = HashMap<[u8; 32], Rev>;

/// Refcount changes of one transaction, by chunk: (change, length, pool a new record names).
#[derive(Default)]
pub(crate) struct RefDelta {
    changes: HashMap<[u8; 32], (i64, u32, u32)>,
    /// When known, the chunks the writer stored itself: an increment of any other chunk
    /// needs it still stored (see [`MetaStore::with_new_chunks`]).
    new_chunks: Option<Arc<NewChunks>>,
}

impl RefDelta {
    /// A delta whose increments of chunks outside `new_chunks` (when given) must find them
    /// stored.
    pub(crate) fn checked(new_chunks: Option<Arc<NewChunks>>) -> Self {
        RefDelta {
            changes: HashMap::new(),
            new_chunks,
        }
    }

    /// A change that takes a chunk's count from `from` to `to`; a record it creates names
    /// `pool`.
    pub(crate) fn set(&mut self, hash: [u8; 32], from: u64, to: u64, len: u32, pool: u32) {
        self.changes
            .insert(hash, (to as i64 - from as i64, len, pool));
    }

    pub(crate) fn add(&mut self, chunks: &[ChunkRef], by: i64) {
        for c in chunks {
            self.add_one(c.hash, by, c.len, c.stored_in);
        }
    }

    pub(crate) fn add_one(&mut self, hash: [u8; 32], by: i64, len: u32, pool: u32) {
        self.changes.entry(hash).or_insert((0, len, pool)).0 += by;
    }

    fn must_exist(&self, hash: &[u8; 32]) -> bool {
        self.new_chunks
            .as_ref()
            .is_some_and(|n| !n.contains_key(hash))
    }

    /// For a chunk the writer stored itself: the revision at which it found it not stored.
    fn stored_after(&self, hash: &[u8; 32]) -> Option<Rev> {
        self.new_chunks.as_ref()?.get(hash).copied()
    }
}

/// How long a tombstone stays (see `RefRecord::collected`): longer than any request takes
/// between finding a chunk not stored and committing it.
pub(crate) const TOMBSTONE_KEEP_MS: u64 = 24 * 3_600_000;

impl Inner {
    /// Adds the refcount changes to the transaction; chunks that drop to zero are queued for
    /// GC. An increment of a chunk being collected, or of one that must exist and has no
    /// record, is [`Error::ChunkGone`]: its shards are (being) deleted.
    pub(crate) fn apply_refs(&self, tx: &mut Tx<'_>, delta: RefDelta) -> Result<()> {
        let due = now_ms() + self.gc_grace_ms;
        for (&hash, &(change, len, new_pool)) in &delta.changes {
            if change == 0 {
                continue;
            }
            let must_exist = delta.must_exist(&hash);
            let stored_after = delta.stored_after(&hash);
            let read: Option<RefRecord> = tx.get(Tree::Refcounts, &hash)?;
            // A tombstone is "not stored"; dated by its key's revision.
            let tombstone_rev = read.filter(|r| r.collected).and(tx.last_key_rev());
            let current = read.and_then(RefRecord::live);
            if change > 0 {
                match &current {
                    Some(r) if r.deleting => return Err(Error::ChunkGone(hash)),
                    None if must_exist => return Err(Error::ChunkGone(hash)),
                    _ => {}
                }
                // Deleted after this writer found it not stored and wrote it: its shards may
                // be among those deleted.
                if let (Some(deleted), Some(checked)) = (tombstone_rev, stored_after)
                    && deleted > checked
                {
                    return Err(Error::ChunkGone(hash));
                }
            }
            // Where the chunk lives is kept; only a new record takes the writer's pool.
            let pool = current.map_or(new_pool, |r| r.pool);
            let before = current.map_or(0, |r| r.count) as i64;
            let after = before + change;
            if after < 0 {
                tracing::error!(chunk = ?hash, before, change, "refcount would go negative; clamping to 0");
            }
            let after = after.max(0) as u64;
            let record = encode(&RefRecord {
                count: after,
                len,
                pool,
                deleting: current.is_some_and(|r| r.deleting),
                collected: false,
                kept_until_ms: 0,
            });
            tx.record_ref(RefChange {
                hash,
                change,
                len,
                pool: new_pool,
                must_exist,
                stored_after,
            });
            // Increments before the manifest that needs them, decrements after the one that
            // let them go (only the order of the steps of a large change depends on it).
            if change > 0 {
                tx.put_first(Tree::Refcounts, hash.to_vec(), record);
            } else {
                tx.put_last(Tree::Refcounts, hash.to_vec(), record);
            }
            if after == 0 {
                tx.put_last(Tree::Gc, keys::gc(due, &hash), Vec::new());
            }
        }
        Ok(())
    }

    /// Ends a chunk record once its shards are deleted: on a store only this process writes
    /// (pins keep its own writers off), the record goes; on a shared store it becomes a
    /// tombstone until `TOMBSTONE_KEEP_MS` from now, when garbage collection removes it.
    pub(crate) fn bury(&self, tx: &mut Tx<'_>, hash: [u8; 32], record: RefRecord) {
        if self.kv.single_writer() {
            tx.delete(Tree::Refcounts, hash.to_vec());
            return;
        }
        let until = now_ms() + TOMBSTONE_KEEP_MS;
        let tombstone = RefRecord {
            count: 0,
            deleting: false,
            collected: true,
            kept_until_ms: until,
            ..record
        };
        tx.put(Tree::Refcounts, hash.to_vec(), encode(&tombstone));
        tx.put(Tree::Gc, keys::gc(until, &hash), Vec::new());
    }
}
