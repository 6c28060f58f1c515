//! `GET locate?bucket=&key=[&versionId=]`: which disk holds each shard of each chunk of an
//! object, with every shard read and verified (so the answer also says which are missing or
//! corrupt). Reads the whole object's shards: meant for investigating one object.

use hyper::Uri;
use s3s::{S3Error, S3ErrorCode, S3Result};
use serde::Serialize;

use super::route::AdminApi;
use crate::s3::IntoS3;
use erasure::{ChunkHash, DiskState, ShardStatus};

#[derive(Serialize)]
pub(super) struct ObjectLocation {
    bucket: String,
    key: String,
    version_id: Option<String>,
    size: u64,
    etag: String,
    /// Small objects live in the metadata, not on the disks.
    inline: bool,
    data_shards: usize,
    parity_shards: usize,
    chunks: Vec<ChunkLocation>,
}

#[derive(Serialize)]
struct ChunkLocation {
    /// The pool holding the chunk (0: the disks the deployment was created with).
    pool: u32,
    offset: u64,
    length: u32,
    sha256: String,
    shards: Vec<ShardOnDisk>,
}

#[derive(Serialize)]
struct ShardOnDisk {
    index: usize,
    parity: bool,
    disk: usize,
    path: String,
    disk_state: &'static str,
    status: ShardStatus,
}

fn state_name(s: &DiskState) -> &'static str {
    match s {
        DiskState::Online => "online",
        DiskState::Faulty(_) => "faulty",
        DiskState::Offline(_) => "offline",
    }
}

impl AdminApi {
    pub(super) async fn locate(&self, uri: &Uri) -> S3Result<ObjectLocation> {
        let (mut bucket, mut key, mut version) = (None, None, None);
        for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            match &*k {
                "bucket" => bucket = Some(v.into_owned()),
                "key" => key = Some(v.into_owned()),
                "versionId" => version = Some(v.into_owned()),
                _ => {}
            }
        }
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "locate needs the bucket and key query parameters",
            ));
        };
        let record = self
            .service
            .head_object_version(&bucket, &key, version.as_deref())
            .await
            .s3()?;
        let layout = self.disks.deployment.layout;
        let meta = self.service.meta();
        let mut chunks = Vec::new();
        let mut offset = 0;
        for c in record.data.chunks() {
            let pool_id = meta.chunk_pool(c.hash).await.s3()?.unwrap_or(0);
            let store = self
                .service
                .pools()
                .store(pool_id)
                .map_err(objects::Error::from)
                .s3()?;
            let disks = match &self.pool_manager {
                Some(m) => m.pool_disks(pool_id).await,
                None => None,
            };
            let shards = store
                .locate_chunk(ChunkHash(c.hash), u64::from(c.len))
                .await
                .into_iter()
                .map(|l| {
                    let (path, disk_state) = match &disks {
                        None if pool_id == 0 => (
                            self.disks.location(l.disk),
                            state_name(&self.disks.slots[l.disk].state()),
                        ),
                        None => (store.disks()[l.disk].name(), "unknown"),
                        Some(list) => (list[l.disk].path.clone(), state_name(&list[l.disk].state)),
                    };
                    ShardOnDisk {
                        index: l.index,
                        parity: l.parity,
                        disk: l.disk,
                        path,
                        disk_state,
                        status: l.status,
                    }
                })
                .collect();
            chunks.push(ChunkLocation {
                pool: pool_id,
                offset,
                length: c.len,
                sha256: hex::encode(c.hash),
                shards,
            });
            offset += u64::from(c.len);
        }
        Ok(ObjectLocation {
            bucket,
            key,
            version_id: record.version_id.clone(),
            size: record.size,
            etag: record.etag.clone(),
            inline: matches!(record.data, metastore::ObjectData::Inline(_)),
            data_shards: layout.data(),
            parity_shards: layout.parity,
            chunks,
        })
    }
}
