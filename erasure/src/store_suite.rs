//! The one test suite every [`ShardStore`] implementation must pass.

use bytes::Bytes;

use crate::{ChunkHash, ShardKey, ShardStore};

pub async fn run(store: &dyn ShardStore) {
    store.health().await.expect("healthy store");
    let a = ShardKey {
        chunk: ChunkHash::of(b"a"),
        index: 0,
    };
    let a1 = ShardKey { index: 1, ..a };
    let b = ShardKey {
        chunk: ChunkHash::of(b"b"),
        index: 5,
    };

    assert!(store.get(a).await.unwrap_err().is_not_found());
    assert!(store.list().await.unwrap().is_empty());

    store.put(a, Bytes::from_static(b"first")).await.unwrap();
    store
        .put(a1, Bytes::from_static(b"other index"))
        .await
        .unwrap();
    store.put(b, Bytes::new()).await.unwrap();
    assert_eq!(store.get(a).await.unwrap(), Bytes::from_static(b"first"));
    assert_eq!(
        store.get(a1).await.unwrap(),
        Bytes::from_static(b"other index")
    );
    assert_eq!(store.get(b).await.unwrap(), Bytes::new());

    // Overwrite replaces the whole shard.
    store.put(a, Bytes::from(vec![9u8; 300_000])).await.unwrap();
    assert_eq!(store.get(a).await.unwrap(), Bytes::from(vec![9u8; 300_000]));

    let mut listed = store.list().await.unwrap();
    listed.sort();
    let mut expected = vec![a, a1, b];
    expected.sort();
    assert_eq!(listed, expected);

    store.delete(a).await.unwrap();
    store.delete(a).await.expect("delete is idempotent");
    assert!(store.get(a).await.unwrap_err().is_not_found());
    assert_eq!(
        store.get(a1).await.unwrap(),
        Bytes::from_static(b"other index")
    );
    assert_eq!(store.list().await.unwrap().len(), 2);

    // A quarantined shard is gone from the store's view, and a rewrite can take its place.
    store.quarantine(a1).await.unwrap();
    assert!(store.get(a1).await.unwrap_err().is_not_found());
    assert!(store.quarantine(a1).await.unwrap_err().is_not_found());
    assert_eq!(store.list().await.unwrap(), vec![b]);
    store.put(a1, Bytes::from_static(b"healed")).await.unwrap();
    assert_eq!(store.get(a1).await.unwrap(), Bytes::from_static(b"healed"));

    // An unsynced put is visible at once, whole, and replaces what was there; sync succeeds.
    let c = ShardKey {
        chunk: ChunkHash::of(b"c"),
        index: 2,
    };
    store
        .put_unsynced(c, Bytes::from(vec![7u8; 200_000]))
        .await
        .unwrap();
    assert_eq!(store.get(c).await.unwrap(), Bytes::from(vec![7u8; 200_000]));
    store
        .put_unsynced(a1, Bytes::from_static(b"rewritten"))
        .await
        .unwrap();
    store
        .put_unsynced(c, Bytes::from(vec![7u8; 200_000]))
        .await
        .expect("an identical shard again");
    store.sync().await.expect("sync");
    assert_eq!(store.get(c).await.unwrap(), Bytes::from(vec![7u8; 200_000]));
    assert_eq!(
        store.get(a1).await.unwrap(),
        Bytes::from_static(b"rewritten")
    );
    store.delete(c).await.unwrap();

    // A cold (parity) write reads back the same, whatever its length, and replaces as well.
    let d = ShardKey {
        chunk: ChunkHash::of(b"d"),
        index: 3,
    };
    let odd: Bytes = (0..200_001u32).map(|i| (i % 251) as u8).collect();
    store.put_unsynced_cold(d, odd.clone()).await.unwrap();
    store
        .put_unsynced_cold(d, odd.clone())
        .await
        .expect("an identical shard again");
    assert_eq!(store.get(d).await.unwrap(), odd);
    store
        .put_unsynced_cold(d, Bytes::from_static(b"short"))
        .await
        .unwrap();
    store.sync().await.expect("sync");
    assert_eq!(store.get(d).await.unwrap(), Bytes::from_static(b"short"));
    store.delete(d).await.unwrap();

    // Fencing: once a delete carried token 20, one carrying 19 (a deposed leader) is refused
    // and the shard stays; the same or a newer token, or none, deletes.
    let f = ShardKey {
        chunk: ChunkHash::of(b"fenced"),
        index: 0,
    };
    store.put(f, Bytes::from_static(b"old")).await.unwrap();
    store.delete_fenced(f, 20).await.unwrap();
    assert!(store.get(f).await.unwrap_err().is_not_found());
    store
        .put(f, Bytes::from_static(b"stored again"))
        .await
        .unwrap();
    let refused = store.delete_fenced(f, 19).await.unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    assert_eq!(
        store.get(f).await.unwrap(),
        Bytes::from_static(b"stored again")
    );
    store.delete_fenced(f, 20).await.unwrap();
    store.put(f, Bytes::from_static(b"third")).await.unwrap();
    store.delete(f).await.expect("an unfenced delete");
    assert!(store.get(f).await.unwrap_err().is_not_found());
}
