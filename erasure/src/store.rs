//! The `ShardStore` boundary: where shard files live.
//!
//! Contract for every implementation:
//! - `put` is atomic and durable when it returns: a reader sees the old state or the whole new
//!   shard, never a torn one, and the shard survives a crash or power loss afterwards;
//! - `get` returns exactly the bytes put, or [`Error::NotFound`]; it does not verify contents
//!   (the caller checks the shard's own checksum, so every store is verified the same way);
//! - `delete` is idempotent: deleting a missing shard succeeds;
//! - `list` returns every stored shard key, in no particular order;
//! - `quarantine` moves a shard aside (a failed checksum, kept for inspection rather than
//!   deleted); afterwards `get` reports it missing, so a rewrite can take its place;
//! - `health` fails when the store cannot currently serve reads and writes;
//! - `space` reports capacity where the store knows it.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{ChunkHash, Result};

/// One shard of one chunk: the chunk's address and the shard's position in its stripe.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    pub chunk: ChunkHash,
    pub index: u8,
}

impl fmt::Debug for ShardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", &self.chunk.to_hex()[..16], self.index)
    }
}

#[async_trait]
pub trait ShardStore: Send + Sync + fmt::Debug + 'static {
    /// A human-readable name (a path or a URL) for logs and errors.
    fn name(&self) -> String;
    /// Stores a shard atomically (readers see all of it or nothing) and durably.
    async fn put(&self, key: ShardKey, file: Bytes) -> Result<()>;
    /// Stores a shard atomically; it is durable only once a later [`ShardStore::sync`]
    /// returns. A writer of many shards makes them durable with one flush instead of two
    /// fsyncs each. An identical shard already stored is left as it is.
    async fn put_unsynced(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.put(key, file).await
    }
    /// [`ShardStore::put_unsynced`] for a shard no read is expected to want soon (parity: a
    /// healthy read never touches it). A local disk writes it past the page cache, which
    /// spares the copy into the cache (the largest cost of a large PUT) and leaves the cache
    /// to data shards.
    async fn put_unsynced_cold(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.put_unsynced(key, file).await
    }
    /// Makes every shard stored with `put_unsynced` before this call durable.
    async fn sync(&self) -> Result<()> {
        Ok(())
    }
    async fn get(&self, key: ShardKey) -> Result<Bytes>;
    /// Removes a shard (a missing one is fine). `fence` is the deleting leader's fencing
    /// token, 0 for none (see [`crate::FenceMark`]): a store that has seen a larger one
    /// refuses with [`crate::Error::Fenced`] and keeps the shard.
    async fn delete_fenced(&self, key: ShardKey, fence: u64) -> Result<()>;
    /// An unfenced [`ShardStore::delete_fenced`] (a single gateway, tests).
    async fn delete(&self, key: ShardKey) -> Result<()> {
        self.delete_fenced(key, 0).await
    }
    async fn list(&self) -> Result<Vec<ShardKey>>;
    async fn quarantine(&self, key: ShardKey) -> Result<()>;
    async fn health(&self) -> Result<()>;
    async fn space(&self) -> Result<Option<DiskSpace>> {
        Ok(None)
    }
}

/// Capacity of the file system a store lives on, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskSpace {
    pub total: u64,
    pub free: u64,
}
