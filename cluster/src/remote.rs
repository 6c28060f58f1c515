//! [`RemoteNode`]: one directory of a `tessera node`, as a [`ShardStore`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use erasure::disk_format::DiskFormat;
use erasure::{DiskSpace, Error, Result, ShardKey, ShardStore};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use secrecy::{ExposeSecret, SecretString};

use crate::signing::Payload;

use crate::protocol::{
    NODE_ACCESS_KEY, NODE_PREFIX, NODE_ROOT, NodeInfo, parse_shard_id, shard_id,
};

/// How long one request may take before the node counts as failing for it.
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Extra attempts after a connection failure (every request is idempotent).
const RETRIES: usize = 2;

/// The connection to one node: its endpoint, a pooled HTTP client and the signing secret.
/// Every [`RemoteNode`] of the node shares it, so they share the connection pool.
#[derive(Clone)]
pub struct NodeClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `http://host:port` or `https://host:port`
    endpoint: String,
    authority: String,
    secret: SecretString,
    /// Sent with every request, so the node refuses us if it belongs to another deployment.
    deployment: Option<String>,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeClient({})", self.endpoint)
    }
}

/// One directory of a node, as a [`ShardStore`].
#[derive(Clone)]
pub struct RemoteNode {
    client: Arc<NodeClient>,
    disk: usize,
    /// The deployment disk this store means; the node refuses requests for another.
    disk_id: Option<String>,
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

impl NodeClient {
    /// A client for the node at `endpoint` (`http://host:port`, or `https://` trusting
    /// [`crate::tls::client_config`]'s CAs); requests name `deployment`
    /// when given (the node admits only the deployment that claimed it).
    pub fn new(endpoint: &str, cluster_secret: &str, deployment: Option<&str>) -> Result<Self> {
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| Error::Layout(format!("node address {endpoint:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(Error::Layout(format!(
                "node address {endpoint:?}: expected http://HOST:PORT or https://HOST:PORT"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| Error::Layout(format!("node address {endpoint:?} has no host")))?
            .to_string();
        let connector = crate::tls::connector(CONNECT_TIMEOUT);
        Ok(NodeClient {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .http1_read_buf_exact_size(256 << 10)
                .build(connector),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            authority,
            secret: SecretString::from(cluster_secret),
            deployment: deployment.map(str::to_owned),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Who the node is and what its disks hold. `limit` bounds the whole exchange.
    pub async fn info(&self, limit: Duration) -> Result<NodeInfo> {
        let url = format!("{}{NODE_ROOT}info", self.endpoint);
        let (status, body) = self
            .send(Method::GET, &url, Bytes::new(), None, limit, 0)
            .await?;
        let body = self.check(status, body, &url)?;
        serde_json::from_slice(&body).map_err(|e| Error::Corrupt(format!("{url}: {e}")))
    }

    /// Writes the deployment format of the node's disk `disk`.
    pub async fn put_format(&self, disk: usize, format: &DiskFormat) -> Result<()> {
        let url = format!("{}{NODE_PREFIX}{disk}/format", self.endpoint);
        let json = serde_json::to_vec(format).map_err(|e| Error::Corrupt(e.to_string()))?;
        let (status, body) = self
            .send(Method::PUT, &url, Bytes::from(json), None, TIMEOUT, RETRIES)
            .await?;
        self.check(status, body, &url).map(drop)
    }

    /// Sends one signed request to `url` (naming the disk it means, when given), retrying
    /// connection failures; returns the status and body.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Bytes,
        disk_id: Option<&str>,
        limit: Duration,
        retries: usize,
    ) -> Result<(StatusCode, Bytes)> {
        let mut last = None;
        for _ in 0..=retries {
            let mut builder = http::Request::builder()
                .method(method.clone())
                .uri(url)
                .header(http::header::HOST, &self.authority);
            if let Some(d) = &self.deployment {
                builder = builder.header(crate::protocol::DEPLOYMENT_HEADER, d);
            }
            if let Some(id) = disk_id {
                builder = builder.header(crate::protocol::DISK_ID_HEADER, id);
            }
            let mut req = builder
                .body(Full::new(body.clone()))
                .map_err(|e| failure(format!("{url}: {e}"), std::io::ErrorKind::InvalidInput))?;
            crate::signing::sign_request(
                &mut req,
                url,
                &self.authority,
                NODE_ACCESS_KEY,
                self.secret.expose_secret(),
                if body.is_empty() {
                    Payload::Sha256(&[])
                } else {
                    Payload::Blake3(&body)
                },
            )
            .map_err(|e| failure(format!("{url}: {e}"), std::io::ErrorKind::InvalidInput))?;
            let attempt = async {
                let resp = self.http.request(req).await?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, bytes))
            };
            match tokio::time::timeout(limit, attempt).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => last = Some(format!("{url}: {}", error_chain(&*e))),
                Err(_) => {
                    return Err(failure(
                        format!("{url}: no answer within {} ms", limit.as_millis()),
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

    /// Maps the node's answer: 2xx is success, 404 NotFound, 409 another deployment's node or
    /// disk, 412 a delete refused for its fencing token, 507 storage full.
    fn check(&self, status: StatusCode, bytes: Bytes, url: &str) -> Result<Bytes> {
        match status {
            s if s.is_success() => Ok(bytes),
            StatusCode::NOT_FOUND => Err(Error::NotFound),
            StatusCode::CONFLICT => Err(Error::DiskFormat(format!(
                "{}: {}",
                self.endpoint,
                node_message(&bytes)
            ))),
            StatusCode::PRECONDITION_FAILED => {
                Err(Error::Fenced(format!("{url}: {}", node_message(&bytes))))
            }
            StatusCode::INSUFFICIENT_STORAGE => Err(failure(url, std::io::ErrorKind::StorageFull)),
            s => Err(Error::Io {
                path: url.into(),
                source: std::io::Error::other(format!(
                    "node answered {s}: {}",
                    node_message(&bytes)
                )),
            }),
        }
    }
}

/// The `<Message>` of a node's S3-style error body, else the start of the body.
fn node_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(600)]);
    match (text.find("<Message>"), text.find("</Message>")) {
        (Some(a), Some(b)) if a + 9 <= b => text[a + 9..b].to_owned(),
        _ => text.into_owned(),
    }
}

/// An error with its causes ("connection refused" sits a few sources down in hyper's errors).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl RemoteNode {
    /// Directory `disk` of the node at `endpoint` (`http://host:port`), with its own client.
    pub fn new(endpoint: &str, disk: usize, cluster_secret: &str) -> Result<Self> {
        Ok(RemoteNode {
            client: Arc::new(NodeClient::new(endpoint, cluster_secret, None)?),
            disk,
            disk_id: None,
        })
    }

    /// Directory `disk` of the node `client` talks to.
    pub fn on(client: Arc<NodeClient>, disk: usize) -> Self {
        RemoteNode {
            client,
            disk,
            disk_id: None,
        }
    }

    /// Requests name this deployment disk: the node refuses them when its directory `disk`
    /// is another disk (a node that came back on another node's address, say).
    pub fn expecting(mut self, disk_id: &str) -> Self {
        self.disk_id = Some(disk_id.to_owned());
        self
    }

    /// Requests carry this deployment id (the node admits only the deployment that claimed it).
    pub fn for_deployment(self, deployment_id: &str) -> Self {
        let mut client = (*self.client).clone();
        client.deployment = Some(deployment_id.to_owned());
        RemoteNode {
            client: Arc::new(client),
            ..self
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("{NODE_PREFIX}{}/{rest}", self.disk)
    }

    fn shard_path(&self, dir: &str, key: &ShardKey) -> String {
        self.path(&format!("{dir}/{}", shard_id(key)))
    }

    async fn call(&self, method: Method, path: &str, body: Bytes) -> Result<Bytes> {
        let url = format!("{}{path}", self.client.endpoint);
        let (status, bytes) = self
            .client
            .send(
                method,
                &url,
                body,
                self.disk_id.as_deref(),
                TIMEOUT,
                RETRIES,
            )
            .await?;
        self.client.check(status, bytes, &url)
    }
}

#[async_trait]
impl ShardStore for RemoteNode {
    fn name(&self) -> String {
        format!("{}/disk{}", self.client.endpoint, self.disk)
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

    async fn put_unsynced_cold(&self, key: ShardKey, file: Bytes) -> Result<()> {
        // A node from before `cold` reads this as a durable put: slower, never less safe.
        let path = format!("{}?unsynced&cold", self.shard_path("shards", &key));
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

    async fn delete_fenced(&self, key: ShardKey, fence: u64) -> Result<()> {
        let mut path = self.shard_path("shards", &key);
        // In the query, so the request's signature covers it.
        if fence > 0 {
            path.push_str(&format!("?fence={fence}"));
        }
        self.call(Method::DELETE, &path, Bytes::new())
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
                parse_shard_id(id).ok_or_else(|| Error::Corrupt(format!("node listed {id:?}")))
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
