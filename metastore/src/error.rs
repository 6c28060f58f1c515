//! The metastore's one error type.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("no such object")]
    NoSuchObject,
    #[error("no such version")]
    NoSuchVersion,
    #[error("the object's current state does not satisfy the write condition")]
    PreconditionFailed,
    #[error("no such multipart upload")]
    NoSuchUpload,
    #[error("part {0} changed while the upload was being completed")]
    PartChanged(u32),
    /// A write named a chunk as stored that garbage collection deleted meanwhile (another
    /// gateway's GC, between this request's check and its commit): nothing was written, and
    /// the client should send the data again.
    #[error("chunk {} was collected while this write relied on it", hex::encode(.0))]
    ChunkGone([u8; 32]),
    #[error("no such user")]
    NoSuchUser,
    #[error("user already exists")]
    UserExists,
    /// A change refused by the caller's own closure inside a transaction (nothing written);
    /// the caller knows, and reports, why.
    #[error("the change was refused")]
    Refused,
    /// The store cannot be reached (etcd down or cut off): nothing was written, or a
    /// transaction's outcome is unknown; the caller may retry later.
    #[error("the metadata store is unavailable: {0}")]
    Unavailable(String),
    /// The store is out of space (etcd's quota): nothing was written.
    #[error("the metadata store is full: {0}")]
    MetadataFull(String),
    /// One transaction would exceed the store's size limits (etcd: 128 operations).
    #[error("{0}")]
    TooLarge(String),
    /// What a transaction read changed under it (or the snapshot it read at is gone): it
    /// runs again. Never leaves [`crate::MetaStore`].
    #[error("the metadata a transaction read changed under it")]
    Changed,
    /// A transaction kept conflicting with concurrent ones; the caller may retry later.
    #[error("the metadata store is too busy: a transaction kept conflicting")]
    Busy,
    #[error("metadata backend error: {0}")]
    Backend(String),
    #[error("undecodable metadata record: {0}")]
    Decode(String),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Backend(e.into_string())
    }
}
