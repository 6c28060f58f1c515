//! The one test suite every metastore backend passes: memory, RocksDB, a RocksDB mirror, and
//! (from the `metastore-etcd` crate, through the `suite` feature) etcd.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::records::*;
use crate::*;

pub fn chunk(n: u8) -> ChunkRef {
    ChunkRef::new([n; 32], 100)
}

pub fn object(chunks: Vec<ChunkRef>) -> ObjectRecord {
    ObjectRecord {
        version_id: None,
        size: chunks.iter().map(|c| c.len as u64).sum(),
        etag: "e".into(),
        modified_ms: 1,
        content: ContentHeaders::default(),
        user_metadata: BTreeMap::from([("k".into(), "v".into())]),
        checksums: BTreeMap::new(),
        tags: vec![],
        storage_class: None,
        delete_marker: false,
        data: ObjectData::Chunks(chunks),
        parts: vec![],
        acl: None,
        upload_id: None,
        grants: Vec::new(),
        encryption: None,
        lock: None,
    }
}

fn inline(bytes: &[u8]) -> ObjectRecord {
    ObjectRecord {
        data: ObjectData::Inline(bytes.to_vec()),
        size: bytes.len() as u64,
        ..object(vec![])
    }
}

async fn names(store: &MetaStore, bucket: &str, q: ListQuery) -> (Vec<String>, bool) {
    let page = store.list_objects(bucket, q).await.unwrap();
    (
        page.entries.iter().map(|e| e.name().to_string()).collect(),
        page.truncated,
    )
}

pub async fn run(store: MetaStore) {
    buckets(&store).await;
    objects_and_refcounts(&store).await;
    listing(&store).await;
    multipart(&store).await;
    conditions_and_updates(&store).await;
    crate::suite_versions::upload_listing(&store).await;
    crate::suite_versions::versions(&store).await;
    crate::suite_versions::expire_current(&store).await;
    crate::suite_chunks::chunk_pools(&store).await;
    crate::suite_chunks::collection_and_reuse(&store).await;
    crate::suite_chunks::large_changes(&store).await;
    crate::suite_check::check_while_writing(&store).await;
    crate::suite_chunks::maintenance(&store).await;
    event_queue(&store).await;
    usage_by_bucket(&store).await;
}

/// Usage counts each bucket's current objects and stored versions.
async fn usage_by_bucket(store: &MetaStore) {
    for b in ["usage-a", "usage-b", "usage-empty"] {
        store.create_bucket(b, BucketRecord::new(1)).await.unwrap();
    }
    store
        .put_object("usage-a", "x", inline(b"abc"), None)
        .await
        .unwrap();
    store
        .put_object("usage-a", "y", inline(b"hello"), None)
        .await
        .unwrap();
    // An overwrite replaces the unversioned object: its old size no longer counts.
    store
        .put_object("usage-a", "y", inline(b"hi"), None)
        .await
        .unwrap();
    store
        .put_object("usage-b", "z", inline(b"0123456789"), None)
        .await
        .unwrap();
    let usage = store.usage().await.unwrap();
    let of = |b: &str| usage.by_bucket.get(b).cloned();
    let counts = |objects, bytes| BucketUsage {
        objects,
        bytes,
        versions: objects,
        version_bytes: bytes,
    };
    assert_eq!(of("usage-a"), Some(counts(2, 5)));
    assert_eq!(of("usage-b"), Some(counts(1, 10)));
    assert_eq!(of("usage-empty"), Some(BucketUsage::default()));
    assert_eq!(usage.by_bucket.len() as u64, usage.buckets);
}

/// The event notification queue: oldest first, retries kept, trimmed from the oldest.
async fn event_queue(store: &MetaStore) {
    let event = |n: i64| EventRecord {
        name: "ObjectCreated:Put".into(),
        key: format!("k{n}"),
        time_ms: 1000 + n,
        target: "t".into(),
        ..Default::default()
    };
    store
        .enqueue_events((0..3).rev().map(event).collect())
        .await
        .unwrap();
    store
        .enqueue_events(vec![event(3), event(4)])
        .await
        .unwrap();
    let keys =
        |q: &[(Vec<u8>, EventRecord)]| q.iter().map(|(_, e)| e.key.clone()).collect::<Vec<_>>();
    let queued = store.queued_events(None, 10).await.unwrap();
    assert_eq!(keys(&queued), ["k0", "k1", "k2", "k3", "k4"]);
    assert_eq!(
        keys(&store.queued_events(None, 2).await.unwrap()),
        ["k0", "k1"]
    );
    let after = Some(queued[1].0.clone());
    assert_eq!(
        keys(&store.queued_events(after, 2).await.unwrap()),
        ["k2", "k3"]
    );
    let (id, mut first) = queued[0].clone();
    first.attempts = 1;
    first.next_attempt_ms = 5000;
    store.event_failed(id.clone(), first.clone()).await.unwrap();
    assert_eq!(
        store.queued_events(None, 1).await.unwrap()[0],
        (id.clone(), first.clone())
    );
    store.event_delivered(queued[1].0.clone()).await.unwrap();
    assert_eq!(store.events_queued().await.unwrap(), 4);
    assert_eq!(store.trim_events(2).await.unwrap(), 2);
    assert_eq!(
        keys(&store.queued_events(None, 10).await.unwrap()),
        ["k3", "k4"]
    );
    // A retry recorded after its event was trimmed does not bring it back.
    store.event_failed(id, first).await.unwrap();
    assert_eq!(store.events_queued().await.unwrap(), 2);
    for (key, _) in store.queued_events(None, 10).await.unwrap() {
        store.event_delivered(key).await.unwrap();
    }
    assert_eq!(store.events_queued().await.unwrap(), 0);
}

async fn buckets(store: &MetaStore) {
    store
        .create_bucket("b1", BucketRecord::new(1))
        .await
        .unwrap();
    store
        .create_bucket("b2", BucketRecord::new(2))
        .await
        .unwrap();
    assert!(matches!(
        store.create_bucket("b1", BucketRecord::new(3)).await,
        Err(Error::BucketExists)
    ));
    assert_eq!(
        store.get_bucket("b1").await.unwrap(),
        Some(BucketRecord::new(1))
    );
    assert_eq!(store.get_bucket("nope").await.unwrap(), None);
    let all: Vec<_> = store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(all, ["b1", "b2"]);
    store
        .put_object("b2", "k", inline(b"x"), None)
        .await
        .unwrap();
    assert!(matches!(
        store.delete_bucket("b2").await,
        Err(Error::BucketNotEmpty)
    ));
    store.delete_object("b2", "k", None).await.unwrap();
    store.delete_bucket("b2").await.unwrap();
    assert!(matches!(
        store.delete_bucket("b2").await,
        Err(Error::NoSuchBucket)
    ));
    assert!(matches!(
        store.put_object("b2", "k", inline(b"x"), None).await,
        Err(Error::NoSuchBucket)
    ));
}

async fn objects_and_refcounts(store: &MetaStore) {
    store
        .create_bucket("rc", BucketRecord::new(1))
        .await
        .unwrap();
    let (a, b, c) = (chunk(1), chunk(2), chunk(3));
    assert!(!store.chunk_known(a.hash).await.unwrap());

    // The same chunk twice in one object counts twice.
    store
        .put_object("rc", "one", object(vec![a, a, b]), None)
        .await
        .unwrap();
    store
        .put_object("rc", "two", object(vec![b]), None)
        .await
        .unwrap();
    assert_eq!(store.chunk_refcount(a.hash).await.unwrap(), Some(2));
    assert_eq!(store.chunk_refcount(b.hash).await.unwrap(), Some(2));
    assert_eq!(
        store
            .get_object("rc", "one")
            .await
            .unwrap()
            .unwrap()
            .data
            .chunks()
            .len(),
        3
    );

    // Overwrite releases the old manifest's chunks in the same commit.
    let stored = store
        .put_object("rc", "one", object(vec![c]), None)
        .await
        .unwrap();
    assert_eq!(
        stored.version_id, None,
        "unversioned buckets write the null version"
    );
    assert_eq!(store.chunk_refcount(a.hash).await.unwrap(), Some(0));
    assert_eq!(store.chunk_refcount(b.hash).await.unwrap(), Some(1));
    assert!(
        store.chunk_known(a.hash).await.unwrap(),
        "unreferenced chunks stay until GC"
    );

    // GC: a is due (grace 0) and gets collected; b is referenced and is not.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let due = store.gc_due(100).await.unwrap();
    assert_eq!(due.iter().map(|g| g.hash).collect::<Vec<_>>(), vec![a.hash]);
    assert_eq!(store.gc_collect(&due[0]).await.unwrap(), Some(0));
    assert_eq!(
        store.chunk_state(a.hash).await.unwrap(),
        ChunkState::Deleting
    );
    store.gc_finish(&due[0]).await.unwrap();
    assert!(!store.chunk_known(a.hash).await.unwrap());
    assert!(store.gc_due(100).await.unwrap().is_empty());

    // A chunk referenced again before collection survives the GC pass.
    store.delete_object("rc", "two", None).await.unwrap();
    assert_eq!(store.chunk_refcount(b.hash).await.unwrap(), Some(0));
    store
        .put_object("rc", "three", object(vec![b]), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for item in store.gc_due(100).await.unwrap() {
        assert_eq!(store.gc_collect(&item).await.unwrap(), None);
    }
    assert_eq!(store.chunk_refcount(b.hash).await.unwrap(), Some(1));

    assert!(
        !store
            .delete_object("rc", "missing", None)
            .await
            .unwrap()
            .delete_marker
    );
    store.delete_object("rc", "three", None).await.unwrap();
    assert_eq!(store.get_object("rc", "three").await.unwrap(), None);
}

async fn conditions_and_updates(store: &MetaStore) {
    store
        .create_bucket("cond", BucketRecord::new(1))
        .await
        .unwrap();
    let put = |expect| store.put_object("cond", "k", inline(b"one"), expect);
    assert!(matches!(
        put(Some(Expect::ETag("e".into()))).await,
        Err(Error::NoSuchObject)
    ));
    put(Some(Expect::Absent)).await.unwrap();
    assert!(matches!(
        put(Some(Expect::Absent)).await,
        Err(Error::PreconditionFailed)
    ));
    assert!(matches!(
        put(Some(Expect::ETag("other".into()))).await,
        Err(Error::PreconditionFailed)
    ));
    put(Some(Expect::ETag("e".into()))).await.unwrap();

    let updated = store
        .update_object("cond", "k", None, |r| {
            r.tags = vec![("t".into(), "v".into())]
        })
        .await
        .unwrap();
    assert_eq!(updated.tags, vec![("t".to_string(), "v".to_string())]);
    assert_eq!(
        store.get_object("cond", "k").await.unwrap().unwrap().tags,
        updated.tags
    );
    assert!(matches!(
        store.update_object("cond", "nope", None, |_| {}).await,
        Err(Error::NoSuchObject)
    ));
    assert!(
        store
            .update_object("cond", "k", None, |r| r.data =
                ObjectData::Inline(b"sneaky".to_vec()))
            .await
            .is_err()
    );
    assert_eq!(
        store.get_object("cond", "k").await.unwrap().unwrap().data,
        ObjectData::Inline(b"one".to_vec())
    );
}

async fn listing(store: &MetaStore) {
    store
        .create_bucket("ls", BucketRecord::new(1))
        .await
        .unwrap();
    store
        .create_bucket("ls-other", BucketRecord::new(1))
        .await
        .unwrap();
    let keys = [
        "a",
        "a/1",
        "a/2",
        "a/b/3",
        "b",
        "c/x",
        "c/y",
        "d",
        "z z",
        "\u{e9}t\u{e9}",
    ];
    for k in keys {
        store
            .put_object("ls", k, inline(k.as_bytes()), None)
            .await
            .unwrap();
    }
    store
        .put_object("ls-other", "a", inline(b"x"), None)
        .await
        .unwrap();

    let all = |max| ListQuery {
        max,
        ..Default::default()
    };
    let (got, truncated) = names(store, "ls", all(1000)).await;
    assert_eq!(got, keys);
    assert!(!truncated);

    // Pagination: every key exactly once, in order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_objects(
                "ls",
                ListQuery {
                    after: after.clone(),
                    max: 3,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.entries.iter().map(|e| e.name().to_string()));
        after = page.entries.last().map(|e| e.name().to_string());
        if !page.truncated {
            break;
        }
    }
    assert_eq!(seen, keys);

    let slash = |prefix: &str, after: Option<&str>, max| ListQuery {
        prefix: prefix.into(),
        delimiter: Some("/".into()),
        after: after.map(Into::into),
        max,
    };
    let (got, _) = names(store, "ls", slash("", None, 1000)).await;
    assert_eq!(got, ["a", "a/", "b", "c/", "d", "z z", "\u{e9}t\u{e9}"]);
    let (got, _) = names(store, "ls", slash("a/", None, 1000)).await;
    assert_eq!(got, ["a/1", "a/2", "a/b/"]);
    // Resuming after a common prefix does not repeat it.
    let (got, truncated) = names(store, "ls", slash("", None, 2)).await;
    assert_eq!(
        (got, truncated),
        (vec!["a".to_string(), "a/".to_string()], true)
    );
    let (got, _) = names(store, "ls", slash("", Some("a/"), 2)).await;
    assert_eq!(got, ["b", "c/"]);
    // Other delimiters.
    let q = ListQuery {
        delimiter: Some("1".into()),
        prefix: "a".into(),
        max: 10,
        ..Default::default()
    };
    assert_eq!(names(store, "ls", q).await.0, ["a", "a/1", "a/2", "a/b/3"]);
    let (got, _) = names(
        store,
        "ls",
        ListQuery {
            prefix: "c".into(),
            max: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(got, ["c/x", "c/y"]);
    assert!(matches!(
        store.list_objects("nope", all(10)).await,
        Err(Error::NoSuchBucket)
    ));
}

async fn multipart(store: &MetaStore) {
    store
        .create_bucket("mp", BucketRecord::new(1))
        .await
        .unwrap();
    let template = object(vec![]);
    let rec = UploadRecord {
        checksum_type: None,
        initiated_ms: 1,
        checksum_algorithm: None,
        template: template.clone(),
    };
    store
        .create_upload("mp", "big", "u1", rec.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_upload("mp", "big", "u1").await.unwrap(),
        Some(rec)
    );
    assert_eq!(store.get_upload("mp", "other", "u1").await.unwrap(), None);
    let part = |chunks: Vec<ChunkRef>| PartRecord {
        size: 100,
        etag: "p".into(),
        modified_ms: 1,
        chunks,
        checksums: BTreeMap::new(),
    };
    store
        .put_part("mp", "big", "u1", 1, part(vec![chunk(10)]))
        .await
        .unwrap();
    store
        .put_part("mp", "big", "u1", 2, part(vec![chunk(11)]))
        .await
        .unwrap();
    store
        .put_part("mp", "big", "u1", 2, part(vec![chunk(12)]))
        .await
        .unwrap();
    store
        .put_part("mp", "big", "u1", 3, part(vec![chunk(13)]))
        .await
        .unwrap();
    assert_eq!(
        store.chunk_refcount([11; 32]).await.unwrap(),
        Some(0),
        "replaced part released"
    );
    let parts = store.list_parts("mp", "big", "u1").await.unwrap();
    assert_eq!(parts.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(matches!(
        store.put_part("mp", "big", "nope", 1, part(vec![])).await,
        Err(Error::NoSuchUpload)
    ));

    // Complete with parts 1 and 2 only: part 3's chunk is released, the others move over.
    store
        .complete_upload(
            "mp",
            "big",
            "u1",
            object(vec![chunk(10), chunk(12)]),
            vec![(2, "stale".into())],
            None,
        )
        .await
        .unwrap_err();
    store
        .complete_upload(
            "mp",
            "big",
            "u1",
            object(vec![chunk(10), chunk(12)]),
            vec![(1, "p".into()), (2, "p".into())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.chunk_refcount([10; 32]).await.unwrap(), Some(1));
    assert_eq!(store.chunk_refcount([12; 32]).await.unwrap(), Some(1));
    assert_eq!(store.chunk_refcount([13; 32]).await.unwrap(), Some(0));
    assert_eq!(store.get_upload("mp", "big", "u1").await.unwrap(), None);
    assert!(matches!(
        store.list_parts("mp", "big", "u1").await,
        Err(Error::NoSuchUpload)
    ));
    assert_eq!(
        store
            .get_object("mp", "big")
            .await
            .unwrap()
            .unwrap()
            .data
            .chunks()
            .len(),
        2
    );

    // Abort releases everything; deleting a bucket aborts its uploads.
    store
        .create_upload(
            "mp",
            "x",
            "u2",
            UploadRecord {
                checksum_type: None,
                initiated_ms: 1,
                checksum_algorithm: None,
                template: template.clone(),
            },
        )
        .await
        .unwrap();
    store
        .put_part("mp", "x", "u2", 1, part(vec![chunk(20)]))
        .await
        .unwrap();
    store.abort_upload("mp", "x", "u2").await.unwrap();
    assert_eq!(store.chunk_refcount([20; 32]).await.unwrap(), Some(0));
    assert!(matches!(
        store.abort_upload("mp", "x", "u2").await,
        Err(Error::NoSuchUpload)
    ));

    store
        .create_bucket("mp2", BucketRecord::new(1))
        .await
        .unwrap();
    store
        .create_upload(
            "mp2",
            "y",
            "u3",
            UploadRecord {
                checksum_type: None,
                initiated_ms: 1,
                checksum_algorithm: None,
                template,
            },
        )
        .await
        .unwrap();
    store
        .put_part("mp2", "y", "u3", 1, part(vec![chunk(30)]))
        .await
        .unwrap();
    store.delete_bucket("mp2").await.unwrap();
    assert_eq!(store.chunk_refcount([30; 32]).await.unwrap(), Some(0));
}

#[cfg(test)]
mod backends {
    use super::*;

    #[tokio::test]
    async fn memory_backend() {
        run(MetaStore::memory()).await;
    }

    #[tokio::test]
    async fn rocksdb_backend() {
        let dir = tempfile::tempdir().unwrap();
        run(MetaStore::new(
            RocksKv::open(dir.path()).unwrap(),
            Duration::ZERO,
        ))
        .await;
    }

    #[tokio::test]
    async fn mirrored_rocksdb_backend_keeps_replicas_identical() {
        let dir = tempfile::tempdir().unwrap();
        let (p1, p2) = (dir.path().join("r1"), dir.path().join("r2"));
        {
            let mirror = MirroredKv::new(vec![
                ("r1".into(), Box::new(RocksKv::open(&p1).unwrap())),
                ("r2".into(), Box::new(RocksKv::open(&p2).unwrap())),
            ])
            .unwrap();
            run(MetaStore::new(mirror, Duration::ZERO)).await;
        }
        // Each replica alone holds everything.
        for p in [&p1, &p2] {
            let alone = MetaStore::new(RocksKv::open(p).unwrap(), Duration::ZERO);
            assert!(alone.get_object("mp", "big").await.unwrap().is_some());
            assert_eq!(alone.list_buckets().await.unwrap().len(), 13);
        }
    }
}
