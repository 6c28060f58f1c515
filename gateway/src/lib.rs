//! The tessera gateway: the `tessera` command line, the S3 front end (the only place that
//! knows s3s), and the object service that turns S3 operations into metastore commits and
//! erasure-coded chunk I/O.

pub mod access;
pub mod admin;
pub mod config;
pub mod disks;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod node;
pub mod nodes;
pub mod s3;
pub mod server;
pub mod signing;
pub mod storage;
pub mod users;
