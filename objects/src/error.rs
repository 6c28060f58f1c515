//! The object service's one error type. Its mapping to S3 error codes lives in the gateway
//! (`gateway/src/s3/errors.rs`).

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Meta(#[from] metastore::Error),
    #[error(transparent)]
    Storage(#[from] erasure::Error),
    #[error("no such key")]
    NoSuchKey,
    #[error("no such version")]
    NoSuchVersion,
    /// The version asked for (or the current one) is a delete marker.
    #[error("the object is a delete marker")]
    DeleteMarker {
        version_id: Option<String>,
        /// The marker was asked for by version id (405) rather than being current (404).
        requested: bool,
    },
    #[error("the request body could not be read: {0}")]
    Body(String),
    #[error("a chunk signature of the request body does not match")]
    BodySignature,
    #[error("the request body ended after {got} of {expected} bytes")]
    IncompleteBody { got: u64, expected: u64 },
    #[error("the object exceeds the maximum size of {max} bytes")]
    EntityTooLarge { max: u64 },
    #[error("the Content-MD5 does not match the body")]
    BadDigest,
    #[error("{0}")]
    BadChecksum(String),
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    #[error("part {0} is smaller than the 5 MiB minimum and is not the last part")]
    EntityTooSmall(u32),
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("the parts must be listed in ascending order")]
    InvalidPartOrder,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// Encryption was asked for, and the server has no master key.
    #[error("server-side encryption needs a master key")]
    EncryptionNotConfigured,
    /// The data is encrypted under a master key this server does not have.
    #[error("{0}")]
    MasterKeyMissing(String),
    /// The data is encrypted with a customer key (SSE-C) and the request sent none.
    #[error("the object is encrypted with a customer key the request did not provide")]
    CustomerKeyRequired,
    /// The request's customer key is not the one the data is encrypted with.
    #[error("the customer key does not match the one the object was encrypted with")]
    CustomerKeyWrong,
    /// A locked version (retention or legal hold) cannot be removed.
    #[error("the object version is protected by object lock")]
    ObjectLocked,
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidBucketState(String),
    /// The key store has no key of this name.
    #[error("no key {0:?} in the key store")]
    KmsKeyNotFound(String),
    /// The key is disabled: nothing is sealed or opened with it.
    #[error("key {0:?} is disabled")]
    KmsKeyDisabled(String),
    #[error("key {0:?} exists already")]
    KmsKeyExists(String),
    /// A customer key was sent for data not encrypted with one.
    #[error("the encryption parameters are not applicable to this object")]
    CustomerKeyNotApplicable,
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("background task failed: {e}"))
    }
}
