//! The reference check while writers go on: every recount during writes is exact, and a
//! repair corrects the error it found while keeping the changes made after its snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::refs::RefDelta;
use crate::suite::{chunk, object};
use crate::*;

/// Records `by` more references to `chunk` than there are, in a transaction of its own.
async fn miscount(store: &MetaStore, chunk: ChunkRef, by: i64) {
    store
        .txn(move |s, tx| {
            let mut wrong = RefDelta::checked(None);
            wrong.add_one(chunk.hash, by, chunk.len, 0);
            s.apply_refs(tx, wrong)
        })
        .await
        .unwrap();
}

/// Three writers overwrite and delete objects that all name one shared chunk while checks
/// run; one check repairs an error put into the shared chunk's count meanwhile.
pub(crate) async fn check_while_writing(store: &MetaStore) {
    store
        .create_bucket("online", BucketRecord::new(1))
        .await
        .unwrap();
    let shared = chunk(0xA0);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..3u8)
        .map(|w| {
            let (store, stop, writes) = (store.clone(), stop.clone(), writes.clone());
            tokio::spawn(async move {
                let mut n = 0u8;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{}", n % 4);
                    if n % 5 == 4 {
                        store.delete_object("online", &key, None).await.unwrap();
                    } else {
                        let own = chunk(0xB0 + n % 4);
                        store
                            .put_object("online", &key, object(vec![shared, own, shared]), None)
                            .await
                            .unwrap();
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                    n = n.wrapping_add(1);
                }
            })
        })
        .collect();
    let writes_during = |before: u64| writes.load(Ordering::Relaxed) - before;

    let before = writes.load(Ordering::Relaxed);
    for _ in 0..4 {
        let check = store.check_refcounts(false).await.unwrap();
        assert!(
            check.mismatched.is_empty(),
            "a recount during writes is exact: {:?}",
            check.mismatched
        );
    }
    miscount(store, shared, 2).await;
    let repair = store.check_refcounts(true).await.unwrap();
    assert!(repair.repaired);
    let [found] = repair.mismatched.as_slice() else {
        panic!("one mismatch expected: {:?}", repair.mismatched);
    };
    assert_eq!(found.chunk, hex::encode(shared.hash));
    assert_eq!(found.recorded, Some(found.counted + 2), "{found:?}");

    // Writers keep going for a few more writes after the repair, then stop.
    let after_repair = writes.load(Ordering::Relaxed);
    while writes_during(after_repair) < 6 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(writes_during(before) > 6);
    let last = store.check_refcounts(false).await.unwrap();
    assert!(
        last.mismatched.is_empty(),
        "the repair kept the writers' changes: {:?}",
        last.mismatched
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::suite_concurrency::Chaos;

    /// On a store this process alone writes (where transactions take a lock), writes go on
    /// while the recount reads: one made inside the recount's read finishes before the check
    /// does, is not counted (it came after the snapshot), and survives the repair.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_recount_holds_no_writer_up() {
        let store_slot: Arc<Mutex<Option<MetaStore>>> = Arc::default();
        let wrote = Arc::new(AtomicBool::new(false));
        let handle = tokio::runtime::Handle::current();
        let hook = {
            let (slot, wrote) = (store_slot.clone(), wrote.clone());
            move || {
                // Once, from the check's first snapshot read.
                let Some(store) = slot.lock().unwrap().take() else {
                    return;
                };
                let put = store.put_object("b", "late", object(vec![chunk(1)]), None);
                let done = handle.block_on(tokio::time::timeout(Duration::from_secs(10), put));
                done.expect("a write during the recount finishes").unwrap();
                wrote.store(true, Ordering::SeqCst);
            }
        };
        let store = MetaStore::with_store(
            Chaos::on_snapshot(LocalTxn::new(MemoryKv::default()), Box::new(hook)),
            Duration::ZERO,
        );
        store
            .create_bucket("b", BucketRecord::new(0))
            .await
            .unwrap();
        let c = chunk(1);
        store
            .put_object("b", "two", object(vec![c, c]), None)
            .await
            .unwrap();
        store
            .put_object("b", "one", object(vec![c]), None)
            .await
            .unwrap();
        miscount(&store, c, 2).await;
        *store_slot.lock().unwrap() = Some(store.clone());

        let repair = store.check_refcounts(true).await.unwrap();
        assert!(wrote.load(Ordering::SeqCst), "the hook's write ran");
        let [found] = repair.mismatched.as_slice() else {
            panic!("{:?}", repair.mismatched);
        };
        assert_eq!((found.recorded, found.counted), (Some(5), 3));
        assert_eq!(store.chunk_refcount(c.hash).await.unwrap(), Some(4));
        let after = store.check_refcounts(false).await.unwrap();
        assert!(after.mismatched.is_empty(), "{:?}", after.mismatched);
    }
}
