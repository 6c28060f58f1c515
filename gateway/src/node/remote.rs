//! [`RemoteNode`]: one directory of a `tessera node`, as a [`ShardStore`].

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use erasure::{DiskSpace, Error, Result, ShardKey, ShardStore};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::route::{NODE_ACCESS_KEY, NODE_PREFIX};

/// How long one request may take before the node counts as failing for it.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Extra attempts after a connection failure (every request is idempotent).
const RETRIES: usize = 2;

#[derive(Clone)]
pub struct RemoteNode {
    http: Client<HttpConnector, Full<Bytes>>,
    /// `http://host:port`
    endpoint: String,
    authority: String,
    disk: usize,
    secret: String,
    /// Sent with every request, so the node refuses us if it belongs to another deployment.
    deployment: Option<String>,
}

impl std::fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteNode({})", self.name())
    }
}

fn failure(what: impl std::fmt::Display, kind: std::io::ErrorKind) -> Error {
    Error::Io {
        path: what.to_string().into(),
        source: std::io::Error::new(kind, "remote node request failed"),
    }
}

impl RemoteNode {
    /// Directory `disk` of the node at `endpoint` (`http://host:port`).
    pub fn new(endpoint: &str, disk: usize, cluster_secret: &str) -> Result<Self> {
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| Error::Layout(format!("node address {endpoint:?}: {e}")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| Error::Layout(format!("node address {endpoint:?} has no host")))?
            .to_string();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        Ok(RemoteNode {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            authority,
            disk,
            secret: cluster_secret.to_owned(),
            deployment: None,
        })
    }

    /// Requests carry this deployment id (the node admits only the deployment that claimed it).
    pub fn for_deployment(mut self, deployment_id: &str) -> Self {
        self.deployment = Some(deployment_id.to_owned());
        self
    }

    fn path(&self, rest: &str) -> String {
        format!("{NODE_PREFIX}{}/{rest}", self.disk)
    }

    fn shard_path(&self, dir: &str, key: &ShardKey) -> String {
        self.path(&format!("{dir}/{}.{}", key.chunk.to_hex(), key.index))
    }

    /// Sends one signed request; returns the status and body.
    async fn send(&self, method: Method, path: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        let url = format!("{}{path}", self.endpoint);
        let mut last = None;
        for _ in 0..=RETRIES {
            let mut builder = http::Request::builder()
                .method(method.clone())
                .uri(&url)
                .header(http::header::HOST, &self.authority);
            if let Some(d) = &self.deployment {
                builder = builder.header(super::route::DEPLOYMENT_HEADER, d);
            }
            let mut req = builder
                .body(Full::new(body.clone()))
                .map_err(|e| failure(format!("{url}: {e}"), std::io::ErrorKind::InvalidInput))?;
            crate::signing::sign_request(
                &mut req,
                &url,
                &self.authority,
                NODE_ACCESS_KEY,
                &self.secret,
                &body,
            )
            .map_err(|e| failure(format!("{url}: {e}"), std::io::ErrorKind::InvalidInput))?;
            let attempt = async {
                let resp = self.http.request(req).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, bytes))
            };
            match tokio::time::timeout(TIMEOUT, attempt).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => last = Some(format!("{url}: {e}")),
                Err(_) => {
                    return Err(failure(
                        format!("{url}: no answer within {} s", TIMEOUT.as_secs()),
                        std::io::ErrorKind::TimedOut,
                    ));
                }
            }
        }
        Err(failure(
            last.unwrap_or_default(),
            std::io::ErrorKind::ConnectionRefused,
        ))
    }

    /// Sends and maps the node's answer: 2xx is success, 404 NotFound, 507 storage full.
    async fn call(&self, method: Method, path: &str, body: Bytes) -> Result<Bytes> {
        let (status, bytes) = self.send(method, path, body).await?;
        match status {
            s if s.is_success() => Ok(bytes),
            StatusCode::NOT_FOUND => Err(Error::NotFound),
            StatusCode::CONFLICT => Err(Error::DiskFormat(format!(
                "{}: {}",
                self.name(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ))),
            StatusCode::INSUFFICIENT_STORAGE => Err(failure(
                format!("{}{path}", self.endpoint),
                std::io::ErrorKind::StorageFull,
            )),
            s => Err(Error::Io {
                path: format!("{}{path}", self.endpoint).into(),
                source: std::io::Error::other(format!(
                    "node answered {s}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                )),
            }),
        }
    }
}

#[async_trait]
impl ShardStore for RemoteNode {
    fn name(&self) -> String {
        format!("{}/disk{}", self.endpoint, self.disk)
    }

    async fn put(&self, key: ShardKey, file: Bytes) -> Result<()> {
        self.call(Method::PUT, &self.shard_path("shards", &key), file)
            .await
            .map(drop)
    }

    async fn put_unsynced(&self, key: ShardKey, file: Bytes) -> Result<()> {
        let path = format!("{}?unsynced", self.shard_path("shards", &key));
        self.call(Method::PUT, &path, file).await.map(drop)
    }

    async fn sync(&self) -> Result<()> {
        self.call(Method::POST, &self.path("sync"), Bytes::new())
            .await
            .map(drop)
    }

    async fn get(&self, key: ShardKey) -> Result<Bytes> {
        self.call(Method::GET, &self.shard_path("shards", &key), Bytes::new())
            .await
    }

    async fn delete(&self, key: ShardKey) -> Result<()> {
        self.call(
            Method::DELETE,
            &self.shard_path("shards", &key),
            Bytes::new(),
        )
        .await
        .map(drop)
    }

    async fn list(&self) -> Result<Vec<ShardKey>> {
        let text = self
            .call(Method::GET, &self.path("shards"), Bytes::new())
            .await?;
        String::from_utf8_lossy(&text)
            .lines()
            .map(|id| {
                super::route::parse_shard_id(id)
                    .ok_or_else(|| Error::Corrupt(format!("node listed {id:?}")))
            })
            .collect()
    }

    async fn quarantine(&self, key: ShardKey) -> Result<()> {
        self.call(
            Method::POST,
            &self.shard_path("quarantine", &key),
            Bytes::new(),
        )
        .await
        .map(drop)
    }

    async fn health(&self) -> Result<()> {
        self.call(Method::GET, &self.path("health"), Bytes::new())
            .await
            .map(drop)
    }

    async fn space(&self) -> Result<Option<DiskSpace>> {
        let json = self
            .call(Method::GET, &self.path("space"), Bytes::new())
            .await?;
        serde_json::from_slice(&json).map_err(|e| Error::Corrupt(format!("node space answer: {e}")))
    }
}
