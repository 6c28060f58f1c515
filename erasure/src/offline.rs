//! A [`ShardStore`] standing in for a disk that is missing: every call fails with
//! [`Error::Offline`], so the stripe logic treats its shards as lost.

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Error, Result, ShardKey, ShardStore};

#[derive(Debug, Clone)]
pub struct OfflineStore {
    name: String,
    reason: String,
}

impl OfflineStore {
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        OfflineStore {
            name: name.into(),
            reason: reason.into(),
        }
    }

    fn err(&self) -> Error {
        Error::Offline(self.reason.clone())
    }
}

#[async_trait]
impl ShardStore for OfflineStore {
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn put(&self, _: ShardKey, _: Bytes) -> Result<()> {
        Err(self.err())
    }
    async fn put_unsynced(&self, _: ShardKey, _: Bytes) -> Result<()> {
        Err(self.err())
    }
    async fn sync(&self) -> Result<()> {
        Err(self.err())
    }
    async fn get(&self, _: ShardKey) -> Result<Bytes> {
        Err(self.err())
    }
    async fn delete_fenced(&self, _: ShardKey, _: u64) -> Result<()> {
        Err(self.err())
    }
    async fn list(&self) -> Result<Vec<ShardKey>> {
        Err(self.err())
    }
    async fn quarantine(&self, _: ShardKey) -> Result<()> {
        Err(self.err())
    }
    async fn health(&self) -> Result<()> {
        Err(self.err())
    }
}
