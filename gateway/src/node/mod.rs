//! Storage nodes: `tessera node DIR...` serves the shards of its directories over HTTP, and
//! [`RemoteNode`] is the [`erasure::ShardStore`] that talks to one of those directories.
//!
//! Every request is SigV4-signed under the cluster secret (`TESSERA_CLUSTER_SECRET`) with
//! aws-sigv4 and verified by s3s on the node (which also refuses requests whose date is more
//! than 15 minutes off, so a captured request cannot be replayed later); the body's SHA-256 is
//! part of the signature and checked against the body. Shard ids are parsed into a chunk hash
//! and an index before anything touches a disk, so no request can name a path.
//!
//! | method | path under `/tessera-node/v1/disks/{disk}/` | does |
//! |---|---|---|
//! | PUT | `shards/{sha256 hex}.{index}` (`?unsynced` for a bulk write) | stores a shard |
//! | GET / DELETE | `shards/{id}` | reads / deletes one |
//! | GET | `shards` | lists them, one id per line |
//! | POST | `quarantine/{id}` | moves one aside |
//! | POST | `sync` | flushes unsynced writes |
//! | GET | `health`, `space` | write probe; free and total bytes (JSON) |
//! | PUT | `format` | writes the disk's deployment format (refused over another disk's) |
//!
//! `GET /tessera-node/v1/info` ([`NodeInfo`]) names the node (its id, kept on its disks; see
//! [`identity`]), its deployment and each disk's deployment format, so a gateway places a
//! node's disks by their recorded positions whatever address the node has today. A request
//! carrying `x-tessera-deployment` (signed) from a deployment other than the one that first
//! claimed the node gets 409. The gateway side is `crate::nodes`.

mod identity;
mod remote;
mod route;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::service::S3Service;
use tokio::net::TcpListener;

pub use identity::NodeIdentity;
pub use remote::{NodeClient, RemoteNode};
pub use route::{
    DEPLOYMENT_HEADER, NODE_ACCESS_KEY, NODE_PREFIX, NODE_ROOT, NodeApi, NodeDiskFormat, NodeInfo,
    node_service,
};

/// `tessera node`: serves `dirs` on `address` until SIGTERM/SIGINT.
pub async fn run_node(
    address: std::net::SocketAddr,
    dirs: Vec<std::path::PathBuf>,
    cluster_secret: String,
) -> Result<(), String> {
    if cluster_secret.len() < 16 {
        return Err("TESSERA_CLUSTER_SECRET must be set, at least 16 characters".into());
    }
    let mut disks: Vec<Arc<dyn erasure::ShardStore>> = Vec::new();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        let store =
            erasure::LocalDiskStore::open(d).map_err(|e| format!("{}: {e}", d.display()))?;
        disks.push(Arc::new(store));
    }
    let identity = Arc::new(NodeIdentity::load_or_create(&dirs)?);
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    println!("tessera node {} - shard storage", env!("CARGO_PKG_VERSION"));
    println!("  endpoint: http://{bound}");
    println!("  node id:  {}", identity.node_id);
    match identity.deployment() {
        Some(d) => println!("  deployment: {d}"),
        None => println!("  deployment: none yet (the first gateway to connect claims this node)"),
    }
    for (i, d) in dirs.iter().enumerate() {
        println!("  disk {i}:   {}", d.display());
    }
    let shutdown = crate::server::shutdown_signal();
    tokio::select! {
        () = serve(listener, node_service(disks, identity, &cluster_secret)) => {}
        () = shutdown => tracing::info!("node stopping"),
    }
    Ok(())
}

/// Serves the node protocol on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, service: S3Service) {
    let http = Arc::new(hyper_util::server::conn::auto::Builder::new(
        TokioExecutor::new(),
    ));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (service, http) = (service.clone(), http.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let service = service.clone();
                async move { service.call(req.map(s3s::Body::from)).await }
            });
            if let Err(e) = http.serve_connection(TokioIo::new(socket), svc).await {
                tracing::debug!(error = %e, "node connection ended with an error");
            }
        });
    }
}
