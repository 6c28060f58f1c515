//! [`MetaStore`]: the domain API over any [`TxnStore`].
//!
//! Reads and writes run on the blocking pool. Writes that read before they write (refcounts,
//! existence checks) are transactions ([`MetaStore::txn`]): their reads record guards and
//! their writes commit only while those guards hold, else they run again. On a store this
//! process alone writes, transactions are serialised by a lock instead, so none conflicts;
//! they are short (a few point reads and one batch), which keeps the lock cheap.

use std::sync::{Arc, Mutex};

use crate::group_commit::GroupCommit;
use crate::kv::{Batch, KvStore, Tree};
use crate::listing::{self, ListPage, ListQuery};
use crate::records::{
    BucketRecord, ObjectRecord, PartRecord, UploadRecord, Versioning, decode, encode,
};
use crate::refs::{NewChunks, RefDelta};
use crate::txn::{Commit, LocalTxn, MAX_ATTEMPTS, Reader, Rev, Tx, Txn, TxnStore, backoff};
use crate::versioning::{DeleteOutcome, VersionPage, VersionQuery};
use crate::{Error, MemoryKv, Result, keys};

#[derive(Clone)]
pub struct MetaStore {
    pub(crate) inner: Arc<Inner>,
    /// Chunks the caller wrote itself, with the revision at which it found each not stored
    /// (see [`MetaStore::with_new_chunks`]); `None`: the
    /// caller does not say, and any chunk may be recorded anew.
    new_chunks: Option<Arc<NewChunks>>,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) kv: Box<dyn TxnStore>,
    /// Held by transactions on a store this process alone writes (see `transact`).
    write_lock: std::sync::Mutex<()>,
    /// What the commits cost (for `/metrics`).
    pub(crate) stats: crate::stats::CommitStats,
    /// Commits are flushed after their transaction, together (group commit).
    pub(crate) group: GroupCommit,
    pub(crate) gc_grace_ms: u64,
    /// Last version sequence handed out (see `versioning`).
    pub(crate) last_version_seq: Mutex<u64>,
    /// Held by a reference check, so that two never correct the same error twice.
    pub(crate) check_lock: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Writes a batch that depends on no read (queue entries, for instance). It is flushed by
    /// [`MetaStore::run`] once the closure is over.
    pub(crate) fn commit(&self, batch: Batch) -> Result<()> {
        match self.stats.commit(
            self.kv.as_ref(),
            Txn {
                guards: Vec::new(),
                batch,
            },
        )? {
            Commit::Done => {
                self.group.committed();
                Ok(())
            }
            Commit::Conflict => Err(Error::Backend("a write without guards conflicted".into())),
        }
    }

    /// Runs `f` as a transaction until it commits: see [`MetaStore::txn`].
    ///
    /// On a store this process alone writes, transactions hold `write_lock` exclusively, so
    /// nothing ever conflicts. On a shared store (etcd) they run concurrently and their
    /// guards settle conflicts. A change too large for one commit is applied in steps
    /// ([`crate::steps`]), safe with any number of writers.
    fn transact<T>(&self, f: impl Fn(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let exclusive = self.kv.single_writer();
        let _held = exclusive.then(|| self.lock_exclusive());
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                self.stats.rerun();
                std::thread::sleep(backoff(attempt));
            }
            let mut tx = Tx::new(self.kv.as_ref());
            match f(&mut tx) {
                Err(Error::Changed) => continue,
                Ok(out) if tx.exceeds(self.kv.limits()) => {
                    if self.apply_in_steps(tx.into_parts())? {
                        return Ok(out);
                    }
                }
                Ok(out) => {
                    let txn = tx.into_txn();
                    let wrote = !txn.batch.is_empty();
                    if self.stats.commit(self.kv.as_ref(), txn)? == Commit::Done {
                        if wrote {
                            self.group.committed();
                        }
                        return Ok(out);
                    }
                }
                // An answer drawn from reads that no longer hold together could be wrong
                // (a bucket deleted and re-created between two reads): it is given only
                // once they are confirmed. Under the exclusive lock nothing can have
                // changed.
                Err(e) if exclusive || !tx.has_guards() => return Err(e),
                Err(e) => {
                    if self.stats.commit(self.kv.as_ref(), tx.guards_only())? == Commit::Done {
                        return Err(e);
                    }
                }
            }
        }
        Err(Error::Busy)
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A condition on the current object that a write must satisfy, checked in the same
/// transaction as the write (S3 conditional writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No current object may exist (`If-None-Match: *`).
    Absent,
    /// The current object must exist and have this ETag (`If-Match`).
    ETag(String),
}

impl Expect {
    /// Whether `current` (the key's newest version, if any) satisfies the condition.
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<()> {
        let current = current.filter(|r| !r.delete_marker);
        match (self, current) {
            (Expect::Absent, None) => Ok(()),
            (Expect::Absent, Some(_)) => Err(Error::PreconditionFailed),
            (Expect::ETag(_), None) => Err(Error::NoSuchObject),
            (Expect::ETag(e), Some(r)) if *e == r.etag => Ok(()),
            (Expect::ETag(_), Some(_)) => Err(Error::PreconditionFailed),
        }
    }
}

fn check_expect(current: Option<&ObjectRecord>, expect: Option<&Expect>) -> Result<()> {
    expect.map_or(Ok(()), |e| e.check(current))
}

impl Inner {
    pub(crate) fn get<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>> {
        self.kv.get(tree, key)?.map(|v| decode(&v)).transpose()
    }

    /// Reads outside a transaction.
    pub(crate) fn plain(&self) -> crate::txn::Plain<'_> {
        crate::txn::Plain(self.kv.as_ref())
    }

    fn lock_exclusive(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn require_bucket(&self, r: &mut impl Reader, bucket: &str) -> Result<()> {
        match r.get_raw(Tree::Buckets, bucket.as_bytes())? {
            Some(_) => Ok(()),
            None => Err(Error::NoSuchBucket),
        }
    }
}

impl MetaStore {
    /// The metastore on a local store (RocksDB, a mirror, memory) that this process alone
    /// writes.
    pub fn new(kv: impl KvStore, gc_grace: std::time::Duration) -> Self {
        Self::with_store(LocalTxn::new(kv), gc_grace)
    }

    /// The metastore on any transactional store.
    pub fn with_store(kv: impl TxnStore, gc_grace: std::time::Duration) -> Self {
        MetaStore {
            new_chunks: None,
            inner: Arc::new(Inner {
                kv: Box::new(kv),
                write_lock: std::sync::Mutex::new(()),
                stats: Default::default(),
                group: GroupCommit::default(),
                last_version_seq: Mutex::new(0),
                check_lock: tokio::sync::Mutex::new(()),
                gc_grace_ms: gc_grace.as_millis() as u64,
            }),
        }
    }

    /// This store for a write whose data the caller stored itself as `new_chunks`, each with
    /// the revision at which it found the chunk not stored ([`MetaStore::chunk_check`]): every
    /// other chunk the write references must still be stored when it commits, and none of
    /// its own may have been deleted since that revision, else the write fails with
    /// [`Error::ChunkGone`] (another gateway's garbage collection or orphan sweep may have
    /// deleted the shards).
    pub fn with_new_chunks(
        &self,
        new_chunks: impl IntoIterator<Item = ([u8; 32], Rev)>,
    ) -> MetaStore {
        MetaStore {
            inner: self.inner.clone(),
            new_chunks: Some(Arc::new(new_chunks.into_iter().collect())),
        }
    }

    /// The fencing token shard deletions carry (see [`TxnStore::fence_token`]).
    pub fn fence_token(&self) -> u64 {
        self.inner.kv.fence_token()
    }

    /// What this process's metadata commits have cost so far.
    pub fn commit_counts(&self) -> crate::stats::CommitCounts {
        self.inner.stats.snapshot()
    }

    /// Writes a batch past the domain rules, for tests that damage the metadata on purpose.
    #[cfg(any(test, feature = "suite"))]
    pub(crate) async fn write_unchecked(&self, batch: Batch) -> Result<()> {
        self.run(move |s| s.commit(batch)).await
    }

    /// An in-memory store with no GC grace period, for tests.
    pub fn memory() -> Self {
        Self::new(MemoryKv::new(), std::time::Duration::ZERO)
    }

    /// Runs `f` on the blocking pool. Batches it commits are durable before this returns:
    /// flushed after `f` (and the write lock it took) is done, together with those of
    /// concurrent writers.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.group.run(inner.kv.as_ref(), || f(&inner)))
            .await?
    }

    /// Runs `f` as a transaction on the blocking pool: its reads through the [`Tx`] record
    /// what it relied on, its writes go to the [`Tx`]'s batch, and the batch commits only if
    /// those reads still hold; otherwise `f` runs again (so it must have no other effects).
    /// The commit is durable before this returns (group commit, as [`MetaStore::run`]).
    pub(crate) async fn txn<T: Send + 'static>(
        &self,
        f: impl Fn(&Inner, &mut Tx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner
                .group
                .run(inner.kv.as_ref(), || inner.transact(|tx| f(&inner, tx)))
        })
        .await?
    }

    // ---- buckets ----

    pub async fn create_bucket(&self, name: &str, record: BucketRecord) -> Result<()> {
        let name = name.to_owned();
        self.txn(move |_, tx| {
            if tx.get_raw(Tree::Buckets, name.as_bytes())?.is_some() {
                return Err(Error::BucketExists);
            }
            tx.put(Tree::Buckets, name.as_bytes(), encode(&record));
            Ok(())
        })
        .await
    }

    pub async fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let name = name.to_owned();
        self.run(move |s| s.get(Tree::Buckets, name.as_bytes()))
            .await
    }

    pub async fn list_buckets(&self) -> Result<Vec<(String, BucketRecord)>> {
        self.run(|s| {
            let mut out = Vec::new();
            crate::kv::scan_all(s.kv.as_ref(), Tree::Buckets, |(k, v)| {
                out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    /// Deletes an empty bucket; its unfinished multipart uploads are aborted with it.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.txn(move |s, tx| {
            s.require_bucket(tx, &name)?;
            let prefix = keys::bucket_prefix(&name);
            let end = keys::prefix_end(&prefix);
            // Old versions and delete markers keep a bucket non-empty, as in S3.
            if !tx
                .scan(Tree::Versions, &prefix, end.as_deref(), 1)?
                .is_empty()
            {
                return Err(Error::BucketNotEmpty);
            }
            let mut delta = RefDelta::checked(None);
            for (uk, _) in tx.scan(Tree::Uploads, &prefix, end.as_deref(), usize::MAX)? {
                let Some((_, upload_id)) = keys::split_upload(&uk[prefix.len()..]) else {
                    continue;
                };
                // Read again, guarded: an abort racing this must not release its parts twice.
                if tx.get_raw(Tree::Uploads, &uk)?.is_none() {
                    continue;
                }
                for (pk, pv) in scan_parts(tx, &upload_id)? {
                    let part: PartRecord = decode(&pv)?;
                    delta.add(&part.chunks, -1);
                    tx.delete_later(Tree::Parts, pk);
                }
                tx.delete(Tree::Uploads, uk);
            }
            s.apply_refs(tx, delta)?;
            tx.delete(Tree::Buckets, name.as_bytes());
            Ok(())
        })
        .await
    }

    // ---- objects ----

    /// The current version of an object (possibly a delete marker).
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let k = keys::object(bucket, key);
        self.run(move |s| s.get(Tree::Objects, &k)).await
    }

    /// One version of an object (`"null"` for the null version).
    pub async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
    ) -> Result<Option<ObjectRecord>> {
        let (bucket, key, version) = (bucket.to_owned(), key.to_owned(), version.to_owned());
        self.run(move |s| {
            Ok(
                s.find_version(&mut s.plain(), &bucket, &key, Some(&version))?
                    .map(|(_, r)| r),
            )
        })
        .await
    }

    pub async fn set_versioning(&self, bucket: &str, versioning: Versioning) -> Result<()> {
        let bucket = bucket.to_owned();
        self.txn(move |_, tx| {
            let mut record: BucketRecord = tx
                .get(Tree::Buckets, bucket.as_bytes())?
                .ok_or(Error::NoSuchBucket)?;
            record.versioning = versioning;
            tx.put(Tree::Buckets, bucket.as_bytes(), encode(&record));
            Ok(())
        })
        .await
    }

    /// Stores `record` as the key's newest version (a new version id when the bucket has
    /// versioning enabled, else the null version, whose chunks are released). Returns the
    /// stored record, version id filled in.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        expect: Option<Expect>,
    ) -> Result<ObjectRecord> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let new_chunks = self.new_chunks.clone();
        self.txn(move |s, tx| {
            let mode = s.versioning(tx, &bucket)?;
            let current: Option<ObjectRecord> =
                tx.get(Tree::Objects, &keys::object(&bucket, &key))?;
            check_expect(current.as_ref(), expect.as_ref())?;
            let mut delta = RefDelta::checked(new_chunks.clone());
            let stored = s.write_version(tx, &mut delta, &bucket, &key, record.clone(), mode)?;
            s.apply_refs(tx, delta)?;
            Ok(stored)
        })
        .await
    }

    /// DeleteObject, with S3's versioning rules (see [`DeleteOutcome`]).
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<DeleteOutcome> {
        self.delete_object_if(bucket, key, version, |_| Ok(()))
            .await
    }

    /// DeleteObject, where removing a version (not adding a delete marker) first asks
    /// `guard`, in the same transaction: an error refuses the delete and writes nothing.
    pub async fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        guard: impl Fn(&ObjectRecord) -> Result<()> + Send + Sync + 'static,
    ) -> Result<DeleteOutcome> {
        let (bucket, key, version) = (
            bucket.to_owned(),
            key.to_owned(),
            version.map(str::to_owned),
        );
        self.txn(move |s, tx| {
            let mut delta = RefDelta::checked(None);
            let now = now_ms() as i64;
            let outcome = s.delete(
                tx,
                &mut delta,
                (&bucket, &key, version.as_deref()),
                now,
                &guard,
            )?;
            s.apply_refs(tx, delta)?;
            Ok(outcome)
        })
        .await
    }

    /// A plain DELETE of `key` (a delete marker where versioning is on), done only while
    /// the key's current version is still the one written at `modified_ms` with
    /// `version_id`: lifecycle expiry decides on a listing, and an object written since
    /// must not be expired on its predecessor's age. `None`: the key changed; nothing done.
    pub async fn expire_current(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        modified_ms: i64,
    ) -> Result<Option<DeleteOutcome>> {
        let (bucket, key, version_id) = (
            bucket.to_owned(),
            key.to_owned(),
            version_id.map(str::to_owned),
        );
        self.txn(move |s, tx| {
            let current: Option<ObjectRecord> =
                tx.get(Tree::Objects, &keys::object(&bucket, &key))?;
            let unchanged = current.is_some_and(|c| {
                !c.delete_marker && c.version_id == version_id && c.modified_ms == modified_ms
            });
            if !unchanged {
                return Ok(None);
            }
            let mut delta = RefDelta::checked(None);
            let outcome = s.delete(
                tx,
                &mut delta,
                (&bucket, &key, None),
                now_ms() as i64,
                &|_| Ok(()),
            )?;
            s.apply_refs(tx, delta)?;
            Ok(Some(outcome))
        })
        .await
    }

    /// Changes a version's metadata in place (tags, for instance): `version` `None` is the
    /// current version. `change` must not touch the data: the refcounts stay as they are.
    pub async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        change: impl Fn(&mut ObjectRecord) + Send + 'static,
    ) -> Result<ObjectRecord> {
        let (bucket, key, version) = (
            bucket.to_owned(),
            key.to_owned(),
            version.map(str::to_owned),
        );
        self.txn(move |s, tx| {
            s.require_bucket(tx, &bucket)?;
            let ok = keys::object(&bucket, &key);
            let current: Option<ObjectRecord> = tx.get(Tree::Objects, &ok)?;
            let target = match &version {
                Some(v) => s.find_version(tx, &bucket, &key, Some(v))?,
                None => match &current {
                    Some(c) if !c.delete_marker => {
                        s.find_version(tx, &bucket, &key, c.version_id.as_deref())?
                    }
                    _ => None,
                },
            };
            let Some((vk, mut record)) = target else {
                return Err(if version.is_some() {
                    Error::NoSuchVersion
                } else {
                    Error::NoSuchObject
                });
            };
            if record.delete_marker {
                return Err(Error::NoSuchObject);
            }
            let is_current = current
                .as_ref()
                .is_some_and(|c| c.version_id == record.version_id);
            let data = record.data.clone();
            change(&mut record);
            if record.data != data {
                return Err(Error::Backend(
                    "update_object may not change an object's data".into(),
                ));
            }
            let encoded = encode(&record);
            if is_current {
                tx.put(Tree::Objects, ok, encoded.clone());
            }
            tx.put(Tree::Versions, vk, encoded);
            Ok(record)
        })
        .await
    }

    pub async fn list_versions(&self, bucket: &str, query: VersionQuery) -> Result<VersionPage> {
        let bucket = bucket.to_owned();
        self.run(move |s| {
            s.require_bucket(&mut s.plain(), &bucket)?;
            crate::versioning::list(s, &bucket, &query)
        })
        .await
    }

    pub async fn list_objects(&self, bucket: &str, query: ListQuery) -> Result<ListPage> {
        let bucket = bucket.to_owned();
        self.run(move |s| {
            s.require_bucket(&mut s.plain(), &bucket)?;
            listing::list(s.kv.as_ref(), &bucket, &query)
        })
        .await
    }

    // ---- multipart uploads ----

    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        record: UploadRecord,
    ) -> Result<()> {
        let bucket = bucket.to_owned();
        let k = keys::upload(&bucket, upload_id, key);
        self.txn(move |s, tx| {
            s.require_bucket(tx, &bucket)?;
            tx.put(Tree::Uploads, k.clone(), encode(&record));
            Ok(())
        })
        .await
    }

    pub async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>> {
        let k = keys::upload(bucket, upload_id, key);
        self.run(move |s| s.get(Tree::Uploads, &k)).await
    }

    /// Records a part, replacing (and releasing) an earlier part with the same number.
    pub async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        part: PartRecord,
    ) -> Result<()> {
        let uk = keys::upload(bucket, upload_id, key);
        let pk = keys::part(upload_id, number);
        let new_chunks = self.new_chunks.clone();
        self.txn(move |s, tx| {
            if tx.get_raw(Tree::Uploads, &uk)?.is_none() {
                return Err(Error::NoSuchUpload);
            }
            let mut delta = RefDelta::checked(new_chunks.clone());
            delta.add(&part.chunks, 1);
            if let Some(old) = tx.get::<PartRecord>(Tree::Parts, &pk)? {
                delta.add(&old.chunks, -1);
            }
            s.apply_refs(tx, delta)?;
            tx.put(Tree::Parts, pk.clone(), encode(&part));
            Ok(())
        })
        .await
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<(u32, PartRecord)>> {
        let uk = keys::upload(bucket, upload_id, key);
        let upload_id = upload_id.to_owned();
        self.run(move |s| {
            if s.kv.get(Tree::Uploads, &uk)?.is_none() {
                return Err(Error::NoSuchUpload);
            }
            scan_parts(&mut s.plain(), &upload_id)?
                .into_iter()
                .map(|(k, v)| {
                    let n = u32::from_be_bytes(k[k.len() - 4..].try_into().expect("4 bytes"));
                    Ok((n, decode(&v)?))
                })
                .collect()
        })
        .await
    }

    /// Turns an upload into the current object in one batch: the object references the parts'
    /// chunks (no data moves), every part record goes, and chunks of unused parts are released.
    /// `parts_used` (number, ETag) must still match the stored parts, else [`Error::PartChanged`].
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        record: ObjectRecord,
        parts_used: Vec<(u32, String)>,
        expect: Option<Expect>,
    ) -> Result<ObjectRecord> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let uk = keys::upload(&bucket, upload_id, &key);
        let ok = keys::object(&bucket, &key);
        let upload_id = upload_id.to_owned();
        self.txn(move |s, tx| {
            s.require_bucket(tx, &bucket)?;
            if tx.get_raw(Tree::Uploads, &uk)?.is_none() {
                return Err(Error::NoSuchUpload);
            }
            // The manifest was built from these parts; a part replaced since then would leave it
            // naming chunks this commit does not hold references for. The parts' scan below
            // also guards them: a part written after it makes this transaction run again.
            let parts = scan_parts(tx, &upload_id)?;
            for (number, etag) in &parts_used {
                let stored = parts
                    .iter()
                    .find(|(pk, _)| *pk == keys::part(&upload_id, *number))
                    .map(|(_, pv)| decode::<PartRecord>(pv))
                    .transpose()?;
                match stored {
                    Some(p) if &p.etag == etag => {}
                    _ => return Err(Error::PartChanged(*number)),
                }
            }
            let mut delta = RefDelta::checked(None);
            // The upload record goes in the main batch; its parts may follow it (nothing
            // reaches parts of an upload that is gone).
            for (pk, pv) in parts {
                delta.add(&decode::<PartRecord>(&pv)?.chunks, -1);
                tx.delete_later(Tree::Parts, pk);
            }
            let current: Option<ObjectRecord> = tx.get(Tree::Objects, &ok)?;
            check_expect(current.as_ref(), expect.as_ref())?;
            let mode = s.versioning(tx, &bucket)?;
            let stored = s.write_version(tx, &mut delta, &bucket, &key, record.clone(), mode)?;
            s.apply_refs(tx, delta)?;
            tx.delete(Tree::Uploads, uk.clone());
            Ok(stored)
        })
        .await
    }

    pub async fn list_uploads(
        &self,
        bucket: &str,
        query: crate::UploadQuery,
    ) -> Result<crate::UploadPage> {
        let bucket = bucket.to_owned();
        self.run(move |s| {
            s.require_bucket(&mut s.plain(), &bucket)?;
            crate::uploads::list(s.kv.as_ref(), &bucket, &query)
        })
        .await
    }

    /// Uploads initiated before `cutoff_ms`, as (bucket, key, upload id).
    pub async fn uploads_initiated_before(
        &self,
        cutoff_ms: i64,
    ) -> Result<Vec<(String, String, String)>> {
        self.run(move |s| crate::uploads::initiated_before(s.kv.as_ref(), cutoff_ms))
            .await
    }

    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let uk = keys::upload(bucket, upload_id, key);
        let upload_id = upload_id.to_owned();
        self.txn(move |s, tx| {
            if tx.get_raw(Tree::Uploads, &uk)?.is_none() {
                return Err(Error::NoSuchUpload);
            }
            let mut delta = RefDelta::checked(None);
            for (pk, pv) in scan_parts(tx, &upload_id)? {
                delta.add(&decode::<PartRecord>(&pv)?.chunks, -1);
                tx.delete_later(Tree::Parts, pk);
            }
            s.apply_refs(tx, delta)?;
            tx.delete(Tree::Uploads, uk.clone());
            Ok(())
        })
        .await
    }
}

fn scan_parts(r: &mut impl Reader, upload_id: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let prefix = keys::part_prefix(upload_id);
    let end = keys::prefix_end(&prefix);
    r.scan(Tree::Parts, &prefix, end.as_deref(), usize::MAX)
}
