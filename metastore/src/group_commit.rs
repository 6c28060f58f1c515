//! Group commit for the metastore's writes.
//!
//! A write transaction's commit is applied without a flush ([`GroupCommit::committed`] notes
//! it); the flush runs after the transaction is over ([`GroupCommit::run`]) and is shared: the
//! first writer to get there flushes every replica's WAL, and every writer whose commit was
//! applied before that flush started returns without one of its own. A write still returns
//! only once it is durable. (On etcd a commit is durable when it returns, and `sync` is free.)

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;
use crate::txn::TxnStore;

thread_local! {
    /// The number of the last batch this thread committed and has not flushed yet.
    static UNFLUSHED: Cell<u64> = const { Cell::new(0) };
}

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    /// Batches applied so far, numbered from 1.
    committed: AtomicU64,
    /// Every batch up to this number is durable.
    flushed: Mutex<u64>,
}

impl GroupCommit {
    /// Notes that this thread has just applied a commit and owes a flush. Called after the
    /// commit is applied, so a flush that counts it has it to flush.
    pub fn committed(&self) {
        let n = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        UNFLUSHED.set(n);
    }

    /// Runs a transaction on this (blocking) thread, then makes the batches it committed
    /// durable before returning.
    pub fn run<T>(&self, kv: &dyn TxnStore, f: impl FnOnce() -> Result<T>) -> Result<T> {
        UNFLUSHED.set(0);
        let out = f();
        let mine = UNFLUSHED.replace(0);
        if mine > 0 {
            self.flush_through(kv, mine)?;
        }
        out
    }

    fn flush_through(&self, kv: &dyn TxnStore, n: u64) -> Result<()> {
        let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
        if *flushed >= n {
            return Ok(()); // a flush that started after our batch covered it
        }
        let upto = self.committed.load(Ordering::SeqCst);
        kv.sync()?;
        *flushed = upto;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use std::sync::Mutex;

    use crate::kv::{Batch, Entry, KvStore, Tree};
    use crate::records::BucketRecord;
    use crate::{MemoryKv, MetaStore, Result};

    /// A store that counts batches written and those flushed.
    #[derive(Default)]
    struct Counting {
        inner: MemoryKv,
        written: Arc<AtomicU64>,
        durable: Arc<AtomicU64>,
        flushes: Arc<AtomicU64>,
        /// The number of the batch that wrote each key.
        batch_of: Arc<Mutex<std::collections::HashMap<Vec<u8>, u64>>>,
    }

    impl KvStore for Counting {
        fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
            self.inner.get(tree, key)
        }
        fn scan(
            &self,
            tree: Tree,
            start: &[u8],
            end: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<Entry>> {
            self.inner.scan(tree, start, end, limit)
        }
        fn write(&self, batch: Batch) -> Result<()> {
            self.inner.write(batch)?;
            let n = self.written.fetch_add(1, Ordering::SeqCst) + 1;
            self.durable.fetch_max(n, Ordering::SeqCst);
            Ok(())
        }
        fn write_unsynced(&self, batch: Batch) -> Result<()> {
            let keys: Vec<Vec<u8>> = batch
                .ops
                .iter()
                .map(|op| match op {
                    crate::kv::Op::Put(_, k, _) | crate::kv::Op::Delete(_, k) => k.clone(),
                })
                .collect();
            self.inner.write(batch)?;
            let n = self.written.fetch_add(1, Ordering::SeqCst) + 1;
            let mut map = self.batch_of.lock().unwrap();
            for k in keys {
                map.insert(k, n);
            }
            Ok(())
        }
        fn sync(&self) -> Result<()> {
            self.flushes.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            let w = self.written.load(Ordering::SeqCst);
            self.durable.fetch_max(w, Ordering::SeqCst);
            Ok(())
        }
        fn with_snapshot(&self, read: crate::kv::SnapshotFn<'_>) -> Result<()> {
            self.inner.with_snapshot(read)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_write_is_flushed_before_it_returns() {
        let kv = Counting::default();
        let (written, durable, flushes, batch_of) = (
            kv.written.clone(),
            kv.durable.clone(),
            kv.flushes.clone(),
            kv.batch_of.clone(),
        );
        let store = Arc::new(MetaStore::new(kv, std::time::Duration::ZERO));
        store
            .create_bucket("one", BucketRecord::new(0))
            .await
            .unwrap();
        assert_eq!(
            durable.load(Ordering::SeqCst),
            written.load(Ordering::SeqCst)
        );
        assert_eq!(flushes.load(Ordering::SeqCst), 1);

        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (store, durable, batch_of) = (store.clone(), durable.clone(), batch_of.clone());
                tokio::spawn(async move {
                    let name = format!("bucket-{i}");
                    store
                        .create_bucket(&name, BucketRecord::new(0))
                        .await
                        .unwrap();
                    let durable_now = durable.load(Ordering::SeqCst);
                    let mine = batch_of.lock().unwrap()[name.as_bytes()];
                    assert!(
                        durable_now >= mine,
                        "{name}: batch {mine} returned with only {durable_now} flushed"
                    );
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(durable.load(Ordering::SeqCst), 65);
        // Reads never flush; 65 writes needed at most 65 flushes (fewer when they overlap).
        assert!(flushes.load(Ordering::SeqCst) <= 65);
    }
}
