//! Finding the pool that holds a chunk: with one pool, that pool; with several, the one the
//! chunk's refcount record names. A read that fails in the pool it looked up asks again once,
//! since a rebalance may have moved the chunk and removed the old shards in between.

use std::sync::Arc;

use bytes::Bytes;
use erasure::{ChunkHash, Pool, Pools};
use metastore::MetaStore;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub(crate) struct Locator {
    pub pools: Arc<Pools>,
    pub meta: MetaStore,
    /// Counts client chunk reads, which the scanner yields to.
    pub foreground: Arc<crate::scrub::Foreground>,
}

impl Locator {
    /// The pool holding a stored chunk; `None` when the chunk is not stored.
    pub async fn pool_of(&self, hash: [u8; 32]) -> Result<Option<Arc<Pool>>> {
        match self.meta.chunk_pool(hash).await? {
            None => Ok(None),
            Some(id) => Ok(Some(self.pools.get(id).ok_or_else(|| {
                Error::Storage(erasure::Error::Layout(format!(
                    "chunk {} lives in pool {id}, which is not part of this deployment",
                    ChunkHash(hash)
                )))
            })?)),
        }
    }

    /// Reads a chunk that a manifest references.
    pub async fn get_chunk(&self, hash: [u8; 32], len: u32) -> Result<Bytes> {
        self.get_chunk_from_pool(hash, len, false).await
    }

    /// Reads a sealed chunk without its shards' checksums (see
    /// `ChunkStore::get_chunk_authenticated`): the caller's AES-GCM check stands in for
    /// them, and the caller reads it again with [`Self::get_chunk`] when that check fails.
    pub async fn get_chunk_authenticated(&self, hash: [u8; 32], len: u32) -> Result<Bytes> {
        self.get_chunk_from_pool(hash, len, true).await
    }

    async fn get_chunk_from_pool(
        &self,
        hash: [u8; 32],
        len: u32,
        authenticated: bool,
    ) -> Result<Bytes> {
        let _foreground = self.foreground.enter();
        let get = |store: Arc<Pool>| read_from(store, ChunkHash(hash), len as u64, authenticated);
        let pools = self.pools.list();
        if let [only] = pools.as_slice() {
            return Ok(get(only.clone()).await?);
        }
        let first = self.required(hash).await?;
        match get(first.clone()).await {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                let now = self.required(hash).await?;
                if now.id == first.id {
                    return Err(e.into());
                }
                Ok(get(now).await?)
            }
        }
    }

    async fn required(&self, hash: [u8; 32]) -> Result<Arc<Pool>> {
        self.pool_of(hash).await?.ok_or_else(|| {
            Error::Internal(format!(
                "chunk {} is referenced but has no record",
                ChunkHash(hash)
            ))
        })
    }
}

async fn read_from(
    pool: Arc<Pool>,
    hash: ChunkHash,
    len: u64,
    authenticated: bool,
) -> erasure::Result<Bytes> {
    if authenticated {
        pool.store.get_chunk_authenticated(hash, len).await
    } else {
        pool.store.get_chunk(hash, len).await
    }
}
