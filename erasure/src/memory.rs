//! An in-memory [`ShardStore`] for tests and for exercising the stripe logic without disks.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Error, Result, ShardKey, ShardStore};

#[derive(Debug, Default)]
pub struct MemoryShardStore {
    name: String,
    shards: Mutex<HashMap<ShardKey, Bytes>>,
    quarantined: Mutex<Vec<(ShardKey, Bytes)>>,
    fence: crate::FenceMark,
}

impl MemoryShardStore {
    pub fn new(name: impl Into<String>) -> Self {
        MemoryShardStore {
            name: name.into(),
            shards: Mutex::default(),
            quarantined: Mutex::default(),
            fence: crate::FenceMark::in_memory(),
        }
    }

    /// Shards moved aside so far, oldest first.
    pub fn quarantined(&self) -> Vec<ShardKey> {
        let q = self.quarantined.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().map(|(k, _)| *k).collect()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ShardKey, Bytes>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts).
        self.shards.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ShardStore for MemoryShardStore {
    fn name(&self) -> String {
        format!("memory:{}", self.name)
    }

    async fn put(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.map().insert(key, file);
        Ok(())
    }

    async fn get(&self, key: ShardKey) -> Result<Bytes> {
        self.map().get(&key).cloned().ok_or(Error::NotFound)
    }

    async fn delete_fenced(&self, key: ShardKey, fence: u64) -> Result<()> {
        self.fence.guard(fence, || {
            self.map().remove(&key);
            Ok(())
        })
    }

    async fn list(&self) -> Result<Vec<ShardKey>> {
        Ok(self.map().keys().copied().collect())
    }

    async fn quarantine(&self, key: ShardKey) -> Result<()> {
        let shard = self.map().remove(&key).ok_or(Error::NotFound)?;
        self.quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key, shard));
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn passes_the_shard_store_suite() {
        crate::store_suite::run(&super::MemoryShardStore::new("t")).await;
    }
}
