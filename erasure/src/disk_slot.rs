//! [`DiskSlot`]: one position of the disk list, whose store can change while the server runs.
//!
//! A slot starts with the disk's store, or with an [`OfflineStore`] when the disk is missing.
//! The server's disk monitor swaps in a fresh store when a missing disk comes back or an empty
//! replacement is adopted, and records the state operators see (`online`, `faulty`,
//! `offline`). Stripes keep addressing the slot, never the store behind it.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use crate::{DiskSpace, OfflineStore, Result, ShardKey, ShardStore};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum DiskState {
    Online,
    /// Reachable, but its health probe fails (read-only, I/O errors): still tried for reads.
    Faulty(String),
    /// Missing or unusable: every call fails at once.
    Offline(String),
}

impl DiskState {
    pub fn is_online(&self) -> bool {
        matches!(self, DiskState::Online)
    }
}

#[derive(Debug)]
pub struct DiskSlot {
    name: String,
    inner: RwLock<(Arc<dyn ShardStore>, DiskState)>,
}

impl DiskSlot {
    pub fn online(name: impl Into<String>, store: Arc<dyn ShardStore>) -> Self {
        DiskSlot {
            name: name.into(),
            inner: RwLock::new((store, DiskState::Online)),
        }
    }

    pub fn offline(name: impl Into<String>, reason: impl Into<String>) -> Self {
        let name = name.into();
        let reason = reason.into();
        DiskSlot {
            inner: RwLock::new((
                Arc::new(OfflineStore::new(name.clone(), reason.clone())),
                DiskState::Offline(reason),
            )),
            name,
        }
    }

    pub fn state(&self) -> DiskState {
        self.read().1.clone()
    }

    /// Puts a working store in the slot.
    pub fn bring_online(&self, store: Arc<dyn ShardStore>) {
        *self.write() = (store, DiskState::Online);
    }

    /// Takes the store out of service: calls fail at once until it is brought online again.
    pub fn take_offline(&self, reason: impl Into<String>) {
        let reason = reason.into();
        *self.write() = (
            Arc::new(OfflineStore::new(self.name.clone(), reason.clone())),
            DiskState::Offline(reason),
        );
    }

    /// Marks a store that still answers but fails its health probe, or clears that mark.
    pub fn set_faulty(&self, reason: Option<String>) {
        let mut g = self.write();
        if matches!(g.1, DiskState::Offline(_)) {
            return;
        }
        g.1 = match reason {
            Some(r) => DiskState::Faulty(r),
            None => DiskState::Online,
        };
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Arc<dyn ShardStore>, DiskState)> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, (Arc<dyn ShardStore>, DiskState)> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> Arc<dyn ShardStore> {
        self.read().0.clone()
    }
}

#[async_trait]
impl ShardStore for DiskSlot {
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn put(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.store().put(key, file).await
    }
    async fn put_unsynced(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.store().put_unsynced(key, file).await
    }
    async fn put_unsynced_cold(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.store().put_unsynced_cold(key, file).await
    }
    async fn sync(&self) -> Result<()> {
        self.store().sync().await
    }
    async fn get(&self, key: ShardKey) -> Result<Bytes> {
        self.store().get(key).await
    }
    async fn delete_fenced(&self, key: ShardKey, fence: u64) -> Result<()> {
        self.store().delete_fenced(key, fence).await
    }
    async fn list(&self) -> Result<Vec<ShardKey>> {
        self.store().list().await
    }
    async fn quarantine(&self, key: ShardKey) -> Result<()> {
        self.store().quarantine(key).await
    }
    async fn health(&self) -> Result<()> {
        self.store().health().await
    }
    async fn space(&self) -> Result<Option<DiskSpace>> {
        self.store().space().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryShardStore;

    #[tokio::test]
    async fn passes_the_shard_store_suite_and_switches_stores() {
        let slot = DiskSlot::online("s", Arc::new(MemoryShardStore::new("a")));
        crate::store_suite::run(&slot).await;

        slot.take_offline("pulled");
        assert!(matches!(slot.state(), DiskState::Offline(_)));
        assert!(slot.list().await.is_err());
        slot.set_faulty(Some("ignored while offline".into()));
        assert!(matches!(slot.state(), DiskState::Offline(_)));

        slot.bring_online(Arc::new(MemoryShardStore::new("b")));
        assert!(slot.state().is_online());
        assert!(slot.list().await.unwrap().is_empty());
        slot.set_faulty(Some("read-only".into()));
        assert_eq!(slot.state(), DiskState::Faulty("read-only".into()));
    }
}
