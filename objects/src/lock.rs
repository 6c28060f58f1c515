//! Object lock (WORM): retention and legal holds on versions, enforced where versions are
//! removed.
//!
//! A version is locked while it has a legal hold or a retention date in the future. Removing a
//! locked version is refused, checked inside the metadata transaction that would remove it
//! (`MetaStore::delete_object_if`), so a lock set meanwhile is never missed; a GOVERNANCE
//! retention yields to a caller that asks to bypass it and may (the gateway checks the
//! permission), a COMPLIANCE one to no one. A plain DELETE adds a delete marker, as S3 does,
//! and removes nothing. Nothing else removes versions: GC only deletes chunks no version
//! names, and decommission and heal move or rebuild data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use metastore::{BucketRecord, ObjectLock, ObjectRecord};

use super::{ObjectService, now_ms};
use crate::error::{Error, Result};

pub const GOVERNANCE: &str = "GOVERNANCE";
pub const COMPLIANCE: &str = "COMPLIANCE";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Why a lock refuses a change.
fn refusal(lock: &ObjectLock, bypass_governance: bool, now: i64) -> Option<&'static str> {
    if lock.legal_hold {
        return Some("the object version has a legal hold");
    }
    let retained = lock.retain_until_ms.is_some_and(|until| until > now);
    match lock.mode.as_deref() {
        Some(COMPLIANCE) if retained => Some("the object version is under COMPLIANCE retention"),
        Some(GOVERNANCE) if retained && !bypass_governance => {
            Some("the object version is under GOVERNANCE retention")
        }
        _ => None,
    }
}

impl ObjectService {
    /// The lock a new version in `bucket` gets: what the request asked (`asked`, validated by
    /// the caller), else the bucket's default retention. Asking on a bucket without object
    /// lock is refused, as S3 does.
    pub fn lock_for(
        &self,
        bucket: &BucketRecord,
        asked: Option<ObjectLock>,
    ) -> Result<Option<ObjectLock>> {
        let Some(config) = &bucket.object_lock else {
            return match asked {
                Some(_) => Err(Error::InvalidRequest(
                    "Bucket is missing Object Lock Configuration".into(),
                )),
                None => Ok(None),
            };
        };
        let mut lock = asked.unwrap_or_default();
        if lock.mode.is_none()
            && let Some(default) = &config.default_retention
        {
            let days = default.days.unwrap_or(0) as i64 + default.years.unwrap_or(0) as i64 * 365;
            lock.mode = Some(default.mode.clone());
            lock.retain_until_ms = Some(now_ms() + days * DAY_MS);
        }
        Ok((lock != ObjectLock::default()).then_some(lock))
    }

    /// DeleteObject, refusing to remove a locked version (see the module docs).
    pub async fn delete_object_locked(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        bypass_governance: bool,
    ) -> Result<metastore::DeleteOutcome> {
        let why = Arc::new(AtomicU8::new(0));
        let seen = why.clone();
        let outcome = self
            .meta
            .delete_object_if(bucket, key, version, move |record| {
                match record
                    .lock
                    .as_ref()
                    .and_then(|l| refusal(l, bypass_governance, now_ms()))
                {
                    Some(_) => {
                        seen.store(1, Ordering::Relaxed);
                        Err(metastore::Error::Refused)
                    }
                    None => Ok(()),
                }
            })
            .await;
        match outcome {
            Err(metastore::Error::Refused) if why.load(Ordering::Relaxed) == 1 => {
                Err(Error::ObjectLocked)
            }
            other => Ok(other?),
        }
    }

    /// Sets a version's retention (`None` removes it). Extending it is always allowed;
    /// shortening, removing or weakening it needs `bypass_governance` under GOVERNANCE and
    /// is refused under COMPLIANCE.
    pub async fn set_retention(
        &self,
        (bucket, key, version): (&str, &str, Option<&str>),
        retention: Option<(String, i64)>,
        bypass_governance: bool,
    ) -> Result<ObjectRecord> {
        self.require_lock_bucket(bucket).await?;
        let refused = Arc::new(AtomicU8::new(0));
        let seen = refused.clone();
        let record = self
            .meta
            .update_object(bucket, key, version, move |r| {
                let old = r.lock.clone().unwrap_or_default();
                let now = now_ms();
                let weaker = match (&retention, old.retain_until_ms) {
                    (_, None) => false,
                    (_, Some(until)) if until <= now => false,
                    (None, Some(_)) => true,
                    (Some((mode, new_until)), Some(until)) => {
                        *new_until < until
                            || (old.mode.as_deref() == Some(COMPLIANCE) && mode != COMPLIANCE)
                    }
                };
                let compliance = old.mode.as_deref() == Some(COMPLIANCE);
                if weaker && (compliance || !bypass_governance) {
                    seen.store(1 + compliance as u8, Ordering::Relaxed);
                    return;
                }
                let mut lock = old;
                lock.mode = retention.as_ref().map(|(m, _)| m.clone());
                lock.retain_until_ms = retention.as_ref().map(|(_, u)| *u);
                r.lock = (lock != ObjectLock::default()).then_some(lock);
            })
            .await?;
        match refused.load(Ordering::Relaxed) {
            0 => Ok(record),
            1 => Err(Error::AccessDenied(
                "shortening or removing a GOVERNANCE retention needs x-amz-bypass-governance-retention".into(),
            )),
            _ => Err(Error::AccessDenied(
                "a COMPLIANCE retention cannot be shortened, weakened or removed".into(),
            )),
        }
    }

    /// Sets or releases a version's legal hold.
    pub async fn set_legal_hold(
        &self,
        (bucket, key, version): (&str, &str, Option<&str>),
        on: bool,
    ) -> Result<ObjectRecord> {
        self.require_lock_bucket(bucket).await?;
        Ok(self
            .meta
            .update_object(bucket, key, version, move |r| {
                let mut lock = r.lock.clone().unwrap_or_default();
                lock.legal_hold = on;
                r.lock = (lock != ObjectLock::default()).then_some(lock);
            })
            .await?)
    }

    async fn require_lock_bucket(&self, bucket: &str) -> Result<()> {
        match self.bucket(bucket).await?.object_lock {
            Some(_) => Ok(()),
            None => Err(Error::InvalidRequest(
                "Bucket is missing Object Lock Configuration".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(mode: Option<&str>, until: Option<i64>, hold: bool) -> ObjectLock {
        ObjectLock {
            mode: mode.map(str::to_owned),
            retain_until_ms: until,
            legal_hold: hold,
        }
    }

    #[test]
    fn what_refuses_a_removal() {
        let now = 1_000_000;
        assert!(refusal(&lock(None, None, true), true, now).is_some());
        assert!(refusal(&lock(Some(COMPLIANCE), Some(now + 1), false), true, now).is_some());
        assert!(refusal(&lock(Some(COMPLIANCE), Some(now), false), false, now).is_none());
        assert!(refusal(&lock(Some(GOVERNANCE), Some(now + 1), false), false, now).is_some());
        assert!(refusal(&lock(Some(GOVERNANCE), Some(now + 1), false), true, now).is_none());
        assert!(refusal(&lock(None, None, false), false, now).is_none());
    }
}
