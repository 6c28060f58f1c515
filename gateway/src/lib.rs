//! The HTTP edge: everything that speaks HTTP as a server.
//!
//! - [`s3`]: the S3 front end, a thin `impl s3s::S3` ([`s3::TesseraS3`]) over the object
//!   service, with authentication ([`s3::SecretLookup`]), the per-operation access check
//!   ([`s3::AccessCheck`]) and the one mapping of tessera errors to S3 error codes.
//! - [`admin`]: the admin API (`/tessera-admin/v1/`), an s3s custom route.
//! - [`node`]: a storage node's server side of the shard protocol, an s3s custom route.
//! - [`console`]: the web console at `/console/`, an S3 client inside the server that acts
//!   as the user logged in.
//! - [`auth_limit`]: holding back addresses that fail authentication too often.
//! - [`client`]: who the client is (its address and transport), through trusted proxies.
//! - [`http`], [`access`], [`health`], [`metrics`]: the request pipeline around s3s (request
//!   ids, S3 error body details, access log, health probes, `/metrics`).
//! - [`tls`]: certificates from a `--certs-dir`, by SNI, reloaded when they change.
//! - [`serve`]: assembling the [`http::Frontend`] and serving it until shutdown; [`starting`]:
//!   the port of a gateway on etcd that cannot serve yet, and the relay of admin requests to
//!   the leader.
//!
//! The only crate that knows s3s or hyper's server side. It depends on the object service
//! (`objects`), identities (`iam`, `policy`), the cluster's disks (`cluster`) and the
//! metastore's records; nothing depends on it but the `tessera` binary.

pub mod access;
pub mod admin;
pub mod auth_limit;
pub mod client;
pub mod cluster_view;
pub mod console;
mod cors;
mod governance_metrics;
pub mod health;
pub mod http;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod pool_manager;
pub mod s3;
pub mod serve;
mod spool;
pub mod starting;
pub mod tls;

pub use http::Frontend;
pub use serve::{FrontendParts, serve, serve_and_keep, serve_console};
