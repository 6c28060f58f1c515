//! Pools: the groups of disks a deployment grows by.
//!
//! Each pool is its own [`ChunkStore`] with its own erasure sets and parity. A chunk lives
//! whole in one pool; which one is recorded with the chunk (the metastore's refcount record),
//! so it stays findable after any number of pools are added, drained or retired. New chunks go
//! to a pool chosen by free space: a weighted rendezvous hash of the chunk over the pools that
//! take writes, so the emptiest pool takes most of them, and two requests storing the same new
//! chunk at once pick the same pool.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::{ChunkHash, ChunkStore, CounterSnapshot, Error, Result};

/// A pool's state as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    /// Takes new chunks.
    Active,
    /// Being emptied (decommission): serves what it holds, takes nothing new.
    Draining,
}

#[derive(Debug)]
pub struct Pool {
    pub id: u32,
    pub store: Arc<ChunkStore>,
    state: RwLock<PoolState>,
    /// Usable bytes (after parity) at the last refresh; `u64::MAX`: not known.
    free: AtomicU64,
    capacity: AtomicU64,
}

/// A pool's capacity, usable bytes after parity, as last measured (`None`: not known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolSpace {
    pub capacity: Option<u64>,
    pub free: Option<u64>,
}

impl Pool {
    fn new(id: u32, store: Arc<ChunkStore>, state: PoolState) -> Self {
        Pool {
            id,
            store,
            state: RwLock::new(state),
            free: AtomicU64::new(u64::MAX),
            capacity: AtomicU64::new(u64::MAX),
        }
    }

    pub fn state(&self) -> PoolState {
        *self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn space(&self) -> PoolSpace {
        let known = |v: u64| (v != u64::MAX).then_some(v);
        PoolSpace {
            capacity: known(self.capacity.load(Relaxed)),
            free: known(self.free.load(Relaxed)),
        }
    }

    /// Measures the pool's disks: the usable share (k of k+m) of their capacity and free
    /// space. Disks that do not report space are left out; none reporting leaves it unknown.
    pub async fn refresh_space(&self) {
        let layout = self.store.layout();
        let (mut total, mut free, mut known) = (0u128, 0u128, false);
        for disk in self.store.disks() {
            if let Ok(Some(s)) = disk.space().await {
                total += s.total as u128;
                free += s.free as u128;
                known = true;
            }
        }
        let usable = |v: u128| (v * layout.data() as u128 / layout.set_size as u128) as u64;
        if known {
            self.capacity.store(usable(total), Relaxed);
            self.free.store(usable(free), Relaxed);
        }
    }

    #[cfg(test)]
    fn set_space(&self, capacity: u64, free: u64) {
        self.capacity.store(capacity, Relaxed);
        self.free.store(free, Relaxed);
    }
}

/// Every pool of the deployment, by id. Pool 0 is the disks the deployment was created with.
#[derive(Debug)]
pub struct Pools {
    pools: RwLock<Vec<Arc<Pool>>>,
    /// The home pool: the one whose disks are given on the command line (and hold the embedded
    /// metadata's replicas). Pool 0 until it is decommissioned.
    home: std::sync::atomic::AtomicU32,
}

impl Pools {
    /// A deployment of one pool (id 0).
    pub fn new(first: Arc<ChunkStore>) -> Self {
        Self::with_home(0, first)
    }

    /// The pools of a deployment whose home pool (see [`Pools::home`]) is `home`.
    pub fn with_home(home: u32, store: Arc<ChunkStore>) -> Self {
        Pools {
            pools: RwLock::new(vec![Arc::new(Pool::new(home, store, PoolState::Active))]),
            home: home.into(),
        }
    }

    /// The home pool's id.
    pub fn home(&self) -> u32 {
        self.home.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes `id` the home pool (its old home was decommissioned).
    pub fn set_home(&self, id: u32) {
        self.home.store(id, std::sync::atomic::Ordering::Relaxed);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Pool>>> {
        self.pools.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) pool `id`.
    pub fn add(&self, id: u32, store: Arc<ChunkStore>, state: PoolState) -> Arc<Pool> {
        let pool = Arc::new(Pool::new(id, store, state));
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.id != id);
        pools.push(pool.clone());
        pools.sort_by_key(|p| p.id);
        pool
    }

    /// Takes a retired pool out: nothing is read from or written to it any more.
    pub fn remove(&self, id: u32) {
        self.pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p.id != id);
    }

    pub fn set_state(&self, id: u32, state: PoolState) {
        if let Some(p) = self.get(id) {
            *p.state.write().unwrap_or_else(|p| p.into_inner()) = state;
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<Pool>> {
        self.read().iter().find(|p| p.id == id).cloned()
    }

    /// The chunk store of pool `id`.
    pub fn store(&self, id: u32) -> Result<Arc<ChunkStore>> {
        self.get(id).map(|p| p.store.clone()).ok_or_else(|| {
            Error::Layout(format!(
                "pool {id} is not part of this deployment (retired, or not opened)"
            ))
        })
    }

    pub fn list(&self) -> Vec<Arc<Pool>> {
        self.read().clone()
    }

    /// The pool a new chunk goes to: among the active pools, by a rendezvous hash weighted by
    /// free space (equal weights while any pool's space is unknown).
    pub fn choose(&self, chunk: &ChunkHash) -> Result<Arc<Pool>> {
        let pools = self.read();
        let active: Vec<&Arc<Pool>> = pools
            .iter()
            .filter(|p| p.state() == PoolState::Active)
            .collect();
        if let [only] = active.as_slice() {
            return Ok((*only).clone());
        }
        let all_known = active.iter().all(|p| p.space().free.is_some());
        active
            .into_iter()
            .map(|p| {
                let weight = if all_known {
                    // MiB, so that a full pool still weighs something and sums stay small.
                    (p.free.load(Relaxed) >> 20).max(1) as f64
                } else {
                    1.0
                };
                let u = unit(chunk.word(2) ^ mix(p.id as u64 + 1));
                (weight / -u.ln(), p)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                Error::Layout("no pool takes new chunks (every pool is draining)".into())
            })
    }

    /// Measures every pool's space (see [`Pool::refresh_space`]).
    pub async fn refresh_space(&self) {
        for pool in self.list() {
            pool.refresh_space().await;
        }
    }

    /// Read, write and heal counters summed over the pools.
    pub fn counters(&self) -> CounterSnapshot {
        let mut sum = CounterSnapshot::default();
        for p in self.read().iter() {
            let c = p.store.counters().snapshot();
            sum.corrupt_found += c.corrupt_found;
            sum.missing_found += c.missing_found;
            sum.shards_healed += c.shards_healed;
            sum.heal_failures += c.heal_failures;
            sum.shard_read_errors += c.shard_read_errors;
            sum.shard_write_errors += c.shard_write_errors;
        }
        sum
    }
}

/// splitmix64's finaliser: spreads a pool id over 64 bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A hash word as a number in (0, 1).
fn unit(x: u64) -> f64 {
    ((mix(x) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Layout, MemoryShardStore, ShardStore};

    fn store(disks: usize) -> Arc<ChunkStore> {
        let d = (0..disks)
            .map(|i| Arc::new(MemoryShardStore::new(format!("d{i}"))) as Arc<dyn ShardStore>)
            .collect();
        Arc::new(ChunkStore::new(Layout::new(disks, None).unwrap(), d).unwrap())
    }

    fn shares(pools: &Pools, n: u32) -> std::collections::BTreeMap<u32, u32> {
        let mut out = std::collections::BTreeMap::new();
        for i in 0..n {
            let h = ChunkHash::of(&i.to_le_bytes());
            *out.entry(pools.choose(&h).unwrap().id).or_default() += 1;
        }
        out
    }

    #[test]
    fn new_chunks_follow_free_space_and_skip_draining_pools() {
        let pools = Pools::new(store(4));
        assert_eq!(shares(&pools, 100).get(&0), Some(&100));
        pools.add(1, store(4), PoolState::Active);
        // Space unknown: an even split.
        let even = shares(&pools, 4000);
        assert!((1800..2200).contains(&even[&0]), "{even:?}");
        // The new pool has 9 times the free space of the old one: it takes about 90%.
        pools.get(0).unwrap().set_space(100 << 30, 10 << 30);
        pools.get(1).unwrap().set_space(100 << 30, 90 << 30);
        let weighted = shares(&pools, 4000);
        assert!((3400..3800).contains(&weighted[&1]), "{weighted:?}");
        // The choice is stable: the same chunk, the same pool.
        let h = ChunkHash::of(b"x");
        assert_eq!(pools.choose(&h).unwrap().id, pools.choose(&h).unwrap().id);
        pools.set_state(1, PoolState::Draining);
        assert_eq!(shares(&pools, 100).get(&0), Some(&100));
        pools.set_state(0, PoolState::Draining);
        assert!(pools.choose(&h).is_err());
        pools.remove(0);
        assert!(pools.store(0).is_err());
        assert_eq!(pools.list().len(), 1);
    }
}
