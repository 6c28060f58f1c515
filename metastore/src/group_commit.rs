//! Group commit for the metastore's writes.
//!
//! A write transaction's commit is applied without a flush ([`GroupCommit::committed`] notes
//! it); the flush runs after the transaction is over ([`GroupCommit::run`]) and is shared: the
//! first writer to get there flushes every replica's WAL, and every writer whose commit was
//! applied before that flush started returns without one of its own. A write still returns
//! only once it is durable. (On etcd a commit is durable when it returns, and `sync` is free.)

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

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
    flush: Mutex<FlushState>,
    /// Signalled whenever a flush ends: its waiters look again at once.
    flush_ended: Condvar,
}

#[derive(Debug, Default)]
struct FlushState {
    /// Every batch up to this number is durable.
    flushed: u64,
    /// A writer is flushing now (without the lock held).
    flushing: bool,
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

    /// Returns once batch `n` is durable: covered by a flush that started after it was
    /// applied, or by one this thread runs. Writers waiting for a flush in progress are all
    /// woken when it ends. (Holding a mutex across the flush instead woke them one at a time,
    /// and one not covered could take the lock first and make the covered ones wait through
    /// a second flush.)
    fn flush_through(&self, kv: &dyn TxnStore, n: u64) -> Result<()> {
        let lock = || self.flush.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = lock();
        loop {
            if state.flushed >= n {
                return Ok(());
            }
            if !state.flushing {
                break;
            }
            state = self
                .flush_ended
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        state.flushing = true;
        // Every batch counted here was applied before the flush starts, so it covers them.
        let upto = self.committed.load(Ordering::SeqCst);
        drop(state);
        let mut ending = FlushEnd {
            commit: self,
            durable_through: None,
        };
        let result = kv.sync();
        if result.is_ok() {
            ending.durable_through = Some(upto);
        }
        drop(ending);
        result
    }
}

/// Ends a flush however it ends (a panic included, or the waiters would wait forever): notes
/// what it made durable, if it succeeded, and wakes every waiter. After a failure each of them
/// tries a flush of its own.
struct FlushEnd<'a> {
    commit: &'a GroupCommit,
    durable_through: Option<u64>,
}

impl Drop for FlushEnd<'_> {
    fn drop(&mut self) {
        let mut state = self.commit.flush.lock().unwrap_or_else(|p| p.into_inner());
        state.flushing = false;
        if let Some(upto) = self.durable_through {
            state.flushed = state.flushed.max(upto);
        }
        drop(state);
        self.commit.flush_ended.notify_all();
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

    /// A store whose flushes are counted and each wait for the test to end them.
    struct Gated {
        inner: MemoryKv,
        started: std::sync::mpsc::Sender<()>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl KvStore for Gated {
        crate::memory::delegate_to_memory!(inner);
        fn sync(&self) -> Result<()> {
            self.started.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
            Ok(())
        }
    }

    /// A writer whose batch a flush covered returns when that flush ends, even while a writer
    /// it did not cover runs the next one.
    #[test]
    fn covered_writers_leave_when_their_flush_ends() {
        use std::sync::mpsc::{RecvTimeoutError, channel};
        use std::time::Duration;

        let (started_tx, started) = channel();
        let (release, release_rx) = channel();
        let kv = Arc::new(crate::local_txn::LocalTxn::new(Gated {
            inner: MemoryKv::default(),
            started: started_tx,
            release: Mutex::new(release_rx),
        }));
        let commit = Arc::new(super::GroupCommit::default());
        let flush_in_thread = |n: u64| {
            let (commit, kv) = (commit.clone(), kv.clone());
            let (done_tx, done) = channel();
            std::thread::spawn(move || {
                commit.flush_through(kv.as_ref(), n).unwrap();
                done_tx.send(()).unwrap();
            });
            done
        };
        let wait = Duration::from_secs(10);

        // Batches 1 and 2 are applied; the first writer's flush starts and covers both.
        commit.committed();
        commit.committed();
        let first = flush_in_thread(1);
        started.recv_timeout(wait).unwrap();
        // Batch 3 is applied during that flush; its writer and the second one wait.
        commit.committed();
        let third = flush_in_thread(3);
        let second = flush_in_thread(2);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(second.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));

        release.send(()).unwrap();
        first.recv_timeout(wait).unwrap();
        // The third writer runs the next flush, held open; the second leaves meanwhile.
        started.recv_timeout(wait).unwrap();
        second
            .recv_timeout(wait)
            .expect("the covered writer waited for a flush it did not need");
        assert_eq!(
            third.recv_timeout(Duration::from_millis(100)),
            Err(RecvTimeoutError::Timeout)
        );
        release.send(()).unwrap();
        third.recv_timeout(wait).unwrap();
        assert_eq!(
            started.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Empty),
            "two flushes for three batches"
        );
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
