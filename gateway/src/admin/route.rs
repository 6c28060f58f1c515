//! The server half of the admin API: an s3s custom route, so SigV4 verification is s3s's.

use std::sync::Arc;
use std::time::Instant;

use cluster::NodeStatus;
use cluster::{DiskInfo, Disks};
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use objects::{ObjectService, PassProgress};
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use serde::Serialize;

use crate::s3::IntoS3;

pub const ADMIN_PREFIX: &str = "/tessera-admin/v1/";

pub struct AdminApi {
    pub users: Arc<iam::Users>,
    pub service: Arc<ObjectService>,
    pub disks: Arc<Disks>,
    pub root_access_key: String,
    pub meta_replicas: Vec<String>,
    pub deployment_id: String,
    pub started: Instant,
    pub cluster: Option<Arc<dyn crate::cluster_view::ClusterView>>,
    pub pool_manager: Option<Arc<dyn crate::pool_manager::PoolManager>>,
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
    uptime_secs: u64,
    deployment_id: String,
    layout: Layout,
    disks: Vec<DiskInfo>,
    /// Storage nodes (`serve --node`), in the order given.
    nodes: Vec<NodeStatus>,
    metadata_replicas: Vec<String>,
    usage: metastore::Usage,
    /// Logical bytes in chunks per byte of distinct chunk data (dedup alone); above 1 means
    /// dedup saves.
    dedup_ratio: f64,
    /// Distinct chunk data per stored chunk byte (compression alone).
    compression_ratio: f64,
    counters: erasure::CounterSnapshot,
    heal: HealInfo,
    /// Why users are refused (their data key does not open), if they are.
    users_locked: Option<String>,
    /// The gateways of the cluster on etcd (absent for a gateway on its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    gateways: Option<Vec<crate::cluster_view::GatewayEntry>>,
    /// Why the gateways could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    gateways_error: Option<String>,
    /// Every pool of disks: the first one (the disks above) and those added since.
    pools: Vec<super::pools::PoolInfo>,
    /// The current or last rebalance or decommission.
    rebalance: Option<objects::MoveJob>,
    /// Per erasure set: since when every shard is known verified (the scanner's passes).
    scrub: Vec<objects::SetScrub>,
}

#[derive(Serialize)]
struct Layout {
    disks: usize,
    sets: usize,
    set_size: usize,
    data: usize,
    parity: usize,
}

#[derive(Serialize)]
struct HealInfo {
    queue: u64,
    queue_healed: u64,
    pass: PassProgress,
}

#[derive(Serialize)]
struct HealStarted {
    /// The pass is done once `passes_finished` reaches this.
    wait_for_passes: u64,
    pass: PassProgress,
}

pub(super) fn json(value: &impl Serialize) -> S3Result<S3Response<Body>> {
    let body = serde_json::to_string_pretty(value)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    let mut resp = S3Response::new(Body::from(body));
    resp.headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

impl AdminApi {
    async fn info(&self) -> S3Result<S3Response<Body>> {
        let usage = self.service.meta().usage().await.s3()?;
        let queue = self.service.meta().heal_queue_len().await.s3()?;
        let layout = self.disks.deployment.layout;
        // Nodes before disks: a monitor round between the two reads then shows old node
        // identities with new disk locations at worst, never the reverse.
        let nodes = self.disks.node_status();
        let (gateways, gateways_error) = match &self.cluster {
            None => (None, None),
            Some(cluster) => match cluster.gateways().await {
                Ok(list) => (Some(list), None),
                Err(e) => (None, Some(e)),
            },
        };
        json(&Info {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.started.elapsed().as_secs(),
            deployment_id: self.deployment_id.clone(),
            layout: Layout {
                disks: layout.disks,
                sets: layout.sets(),
                set_size: layout.set_size,
                data: layout.data(),
                parity: layout.parity,
            },
            disks: self.disks.info().await,
            nodes,
            metadata_replicas: self.meta_replicas.clone(),
            dedup_ratio: if usage.chunk_data_bytes == 0 {
                1.0
            } else {
                (usage.logical_bytes - usage.inline_bytes) as f64 / usage.chunk_data_bytes as f64
            },
            compression_ratio: if usage.chunk_bytes == 0 {
                1.0
            } else {
                usage.chunk_data_bytes as f64 / usage.chunk_bytes as f64
            },
            usage,
            counters: self.service.pools().counters(),
            heal: HealInfo {
                queue,
                queue_healed: self.service.heal_queue_healed(),
                pass: self.service.heal_progress(),
            },
            users_locked: self.users.locked().map(str::to_owned),
            gateways,
            gateways_error,
            pools: self.pools_info().await?,
            rebalance: self.service.move_job().await.s3()?,
            scrub: self.service.scrub_state().await.s3()?,
        })
    }

    fn start_heal(&self) -> S3Result<S3Response<Body>> {
        let pass = self.service.heal_progress();
        let wait_for_passes = pass.passes_finished + if pass.running { 2 } else { 1 };
        self.service.request_heal_pass();
        json(&HealStarted {
            wait_for_passes,
            pass,
        })
    }

    async fn check(&self, uri: &Uri) -> S3Result<S3Response<Body>> {
        let repair = !uri
            .query()
            .unwrap_or("")
            .split('&')
            .any(|kv| kv == "repair=false");
        let report = self.service.check(repair).await.s3()?;
        json(&report)
    }
}

#[async_trait::async_trait]
impl S3Route for AdminApi {
    fn is_match(&self, _: &Method, uri: &Uri, _: &HeaderMap, _: &mut Extensions) -> bool {
        uri.path().starts_with(ADMIN_PREFIX)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        // A browser-upload form's signature covers its policy, not the path: a form root
        // signed for uploads must not open the admin API. The admin client never posts forms.
        let is_form = req
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if is_form {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "The admin API does not take form posts.",
            ));
        }
        match &req.credentials {
            Some(c) if c.access_key == self.root_access_key => Ok(()),
            Some(_) => Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "The admin API needs the root credentials.",
            )),
            None => Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "The admin API needs signed requests.",
            )),
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let op = &req.uri.path()[ADMIN_PREFIX.len()..];
        match (&req.method, op) {
            (&Method::GET, "info") => self.info().await,
            (&Method::GET, "heal") => json(&self.service.heal_progress()),
            (&Method::POST, "heal") => self.start_heal(),
            (&Method::POST, "check") => self.check(&req.uri).await,
            (&Method::GET, "locate") => json(&self.locate(&req.uri).await?),
            (method, "pools" | "rebalance" | "decommission") => {
                self.pools_call(method, op, &req.uri).await
            }
            (method, "policies") => self.policies_call(method, &req.uri).await,
            (method, op) if op.starts_with("kms/") => {
                self.kms_call(method, &op["kms/".len()..], &req.uri).await
            }
            (method, op) if op == "groups" || op.starts_with("groups/") => {
                self.groups_call(method, &op["groups".len()..], &req.uri)
                    .await
            }
            (method, op) if op == "users" || op.starts_with("users/") => {
                self.users_call(method, &op["users".len()..], &req.uri)
                    .await
            }
            _ => Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("unknown admin request {} {op}", req.method),
            )),
        }
    }
}
