//! `serve --etcd`: the metadata lives in etcd, and the gateways given the same etcd and prefix
//! form one cluster in which one gateway is active at a time (etcd's lease-bound key decides).
//! A standby binds its port and answers as one (`gateway::standby`) until the active gateway
//! is gone, then opens the disks and serves. The active gateway's commits are fenced on its
//! role, and losing the role stops it.

use std::time::Duration;

use metastore::MetaStore;
use metastore_etcd::{EtcdStore, Leadership};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ServeConfig;
use crate::server::{Opened, bind, shutdown_token};

/// How long etcd may take to answer a call.
const ETCD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a starting gateway waits for etcd to answer at all.
const START_WAIT: Duration = Duration::from_secs(10);
/// The active gateway's lease: a standby takes over at most this long after the active one
/// died (or was cut off from etcd), plus one poll.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// An active gateway: its port, its stop signal (a signal, or the lost role), its metadata.
pub struct Active {
    pub listener: TcpListener,
    pub shutdown: CancellationToken,
    pub meta: MetaStore,
    pub leadership: Leadership,
    pub lost: CancellationToken,
}

/// Connects to etcd, stands by while another gateway is active, and returns once this one is;
/// `None` when a signal stopped it first.
pub async fn become_active(cfg: &ServeConfig) -> Result<Option<Active>, String> {
    let endpoints = cfg.etcd.join(",");
    // etcd and the gateways are often started together: it gets a few seconds to answer.
    let deadline = tokio::time::Instant::now() + START_WAIT;
    let store = loop {
        match EtcdStore::connect(&cfg.etcd, &cfg.etcd_prefix, ETCD_TIMEOUT).await {
            Ok(store) => break store,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("cannot reach etcd at {endpoints}: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    let listener = bind(cfg).await?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let shutdown = shutdown_token();
    let standby = CancellationToken::new();
    let standby_task = tokio::spawn(gateway::standby::serve(listener, standby.clone()));
    let lost = CancellationToken::new();
    let who = format!("{bound} (pid {})", std::process::id());
    info!(etcd = %endpoints, prefix = %cfg.etcd_prefix, "connected to etcd; becoming the active gateway");
    let leading = tokio::select! {
        led = store.lead(&who, LEASE_TTL, lost.clone(), |holder| {
            info!(active = holder, "standing by: another gateway is active; taking over when it stops");
        }) => led,
        () = shutdown.cancelled() => {
            standby.cancel();
            let _ = standby_task.await;
            info!("stopped while standing by");
            return Ok(None);
        }
    };
    standby.cancel();
    let listener = standby_task
        .await
        .map_err(|e| format!("standby server failed: {e}"))?;
    let (store, leadership) =
        leading.map_err(|e| format!("cannot become the active gateway: {e}"))?;
    match &leadership.took_over_from {
        Some(previous) => warn!(previous = %previous, "took over as the active gateway"),
        None => info!("this gateway is the active one"),
    }
    // Losing the role stops the server as a signal would.
    {
        let (lost, shutdown) = (lost.clone(), shutdown.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            shutdown.cancel();
        });
    }
    Ok(Some(Active {
        listener,
        shutdown,
        meta: MetaStore::with_store(store, cfg.gc_grace),
        leadership,
        lost,
    }))
}

/// Records the disks' deployment in etcd the first time, and refuses disks of another
/// deployment than the one etcd records afterwards.
pub async fn claim_deployment(opened: &Opened) -> Result<(), String> {
    let id = &opened.disks.deployment.deployment_id;
    let stored = opened
        .service
        .meta()
        .put_setting("deployment", id.as_bytes().to_vec(), false)
        .await
        .map_err(|e| format!("cannot record the deployment in etcd: {e}"))?;
    if stored != id.as_bytes() {
        return Err(format!(
            "this etcd prefix belongs to deployment {}, but the disks belong to {id}: give the \
             disks (or nodes) of that deployment, or another --etcd-prefix",
            String::from_utf8_lossy(&stored)
        ));
    }
    Ok(())
}
