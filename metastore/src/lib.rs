//! Tessera's metadata: buckets, objects, multipart uploads, chunk reference counts, the
//! chunk garbage-collection queue and the heal queue.
//!
//! Three layers:
//! - [`TxnStore`], the transactional boundary: reads that report revisions, and commits that
//!   apply only if what the transaction read is unchanged ([`txn`]). [`LocalTxn`] gives it to
//!   any local store; a shared store (etcd) implements it directly.
//! - [`KvStore`], a local ordered store: ordered trees with atomic, durable batches.
//!   Implementations: [`RocksKv`] (RocksDB, one column family per tree), [`MemoryKv`], and
//!   [`MirroredKv`], which keeps identical replicas on several disks.
//! - [`MetaStore`], the domain API on top, written once for every backend. Every change of an
//!   object's manifest and the reference counts of the chunks it names happen in ONE
//!   transaction.
//!
//! Records carry a version byte ([`records`]); keys are encoded so that byte order is S3
//! listing order ([`keys`]). The crate knows nothing of S3 wire types.

mod chunks;
mod error;
mod events;
mod group_commit;
pub mod keys;
mod kv;
mod listing;
mod local_txn;
mod maintenance;
mod memory;
mod mirror;
pub mod records;
mod refs;
mod rocks;
mod stats;
mod steps;
mod store;
pub mod txn;
mod uploads;
mod users;
mod versioning;
mod walk;

/// The shared suite, for other crates' backends (feature `suite`).
#[cfg(any(test, feature = "suite"))]
pub mod suite;
#[cfg(any(test, feature = "suite"))]
mod suite_check;
#[cfg(any(test, feature = "suite"))]
mod suite_chunks;
#[cfg(any(test, feature = "suite"))]
pub mod suite_concurrency;
#[cfg(any(test, feature = "suite"))]
mod suite_versions;

pub use chunks::{ChunkState, GcItem, PoolHoldings};
pub use error::{Error, Result};
pub use kv::{Batch, Entry, KvStore, Op, SnapshotFn, SnapshotRead, Tree};
pub use listing::{ListEntry, ListPage, ListQuery, ListedObject};
pub use maintenance::{
    BucketUsage, ChunkEntry, EncryptedVersions, RefMismatch, RefcountCheck, Usage,
};
pub use memory::MemoryKv;
pub use mirror::MirroredKv;
pub use records::{
    AccessKeyRecord, AclGrant, BucketRecord, ChunkRef, ContentHeaders, CorsRule, CustomerKeyCheck,
    DefaultRetention, Encryption, EventRecord, GroupRecord, IamRecord, KmsKeyRecord, KmsKeys,
    KmsUse, LifecycleFilter, LifecycleRule, NotifyRule, ObjectData, ObjectLock, ObjectLockConfig,
    ObjectRecord, PartInfo, PartRecord, PublicAccessBlock, UploadRecord, UserRecord, Versioning,
};
pub use rocks::RocksKv;
pub use stats::CommitCounts;
pub use store::{Expect, MetaStore};
pub use txn::{Commit, Guard, KeyRead, Limits, LocalTxn, Rev, Txn, TxnStore, read_at_revision};
pub use uploads::{UploadEntry, UploadPage, UploadQuery};
pub use versioning::{
    DeleteOutcome, NULL_VERSION, VersionEntry, VersionPage, VersionQuery, valid_version_id,
};
