//! The shared metastore suite, continued: multipart upload listing and object versions.

use crate::records::*;
use crate::suite::{chunk, object};
use crate::*;

pub(crate) async fn upload_listing(store: &MetaStore) {
    store
        .create_bucket("ul", BucketRecord::new(1))
        .await
        .unwrap();
    let rec = |ms| UploadRecord {
        checksum_type: None,
        initiated_ms: ms,
        checksum_algorithm: None,
        template: object(vec![]),
    };
    for (key, id, ms) in [
        ("a/1", "u2", 5),
        ("a/1", "u1", 1),
        ("a/2", "u3", 1),
        ("b", "u4", 1),
        ("c/x", "u5", 100),
    ] {
        store.create_upload("ul", key, id, rec(ms)).await.unwrap();
    }
    let names = |p: &UploadPage| {
        p.entries
            .iter()
            .map(|e| match e {
                UploadEntry::Upload { key, upload_id, .. } => format!("{key}#{upload_id}"),
                UploadEntry::CommonPrefix(cp) => cp.clone(),
            })
            .collect::<Vec<_>>()
    };
    let q = |max| UploadQuery {
        max,
        ..Default::default()
    };
    let all = store.list_uploads("ul", q(100)).await.unwrap();
    assert_eq!(
        names(&all),
        ["a/1#u1", "a/1#u2", "a/2#u3", "b#u4", "c/x#u5"]
    );
    // Resume after (key, upload id) and after a whole key.
    let page = store
        .list_uploads(
            "ul",
            UploadQuery {
                key_marker: Some("a/1".into()),
                upload_id_marker: Some("u1".into()),
                max: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (names(&page), page.truncated),
        (vec!["a/1#u2".to_string(), "a/2#u3".to_string()], true)
    );
    let page = store
        .list_uploads(
            "ul",
            UploadQuery {
                key_marker: Some("a/1".into()),
                max: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&page), ["a/2#u3", "b#u4", "c/x#u5"]);
    let page = store
        .list_uploads(
            "ul",
            UploadQuery {
                delimiter: Some("/".into()),
                max: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&page), ["a/", "b#u4", "c/"]);
    let page = store
        .list_uploads(
            "ul",
            UploadQuery {
                prefix: "a/".into(),
                max: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&page), ["a/1#u1", "a/1#u2", "a/2#u3"]);
    let old = store.uploads_initiated_before(50).await.unwrap();
    assert_eq!(old.len(), 4);
    assert!(old.iter().all(|(b, _, _)| b == "ul"));
    assert!(!old.iter().any(|(_, k, _)| k == "c/x"));
}

pub(crate) async fn versions(store: &MetaStore) {
    store
        .create_bucket("ver", BucketRecord::new(1))
        .await
        .unwrap();
    let (x, y, z) = (chunk(40), chunk(41), chunk(42));
    // Written before versioning: the null version.
    store
        .put_object("ver", "k", object(vec![x]), None)
        .await
        .unwrap();
    store
        .set_versioning("ver", Versioning::Enabled)
        .await
        .unwrap();
    let v1 = store
        .put_object("ver", "k", object(vec![y]), None)
        .await
        .unwrap();
    let v2 = store
        .put_object("ver", "k", object(vec![z]), None)
        .await
        .unwrap();
    let (id1, id2) = (
        v1.version_id.clone().unwrap(),
        v2.version_id.clone().unwrap(),
    );
    assert!(valid_version_id(&id1) && id1 != id2);
    for h in [x, y, z] {
        assert_eq!(
            store.chunk_refcount(h.hash).await.unwrap(),
            Some(1),
            "every version holds its chunks"
        );
    }
    assert_eq!(
        store
            .get_object("ver", "k")
            .await
            .unwrap()
            .unwrap()
            .version_id
            .as_deref(),
        Some(id2.as_str())
    );
    assert_eq!(
        store
            .get_version("ver", "k", &id1)
            .await
            .unwrap()
            .unwrap()
            .data
            .chunks(),
        &[y]
    );
    assert_eq!(
        store
            .get_version("ver", "k", "null")
            .await
            .unwrap()
            .unwrap()
            .data
            .chunks(),
        &[x]
    );

    let all = |q: VersionQuery| async move {
        store
            .list_versions("ver", q)
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| match e {
                VersionEntry::Version {
                    record, is_latest, ..
                } => (
                    record.version_id.unwrap_or_else(|| "null".into()),
                    is_latest,
                    record.delete_marker,
                ),
                VersionEntry::CommonPrefix(p) => (p, false, false),
            })
            .collect::<Vec<_>>()
    };
    let q = || VersionQuery {
        max: 100,
        ..Default::default()
    };
    assert_eq!(
        all(q()).await,
        [
            (id2.clone(), true, false),
            (id1.clone(), false, false),
            ("null".into(), false, false)
        ],
        "newest first"
    );

    // A delete marker hides the key from listings; removing it brings the object back.
    let marker = store.delete_object("ver", "k", None).await.unwrap();
    assert!(marker.delete_marker);
    let mid = marker.version_id.clone().unwrap();
    assert!(
        store
            .get_object("ver", "k")
            .await
            .unwrap()
            .unwrap()
            .delete_marker
    );
    let listed = store
        .list_objects(
            "ver",
            ListQuery {
                max: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.entries.is_empty());
    assert_eq!(all(q()).await[0], (mid.clone(), true, true));
    assert_eq!(
        store.chunk_refcount(z.hash).await.unwrap(),
        Some(1),
        "a marker frees nothing"
    );
    let removed = store.delete_object("ver", "k", Some(&mid)).await.unwrap();
    assert!(removed.delete_marker);
    assert_eq!(
        store
            .get_object("ver", "k")
            .await
            .unwrap()
            .unwrap()
            .version_id
            .as_deref(),
        Some(id2.as_str())
    );

    // Pagination by key marker and version id marker.
    let page = all(VersionQuery {
        key_marker: Some("k".into()),
        version_id_marker: Some(id2.clone()),
        max: 1,
        ..Default::default()
    })
    .await;
    assert_eq!(page, [(id1.clone(), false, false)]);

    // Deleting the newest version for good makes the previous one current and frees chunks.
    store.delete_object("ver", "k", Some(&id2)).await.unwrap();
    assert_eq!(store.chunk_refcount(z.hash).await.unwrap(), Some(0));
    assert_eq!(
        store
            .get_object("ver", "k")
            .await
            .unwrap()
            .unwrap()
            .version_id
            .as_deref(),
        Some(id1.as_str())
    );
    assert_eq!(store.get_version("ver", "k", &id2).await.unwrap(), None);

    // Tags by version.
    store
        .update_object("ver", "k", Some("null"), |r| {
            r.tags = vec![("v".into(), "0".into())]
        })
        .await
        .unwrap();
    assert!(
        store
            .get_object("ver", "k")
            .await
            .unwrap()
            .unwrap()
            .tags
            .is_empty()
    );
    assert_eq!(
        store
            .get_version("ver", "k", "null")
            .await
            .unwrap()
            .unwrap()
            .tags
            .len(),
        1
    );

    // Suspended: writes replace the null version, real versions stay.
    store
        .set_versioning("ver", Versioning::Suspended)
        .await
        .unwrap();
    let n = store
        .put_object("ver", "k", object(vec![chunk(43)]), None)
        .await
        .unwrap();
    assert_eq!(n.version_id, None);
    assert_eq!(
        store.chunk_refcount(x.hash).await.unwrap(),
        Some(0),
        "old null version replaced"
    );
    assert_eq!(store.chunk_refcount(y.hash).await.unwrap(), Some(1));
    let ids: Vec<_> = all(q())
        .await
        .into_iter()
        .map(|(id, l, _)| (id, l))
        .collect();
    assert_eq!(ids, [("null".to_string(), true), (id1.clone(), false)]);

    // A bucket with only old versions or markers is not empty.
    assert!(matches!(
        store.delete_bucket("ver").await,
        Err(Error::BucketNotEmpty)
    ));
    for (id, _, _) in all(q()).await {
        store.delete_object("ver", "k", Some(&id)).await.unwrap();
    }
    assert_eq!(store.get_object("ver", "k").await.unwrap(), None);
    store.delete_bucket("ver").await.unwrap();
}

/// Lifecycle expiry of a current version: only while it is still the version decided on.
pub(crate) async fn expire_current(store: &MetaStore) {
    for (bucket, versioned) in [("exp-plain", false), ("exp-versioned", true)] {
        store
            .create_bucket(bucket, BucketRecord::new(1))
            .await
            .unwrap();
        if versioned {
            store
                .set_versioning(bucket, Versioning::Enabled)
                .await
                .unwrap();
        }
        let x = chunk(if versioned { 61 } else { 60 });
        let old = store
            .put_object(bucket, "k", object(vec![x]), None)
            .await
            .unwrap();
        // Overwritten since the listing: the newer object is not expired on the old one's age.
        let newer = ObjectRecord {
            modified_ms: 2,
            ..object(vec![x])
        };
        let newer = store.put_object(bucket, "k", newer, None).await.unwrap();
        let stale = store
            .expire_current(bucket, "k", old.version_id.as_deref(), old.modified_ms)
            .await
            .unwrap();
        assert_eq!(stale, None, "{bucket}");
        assert_eq!(
            store.get_object(bucket, "k").await.unwrap(),
            Some(newer.clone())
        );
        let done = store
            .expire_current(bucket, "k", newer.version_id.as_deref(), newer.modified_ms)
            .await
            .unwrap()
            .expect("the current version expires");
        assert_eq!(done.delete_marker, versioned, "{bucket}");
        let current = store.get_object(bucket, "k").await.unwrap();
        if versioned {
            assert!(current.is_some_and(|c| c.delete_marker));
            assert_eq!(store.chunk_refcount(x.hash).await.unwrap(), Some(2));
            // A delete marker is not expired again.
            let marker = store.get_object(bucket, "k").await.unwrap().unwrap();
            let again = store
                .expire_current(
                    bucket,
                    "k",
                    marker.version_id.as_deref(),
                    marker.modified_ms,
                )
                .await
                .unwrap();
            assert_eq!(again, None);
        } else {
            assert_eq!(current, None);
            assert_eq!(
                store.chunk_refcount(x.hash).await.unwrap(),
                Some(0),
                "released, awaiting GC"
            );
        }
    }
}
