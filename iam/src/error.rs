//! The identity crate's one error type. Its mapping to S3 (and IAM) error codes lives in the
//! gateway (`gateway/src/s3/errors.rs`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Meta(#[from] metastore::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("a user named {0:?} exists already")]
    UserExists(String),
    /// A named policy or group that does not exist (the text names which).
    #[error("{0}")]
    NoSuchEntity(String),
    /// A named policy or group that exists already.
    #[error("{0}")]
    EntityExists(String),
    /// A policy still attached somewhere (IAM's DeleteConflict).
    #[error("{0}")]
    InUse(String),
    #[error("malformed policy: {0}")]
    MalformedPolicy(String),
    #[error("user {user:?} has no access key {key:?}")]
    NoSuchAccessKey { user: String, key: String },
    /// The users' data key cannot be opened (root password changed): only root works.
    #[error("users are locked: {0}")]
    UsersLocked(String),
}
