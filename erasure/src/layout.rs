//! Erasure sets and shard placement.
//!
//! Disks are grouped into erasure sets of `k + m` disks (all disks when there are at most 16,
//! else the largest set size from 16 down to 4 that divides the disk count, as MinIO does). A
//! chunk's hash picks its set and rotates the shard positions inside it, so parity load and
//! capacity spread evenly and every shard of a chunk lands on a distinct disk.

use serde::{Deserialize, Serialize};

use crate::{ChunkHash, Error, Result};

/// MinIO's default parity for an erasure set of `set_size` disks.
pub fn default_parity(set_size: usize) -> usize {
    match set_size {
        0 | 1 => 0,
        2 | 3 => 1,
        4 | 5 => 2,
        6 | 7 => 3,
        _ => 4,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub disks: usize,
    pub set_size: usize,
    pub parity: usize,
}

impl Layout {
    pub fn new(disks: usize, parity: Option<usize>) -> Result<Self> {
        if disks == 0 {
            return Err(Error::Layout("at least one disk is needed".into()));
        }
        let set_size = if disks <= 16 {
            disks
        } else {
            (4..=16)
                .rev()
                .find(|s| disks.is_multiple_of(*s))
                .ok_or_else(|| {
                    Error::Layout(format!(
                        "{disks} disks cannot be split into equal erasure sets of 4 to 16 disks"
                    ))
                })?
        };
        let parity = parity.unwrap_or_else(|| default_parity(set_size));
        if parity > set_size / 2 {
            return Err(Error::Layout(format!(
                "parity {parity} is too high for sets of {set_size} disks: at most {} \
                 (parity may not exceed the number of data shards)",
                set_size / 2
            )));
        }
        Ok(Layout {
            disks,
            set_size,
            parity,
        })
    }

    pub fn data(&self) -> usize {
        self.set_size - self.parity
    }

    pub fn sets(&self) -> usize {
        self.disks / self.set_size
    }

    /// Shards that must be acknowledged before a chunk write counts: k + 1 when there is
    /// parity (one disk may fail right after without the chunk becoming unreadable), else k.
    pub fn write_quorum(&self) -> usize {
        if self.parity == 0 {
            self.data()
        } else {
            self.data() + 1
        }
    }

    /// The erasure set holding a chunk's shards.
    pub fn set_of(&self, chunk: &ChunkHash) -> usize {
        (chunk.word(0) % self.sets() as u64) as usize
    }

    /// Disk index of each shard position (0..k+m) of a chunk.
    pub fn placement(&self, chunk: &ChunkHash) -> Vec<usize> {
        let set = self.set_of(chunk);
        let rotation = (chunk.word(1) % self.set_size as u64) as usize;
        (0..self.set_size)
            .map(|i| set * self.set_size + (rotation + i) % self.set_size)
            .collect()
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} disk(s) in {} set(s) of {}, EC {}+{} (survives {} lost disk(s) per set)",
            self.disks,
            self.sets(),
            self.set_size,
            self.data(),
            self.parity,
            self.parity
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn minio_defaults() {
        let p = |n| Layout::new(n, None).unwrap().parity;
        assert_eq!(
            [p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(16)],
            [0, 1, 1, 2, 2, 3, 3, 4, 4]
        );
        assert_eq!(Layout::new(32, None).unwrap().set_size, 16);
        assert_eq!(Layout::new(18, None).unwrap().set_size, 9);
        assert!(Layout::new(17, None).is_err());
        assert!(Layout::new(4, Some(3)).is_err());
        assert!(Layout::new(0, None).is_err());
    }

    #[test]
    fn placement_uses_distinct_disks_and_spreads_parity() {
        let layout = Layout::new(8, Some(2)).unwrap();
        let mut parity_hits = [0usize; 8];
        for i in 0..4000u32 {
            let h = ChunkHash::of(&i.to_le_bytes());
            let p = layout.placement(&h);
            assert_eq!(p.iter().collect::<HashSet<_>>().len(), 8);
            for &d in &p[layout.data()..] {
                parity_hits[d] += 1;
            }
        }
        // 4000 chunks * 2 parity shards / 8 disks = 1000 each on average.
        assert!(
            parity_hits.iter().all(|&h| (800..1200).contains(&h)),
            "{parity_hits:?}"
        );
    }

    #[test]
    fn placement_stays_inside_one_set() {
        let layout = Layout::new(32, None).unwrap();
        for i in 0..200u32 {
            let p = layout.placement(&ChunkHash::of(&i.to_le_bytes()));
            let set = p[0] / 16;
            assert!(p.iter().all(|d| d / 16 == set));
        }
    }
}
