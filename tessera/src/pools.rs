//! Pools added to a running deployment (`tessera admin pool add`): their disks are found and
//! formatted the same way as the first pool's, recorded in the metadata, opened at every
//! start, and watched by their own disk monitor. Also the server's part of decommissioning the
//! home pool (the command line's disks): the embedded metadata's replicas move to the next
//! home's disks.

use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::{DiskInfo, Disks};
use erasure::{ChunkStore, PoolState};
use gateway::pool_manager::PoolManager;
use metastore::{MirroredKv, RocksKv};
use objects::{HomeHandover, ObjectService, PoolRecord, RecordedState};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::local_meta::replica_paths;
use crate::server::{find_disks, format_disks};

/// How long `pool add` waits for new storage nodes to answer.
const NODE_ADD_WAIT: Duration = Duration::from_secs(5);

pub struct ServerPools {
    service: Arc<ObjectService>,
    /// The disks of each pool this process opened, the home pool's included.
    open: Mutex<BTreeMap<u32, (Arc<Disks>, CancellationToken)>>,
    secret: SecretString,
    disk_check_interval: Duration,
    /// Cancelled at shutdown: stops every pool's disk monitor.
    stop: CancellationToken,
    adding: tokio::sync::Mutex<()>,
    deployment_id: String,
    /// The embedded metadata's mirror when its replicas are on the home pool's disks.
    mirror: Option<Arc<MirroredKv>>,
}

/// What [`ServerPools`] is made of, besides the object service.
pub struct ServerPoolsConfig {
    pub secret: SecretString,
    pub disk_check_interval: Duration,
    pub stop: CancellationToken,
    pub deployment_id: String,
    pub mirror: Option<Arc<MirroredKv>>,
    /// The home pool's id and disks (the command line's).
    pub home: (u32, Arc<Disks>),
}

/// Splits SPECs into local directories and storage node URLs (after ellipsis expansion).
pub(crate) fn split_specs(specs: &[String]) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    let (mut dirs, mut urls) = (Vec::new(), Vec::new());
    for spec in specs {
        for one in crate::config::expand_ellipsis(spec)? {
            if one.starts_with("http://") || one.starts_with("https://") {
                urls.push(one);
            } else if one.starts_with('/') {
                dirs.push(PathBuf::from(one));
            } else {
                return Err(format!(
                    "{one:?} is neither an absolute directory nor a storage node URL"
                ));
            }
        }
    }
    Ok((dirs, urls))
}

impl ServerPools {
    pub fn new(service: Arc<ObjectService>, cfg: ServerPoolsConfig) -> Arc<Self> {
        let (home, home_disks) = cfg.home;
        let open = BTreeMap::from([(home, (home_disks, cfg.stop.child_token()))]);
        let pools = Arc::new(ServerPools {
            service: service.clone(),
            open: Mutex::new(open),
            secret: cfg.secret,
            disk_check_interval: cfg.disk_check_interval,
            stop: cfg.stop,
            adding: tokio::sync::Mutex::new(()),
            deployment_id: cfg.deployment_id,
            mirror: cfg.mirror,
        });
        service.set_home_handover(pools.clone());
        pools
    }

    fn open_pools(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<u32, (Arc<Disks>, CancellationToken)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens every recorded pool that is not retired (at start); a pool whose disks cannot
    /// be opened stops the start, as pool 0's would.
    pub async fn open_recorded(self: &Arc<Self>, node_wait: Duration) -> Result<(), String> {
        let records = self
            .service
            .pool_records()
            .await
            .map_err(|e| format!("cannot read the recorded pools: {e}"))?;
        for r in records {
            let state = match r.state {
                RecordedState::Retired => continue,
                RecordedState::Draining => PoolState::Draining,
                RecordedState::Active => PoolState::Active,
            };
            if r.id == self.service.pools().home() {
                self.service.pools().set_state(r.id, state);
                continue;
            }
            if r.id == 0 {
                continue; // pool 0 before it was recorded retired: not a home pool any more
            }
            let disks = self.open_pool(&r, node_wait).await?;
            info!(pool = r.id, disks = r.disks.len(), state = ?r.state, "pool opened");
            self.put_in_service(r.id, disks, state)?;
        }
        Ok(())
    }

    /// Finds, checks and opens a recorded pool's disks.
    async fn open_pool(&self, r: &PoolRecord, node_wait: Duration) -> Result<Arc<Disks>, String> {
        let (dirs, urls) = split_specs(&r.disks)?;
        let found = find_disks(
            &dirs,
            &urls,
            self.secret.expose_secret(),
            Some(r.parity),
            node_wait,
            false,
        )
        .await
        .map_err(|e| format!("pool {}: {e}", r.id))?;
        if found.deployment.deployment_id != r.format_id {
            return Err(format!(
                "pool {}: its disks carry format id {}, the deployment recorded {}: these are not the pool's disks",
                r.id, found.deployment.deployment_id, r.format_id
            ));
        }
        format_disks(
            &dirs,
            &found.deployment,
            &found.placement,
            found.nodes.as_ref(),
        )
        .await?;
        self.open_disks(found, dirs).await
    }

    async fn open_disks(
        &self,
        found: crate::server::PoolDisks,
        dirs: Vec<PathBuf>,
    ) -> Result<Arc<Disks>, String> {
        tokio::task::spawn_blocking(move || {
            Arc::new(Disks::open(
                found.deployment,
                dirs,
                &found.placement,
                found.nodes,
            ))
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// Puts an opened pool into the object service and starts its disk monitor, which ends
    /// at shutdown or once the pool is retired.
    fn put_in_service(&self, id: u32, disks: Arc<Disks>, state: PoolState) -> Result<(), String> {
        let store =
            ChunkStore::new(disks.deployment.layout, disks.stores()).map_err(|e| e.to_string())?;
        let pool = self.service.pools().add(id, Arc::new(store), state);
        let token = self.stop.child_token();
        let service = Arc::downgrade(&self.service);
        disks.spawn_monitor(self.disk_check_interval, token.clone(), move || {
            if let Some(service) = service.upgrade() {
                service.wake_heal_queue();
                service.request_heal_pass();
            }
        });
        {
            // The monitor stops when the pool leaves service (decommissioned).
            let (token, pools) = (token.clone(), Arc::downgrade(self.service.pools()));
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = token.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                    match pools.upgrade() {
                        Some(p) if p.get(id).is_some() => {}
                        _ => {
                            token.cancel();
                            return;
                        }
                    }
                }
            });
        }
        let pool_ref = pool.clone();
        tokio::spawn(async move { pool_ref.refresh_space().await });
        self.open_pools().insert(id, (disks, token));
        Ok(())
    }
}

#[async_trait::async_trait]
impl PoolManager for ServerPools {
    async fn add_pool(&self, specs: Vec<String>, parity: Option<usize>) -> Result<u32, String> {
        let _one_at_a_time = self.adding.lock().await;
        let (dirs, urls) = split_specs(&specs)?;
        if !urls.is_empty() && self.secret.expose_secret().len() < 16 {
            return Err(
                "storage nodes need TESSERA_CLUSTER_SECRET (at least 16 characters) on this gateway"
                    .into(),
            );
        }
        let found = find_disks(
            &dirs,
            &urls,
            self.secret.expose_secret(),
            parity,
            NODE_ADD_WAIT,
            true,
        )
        .await?;
        if !found.deployment.freshly_formatted {
            return Err("the new disks could not be formatted as a new pool".into());
        }
        format_disks(
            &dirs,
            &found.deployment,
            &found.placement,
            found.nodes.as_ref(),
        )
        .await?;
        let format_id = found.deployment.deployment_id.clone();
        let layout = found.deployment.layout;
        let disks = self.open_disks(found, dirs).await?;
        let id = self
            .service
            .record_pool(specs.clone(), layout.parity, format_id)
            .await
            .map_err(|e| format!("cannot record the new pool: {e}"))?;
        self.put_in_service(id, disks, PoolState::Active)?;
        info!(pool = id, disks = ?specs, layout = %layout, "pool added; new chunks now go to the pool with the most free space");
        Ok(id)
    }

    async fn pool_disks(&self, id: u32) -> Option<Vec<DiskInfo>> {
        let disks = self.open_pools().get(&id).map(|(d, _)| d.clone())?;
        Some(disks.info().await)
    }
}

#[async_trait::async_trait]
impl HomeHandover for ServerPools {
    fn deployment_id(&self) -> String {
        self.deployment_id.clone()
    }

    fn next_home(&self, from: u32) -> Result<u32, String> {
        let open = self.open_pools();
        let candidates = self
            .service
            .pools()
            .list()
            .into_iter()
            .filter(|p| p.id != from && p.state() == PoolState::Active);
        for p in candidates {
            let Some((disks, _)) = open.get(&p.id) else {
                continue;
            };
            if self.mirror.is_none() || !disks.local.is_empty() {
                return Ok(p.id);
            }
        }
        Err(if self.mirror.is_some() {
            format!(
                "the metadata's replicas are on pool {from}'s disks and no other active pool has local directories to take them: add a pool of local directories first (or run with --meta-dir or etcd)"
            )
        } else {
            format!("no other active pool can become the home pool in place of pool {from}")
        })
    }

    async fn hand_over(&self, from: u32, to: u32) -> Result<(), String> {
        let disks = self
            .open_pools()
            .get(&to)
            .map(|(d, _)| d.clone())
            .ok_or_else(|| format!("pool {to} is not open on this gateway"))?;
        if let Some(mirror) = &self.mirror {
            // Where a start with this pool's disks will look for them.
            let paths = replica_paths(&disks);
            let mirror = mirror.clone();
            tokio::task::spawn_blocking(move || {
                for path in paths {
                    let kv = RocksKv::open(&path)
                        .map_err(|e| format!("metadata replica {}: {e}", path.display()))?;
                    mirror
                        .add_replica(path.display().to_string(), Box::new(kv))
                        .map_err(|e| format!("metadata replica {}: {e}", path.display()))?;
                }
                Ok::<_, String>(())
            })
            .await
            .map_err(|e| e.to_string())??;
            info!(
                from,
                to, "metadata replicas copied to the next home pool's disks"
            );
        }
        // On etcd, gateways started with only --etcd find the new home's nodes from the home
        // record itself (`etcd::node_list`): nothing else to write, so no window where the
        // node list and the home disagree.
        Ok(())
    }

    async fn release(&self, from: u32) {
        let Some((disks, token)) = self.open_pools().remove(&from) else {
            return;
        };
        token.cancel();
        if let Some(mirror) = &self.mirror {
            let on_old_home: Vec<String> = mirror
                .replica_names()
                .into_iter()
                .filter(|name| {
                    disks
                        .local
                        .iter()
                        .any(|d| std::path::Path::new(name).starts_with(d))
                })
                .collect();
            if let Err(e) = mirror.remove_replicas(&on_old_home) {
                warn!(error = %e, "the old home pool's metadata replicas stay in use");
            }
        }
    }
}
