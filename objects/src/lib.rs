//! The object service: operations on buckets and objects (put, get, copy, multipart, delete,
//! listings), built from metastore commits and erasure-coded chunks, and the background work
//! that keeps them right (GC, heal queue, scanner, multipart expiry).
//!
//! Main types: [`ObjectService`] (the operations), [`UploadBody`] (an upload's bytes and what
//! the client declared about them), [`ObjectStream`] (a GET's body), [`Error`].
//!
//! It knows neither HTTP nor S3's wire format: the gateway crate translates S3 requests into
//! calls here and maps [`Error`] to S3 error codes. It depends on `metastore` and `erasure`
//! only, so it can be driven by tests, benchmarks or another front end.

mod bucket_cache;
mod check;
mod chunk_locks;
mod compress;
mod error;
mod gc;
mod heal;
#[cfg(test)]
mod heal_tests;
mod ingest;
pub mod kms;
pub mod lifecycle;
mod locate;
pub mod lock;
mod md5_stream;
mod multipart;
mod notify;
mod pool_records;
#[cfg(test)]
mod pool_tests;
mod read;
mod rebalance;
mod scrub;
pub mod sse;

use std::collections::BTreeMap;
use std::sync::Arc;

use erasure::{ChunkHash, Pools};
use metastore::{
    BucketRecord, ContentHeaders, Expect, ListPage, ListQuery, MetaStore, ObjectRecord,
};

pub use check::CheckReport;
pub use chunk_locks::ChunkLocks;
pub use heal::{PassProgress, ScanSchedule};
pub use multipart::{CompletedPart, PartsCheck, StoredPart};
pub use pool_records::{
    HomeHandover, POOLS_SETTING, PoolRecord, RecordedPools, RecordedState, load_pools,
};
pub use read::ObjectStream;
pub use rebalance::{BALANCE_TOLERANCE, JobState, MoveJob, MoveKind};
pub use scrub::{MIN_RATE as SCRUB_MIN_RATE, SetScrub, TARGET_PASS as SCRUB_TARGET_PASS};

pub use error::{Error, Result};

/// The largest object S3 accepts (5 TiB).
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs once the whole body has been read, before anything is committed: verifies what the
/// client declared about the bytes (checksums computed while they streamed by) and returns the
/// checksums to store, by algorithm name. An error refuses the upload.
pub type BodyCheck = Box<dyn FnOnce() -> Result<BTreeMap<String, String>> + Send>;

/// An upload's bytes and what the client declared about them.
pub struct UploadBody<S> {
    pub stream: S,
    /// The declared length: a body that ends early or runs long is refused.
    pub expected_len: Option<u64>,
    /// The Content-MD5 the body must match.
    pub content_md5: Option<[u8; 16]>,
    pub check: Option<BodyCheck>,
}

impl<S> UploadBody<S> {
    /// Verifies the ingested body: Content-MD5, then the caller's check.
    fn verify(&mut self, md5: &[u8; 16]) -> Result<BTreeMap<String, String>> {
        if self.content_md5.is_some_and(|m| m != *md5) {
            return Err(Error::BadDigest);
        }
        match self.check.take() {
            Some(check) => check(),
            None => Ok(BTreeMap::new()),
        }
    }
}

/// What a client says about a new object besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct ObjectMeta {
    pub content: ContentHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: Option<String>,
    pub tags: Vec<(String, String)>,
    /// A validated canned ACL (`None`: private).
    pub acl: Option<String>,
    /// How the data is to be encrypted at rest.
    pub encrypt: Encrypt,
    /// The object lock the request asked for (validated; the bucket's default applies
    /// without one).
    pub lock: Option<metastore::ObjectLock>,
    /// The request declared its body's MD5 or a checksum: S3 requires one for a PUT that
    /// gets a retention.
    pub integrity_declared: bool,
}

/// The encryption a write asks for.
#[derive(Debug, Clone, Default)]
pub enum Encrypt {
    /// Whatever the bucket's default encryption says.
    #[default]
    AsBucketSays,
    /// SSE-S3: under the server's master key.
    ServerKey,
    /// SSE-C: under the key the client sent.
    CustomerKey(sse::CustomerKey),
    /// SSE-KMS: under a key of the key store (`None`: [`kms::DEFAULT_KEY`]), with the
    /// client's encryption context.
    Kms {
        key: Option<String>,
        context: Option<String>,
        /// The client asked for an S3 Bucket Key (recorded and answered).
        bucket_key: bool,
    },
}

impl Encrypt {
    /// The client's key, for SSE-C.
    pub fn customer_key(&self) -> Option<&sse::CustomerKey> {
        match self {
            Encrypt::CustomerKey(k) => Some(k),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct ObjectService {
    meta: MetaStore,
    pools: Arc<Pools>,
    locks: Arc<ChunkLocks>,
    heal: Arc<heal::HealState>,
    chunk_size: usize,
    inline_max: usize,
    /// Chunks being hashed, encoded and written by all uploads together: bounds the server's
    /// upload memory however many clients upload at once.
    chunk_slots: Arc<tokio::sync::Semaphore>,
    /// The chunk move job (rebalance, decommission) run by this process.
    mover: rebalance::Mover,
    /// The server's part of decommissioning the home pool (none: it cannot be).
    home_handover: pool_records::HandoverSlot,
    /// Serialises read-modify-writes of the recorded pools (a pool added while a
    /// decommission finishes must not be lost).
    pool_records_lock: tokio::sync::Mutex<()>,
    /// With several gateways writing, shards no record names yet may be another gateway's
    /// upload in progress: the orphan sweep removes only those it found unrecorded at least
    /// this long ago (`None`: this process is the only writer, and removes them at once).
    orphan_min_age: Option<std::time::Duration>,
    /// When each unrecorded chunk was first seen by the sweep (see `orphan_min_age`).
    orphans_seen: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
    /// Client chunk reads and writes in flight: scheduled scanner passes yield to them.
    foreground: Arc<scrub::Foreground>,
    /// The master key, when the server was given one: SSE-S3 and the key store.
    master_key: Option<Arc<sse::ChunkCipher>>,
    /// The master key before a rotation: reads what is still sealed under it.
    previous_master_key: Option<Arc<sse::ChunkCipher>>,
    /// Keys of the key store opened lately.
    kms_cache: kms::KeyCache,
    /// Compress chunks where it pays (`--compression`).
    compression: bool,
    /// The length of a lifecycle day in ms (a real day unless tests shorten it).
    lifecycle_day_ms: i64,
    lifecycle: lifecycle::LifecycleCounters,
    /// Bucket records read lately (lifecycle and notification rules).
    bucket_cache: bucket_cache::BucketCache,
    /// Woken when events are queued, for the delivery task.
    events_queued: tokio::sync::Notify,
    /// Events that could not be queued.
    events_lost: std::sync::atomic::AtomicU64,
}

/// See [`ObjectService::chunk_slots`]: about 5 MiB each (the chunk, its shards, their files).
const CHUNK_SLOTS: usize = 16;

impl ObjectService {
    pub fn new(meta: MetaStore, pools: Arc<Pools>, chunk_size: usize, inline_max: usize) -> Self {
        assert!(
            inline_max < chunk_size,
            "inline objects must fit in one chunk"
        );
        ObjectService {
            meta,
            pools,
            locks: Arc::default(),
            heal: Arc::default(),
            chunk_size,
            inline_max,
            chunk_slots: Arc::new(tokio::sync::Semaphore::new(CHUNK_SLOTS)),
            mover: rebalance::Mover::default(),
            home_handover: pool_records::HandoverSlot::default(),
            pool_records_lock: tokio::sync::Mutex::new(()),
            orphan_min_age: None,
            orphans_seen: Default::default(),
            foreground: Arc::default(),
            master_key: None,
            previous_master_key: None,
            kms_cache: Default::default(),
            compression: true,
            lifecycle_day_ms: lifecycle::DAY.as_millis() as i64,
            lifecycle: Default::default(),
            bucket_cache: Default::default(),
            events_queued: Default::default(),
            events_lost: Default::default(),
        }
    }

    /// The service with compression on or off (on by default). Either way it reads what
    /// was stored compressed.
    pub fn with_compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// How the chunks of object `key` with content type `content_type` are stored.
    pub(crate) fn chunk_form(
        &self,
        seal: Option<Arc<sse::ChunkCipher>>,
        key: &str,
        content_type: Option<&str>,
    ) -> ingest::ChunkForm {
        ingest::ChunkForm {
            seal,
            compress: self.compression && compress::worth_trying(key, content_type),
        }
    }

    /// The service with SSE-S3 and SSE-KMS: objects asked to be encrypted are sealed under
    /// keys sealed (or, before the key store, derived) from `key`.
    pub fn with_master_key(mut self, key: Arc<sse::ChunkCipher>) -> Self {
        self.master_key = Some(key);
        self
    }

    /// The master key a rotation replaces, still used to read what is sealed under it.
    pub fn with_previous_master_key(mut self, key: Arc<sse::ChunkCipher>) -> Self {
        self.previous_master_key = Some(key);
        self
    }

    /// What a write that asked for `encrypt` records in `bucket` (whose default encryption
    /// applies when the write asked for none); an error when it needs a master key the
    /// server lacks, or names a key of the key store that is missing or disabled.
    pub async fn encryption_for(
        &self,
        encrypt: &Encrypt,
        bucket: &metastore::BucketRecord,
    ) -> Result<Option<metastore::Encryption>> {
        let (key, kms) = match encrypt {
            Encrypt::CustomerKey(k) => {
                return Ok(Some(metastore::Encryption {
                    key_id: sse::CUSTOMER_KEY_ID.to_owned(),
                    scheme: sse::SCHEME_V1,
                    customer: Some(k.new_check()),
                    kms: None,
                }));
            }
            Encrypt::ServerKey => (kms::SSE_S3_KEY.to_owned(), None),
            Encrypt::Kms {
                key,
                context,
                bucket_key,
            } => (
                key.clone().unwrap_or_else(|| kms::DEFAULT_KEY.to_owned()),
                Some(metastore::KmsUse {
                    context: context.clone(),
                    bucket_key: *bucket_key,
                }),
            ),
            Encrypt::AsBucketSays if !bucket.encrypt_by_default => return Ok(None),
            Encrypt::AsBucketSays => match &bucket.default_kms_key {
                Some(key) => (
                    key.clone(),
                    Some(metastore::KmsUse {
                        context: None,
                        bucket_key: bucket.default_bucket_key,
                    }),
                ),
                None => (kms::SSE_S3_KEY.to_owned(), None),
            },
        };
        // Refused now (no master key, a missing or disabled key) rather than after the upload.
        if self.master_key.is_none() {
            return Err(Error::EncryptionNotConfigured);
        }
        self.store_key_cipher(&key).await?;
        Ok(Some(metastore::Encryption {
            key_id: key,
            scheme: sse::SCHEME_STORE_KEY,
            customer: None,
            kms,
        }))
    }

    /// The cipher that seals or opens data recorded with `encryption`, given the key the
    /// request sent (`customer`, SSE-C). Refuses a missing or wrong customer key, and one sent
    /// for data not encrypted with one, as S3 does.
    pub async fn sealer(
        &self,
        encryption: Option<&metastore::Encryption>,
        customer: Option<&sse::CustomerKey>,
    ) -> Result<Option<Arc<sse::ChunkCipher>>> {
        let Some(e) = encryption else {
            return match customer {
                Some(_) => Err(Error::CustomerKeyNotApplicable),
                None => Ok(None),
            };
        };
        if let Some(check) = &e.customer {
            return match customer {
                None => Err(Error::CustomerKeyRequired),
                Some(k) if e.scheme == sse::SCHEME_V1 && k.matches(check) => {
                    Ok(Some(Arc::new(k.cipher())))
                }
                Some(_) => Err(Error::CustomerKeyWrong),
            };
        }
        if customer.is_some() {
            return Err(Error::CustomerKeyNotApplicable);
        }
        match e.scheme {
            sse::SCHEME_STORE_KEY => Ok(Some(self.store_key_cipher(&e.key_id).await?)),
            sse::SCHEME_V1 => match self.master_named(&e.key_id) {
                Some(key) => Ok(Some(key.clone())),
                None => Err(Error::MasterKeyMissing(format!(
                    "the object is encrypted under master key {:?}; this server has {}",
                    e.key_id,
                    match &self.master_key {
                        Some(k) => format!("{:?}", k.id()),
                        None => "none".to_owned(),
                    }
                ))),
            },
            other => Err(Error::Internal(format!(
                "unknown encryption scheme {other}: written by a newer tessera?"
            ))),
        }
    }

    /// The service for one of several gateways sharing the metadata: see `orphan_min_age`.
    pub fn shared_with_other_writers(mut self, orphan_min_age: std::time::Duration) -> Self {
        self.orphan_min_age = Some(orphan_min_age);
        self
    }

    /// Lets the home pool be decommissioned, through `handover` (set once, at start).
    pub fn set_home_handover(&self, handover: Arc<dyn pool_records::HomeHandover>) {
        let _ = self.home_handover.0.set(handover);
    }

    /// The deployment's pools of disks.
    pub fn pools(&self) -> &Arc<Pools> {
        &self.pools
    }

    fn locator(&self) -> locate::Locator {
        locate::Locator {
            pools: self.pools.clone(),
            meta: self.meta.clone(),
            foreground: self.foreground.clone(),
        }
    }

    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    // ---- buckets ----

    /// `owner` is the creating user's id (`None`: root); `acl` a validated canned ACL.
    /// Creates a bucket; with `object_lock` it is versioned for good and locks versions.
    pub async fn create_bucket(
        &self,
        bucket: &str,
        (owner, acl): (Option<String>, Option<String>),
        region: String,
        object_lock: bool,
    ) -> Result<()> {
        let mut record = BucketRecord::new(now_ms());
        record.owner = owner;
        record.acl = acl;
        record.region = Some(region);
        if object_lock {
            record.object_lock = Some(Default::default());
            record.versioning = metastore::Versioning::Enabled;
        }
        Ok(self.meta.create_bucket(bucket, record).await?)
    }

    pub async fn bucket(&self, bucket: &str) -> Result<BucketRecord> {
        self.meta
            .get_bucket(bucket)
            .await?
            .ok_or(Error::Meta(metastore::Error::NoSuchBucket))
    }

    pub async fn list_buckets(&self) -> Result<Vec<(String, BucketRecord)>> {
        Ok(self.meta.list_buckets().await?)
    }

    pub async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        Ok(self.meta.delete_bucket(bucket).await?)
    }

    // ---- objects ----

    /// Streams `body` into chunks and commits the object. Nothing is visible until the data
    /// and the metadata are both durable.
    pub async fn put_object<S, E>(
        &self,
        bucket: &str,
        key: &str,
        mut body: UploadBody<S>,
        meta: ObjectMeta,
        expect: Option<Expect>,
    ) -> Result<ObjectRecord>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin + Send,
        E: Into<Error>,
    {
        let record = self.bucket(bucket).await?;
        // Refuse early when the condition already fails; the commit checks it again atomically.
        if let Some(e) = &expect {
            self.check_expect(bucket, key, e).await?;
        }
        let lock = self.lock_for(&record, meta.lock.clone())?;
        if lock.as_ref().is_some_and(|l| l.retain_until_ms.is_some()) && !meta.integrity_declared {
            return Err(Error::InvalidRequest(
                "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters".into(),
            ));
        }
        let encryption = self.encryption_for(&meta.encrypt, &record).await?;
        let seal = self
            .sealer(encryption.as_ref(), meta.encrypt.customer_key())
            .await?;
        let form = self.chunk_form(seal, key, meta.content.content_type.as_deref());
        let ingested = self
            .ingest(&mut body.stream, body.expected_len, true, form)
            .await?;
        let checksums = match body.verify(&ingested.md5) {
            Ok(c) => c,
            Err(e) => {
                self.discard(ingested).await;
                return Err(e);
            }
        };
        let record = ObjectRecord {
            version_id: None,
            size: ingested.size,
            etag: hex::encode(ingested.md5),
            modified_ms: now_ms(),
            content: meta.content,
            user_metadata: meta.user_metadata,
            checksums,
            tags: meta.tags,
            storage_class: meta.storage_class,
            delete_marker: false,
            data: ingested.data.clone(),
            parts: Vec::new(),
            acl: meta.acl,
            upload_id: None,
            grants: Vec::new(),
            encryption,
            lock,
        };
        self.commit_ingested(ingested, (bucket, key), record, expect)
            .await
    }

    /// Commits `record`, whose data `ingested` stored; its chunks are discarded if the commit
    /// fails (the ingest's pins keep GC off them until then).
    async fn commit_ingested(
        &self,
        ingested: ingest::Ingested,
        (bucket, key): (&str, &str),
        record: ObjectRecord,
        expect: Option<Expect>,
    ) -> Result<ObjectRecord> {
        let meta = self.meta.with_new_chunks(ingested.new_chunks());
        match meta.put_object(bucket, key, record, expect).await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                self.discard(ingested).await;
                Err(e.into())
            }
        }
    }

    async fn check_expect(&self, bucket: &str, key: &str, expect: &Expect) -> Result<()> {
        let current = self.meta.get_object(bucket, key).await?;
        Ok(expect.check(current.as_ref())?)
    }

    /// Replaces the tags of a version (`None`: the current one).
    pub async fn set_tags(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<ObjectRecord> {
        Ok(self
            .meta
            .update_object(bucket, key, version, move |r| r.tags = tags.clone())
            .await?)
    }

    /// The current version of an object, or the given version (`"null"` included). A delete
    /// marker is reported as [`Error::DeleteMarker`].
    pub async fn head_object_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ObjectRecord> {
        let found = match version {
            None => self.meta.get_object(bucket, key).await?,
            Some(v) => self.meta.get_version(bucket, key, v).await?,
        };
        match found {
            Some(r) if r.delete_marker => Err(Error::DeleteMarker {
                version_id: r.version_id,
                requested: version.is_some(),
            }),
            Some(r) => Ok(r),
            None => {
                self.bucket(bucket).await?;
                Err(if version.is_some() {
                    Error::NoSuchVersion
                } else {
                    Error::NoSuchKey
                })
            }
        }
    }

    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectRecord> {
        self.head_object_version(bucket, key, None).await
    }

    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<metastore::DeleteOutcome> {
        Ok(self.meta.delete_object(bucket, key, version).await?)
    }

    pub async fn set_versioning(&self, bucket: &str, v: metastore::Versioning) -> Result<()> {
        if v != metastore::Versioning::Enabled && self.bucket(bucket).await?.object_lock.is_some() {
            return Err(Error::InvalidBucketState(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
            ));
        }
        Ok(self.meta.set_versioning(bucket, v).await?)
    }

    pub async fn list_versions(
        &self,
        bucket: &str,
        q: metastore::VersionQuery,
    ) -> Result<metastore::VersionPage> {
        Ok(self.meta.list_versions(bucket, q).await?)
    }

    /// Makes `dst` reference the same chunks as `src`: no data is read or written, unless the
    /// copy is to be encrypted differently from the source (`encrypt`). `source_key` opens a
    /// source encrypted with a customer key (SSE-C). `edit` changes the new record's metadata
    /// (S3's REPLACE directives); it must not touch the data.
    pub async fn copy_object(
        &self,
        (src_bucket, src_key, src_version): (&str, &str, Option<&str>),
        (dst_bucket, dst_key): (&str, &str),
        (source_key, encrypt, lock): (
            Option<&sse::CustomerKey>,
            &Encrypt,
            Option<metastore::ObjectLock>,
        ),
        edit: impl FnOnce(&mut ObjectRecord),
    ) -> Result<ObjectRecord> {
        let destination = self.bucket(dst_bucket).await?;
        // A copy gets the lock its request asks for, or the destination's default, never the
        // source's (as on S3).
        let lock = self.lock_for(&destination, lock)?;
        let edit = move |r: &mut ObjectRecord| {
            edit(r);
            r.lock = lock;
        };
        let mut wanted = self.encryption_for(encrypt, &destination).await?;
        // Pin the source's chunks, then check the source still names them: while it does their
        // refcount is positive, and from now on GC cannot claim them.
        let mut source = self
            .head_object_version(src_bucket, src_key, src_version)
            .await?;
        let mut pins = Vec::new();
        for _attempt in 0..3 {
            pins.clear();
            for c in source.data.chunks() {
                pins.push(self.locks.pin(c.hash).await);
            }
            let again = self
                .head_object_version(src_bucket, src_key, src_version)
                .await?;
            if again.data == source.data {
                break;
            }
            source = again;
        }
        // The request must be able to open the source, even when its chunks are shared.
        self.sealer(source.encryption.as_ref(), source_key).await?;
        let customer = encrypt.customer_key();
        if let (Some(e), Some(k)) = (&source.encryption, customer)
            && e.customer.as_ref().is_some_and(|check| k.matches(check))
        {
            // The same customer key on both sides: the sealed chunks serve the copy as they are.
            wanted = source.encryption.clone();
        }
        if source.encryption != wanted {
            // Encrypted differently: the data is read and stored again, sealed as wanted.
            drop(pins);
            return self
                .copy_recoded(
                    (source, source_key),
                    (dst_bucket, dst_key),
                    (wanted, customer),
                    edit,
                )
                .await;
        }
        let mut record = source.clone();
        edit(&mut record);
        record.data = source.data;
        record.modified_ms = now_ms();
        // A copy was not completed from the source's upload, and gets the ACL the request
        // names, not the source's grants.
        record.upload_id = None;
        record.grants.clear();
        // Another gateway's GC cannot see this one's pins: the source's chunks must still be
        // stored when the copy commits.
        let stored = self
            .meta
            .with_new_chunks([])
            .put_object(dst_bucket, dst_key, record, None)
            .await?;
        drop(pins);
        Ok(stored)
    }

    /// A copy whose data is stored anew (encrypted where the source was not, or the
    /// reverse): the source is read (decrypted) and ingested like an upload.
    async fn copy_recoded(
        &self,
        (source, source_key): (ObjectRecord, Option<&sse::CustomerKey>),
        (dst_bucket, dst_key): (&str, &str),
        (wanted, customer): (Option<metastore::Encryption>, Option<&sse::CustomerKey>),
        edit: impl FnOnce(&mut ObjectRecord),
    ) -> Result<ObjectRecord> {
        let stream = self
            .read_object(&source, 0..source.size, source_key)
            .await?;
        let seal = self.sealer(wanted.as_ref(), customer).await?;
        let form = self.chunk_form(seal, dst_key, source.content.content_type.as_deref());
        let ingested = self.ingest(stream, Some(source.size), true, form).await?;
        let mut record = source;
        edit(&mut record);
        record.data = ingested.data.clone();
        record.encryption = wanted;
        record.modified_ms = now_ms();
        record.upload_id = None;
        record.grants.clear();
        self.commit_ingested(ingested, (dst_bucket, dst_key), record, None)
            .await
    }

    pub async fn list_objects(&self, bucket: &str, query: ListQuery) -> Result<ListPage> {
        Ok(self.meta.list_objects(bucket, query).await?)
    }

    /// Deletes chunks written by a request that did not commit, unless something else now
    /// references or is writing them.
    async fn discard(&self, ingested: ingest::Ingested) {
        let written: Vec<([u8; 32], u32)> =
            ingested.written.iter().map(|w| (w.hash, w.pool)).collect();
        drop(ingested);
        self.discard_chunks(&written).await;
    }

    /// Deletes the shards a request stored (chunk, pool) that nothing references there,
    /// skipping any a request has pinned. With other gateways writing too, nothing is deleted
    /// here: one of them may be storing the same chunk for a request of its own (a client
    /// retrying a timed-out PUT elsewhere, say) and commit it later, which a pin in this
    /// process cannot see. The leader's orphan sweep removes what stays unrecorded.
    async fn discard_chunks(&self, stored: &[([u8; 32], u32)]) {
        if self.orphan_min_age.is_some() {
            return;
        }
        for &(hash, pool) in stored {
            let Some(_claim) = self.locks.try_claim_delete(hash) else {
                continue;
            };
            match self.meta.chunk_pool(hash).await {
                // Recorded in this pool: another request's commit references it.
                Ok(Some(p)) if p == pool => {}
                Ok(_) => match self.pools.store(pool) {
                    Ok(store) => {
                        if let Err(e) = store
                            .delete_chunk(ChunkHash(hash), self.meta.fence_token())
                            .await
                        {
                            tracing::warn!(chunk = %ChunkHash(hash), error = %e, "could not remove shards of an uncommitted chunk");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not remove an uncommitted chunk"),
                },
                Err(e) => tracing::warn!(error = %e, "could not check an uncommitted chunk"),
            }
        }
    }
}
