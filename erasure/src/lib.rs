//! Tessera's storage core: content-addressed chunks cut into Reed-Solomon stripes whose shards
//! live on independent [`ShardStore`]s (local disk directories today, remote nodes later).
//!
//! The crate knows nothing of S3. It offers:
//! - [`ChunkHash`]: the SHA-256 content address of a chunk;
//! - [`Codec`]: systematic RS encoding of a chunk into `k` data + `m` parity shards;
//! - [`shard_format`]: the self-describing, bitrot-checked on-disk shard encoding;
//! - [`ShardStore`] with [`LocalDiskStore`] and [`MemoryShardStore`];
//! - [`Layout`]: erasure sets, MinIO default parity and per-chunk placement;
//! - [`ChunkStore`]: write a chunk with a write quorum, read it back reconstructing from parity;
//! - [`disk_format`]: the per-disk format file that ties disks to one deployment.

mod chunk_store;
mod codec;
pub mod disk_format;
mod error;
mod hash;
mod layout;
mod local_disk;
mod memory;
mod offline;
pub mod shard_format;
mod store;

#[cfg(test)]
mod store_suite;

pub use chunk_store::{ChunkStore, PutChunkReport};
pub use codec::Codec;
pub use error::{Error, Result};
pub use hash::ChunkHash;
pub use layout::{Layout, default_parity};
pub use local_disk::LocalDiskStore;
pub use memory::MemoryShardStore;
pub use offline::OfflineStore;
pub use store::{ShardKey, ShardStore};
