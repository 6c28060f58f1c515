//! The storage-node protocol's shared vocabulary: paths, headers, the node's `info` answer,
//! shard ids, and the node-side rules for a disk's format. The client is [`crate::RemoteNode`];
//! the server (an s3s route, since s3s verifies the signatures) is in the gateway crate.
//!
//! | method | path under `/tessera-node/v1/disks/{disk}/` | does |
//! |---|---|---|
//! | PUT | `shards/{sha256 hex}.{index}` (`?unsynced` for a bulk write, `?unsynced&cold` for a parity shard of one, written past the page cache) | stores a shard |
//! | GET / DELETE | `shards/{id}` (DELETE: `?fence=N`, the leader's fencing token) | reads / deletes one (412 for a token older than one seen) |
//! | GET | `shards` | lists them, one id per line |
//! | POST | `quarantine/{id}` | moves one aside |
//! | POST | `sync` | flushes unsynced writes |
//! | GET | `health`, `space` | write probe; free and total bytes (JSON) |
//! | PUT | `format` | writes the disk's deployment format (refused over another disk's) |
//!
//! `GET /tessera-node/v1/info` ([`NodeInfo`]) names the node (its id, kept on its disks; see
//! [`crate::identity`]), its deployment and each disk's deployment format, so a gateway places
//! a node's disks by their recorded positions whatever address the node has today. A request
//! carrying `x-tessera-deployment` (signed) from a deployment other than the one that first
//! claimed the node gets 409, and so does a shard request whose `x-tessera-disk-id` names
//! another disk than the one at that index.

use std::path::Path;

use erasure::disk_format::{self, DiskFormat, Found};
use erasure::{ChunkHash, ShardKey};
use serde::{Deserialize, Serialize};

pub const NODE_ROOT: &str = "/tessera-node/v1/";
pub const NODE_PREFIX: &str = "/tessera-node/v1/disks/";
/// The deployment a gateway's request comes from; signed with the request.
pub const DEPLOYMENT_HEADER: &str = "x-tessera-deployment";
/// The deployment disk a gateway means by a node disk (its `format.json` disk id); signed.
/// A node whose disk at that index is another one refuses the request with 409, so a node
/// that came back on another's address never takes shards meant for another position.
pub const DISK_ID_HEADER: &str = "x-tessera-disk-id";
/// The access key of cluster-internal requests; the secret is the cluster secret.
pub const NODE_ACCESS_KEY: &str = "tessera-cluster";
/// Shards are at most a chunk (1 MiB) over k plus a header; this leaves room for larger
/// chunk sizes without letting a request make the node buffer without bound.
pub const MAX_SHARD_BYTES: usize = 64 << 20;

/// `GET /tessera-node/v1/info`: who the node is and what each of its disks holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub deployment_id: Option<String>,
    pub disks: Vec<NodeDiskFormat>,
}

/// A node disk's deployment format (`DIR/.tessera/format.json`, the same file a local disk has).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum NodeDiskFormat {
    Formatted { format: DiskFormat },
    Unformatted,
    Unreadable { reason: String },
}

impl NodeDiskFormat {
    /// What the disk directory holds: its deployment format, none, or an error. Blocking.
    pub fn read(dir: &Path) -> Self {
        if !dir.join(disk_format::FORMAT_FILE).exists() {
            return NodeDiskFormat::Unformatted;
        }
        match disk_format::inspect(dir) {
            Ok(Found::Formatted(format)) => NodeDiskFormat::Formatted { format },
            Ok(Found::Unreadable(reason)) => NodeDiskFormat::Unreadable { reason },
            Ok(_) => NodeDiskFormat::Unformatted,
            Err(e) => NodeDiskFormat::Unreadable {
                reason: e.to_string(),
            },
        }
    }
}

/// Why a node refuses to write a disk's format.
#[derive(Debug)]
pub enum FormatRefusal {
    /// The disk already is another deployment position.
    OtherDisk(String),
    Failed(String),
}

/// Formats a node disk for a deployment; a disk that already belongs to a deployment
/// position keeps it (the gateway formats only new and empty disks). Blocking.
pub fn format_disk_once(dir: &Path, format: &DiskFormat) -> Result<(), FormatRefusal> {
    if let Ok(Found::Formatted(current)) = disk_format::inspect(dir)
        && current.disk_id != format.disk_id
    {
        return Err(FormatRefusal::OtherDisk(format!(
            "{} is already disk {} of deployment {}",
            dir.display(),
            current.disk_id,
            current.deployment_id
        )));
    }
    disk_format::write_format(dir, format).map_err(|e| FormatRefusal::Failed(e.to_string()))
}

/// `{64 hex}.{index}` into a shard key; anything else (`..`, slashes, other names) is refused.
pub fn parse_shard_id(id: &str) -> Option<ShardKey> {
    let (hex, index) = id.split_once('.')?;
    if hex.len() != 64 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(ShardKey {
        chunk: ChunkHash::from_hex(hex)?,
        index: index.parse().ok()?,
    })
}

/// A shard's id in paths and listings: the inverse of [`parse_shard_id`].
pub fn shard_id(key: &ShardKey) -> String {
    format!("{}.{}", key.chunk.to_hex(), key.index)
}

#[cfg(test)]
mod tests {
    use super::{parse_shard_id, shard_id};

    #[test]
    fn shard_ids_cannot_name_paths() {
        let hex = "ab".repeat(32);
        let key = parse_shard_id(&format!("{hex}.3")).unwrap();
        assert_eq!((key.chunk.to_hex(), key.index), (hex.clone(), 3));
        assert_eq!(shard_id(&key), format!("{hex}.3"));
        for bad in [
            "../../etc/passwd".to_string(),
            format!("{hex}.3/../x"),
            format!("{hex}.-1"),
            format!("{hex}.256"),
            format!("{hex}.+1"),
            format!("..{hex}.1"),
            format!("{}.1", "zz".repeat(32)),
            format!("{}.1", "ab".repeat(31)),
            hex.clone(),
            String::new(),
        ] {
            assert!(parse_shard_id(&bad).is_none(), "{bad:?} was accepted");
        }
    }
}
