//! [`FaultyStore`]: a [`ShardStore`] wrapper that injects failures, for tests of everything
//! above the shard stores (quorum, heal, disk-full handling).
//!
//! Faults are switched at run time through a shared [`Faults`], so a test can break a disk in
//! the middle of a workload and mend it again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{DiskSpace, Error, Result, ShardKey, ShardStore};

/// The failures a [`FaultyStore`] injects. All off by default.
#[derive(Debug)]
pub struct Faults {
    /// Every call fails with an I/O error.
    pub fail_all: AtomicBool,
    /// `put` fails with an I/O error.
    pub fail_puts: AtomicBool,
    /// `get` fails with an I/O error.
    pub fail_gets: AtomicBool,
    /// `get` returns the shard with one byte flipped (bit rot).
    pub corrupt_reads: AtomicBool,
    /// `put` reports success but stores nothing (a lying disk cache).
    pub lose_writes: AtomicBool,
    /// `sync` fails with an I/O error (the flush of unsynced puts).
    pub fail_syncs: AtomicBool,
    /// Added to every call, in milliseconds.
    pub latency_ms: AtomicU64,
    /// Bytes this store may hold; a `put` beyond it fails as "no space left on device".
    pub quota_bytes: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            fail_all: AtomicBool::new(false),
            fail_puts: AtomicBool::new(false),
            fail_gets: AtomicBool::new(false),
            corrupt_reads: AtomicBool::new(false),
            lose_writes: AtomicBool::new(false),
            fail_syncs: AtomicBool::new(false),
            latency_ms: AtomicU64::new(0),
            quota_bytes: AtomicU64::new(u64::MAX),
        }
    }
}

impl Faults {
    pub fn set(flag: &AtomicBool, on: bool) {
        flag.store(on, Ordering::SeqCst);
    }
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ShardStore>,
    faults: Arc<Faults>,
    /// Sizes of the shards stored through this wrapper, for the quota.
    sizes: Mutex<HashMap<ShardKey, u64>>,
}

fn injected(what: &str) -> Error {
    Error::Io {
        path: format!("(injected fault: {what})").into(),
        source: std::io::Error::other("injected fault"),
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ShardStore>, faults: Arc<Faults>) -> Self {
        FaultyStore {
            inner,
            faults,
            sizes: Mutex::default(),
        }
    }

    async fn enter(&self, what: &str) -> Result<()> {
        let ms = self.faults.latency_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if self.faults.fail_all.load(Ordering::SeqCst) {
            return Err(injected(what));
        }
        Ok(())
    }

    fn sizes(&self) -> std::sync::MutexGuard<'_, HashMap<ShardKey, u64>> {
        self.sizes.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn faulty_put(&self, key: ShardKey, file: Bytes, durable: bool) -> Result<()> {
        self.enter("put").await?;
        if self.faults.fail_puts.load(Ordering::SeqCst) {
            return Err(injected("put"));
        }
        let quota = self.faults.quota_bytes.load(Ordering::SeqCst);
        {
            let sizes = self.sizes();
            let used: u64 = sizes
                .iter()
                .filter(|(k, _)| **k != key)
                .map(|(_, s)| s)
                .sum();
            if used + file.len() as u64 > quota {
                return Err(Error::Io {
                    path: format!("(quota of {quota} bytes)").into(),
                    source: std::io::Error::from(std::io::ErrorKind::StorageFull),
                });
            }
        }
        if self.faults.lose_writes.load(Ordering::SeqCst) {
            return Ok(());
        }
        let len = file.len() as u64;
        if durable {
            self.inner.put(key, file).await?;
        } else {
            self.inner.put_unsynced(key, file).await?;
        }
        self.sizes().insert(key, len);
        Ok(())
    }
}

#[async_trait]
impl ShardStore for FaultyStore {
    fn name(&self) -> String {
        format!("faulty:{}", self.inner.name())
    }

    async fn put(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.faulty_put(key, file, true).await
    }

    async fn put_unsynced(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.faulty_put(key, file, false).await
    }

    async fn sync(&self) -> Result<()> {
        self.enter("sync").await?;
        if self.faults.fail_puts.load(Ordering::SeqCst)
            || self.faults.fail_syncs.load(Ordering::SeqCst)
        {
            return Err(injected("sync"));
        }
        self.inner.sync().await
    }

    async fn get(&self, key: ShardKey) -> Result<Bytes> {
        self.enter("get").await?;
        if self.faults.fail_gets.load(Ordering::SeqCst) {
            return Err(injected("get"));
        }
        let file = self.inner.get(key).await?;
        if self.faults.corrupt_reads.load(Ordering::SeqCst) && !file.is_empty() {
            let mut bad = file.to_vec();
            let at = bad.len() / 2;
            bad[at] ^= 0x20;
            return Ok(bad.into());
        }
        Ok(file)
    }

    async fn delete_fenced(&self, key: ShardKey, fence: u64) -> Result<()> {
        self.enter("delete").await?;
        self.inner.delete_fenced(key, fence).await?;
        self.sizes().remove(&key);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ShardKey>> {
        self.enter("list").await?;
        self.inner.list().await
    }

    async fn quarantine(&self, key: ShardKey) -> Result<()> {
        self.enter("quarantine").await?;
        self.inner.quarantine(key).await?;
        self.sizes().remove(&key);
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        self.enter("health").await?;
        self.inner.health().await
    }

    async fn space(&self) -> Result<Option<DiskSpace>> {
        self.enter("space").await?;
        self.inner.space().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChunkHash, MemoryShardStore};

    fn faulty() -> (FaultyStore, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        let store = FaultyStore::new(Arc::new(MemoryShardStore::new("m")), faults.clone());
        (store, faults)
    }

    #[tokio::test]
    async fn passes_the_shard_store_suite_without_faults() {
        crate::store_suite::run(&faulty().0).await;
    }

    #[tokio::test]
    async fn injects_each_fault() {
        let (store, faults) = faulty();
        let key = ShardKey {
            chunk: ChunkHash::of(b"f"),
            index: 0,
        };
        store.put(key, Bytes::from_static(b"abcd")).await.unwrap();

        Faults::set(&faults.corrupt_reads, true);
        assert_ne!(store.get(key).await.unwrap(), Bytes::from_static(b"abcd"));
        Faults::set(&faults.corrupt_reads, false);

        Faults::set(&faults.fail_gets, true);
        assert!(matches!(store.get(key).await, Err(Error::Io { .. })));
        Faults::set(&faults.fail_gets, false);

        Faults::set(&faults.lose_writes, true);
        let other = ShardKey { index: 1, ..key };
        store.put(other, Bytes::from_static(b"x")).await.unwrap();
        assert!(store.get(other).await.unwrap_err().is_not_found());
        Faults::set(&faults.lose_writes, false);

        faults.quota_bytes.store(6, Ordering::SeqCst);
        let e = store
            .put(other, Bytes::from_static(b"xyz"))
            .await
            .unwrap_err();
        assert!(e.is_storage_full(), "{e}");
        store.put(other, Bytes::from_static(b"xy")).await.unwrap();
        // Overwriting a shard does not count it twice.
        store.put(key, Bytes::from_static(b"dcba")).await.unwrap();

        Faults::set(&faults.fail_all, true);
        assert!(store.health().await.is_err());
        assert!(store.list().await.is_err());
    }
}
