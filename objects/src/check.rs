//! `tessera admin check`: manifests, reference counts and shards verified against each other.
//!
//! 1. Reference counts are recounted from every object version and uploaded part and compared
//!    with the recorded ones (corrected with `repair`).
//! 2. Every referenced chunk is read in full, every shard verified; missing and corrupt shards
//!    are rebuilt (a full heal pass).
//! 3. Shards no chunk record names (crashed uploads) are removed.
//!
//! The report says what was found and what was done; `clean` is true when nothing was wrong.

use serde::Serialize;

use super::{ObjectService, PassProgress};
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub clean: bool,
    pub repair: bool,
    pub refcounts: metastore::RefcountCheck,
    pub shards: PassProgress,
    /// Chunks queued for heal that are still incomplete after the check.
    pub heal_queue: u64,
    /// Encrypted versions this server cannot open: master keys it lacks (see `refcounts.encrypted`).
    pub encryption: EncryptionCheck,
}

#[derive(Debug, Clone, Serialize)]
pub struct EncryptionCheck {
    /// The master key this server has.
    pub master_key: Option<String>,
    /// Versions this server cannot open, by key: under a master key it lacks (its name), or a
    /// key of the key store sealed under one (`kms:NAME`). SSE-C versions are not counted:
    /// their clients bring the key.
    pub unreadable: std::collections::BTreeMap<String, metastore::EncryptedVersions>,
}

impl ObjectService {
    pub async fn check(&self, repair: bool) -> Result<CheckReport> {
        let refcounts = self.meta.check_refcounts(repair).await?;
        let shards = if repair {
            self.heal_pass(0).await?
        } else {
            self.verify_pass().await?
        };
        let heal_queue = self.meta.heal_queue_len().await?;
        let master_key = self.master_key.as_ref().map(|k| k.id().to_owned());
        let unopenable = self.unopenable_store_keys().await?;
        let stored_keys: Vec<String> = self
            .kms_list_keys()
            .await?
            .into_iter()
            .map(|k| k.name)
            .collect();
        let readable = |label: &str| match label.strip_prefix("kms:") {
            Some(name) => {
                stored_keys.iter().any(|k| k == name) && !unopenable.iter().any(|k| k == name)
            }
            None => label == super::sse::CUSTOMER_KEY_ID || self.master_named(label).is_some(),
        };
        let encryption = EncryptionCheck {
            unreadable: refcounts
                .encrypted
                .iter()
                .filter(|(label, _)| !readable(label))
                .map(|(label, v)| (label.clone(), v.clone()))
                .collect(),
            master_key,
        };
        let clean = refcounts.mismatched.is_empty()
            && encryption.unreadable.is_empty()
            && shards.shards_missing == 0
            && shards.shards_corrupt == 0
            && shards.chunks_incomplete == 0
            && shards.chunks_unrecoverable.is_empty()
            && shards.orphan_shards_removed == 0;
        Ok(CheckReport {
            clean,
            repair,
            refcounts,
            shards,
            heal_queue,
            encryption,
        })
    }

    /// Verifies every referenced chunk's shards without changing anything (orphan shards are
    /// counted in `orphan_shards_removed` but left in place).
    async fn verify_pass(&self) -> Result<PassProgress> {
        let mut p = PassProgress {
            started_ms: Some(super::now_ms()),
            ..PassProgress::default()
        };
        let mut after = None;
        loop {
            let page = self.meta.chunks_after(after, 256).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.hash);
            for c in page.into_iter().filter(|c| c.refs > 0) {
                // Pinned, so GC cannot delete it between the listing and the reads.
                let _pin = self.locks.pin(c.hash).await;
                let Some(pool) = self.locator().pool_of(c.hash).await? else {
                    continue;
                };
                p.chunks_total += 1;
                p.chunks_checked += 1;
                match pool
                    .store
                    .verify_chunk(erasure::ChunkHash(c.hash), c.len as u64)
                    .await
                {
                    Ok(r) => p.add(&r),
                    Err(_) => p.chunks_unrecoverable.push(hex::encode(c.hash)),
                }
            }
        }
        p.orphan_shards_removed = self.sweep_orphans(false).await?;
        p.finished_ms = Some(super::now_ms());
        Ok(p)
    }
}
