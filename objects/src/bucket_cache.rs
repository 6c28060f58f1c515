//! Bucket records read lately, for what every request of a bucket consults but a few seconds'
//! staleness cannot harm: the lifecycle rules behind `x-amz-expiration` and the notification
//! rules a write is checked against. Without it each GET would pay a metadata read (on etcd a
//! round trip). A change made through this gateway drops its entry at once; one made through
//! another gateway shows here within [`TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use metastore::BucketRecord;

/// How long a bucket record read earlier is used.
const TTL: Duration = Duration::from_secs(5);

/// Past this many buckets the cache starts over (it only ever saves reads).
const MAX_ENTRIES: usize = 10_000;

type Entries = HashMap<String, (Instant, Arc<BucketRecord>)>;

#[derive(Debug, Default)]
pub(crate) struct BucketCache(Mutex<Entries>);

impl BucketCache {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `None`: the bucket is gone or the store failed (callers leave out what needed it).
    pub(crate) async fn get(
        &self,
        bucket: &str,
        meta: &metastore::MetaStore,
    ) -> Option<Arc<BucketRecord>> {
        if let Some((at, record)) = self.lock().get(bucket)
            && at.elapsed() < TTL
        {
            return Some(record.clone());
        }
        let record = Arc::new(meta.get_bucket(bucket).await.ok()??);
        let mut cache = self.lock();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(bucket.to_owned(), (Instant::now(), record.clone()));
        Some(record)
    }

    pub(crate) fn forget(&self, bucket: &str) {
        self.lock().remove(bucket);
    }
}
