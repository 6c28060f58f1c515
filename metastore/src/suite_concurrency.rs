//! The transaction contract under concurrency: the whole suite on stores whose transactions
//! run optimistically (as several gateways on etcd do) and on one that makes every other
//! guarded commit conflict, plus concurrent writers whose refcounts must stay exact and
//! racing conditional writes of which exactly one may win.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::kv::{Entry, Tree};
use crate::suite::{chunk, object};
use crate::txn::{Commit, KeyRead, Limits, Rev, Txn, TxnStore};
use crate::*;

/// A store that makes transactions meet trouble: with `conflicting`, about every other guarded
/// commit fails as if another writer had got there first, so that every operation's retry
/// path runs (what it returns must not change); with `slow_reads`, reads take a while, so
/// that concurrent transactions overlap and conflict for real; with `limited`, it takes tiny
/// transactions, so that every large change is applied in steps (`crate::steps`) and a
/// commit over the limits is refused.
pub struct Chaos<S> {
    inner: S,
    fail_every_other: bool,
    read_delay: Duration,
    limits: Option<Limits>,
    commits: AtomicU64,
    pub conflicts: Arc<AtomicU64>,
    /// Run inside every snapshot read, before the reader.
    snapshot_hook: Option<SnapshotHook>,
    /// The fencing token, if not the inner store's.
    fence_token: Option<u64>,
}

type SnapshotHook = Box<dyn Fn() + Send + Sync>;

impl<S> Chaos<S> {
    pub fn conflicting(inner: S) -> Self {
        Chaos {
            inner,
            fail_every_other: true,
            read_delay: Duration::ZERO,
            limits: None,
            commits: AtomicU64::new(0),
            conflicts: Arc::default(),
            snapshot_hook: None,
            fence_token: None,
        }
    }

    /// A store whose commits count as a leader's with fencing token `token`.
    pub fn fenced(inner: S, token: u64) -> Self {
        Chaos {
            fail_every_other: false,
            fence_token: Some(token),
            ..Self::conflicting(inner)
        }
    }

    /// A store that runs `hook` inside every snapshot read (to write while one is open).
    pub fn on_snapshot(inner: S, hook: SnapshotHook) -> Self {
        Chaos {
            fail_every_other: false,
            snapshot_hook: Some(hook),
            ..Self::conflicting(inner)
        }
    }

    pub fn slow_reads(inner: S, delay: Duration) -> Self {
        Chaos {
            fail_every_other: false,
            read_delay: delay,
            ..Self::conflicting(inner)
        }
    }

    pub fn limited(inner: S, limits: Limits) -> Self {
        Chaos {
            fail_every_other: false,
            limits: Some(limits),
            ..Self::conflicting(inner)
        }
    }
}

impl<S: TxnStore> TxnStore for Chaos<S> {
    fn get_rev(&self, tree: Tree, key: &[u8], at: Option<Rev>) -> Result<KeyRead> {
        std::thread::sleep(self.read_delay);
        self.inner.get_rev(tree, key, at)
    }
    fn scan_rev(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        at: Option<Rev>,
    ) -> Result<(Vec<Entry>, Rev)> {
        std::thread::sleep(self.read_delay);
        self.inner.scan_rev(tree, start, end, limit, at)
    }
    fn commit(&self, txn: Txn) -> Result<Commit> {
        if let Some(l) = self.limits
            && (txn.guards.len() > l.max_guards || txn.batch.ops.len() > l.max_ops)
        {
            return Err(Error::TooLarge(format!(
                "{} guards, {} writes",
                txn.guards.len(),
                txn.batch.ops.len()
            )));
        }
        // Every other guarded commit on average, in a scrambled order: a fixed alternation
        // could fail the same step of every attempt of a change applied in steps.
        if self.fail_every_other
            && !txn.guards.is_empty()
            && (self
                .commits
                .fetch_add(1, Ordering::SeqCst)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                >> 63)
                == 0
        {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
            return Ok(Commit::Conflict);
        }
        self.inner.commit(txn)
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn single_writer(&self) -> bool {
        self.inner.single_writer()
    }
    fn limits(&self) -> Limits {
        self.limits.unwrap_or_else(|| self.inner.limits())
    }
    fn fence_token(&self) -> u64 {
        self.fence_token.unwrap_or_else(|| self.inner.fence_token())
    }
    fn watch(&self, prefixes: &[(Tree, &[u8])]) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.watch(prefixes)
    }
    fn with_snapshot(&self, read: crate::kv::SnapshotFn<'_>) -> Result<()> {
        match &self.snapshot_hook {
            Some(hook) => self.inner.with_snapshot(&mut |snap| {
                hook();
                read(snap)
            }),
            None => self.inner.with_snapshot(read),
        }
    }
}

/// 16 writers put, overwrite, copy (same chunks) and delete objects over 4 keys in a
/// versioned and an unversioned bucket, with overlapping chunks; then every count is exact.
pub async fn concurrent_writers(store: MetaStore) {
    store
        .create_bucket("plain", BucketRecord::new(0))
        .await
        .unwrap();
    store
        .create_bucket("versioned", BucketRecord::new(0))
        .await
        .unwrap();
    store
        .set_versioning("versioned", Versioning::Enabled)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16u8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..12u8 {
                    let bucket = if (w + i) % 2 == 0 {
                        "plain"
                    } else {
                        "versioned"
                    };
                    let key = format!("k{}", (w as usize + i as usize) % 4);
                    let chunks = vec![chunk(i % 5), chunk(w % 3 + 10)];
                    match (w + i) % 3 {
                        0 | 1 => {
                            store
                                .put_object(bucket, &key, object(chunks), None)
                                .await
                                .unwrap();
                        }
                        _ => {
                            store.delete_object(bucket, &key, None).await.unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let check = store.check_refcounts(false).await.unwrap();
    assert!(check.mismatched.is_empty(), "{:?}", check.mismatched);
    assert!(check.chunks_referenced > 0);

    // Racing `If-None-Match: *` writes of one new key: exactly one wins.
    let tasks: Vec<_> = (0..12u8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_object(
                        "plain",
                        "once",
                        object(vec![chunk(40 + w)]),
                        Some(Expect::Absent),
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::PreconditionFailed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    let check = store.check_refcounts(false).await.unwrap();
    assert!(check.mismatched.is_empty(), "{:?}", check.mismatched);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::suite::run;

    /// The whole suite with at most 8 writes and 8 guards per commit, on a store shared with
    /// other writers (optimistic): larger changes are applied in steps, and every answer is
    /// the same.
    #[tokio::test]
    async fn large_changes_are_applied_in_steps() {
        let tiny = Limits {
            max_ops: 8,
            max_guards: 8,
            max_bytes: 1 << 20,
        };
        run(MetaStore::with_store(
            Chaos::limited(LocalTxn::optimistic(MemoryKv::new()), tiny),
            Duration::ZERO,
        ))
        .await;
    }

    /// The same, with every other guarded commit failing: main batches of changes in steps
    /// conflict, their increments are taken back, and the recount still finds every count
    /// exact.
    #[tokio::test]
    async fn large_changes_in_steps_survive_conflicts() {
        let chaos = Chaos {
            limits: Some(Limits {
                max_ops: 8,
                max_guards: 8,
                max_bytes: 1 << 20,
            }),
            ..Chaos::conflicting(LocalTxn::optimistic(MemoryKv::new()))
        };
        let conflicts = chaos.conflicts.clone();
        run(MetaStore::with_store(chaos, Duration::ZERO)).await;
        assert!(conflicts.load(Ordering::SeqCst) > 50);
    }

    #[tokio::test]
    async fn optimistic_memory_backend() {
        run(MetaStore::with_store(
            LocalTxn::optimistic(MemoryKv::new()),
            Duration::ZERO,
        ))
        .await;
    }

    #[tokio::test]
    async fn every_operation_survives_conflicts() {
        let chaos = Chaos::conflicting(LocalTxn::optimistic(MemoryKv::new()));
        let conflicts = chaos.conflicts.clone();
        run(MetaStore::with_store(chaos, Duration::ZERO)).await;
        assert!(
            conflicts.load(Ordering::SeqCst) > 50,
            "the retry path barely ran"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_on_optimistic_transactions() {
        concurrent_writers(MetaStore::with_store(
            Chaos::slow_reads(
                LocalTxn::optimistic(MemoryKv::new()),
                Duration::from_micros(200),
            ),
            Duration::ZERO,
        ))
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_on_serialised_transactions() {
        let dir = tempfile::tempdir().unwrap();
        concurrent_writers(MetaStore::new(
            RocksKv::open(dir.path()).unwrap(),
            Duration::ZERO,
        ))
        .await;
    }
}
