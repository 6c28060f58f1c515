//! Multipart uploads: parts are stored as chunks like any object, and completion writes one
//! manifest that references the parts' chunks. No data is read, copied or rewritten.

use std::collections::{BTreeMap, HashMap};

use md5::{Digest, Md5};
use metastore::{Expect, ObjectData, ObjectRecord, PartInfo, PartRecord, UploadRecord};

use super::sse::CustomerKey;
use super::{ObjectMeta, ObjectService, UploadBody, now_ms};
use crate::error::{Error, Result};

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PART_NUMBER: u32 = 10_000;

fn check_part_number(number: u32) -> Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&number) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "part number must be an integer between 1 and {MAX_PART_NUMBER}"
        )))
    }
}

/// The source's chunks that make up exactly `range`, if it starts and ends on chunk
/// boundaries.
fn aligned_chunks(
    source: &ObjectRecord,
    range: &std::ops::Range<u64>,
) -> Option<Vec<metastore::ChunkRef>> {
    let chunks = source.data.chunks();
    if chunks.is_empty() || range.start >= range.end {
        return None;
    }
    let mut offset = 0u64;
    let mut picked = Vec::new();
    let mut started = false;
    for c in chunks {
        let end = offset + c.data_len(0) as u64;
        if offset == range.start {
            started = true;
        }
        if started {
            picked.push(*c);
            if end == range.end {
                return Some(picked);
            }
            if end > range.end {
                return None;
            }
        } else if offset > range.start {
            return None;
        }
        offset = end;
    }
    None
}

/// Computes the completed object's checksums from its parts (in order): composite or
/// full-object, as the upload was created. Returns an error to refuse the completion.
/// It gets the checksum algorithm and type the upload was created with.
pub type PartsCheck = Box<
    dyn FnOnce(Option<&str>, Option<&str>, &[PartRecord]) -> Result<BTreeMap<String, String>>
        + Send,
>;

/// A part just stored, and how its upload encrypts (for the answer's headers).
#[derive(Debug, Clone)]
pub struct StoredPart {
    pub part: PartRecord,
    pub encryption: Option<metastore::Encryption>,
}

/// A part as named in a CompleteMultipartUpload request.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub number: u32,
    /// ETag without quotes.
    pub etag: String,
}

impl ObjectService {
    /// Starts a multipart upload; returns its id and how its parts will be encrypted.
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        checksum_algorithm: Option<String>,
        checksum_type: Option<String>,
    ) -> Result<(String, Option<metastore::Encryption>)> {
        let bucket_record = self.bucket(bucket).await?;
        // Time first, so uploads of one key list in the order they were initiated.
        let upload_id = format!(
            "{:012x}{}",
            now_ms(),
            &uuid::Uuid::new_v4().simple().to_string()[..20]
        );
        let template = ObjectRecord {
            version_id: None,
            size: 0,
            etag: String::new(),
            modified_ms: 0,
            content: meta.content,
            user_metadata: meta.user_metadata,
            checksums: Default::default(),
            tags: meta.tags,
            storage_class: meta.storage_class,
            delete_marker: false,
            data: ObjectData::Chunks(Vec::new()),
            parts: Vec::new(),
            acl: meta.acl,
            upload_id: None,
            grants: Vec::new(),
            encryption: self.encryption_for(&meta.encrypt, &bucket_record).await?,
            lock: self.lock_for(&bucket_record, meta.lock.clone())?,
        };
        let encryption = template.encryption.clone();
        let record = UploadRecord {
            initiated_ms: now_ms(),
            checksum_algorithm,
            checksum_type,
            template,
        };
        self.meta
            .create_upload(bucket, key, &upload_id, record)
            .await?;
        Ok((upload_id, encryption))
    }

    /// Stores part `number` of an upload; `customer` is the key the request sent, which must
    /// be the upload's own when it was created with SSE-C.
    pub async fn upload_part<S, E>(
        &self,
        (bucket, key, upload_id): (&str, &str, &str),
        number: u32,
        mut body: UploadBody<S>,
        customer: Option<&CustomerKey>,
    ) -> Result<StoredPart>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin + Send,
        E: Into<Error>,
    {
        check_part_number(number)?;
        let Some(upload) = self.meta.get_upload(bucket, key, upload_id).await? else {
            return Err(metastore::Error::NoSuchUpload.into());
        };
        let seal = self.part_sealer(&upload, customer).await?;
        let form = self.chunk_form(seal, key, upload.template.content.content_type.as_deref());
        let ingested = self
            .ingest(&mut body.stream, body.expected_len, false, form)
            .await?;
        let checksums = match body.verify(&ingested.md5) {
            Ok(c) => c,
            Err(e) => {
                self.discard(ingested).await;
                return Err(e);
            }
        };
        let part = PartRecord {
            size: ingested.size,
            etag: hex::encode(ingested.md5),
            modified_ms: now_ms(),
            chunks: ingested.data.chunks().to_vec(),
            checksums,
        };
        match self
            .meta
            .with_new_chunks(ingested.new_chunks())
            .put_part(bucket, key, upload_id, number, part.clone())
            .await
        {
            Ok(()) => Ok(StoredPart {
                part,
                encryption: upload.template.encryption,
            }),
            Err(e) => {
                self.discard(ingested).await;
                Err(e.into())
            }
        }
    }

    /// The cipher of an upload's parts: the upload's customer key must come with each part.
    async fn part_sealer(
        &self,
        upload: &UploadRecord,
        customer: Option<&CustomerKey>,
    ) -> Result<Option<std::sync::Arc<super::sse::ChunkCipher>>> {
        self.sealer(upload.template.encryption.as_ref(), customer)
            .await
            .map_err(|e| match e {
                Error::CustomerKeyRequired => Error::InvalidArgument(
                    "The multipart upload initiate requested encryption. Subsequent part \
                     requests must include the appropriate encryption parameters."
                        .into(),
                ),
                e => e,
            })
    }

    /// MD5 of a byte range of an object, computed as the range streams by.
    async fn md5_of(
        &self,
        source: &ObjectRecord,
        range: std::ops::Range<u64>,
        source_key: Option<&CustomerKey>,
    ) -> Result<[u8; 16]> {
        use futures::StreamExt;
        let mut stream = self.read_object(source, range, source_key).await?;
        let mut md5 = super::md5_stream::Md5Stream::new();
        while let Some(piece) = stream.next().await {
            md5.feed(piece?).await?;
        }
        md5.finish().await
    }

    /// UploadPartCopy: the part is `range` of `source`. When the range starts and ends on
    /// chunk boundaries of the source the part simply references those chunks: its bytes are
    /// read once for the MD5 S3 reports as the part ETag, but nothing is written. Otherwise the
    /// range is read and stored like an uploaded part. `source_key` opens a source encrypted
    /// with a customer key, `customer` is the key of an SSE-C upload.
    pub async fn upload_part_copy(
        &self,
        (bucket, key, upload_id): (&str, &str, &str),
        number: u32,
        (source, range): (&ObjectRecord, std::ops::Range<u64>),
        (source_key, customer): (Option<&CustomerKey>, Option<&CustomerKey>),
    ) -> Result<StoredPart> {
        check_part_number(number)?;
        let Some(upload) = self.meta.get_upload(bucket, key, upload_id).await? else {
            return Err(metastore::Error::NoSuchUpload.into());
        };
        self.part_sealer(&upload, customer).await?;
        // Chunks are shared only between data in clear: sealed chunk boundaries are not the
        // plaintext's, and the upload may seal differently.
        let shareable = source.encryption.is_none() && upload.template.encryption.is_none();
        if let Some(chunks) = aligned_chunks(source, &range).filter(|_| shareable) {
            let mut pins = Vec::new();
            for c in &chunks {
                pins.push(self.locks.pin(c.hash).await);
            }
            // S3's part ETag is the MD5 of the part's bytes: read them (nothing is written).
            let md5 = self.md5_of(source, range.clone(), source_key).await?;
            let part = PartRecord {
                size: range.end - range.start,
                etag: hex::encode(md5),
                modified_ms: now_ms(),
                chunks,
                checksums: Default::default(),
            };
            // The source's refcounts are positive while it exists; the pins keep this
            // process's GC off in case it is deleted before this commit, and the commit
            // fails if another gateway's GC got to them first.
            self.meta
                .with_new_chunks([])
                .put_part(bucket, key, upload_id, number, part.clone())
                .await?;
            drop(pins);
            return Ok(StoredPart {
                part,
                encryption: upload.template.encryption,
            });
        }
        let stream = self.read_object(source, range.clone(), source_key).await?;
        let body = UploadBody {
            stream,
            expected_len: Some(range.end - range.start),
            content_md5: None,
            check: None,
        };
        self.upload_part((bucket, key, upload_id), number, body, customer)
            .await
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<(u32, PartRecord)>> {
        Ok(self.meta.list_parts(bucket, key, upload_id).await?)
    }

    pub async fn list_uploads(
        &self,
        bucket: &str,
        query: metastore::UploadQuery,
    ) -> Result<metastore::UploadPage> {
        Ok(self.meta.list_uploads(bucket, query).await?)
    }

    /// Aborts uploads initiated more than `max_age` ago; returns how many.
    pub async fn expire_uploads(&self, max_age: std::time::Duration) -> Result<usize> {
        let cutoff = now_ms() - max_age.as_millis() as i64;
        let mut n = 0;
        for (bucket, key, upload_id) in self.meta.uploads_initiated_before(cutoff).await? {
            match self.meta.abort_upload(&bucket, &key, &upload_id).await {
                Ok(()) => n += 1,
                // Completed or aborted meanwhile.
                Err(metastore::Error::NoSuchUpload) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Runs [`Self::expire_uploads`] every `interval` until the service is dropped.
    pub fn spawn_upload_expiry(
        self: &std::sync::Arc<Self>,
        max_age: std::time::Duration,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_every(interval, move |service| async move {
            match service.expire_uploads(max_age).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "aborted expired multipart uploads"),
                Err(e) => tracing::warn!(error = %e, "multipart upload expiry failed"),
            }
        })
    }

    pub async fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        Ok(self.meta.abort_upload(bucket, key, upload_id).await?)
    }

    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        expect: Option<Expect>,
        check: PartsCheck,
    ) -> Result<ObjectRecord> {
        let Some(upload) = self.meta.get_upload(bucket, key, upload_id).await? else {
            // Completed already? SDKs retry a complete whose answer they did not get.
            return match self.completed_from(bucket, key, upload_id, parts).await? {
                Some(done) => Ok(done),
                None => Err(metastore::Error::NoSuchUpload.into()),
            };
        };
        if parts.is_empty() {
            return Err(Error::InvalidArgument(
                "a multipart upload must be completed with at least one part".into(),
            ));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(Error::InvalidPartOrder);
        }
        let stored: HashMap<u32, PartRecord> = self
            .meta
            .list_parts(bucket, key, upload_id)
            .await?
            .into_iter()
            .collect();
        let mut chunks = Vec::new();
        let mut infos = Vec::new();
        let mut md5_of_md5s = Md5::new();
        let mut size = 0u64;
        let mut used_parts = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let part = stored
                .get(&p.number)
                .filter(|s| s.etag == p.etag.trim_matches('"'))
                .ok_or_else(|| {
                    Error::InvalidPart(format!(
                        "part {} was not uploaded or its ETag does not match",
                        p.number
                    ))
                })?;
            if i + 1 < parts.len() && part.size < MIN_PART_SIZE {
                return Err(Error::EntityTooSmall(p.number));
            }
            let digest = hex::decode(&part.etag)
                .map_err(|_| Error::Internal("stored part ETag is not hex".into()))?;
            md5_of_md5s.update(&digest);
            size += part.size;
            chunks.extend_from_slice(&part.chunks);
            used_parts.push(part.clone());
            infos.push(PartInfo {
                number: p.number,
                size: part.size,
                etag: part.etag.clone(),
                chunks: part.chunks.len() as u32,
                checksums: upload
                    .checksum_algorithm
                    .as_ref()
                    .and_then(|a| Some((a.clone(), part.checksums.get(a)?.clone())))
                    .into_iter()
                    .collect(),
            });
        }
        let mut record = upload.template;
        record.checksums = check(
            upload.checksum_algorithm.as_deref(),
            upload.checksum_type.as_deref(),
            &used_parts,
        )?;
        record.size = size;
        record.etag = format!("{}-{}", hex::encode(md5_of_md5s.finalize()), parts.len());
        record.modified_ms = now_ms();
        record.data = ObjectData::Chunks(chunks);
        record.parts = infos;
        record.upload_id = Some(upload_id.to_string());
        let used = parts
            .iter()
            .zip(&record.parts)
            .map(|(p, i)| (p.number, i.etag.clone()))
            .collect();
        self.meta
            .complete_upload(bucket, key, upload_id, record, used, expect)
            .await
            .map_err(Error::from)
    }
}

/// Versions of a key searched for the one a retried complete made: AWS answers such a retry
/// for as long as the upload's result is the key's recent history.
const RETRY_VERSIONS: usize = 100;

impl ObjectService {
    /// The version `upload_id` was completed into with exactly these parts, if it is the key's
    /// current object or among its recent versions.
    async fn completed_from(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<Option<ObjectRecord>> {
        let made_it = |r: &ObjectRecord| {
            r.upload_id.as_deref() == Some(upload_id)
                && r.parts.len() == parts.len()
                && r.parts.iter().zip(parts).all(|(done, asked)| {
                    done.number == asked.number && done.etag == asked.etag.trim_matches('"')
                })
        };
        if let Some(current) = self.meta.get_object(bucket, key).await?
            && made_it(&current)
        {
            return Ok(Some(current));
        }
        let page = self
            .meta
            .list_versions(
                bucket,
                metastore::VersionQuery {
                    prefix: key.to_string(),
                    delimiter: None,
                    key_marker: None,
                    version_id_marker: None,
                    max: RETRY_VERSIONS,
                },
            )
            .await?;
        Ok(page.entries.into_iter().find_map(|e| match e {
            metastore::VersionEntry::Version { key: k, record, .. }
                if k == key && made_it(&record) =>
            {
                Some(*record)
            }
            _ => None,
        }))
    }
}
