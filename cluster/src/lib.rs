//! The cluster: where a deployment's disks are and whether they work.
//!
//! - [`protocol`]: the storage-node protocol's paths, headers, `info` answer and shard ids;
//!   [`RemoteNode`] / [`NodeClient`], its client (an [`erasure::ShardStore`] over HTTP);
//!   [`signing`], the SigV4 signing of tessera's own requests (node traffic, admin client);
//!   [`tls`], the CAs trusted for `https://` nodes, gateways and servers.
//! - [`NodeIdentity`]: a storage node's id and claiming deployment, kept on its disks.
//! - [`nodes`]: finding the nodes at start, placing their disks in the deployment by the
//!   positions their formats record, and following them ([`NodeSet`]).
//! - [`Disks`]: every disk position (local or on a node) as a swappable slot, and the monitor
//!   that takes disks offline, brings them back and adopts replacements.
//!
//! Depends on `erasure` (shard stores, disk formats) and an HTTP client only. It must not
//! depend on the object service, the metastore or s3s: the node's server side is an s3s route
//! in the gateway crate, and a disk coming back is reported through a callback.

pub mod disks;
pub mod identity;
pub mod nodes;
pub mod protocol;
mod remote;
pub mod signing;
pub mod tls;

pub use disks::{DiskInfo, Disks};
pub use identity::NodeIdentity;
pub use nodes::{NodeSet, NodeStatus, Placement};
pub use remote::{NodeClient, RemoteNode};
