//! The admin API's `kms` routes: the built-in key store of SSE-KMS (and SSE-S3's data key),
//! and re-sealing it under a new master key.

use hyper::{Method, Uri};
use s3s::{Body, S3Response, S3Result};

use super::required_param;
use super::route::{AdminApi, json};
use crate::s3::IntoS3;

impl AdminApi {
    /// `op` is the path after `kms/`.
    pub(super) async fn kms_call(
        &self,
        method: &Method,
        op: &str,
        uri: &Uri,
    ) -> S3Result<S3Response<Body>> {
        let service = &self.service;
        let name = || required_param(uri, "name");
        match (method, op) {
            (&Method::GET, "keys") => {
                json(&serde_json::json!({ "keys": service.kms_list_keys().await.s3()? }))
            }
            (&Method::POST, "keys") => json(&service.kms_create_key(&name()?).await.s3()?),
            (&Method::POST, "keys/enable") => {
                json(&service.kms_enable_key(&name()?, true).await.s3()?)
            }
            (&Method::POST, "keys/disable") => {
                json(&service.kms_enable_key(&name()?, false).await.s3()?)
            }
            (&Method::POST, "rotate-master") => json(&service.kms_rotate_master().await.s3()?),
            _ => Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::InvalidArgument,
                format!("unknown admin request {method} kms/{op}"),
            )),
        }
    }
}
