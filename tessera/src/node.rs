//! `tessera node DIR...`: a storage node serving the shards of its directories to the
//! gateways (the protocol's server side is `gateway::node`), until SIGTERM/SIGINT.

use std::sync::Arc;

use cluster::NodeIdentity;
use gateway::node::node_service;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::server::shutdown_token;

pub async fn run_node(
    address: std::net::SocketAddr,
    dirs: Vec<std::path::PathBuf>,
    cluster_secret: secrecy::SecretString,
    certs_dir: Option<std::path::PathBuf>,
) -> Result<(), String> {
    if cluster_secret.expose_secret().len() < 16 {
        return Err("TESSERA_CLUSTER_SECRET must be set, at least 16 characters".into());
    }
    let certs = match &certs_dir {
        Some(dir) => Some(gateway::tls::CertsDir::open(dir)?),
        None => None,
    };
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
    let shutdown = shutdown_token();
    println!("tessera node {} - shard storage", env!("CARGO_PKG_VERSION"));
    println!(
        "  endpoint: {}://{bound}",
        if certs.is_some() { "https" } else { "http" }
    );
    println!("  node id:  {}", identity.node_id);
    match identity.deployment() {
        Some(d) => println!("  deployment: {d}"),
        None => println!("  deployment: none yet (the first gateway to connect claims this node)"),
    }
    for (i, d) in dirs.iter().enumerate() {
        println!("  disk {i}:   {}", d.display());
    }
    // Shards travel over HTTP/1.1: one stream per connection suits their large bodies.
    let tls = certs.as_ref().map(|c| c.acceptor(true));
    if let Some(certs) = certs {
        certs.spawn_reloader(shutdown.clone());
    }
    tokio::select! {
        () = gateway::node::serve(listener, node_service(disks, identity, cluster_secret.expose_secret()), tls) => {}
        () = shutdown.cancelled() => tracing::info!("node stopping"),
    }
    Ok(())
}
