//! The storage node's HTTP side: `tessera node DIR...` serves the shards of its directories
//! to the gateways over the protocol in [`cluster::protocol`] (paths, headers, shard ids).
//!
//! It is an s3s custom route, so SigV4 verification (under the cluster secret, with s3s's
//! 15-minute time window against replay) is s3s's. The body is tied to the signature by its
//! signed hash: SHA-256 in `x-amz-content-sha256`, or BLAKE3 in the signed
//! `x-tessera-content-blake3` header. Shard ids are parsed into a chunk hash and an index
//! before anything touches a disk, so no request can name a path. The client end is
//! [`cluster::RemoteNode`].

use std::path::PathBuf;
use std::sync::Arc;

use cluster::NodeIdentity;
use cluster::protocol::{
    DEPLOYMENT_HEADER, DISK_ID_HEADER, FormatRefusal, MAX_SHARD_BYTES, NODE_ACCESS_KEY,
    NODE_PREFIX, NODE_ROOT, NodeDiskFormat, NodeInfo, format_disk_once, parse_shard_id, shard_id,
};
use cluster::signing::BLAKE3_HEADER;
use erasure::ShardStore;
use erasure::disk_format::DiskFormat;
use hyper::body::Incoming;
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::route::S3Route;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

pub struct NodeApi {
    pub disks: Vec<Arc<dyn ShardStore>>,
    pub identity: Arc<NodeIdentity>,
    /// Each disk's deployment disk id, once read from its format (None: not read yet, or
    /// unformatted).
    disk_ids: std::sync::Mutex<Vec<Option<String>>>,
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
    let disk_ids = std::sync::Mutex::new(vec![None; disks.len()]);
    builder.set_route(NodeApi {
        disks,
        identity,
        disk_ids,
    });
    builder.build()
}

fn bad(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg.into())
}

fn from_store(e: erasure::Error) -> S3Error {
    match e {
        erasure::Error::NotFound => S3Error::new(S3ErrorCode::NoSuchKey),
        erasure::Error::Fenced(why) => {
            let mut err = S3Error::with_message(S3ErrorCode::Custom("XTesseraFenced".into()), why);
            err.set_status_code(StatusCode::PRECONDITION_FAILED);
            err
        }
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

async fn write_format_once(dir: PathBuf, format: DiskFormat) -> S3Result<()> {
    let written = tokio::task::spawn_blocking(move || format_disk_once(&dir, &format))
        .await
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    written.map_err(|refusal| match refusal {
        FormatRefusal::OtherDisk(why) => {
            let mut e =
                S3Error::with_message(S3ErrorCode::Custom("XTesseraDiskFormatted".into()), why);
            e.set_status_code(StatusCode::CONFLICT);
            e
        }
        FormatRefusal::Failed(why) => S3Error::with_message(S3ErrorCode::InternalError, why),
    })
}

impl NodeApi {
    async fn info(&self) -> S3Result<NodeInfo> {
        let dirs = self.identity.dirs().to_vec();
        let disks = tokio::task::spawn_blocking(move || {
            dirs.iter().map(|d| NodeDiskFormat::read(d)).collect()
        })
        .await
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
        Ok(NodeInfo {
            node_id: self.identity.node_id.clone(),
            deployment_id: self.identity.deployment(),
            disks,
        })
    }

    /// Refuses a request that means another deployment disk than the one at `index`.
    async fn check_disk_id(&self, index: &str, headers: &HeaderMap) -> S3Result<()> {
        let Some(want) = headers.get(DISK_ID_HEADER) else {
            return Ok(());
        };
        let want = want.to_str().map_err(|_| bad("invalid disk id header"))?;
        let dir = self.dir(index)?;
        let i: usize = index.parse().map_err(|_| bad("invalid disk index"))?;
        let cached = self.disk_ids.lock().unwrap_or_else(|p| p.into_inner())[i].clone();
        let have = match cached {
            Some(id) => Some(id),
            None => {
                let read = tokio::task::spawn_blocking(move || NodeDiskFormat::read(&dir))
                    .await
                    .map_err(|e| {
                        S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
                    })?;
                let id = match read {
                    NodeDiskFormat::Formatted { format } => Some(format.disk_id),
                    _ => None,
                };
                self.disk_ids.lock().unwrap_or_else(|p| p.into_inner())[i] = id.clone();
                id
            }
        };
        if have.as_deref() == Some(want) {
            return Ok(());
        }
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("XTesseraWrongDisk".into()),
            format!(
                "disk {index} of this node is {}, not disk {want}",
                have.map_or_else(|| "unformatted".to_owned(), |h| format!("disk {h}"))
            ),
        );
        e.set_status_code(StatusCode::CONFLICT);
        Err(e)
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
        // Shard requests name the disk they mean; formatting names it in its body.
        if let [disk, op, ..] = parts.as_slice()
            && *op != "format"
        {
            self.check_disk_id(disk, &req.headers).await?;
        }
        let method = req.method.clone();
        match (method, parts.as_slice()) {
            (Method::PUT, [disk, "shards", id]) => {
                let disk = self.disk(disk)?;
                let key = parse_shard_id(id).ok_or_else(|| bad("invalid shard id"))?;
                let body = Self::body(&mut req).await?;
                let put = match req.uri.query() {
                    Some("unsynced") => disk.put_unsynced(key, body).await,
                    Some("unsynced&cold") => disk.put_unsynced_cold(key, body).await,
                    _ => disk.put(key, body).await,
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
                let fence = match req.uri.query().and_then(|q| q.strip_prefix("fence=")) {
                    Some(n) => n.parse().map_err(|_| bad("invalid fence"))?,
                    None => 0,
                };
                disk.delete_fenced(key, fence).await.map_err(from_store)?;
                reply(Body::empty())
            }
            (Method::GET, [disk, "shards"]) => {
                let keys = self.disk(disk)?.list().await.map_err(from_store)?;
                let mut text = String::with_capacity(keys.len() * 68);
                for k in keys {
                    text.push_str(&shard_id(&k));
                    text.push('\n');
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
                let disk_id = format.disk_id.clone();
                write_format_once(dir, format).await?;
                if let Ok(i) = disk.parse::<usize>()
                    && let Some(cached) = self
                        .disk_ids
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(i)
                {
                    *cached = Some(disk_id);
                }
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

/// Serves the node protocol, and the unsigned health probes, on `listener` until the task is
/// dropped.
pub async fn serve(
    listener: TcpListener,
    service: S3Service,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let http = Arc::new(hyper_util::server::conn::auto::Builder::new(
        TokioExecutor::new(),
    ));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (service, http, tls) = (service.clone(), http.clone(), tls.clone());
        tokio::spawn(async move {
            let Some(io) = crate::tls::accept(socket, tls.as_ref()).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let service = service.clone();
                async move {
                    // Probes (a container's health check) need no signature; a node that
                    // answers is ready: its disks' health is the gateway's concern.
                    if let Some(probe) = crate::health::answer(&req, || Ok(())) {
                        return Ok(probe);
                    }
                    service.call(req.map(s3s::Body::from)).await
                }
            });
            if let Err(e) = http.serve_connection(TokioIo::new(io), svc).await {
                tracing::debug!(error = %e, "node connection ended with an error");
            }
        });
    }
}
