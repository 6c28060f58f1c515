//! The erasure crate's one error type.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shard not found")]
    NotFound,
    #[error("disk offline: {0}")]
    Offline(String),
    #[error("corrupt shard: {0}")]
    Corrupt(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write quorum not reached: {written} of {needed} shards written ({detail})")]
    WriteQuorum {
        written: usize,
        needed: usize,
        detail: String,
    },
    #[error("no space left: {detail}")]
    StorageFull { detail: String },
    #[error("chunk unreadable: only {available} of {needed} shards readable ({detail})")]
    ReadQuorum {
        available: usize,
        needed: usize,
        detail: String,
    },
    #[error("invalid erasure layout: {0}")]
    Layout(String),
    #[error("disk format problem: {0}")]
    DiskFormat(String),
    #[error("codec error: {0}")]
    Codec(String),
    #[error("background task failed: {0}")]
    Task(String),
    /// A delete from a deposed leader (see `fence`): the shard is kept.
    #[error("{0}")]
    Fenced(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True for "this shard does not exist" as opposed to a failing store.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound)
    }

    /// True when a delete was refused for an outdated fencing token.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Fenced(_))
    }

    /// True when a store ran out of space.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::StorageFull { .. } => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}
