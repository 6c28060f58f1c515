//! The deployment's pools as recorded in the metadata (the `pools` setting: in RocksDB, or in
//! etcd for a cluster of gateways), so that pools added while running survive restarts and
//! every gateway that takes over opens the same ones.
//!
//! Pool 0 is the disks given on the command line; it appears here only once its state changes
//! (draining, retired). Every other pool is recorded with the disks it was added with.

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PoolsRecord {
    v: u32,
    pools: Vec<PoolRecord>,
}

impl ObjectService {
    /// Every recorded pool, by id.
    pub async fn pool_records(&self) -> Result<Vec<PoolRecord>> {
        let Some(bytes) = self.meta.setting(POOLS_SETTING).await? else {
            return Ok(Vec::new());
        };
        let record: PoolsRecord = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("the recorded pools are unreadable: {e}")))?;
        if record.v > POOLS_RECORD_VERSION {
            return Err(Error::Internal(format!(
                "the recorded pools have version {}, this tessera reads up to {POOLS_RECORD_VERSION}: upgrade it",
                record.v
            )));
        }
        let mut pools = record.pools;
        pools.sort_by_key(|p| p.id);
        Ok(pools)
    }

    async fn write_pool_records(&self, pools: Vec<PoolRecord>) -> Result<()> {
        let record = PoolsRecord {
            v: POOLS_RECORD_VERSION,
            pools,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
        self.meta.put_setting(POOLS_SETTING, bytes, true).await?;
        Ok(())
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
        let mut pools = self.pool_records().await?;
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
        self.write_pool_records(pools).await
    }
}
