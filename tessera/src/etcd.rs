//! `serve --etcd`: the metadata lives in etcd, and every gateway given the same etcd and
//! prefix serves the same buckets and objects. One of them, the *leader* (etcd's lease-bound
//! key decides), also runs the background jobs (GC, heal, scanner, multipart expiry, pool
//! moves) and answers the admin API, which the others pass on to it. The leader's commits are
//! fenced on its role, and losing the role ends its run: the gateway serves again as one of
//! the others and campaigns again. A gateway that wins the campaign ends its run the same
//! way and serves again as the leader; its port stays open in between.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::cluster_view::{ClusterView, GatewayEntry};
use gateway::starting::LeaderUrl;
use metastore::MetaStore;
use metastore_etcd::{EtcdStore, GatewayDirectory, Leadership, Member};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ServeConfig;

/// How long etcd may take to answer a call.
const ETCD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a starting gateway waits for etcd to answer at all.
const START_WAIT: Duration = Duration::from_secs(10);
/// The leader's lease: another gateway takes the jobs over at most this long after the leader
/// died (or was cut off from etcd), plus one poll.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// Leadership won by a campaign during a run, for the next run.
pub struct Won {
    store: EtcdStore,
    leadership: Leadership,
    lost: CancellationToken,
    me: Identity,
}

impl Won {
    /// Hands the leadership over at once (the run ended by a signal).
    pub async fn resign(self) {
        self.leadership.resign().await;
    }
}

/// How this gateway shows itself to the others.
#[derive(Clone)]
struct Identity {
    who: String,
    url: Option<String>,
    id: String,
    since: u64,
}

impl Identity {
    fn record(&self, role: &str, jobs: &[&str]) -> String {
        serde_json::to_string(&GatewayRecord {
            v: 1,
            who: self.who.clone(),
            url: self.url.clone(),
            role: role.to_owned(),
            jobs: jobs.iter().map(|j| j.to_string()).collect(),
            since: self.since,
        })
        .unwrap_or_default()
    }
}

/// A gateway's place in the cluster for one run.
pub struct Joined {
    pub listener: TcpListener,
    /// Ends the run: a signal, the lost leadership, or (for the others) won leadership.
    pub shutdown: CancellationToken,
    pub meta: MetaStore,
    pub cluster: Arc<dyn ClusterView>,
    pub role: Role,
}

pub enum Role {
    Leader {
        leadership: Box<Leadership>,
        lost: CancellationToken,
    },
    Other {
        /// Filled when the campaign is won (the run then ends).
        won: Arc<Mutex<Option<Won>>>,
        /// Cancelled when the campaign failed (etcd lost for a whole TTL): the run ends.
        failed: CancellationToken,
        /// Stops the campaign (and its lease's renewals) when the run ends otherwise.
        stop_campaign: CancellationToken,
    },
}

impl Role {
    pub fn leads(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }
}

/// Joins the cluster on `listener`: connects to etcd (answering as a starting gateway
/// meanwhile), then either leads (`won`, or a campaign won at once) or serves as one of the
/// others while campaigning, once the deployment exists. `None` when a signal stopped it
/// first. At start etcd gets a few seconds to answer; a gateway `resuming` after it lost
/// etcd waits for it as long as it takes.
pub async fn join(
    cfg: &ServeConfig,
    listener: TcpListener,
    resuming: bool,
    won: Option<Won>,
    signal: CancellationToken,
) -> Result<Option<Joined>, String> {
    if let Some(won) = won {
        return Ok(Some(lead(cfg, listener, won, signal).await));
    }
    let endpoints = cfg.etcd.join(",");
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let leader_url: LeaderUrl = Default::default();
    let starting = Starting::serve(listener, leader_url.clone(), cfg);
    // etcd and the gateways are often started together: it gets a few seconds to answer.
    let deadline = tokio::time::Instant::now() + START_WAIT;
    let mut logged = false;
    let store = loop {
        match EtcdStore::connect(&cfg.etcd, &cfg.etcd_prefix, ETCD_TIMEOUT).await {
            Ok(store) => break store,
            Err(e) if !resuming && tokio::time::Instant::now() >= deadline => {
                starting.stop().await?;
                return Err(format!("cannot reach etcd at {endpoints}: {e}"));
            }
            Err(e) => {
                if resuming && !logged {
                    warn!(etcd = %endpoints, error = %e, "etcd does not answer; waiting for it");
                    logged = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(300)) => {}
                    () = signal.cancelled() => {
                        starting.stop().await?;
                        return Ok(None);
                    }
                }
            }
        }
    };
    let me = identity(cfg, bound).await;
    info!(etcd = %endpoints, prefix = %cfg.etcd_prefix, "connected to etcd");
    let reachable = Arc::new(AtomicBool::new(true));
    let member = Member {
        id: me.id.clone(),
        value: me.record("gateway", &[]),
        reachable: reachable.clone(),
    };
    let lost = CancellationToken::new();
    let campaign = {
        let (store, lost, leader_url, me) = (
            store.unfenced(),
            lost.clone(),
            leader_url.clone(),
            me.clone(),
        );
        let who = serde_json::to_string(&LeaderRecord {
            v: 1,
            who: me.who.clone(),
            url: me.url.clone(),
        })
        .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            store
                .lead(&who, LEASE_TTL, lost, Some(member), move |holder| {
                    let holder = LeaderRecord::read(holder);
                    let target = holder
                        .url
                        .as_deref()
                        .filter(|u| Some(*u) != me.url.as_deref())
                        .and_then(|u| u.parse().ok());
                    info!(leader = %holder.who, url = ?holder.url, "another gateway leads the background jobs; this one serves requests and passes admin requests on to it");
                    if let Ok(mut current) = leader_url.write() {
                        *current = target;
                    }
                })
                .await
        })
    };
    // Won at once (the first gateway, or the leader is gone), or the deployment exists: the
    // first gateway creates it, alone, before anyone else opens the disks.
    let meta = MetaStore::with_store(store.unfenced(), cfg.gc_grace);
    let mut campaign = campaign;
    loop {
        tokio::select! {
            led = &mut campaign => {
                let listener = starting.stop().await?;
                let (store, leadership) = led
                    .map_err(|e| format!("the campaign failed: {e}"))?
                    .map_err(|e| format!("cannot take part in the cluster: {e}"))?;
                let won = Won { store, leadership, lost, me };
                return Ok(Some(lead(cfg, listener, won, signal).await));
            }
            () = signal.cancelled() => {
                lost.cancel();
                starting.stop().await?;
                info!("stopped while starting");
                return Ok(None);
            }
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                if let Ok(Some(_)) = meta.setting("deployment").await {
                    break;
                }
            }
        }
    }
    let listener = starting.stop().await?;
    let shutdown = signal.child_token();
    let won: Arc<Mutex<Option<Won>>> = Arc::default();
    let failed = CancellationToken::new();
    {
        // The campaign goes on while this gateway serves; its end ends the run.
        let (won, failed, shutdown, lost, me) = (
            won.clone(),
            failed.clone(),
            shutdown.clone(),
            lost.clone(),
            me.clone(),
        );
        tokio::spawn(async move {
            match campaign.await {
                Ok(Ok((store, leadership))) => {
                    if let Ok(mut slot) = won.lock() {
                        *slot = Some(Won {
                            store,
                            leadership,
                            lost,
                            me,
                        });
                    }
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "the campaign for the leadership failed");
                    failed.cancel();
                }
                Err(_) => failed.cancel(),
            }
            shutdown.cancel();
        });
    }
    let cluster = Arc::new(EtcdCluster {
        directory: None,
        reachable,
        id: me.id.clone(),
        leader_url: Some(leader_url),
    });
    Ok(Some(Joined {
        listener,
        shutdown,
        meta,
        cluster,
        role: Role::Other {
            won,
            failed,
            stop_campaign: lost,
        },
    }))
}

/// The port's server while the gateway cannot serve yet (see `gateway::starting`).
struct Starting {
    until: CancellationToken,
    task: tokio::task::JoinHandle<TcpListener>,
}

impl Starting {
    fn serve(listener: TcpListener, leader_url: LeaderUrl, cfg: &ServeConfig) -> Starting {
        let until = CancellationToken::new();
        let task = tokio::spawn(gateway::starting::serve(
            listener,
            until.clone(),
            leader_url,
            cfg.tls.as_ref().map(|certs| certs.acceptor(false)),
        ));
        Starting { until, task }
    }

    async fn stop(self) -> Result<TcpListener, String> {
        self.until.cancel();
        self.task
            .await
            .map_err(|e| format!("the starting server failed: {e}"))
    }
}

/// The run of the leader.
async fn lead(
    cfg: &ServeConfig,
    listener: TcpListener,
    won: Won,
    signal: CancellationToken,
) -> Joined {
    let Won {
        store,
        leadership,
        lost,
        me,
    } = won;
    match &leadership.took_over_from {
        Some(previous) => {
            warn!(previous = %LeaderRecord::read(previous).who, "took over the background jobs as the leader")
        }
        None => info!("this gateway is the leader: it runs the background jobs"),
    }
    let directory = leadership.directory();
    if let Err(e) = directory.announce(&me.record("leader", LEADER_JOBS)).await {
        warn!(error = %e, "cannot announce this gateway as the leader in etcd");
    }
    let cluster = Arc::new(EtcdCluster {
        directory: Some(directory),
        reachable: leadership.etcd_reachable(),
        id: me.id.clone(),
        leader_url: None,
    });
    let shutdown = signal.child_token();
    // Losing the role ends the run as a signal would.
    {
        let (lost, shutdown) = (lost.clone(), shutdown.clone());
        tokio::spawn(async move {
            lost.cancelled().await;
            shutdown.cancel();
        });
    }
    Joined {
        listener,
        shutdown,
        meta: MetaStore::with_store(store, cfg.gc_grace),
        cluster,
        role: Role::Leader {
            leadership: Box::new(leadership),
            lost,
        },
    }
}

/// This gateway's name, URL and id among the cluster's gateways.
async fn identity(cfg: &ServeConfig, bound: SocketAddr) -> Identity {
    let url = match &cfg.advertise_url {
        Some(url) => Some(url.clone()),
        None => derived_url(bound, &cfg.etcd[0], scheme(cfg)).await,
    };
    // What the others show of it: the host (a container's name) first.
    let host = match std::env::var("HOSTNAME") {
        Ok(h) => Some(h),
        Err(_) => tokio::fs::read_to_string("/etc/hostname").await.ok(),
    }
    .map(|h| h.trim().to_owned())
    .filter(|h| !h.is_empty())
    .unwrap_or_else(|| "unknown host".to_owned());
    // Its entry among the cluster's gateways: the URL names it, else host and address.
    let id = match &url {
        Some(u) => u
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_owned(),
        None => format!("{host}-{bound}"),
    };
    Identity {
        who: format!("{host} {bound} (pid {})", std::process::id()),
        url,
        id,
        since: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// The background jobs the leader runs.
const LEADER_JOBS: &[&str] = &["gc", "heal", "scanner", "multipart-expiry"];

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

/// The cluster as a gateway sees it, for `admin info`, readiness, metrics and where admin
/// requests go.
struct EtcdCluster {
    /// The leader's (the others pass admin requests on, so never list the gateways).
    directory: Option<GatewayDirectory>,
    reachable: Arc<AtomicBool>,
    id: String,
    /// Where the leader is (`None`: this gateway leads).
    leader_url: Option<LeaderUrl>,
}

#[async_trait::async_trait]
impl ClusterView for EtcdCluster {
    async fn gateways(&self) -> Result<Vec<GatewayEntry>, String> {
        let Some(directory) = &self.directory else {
            return Err("the gateways are listed by the leader".into());
        };
        let listed = directory.list().await.map_err(|e| e.to_string())?;
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

    fn admin_elsewhere(&self) -> Option<Option<http::Uri>> {
        let url = self.leader_url.as_ref()?;
        Some(url.read().ok().and_then(|u| u.clone()))
    }
}

/// The value of etcd's leader key: which gateway leads, and where the others pass admin
/// requests on to. Versioned; a value that is not this JSON is version 0, plain text naming
/// the gateway (no URL: admin requests to the others get 503).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LeaderRecord {
    v: u32,
    who: String,
    url: Option<String>,
}

impl LeaderRecord {
    fn read(value: &str) -> LeaderRecord {
        match serde_json::from_str::<LeaderRecord>(value) {
            Ok(record) if record.v >= 1 => record,
            _ => LeaderRecord {
                v: 0,
                who: value.to_owned(),
                url: None,
            },
        }
    }
}

/// This gateway's URL for the others when none is given: the bound address, or, bound to
/// all interfaces, the local address that reaches etcd (the network the gateways share);
/// None when there is no such route (admin requests to the others then get 503).
async fn derived_url(bound: SocketAddr, etcd: &str, scheme: &str) -> Option<String> {
    if !bound.ip().is_unspecified() {
        return Some(format!("{scheme}://{bound}"));
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
    Some(format!("{scheme}://{}", SocketAddr::new(ip, bound.port())))
}

/// The scheme the S3 port serves.
fn scheme(cfg: &ServeConfig) -> &'static str {
    if cfg.tls.is_some() { "https" } else { "http" }
}

/// Records the disks' deployment in etcd the first time, and refuses disks of another
/// deployment than the one etcd records afterwards.
pub async fn claim_deployment(opened: &crate::server::Opened) -> Result<(), String> {
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
