//! The deployment's pools as recorded in the metadata (the `pools` setting: in RocksDB, or in
//! etcd for a cluster of gateways), so that pools added while running survive restarts and
//! every gateway that takes over opens the same ones.
//!
//! Pool 0 is the disks given on the command line; it appears here only once its state changes
//! (draining, retired). Every other pool is recorded with the disks it was added with.
//!
//! The home pool is the one whose disks are given on the command line: pool 0 until it is
//! decommissioned, then the pool its role was handed over to (recorded as `home`, with the
//! deployment's id, which was pool 0's format id).

use serde::{Deserialize, Serialize};

use metastore::MetaStore;

use super::{ObjectService, now_ms};
use crate::error::{Error, Result};

/// The setting holding [`PoolsRecord`].
pub const POOLS_SETTING: &str = "pools";
const POOLS_RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordedState {
    Active,
    /// Being decommissioned: takes no new chunks.
    Draining,
    /// Emptied by a decommission: its disks can be switched off; never opened again.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    pub id: u32,
    /// Local directories of the gateway, or storage node URLs (empty for pool 0: the command
    /// line's disks).
    pub disks: Vec<String>,
    /// The parity the pool was formatted with.
    pub parity: usize,
    /// The id written in the format files of the pool's disks: a start refuses disks with
    /// another.
    pub format_id: String,
    pub state: RecordedState,
    pub added_ms: i64,
}

/// Everything recorded about the pools.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordedPools {
    v: u32,
    pub pools: Vec<PoolRecord>,
    /// The home pool, once pool 0 handed its role over (absent: pool 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<u32>,
    /// The deployment's id, recorded when pool 0 (whose format id it was) is retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

/// Where the server's [`HomeHandover`] is kept once set.
#[derive(Default)]
pub(crate) struct HandoverSlot(pub(crate) std::sync::OnceLock<std::sync::Arc<dyn HomeHandover>>);

impl std::fmt::Debug for HandoverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HandoverSlot(set: {})", self.0.get().is_some())
    }
}

/// Reads the recorded pools (at start, before the object service exists).
pub async fn load_pools(meta: &MetaStore) -> Result<RecordedPools> {
    let Some(bytes) = meta.setting(POOLS_SETTING).await? else {
        return Ok(RecordedPools::default());
    };
    let mut record: RecordedPools = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("the recorded pools are unreadable: {e}")))?;
    if record.v > POOLS_RECORD_VERSION {
        return Err(Error::Internal(format!(
            "the recorded pools have version {}, this tessera reads up to {POOLS_RECORD_VERSION}: upgrade it",
            record.v
        )));
    }
    record.pools.sort_by_key(|p| p.id);
    Ok(record)
}

/// What the server does when its home pool is decommissioned: the object service moves the
/// chunks, the server moves what else the home's disks anchor.
#[async_trait::async_trait]
pub trait HomeHandover: Send + Sync {
    /// The deployment's id.
    fn deployment_id(&self) -> String;
    /// The pool that becomes home when `from` is retired, or why none can.
    fn next_home(&self, from: u32) -> std::result::Result<u32, String>;
    /// Moves what the home anchors (the embedded metadata's replicas) to pool `to`. The old
    /// home's disks are still there.
    async fn hand_over(&self, from: u32, to: u32) -> std::result::Result<(), String>;
    /// After `from` is recorded retired: lets go of its disks.
    async fn release(&self, from: u32);
}

impl ObjectService {
    /// Every recorded pool, by id.
    pub async fn pool_records(&self) -> Result<Vec<PoolRecord>> {
        Ok(load_pools(&self.meta).await?.pools)
    }

    async fn write_pool_records(&self, pools: Vec<PoolRecord>) -> Result<()> {
        let record = RecordedPools {
            pools,
            ..load_pools(&self.meta).await?
        };
        self.write_recorded_pools(record).await
    }

    async fn write_recorded_pools(&self, mut record: RecordedPools) -> Result<()> {
        record.v = POOLS_RECORD_VERSION;
        let bytes = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
        self.meta.put_setting(POOLS_SETTING, bytes, true).await?;
        Ok(())
    }

    /// Records the home pool `from` retired and `to` the home from now on, in one write (a
    /// crash leaves either the old home or the new one recorded, never neither).
    pub(crate) async fn record_new_home(
        &self,
        from: u32,
        to: u32,
        deployment_id: String,
    ) -> Result<()> {
        let _one_change = self.pool_records_lock.lock().await;
        let mut record = load_pools(&self.meta).await?;
        self.change_state(&mut record.pools, from, RecordedState::Retired)?;
        record.home = Some(to);
        record.deployment_id = Some(deployment_id);
        self.write_recorded_pools(record).await
    }

    /// The id the next added pool gets: never one used before, retired pools included.
    pub async fn next_pool_id(&self) -> Result<u32> {
        let recorded = self.pool_records().await?;
        let open = self.pools.list();
        Ok(recorded
            .iter()
            .map(|p| p.id)
            .chain(open.iter().map(|p| p.id))
            .max()
            .map_or(1, |m| m + 1))
    }

    /// Records a new pool (its disks already formatted).
    pub async fn record_pool(
        &self,
        disks: Vec<String>,
        parity: usize,
        format_id: String,
    ) -> Result<u32> {
        let _one_change = self.pool_records_lock.lock().await;
        let mut pools = self.pool_records().await?;
        let id = self.next_pool_id().await?;
        pools.push(PoolRecord {
            id,
            disks,
            parity,
            format_id,
            state: RecordedState::Active,
            added_ms: now_ms(),
        });
        self.write_pool_records(pools).await?;
        Ok(id)
    }

    /// Changes a pool's recorded state (pool 0 gets an entry the first time).
    pub(crate) async fn set_recorded_state(&self, id: u32, state: RecordedState) -> Result<()> {
        let _one_change = self.pool_records_lock.lock().await;
        let mut pools = self.pool_records().await?;
        self.change_state(&mut pools, id, state)?;
        self.write_pool_records(pools).await
    }

    fn change_state(
        &self,
        pools: &mut Vec<PoolRecord>,
        id: u32,
        state: RecordedState,
    ) -> Result<()> {
        match pools.iter_mut().find(|p| p.id == id) {
            Some(p) => p.state = state,
            // Pool 0 (and a pool opened without a record, in tests): recorded from now on.
            None => pools.push(PoolRecord {
                id,
                disks: Vec::new(),
                parity: self.pools.store(id)?.layout().parity,
                format_id: String::new(),
                state,
                added_ms: 0,
            }),
        }
        Ok(())
    }
}
