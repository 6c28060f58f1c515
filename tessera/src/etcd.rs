//! `serve --etcd`: the metadata lives in etcd, and the gateways given the same etcd and prefix
//! form one cluster in which one gateway is active at a time (etcd's lease-bound key decides).
//! A standby binds its port and answers as one (`gateway::standby`) until the active gateway
//! is gone, then opens the disks and serves. The active gateway's commits are fenced on its
//! role, and losing the role stops it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gateway::cluster_view::{ClusterView, GatewayEntry};
use metastore::MetaStore;
use metastore_etcd::{EtcdStore, GatewayDirectory, Leadership, Member};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ServeConfig;
use crate::server::{Opened, bind};

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
    pub cluster: Arc<dyn ClusterView>,
}

/// Connects to etcd, stands by while another gateway is active, and returns once this one is;
/// `None` when a signal stopped it first. At start etcd gets a few seconds to answer; a
/// gateway `resuming` after it lost its role waits for etcd as long as it takes.
pub async fn become_active(
    cfg: &ServeConfig,
    resuming: bool,
    shutdown: CancellationToken,
) -> Result<Option<Active>, String> {
    let endpoints = cfg.etcd.join(",");
    // The port answers (as a standby: 503 until an active gateway is known) while etcd is
    // being reached.
    let listener = bind(cfg).await?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let standby = CancellationToken::new();
    let active_url: gateway::standby::ActiveUrl = Default::default();
    let standby_task = tokio::spawn(gateway::standby::serve(
        listener,
        standby.clone(),
        active_url.clone(),
    ));
    // etcd and the gateways are often started together: it gets a few seconds to answer.
    let deadline = tokio::time::Instant::now() + START_WAIT;
    let mut logged = false;
    let store = loop {
        match EtcdStore::connect(&cfg.etcd, &cfg.etcd_prefix, ETCD_TIMEOUT).await {
            Ok(store) => break store,
            Err(e) if !resuming && tokio::time::Instant::now() >= deadline => {
                standby.cancel();
                let _ = standby_task.await;
                return Err(format!("cannot reach etcd at {endpoints}: {e}"));
            }
            Err(e) => {
                if resuming && !logged {
                    warn!(etcd = %endpoints, error = %e, "etcd does not answer; waiting for it");
                    logged = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(300)) => {}
                    () = shutdown.cancelled() => {
                        standby.cancel();
                        let _ = standby_task.await;
                        return Ok(None);
                    }
                }
            }
        }
    };
    let lost = CancellationToken::new();
    let url = match &cfg.advertise_url {
        Some(url) => Some(url.clone()),
        None => derived_url(bound, &cfg.etcd[0]).await,
    };
    // What the others show while this one is active: the host (a container's name) first.
    let host = match std::env::var("HOSTNAME") {
        Ok(h) => Some(h),
        Err(_) => tokio::fs::read_to_string("/etc/hostname").await.ok(),
    }
    .map(|h| h.trim().to_owned())
    .filter(|h| !h.is_empty())
    .unwrap_or_else(|| "unknown host".to_owned());
    let me = ActiveRecord {
        v: 1,
        who: format!("{host} {bound} (pid {})", std::process::id()),
        url: url.clone(),
    };
    let who = serde_json::to_string(&me).map_err(|e| e.to_string())?;
    // Its entry among the cluster's gateways: the URL names it, else host and address.
    let id = match &url {
        Some(u) => u.trim_start_matches("http://").to_owned(),
        None => format!("{host}-{bound}"),
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = |role: &str, jobs: &[&str]| GatewayRecord {
        v: 1,
        who: me.who.clone(),
        url: url.clone(),
        role: role.to_owned(),
        jobs: jobs.iter().map(|j| j.to_string()).collect(),
        since,
    };
    let member = Member {
        id: id.clone(),
        value: serde_json::to_string(&record("standby", &[])).map_err(|e| e.to_string())?,
    };
    info!(etcd = %endpoints, prefix = %cfg.etcd_prefix, "connected to etcd; becoming the active gateway");
    let leading = tokio::select! {
        led = store.lead(&who, LEASE_TTL, lost.clone(), Some(member), |holder| {
            let holder = ActiveRecord::read(holder);
            let target = holder.url.as_deref().filter(|u| Some(*u) != url.as_deref()).and_then(|u| u.parse().ok());
            info!(active = %holder.who, url = ?holder.url, "standing by: another gateway is active; passing requests on to it, and taking over when it stops");
            if let Ok(mut current) = active_url.write() {
                *current = target;
            }
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
        Some(previous) => {
            warn!(previous = %ActiveRecord::read(previous).who, "took over as the active gateway")
        }
        None => info!("this gateway is the active one"),
    }
    let directory = leadership.directory();
    let active_record =
        serde_json::to_string(&record("active", ACTIVE_JOBS)).map_err(|e| e.to_string())?;
    if let Err(e) = directory.announce(&active_record).await {
        warn!(error = %e, "cannot announce this gateway as the active one in etcd");
    }
    let cluster = Arc::new(EtcdCluster {
        directory,
        reachable: leadership.etcd_reachable(),
        id,
    });
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
        cluster,
    }))
}

/// The background jobs the active gateway runs (all of them).
const ACTIVE_JOBS: &[&str] = &["gc", "heal", "scanner", "multipart-expiry"];

/// A gateway's entry in etcd's directory of the cluster's gateways (versioned).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct GatewayRecord {
    v: u32,
    who: String,
    url: Option<String>,
    role: String,
    jobs: Vec<String>,
    /// When it started, in seconds since the epoch.
    since: u64,
}

/// The cluster as the active gateway sees it, for `admin info`, readiness and metrics.
struct EtcdCluster {
    directory: GatewayDirectory,
    reachable: Arc<AtomicBool>,
    id: String,
}

#[async_trait::async_trait]
impl ClusterView for EtcdCluster {
    async fn gateways(&self) -> Result<Vec<GatewayEntry>, String> {
        let listed = self.directory.list().await.map_err(|e| e.to_string())?;
        Ok(listed
            .into_iter()
            .map(|(id, value)| {
                let record = serde_json::from_str::<GatewayRecord>(&value).ok();
                GatewayEntry {
                    this: id == self.id,
                    who: record
                        .as_ref()
                        .map_or_else(|| value.clone(), |r| r.who.clone()),
                    url: record.as_ref().and_then(|r| r.url.clone()),
                    role: record
                        .as_ref()
                        .map_or_else(|| "unknown".into(), |r| r.role.clone()),
                    jobs: record.map(|r| r.jobs).unwrap_or_default(),
                    alive: true,
                    id,
                }
            })
            .collect())
    }

    fn etcd_reachable(&self) -> Result<(), String> {
        if self.reachable.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("etcd does not answer (the last lease renewal failed)".into())
        }
    }
}

/// The value of etcd's leader key: which gateway is active, and where the standbys pass
/// requests on to. Versioned; a value that is not this JSON is version 0, plain text naming
/// the gateway (no URL: its standbys answer 503 instead of passing requests on).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ActiveRecord {
    v: u32,
    who: String,
    url: Option<String>,
}

impl ActiveRecord {
    fn read(value: &str) -> ActiveRecord {
        match serde_json::from_str::<ActiveRecord>(value) {
            Ok(record) if record.v >= 1 => record,
            _ => ActiveRecord {
                v: 0,
                who: value.to_owned(),
                url: None,
            },
        }
    }
}

/// This gateway's URL for the others when none is given: the bound address, or, bound to
/// all interfaces, the local address that reaches etcd (the network the gateways share);
/// None when there is no such route (the standbys then answer 503 instead).
async fn derived_url(bound: SocketAddr, etcd: &str) -> Option<String> {
    if !bound.ip().is_unspecified() {
        return Some(format!("http://{bound}"));
    }
    let etcd_host = etcd.parse::<http::Uri>().ok().and_then(|u| {
        u.authority()
            .map(|a| format!("{}:{}", a.host(), a.port_u16().unwrap_or(2379)))
    });
    let local = async {
        let etcd_host = etcd_host?;
        let probe = tokio::net::UdpSocket::bind(if bound.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .await
        .ok()?;
        // Connecting a UDP socket only picks the route; nothing is sent.
        probe.connect(etcd_host).await.ok()?;
        probe.local_addr().ok().map(|a| a.ip())
    };
    let ip = local.await?;
    Some(format!("http://{}", SocketAddr::new(ip, bound.port())))
}

/// Records the disks' deployment in etcd the first time, and refuses disks of another
/// deployment than the one etcd records afterwards.
pub async fn claim_deployment(opened: &Opened) -> Result<(), String> {
    let id = &opened.deployment_id;
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

/// The storage nodes of a cluster on etcd: those given (recorded in etcd by the first gateway
/// to give them), else those recorded, so a gateway joins with only `--etcd`, the cluster
/// secret and the root credentials.
pub async fn node_list(meta: &MetaStore, cfg: &ServeConfig) -> Result<Vec<String>, String> {
    // Once the first pool was decommissioned, the home pool's record names the nodes.
    if cfg.nodes.is_empty() {
        let pools = objects::load_pools(meta)
            .await
            .map_err(|e| format!("cannot read the recorded pools: {e}"))?;
        if let Some(home) = pools.home.filter(|h| *h != 0)
            && let Some(record) = pools.pools.iter().find(|p| p.id == home)
        {
            let (_, urls) = crate::pools::split_specs(&record.disks)?;
            info!(
                pool = home,
                nodes = urls.len(),
                "storage nodes of the home pool, as recorded"
            );
            return Ok(urls);
        }
    }
    let recorded = if cfg.nodes.is_empty() {
        meta.setting(NODES_SETTING).await
    } else {
        let list = serde_json::to_vec(&NodeList {
            v: 1,
            nodes: cfg.nodes.clone(),
        })
        .map_err(|e| e.to_string())?;
        meta.put_setting(NODES_SETTING, list, false).await.map(Some)
    }
    .map_err(|e| format!("cannot read the storage nodes recorded in etcd: {e}"))?;
    let recorded = match recorded {
        Some(bytes) => {
            serde_json::from_slice::<NodeList>(&bytes)
                .map_err(|e| format!("the storage nodes recorded in etcd are unreadable: {e}"))?
                .nodes
        }
        None => Vec::new(),
    };
    if cfg.nodes.is_empty() {
        if recorded.is_empty() && cfg.disks.is_empty() {
            return Err(
                "no storage nodes are recorded in this cluster's etcd yet: give the first \
                        gateway --node URL... (or local directories)"
                    .into(),
            );
        }
        if !recorded.is_empty() {
            info!(nodes = recorded.len(), "storage nodes as recorded in etcd");
        }
        return Ok(recorded);
    }
    if recorded != cfg.nodes {
        warn!(given = ?cfg.nodes, recorded = ?recorded, "--node differs from the nodes recorded in etcd; using the ones given (the disks' formats decide the placement)");
    }
    Ok(cfg.nodes.clone())
}

/// The etcd setting holding the storage node list.
const NODES_SETTING: &str = "storage-nodes";

/// The storage nodes as recorded in etcd (versioned).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NodeList {
    v: u32,
    nodes: Vec<String>,
}
