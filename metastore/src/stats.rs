//! Counts of the metadata commits this process made, for `/metrics`: how many, how they
//! ended, how long they took, and how often a transaction ran again after a conflict. On a
//! shared backend (etcd) conflicts and their re-runs are what several writers cost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::txn::{Commit, Txn, TxnStore};

#[derive(Debug, Default)]
pub(crate) struct CommitStats {
    done: AtomicU64,
    conflicts: AtomicU64,
    unavailable: AtomicU64,
    failed: AtomicU64,
    // Nanoseconds: an in-memory commit can take under a microsecond, and summing truncated
    // microseconds would count it as no time at all.
    nanos: AtomicU64,
    reruns: AtomicU64,
}

/// A snapshot of [`CommitStats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitCounts {
    /// Commits that were applied.
    pub done: u64,
    /// Commits refused because something they read had changed.
    pub conflicts: u64,
    /// Commits the backend could not be reached for.
    pub unavailable: u64,
    /// Commits that failed otherwise.
    pub failed: u64,
    /// Time spent in commits, all outcomes.
    pub seconds: f64,
    /// Transactions run again (after a conflict).
    pub reruns: u64,
}

impl CommitStats {
    /// Commits `txn` to `kv`, counting the outcome and the time taken.
    pub(crate) fn commit(&self, kv: &dyn TxnStore, txn: Txn) -> Result<Commit> {
        let started = Instant::now();
        let outcome = kv.commit(txn);
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(took, Ordering::Relaxed);
        let counter = match &outcome {
            Ok(Commit::Done) => &self.done,
            Ok(Commit::Conflict) => &self.conflicts,
            Err(Error::Unavailable(_)) => &self.unavailable,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    pub(crate) fn rerun(&self) {
        self.reruns.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CommitCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CommitCounts {
            done: get(&self.done),
            conflicts: get(&self.conflicts),
            unavailable: get(&self.unavailable),
            failed: get(&self.failed),
            seconds: get(&self.nanos) as f64 / 1e9,
            reruns: get(&self.reruns),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::records::BucketRecord;
    use crate::suite_concurrency::Chaos;
    use crate::{LocalTxn, MemoryKv, MetaStore};

    #[tokio::test(flavor = "multi_thread")]
    async fn commits_conflicts_and_reruns_are_counted() {
        let plain = MetaStore::new(MemoryKv::default(), Duration::ZERO);
        plain
            .create_bucket("b", BucketRecord::new(0))
            .await
            .unwrap();
        let counts = plain.commit_counts();
        assert_eq!((counts.done, counts.conflicts, counts.reruns), (1, 0, 0));

        // Every other guarded commit conflicts: the bucket's creation runs twice.
        let chaos = MetaStore::with_store(
            Chaos::conflicting(LocalTxn::new(MemoryKv::default())),
            Duration::ZERO,
        );
        chaos
            .create_bucket("b", BucketRecord::new(0))
            .await
            .unwrap();
        let counts = chaos.commit_counts();
        assert_eq!((counts.done, counts.conflicts, counts.reruns), (1, 1, 1));
        assert!(counts.seconds > 0.0);
    }
}
