//! Adding pools of disks to a running deployment: the binary, which alone knows how disks are
//! found, formatted and monitored, provides it to the admin API.

use cluster::DiskInfo;

#[async_trait::async_trait]
pub trait PoolManager: Send + Sync {
    /// Formats the new, empty disks (local directories or storage node URLs), records the
    /// pool and puts it in service at once. Returns its id.
    async fn add_pool(&self, disks: Vec<String>, parity: Option<usize>) -> Result<u32, String>;
    /// The disks of an open pool (the home pool's included), as `admin info` shows them.
    async fn pool_disks(&self, id: u32) -> Option<Vec<DiskInfo>>;
}
