//! The shared metastore suite, continued: chunk references in bulk (changes larger than one
//! commit), garbage collection against reuse, pools, and maintenance (check and repair).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::records::*;
use crate::suite::object;
use crate::*;

/// Changes larger than one etcd transaction (128 operations): an object of 150 chunks, its
/// overwrite, and an upload of 140 parts completed and then its object deleted.
pub(crate) async fn large_changes(store: &MetaStore) {
    store
        .create_bucket("large", BucketRecord::new(1))
        .await
        .unwrap();
    let many = |from: u16, n: u16| -> Vec<ChunkRef> {
        (from..from + n)
            .map(|i| {
                let mut h = [0x5A; 32];
                h[..2].copy_from_slice(&i.to_be_bytes());
                ChunkRef::new(h, 10)
            })
            .collect()
    };
    let first = many(0, 150);
    storing(store, &first)
        .await
        .put_object("large", "obj", object(first.clone()), None)
        .await
        .unwrap();
    for c in &first {
        assert_eq!(store.chunk_refcount(c.hash).await.unwrap(), Some(1));
    }
    // Overwritten by an object sharing half of them.
    let second = many(75, 150);
    store
        .put_object("large", "obj", object(second.clone()), None)
        .await
        .unwrap();
    assert_eq!(store.chunk_refcount(first[0].hash).await.unwrap(), Some(0));
    assert_eq!(store.chunk_refcount(first[80].hash).await.unwrap(), Some(1));
    assert_eq!(
        store.chunk_refcount(second[149].hash).await.unwrap(),
        Some(1)
    );

    let rec = UploadRecord {
        checksum_type: None,
        initiated_ms: 1,
        checksum_algorithm: None,
        template: object(vec![]),
    };
    store
        .create_upload("large", "mpu", "u-large", rec)
        .await
        .unwrap();
    let parts = many(1000, 140);
    for (n, c) in parts.iter().enumerate() {
        let part = PartRecord {
            size: 10,
            etag: format!("p{n}"),
            modified_ms: 1,
            chunks: vec![*c],
            checksums: BTreeMap::new(),
        };
        store
            .put_part("large", "mpu", "u-large", n as u32 + 1, part)
            .await
            .unwrap();
    }
    let used: Vec<(u32, String)> = (0..140).map(|n| (n + 1, format!("p{n}"))).collect();
    store
        .complete_upload("large", "mpu", "u-large", object(parts.clone()), used, None)
        .await
        .unwrap();
    assert!(matches!(
        store.list_parts("large", "mpu", "u-large").await,
        Err(Error::NoSuchUpload)
    ));
    for c in &parts {
        assert_eq!(store.chunk_refcount(c.hash).await.unwrap(), Some(1));
    }
    let got = store.get_object("large", "mpu").await.unwrap().unwrap();
    assert_eq!(got.data.chunks().len(), 140);
    store.delete_object("large", "mpu", None).await.unwrap();
    store.delete_object("large", "obj", None).await.unwrap();
    assert_eq!(store.chunk_refcount(parts[7].hash).await.unwrap(), Some(0));
    assert_eq!(
        store.chunk_refcount(second[149].hash).await.unwrap(),
        Some(0)
    );
    store.delete_bucket("large").await.unwrap();
}

/// Garbage collection marks a chunk before deleting its shards, and a write that relied on
/// a chunk being stored fails once it is being (or was) collected, unless the writer stored
/// the chunk itself (another gateway's GC cannot see this gateway's pins).
pub(crate) async fn collection_and_reuse(store: &MetaStore) {
    store
        .create_bucket("reuse", BucketRecord::new(1))
        .await
        .unwrap();
    let c = ChunkRef::new([0xC7; 32], 64);
    let wrote_it = storing(store, &[c]).await;
    let found_it = store.with_new_chunks([]);
    // A reference to a chunk nobody stored is refused when the writer says it did not
    // store it either.
    assert!(matches!(
        found_it.put_object("reuse", "k", object(vec![c]), None).await,
        Err(Error::ChunkGone(h)) if h == c.hash
    ));
    wrote_it
        .put_object("reuse", "k", object(vec![c]), None)
        .await
        .unwrap();
    found_it
        .put_object("reuse", "k2", object(vec![c]), None)
        .await
        .unwrap();
    assert_eq!(store.chunk_refcount(c.hash).await.unwrap(), Some(2));
    store.delete_object("reuse", "k", None).await.unwrap();
    store.delete_object("reuse", "k2", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let due: Vec<_> = store
        .gc_due(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.hash == c.hash)
        .collect();
    assert_eq!(due.len(), 1);
    assert_eq!(store.gc_collect(&due[0]).await.unwrap(), Some(0));
    assert_eq!(
        store.chunk_state(c.hash).await.unwrap(),
        ChunkState::Deleting
    );
    // While its shards are being deleted nobody may reference it, not even a writer that
    // stored it (its shards may be among those deleted).
    for s in [&found_it, &wrote_it] {
        assert!(matches!(
            s.put_object("reuse", "k3", object(vec![c]), None).await,
            Err(Error::ChunkGone(_))
        ));
    }
    // A collection that crashed before it finished is taken up again.
    let queued = store.gc_due(100).await.unwrap();
    assert_eq!(
        queued.iter().filter(|g| g.hash == c.hash).count(),
        1,
        "still queued"
    );
    assert_eq!(store.gc_collect(&due[0]).await.unwrap(), Some(0));
    store.gc_finish(&due[0]).await.unwrap();
    assert_eq!(store.chunk_state(c.hash).await.unwrap(), ChunkState::Absent);
    assert!(
        store
            .gc_due(100)
            .await
            .unwrap()
            .iter()
            .all(|g| g.hash != c.hash)
    );
    assert!(matches!(
        found_it
            .put_object("reuse", "k3", object(vec![c]), None)
            .await,
        Err(Error::ChunkGone(_))
    ));
    // A writer that stored the chunk before it was collected must not commit it now: its
    // shards may be among those deleted. On a shared store the tombstone says when the
    // deletion was; a store this process alone writes keeps such writers off with pins.
    let shared = !store.run(|s| Ok(s.kv.single_writer())).await.unwrap();
    let late = wrote_it
        .put_object("reuse", "k3", object(vec![c]), None)
        .await;
    if shared {
        assert!(matches!(late, Err(Error::ChunkGone(_))), "{late:?}");
        // Stored again by a writer that found it not stored after the deletion: a new record.
        storing(store, &[c])
            .await
            .put_object("reuse", "k3", object(vec![c]), None)
            .await
            .unwrap();
    } else {
        late.unwrap();
    }
    assert_eq!(store.chunk_refcount(c.hash).await.unwrap(), Some(1));
    store.delete_object("reuse", "k3", None).await.unwrap();

    // The orphan sweep deletes shards no record names; on a shared store it marks the chunk
    // first, so a writer storing the same chunk meanwhile cannot commit it.
    let o = ChunkRef::new([0xC8; 32], 64);
    let sweeping_too = storing(store, &[o]).await;
    assert!(store.sweep_mark(o.hash, 0).await.unwrap());
    if shared {
        assert_eq!(
            store.chunk_state(o.hash).await.unwrap(),
            ChunkState::Deleting
        );
        assert!(matches!(
            sweeping_too
                .put_object("reuse", "o", object(vec![o]), None)
                .await,
            Err(Error::ChunkGone(_))
        ));
    }
    store.sweep_finish(o.hash).await.unwrap();
    assert_eq!(store.chunk_state(o.hash).await.unwrap(), ChunkState::Absent);
    assert_eq!(store.chunk_refcount(o.hash).await.unwrap(), None);
    let late = sweeping_too
        .put_object("reuse", "o", object(vec![o]), None)
        .await;
    if shared {
        assert!(matches!(late, Err(Error::ChunkGone(_))), "{late:?}");
        storing(store, &[o])
            .await
            .put_object("reuse", "o", object(vec![o]), None)
            .await
            .unwrap();
        // A record names it now: the sweep leaves it alone.
        assert!(!store.sweep_mark(o.hash, 0).await.unwrap());
    } else {
        late.unwrap();
    }
    assert_eq!(store.chunk_refcount(o.hash).await.unwrap(), Some(1));
    store.delete_object("reuse", "o", None).await.unwrap();
    store.delete_bucket("reuse").await.unwrap();
}

/// Where a chunk lives: set by the reference that creates its record, kept by later ones,
/// changed only by a relocation from the pool it is in, and reported to GC.
pub(crate) async fn chunk_pools(store: &MetaStore) {
    store
        .create_bucket("pools", BucketRecord::new(1))
        .await
        .unwrap();
    let mut c = ChunkRef::new([0xB1; 32], 300);
    c.stored_in = 2;
    store
        .put_object("pools", "a", object(vec![c]), None)
        .await
        .unwrap();
    assert_eq!(store.chunk_pool(c.hash).await.unwrap(), Some(2));
    // Deduplicated by a request that would have stored it elsewhere: it stays where it is.
    let mut again = c;
    again.stored_in = 5;
    store
        .put_object("pools", "b", object(vec![again]), None)
        .await
        .unwrap();
    assert_eq!(store.chunk_pool(c.hash).await.unwrap(), Some(2));
    assert_eq!(store.chunk_refcount(c.hash).await.unwrap(), Some(2));
    // A manifest never carries the location.
    let stored = store.get_object("pools", "b").await.unwrap().unwrap();
    assert_eq!(stored.data.chunks()[0].stored_in, 0);

    assert!(!store.relocate_chunk(c.hash, 1, 3).await.unwrap());
    assert!(store.relocate_chunk(c.hash, 2, 3).await.unwrap());
    assert_eq!(store.chunk_pool(c.hash).await.unwrap(), Some(3));
    assert!(!store.relocate_chunk([0xB2; 32], 0, 1).await.unwrap());
    let held = store.pool_holdings().await.unwrap();
    assert_eq!(held.get(&3).map(|h| (h.chunks, h.bytes)), Some((1, 300)));

    // Counting references does not move it; GC reports where to delete it.
    store.delete_object("pools", "a", None).await.unwrap();
    store.delete_object("pools", "b", None).await.unwrap();
    assert_eq!(store.chunk_pool(c.hash).await.unwrap(), Some(3));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let due: Vec<_> = store
        .gc_due(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.hash == c.hash)
        .collect();
    assert_eq!(due.len(), 1);
    assert_eq!(store.gc_collect(&due[0]).await.unwrap(), Some(3));
    store.gc_finish(&due[0]).await.unwrap();
    assert_eq!(store.chunk_pool(c.hash).await.unwrap(), None);
    store.delete_bucket("pools").await.unwrap();
}

/// Runs last: the recount must agree with everything the other parts left behind.
pub(crate) async fn maintenance(store: &MetaStore) {
    // Every change applied in steps removed its intent (which would hide its chunks from
    // the recount below).
    let intents = store
        .run(|s| s.kv.scan(Tree::Meta, b"intent/", Some(b"intent0"), 10))
        .await
        .unwrap();
    assert!(intents.is_empty(), "{intents:?}");
    store.heal_enqueue([7; 32], 99).await.unwrap();
    store.heal_enqueue([3; 32], 5).await.unwrap();
    store.heal_enqueue([7; 32], 99).await.unwrap();
    assert_eq!(store.heal_queue_len().await.unwrap(), 2);
    assert_eq!(
        store.heal_queue(10).await.unwrap(),
        vec![([3; 32], 5), ([7; 32], 99)]
    );
    store.heal_done([3; 32]).await.unwrap();
    assert_eq!(store.heal_queue(10).await.unwrap(), vec![([7; 32], 99)]);
    store.heal_done([7; 32]).await.unwrap();

    let clean = store.check_refcounts(false).await.unwrap();
    assert!(clean.mismatched.is_empty(), "{clean:?}");
    assert!(clean.chunks_referenced > 0);

    // Every stored chunk is visited once, in pages.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.chunks_after(after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.hash);
        seen.extend(page);
    }
    assert_eq!(seen.len() as u64, clean.chunks_recorded);
    assert_eq!(store.chunk_count().await.unwrap(), clean.chunks_recorded);
    assert!(seen.windows(2).all(|w| w[0].hash < w[1].hash));

    // Damage the counts behind the store's back: one stray record, one wrong count.
    let victim = seen.iter().find(|c| c.refs > 0).unwrap();
    let mut b = Batch::default();
    b.put(
        Tree::Refcounts,
        [0xEE; 32].to_vec(),
        encode(&RefRecord {
            count: 4,
            len: 10,
            pool: 0,
            deleting: false,
            collected: false,
            kept_until_ms: 0,
        }),
    );
    b.put(
        Tree::Refcounts,
        victim.hash.to_vec(),
        encode(&RefRecord {
            count: victim.refs + 3,
            len: victim.len,
            pool: victim.pool,
            deleting: false,
            collected: false,
            kept_until_ms: 0,
        }),
    );
    // And the part record of an upload that is gone (a crash between a completion's record
    // and the deletion of its parts): it counts for nothing, and a repair deletes it.
    let stray_part = crate::keys::part("upload-that-is-gone", 3);
    b.put(
        Tree::Parts,
        stray_part.clone(),
        encode(&PartRecord {
            size: 10,
            etag: "p".into(),
            modified_ms: 1,
            chunks: vec![ChunkRef::new(victim.hash, victim.len)],
            checksums: BTreeMap::new(),
        }),
    );
    store.write_unchecked(b).await.unwrap();
    let found = store.check_refcounts(false).await.unwrap();
    assert_eq!(found.mismatched.len(), 2, "{found:?}");
    assert!(!found.repaired);
    let fixed = store.check_refcounts(true).await.unwrap();
    assert!(fixed.repaired);
    assert!(
        store
            .check_refcounts(false)
            .await
            .unwrap()
            .mismatched
            .is_empty()
    );
    assert_eq!(store.chunk_refcount([0xEE; 32]).await.unwrap(), Some(0));
    let part_left = store
        .run(move |s| s.kv.get(Tree::Parts, &stray_part))
        .await
        .unwrap();
    assert!(part_left.is_none(), "the stray part record is still there");
    assert_eq!(
        store.chunk_refcount(victim.hash).await.unwrap(),
        Some(victim.refs)
    );

    let usage = store.usage().await.unwrap();
    assert!(usage.buckets > 0 && usage.versions >= usage.objects);
    assert_eq!(usage.chunks, clean.chunks_recorded + 1);
}

/// The store as a writer that finds `chunks` not stored and stores them itself.
async fn storing(store: &MetaStore, chunks: &[ChunkRef]) -> MetaStore {
    let mut checked = Vec::new();
    for c in chunks {
        let (state, at) = store.chunk_check(c.hash).await.unwrap();
        assert_eq!(state, ChunkState::Absent);
        checked.push((c.hash, at));
    }
    store.with_new_chunks(checked)
}
