//! Multipart uploads: parts are stored as chunks like any object, and completion writes one
//! manifest that references the parts' chunks. No data is read, copied or rewritten.

use std::collections::HashMap;

use md5::{Digest, Md5};
use metastore::{Expect, ObjectData, ObjectRecord, PartInfo, PartRecord, UploadRecord};

use super::{ObjectMeta, ObjectService, UploadBody, now_ms};
use crate::error::{Error, Result};

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PART_NUMBER: u32 = 10_000;

/// A part as named in a CompleteMultipartUpload request.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub number: u32,
    /// ETag without quotes.
    pub etag: String,
}

impl ObjectService {
    pub async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> Result<String> {
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
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
        };
        let record = UploadRecord {
            initiated_ms: now_ms(),
            template,
        };
        self.meta
            .create_upload(bucket, key, &upload_id, record)
            .await?;
        Ok(upload_id)
    }

    pub async fn upload_part<S, E>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        mut body: UploadBody<S>,
    ) -> Result<String>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin + Send,
        E: Into<Error>,
    {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(Error::InvalidArgument(format!(
                "part number must be an integer between 1 and {MAX_PART_NUMBER}"
            )));
        }
        if self
            .meta
            .get_upload(bucket, key, upload_id)
            .await?
            .is_none()
        {
            return Err(metastore::Error::NoSuchUpload.into());
        }
        let ingested = self
            .ingest(&mut body.stream, body.expected_len, false)
            .await?;
        if let Err(e) = body.verify(&ingested.md5) {
            self.discard(ingested).await;
            return Err(e);
        }
        let etag = hex::encode(ingested.md5);
        let part = PartRecord {
            size: ingested.size,
            etag: etag.clone(),
            modified_ms: now_ms(),
            chunks: ingested.data.chunks().to_vec(),
        };
        match self
            .meta
            .put_part(bucket, key, upload_id, number, part)
            .await
        {
            Ok(()) => Ok(etag),
            Err(e) => {
                self.discard(ingested).await;
                Err(e.into())
            }
        }
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<(u32, PartRecord)>> {
        Ok(self.meta.list_parts(bucket, key, upload_id).await?)
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
    ) -> Result<ObjectRecord> {
        let upload = self
            .meta
            .get_upload(bucket, key, upload_id)
            .await?
            .ok_or(metastore::Error::NoSuchUpload)?;
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
            infos.push(PartInfo {
                number: p.number,
                size: part.size,
                etag: part.etag.clone(),
                chunks: part.chunks.len() as u32,
            });
        }
        let mut record = upload.template;
        record.size = size;
        record.etag = format!("{}-{}", hex::encode(md5_of_md5s.finalize()), parts.len());
        record.modified_ms = now_ms();
        record.data = ObjectData::Chunks(chunks);
        record.parts = infos;
        let used = parts
            .iter()
            .zip(&record.parts)
            .map(|(p, i)| (p.number, i.etag.clone()))
            .collect();
        self.meta
            .complete_upload(bucket, key, upload_id, record.clone(), used, expect)
            .await?;
        Ok(record)
    }
}
