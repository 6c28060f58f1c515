//! Pools against in-memory disks: rebalance and decommission while objects are written,
//! copied, read and deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use erasure::{ChunkStore, Layout, MemoryShardStore, PoolState, Pools, ShardStore};
use futures::StreamExt;
use metastore::{BucketRecord, MetaStore};

use super::{Encrypt, JobState, MoveKind, ObjectMeta, ObjectService, UploadBody};
use crate::error::Error;

fn pool(disks: usize) -> (Arc<ChunkStore>, Vec<Arc<MemoryShardStore>>) {
    let mem: Vec<_> = (0..disks)
        .map(|i| Arc::new(MemoryShardStore::new(format!("d{i}"))))
        .collect();
    let dyns = mem
        .iter()
        .map(|m| m.clone() as Arc<dyn ShardStore>)
        .collect();
    let store = ChunkStore::new(Layout::new(disks, None).unwrap(), dyns).unwrap();
    (Arc::new(store), mem)
}

fn body(seed: u64, len: usize) -> Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0x1234_5678_9ABC_DEF1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<_>>()
        .into()
}

/// An object service over `first` (pool 0) with an empty bucket `bkt`.
async fn service_over(first: Arc<ChunkStore>) -> Arc<ObjectService> {
    let meta = MetaStore::memory();
    meta.create_bucket("bkt", BucketRecord::new(0))
        .await
        .unwrap();
    Arc::new(ObjectService::new(
        meta,
        Arc::new(Pools::new(first)),
        1 << 16,
        1024,
    ))
}

async fn put(service: &ObjectService, key: &str, data: Bytes) {
    let upload = UploadBody {
        stream: futures::stream::iter(vec![Ok::<Bytes, Error>(data)]),
        expected_len: None,
        content_md5: None,
        check: None,
    };
    service
        .put_object("bkt", key, upload, ObjectMeta::default(), None)
        .await
        .unwrap();
}

/// The whole object `key` of `bkt`, read back.
pub(crate) async fn get(service: &ObjectService, key: &str) -> Bytes {
    let record = service.head_object("bkt", key).await.unwrap();
    let mut stream = service
        .read_object(&record, 0..record.size, None)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out.into()
}

async fn shards(mem: &[Arc<MemoryShardStore>]) -> usize {
    let mut n = 0;
    for m in mem {
        n += m.list().await.unwrap().len();
    }
    n
}

async fn wait_for_job(service: &ObjectService) -> super::MoveJob {
    for _ in 0..600 {
        let job = service.move_job().await.unwrap().unwrap();
        if job.state != JobState::Running {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the move job did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_and_decommission_while_objects_change() {
    let (first, mem0) = pool(4);
    let service = service_over(first).await;
    let mut expected: BTreeMap<String, Bytes> = BTreeMap::new();
    for i in 0..30 {
        let data = body(i, 200_000);
        put(&service, &format!("o{i}"), data.clone()).await;
        expected.insert(format!("o{i}"), data);
    }
    // Deduplicated copies share the chunks.
    for i in 0..5 {
        service
            .copy_object(
                ("bkt", &format!("o{i}"), None),
                ("bkt", &format!("copy{i}")),
                (None, &Encrypt::AsBucketSays, None),
                |_| {},
            )
            .await
            .unwrap();
        expected.insert(format!("copy{i}"), expected[&format!("o{i}")].clone());
    }

    let (second, mem1) = pool(4);
    service.pools().add(1, second, PoolState::Active);

    // Writers, copiers, deleters and readers keep going while chunks move.
    let done = Arc::new(AtomicBool::new(false));
    let churn = {
        let (service, done) = (service.clone(), done.clone());
        tokio::spawn(async move {
            let mut written = BTreeMap::new();
            let mut i = 100u64;
            while !done.load(Ordering::Relaxed) {
                let key = format!("new{i}");
                let data = body(i, 150_000);
                put(&service, &key, data.clone()).await;
                written.insert(key.clone(), data);
                // A copy of an object whose chunks may be moving right now.
                let src = format!("o{}", i % 30);
                service
                    .copy_object(
                        ("bkt", &src, None),
                        ("bkt", &format!("c{i}")),
                        (None, &Encrypt::AsBucketSays, None),
                        |_| {},
                    )
                    .await
                    .unwrap();
                written.insert(format!("c{i}"), body(i % 30, 200_000));
                assert_eq!(get(&service, &src).await, body(i % 30, 200_000));
                if i.is_multiple_of(3) {
                    service
                        .delete_object("bkt", &format!("c{i}"), None)
                        .await
                        .unwrap();
                    written.remove(&format!("c{i}"));
                }
                i += 1;
            }
            written
        })
    };
    service
        .start_move(MoveKind::Rebalance, 0)
        .await
        .expect("rebalance starts");
    let job = wait_for_job(&service).await;
    done.store(true, Ordering::Relaxed);
    expected.extend(churn.await.unwrap());
    assert_eq!(job.state, JobState::Finished, "{job:?}");
    assert!(job.chunks_moved > 0, "{job:?}");

    let held = service.meta().pool_holdings().await.unwrap();
    let (a, b) = (held[&0].bytes as f64, held[&1].bytes as f64);
    assert!(
        (a - b).abs() / a.max(b) < 0.15,
        "pools not balanced: {held:?}"
    );
    for (key, data) in &expected {
        assert_eq!(&get(&service, key).await, data, "{key}");
    }
    // Every chunk's shards are in its own pool and nowhere else; counts are exact.
    assert_eq!(shards(&mem0).await as u64, held[&0].chunks * 4);
    assert_eq!(shards(&mem1).await as u64, held[&1].chunks * 4);
    let report = service.check(false).await.unwrap();
    assert!(report.clean, "{report:?}");

    // A second start with nothing to move finishes at once.
    service.start_move(MoveKind::Rebalance, 0).await.unwrap();
    assert_eq!(wait_for_job(&service).await.chunks_moved, 0);

    // Decommission pool 1: everything comes back to pool 0 and pool 1 is retired.
    service
        .start_move(MoveKind::Decommission { pool: 1 }, 0)
        .await
        .unwrap();
    let job = wait_for_job(&service).await;
    assert_eq!(job.state, JobState::Finished, "{job:?}");
    assert!(service.pools().get(1).is_none());
    assert_eq!(shards(&mem1).await, 0);
    let held = service.meta().pool_holdings().await.unwrap();
    assert_eq!(held.keys().copied().collect::<Vec<_>>(), vec![0]);
    for (key, data) in &expected {
        assert_eq!(&get(&service, key).await, data, "{key}");
    }
    assert!(service.check(false).await.unwrap().clean);
    let records = service.pool_records().await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.id == 1 && r.state == super::RecordedState::Retired),
        "{records:?}"
    );
}

#[tokio::test]
async fn decommission_is_refused_without_another_pool_and_a_stop_returns_the_pool() {
    let (first, _) = pool(4);
    let service = service_over(first).await;
    for i in 0..10 {
        put(&service, &format!("o{i}"), body(i, 300_000)).await;
    }
    let refused = service
        .start_move(MoveKind::Decommission { pool: 0 }, 0)
        .await;
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );
    assert!(service.start_move(MoveKind::Rebalance, 0).await.is_err());

    let (second, _) = pool(4);
    service.pools().add(1, second, PoolState::Active);
    let refused = service
        .start_move(MoveKind::Decommission { pool: 0 }, 0)
        .await;
    assert!(
        matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains("home pool")),
        "pool 0 is the home pool and nothing can take its role over: {refused:?}"
    );
    service.set_home_handover(Arc::new(FakeHandover::default()));
    // Throttled to 64 KiB/s, so it is still running when stopped.
    service
        .start_move(MoveKind::Decommission { pool: 0 }, 64 << 10)
        .await
        .unwrap();
    assert_eq!(service.pools().get(0).unwrap().state(), PoolState::Draining);
    assert!(
        service.start_move(MoveKind::Rebalance, 0).await.is_err(),
        "a second job while one runs"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = service.stop_move().await.unwrap().unwrap();
    assert_eq!(stopped.state, JobState::Stopped);
    assert_eq!(service.pools().get(0).unwrap().state(), PoolState::Active);
    for i in 0..10 {
        assert_eq!(get(&service, &format!("o{i}")).await, body(i, 300_000));
    }
    assert!(service.check(false).await.unwrap().clean);
}

/// Records what the object service asks of the server when the home pool is decommissioned.
#[derive(Default)]
struct FakeHandover {
    calls: std::sync::Mutex<Vec<String>>,
    fail: AtomicBool,
}

#[async_trait::async_trait]
impl super::HomeHandover for FakeHandover {
    fn deployment_id(&self) -> String {
        "dep-0".into()
    }
    fn next_home(&self, from: u32) -> Result<u32, String> {
        Ok(if from == 0 { 1 } else { 0 })
    }
    async fn hand_over(&self, from: u32, to: u32) -> Result<(), String> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("hand_over {from}->{to}"));
        if self.fail.load(Ordering::Relaxed) {
            return Err("replica disk unwritable".into());
        }
        Ok(())
    }
    async fn release(&self, from: u32) {
        self.calls.lock().unwrap().push(format!("release {from}"));
    }
}

#[tokio::test]
async fn the_home_pool_is_decommissioned_by_handing_its_role_over() {
    let (first, mem0) = pool(4);
    let service = service_over(first).await;
    let meta = service.meta().clone();
    for i in 0..10 {
        put(&service, &format!("o{i}"), body(i, 300_000)).await;
    }
    let (second, _) = pool(4);
    service.pools().add(1, second, PoolState::Active);
    let handover = Arc::new(FakeHandover::default());
    service.set_home_handover(handover.clone());

    // The server cannot hand over: the job fails, pool 0 stays (emptied, draining).
    handover.fail.store(true, Ordering::Relaxed);
    service
        .start_move(MoveKind::Decommission { pool: 0 }, 0)
        .await
        .unwrap();
    let failed = wait_for_job(&service).await;
    assert!(
        matches!(&failed.state, JobState::Failed(m) if m.contains("replica disk unwritable")),
        "{failed:?}"
    );
    assert_eq!(service.pools().home(), 0);
    assert!(service.pools().get(0).is_some());
    assert_eq!(super::load_pools(&meta).await.unwrap().home, None);

    // Then it can: pool 0 is retired and pool 1 is the home, in the same record.
    handover.fail.store(false, Ordering::Relaxed);
    service
        .start_move(MoveKind::Decommission { pool: 0 }, 0)
        .await
        .unwrap();
    let done = wait_for_job(&service).await;
    assert_eq!(done.state, JobState::Finished, "{done:?}");
    assert_eq!(
        *handover.calls.lock().unwrap(),
        ["hand_over 0->1", "hand_over 0->1", "release 0"]
    );
    let recorded = super::load_pools(&meta).await.unwrap();
    assert_eq!(recorded.home, Some(1));
    assert_eq!(recorded.deployment_id.as_deref(), Some("dep-0"));
    assert!(
        recorded
            .pools
            .iter()
            .any(|r| r.id == 0 && r.state == super::RecordedState::Retired),
        "{recorded:?}"
    );
    assert_eq!(service.pools().home(), 1);
    assert!(service.pools().get(0).is_none());
    assert_eq!(shards(&mem0).await, 0, "pool 0 holds nothing");
    for i in 0..10 {
        assert_eq!(get(&service, &format!("o{i}")).await, body(i, 300_000));
    }
    assert!(service.check(false).await.unwrap().clean);
}
