//! Admin requests about pools: listing them, adding one, rebalancing, decommissioning.

use hyper::{Method, Uri};
use objects::{MoveKind, RecordedState};
use s3s::{Body, S3Error, S3ErrorCode, S3Response, S3Result};
use serde::Serialize;

use super::route::{AdminApi, json};
use crate::s3::IntoS3;

/// One pool as `tessera admin pool list` and `admin info` show it.
#[derive(Debug, Serialize)]
pub struct PoolInfo {
    pub id: u32,
    /// `active`, `draining` or `retired`.
    pub state: String,
    pub disks: usize,
    pub set_size: usize,
    pub data: usize,
    pub parity: usize,
    /// Usable bytes (after parity), when the disks report their space.
    pub capacity: Option<u64>,
    pub free: Option<u64>,
    /// Chunks recorded in this pool and their bytes before erasure coding.
    pub chunks: u64,
    pub chunk_bytes: u64,
    /// `chunk_bytes` over `capacity`.
    pub fill: Option<f64>,
    /// The disks (absent for pools this gateway does not monitor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_list: Option<Vec<cluster::DiskInfo>>,
}

fn bad(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.into())
}

fn params(uri: &Uri, name: &str) -> Vec<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn number<T: std::str::FromStr>(uri: &Uri, name: &str) -> S3Result<Option<T>> {
    match params(uri, name).pop() {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{name} must be a whole number, not {v:?}"))),
    }
}

impl AdminApi {
    pub(super) async fn pools_info(&self) -> S3Result<Vec<PoolInfo>> {
        let held = self.service.meta().pool_holdings().await.s3()?;
        let mut out = Vec::new();
        for pool in self.service.pools().list() {
            let layout = *pool.store.layout();
            let space = pool.space();
            let h = held.get(&pool.id).copied().unwrap_or_default();
            let disk_list = match (&self.pool_manager, pool.id) {
                (Some(m), id) => m.pool_disks(id).await,
                (None, 0) => Some(self.disks.info().await),
                (None, _) => None,
            };
            out.push(PoolInfo {
                id: pool.id,
                state: match pool.state() {
                    erasure::PoolState::Active => "active",
                    erasure::PoolState::Draining => "draining",
                }
                .into(),
                disks: layout.disks,
                set_size: layout.set_size,
                data: layout.data(),
                parity: layout.parity,
                capacity: space.capacity,
                free: space.free,
                chunks: h.chunks,
                chunk_bytes: h.bytes,
                fill: space
                    .capacity
                    .filter(|c| *c > 0)
                    .map(|c| h.bytes as f64 / c as f64),
                disk_list,
            });
        }
        for r in self.service.pool_records().await.s3()? {
            if r.state == RecordedState::Retired {
                out.push(PoolInfo {
                    id: r.id,
                    state: "retired".into(),
                    disks: r.disks.len(),
                    set_size: 0,
                    data: 0,
                    parity: r.parity,
                    capacity: None,
                    free: None,
                    chunks: 0,
                    chunk_bytes: 0,
                    fill: None,
                    disk_list: None,
                });
            }
        }
        Ok(out)
    }

    pub(super) async fn pools_call(
        &self,
        method: &Method,
        op: &str,
        uri: &Uri,
    ) -> S3Result<S3Response<Body>> {
        let bandwidth = number::<u64>(uri, "bandwidth_mib")?.unwrap_or(0) << 20;
        match (method, op) {
            (&Method::GET, "pools") => {
                self.service.pools().refresh_space().await;
                json(&self.pools_info().await?)
            }
            (&Method::POST, "pools") => {
                let disks = params(uri, "disk");
                if disks.is_empty() {
                    return Err(bad("pool add needs at least one disk"));
                }
                let parity = number::<usize>(uri, "parity")?;
                let Some(manager) = &self.pool_manager else {
                    return Err(bad("this server cannot add pools"));
                };
                let id = manager.add_pool(disks, parity).await.map_err(bad)?;
                let pools = self.pools_info().await?;
                json(&pools.into_iter().find(|p| p.id == id))
            }
            (&Method::GET, "rebalance" | "decommission") => {
                json(&self.service.move_job().await.s3()?)
            }
            (&Method::POST, "rebalance") => json(
                &self
                    .service
                    .start_move(MoveKind::Rebalance, bandwidth)
                    .await
                    .s3()?,
            ),
            (&Method::POST, "decommission") => {
                let Some(pool) = number::<u32>(uri, "pool")? else {
                    return Err(bad("decommission needs the pool query parameter"));
                };
                json(
                    &self
                        .service
                        .start_move(MoveKind::Decommission { pool }, bandwidth)
                        .await
                        .s3()?,
                )
            }
            (&Method::DELETE, "rebalance" | "decommission") => {
                json(&self.service.stop_move().await.s3()?)
            }
            _ => Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("unknown admin request {method} {op}"),
            )),
        }
    }
}
