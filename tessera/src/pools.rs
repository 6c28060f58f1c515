//! Pools added to a running deployment (`tessera admin pool add`): their disks are found and
//! formatted the same way as the first pool's, recorded in the metadata, opened at every
//! start, and watched by their own disk monitor.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::{DiskInfo, Disks};
use erasure::{ChunkStore, PoolState};
use gateway::pool_manager::PoolManager;
use objects::{ObjectService, PoolRecord, RecordedState};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::server::{find_disks, format_disks};

/// How long `pool add` waits for new storage nodes to answer.
const NODE_ADD_WAIT: Duration = Duration::from_secs(5);

pub struct ServerPools {
    service: Arc<ObjectService>,
    /// The disks of each pool this process opened, beyond pool 0.
    open: Mutex<BTreeMap<u32, (Arc<Disks>, CancellationToken)>>,
    secret: String,
    disk_check_interval: Duration,
    /// Cancelled at shutdown: stops every pool's disk monitor.
    stop: CancellationToken,
    /// Why pool 0 cannot be decommissioned, if it cannot.
    pool0_pinned: Option<String>,
    adding: tokio::sync::Mutex<()>,
}

/// Splits SPECs into local directories and storage node URLs (after ellipsis expansion).
fn split_specs(specs: &[String]) -> Result<(Vec<PathBuf>, Vec<String>), String> {
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
    pub fn new(
        service: Arc<ObjectService>,
        secret: String,
        disk_check_interval: Duration,
        stop: CancellationToken,
        pool0_pinned: Option<String>,
    ) -> Arc<Self> {
        Arc::new(ServerPools {
            service,
            open: Mutex::default(),
            secret,
            disk_check_interval,
            stop,
            pool0_pinned,
            adding: tokio::sync::Mutex::new(()),
        })
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
            if r.id == 0 {
                self.service.pools().set_state(0, state);
                continue;
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
        let found = find_disks(&dirs, &urls, &self.secret, Some(r.parity), node_wait, false)
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
        if !urls.is_empty() && self.secret.len() < 16 {
            return Err(
                "storage nodes need TESSERA_CLUSTER_SECRET (at least 16 characters) on this gateway"
                    .into(),
            );
        }
        let found = find_disks(&dirs, &urls, &self.secret, parity, NODE_ADD_WAIT, true).await?;
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

    fn can_decommission(&self, id: u32) -> Result<(), String> {
        if id == 0
            && let Some(why) = &self.pool0_pinned
        {
            warn!("decommission of pool 0 refused: {why}");
            return Err(why.clone());
        }
        Ok(())
    }
}
