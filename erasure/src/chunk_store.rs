//! Writing and reading whole chunks as erasure-coded stripes over a set of [`ShardStore`]s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use futures::future::join_all;
use tracing::warn;

use crate::shard_format::{self, ShardHeader};
use crate::{ChunkHash, Codec, Error, Layout, Result, ShardKey, ShardStore};

#[derive(Debug)]
pub struct ChunkStore {
    pub(crate) layout: Layout,
    pub(crate) codec: Codec,
    pub(crate) disks: Vec<Arc<dyn ShardStore>>,
    pub(crate) counters: ChunkCounters,
}

/// What reads, writes and heals met since start (for operators and metrics).
#[derive(Debug, Default)]
pub struct ChunkCounters {
    /// Shards that failed their checksum (bit rot, torn or foreign files).
    pub corrupt_found: AtomicU64,
    /// Shards that were absent from an online disk.
    pub missing_found: AtomicU64,
    /// Shards rebuilt from the others and written back.
    pub shards_healed: AtomicU64,
    /// Rebuilt shards that could not be written back (the disk is still failing).
    pub heal_failures: AtomicU64,
    pub shard_read_errors: AtomicU64,
    pub shard_write_errors: AtomicU64,
}

/// A copy of [`ChunkCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CounterSnapshot {
    pub corrupt_found: u64,
    pub missing_found: u64,
    pub shards_healed: u64,
    pub heal_failures: u64,
    pub shard_read_errors: u64,
    pub shard_write_errors: u64,
}

impl ChunkCounters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            corrupt_found: self.corrupt_found.load(Relaxed),
            missing_found: self.missing_found.load(Relaxed),
            shards_healed: self.shards_healed.load(Relaxed),
            heal_failures: self.heal_failures.load(Relaxed),
            shard_read_errors: self.shard_read_errors.load(Relaxed),
            shard_write_errors: self.shard_write_errors.load(Relaxed),
        }
    }
}

/// What a chunk write achieved: the shard positions that could not be written are the ones a
/// heal must fill in later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutChunkReport {
    pub written: usize,
    pub failed_positions: Vec<usize>,
    /// Disks that took a shard: [`ChunkStore::sync_disks`] must flush them before the chunk
    /// counts as stored.
    pub disks_written: Vec<usize>,
}

impl ChunkStore {
    pub fn new(layout: Layout, disks: Vec<Arc<dyn ShardStore>>) -> Result<Self> {
        if disks.len() != layout.disks {
            return Err(Error::Layout(format!(
                "layout wants {} disks, {} given",
                layout.disks,
                disks.len()
            )));
        }
        let codec = Codec::new(layout.data(), layout.parity)?;
        Ok(ChunkStore {
            layout,
            codec,
            disks,
            counters: ChunkCounters::default(),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn disks(&self) -> &[Arc<dyn ShardStore>] {
        &self.disks
    }

    pub fn counters(&self) -> &ChunkCounters {
        &self.counters
    }

    /// Encodes and stores a chunk. Succeeds once the write quorum of shards is written; they
    /// are durable only after [`ChunkStore::sync_disks`] on `disks_written`, which the caller
    /// must await before anything refers to the chunk.
    pub async fn put_chunk(&self, hash: ChunkHash, data: Bytes) -> Result<PutChunkReport> {
        let codec = self.codec;
        let files =
            tokio::task::spawn_blocking(move || encode_shard_files(codec, hash, &data)).await??;

        let placement = self.layout.placement(&hash);
        let writes = files.into_iter().enumerate().map(|(i, file)| {
            let disk = &self.disks[placement[i]];
            let key = ShardKey {
                chunk: hash,
                index: i as u8,
            };
            // Durable later, by `sync_disks`, once the writer has stored all its chunks.
            let parity = i >= codec.data_shards();
            async move {
                match parity {
                    true => disk.put_unsynced_cold(key, file).await,
                    false => disk.put_unsynced(key, file).await,
                }
            }
        });
        let results = join_all(writes).await;
        let mut failed_positions = Vec::new();
        let mut errors = Vec::new();
        let mut full = false;
        for (i, r) in results.into_iter().enumerate() {
            if let Err(e) = r {
                self.counters.shard_write_errors.fetch_add(1, Relaxed);
                warn!(chunk = %hash, position = i, disk = %self.disks[placement[i]].name(), error = %e, "shard write failed");
                full |= e.is_storage_full();
                errors.push(format!("{}: {e}", self.disks[placement[i]].name()));
                failed_positions.push(i);
            }
        }
        let written = self.codec.total_shards() - failed_positions.len();
        if written < self.layout.write_quorum() {
            // Shards that did land stay until the orphan sweep: another request may be
            // writing the same chunk right now, and deleting here could undo its quorum.
            let detail = errors.join("; ");
            if full {
                return Err(Error::StorageFull { detail });
            }
            return Err(Error::WriteQuorum {
                written,
                needed: self.layout.write_quorum(),
                detail,
            });
        }
        let disks_written = placement
            .iter()
            .enumerate()
            .filter(|(i, _)| !failed_positions.contains(i))
            .map(|(_, &d)| d)
            .collect();
        Ok(PutChunkReport {
            written,
            failed_positions,
            disks_written,
        })
    }

    /// Makes the shards [`ChunkStore::put_chunk`] wrote on `disks` durable, one flush per
    /// disk, all at once. Returns the disks whose flush failed (their new shards may be lost).
    pub async fn sync_disks(&self, disks: &BTreeSet<usize>) -> BTreeSet<usize> {
        let syncs = disks
            .iter()
            .map(|&d| async move { (d, self.disks[d].sync().await) });
        let mut failed = BTreeSet::new();
        for (d, r) in join_all(syncs).await {
            if let Err(e) = r {
                self.counters.shard_write_errors.fetch_add(1, Relaxed);
                warn!(disk = %self.disks[d].name(), error = %e, "flushing new shards failed");
                failed.insert(d);
            }
        }
        failed
    }

    /// Reads a chunk of `len` bytes: data shards first, parity only when some are missing or
    /// fail their checksum. A damaged shard is never served; it is rebuilt from the others and
    /// rewritten before this returns (heal on read), a corrupt one moved aside first.
    pub async fn get_chunk(&self, hash: ChunkHash, len: u64) -> Result<Bytes> {
        let k = self.codec.data_shards();
        let n = self.codec.total_shards();
        let mut slots: Vec<Option<Bytes>> = vec![None; n];
        let mut problems = Vec::new();

        let data = join_all((0..k).map(|i| self.read_shard(hash, i, len))).await;
        for (i, r) in data.into_iter().enumerate() {
            match r {
                Ok(p) => slots[i] = Some(p),
                Err(e) => problems.push((i, e)),
            }
        }
        if problems.is_empty() {
            return self.codec.decode(&slots, len as usize);
        }
        let parity = join_all((k..n).map(|i| self.read_shard(hash, i, len))).await;
        for (j, r) in parity.into_iter().enumerate() {
            match r {
                Ok(p) => slots[k + j] = Some(p),
                Err(e) => problems.push((k + j, e)),
            }
        }
        let data = self.reconstruct(hash, len, slots, &problems).await?;
        self.repair(hash, &data, problems).await;
        Ok(data)
    }

    /// Reads a chunk whose bytes the caller authenticates itself (sealed with AES-GCM): the
    /// data shards' payload checksums are not computed, which saves a pass over every byte.
    /// Any trouble with a data shard (missing, unreadable, a bad header) falls back to
    /// [`Self::get_chunk`]; so must the caller when its own check fails, and that read finds,
    /// rebuilds and rewrites the damaged shard.
    pub async fn get_chunk_authenticated(&self, hash: ChunkHash, len: u64) -> Result<Bytes> {
        let k = self.codec.data_shards();
        let data = join_all((0..k).map(|i| self.read_shard_checked(hash, i, len, false))).await;
        let mut slots: Vec<Option<Bytes>> = vec![None; self.codec.total_shards()];
        for (slot, read) in slots.iter_mut().zip(data) {
            match read {
                Ok(payload) => *slot = Some(payload),
                Err(_) => return self.get_chunk(hash, len).await,
            }
        }
        self.codec.decode(&slots, len as usize)
    }

    /// Reads and verifies the shard at stripe position `index`.
    pub(crate) async fn read_shard(
        &self,
        hash: ChunkHash,
        index: usize,
        len: u64,
    ) -> Result<Bytes> {
        self.read_shard_checked(hash, index, len, true).await
    }

    async fn read_shard_checked(
        &self,
        hash: ChunkHash,
        index: usize,
        len: u64,
        check_payload: bool,
    ) -> Result<Bytes> {
        let key = ShardKey {
            chunk: hash,
            index: index as u8,
        };
        let disk = self.layout.placement(&hash)[index];
        let file = self.disks[disk].get(key).await?;
        let (header, payload) = shard_format::decode_checked(&file, check_payload)?;
        if header.chunk != hash || header.index as usize != index || header.chunk_len != len {
            return Err(Error::Corrupt(format!(
                "shard header names {:?} position {} length {}",
                header.chunk, header.index, header.chunk_len
            )));
        }
        Ok(payload)
    }

    /// How many shard files of a chunk exist now (read back, not verified).
    pub async fn count_shards(&self, hash: ChunkHash) -> usize {
        let placement = self.layout.placement(&hash);
        let gets = placement.iter().enumerate().map(|(i, &disk)| {
            self.disks[disk].get(ShardKey {
                chunk: hash,
                index: i as u8,
            })
        });
        join_all(gets).await.iter().filter(|r| r.is_ok()).count()
    }

    /// Tells every disk the fencing token `fence` (a delete of a shard that cannot exist), so
    /// that deletes carrying older tokens are refused there from now on. Best effort: a disk
    /// that does not answer learns it from the next real delete.
    pub async fn announce_fence(&self, fence: u64) {
        let nothing = ShardKey {
            chunk: ChunkHash([0; 32]),
            index: 0,
        };
        let deletes = self.disks.iter().map(|d| d.delete_fenced(nothing, fence));
        for (disk, outcome) in self.disks.iter().zip(join_all(deletes).await) {
            if let Err(e) = outcome {
                tracing::debug!(disk = %disk.name(), error = %e, "the fencing token was not announced");
            }
        }
    }

    /// Removes every shard of a chunk. Missing shards are fine; failing disks are reported.
    /// `fence` is the deleting leader's fencing token (0: none; see [`crate::FenceMark`]).
    pub async fn delete_chunk(&self, hash: ChunkHash, fence: u64) -> Result<()> {
        let placement = self.layout.placement(&hash);
        let deletes = placement.iter().enumerate().map(|(i, &disk)| {
            let key = ShardKey {
                chunk: hash,
                index: i as u8,
            };
            self.disks[disk].delete_fenced(key, fence)
        });
        let errors: Vec<_> = join_all(deletes)
            .await
            .into_iter()
            .filter_map(|r| r.err())
            .collect();
        match errors.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// The shard files (header + payload) of every stripe position of a chunk.
pub(crate) fn encode_shard_files(
    codec: Codec,
    hash: ChunkHash,
    data: &Bytes,
) -> Result<Vec<Bytes>> {
    let shards = codec.encode(data)?;
    Ok(shards
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let header = ShardHeader {
                index: i as u8,
                data_shards: codec.data_shards() as u8,
                parity_shards: codec.parity_shards() as u8,
                chunk: hash,
                chunk_len: data.len() as u64,
                payload_len: payload.len() as u32,
            };
            shard_format::encode(&header, payload)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryShardStore;
    use proptest::prelude::*;

    fn stores(n: usize) -> (Vec<Arc<MemoryShardStore>>, Vec<Arc<dyn ShardStore>>) {
        let mem: Vec<_> = (0..n)
            .map(|i| Arc::new(MemoryShardStore::new(format!("d{i}"))))
            .collect();
        let dyns = mem
            .iter()
            .map(|m| m.clone() as Arc<dyn ShardStore>)
            .collect();
        (mem, dyns)
    }

    fn data(len: usize, seed: u64) -> Bytes {
        let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
            .into()
    }

    #[tokio::test]
    async fn writes_one_shard_per_disk_and_reads_back() {
        let (mem, dyns) = stores(4);
        let cs = ChunkStore::new(Layout::new(4, None).unwrap(), dyns).unwrap();
        let chunk = data(1 << 20, 1);
        let h = ChunkHash::of(&chunk);
        let report = cs.put_chunk(h, chunk.clone()).await.unwrap();
        assert_eq!(report.written, 4);
        for m in &mem {
            assert_eq!(m.list().await.unwrap().len(), 1);
        }
        assert_eq!(cs.get_chunk(h, chunk.len() as u64).await.unwrap(), chunk);
    }

    #[tokio::test]
    async fn corrupt_shard_is_reconstructed_from_parity() {
        let (mem, dyns) = stores(4);
        let layout = Layout::new(4, None).unwrap();
        let cs = ChunkStore::new(layout, dyns).unwrap();
        let chunk = data(300_000, 2);
        let h = ChunkHash::of(&chunk);
        cs.put_chunk(h, chunk.clone()).await.unwrap();
        let disk = layout.placement(&h)[0];
        let key = ShardKey { chunk: h, index: 0 };
        let mut file = mem[disk].get(key).await.unwrap().to_vec();
        let last = file.len() - 1;
        file[last] ^= 1;
        mem[disk].put(key, file.into()).await.unwrap();
        assert_eq!(cs.get_chunk(h, chunk.len() as u64).await.unwrap(), chunk);
    }

    #[tokio::test]
    async fn losing_more_than_parity_fails_cleanly() {
        let (mem, dyns) = stores(4);
        let layout = Layout::new(4, None).unwrap();
        let cs = ChunkStore::new(layout, dyns).unwrap();
        let chunk = data(5000, 3);
        let h = ChunkHash::of(&chunk);
        cs.put_chunk(h, chunk.clone()).await.unwrap();
        let placement = layout.placement(&h);
        for i in 0..3 {
            mem[placement[i]]
                .delete(ShardKey {
                    chunk: h,
                    index: i as u8,
                })
                .await
                .unwrap();
        }
        assert!(matches!(
            cs.get_chunk(h, chunk.len() as u64).await,
            Err(Error::ReadQuorum {
                available: 1,
                needed: 2,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn delete_removes_every_shard() {
        let (mem, dyns) = stores(6);
        let cs = ChunkStore::new(Layout::new(6, None).unwrap(), dyns).unwrap();
        let chunk = data(70_000, 4);
        let h = ChunkHash::of(&chunk);
        cs.put_chunk(h, chunk).await.unwrap();
        cs.delete_chunk(h, 0).await.unwrap();
        for m in &mem {
            assert!(m.list().await.unwrap().is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any combination of up to m lost or corrupted shards gives back the exact chunk.
        #[test]
        fn up_to_m_damaged_shards_read_back_exact(
            disks in 1usize..9,
            len in 1usize..200_000,
            seed in any::<u64>(),
            damage in proptest::collection::vec((any::<u8>(), any::<bool>()), 0..5),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (mem, dyns) = stores(disks);
                let layout = Layout::new(disks, None).unwrap();
                let cs = ChunkStore::new(layout, dyns).unwrap();
                let chunk = data(len, seed);
                let h = ChunkHash::of(&chunk);
                cs.put_chunk(h, chunk.clone()).await.unwrap();
                let placement = layout.placement(&h);
                let mut damaged = std::collections::HashSet::new();
                for (pos, corrupt) in damage {
                    if damaged.len() == layout.parity { break; }
                    let pos = pos as usize % placement.len();
                    if !damaged.insert(pos) { continue; }
                    let key = ShardKey { chunk: h, index: pos as u8 };
                    let store = &mem[placement[pos]];
                    if corrupt {
                        let mut f = store.get(key).await.unwrap().to_vec();
                        let at = (seed as usize) % f.len();
                        f[at] ^= 0x5a;
                        store.put(key, f.into()).await.unwrap();
                    } else {
                        store.delete(key).await.unwrap();
                    }
                }
                assert_eq!(cs.get_chunk(h, len as u64).await.unwrap(), chunk);
            });
        }
    }
}
