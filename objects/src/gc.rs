//! Garbage collection of unreferenced chunks, after their grace period.

use std::sync::Arc;
use std::time::Duration;

use erasure::ChunkHash;

use super::ObjectService;
use crate::error::Result;

impl ObjectService {
    /// Deletes the shards of every chunk that is due and still unreferenced. Chunks pinned by a
    /// request in progress stay queued for the next pass. Returns how many were deleted.
    pub async fn gc_pass(&self) -> Result<usize> {
        let mut deleted = 0;
        loop {
            let due = self.meta.gc_due(256).await?;
            let batch_len = due.len();
            let mut progressed = false;
            for item in due {
                let hash = item.hash;
                let Some(_claim) = self.locks.try_claim_delete(hash) else {
                    continue;
                };
                progressed = true;
                // Marked first: from here on no gateway reuses or rewrites the chunk until
                // `gc_finish` removes the record (this process's writers are kept off by the
                // claim; other gateways' by the mark).
                if let Some(pool) = self.meta.gc_collect(&item).await? {
                    let deleted_shards = match self.pools.store(pool) {
                        Ok(store) => {
                            store
                                .delete_chunk(ChunkHash(hash), self.meta.fence_token())
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = deleted_shards {
                        // The orphan sweep removes what is left.
                        tracing::warn!(chunk = %ChunkHash(hash), error = %e, "could not delete all shards of a collected chunk");
                    }
                    self.meta.gc_finish(&item).await?;
                    deleted += 1;
                }
            }
            if batch_len < 256 || !progressed {
                return Ok(deleted);
            }
        }
    }

    /// When a gateway becomes the leader: every disk of every pool learns its fencing token, so
    /// a deposed leader's late deletes are refused even on disks this one has not deleted from
    /// yet. Waits at most `limit` for slow disks (each delete carries the token
    /// anyway).
    pub async fn announce_fence(&self, limit: Duration) {
        let token = self.meta.fence_token();
        if token == 0 {
            return;
        }
        let all = futures::future::join_all(
            self.pools
                .list()
                .into_iter()
                .map(|pool| async move { pool.store.announce_fence(token).await }),
        );
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(
                token,
                "some disks did not learn the leader's fencing token in time"
            );
        }
    }

    /// Runs [`Self::gc_pass`] every `interval` until the service is dropped.
    pub fn spawn_gc(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        self.spawn_every(interval, |service| async move {
            match service.gc_pass().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(chunks = n, "garbage collection removed unreferenced chunks")
                }
                Err(e) => tracing::warn!(error = %e, "garbage collection pass failed"),
            }
        })
    }

    /// Runs `job` every `interval` (after the first wait) until the service is dropped; a
    /// background job holds the service only while it runs.
    pub(crate) fn spawn_every<F, Fut>(
        self: &Arc<Self>,
        interval: Duration,
        job: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Arc<Self>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                job(service).await;
            }
        })
    }
}
