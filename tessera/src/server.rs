//! Start-up and shutdown of `tessera serve`: format or verify the disks, open the metastore
//! mirror and the shard stores, start the background work, print the banner, then serve S3
//! (the gateway crate) until SIGINT/SIGTERM.

use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cluster::Disks;
use cluster::nodes::{self, NodeSet};
use erasure::disk_format;
use erasure::{ChunkStore, Pools};
use gateway::{Frontend, FrontendParts};
use metastore::{MetaStore, MirroredKv};
use objects::ObjectService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{CHUNK_SIZE, INLINE_MAX, INLINE_MAX_ETCD, ServeConfig};

use crate::local_meta::{OpenedMeta, open_local_metadata, rejoin_replicas};

/// Everything a running server is made of, opened and checked.
pub struct Opened {
    /// The command line's disks: the home pool's.
    pub disks: Arc<Disks>,
    pub service: Arc<ObjectService>,
    pub meta_replicas: Vec<PathBuf>,
    /// The deployment's id: pool 0's format id, kept when pool 0 is decommissioned.
    pub deployment_id: String,
    /// The embedded metadata's mirror when its replicas are on the home pool's disks (not on
    /// etcd, not in `--meta-dir`): they move when the home pool is decommissioned.
    pub mirror: Option<Arc<MirroredKv>>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

/// Finds the disks (local ones and the nodes'), formats or verifies them, and opens the stores.
/// The metadata is `shared` (on etcd) when given, else mirrored on the local disks or in
/// `--meta-dir`.
pub async fn open(
    cfg: &ServeConfig,
    shared: Option<MetaStore>,
    node_wait: Duration,
) -> Result<Opened, String> {
    let secret = cfg
        .cluster_secret
        .as_ref()
        .map_or("", |s| s.expose_secret());
    let PoolDisks {
        deployment,
        placement,
        nodes: node_set,
    } = find_disks(&cfg.disks, &cfg.nodes, secret, cfg.parity, node_wait, false).await?;
    format_disks(&cfg.disks, &deployment, &placement, node_set.as_ref()).await?;
    let local = cfg.disks.clone();
    let meta_dir = cfg.meta_dir.clone();
    let gc_grace = cfg.gc_grace;
    let accept_stale = cfg.accept_stale_metadata;
    let inline_max = if shared.is_some() {
        INLINE_MAX_ETCD
    } else {
        INLINE_MAX
    };
    let (disks, opened_meta) = blocking(move || {
        let disks = Arc::new(Disks::open(deployment, local, &placement, node_set));
        let opened_meta = match shared {
            Some(meta) => OpenedMeta {
                meta,
                replicas: Vec::new(),
                mirror: None,
                meta_dir_marker: None,
            },
            None => open_local_metadata(&disks, meta_dir, gc_grace, accept_stale)?,
        };
        Ok((disks, opened_meta))
    })
    .await?;
    let recorded = objects::load_pools(&opened_meta.meta)
        .await
        .map_err(|e| format!("cannot read the recorded pools: {e}"))?;
    let (home, deployment_id) = home_pool(&recorded, &disks.deployment.deployment_id)?;
    if let Some((dir, marked)) = &opened_meta.meta_dir_marker
        && *marked != deployment_id
    {
        return Err(format!(
            "metadata directory {} belongs to deployment {marked}, but the disks belong to {deployment_id}",
            dir.display()
        ));
    }
    let shared_meta = !cfg.etcd.is_empty();
    let data = DataOptions {
        master_key: cfg.master_key.clone(),
        previous_master_key: cfg.previous_master_key.clone(),
        compression: cfg.compression,
        lifecycle_day: cfg.lifecycle_day,
    };
    let opened = blocking(move || {
        open_services(
            disks,
            opened_meta,
            inline_max,
            home,
            deployment_id,
            shared_meta,
            data,
        )
    })
    .await?;
    if !cfg.etcd.is_empty() {
        crate::etcd::claim_deployment(&opened).await?;
    }
    Ok(opened)
}

/// A group of disks (pool 0, or an added pool) found and checked, not yet opened.
pub struct PoolDisks {
    pub deployment: disk_format::Deployment,
    pub placement: nodes::Placement,
    pub nodes: Option<NodeSet>,
}

/// Finds a group's disks (local directories, and the disks of the storage nodes at `urls`)
/// and decides its deployment from their formats (see [`disk_format::plan`]); writes nothing.
pub async fn find_disks(
    local: &[PathBuf],
    urls: &[String],
    secret: &str,
    parity: Option<usize>,
    node_wait: Duration,
    new_pool: bool,
) -> Result<PoolDisks, String> {
    let local_found = {
        let local = local.to_vec();
        blocking(move || {
            local
                .iter()
                .map(|d| disk_format::inspect(d).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
    };
    let infos = if urls.is_empty() {
        Vec::new()
    } else {
        let infos = nodes::discover(urls, secret, node_wait).await?;
        for (url, info) in urls.iter().zip(&infos) {
            if let Err(e) = info {
                warn!(node = %url, error = %e, "NODE UNREACHABLE at start");
            }
        }
        infos
    };
    let local_names = local.iter().map(|d| d.display().to_string()).collect();
    let placement = nodes::place(local_found, local_names, urls, &infos)?;
    if new_pool {
        refuse_used_disks(&placement)?;
    }
    let deployment = disk_format::plan(&placement.found, &placement.names, parity, CHUNK_SIZE)
        .map_err(|e| e.to_string())?;
    let node_set = if urls.is_empty() {
        None
    } else {
        Some(NodeSet::new(
            urls,
            secret,
            &deployment,
            local.len(),
            &placement,
            &infos,
        )?)
    };
    Ok(PoolDisks {
        deployment,
        placement,
        nodes: node_set,
    })
}

/// Only new, empty disks make a new pool: anything formatted belongs somewhere already. Checked
/// before planning so the answer names the disk rather than a layout mismatch.
fn refuse_used_disks(placement: &nodes::Placement) -> Result<(), String> {
    use disk_format::Found;
    for (name, f) in placement.names.iter().zip(&placement.found) {
        match f {
            Found::Absent | Found::Empty => {}
            Found::Formatted(f) => {
                return Err(format!(
                    "{name} is already a disk of deployment {}: a new pool needs empty disks",
                    f.deployment_id
                ));
            }
            Found::Unformatted => {
                return Err(format!("{name} holds files: a new pool needs empty disks"));
            }
            Found::Unreadable(why) => return Err(format!("{name}: {why}")),
        }
    }
    Ok(())
}

/// Writes the formats [`find_disks`] decided: every disk of a new group, else the empty ones
/// adopted in place of lost disks.
pub async fn format_disks(
    local: &[PathBuf],
    deployment: &disk_format::Deployment,
    placement: &nodes::Placement,
    node_set: Option<&NodeSet>,
) -> Result<(), String> {
    for i in deployment.to_format() {
        if !deployment.freshly_formatted {
            warn!(disk = %placement.names[i], position = i + 1, "adopting an empty disk as replacement; heal will refill it");
        }
        match (placement.bindings[i], node_set) {
            (Some(b), Some(nodes)) => nodes.put_format(b, &deployment.format_for(i)).await?,
            _ => {
                let (dir, deployment) = (local[i].clone(), deployment.clone());
                blocking(move || {
                    disk_format::format_disk(&dir, &deployment, i).map_err(|e| e.to_string())
                })
                .await?
            }
        }
    }
    Ok(())
}

/// How the object service stores data: keys and compression.
struct DataOptions {
    master_key: Option<Arc<objects::sse::ChunkCipher>>,
    previous_master_key: Option<Arc<objects::sse::ChunkCipher>>,
    compression: bool,
    lifecycle_day: Duration,
}

/// The object service over `disks` and `meta`. Blocking.
fn open_services(
    disks: Arc<Disks>,
    opened_meta: OpenedMeta,
    inline_max: usize,
    home: u32,
    deployment_id: String,
    shared_meta: bool,
    data: DataOptions,
) -> Result<Opened, String> {
    let chunks =
        ChunkStore::new(disks.deployment.layout, disks.stores()).map_err(|e| e.to_string())?;
    let mut service = ObjectService::new(
        opened_meta.meta,
        Arc::new(Pools::with_home(home, Arc::new(chunks))),
        CHUNK_SIZE,
        inline_max,
    );
    if shared_meta {
        service = service.shared_with_other_writers(ORPHAN_MIN_AGE_SHARED);
    }
    if let Some(key) = data.master_key {
        service = service.with_master_key(key);
    }
    if let Some(key) = data.previous_master_key {
        service = service.with_previous_master_key(key);
    }
    service = service
        .with_compression(data.compression)
        .with_lifecycle_day(data.lifecycle_day);
    let service = Arc::new(service);
    Ok(Opened {
        disks,
        service,
        meta_replicas: opened_meta.replicas,
        deployment_id,
        mirror: opened_meta.mirror,
    })
}

/// Which pool the command line's disks (format id `format_id`) are, and the deployment's id:
/// pool 0 and its format id, until pool 0 is decommissioned and another pool is the home.
fn home_pool(recorded: &objects::RecordedPools, format_id: &str) -> Result<(u32, String), String> {
    let record = |id: u32| recorded.pools.iter().find(|p| p.id == id);
    match recorded.home.filter(|h| *h != 0) {
        None => {
            if let Some(p) = recorded
                .pools
                .iter()
                .find(|p| p.id != 0 && p.format_id == format_id)
            {
                return Err(format!(
                    "the disks given are pool {}'s: the command line takes pool 0's disks (the deployment's first), pool {} is opened from its record",
                    p.id, p.id
                ));
            }
            Ok((0, format_id.to_string()))
        }
        Some(home) => {
            let Some(rec) = record(home) else {
                return Err(format!(
                    "the metadata names pool {home} the home pool but has no record of it"
                ));
            };
            if rec.format_id != format_id {
                return Err(format!(
                    "pool 0 was decommissioned and pool {home} is the home pool now: give its disks on the command line, in this order: {}",
                    rec.disks.join(" ")
                ));
            }
            let id = recorded.deployment_id.clone().ok_or_else(|| {
                format!("the metadata names pool {home} the home pool but records no deployment id")
            })?;
            Ok((home, id))
        }
    }
}

/// How often each pool's free space is measured (for placing new chunks).
const SPACE_REFRESH: Duration = Duration::from_secs(10);

/// How long a gateway taking over waits for nodes that do not answer.
const TAKEOVER_NODE_WAIT: Duration = Duration::from_millis(500);
/// With several gateways writing, how long shards must stay unrecorded before the orphan
/// sweep takes them for the remains of a failed upload rather than one in progress.
const ORPHAN_MIN_AGE_SHARED: Duration = Duration::from_secs(3600);
/// How often a gateway on etcd reloads the users another gateway may have changed, besides
/// whenever its etcd watch reports a change.
const USERS_REFRESH: Duration = Duration::from_secs(10);

/// Binds the S3 port.
pub async fn bind(cfg: &ServeConfig) -> Result<TcpListener, String> {
    TcpListener::bind(cfg.address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.address))
}

/// Serves the console's own port (`--console-address`), if any, until `shutdown`.
async fn serve_console_port(
    cfg: &ServeConfig,
    front: &Arc<gateway::Frontend>,
    shutdown: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(address) = cfg.console_address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address} (--console-address): {e}"))?;
    Ok(Some(tokio::spawn(gateway::serve_console(
        listener,
        front.clone(),
        shutdown.clone(),
        cfg.shutdown_timeout,
    ))))
}

/// How a run of the server ended.
enum Ended {
    /// A signal, or a gateway stopped while starting.
    Stopped,
    /// On etcd: the leader lost its role (its lease expired, or etcd was unreachable for
    /// longer than the lease), or another gateway's campaign failed the same way. It serves
    /// again as one of the others once etcd answers.
    LostRole,
    /// On etcd: this gateway won the leadership; it serves again as the leader.
    Won(Box<crate::etcd::Won>),
}

pub async fn serve(cfg: ServeConfig) -> Result<(), String> {
    // One signal watch for the process: a SIGTERM during a run's shutdown, or between runs,
    // stops the process rather than being spent on a token already cancelled.
    let signal = shutdown_token();
    if let Some(ca) = &cfg.node_ca {
        cluster::tls::trust_only(ca)?;
    }
    if let Some(certs) = &cfg.tls {
        certs.clone().spawn_reloader(signal.clone());
    }
    let mut resuming = false;
    let mut won = None;
    // On etcd the port stays open from run to run.
    let mut listener = None;
    loop {
        let (ended, kept) =
            serve_once(cfg.clone(), listener.take(), resuming, won.take(), &signal).await?;
        listener = kept;
        match ended {
            _ if signal.is_cancelled() => return Ok(()),
            Ended::Stopped => return Ok(()),
            Ended::LostRole => {
                warn!(
                    "this gateway lost the leadership of the background jobs, or etcd (its \
                     etcd lease expired or another gateway took over); it serves again as one \
                     of the gateways once etcd answers, and campaigns again"
                );
                resuming = true;
            }
            Ended::Won(w) => {
                won = Some(*w);
                resuming = false;
            }
        }
    }
}

/// One run: on etcd, as the leader or as one of the others, until a signal or a change of
/// role. `resuming`: etcd was lost before, so it is waited for, however long.
async fn serve_once(
    cfg: ServeConfig,
    listener: Option<TcpListener>,
    resuming: bool,
    won: Option<crate::etcd::Won>,
    signal: &CancellationToken,
) -> Result<(Ended, Option<TcpListener>), String> {
    let joined = if cfg.etcd.is_empty() {
        None
    } else {
        let listener = match listener {
            Some(l) => l,
            None => bind(&cfg).await?,
        };
        match crate::etcd::join(&cfg, listener, resuming, won, signal.child_token()).await? {
            Some(joined) => Some(joined),
            None => return Ok((Ended::Stopped, None)),
        }
    };
    let leads = joined.as_ref().is_none_or(|j| j.role.leads());
    // Taking over from another gateway: the nodes are running already (or down), not
    // starting with this one, so those that do not answer at once count as offline and the
    // takeover is not held up by a dead one.
    let node_wait = match &joined {
        Some(j) if resuming || !j.role.leads() => TAKEOVER_NODE_WAIT,
        Some(crate::etcd::Joined {
            role: crate::etcd::Role::Leader { leadership, .. },
            ..
        }) if leadership.took_over_from.is_some() => TAKEOVER_NODE_WAIT,
        _ => nodes::START_WAIT,
    };
    let mut cfg = cfg;
    if let Some(j) = &joined {
        cfg.nodes = crate::etcd::node_list(&j.meta, &cfg).await?;
        if !cfg.nodes.is_empty()
            && cfg
                .cluster_secret
                .as_ref()
                .is_none_or(|s| s.expose_secret().len() < 16)
        {
            return Err(
                "this cluster's storage nodes need TESSERA_CLUSTER_SECRET (or \
                        cluster_secret in the config file), at least 16 characters, the same \
                        on every node"
                    .into(),
            );
        }
    }
    let shared = joined.as_ref().map(|j| j.meta.clone());
    let opened = open(&cfg, shared, node_wait).await?;
    let background_stop = CancellationToken::new();
    let pools = crate::pools::ServerPools::new(
        opened.service.clone(),
        crate::pools::ServerPoolsConfig {
            secret: cfg
                .cluster_secret
                .clone()
                .unwrap_or_else(|| SecretString::from("")),
            disk_check_interval: cfg.disk_check_interval,
            stop: background_stop.clone(),
            deployment_id: opened.deployment_id.clone(),
            mirror: opened.mirror.clone(),
            home: (opened.service.pools().home(), opened.disks.clone()),
        },
    );
    pools.open_recorded(node_wait).await?;
    let mut background = Vec::new();
    let notifier = Arc::new(gateway::notify::Notifier::new(
        cfg.notify_webhooks.clone(),
        cfg.region.clone(),
        cfg.notify_queue_limit,
    )?);
    if leads {
        // Event notifications are delivered by the leader alone (every gateway queues).
        background.extend(notifier.spawn_delivery(opened.service.clone(), background_stop.clone()));
        // Off the start-up path: a node that hangs must not keep a new leader from serving.
        // The deletes of the jobs below carry the token anyway; announcing it only makes
        // the disks refuse a deposed leader sooner.
        let service = opened.service.clone();
        background.push(tokio::spawn(async move {
            service.announce_fence(Duration::from_secs(5)).await;
        }));
        // A rebalance or decommission a restart (or a takeover) interrupted goes on.
        opened.service.spawn_move_job();
        let gc_interval =
            (cfg.gc_grace / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
        background.push(opened.service.spawn_gc(gc_interval));
        let expiry_interval =
            (cfg.multipart_expiry / 4).clamp(Duration::from_millis(500), Duration::from_secs(3600));
        background.push(
            opened
                .service
                .spawn_upload_expiry(cfg.multipart_expiry, expiry_interval),
        );
        background.extend(opened.service.spawn_healers(cfg.scan));
        // Rules count in days: applying them every lifecycle hour is plenty.
        let lifecycle_interval = (cfg.lifecycle_day / 24).max(Duration::from_secs(1));
        background.push(opened.service.spawn_lifecycle(lifecycle_interval));
    }
    {
        // New chunks are placed by free space: keep each pool's figure fresh.
        let pools = opened.service.pools().clone();
        background.push(tokio::spawn(async move {
            loop {
                pools.refresh_space().await;
                tokio::time::sleep(SPACE_REFRESH).await;
            }
        }));
    }
    {
        // A disk coming (back) online: retry the heal queue and refill it with a full pass
        // (on the leader; the others only follow the disks' state).
        let service = Arc::downgrade(&opened.service);
        if let Some(mirror) = opened.mirror.clone() {
            background.push(crate::local_meta::spawn_marks(
                mirror,
                opened.disks.clone(),
                background_stop.clone(),
            ));
        }
        let replicas = opened
            .mirror
            .clone()
            .map(|mirror| (mirror, Arc::downgrade(&opened.disks)));
        background.push(opened.disks.spawn_monitor(
            cfg.disk_check_interval,
            background_stop.clone(),
            move || {
                if leads && let Some(service) = service.upgrade() {
                    service.wake_heal_queue();
                    service.request_heal_pass();
                }
                if let Some((mirror, disks)) = &replicas
                    && let Some(disks) = disks.upgrade()
                {
                    let mirror = mirror.clone();
                    tokio::task::spawn_blocking(move || rejoin_replicas(&mirror, &disks));
                }
            },
        ));
    }
    // Disks adopted or missing at start need a full pass: what they lack is in no queue.
    // Shards of uploads a crash interrupted are swept now; later passes sweep again.
    let d = &opened.disks.deployment;
    if leads && (!d.offline.is_empty() || !d.adopted.is_empty()) {
        opened.service.request_heal_pass();
    }
    if leads {
        // In `background`, so it stops with this run: a gateway that lost its role must not
        // go on deleting shards another gateway may be about to reference.
        let service = opened.service.clone();
        background.push(tokio::spawn(async move {
            if let Err(e) = service.sweep_orphans(true).await {
                warn!(error = %e, "start-up orphan sweep failed");
            }
        }));
    }

    let meta = opened.service.meta().clone();
    let sealer = iam::load_data_key(
        &meta,
        &opened.deployment_id,
        cfg.credentials.secret_key.expose_secret(),
        cfg.previous_root_password
            .as_ref()
            .map(|p| p.expose_secret()),
    )
    .await;
    if let Err(e) = &sealer {
        tracing::error!("users are locked (root still works): {e}");
    }
    let users = Arc::new(
        iam::Users::load(meta, sealer, cfg.credentials.access_key.clone())
            .await
            .map_err(|e| format!("cannot load the users: {e}"))?,
    );
    if joined.is_some() {
        // Users changed through another gateway reach this one at once (a watch).
        let changes = opened.service.meta().users_changed();
        background.push(users.spawn_refresh(USERS_REFRESH, changes));
    }
    let front = Frontend::new(FrontendParts {
        service: opened.service.clone(),
        disks: opened.disks.clone(),
        users,
        region: cfg.region.clone(),
        root_access_key: cfg.credentials.access_key.clone(),
        root_secret_key: cfg.credentials.secret_key.clone(),
        domains: cfg.domains.clone(),
        metrics_token: cfg.metrics_token.clone(),
        deployment_id: opened.deployment_id.clone(),
        meta_replicas: opened
            .meta_replicas
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        cluster: joined.as_ref().map(|j| j.cluster.clone()),
        pool_manager: Some(pools),
        trusted_proxies: cfg.trusted_proxies.clone(),
        tls: cfg.tls.clone(),
        allow_insecure_sse_c: cfg.allow_insecure_sse_c,
        auth_failures_per_minute: cfg.auth_failure_limit,
        notifier,
        console: cfg.console,
    })?;

    let kept = match joined {
        Some(joined) => {
            let bound = joined.listener.local_addr().map_err(|e| e.to_string())?;
            let console = serve_console_port(&cfg, &front, &joined.shutdown).await?;
            crate::banner::print(&cfg, &opened, bound, leads);
            let listener = gateway::serve_and_keep(
                joined.listener,
                front,
                joined.shutdown,
                cfg.shutdown_timeout,
            )
            .await;
            if let Some(task) = console {
                let _ = task.await;
            }
            Some((listener, joined.role))
        }
        None => {
            let listener = bind(&cfg).await?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            // Before the banner: whoever reads it may signal at once.
            let shutdown = signal.child_token();
            let console = serve_console_port(&cfg, &front, &shutdown).await?;
            crate::banner::print(&cfg, &opened, bound, leads);
            gateway::serve(listener, front, shutdown, cfg.shutdown_timeout).await;
            if let Some(task) = console {
                let _ = task.await;
            }
            None
        }
    };
    // Metadata writes are synced as they commit; the stores close when the last reference
    // goes (here, unless a request outlived the limit).
    // Background work stops at a safe point: everything it does is either committed in one
    // metadata write or found again by the next start's sweeps.
    background_stop.cancel();
    opened.service.halt_move_job();
    for task in &background {
        task.abort();
    }
    for task in background {
        let _ = task.await;
    }
    if let Some(mirror) = opened.mirror.clone() {
        // The last commit this run made, for the next start's check.
        let disks = opened.disks.clone();
        let _ =
            tokio::task::spawn_blocking(move || crate::local_meta::write_marks(&disks, &mirror))
                .await;
    }
    drop(opened);
    let Some((listener, role)) = kept else {
        info!("stopped");
        return Ok((Ended::Stopped, None));
    };
    let ended = match role {
        crate::etcd::Role::Leader { leadership, lost } => {
            if lost.is_cancelled() {
                Ended::LostRole
            } else {
                // Handing the role over now lets another gateway take over at once, not
                // after the TTL.
                leadership.resign().await;
                Ended::Stopped
            }
        }
        crate::etcd::Role::Other {
            won,
            failed,
            stop_campaign,
        } => {
            let won = won.lock().ok().and_then(|mut w| w.take());
            match won {
                Some(w) if !signal.is_cancelled() => Ended::Won(Box::new(w)),
                Some(w) => {
                    w.resign().await;
                    Ended::Stopped
                }
                None if failed.is_cancelled() => Ended::LostRole,
                None => {
                    stop_campaign.cancel();
                    Ended::Stopped
                }
            }
        }
    };
    if matches!(ended, Ended::Stopped) {
        info!("stopped");
        return Ok((ended, None));
    }
    Ok((ended, Some(listener)))
}

/// A token cancelled at the first SIGINT or SIGTERM. The handlers are registered before this
/// returns, so a signal that follows is not lost to the default action.
pub fn shutdown_token() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    let cancel = token.clone();
    tokio::spawn(async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                cancel.cancel();
            }
            _ => warn!("cannot listen for shutdown signals; stop the server with SIGKILL"),
        }
    });
    token
}
