//! The node's side of the shard protocol: an s3s custom route, so SigV4 verification (and its
//! time window) is s3s's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use erasure::disk_format::{self, DiskFormat, Found};
use erasure::{ChunkHash, ShardKey, ShardStore};
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::identity::NodeIdentity;
use crate::signing::BLAKE3_HEADER;

pub const NODE_ROOT: &str = "/tessera-node/v1/";
pub const NODE_PREFIX: &str = "/tessera-node/v1/disks/";
/// The deployment a gateway's request comes from; signed with the request.
pub const DEPLOYMENT_HEADER: &str = "x-tessera-deployment";
/// The access key of cluster-internal requests; the secret is the cluster secret.
pub const NODE_ACCESS_KEY: &str = "tessera-cluster";
/// Shards are at most a chunk (1 MiB) over k plus a header; this leaves room for larger
/// chunk sizes without letting a request make the node buffer without bound.
const MAX_SHARD_BYTES: usize = 64 << 20;

/// `GET /tessera-node/v1/info`: who the node is and what each of its disks holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub deployment_id: Option<String>,
    pub disks: Vec<NodeDiskFormat>,
}

/// A node disk's deployment format (`DIR/.tessera/format.json`, the same file a local disk has).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum NodeDiskFormat {
    Formatted { format: DiskFormat },
    Unformatted,
    Unreadable { reason: String },
}

pub struct NodeApi {
    pub disks: Vec<Arc<dyn ShardStore>>,
    pub identity: Arc<NodeIdentity>,
}

/// The S3 operations a node answers: none (every one is NotImplemented).
struct NoS3;
impl s3s::S3 for NoS3 {}

/// The node's HTTP service: the shard route under the cluster secret.
pub fn node_service(
    disks: Vec<Arc<dyn ShardStore>>,
    identity: Arc<NodeIdentity>,
    cluster_secret: &str,
) -> S3Service {
    let mut builder = S3ServiceBuilder::new(NoS3);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        NODE_ACCESS_KEY,
        cluster_secret.to_owned(),
    ));
    builder.set_route(NodeApi { disks, identity });
    builder.build()
}

fn bad(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg.into())
}

/// `{64 hex}.{index}` into a shard key; anything else (`..`, slashes, other names) is refused.
pub(super) fn parse_shard_id(id: &str) -> Option<ShardKey> {
    let (hex, index) = id.split_once('.')?;
    if hex.len() != 64 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ShardKey {
        chunk: ChunkHash::from_hex(hex)?,
        index: index.parse().ok()?,
    })
}

fn from_store(e: erasure::Error) -> S3Error {
    match e {
        erasure::Error::NotFound => S3Error::new(S3ErrorCode::NoSuchKey),
        e if e.is_storage_full() => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("XTesseraStorageFull".into()),
                e.to_string(),
            );
            err.set_status_code(StatusCode::INSUFFICIENT_STORAGE);
            err
        }
        e => S3Error::with_message(S3ErrorCode::InternalError, e.to_string()),
    }
}

fn reply(body: impl Into<Body>) -> S3Result<S3Response<Body>> {
    Ok(S3Response::new(body.into()))
}

/// Formats a node disk for a deployment; a disk that already belongs to a deployment
/// position keeps it (the gateway formats only new and empty disks).
async fn write_format_once(dir: PathBuf, format: DiskFormat) -> S3Result<()> {
    let written = tokio::task::spawn_blocking(move || {
        if let Ok(Found::Formatted(current)) = disk_format::inspect(&dir)
            && current.disk_id != format.disk_id
        {
            return Err(format!(
                "{} is already disk {} of deployment {}",
                dir.display(),
                current.disk_id,
                current.deployment_id
            ));
        }
        disk_format::write_format(&dir, &format).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    written.map_err(|why| {
        let mut e = S3Error::with_message(S3ErrorCode::Custom("XTesseraDiskFormatted".into()), why);
        e.set_status_code(StatusCode::CONFLICT);
        e
    })
}

/// What a node disk holds, for [`NodeInfo`]: its deployment format, none, or an error.
fn disk_format_state(dir: &Path) -> NodeDiskFormat {
    if !dir.join(disk_format::FORMAT_FILE).exists() {
        return NodeDiskFormat::Unformatted;
    }
    match disk_format::inspect(dir) {
        Ok(Found::Formatted(format)) => NodeDiskFormat::Formatted { format },
        Ok(Found::Unreadable(reason)) => NodeDiskFormat::Unreadable { reason },
        Ok(_) => NodeDiskFormat::Unformatted,
        Err(e) => NodeDiskFormat::Unreadable {
            reason: e.to_string(),
        },
    }
}

impl NodeApi {
    async fn info(&self) -> S3Result<NodeInfo> {
        let dirs = self.identity.dirs().to_vec();
        let disks = tokio::task::spawn_blocking(move || {
            dirs.iter().map(|d| disk_format_state(d)).collect()
        })
        .await
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
        Ok(NodeInfo {
            node_id: self.identity.node_id.clone(),
            deployment_id: self.identity.deployment(),
            disks,
        })
    }

    fn dir(&self, index: &str) -> S3Result<PathBuf> {
        index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.identity.dirs().get(i).cloned())
            .ok_or_else(|| bad(format!("no disk {index:?} on this node")))
    }

    fn disk(&self, index: &str) -> S3Result<&Arc<dyn ShardStore>> {
        index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.disks.get(i))
            .ok_or_else(|| bad(format!("no disk {index:?} on this node")))
    }

    async fn body(req: &mut S3Request<Body>) -> S3Result<bytes::Bytes> {
        let body = req
            .input
            .store_all_limited(MAX_SHARD_BYTES)
            .await
            .map_err(|e| bad(format!("unreadable body: {e}")))?;
        // The signature covers the declared hash; this ties the body to it.
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let matches = match header("x-amz-content-sha256") {
            "UNSIGNED-PAYLOAD" => {
                // Then the hash is in our own header, which must be one the signature covers.
                let signed = header("authorization")
                    .split_once("SignedHeaders=")
                    .and_then(|(_, rest)| rest.split(',').next())
                    .is_some_and(|list| list.split(';').any(|h| h == BLAKE3_HEADER));
                signed && blake3::hash(&body).to_hex().as_str() == header(BLAKE3_HEADER)
            }
            declared => hex::encode(Sha256::digest(&body)) == declared,
        };
        if !matches {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                "the body does not match its signed hash",
            );
            e.set_status_code(StatusCode::BAD_REQUEST);
            return Err(e);
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl S3Route for NodeApi {
    fn is_match(&self, _: &Method, uri: &Uri, _: &HeaderMap, _: &mut Extensions) -> bool {
        uri.path().starts_with(NODE_ROOT)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match &req.credentials {
            Some(c) if c.access_key == NODE_ACCESS_KEY => Ok(()),
            _ => Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "node requests must be signed with the cluster secret",
            )),
        }
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        // A gateway names its deployment: the first one claims the node, others are refused.
        if let Some(d) = req.headers.get(DEPLOYMENT_HEADER) {
            let d = d.to_str().map_err(|_| bad("invalid deployment header"))?;
            if let Err(why) = self.identity.admit(d) {
                let mut e = S3Error::with_message(
                    S3ErrorCode::Custom("XTesseraWrongDeployment".into()),
                    why,
                );
                e.set_status_code(StatusCode::CONFLICT);
                return Err(e);
            }
        }
        if req.method == Method::GET && req.uri.path() == format!("{NODE_ROOT}info") {
            let info = self.info().await?;
            let json = serde_json::to_string(&info)
                .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
            return reply(json);
        }
        let Some(path) = req.uri.path().strip_prefix(NODE_PREFIX).map(str::to_owned) else {
            return Err(bad(format!("unknown node request {}", req.uri.path())));
        };
        let parts: Vec<&str> = path.split('/').collect();
        let method = req.method.clone();
        match (method, parts.as_slice()) {
            (Method::PUT, [disk, "shards", id]) => {
                let disk = self.disk(disk)?;
                let key = parse_shard_id(id).ok_or_else(|| bad("invalid shard id"))?;
                let body = Self::body(&mut req).await?;
                let unsynced = req.uri.query().is_some_and(|q| q == "unsynced");
                let put = if unsynced {
                    disk.put_unsynced(key, body).await
                } else {
                    disk.put(key, body).await
                };
                put.map_err(from_store)?;
                reply(Body::empty())
            }
            (Method::GET, [disk, "shards", id]) => {
                let disk = self.disk(disk)?;
                let key = parse_shard_id(id).ok_or_else(|| bad("invalid shard id"))?;
                reply(disk.get(key).await.map_err(from_store)?)
            }
            (Method::DELETE, [disk, "shards", id]) => {
                let disk = self.disk(disk)?;
                let key = parse_shard_id(id).ok_or_else(|| bad("invalid shard id"))?;
                disk.delete(key).await.map_err(from_store)?;
                reply(Body::empty())
            }
            (Method::GET, [disk, "shards"]) => {
                let keys = self.disk(disk)?.list().await.map_err(from_store)?;
                let mut text = String::with_capacity(keys.len() * 68);
                for k in keys {
                    text.push_str(&format!("{}.{}\n", k.chunk.to_hex(), k.index));
                }
                reply(text)
            }
            (Method::POST, [disk, "quarantine", id]) => {
                let disk = self.disk(disk)?;
                let key = parse_shard_id(id).ok_or_else(|| bad("invalid shard id"))?;
                disk.quarantine(key).await.map_err(from_store)?;
                reply(Body::empty())
            }
            (Method::POST, [disk, "sync"]) => {
                self.disk(disk)?.sync().await.map_err(from_store)?;
                reply(Body::empty())
            }
            (Method::PUT, [disk, "format"]) => {
                let dir = self.dir(disk)?;
                let body = Self::body(&mut req).await?;
                let format: DiskFormat = serde_json::from_slice(&body)
                    .map_err(|e| bad(format!("invalid disk format: {e}")))?;
                write_format_once(dir, format).await?;
                reply(Body::empty())
            }
            (Method::GET, [disk, "health"]) => {
                self.disk(disk)?.health().await.map_err(from_store)?;
                reply(Body::empty())
            }
            (Method::GET, [disk, "space"]) => {
                let space = self.disk(disk)?.space().await.map_err(from_store)?;
                let json = serde_json::to_string(&space).map_err(|e| {
                    S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
                })?;
                reply(json)
            }
            (m, _) => Err(bad(format!("unknown node request {m} {path}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_shard_id;

    #[test]
    fn shard_ids_cannot_name_paths() {
        let hex = "ab".repeat(32);
        let key = parse_shard_id(&format!("{hex}.3")).unwrap();
        assert_eq!((key.chunk.to_hex(), key.index), (hex.clone(), 3));
        for bad in [
            "../../etc/passwd".to_string(),
            format!("{hex}.3/../x"),
            format!("{hex}.-1"),
            format!("{hex}.256"),
            format!("{hex}.+1"),
            format!("..{hex}.1"),
            format!("{}.1", "zz".repeat(32)),
            format!("{}.1", "ab".repeat(31)),
            hex.clone(),
            String::new(),
        ] {
            assert!(parse_shard_id(&bad).is_none(), "{bad:?} was accepted");
        }
    }
}
