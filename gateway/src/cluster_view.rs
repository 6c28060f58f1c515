//! What a gateway of a cluster on etcd knows of that cluster: the gateways and their roles,
//! and whether etcd answers. The binary (which alone knows etcd) provides it; a gateway on its
//! own has none.

use serde::Serialize;

/// One gateway of the cluster, as `tessera admin info` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayEntry {
    pub id: String,
    /// Host, listening address and process.
    pub who: String,
    /// Where the other gateways reach it.
    pub url: Option<String>,
    /// `leader` (it runs the background jobs and answers the admin API) or `gateway`.
    pub role: String,
    /// The background jobs it runs (GC, heal, scanner, multipart expiry: all on the leader).
    pub jobs: Vec<String>,
    /// Announced in etcd under a live lease: a gateway that dies drops out within its TTL.
    pub alive: bool,
    /// The gateway that answered.
    pub this: bool,
}

#[async_trait::async_trait]
pub trait ClusterView: Send + Sync {
    /// The gateways announced in etcd.
    async fn gateways(&self) -> Result<Vec<GatewayEntry>, String>;
    /// `Err(why)` while etcd cannot be reached (the last lease renewal failed).
    fn etcd_reachable(&self) -> Result<(), String>;
    /// Where admin requests go: `None` when this gateway is the leader and answers them,
    /// else the leader's URL (`Some(None)`: no leader is known right now).
    fn admin_elsewhere(&self) -> Option<Option<http::Uri>>;
}
