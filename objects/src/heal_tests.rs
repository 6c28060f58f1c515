//! The heal machinery against in-memory disks with injected faults.

use std::sync::Arc;

use bytes::Bytes;
use erasure::{
    ChunkHash, ChunkStore, Faults, FaultyStore, Layout, MemoryShardStore, ShardKey, ShardStore,
};
use metastore::{BucketRecord, MetaStore};

use super::{ObjectMeta, ObjectService, UploadBody};
use crate::error::Error;

struct Rig {
    service: Arc<ObjectService>,
    mem: Vec<Arc<MemoryShardStore>>,
    faults: Vec<Arc<Faults>>,
}

async fn rig() -> Rig {
    rig_with(MetaStore::memory()).await
}

async fn rig_with(meta: MetaStore) -> Rig {
    let mem: Vec<_> = (0..4)
        .map(|i| Arc::new(MemoryShardStore::new(format!("d{i}"))))
        .collect();
    let faults: Vec<_> = (0..4).map(|_| Arc::new(Faults::default())).collect();
    let disks = mem
        .iter()
        .zip(&faults)
        .map(|(m, f)| Arc::new(FaultyStore::new(m.clone(), f.clone())) as Arc<dyn ShardStore>)
        .collect();
    let chunks = ChunkStore::new(Layout::new(4, None).unwrap(), disks).unwrap();
    meta.create_bucket("bkt", BucketRecord::new(0))
        .await
        .unwrap();
    let pools = Arc::new(erasure::Pools::new(Arc::new(chunks)));
    // A master key, for the tests that encrypt (it changes nothing for the others).
    let key = Arc::new(crate::sse::ChunkCipher::new("test", &[7; 32]));
    let service = Arc::new(ObjectService::new(meta, pools, 1 << 16, 1024).with_master_key(key));
    Rig {
        service,
        mem,
        faults,
    }
}

/// A rig whose metadata commits count as a leader's with fencing token `token`.
async fn leader_rig(token: u64) -> Rig {
    let store = metastore::suite_concurrency::Chaos::fenced(
        metastore::LocalTxn::new(metastore::MemoryKv::default()),
        token,
    );
    rig_with(MetaStore::with_store(store, std::time::Duration::ZERO)).await
}

/// Bytes that never repeat a chunk, so dedup does not merge chunks.
fn body(seed: u8, len: usize) -> Bytes {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed as u64;
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

async fn put(service: &ObjectService, key: &str, data: Bytes) -> metastore::ObjectRecord {
    let upload = UploadBody {
        stream: futures::stream::iter(vec![Ok::<Bytes, Error>(data)]),
        expected_len: None,
        content_md5: None,
        check: None,
    };
    service
        .put_object("bkt", key, upload, ObjectMeta::default(), None)
        .await
        .unwrap()
}

fn shard_count(mem: &[Arc<MemoryShardStore>]) -> usize {
    futures::executor::block_on(async {
        let mut n = 0;
        for m in mem {
            n += m.list().await.unwrap().len();
        }
        n
    })
}

/// A deposed leader's garbage collection (its fencing token older than one the disks have
/// seen from a later leader) deletes no shard, so a chunk stored again meanwhile survives.
#[tokio::test]
async fn a_deposed_leaders_collection_deletes_no_shard() {
    let r = leader_rig(5).await;
    put(&r.service, "gone", body(9, 70_000)).await;
    let stored = shard_count(&r.mem);
    assert!(stored > 0);
    r.service.delete_object("bkt", "gone", None).await.unwrap();
    // A later leader (token 9) has deleted on every disk.
    for m in &r.mem {
        let elsewhere = ShardKey {
            chunk: ChunkHash::of(b"collected by the new leader"),
            index: 0,
        };
        m.delete_fenced(elsewhere, 9).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let collected = r.service.gc_pass().await.unwrap();
    assert_eq!(collected, 2, "both chunks were collected (their records)");
    assert_eq!(
        shard_count(&r.mem),
        stored,
        "the deposed leader deleted shards"
    );
}

/// A new leader announces its token to every disk first: a deposed leader's deletes are
/// refused there at once, before the new one has deleted anything.
#[tokio::test]
async fn a_new_leader_announces_its_token_to_every_disk() {
    let r = leader_rig(9).await;
    put(&r.service, "kept", body(3, 70_000)).await;
    r.service
        .announce_fence(std::time::Duration::from_secs(5))
        .await;
    for m in &r.mem {
        for key in m.list().await.unwrap() {
            let refused = m.delete_fenced(key, 8).await.unwrap_err();
            assert!(refused.is_fenced(), "{refused}");
        }
    }
    assert_eq!(shard_count(&r.mem), 8);
}

#[tokio::test]
async fn degraded_writes_are_queued_and_healed_when_the_disk_returns() {
    let r = rig().await;
    Faults::set(&r.faults[2].fail_all, true);
    let record = put(&r.service, "k", body(3, 200_000)).await;
    let chunks = record.data.chunks().len();
    assert_eq!(chunks, 4);
    assert_eq!(
        r.service.meta().heal_queue_len().await.unwrap(),
        chunks as u64
    );

    // Still failing: nothing healed, the queue stays.
    assert_eq!(r.service.heal_queue_pass().await.unwrap(), 0);
    assert_eq!(
        r.service.meta().heal_queue_len().await.unwrap(),
        chunks as u64
    );

    Faults::set(&r.faults[2].fail_all, false);
    assert_eq!(r.service.heal_queue_pass().await.unwrap(), chunks as u64);
    assert_eq!(r.service.meta().heal_queue_len().await.unwrap(), 0);
    assert_eq!(shard_count(&r.mem), chunks * 4);
    assert!(r.service.check(false).await.unwrap().clean);
}

#[tokio::test]
async fn a_failed_flush_counts_like_a_failed_write() {
    let r = rig().await;
    // One disk cannot flush: the write stands on the other three and is queued for heal.
    Faults::set(&r.faults[1].fail_syncs, true);
    let record = put(&r.service, "one", body(7, 150_000)).await;
    let chunks = record.data.chunks().len() as u64;
    assert_eq!(r.service.meta().heal_queue_len().await.unwrap(), chunks);

    // Two disks cannot flush: fewer than k+1 durable shards, so the PUT fails and leaves
    // no object behind.
    Faults::set(&r.faults[2].fail_syncs, true);
    let upload = UploadBody {
        stream: futures::stream::iter(vec![Ok::<Bytes, Error>(body(8, 150_000))]),
        expected_len: None,
        content_md5: None,
        check: None,
    };
    let failed = r
        .service
        .put_object("bkt", "two", upload, ObjectMeta::default(), None)
        .await;
    assert!(failed.is_err(), "a PUT without a durable quorum succeeded");
    assert!(matches!(
        r.service.head_object("bkt", "two").await,
        Err(Error::NoSuchKey)
    ));
}

#[tokio::test]
async fn orphan_sweep_removes_uncommitted_shards_but_not_pinned_ones() {
    let r = rig().await;
    put(&r.service, "kept", body(5, 70_000)).await;
    let before = shard_count(&r.mem);
    // Shards of two chunks no manifest names, as a crash between write and commit leaves.
    let orphan = body(9, 50_000);
    let pinned = body(11, 50_000);
    let (ho, hp) = (ChunkHash::of(&orphan), ChunkHash::of(&pinned));
    r.service
        .pools
        .store(0)
        .unwrap()
        .put_chunk(ho, orphan)
        .await
        .unwrap();
    r.service
        .pools
        .store(0)
        .unwrap()
        .put_chunk(hp, pinned)
        .await
        .unwrap();
    let pin = r.service.locks.pin(hp.0).await;

    let report = r.service.check(false).await.unwrap();
    assert!(!report.clean);
    // The pinned chunk is a write in progress: not an orphan. The other is counted only.
    assert_eq!(report.shards.orphan_shards_removed, 4);
    assert_eq!(shard_count(&r.mem), before + 8);

    assert_eq!(r.service.sweep_orphans(true).await.unwrap(), 4);
    assert_eq!(shard_count(&r.mem), before + 4);
    drop(pin);
    assert_eq!(r.service.sweep_orphans(true).await.unwrap(), 4);
    assert_eq!(shard_count(&r.mem), before);
    assert!(r.service.check(false).await.unwrap().clean);
}

#[tokio::test]
async fn check_finds_and_repairs_missing_and_corrupt_shards() {
    let r = rig().await;
    let data = body(7, 150_000);
    let record = put(&r.service, "k", data.clone()).await;
    let layout = *r.service.pools.store(0).unwrap().layout();
    let first = ChunkHash(record.data.chunks()[0].hash);
    let second = ChunkHash(record.data.chunks()[1].hash);
    let p1 = layout.placement(&first);
    let p2 = layout.placement(&second);
    r.mem[p1[3]]
        .delete(ShardKey {
            chunk: first,
            index: 3,
        })
        .await
        .unwrap();
    Faults::set(&r.faults[p2[2]].corrupt_reads, true);

    let found = r.service.check(false).await.unwrap();
    assert!(!found.clean);
    assert_eq!(found.shards.shards_missing, 1);
    assert!(found.shards.shards_corrupt >= 1);
    assert_eq!(
        r.service.pools().counters().shards_healed,
        0,
        "a check without repair changes nothing"
    );

    Faults::set(&r.faults[p2[2]].corrupt_reads, false);
    let repaired = r.service.check(true).await.unwrap();
    assert_eq!(repaired.shards.shards_missing, 1);
    assert_eq!(repaired.shards.shards_rewritten, 1);
    assert!(r.service.check(false).await.unwrap().clean);
    assert_eq!(shard_count(&r.mem), record.data.chunks().len() * 4);
}

#[tokio::test]
async fn a_pass_records_when_each_set_was_verified_unless_a_disk_was_out() {
    let r = rig().await;
    put(&r.service, "a", body(21, 200_000)).await;
    let before = r.service.scrub_state().await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].verified_since_ms, None);
    // A disk out during the pass: its shards were not verified, so the set's age stays unknown.
    Faults::set(&r.faults[3].fail_all, true);
    r.service.heal_pass(0).await.unwrap();
    assert_eq!(
        r.service.scrub_state().await.unwrap()[0].verified_since_ms,
        None
    );
    Faults::set(&r.faults[3].fail_all, false);
    let started = crate::now_ms();
    r.service.heal_pass(0).await.unwrap();
    let after = r.service.scrub_state().await.unwrap();
    let since = after[0]
        .verified_since_ms
        .expect("a clean pass records its start");
    assert!(since >= started && since <= crate::now_ms());
    assert!(after[0].oldest_unverified_secs.unwrap() < 5);
    // An unclean pass later keeps the earlier time.
    Faults::set(&r.faults[0].fail_all, true);
    r.service.heal_pass(0).await.unwrap();
    Faults::set(&r.faults[0].fail_all, false);
    assert_eq!(
        r.service.scrub_state().await.unwrap()[0].verified_since_ms,
        Some(since)
    );
}

#[tokio::test]
async fn scheduled_passes_pace_between_the_floor_and_the_cap() {
    let r = rig().await;
    // 0 is the operator's "unthrottled".
    assert_eq!(r.service.scheduled_rate(0).await, 0);
    // A small store reads at the floor, under any higher cap.
    put(&r.service, "a", body(22, 100_000)).await;
    assert_eq!(
        r.service.scheduled_rate(1 << 30).await,
        crate::SCRUB_MIN_RATE
    );
    // The cap wins over the floor.
    assert_eq!(r.service.scheduled_rate(1 << 20).await, 1 << 20);
}

/// A sealed chunk is read without its shards' checksums (AES-GCM authenticates it): a data
/// shard rotted on disk makes the seal fail to open, and the checked read that follows
/// rebuilds the chunk from parity and rewrites the shard. The client never gets garbage.
#[tokio::test]
async fn a_rotted_shard_of_a_sealed_chunk_is_caught_by_the_seal_and_healed() {
    let r = rig().await;
    let data = body(11, 150_000);
    let upload = UploadBody {
        stream: futures::stream::iter(vec![Ok::<Bytes, Error>(data.clone())]),
        expected_len: None,
        content_md5: None,
        check: None,
    };
    let meta = ObjectMeta {
        encrypt: crate::Encrypt::ServerKey,
        ..Default::default()
    };
    let record = r
        .service
        .put_object("bkt", "sealed", upload, meta, None)
        .await
        .unwrap();
    assert!(record.encryption.is_some());
    let layout = *r.service.pools.store(0).unwrap().layout();
    let first = ChunkHash(record.data.chunks()[0].hash);
    Faults::set(&r.faults[layout.placement(&first)[0]].corrupt_reads, true);
    let out = crate::pool_tests::get(&r.service, "sealed").await;
    assert!(out == data, "the rotted shard was served");
    let counters = r.service.pools().counters();
    assert!(
        counters.corrupt_found >= 1,
        "the checked read found the rotted shard"
    );
    assert!(counters.shards_healed >= 1, "and rewrote it");
}
