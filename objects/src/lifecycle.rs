//! Bucket lifecycle rules: which versions they expire and when, and the pass that applies
//! them.
//!
//! The pass (on the leader only, every few lifecycle hours) walks the versions of every bucket
//! that has enabled rules, a page at a time, and remembers where it is in the store's
//! settings, so a restart or a new leader goes on from there rather than from the start.
//! Versions of a key are listed newest first, so whether a version is current, since when it
//! has been noncurrent (its successor's write time) and how many noncurrent versions are
//! newer all follow from the walk. Every removal goes through the paths clients use, with
//! their checks in the same transaction: a current version is expired only while it is still
//! the one the listing showed (`MetaStore::expire_current`), and a version under object lock
//! is never removed (`delete_object_locked`, without bypass).
//!
//! Days are lifecycle days: a real day, except where a test shortens them
//! (`--lifecycle-day-secs`). As on S3, an expiry time is rounded up to the next day boundary
//! (midnight UTC).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metastore::{
    BucketRecord, EventRecord, LifecycleFilter, LifecycleRule, ObjectRecord, VersionEntry,
    VersionQuery,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{ObjectService, now_ms};

/// A real day.
pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// Versions listed per page of the pass; the pass's place is saved after each.
const PAGE: usize = 1000;

/// The store setting that holds the pass's place ([`Progress`]).
const PROGRESS_SETTING: &str = "lifecycle-progress";

/// Where an interrupted pass goes on: after this version of this key of this bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    bucket: String,
    key: String,
    version_id: Option<String>,
}

/// What lifecycle passes did, since this process started.
#[derive(Debug, Default)]
pub struct LifecycleCounters {
    pub passes: AtomicU64,
    pub versions_scanned: AtomicU64,
    /// Current versions expired (removed, or hidden under a delete marker).
    pub expired: AtomicU64,
    pub noncurrent_removed: AtomicU64,
    pub delete_markers_removed: AtomicU64,
    pub uploads_aborted: AtomicU64,
    /// Removals a retention or legal hold refused.
    pub skipped_locked: AtomicU64,
}

/// Whether `filter` selects a version of `key` with `size` bytes and `tags`.
pub fn filter_matches(
    f: &LifecycleFilter,
    key: &str,
    size: u64,
    tags: &[(String, String)],
) -> bool {
    key.starts_with(f.prefix.as_deref().unwrap_or(""))
        && f.tags.iter().all(|t| tags.contains(t))
        && f.size_greater_than.is_none_or(|n| size > n)
        && f.size_less_than.is_none_or(|n| size < n)
}

/// `ms` rounded up to the next day boundary (midnight UTC for real days).
fn day_boundary(ms: i64, day_ms: i64) -> i64 {
    ms.div_euclid(day_ms) * day_ms
        + if ms.rem_euclid(day_ms) == 0 {
            0
        } else {
            day_ms
        }
}

/// The time `days` lifecycle days after `since_ms`, rounded up to a day boundary.
fn after_days(since_ms: i64, days: u32, day_ms: i64) -> i64 {
    day_boundary(
        since_ms.saturating_add(i64::from(days).saturating_mul(day_ms)),
        day_ms,
    )
}

/// When the current version `record` of `key` expires under `rules`, and the id of the rule
/// that expires it first; `None` if no enabled rule expires it.
pub fn current_expiry<'a>(
    rules: &'a [LifecycleRule],
    key: &str,
    record: &ObjectRecord,
    day_ms: i64,
) -> Option<(i64, &'a str)> {
    if record.delete_marker {
        return None;
    }
    rules
        .iter()
        .filter(|r| r.enabled && filter_matches(&r.filter, key, record.size, &record.tags))
        .filter_map(|r| {
            let at = match (r.expiration_days, r.expiration_date_ms) {
                (Some(days), _) => after_days(record.modified_ms, days, day_ms),
                (None, Some(date)) => date,
                (None, None) => return None,
            };
            Some((at, r.id.as_str()))
        })
        .min_by_key(|(at, _)| *at)
}

/// Whether a noncurrent version is due for removal: noncurrent since `since_ms`, with
/// `newer_noncurrent` noncurrent versions of its key newer than it.
fn noncurrent_due(
    rules: &[LifecycleRule],
    (key, record): (&str, &ObjectRecord),
    since_ms: i64,
    newer_noncurrent: u32,
    (now, day_ms): (i64, i64),
) -> bool {
    rules.iter().any(|r| {
        r.enabled
            && filter_matches(&r.filter, key, record.size, &record.tags)
            && r.noncurrent_days
                .is_some_and(|days| now >= after_days(since_ms, days, day_ms))
            && newer_noncurrent >= r.newer_noncurrent_versions.unwrap_or(0)
    })
}

/// Whether a rule removes a delete marker of `key` left alone.
fn removes_lone_marker(rules: &[LifecycleRule], key: &str) -> bool {
    rules.iter().any(|r| {
        r.enabled
            && r.expired_object_delete_marker
            && key.starts_with(r.filter.prefix.as_deref().unwrap_or(""))
    })
}

/// The event of a removal by a lifecycle rule (the lifecycle itself is the requester).
fn expiry_event(name: &str, bucket: &str, key: &str, version_id: Option<String>) -> EventRecord {
    EventRecord {
        name: name.to_owned(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id,
        principal: Some("tessera-lifecycle".into()),
        ..Default::default()
    }
}

/// The walk's state for the key being listed (its versions come newest first).
#[derive(Default)]
struct KeyWalk {
    key: String,
    /// Versions of the key listed so far.
    seen: u32,
    /// The write time of the last version listed: when the next one became noncurrent.
    newer_modified_ms: i64,
    /// The key's current version is a delete marker with this version id (`None`: null).
    marker: Option<Option<String>>,
}

impl ObjectService {
    /// The length of a lifecycle day (a real day unless tests shorten it).
    pub fn with_lifecycle_day(mut self, day: Duration) -> Self {
        self.lifecycle_day_ms = i64::try_from(day.as_millis()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// When the current version `record` of `key` in `bucket` expires under the bucket's
    /// lifecycle rules, and by which rule (S3's `x-amz-expiration`). The rules are read
    /// through the bucket cache: GET and HEAD answer it, and must not pay a metadata read
    /// (an etcd round trip) for it.
    pub async fn expiration_of(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> Option<(i64, String)> {
        let bucket = self.bucket_cache.get(bucket, &self.meta).await?;
        current_expiry(&bucket.lifecycle, key, record, self.lifecycle_day_ms)
            .map(|(at, id)| (at, id.to_owned()))
    }

    /// Forgets the cached configuration of `bucket` (it was just changed).
    pub fn bucket_changed(&self, bucket: &str) {
        self.bucket_cache.forget(bucket);
    }

    pub fn lifecycle_counters(&self) -> &LifecycleCounters {
        &self.lifecycle
    }

    /// Runs [`Self::lifecycle_pass`] every `interval` until the service is dropped.
    pub fn spawn_lifecycle(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        self.spawn_every(interval, |service| async move {
            if let Err(e) = service.lifecycle_pass().await {
                tracing::warn!(error = %e, "lifecycle pass failed");
            }
        })
    }

    /// One pass of every bucket's lifecycle rules (see the module docs).
    pub async fn lifecycle_pass(&self) -> Result<()> {
        let buckets = self.meta.list_buckets().await?;
        let resume: Option<Progress> = match self.meta.setting(PROGRESS_SETTING).await? {
            Some(bytes) => metastore::records::decode(&bytes).ok(),
            None => None,
        };
        for (name, record) in &buckets {
            if let Some(p) = &resume
                && *name < p.bucket
            {
                continue;
            }
            if !record.lifecycle.iter().any(|r| r.enabled) {
                continue;
            }
            let from = resume.as_ref().filter(|p| p.bucket == *name);
            match self.lifecycle_bucket(name, &record.lifecycle, from).await {
                Ok(()) | Err(Error::Meta(metastore::Error::NoSuchBucket)) => {}
                Err(e) => return Err(e),
            }
        }
        self.abort_uploads_by_rules(&buckets).await?;
        self.meta
            .put_setting(PROGRESS_SETTING, Vec::new(), true)
            .await?;
        self.lifecycle.passes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn lifecycle_bucket(
        &self,
        bucket: &str,
        rules: &[LifecycleRule],
        from: Option<&Progress>,
    ) -> Result<()> {
        let mut query = VersionQuery {
            key_marker: from.map(|p| p.key.clone()),
            version_id_marker: from.and_then(|p| p.version_id.clone()),
            max: PAGE,
            ..Default::default()
        };
        let mut walk = KeyWalk::default();
        loop {
            let page = self.meta.list_versions(bucket, query.clone()).await?;
            // The next page resumes after the last version this one kept: one it removed can
            // no longer be found, and resuming after its key would skip the key's others.
            let (mut last, mut last_kept) = (None, None);
            for entry in page.entries {
                let VersionEntry::Version { key, record, .. } = entry else {
                    continue;
                };
                self.lifecycle
                    .versions_scanned
                    .fetch_add(1, Ordering::Relaxed);
                if key != walk.key {
                    self.finish_key(bucket, rules, &walk).await?;
                    walk = KeyWalk {
                        key: key.clone(),
                        ..Default::default()
                    };
                }
                let removed = self
                    .lifecycle_version(bucket, rules, &mut walk, &record)
                    .await?;
                let here = Some((key, record.version_id.clone()));
                if !removed {
                    last_kept = here.clone();
                }
                last = here;
            }
            let Some((key, version_id)) = last_kept.or(last).filter(|_| page.truncated) else {
                break;
            };
            let progress = Progress {
                bucket: bucket.to_owned(),
                key: key.clone(),
                version_id: version_id.clone(),
            };
            self.meta
                .put_setting(
                    PROGRESS_SETTING,
                    metastore::records::encode(&progress),
                    true,
                )
                .await?;
            query.key_marker = Some(key);
            query.version_id_marker = Some(version_id.unwrap_or_else(|| "null".into()));
        }
        self.finish_key(bucket, rules, &walk).await
    }

    /// Applies the rules to one listed version of `walk.key`; true if it removed that
    /// version (the next page cannot resume after it).
    async fn lifecycle_version(
        &self,
        bucket: &str,
        rules: &[LifecycleRule],
        walk: &mut KeyWalk,
        record: &ObjectRecord,
    ) -> Result<bool> {
        let (now, day_ms) = (now_ms(), self.lifecycle_day_ms);
        let key = walk.key.clone();
        let position = walk.seen;
        walk.seen += 1;
        let since = std::mem::replace(&mut walk.newer_modified_ms, record.modified_ms);
        if position == 0 {
            if record.delete_marker {
                walk.marker = Some(record.version_id.clone());
            } else if current_expiry(rules, &key, record, day_ms).is_some_and(|(at, _)| now >= at)
                && let Some(outcome) = self
                    .meta
                    .expire_current(
                        bucket,
                        &key,
                        record.version_id.as_deref(),
                        record.modified_ms,
                    )
                    .await?
            {
                self.lifecycle.expired.fetch_add(1, Ordering::Relaxed);
                let name = if outcome.delete_marker {
                    "LifecycleExpiration:DeleteMarkerCreated"
                } else {
                    "LifecycleExpiration:Delete"
                };
                let removed = !outcome.delete_marker;
                self.notify(expiry_event(name, bucket, &key, outcome.version_id))
                    .await;
                return Ok(removed);
            }
            return Ok(false);
        }
        if noncurrent_due(rules, (&key, record), since, position - 1, (now, day_ms)) {
            let id = record.version_id.as_deref().unwrap_or("null");
            match self
                .delete_object_locked(bucket, &key, Some(id), false)
                .await
            {
                Ok(_) => {
                    self.lifecycle
                        .noncurrent_removed
                        .fetch_add(1, Ordering::Relaxed);
                    let event = expiry_event(
                        "LifecycleExpiration:Delete",
                        bucket,
                        &key,
                        Some(id.to_owned()),
                    );
                    self.notify(event).await;
                    return Ok(true);
                }
                Err(Error::ObjectLocked) => {
                    self.lifecycle
                        .skipped_locked
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// After the last version of `walk.key`: a delete marker that is all the key has left
    /// is removed where a rule says so. Removing it exposes nothing: a version written
    /// meanwhile is newer than the marker.
    async fn finish_key(
        &self,
        bucket: &str,
        rules: &[LifecycleRule],
        walk: &KeyWalk,
    ) -> Result<()> {
        let Some(marker) = &walk.marker else {
            return Ok(());
        };
        if walk.seen != 1 || !removes_lone_marker(rules, &walk.key) {
            return Ok(());
        }
        let id = marker.as_deref().unwrap_or("null");
        match self
            .delete_object_locked(bucket, &walk.key, Some(id), false)
            .await
        {
            Ok(_) => {
                self.lifecycle
                    .delete_markers_removed
                    .fetch_add(1, Ordering::Relaxed);
                let event = expiry_event(
                    "LifecycleExpiration:Delete",
                    bucket,
                    &walk.key,
                    Some(id.to_owned()),
                );
                self.notify(event).await;
                Ok(())
            }
            Err(Error::ObjectLocked) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Aborts the multipart uploads that rules with AbortIncompleteMultipartUpload make due.
    async fn abort_uploads_by_rules(&self, buckets: &[(String, BucketRecord)]) -> Result<()> {
        let day_ms = self.lifecycle_day_ms;
        let Some(min_days) = buckets
            .iter()
            .flat_map(|(_, b)| &b.lifecycle)
            .filter(|r| r.enabled)
            .filter_map(|r| r.abort_incomplete_days)
            .min()
        else {
            return Ok(());
        };
        let now = now_ms();
        // Every upload a rule could make due started at least `min_days` days ago.
        let cutoff = now.saturating_sub(i64::from(min_days).saturating_mul(day_ms));
        for (bucket, key, upload_id) in self.meta.uploads_initiated_before(cutoff).await? {
            let Some((_, record)) = buckets.iter().find(|(b, _)| *b == bucket) else {
                continue;
            };
            let Some(upload) = self.meta.get_upload(&bucket, &key, &upload_id).await? else {
                continue;
            };
            let due = record.lifecycle.iter().any(|r| {
                r.enabled
                    && key.starts_with(r.filter.prefix.as_deref().unwrap_or(""))
                    && r.abort_incomplete_days
                        .is_some_and(|d| now >= after_days(upload.initiated_ms, d, day_ms))
            });
            if !due {
                continue;
            }
            match self.meta.abort_upload(&bucket, &key, &upload_id).await {
                Ok(()) => {
                    self.lifecycle
                        .uploads_aborted
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(metastore::Error::NoSuchUpload) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 1000;

    fn rule(f: impl FnOnce(&mut LifecycleRule)) -> LifecycleRule {
        let mut r = LifecycleRule {
            id: "r".into(),
            enabled: true,
            ..Default::default()
        };
        f(&mut r);
        r
    }

    fn version(size: u64, modified_ms: i64, tags: &[(&str, &str)]) -> ObjectRecord {
        let mut r = ObjectRecord::delete_marker(modified_ms);
        r.delete_marker = false;
        r.size = size;
        r.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        r
    }

    #[test]
    fn expiry_rounds_up_to_a_day_boundary() {
        assert_eq!(after_days(0, 1, DAY_MS), 1000);
        assert_eq!(after_days(1, 1, DAY_MS), 2000);
        assert_eq!(after_days(999, 2, DAY_MS), 3000);
        assert_eq!(after_days(1000, 2, DAY_MS), 3000);
        // A real day: an object written at 10:00 with Days=1 expires at midnight after next.
        let day = DAY.as_millis() as i64;
        assert_eq!(after_days(10 * 3600 * 1000, 1, day), 2 * day);
    }

    #[test]
    fn filters_need_every_condition() {
        let f = LifecycleFilter {
            prefix: Some("logs/".into()),
            tags: vec![("a".into(), "1".into())],
            size_greater_than: Some(10),
            size_less_than: Some(100),
            ..Default::default()
        };
        let tags = [("a".to_string(), "1".to_string()), ("b".into(), "2".into())];
        assert!(filter_matches(&f, "logs/x", 50, &tags));
        assert!(!filter_matches(&f, "other/x", 50, &tags));
        assert!(!filter_matches(&f, "logs/x", 10, &tags), "strictly greater");
        assert!(!filter_matches(&f, "logs/x", 100, &tags), "strictly less");
        assert!(!filter_matches(&f, "logs/x", 50, &tags[1..]));
        assert!(filter_matches(&LifecycleFilter::default(), "", 0, &[]));
    }

    #[test]
    fn the_earliest_enabled_rule_expires_a_current_version() {
        let rules = [
            rule(|r| {
                r.id = "late".into();
                r.expiration_days = Some(5);
            }),
            rule(|r| {
                r.id = "off".into();
                r.enabled = false;
                r.expiration_days = Some(1);
            }),
            rule(|r| {
                r.id = "dated".into();
                r.expiration_date_ms = Some(3000);
            }),
            rule(|r| {
                r.id = "noncurrent only".into();
                r.noncurrent_days = Some(1);
            }),
        ];
        let v = version(1, 500, &[]);
        assert_eq!(
            current_expiry(&rules, "k", &v, DAY_MS),
            Some((3000, "dated"))
        );
        assert_eq!(
            current_expiry(&rules[..2], "k", &v, DAY_MS),
            Some((6000, "late"))
        );
        assert_eq!(current_expiry(&rules[1..2], "k", &v, DAY_MS), None);
        let marker = ObjectRecord::delete_marker(500);
        assert_eq!(current_expiry(&rules, "k", &marker, DAY_MS), None);
    }

    /// A service over in-memory metadata with no disks (inline objects only).
    fn service() -> ObjectService {
        let meta = metastore::MetaStore::memory();
        let chunks = erasure::ChunkStore::new(
            erasure::Layout::new(1, None).unwrap(),
            vec![Arc::new(erasure::MemoryShardStore::new("d0")) as Arc<dyn erasure::ShardStore>],
        )
        .unwrap();
        let pools = Arc::new(erasure::Pools::new(Arc::new(chunks)));
        ObjectService::new(meta, pools, 1 << 16, 1024).with_lifecycle_day(Duration::from_secs(1))
    }

    async fn keys(s: &ObjectService, bucket: &str) -> usize {
        let q = VersionQuery {
            max: 10_000,
            ..Default::default()
        };
        s.meta.list_versions(bucket, q).await.unwrap().entries.len()
    }

    #[tokio::test]
    async fn a_pass_goes_on_where_an_interrupted_one_stopped() {
        let s = service();
        let rules = vec![rule(|r| r.expiration_days = Some(1))];
        for bucket in ["a", "b"] {
            let mut record = BucketRecord::new(0);
            record.lifecycle = rules.clone();
            s.meta.create_bucket(bucket, record).await.unwrap();
            // More than a page, written long ago: all due.
            for i in 0..(PAGE + 500) {
                let mut v = version(1, 0, &[]);
                v.data = metastore::ObjectData::Inline(vec![1]);
                let key = format!("k{i:05}");
                s.meta.put_object(bucket, &key, v, None).await.unwrap();
            }
        }
        // A pass was interrupted in bucket b after k01200.
        let stopped = Progress {
            bucket: "b".into(),
            key: "k01200".into(),
            version_id: None,
        };
        let bytes = metastore::records::encode(&stopped);
        s.meta
            .put_setting(PROGRESS_SETTING, bytes, true)
            .await
            .unwrap();
        s.lifecycle_pass().await.unwrap();
        assert_eq!(
            keys(&s, "a").await,
            PAGE + 500,
            "bucket a came before the place"
        );
        assert_eq!(keys(&s, "b").await, 1201, "b expired after the place only");
        let c = s.lifecycle_counters();
        assert_eq!(
            c.expired.load(Ordering::Relaxed),
            (PAGE + 500 - 1201) as u64
        );
        // The pass finished: the next one starts from the beginning, paging through both.
        s.lifecycle_pass().await.unwrap();
        assert_eq!((keys(&s, "a").await, keys(&s, "b").await), (0, 0));
        assert_eq!(c.passes.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn one_pass_removes_noncurrent_versions_across_pages() {
        let s = service();
        let mut record = BucketRecord::new(0);
        record.versioning = metastore::Versioning::Enabled;
        record.lifecycle = vec![rule(|r| r.noncurrent_days = Some(1))];
        s.meta.create_bucket("v", record).await.unwrap();
        for i in 0..(PAGE as i64 + 500) {
            let mut v = version(1, i, &[]);
            v.data = metastore::ObjectData::Inline(vec![1]);
            s.meta.put_object("v", "k", v, None).await.unwrap();
        }
        // The first page ends on a version the pass removes: the next one still finds the
        // key's older versions.
        s.lifecycle_pass().await.unwrap();
        assert_eq!(keys(&s, "v").await, 1, "only the current version is left");
        let removed = s
            .lifecycle_counters()
            .noncurrent_removed
            .load(Ordering::Relaxed);
        assert_eq!(removed, (PAGE + 499) as u64);
    }

    #[test]
    fn noncurrent_versions_keep_the_newest_ones() {
        let rules = [rule(|r| {
            r.noncurrent_days = Some(1);
            r.newer_noncurrent_versions = Some(2);
        })];
        let v = version(1, 0, &[]);
        // Noncurrent since 0: due at 1000.
        assert!(!noncurrent_due(&rules, ("k", &v), 0, 5, (999, DAY_MS)));
        assert!(noncurrent_due(&rules, ("k", &v), 0, 2, (1000, DAY_MS)));
        assert!(!noncurrent_due(&rules, ("k", &v), 0, 1, (1000, DAY_MS)));
    }
}
