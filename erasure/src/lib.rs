//! Tessera's storage core: content-addressed chunks cut into Reed-Solomon stripes whose shards
//! live on independent [`ShardStore`]s (local disk directories today, remote nodes later).
//!
//! The crate knows nothing of S3. It offers:
//! - [`ChunkHash`]: the SHA-256 content address of a chunk;
//! - [`Codec`]: systematic RS encoding of a chunk into `k` data + `m` parity shards;
//! - [`shard_format`]: the self-describing, bitrot-checked on-disk shard encoding;
//! - [`ShardStore`] with [`LocalDiskStore`] and [`MemoryShardStore`];
//! - [`Layout`]: erasure sets, MinIO default parity and per-chunk placement;
//! - [`ChunkStore`]: write a chunk with a write quorum, read it back reconstructing from parity,
//!   heal damaged shards on read and on demand ([`HealReport`]);
//! - [`Pools`]: the groups of disks a deployment grows by, and the choice of pool for a new
//!   chunk by free space;
//! - [`DiskSlot`]: a disk position whose store the server can swap (disk lost, returned,
//!   replaced);
//! - [`FaultyStore`]: a fault-injecting wrapper for tests;
//! - [`disk_format`]: the per-disk format file that ties disks to one deployment.

mod chunk_store;
mod codec;
mod direct_write;
pub mod disk_format;
mod disk_slot;
mod error;
mod faulty;
mod fence;
mod hash;
mod heal;
mod layout;
mod local_disk;
mod memory;
mod offline;
mod pools;
pub mod shard_format;
mod store;

/// The shared test suite for [`ShardStore`] implementations (feature `suite` for other crates).
#[cfg(any(test, feature = "suite"))]
pub mod store_suite;

pub use chunk_store::{ChunkCounters, ChunkStore, CounterSnapshot, PutChunkReport};
pub use codec::Codec;
pub use disk_slot::{DiskSlot, DiskState};
pub use error::{Error, Result};
pub use faulty::{Faults, FaultyStore};
pub use fence::FenceMark;
pub use hash::ChunkHash;
pub use heal::{HealReport, ShardLocation, ShardStatus};
pub use layout::{Layout, default_parity};
pub use local_disk::LocalDiskStore;
pub use memory::MemoryShardStore;
pub use offline::OfflineStore;
pub use pools::{Pool, PoolSpace, PoolState, Pools};
pub use store::{DiskSpace, ShardKey, ShardStore};
