//! Healing stripes: rebuilding missing or corrupt shards of a chunk from the healthy ones.
//!
//! Used in two places: on read, when a GET met a damaged shard ([`ChunkStore::get_chunk`]),
//! and by the scanner and heal queue through [`ChunkStore::heal_chunk`], which checks every
//! shard of a chunk. A corrupt shard is moved aside (quarantined) before its replacement is
//! written, so the evidence is kept and a reader never sees it again.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use futures::future::join_all;
use serde::Serialize;
use tracing::{info, warn};

use crate::chunk_store::encode_shard_files;
use crate::{ChunkHash, ChunkStore, Error, Result, ShardKey};

/// What checking one chunk found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealReport {
    /// Stripe positions whose shard was absent from an online disk.
    pub missing: Vec<usize>,
    /// Positions whose shard failed its checksum.
    pub corrupt: Vec<usize>,
    /// Positions whose disk could not be read (offline or failing).
    pub unavailable: Vec<usize>,
    /// Shards rebuilt and written back.
    pub rewritten: usize,
    /// Shards that needed a rewrite that did not succeed.
    pub failed: usize,
    /// Shard bytes read to check the chunk.
    pub bytes_read: u64,
}

impl HealReport {
    /// True when every shard of the stripe is present and verified now.
    pub fn complete(&self) -> bool {
        self.missing.len() + self.corrupt.len() + self.unavailable.len() == self.rewritten
    }

    fn record(&mut self, problems: &[(usize, Error)]) {
        for (i, e) in problems {
            match classify(e) {
                Damage::Missing => self.missing.push(*i),
                Damage::Corrupt => self.corrupt.push(*i),
                Damage::Unavailable => self.unavailable.push(*i),
            }
        }
    }

    pub fn damaged(&self) -> bool {
        !(self.missing.is_empty() && self.corrupt.is_empty() && self.unavailable.is_empty())
    }
}

/// Where one shard of a chunk lives and what a read of it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShardLocation {
    /// Stripe position: below k a data shard, else parity.
    pub index: usize,
    pub parity: bool,
    /// Disk position in the layout.
    pub disk: usize,
    pub status: ShardStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardStatus {
    /// Present and its checksum verified.
    Ok,
    Missing,
    Corrupt,
    /// The disk could not be read (offline or failing).
    Unavailable,
}

/// Why a shard could not be used.
enum Damage {
    Missing,
    Corrupt,
    /// The disk failed: offline, or an I/O error.
    Unavailable,
}

fn classify(e: &Error) -> Damage {
    match e {
        Error::NotFound => Damage::Missing,
        Error::Corrupt(_) => Damage::Corrupt,
        _ => Damage::Unavailable,
    }
}

impl ChunkStore {
    /// Reads every shard of a chunk, verifies it, and rebuilds what is missing or corrupt.
    /// Fails with [`Error::ReadQuorum`] when fewer than k shards are readable.
    pub async fn heal_chunk(&self, hash: ChunkHash, len: u64) -> Result<HealReport> {
        let (slots, problems, bytes_read) = self.read_all(hash, len).await;
        if problems.is_empty() {
            return Ok(HealReport {
                bytes_read,
                ..HealReport::default()
            });
        }
        let data = self.reconstruct(hash, len, slots, &problems).await?;
        let mut report = self.repair(hash, &data, problems).await;
        report.bytes_read = bytes_read;
        Ok(report)
    }

    /// Reads and verifies all k+m shards: the payloads by position, what failed, bytes read.
    async fn read_all(
        &self,
        hash: ChunkHash,
        len: u64,
    ) -> (Vec<Option<Bytes>>, Vec<(usize, Error)>, u64) {
        let n = self.codec.total_shards();
        let mut slots: Vec<Option<Bytes>> = vec![None; n];
        let mut problems = Vec::new();
        let mut bytes_read = 0;
        let reads = join_all((0..n).map(|i| self.read_shard(hash, i, len))).await;
        for (i, r) in reads.into_iter().enumerate() {
            match r {
                Ok(p) => {
                    bytes_read += p.len() as u64;
                    slots[i] = Some(p);
                }
                Err(e) => problems.push((i, e)),
            }
        }
        (slots, problems, bytes_read)
    }

    /// Reads and verifies every shard of a chunk, changing nothing and counting nothing.
    /// Fails with [`Error::ReadQuorum`] when fewer than k shards are readable.
    pub async fn verify_chunk(&self, hash: ChunkHash, len: u64) -> Result<HealReport> {
        let (slots, problems, bytes_read) = self.read_all(hash, len).await;
        let mut report = HealReport {
            bytes_read,
            ..HealReport::default()
        };
        report.record(&problems);
        let available = slots.iter().filter(|s| s.is_some()).count();
        if available < self.codec.data_shards() {
            return Err(Error::ReadQuorum {
                available,
                needed: self.codec.data_shards(),
                detail: format!("{report:?}"),
            });
        }
        Ok(report)
    }

    /// Where each shard of a chunk is placed, each read and verified; changes and counts
    /// nothing.
    pub async fn locate_chunk(&self, hash: ChunkHash, len: u64) -> Vec<ShardLocation> {
        let (_, problems, _) = self.read_all(hash, len).await;
        let k = self.codec.data_shards();
        self.layout
            .placement(&hash)
            .into_iter()
            .enumerate()
            .map(|(index, disk)| ShardLocation {
                index,
                parity: index >= k,
                disk,
                status: match problems.iter().find(|(p, _)| *p == index) {
                    None => ShardStatus::Ok,
                    Some((_, e)) => match classify(e) {
                        Damage::Missing => ShardStatus::Missing,
                        Damage::Corrupt => ShardStatus::Corrupt,
                        Damage::Unavailable => ShardStatus::Unavailable,
                    },
                },
            })
            .collect()
    }

    /// Decodes a chunk from the shards that could be read, counting and logging the rest.
    pub(crate) async fn reconstruct(
        &self,
        hash: ChunkHash,
        len: u64,
        slots: Vec<Option<Bytes>>,
        problems: &[(usize, Error)],
    ) -> Result<Bytes> {
        let placement = self.layout.placement(&hash);
        for (i, e) in problems {
            match classify(e) {
                Damage::Corrupt => self.counters.corrupt_found.fetch_add(1, Relaxed),
                Damage::Missing => self.counters.missing_found.fetch_add(1, Relaxed),
                Damage::Unavailable => self.counters.shard_read_errors.fetch_add(1, Relaxed),
            };
            let disk = self.disks[placement[*i]].name();
            if matches!(e, Error::Offline(_)) {
                // Said once when the disk went offline; a line per chunk read would flood the
                // log of a degraded server (two per MiB read here).
                tracing::debug!(chunk = %hash, position = i, disk = %disk, "shard on an offline disk, rebuilding from the others");
            } else {
                warn!(chunk = %hash, position = i, disk = %disk, error = %e, "shard unusable, rebuilding from the others");
            }
        }
        let k = self.codec.data_shards();
        let available = slots.iter().filter(|s| s.is_some()).count();
        if available < k {
            return Err(Error::ReadQuorum {
                available,
                needed: k,
                detail: problems
                    .iter()
                    .map(|(i, e)| format!("{}: {e}", self.disks[placement[*i]].name()))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        let codec = self.codec;
        tokio::task::spawn_blocking(move || codec.decode(&slots, len as usize)).await?
    }

    /// Rewrites the damaged shards of a chunk whose bytes are known to be right. Shards on
    /// disks that failed are tried too: a disk with a bad sector often takes a fresh write.
    pub(crate) async fn repair(
        &self,
        hash: ChunkHash,
        data: &Bytes,
        problems: Vec<(usize, Error)>,
    ) -> HealReport {
        let mut report = HealReport::default();
        report.record(&problems);
        // A disk known to be offline is not tried: the heal after its return covers it. With
        // nothing else to rewrite, the chunk is not even encoded (a read with disks offline
        // re-encoded every chunk for nothing: 17% of a degraded GET's CPU, BENCHMARKS).
        let problems: Vec<_> = problems
            .into_iter()
            .filter(|(_, e)| !matches!(e, Error::Offline(_)))
            .collect();
        if problems.is_empty() {
            return report;
        }
        let codec = self.codec;
        let bytes = data.clone();
        let files =
            match tokio::task::spawn_blocking(move || encode_shard_files(codec, hash, &bytes))
                .await
                .map_err(Error::from)
                .and_then(|r| r)
            {
                Ok(f) => f,
                Err(e) => {
                    warn!(chunk = %hash, error = %e, "cannot re-encode a chunk to heal it");
                    report.failed = problems.len();
                    self.counters
                        .heal_failures
                        .fetch_add(problems.len() as u64, Relaxed);
                    return report;
                }
            };
        let placement = self.layout.placement(&hash);
        let corrupt = report.corrupt.clone();
        let writes = problems.iter().map(|(i, _)| {
            let disk = &self.disks[placement[*i]];
            let key = ShardKey {
                chunk: hash,
                index: *i as u8,
            };
            let file = files[*i].clone();
            let quarantine = corrupt.contains(i);
            async move {
                if quarantine {
                    match disk.quarantine(key).await {
                        Ok(()) => {
                            info!(chunk = %hash, position = key.index, disk = %disk.name(), "moved a corrupt shard to quarantine")
                        }
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                disk.put(key, file).await
            }
        });
        for ((i, _), r) in problems.iter().zip(join_all(writes).await) {
            match r {
                Ok(()) => {
                    report.rewritten += 1;
                    self.counters.shards_healed.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    report.failed += 1;
                    self.counters.heal_failures.fetch_add(1, Relaxed);
                    tracing::debug!(chunk = %hash, position = i, error = %e, "could not write a healed shard");
                }
            }
        }
        if report.rewritten > 0 {
            info!(chunk = %hash, rewritten = report.rewritten, failed = report.failed, "healed chunk");
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::{Faults, FaultyStore, Layout, MemoryShardStore, ShardStore};

    struct Rig {
        mem: Vec<Arc<MemoryShardStore>>,
        faults: Vec<Arc<Faults>>,
        cs: ChunkStore,
    }

    fn rig(n: usize) -> Rig {
        let mem: Vec<_> = (0..n)
            .map(|i| Arc::new(MemoryShardStore::new(format!("d{i}"))))
            .collect();
        let faults: Vec<_> = (0..n).map(|_| Arc::new(Faults::default())).collect();
        let disks = mem
            .iter()
            .zip(&faults)
            .map(|(m, f)| Arc::new(FaultyStore::new(m.clone(), f.clone())) as Arc<dyn ShardStore>)
            .collect();
        let cs = ChunkStore::new(Layout::new(n, None).unwrap(), disks).unwrap();
        Rig { mem, faults, cs }
    }

    fn chunk(len: usize) -> (ChunkHash, Bytes) {
        let data: Bytes = (0..len)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        (ChunkHash::of(&data), data)
    }

    fn key(h: ChunkHash, i: usize) -> ShardKey {
        ShardKey {
            chunk: h,
            index: i as u8,
        }
    }

    async fn flip(store: &MemoryShardStore, k: ShardKey) {
        let mut f = store.get(k).await.unwrap().to_vec();
        let at = f.len() - 3;
        f[at] ^= 0xff;
        store.put(k, f.into()).await.unwrap();
    }

    #[tokio::test]
    async fn read_quarantines_and_rewrites_a_corrupt_data_shard() {
        let r = rig(4);
        let (h, data) = chunk(200_000);
        r.cs.put_chunk(h, data.clone()).await.unwrap();
        let disk = r.cs.layout.placement(&h)[0];
        let original = r.mem[disk].get(key(h, 0)).await.unwrap();
        flip(&r.mem[disk], key(h, 0)).await;

        assert_eq!(r.cs.get_chunk(h, data.len() as u64).await.unwrap(), data);
        assert_eq!(r.mem[disk].quarantined(), vec![key(h, 0)]);
        assert_eq!(r.mem[disk].get(key(h, 0)).await.unwrap(), original);
        assert_eq!(r.cs.counters.corrupt_found.load(Ordering::SeqCst), 1);
        assert_eq!(r.cs.counters.shards_healed.load(Ordering::SeqCst), 1);
        // Healed: the next read finds nothing wrong.
        r.cs.get_chunk(h, data.len() as u64).await.unwrap();
        assert_eq!(r.cs.counters.corrupt_found.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn heal_chunk_finds_parity_damage_a_read_never_touches() {
        let r = rig(6);
        let (h, data) = chunk(1 << 20);
        r.cs.put_chunk(h, data.clone()).await.unwrap();
        let p = r.cs.layout.placement(&h);
        let k = r.cs.layout.data();
        flip(&r.mem[p[k]], key(h, k)).await;
        r.mem[p[k + 1]].delete(key(h, k + 1)).await.unwrap();

        let found = r.cs.verify_chunk(h, data.len() as u64).await.unwrap();
        assert_eq!(
            (found.corrupt.clone(), found.missing.clone()),
            (vec![k], vec![k + 1])
        );
        let located = r.cs.locate_chunk(h, data.len() as u64).await;
        let statuses: Vec<_> = located.iter().map(|l| l.status).collect();
        let mut expected = vec![ShardStatus::Ok; 6];
        expected[k] = ShardStatus::Corrupt;
        expected[k + 1] = ShardStatus::Missing;
        assert_eq!(statuses, expected);
        assert_eq!(located.iter().map(|l| l.disk).collect::<Vec<_>>(), p);
        assert!(located.iter().all(|l| l.parity == (l.index >= k)));
        assert_eq!(found.rewritten, 0);
        let report = r.cs.heal_chunk(h, data.len() as u64).await.unwrap();
        assert_eq!(report.corrupt, vec![k]);
        assert_eq!(report.missing, vec![k + 1]);
        assert_eq!(report.rewritten, 2);
        assert!(report.complete());
        let again = r.cs.verify_chunk(h, data.len() as u64).await.unwrap();
        assert!(!again.damaged(), "{again:?}");
        assert!(again.bytes_read >= data.len() as u64);
    }

    #[tokio::test]
    async fn failing_disk_is_reported_and_healed_once_it_works() {
        let r = rig(4);
        let (h, data) = chunk(70_000);
        let p = r.cs.layout.placement(&h);
        Faults::set(&r.faults[p[3]].fail_puts, true);
        let put = r.cs.put_chunk(h, data.clone()).await.unwrap();
        assert_eq!(put.failed_positions, vec![3]);

        let report = r.cs.heal_chunk(h, data.len() as u64).await.unwrap();
        assert_eq!(report.missing, vec![3]);
        assert_eq!(report.failed, 1);
        assert!(!report.complete());

        Faults::set(&r.faults[p[3]].fail_puts, false);
        let report = r.cs.heal_chunk(h, data.len() as u64).await.unwrap();
        assert_eq!(report.rewritten, 1);
        assert!(report.complete());
        assert!(r.mem[p[3]].get(key(h, 3)).await.is_ok());
    }

    #[tokio::test]
    async fn lost_writes_and_corrupt_reads_still_read_back_exact() {
        let r = rig(4);
        let (h, data) = chunk(300_000);
        let p = r.cs.layout.placement(&h);
        Faults::set(&r.faults[p[0]].lose_writes, true);
        r.cs.put_chunk(h, data.clone()).await.unwrap();
        Faults::set(&r.faults[p[0]].lose_writes, false);
        Faults::set(&r.faults[p[1]].corrupt_reads, true);
        assert_eq!(r.cs.get_chunk(h, data.len() as u64).await.unwrap(), data);
        Faults::set(&r.faults[p[1]].corrupt_reads, false);
    }

    #[tokio::test]
    async fn full_disks_fail_the_write_as_storage_full() {
        let r = rig(4);
        for f in &r.faults[..2] {
            f.quota_bytes.store(1000, Ordering::SeqCst);
        }
        let (h, data) = chunk(100_000);
        let e = r.cs.put_chunk(h, data).await.unwrap_err();
        assert!(e.is_storage_full(), "{e}");
    }

    #[tokio::test]
    async fn too_much_damage_is_a_read_quorum_error() {
        let r = rig(4);
        let (h, data) = chunk(10_000);
        r.cs.put_chunk(h, data.clone()).await.unwrap();
        for (i, &d) in r.cs.layout.placement(&h).iter().enumerate().take(3) {
            r.mem[d].delete(key(h, i)).await.unwrap();
        }
        assert!(matches!(
            r.cs.heal_chunk(h, data.len() as u64).await,
            Err(Error::ReadQuorum { .. })
        ));
    }
}
