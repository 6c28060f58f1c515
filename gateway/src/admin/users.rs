//! The admin API's `users` routes. Parameters travel in the query string, so every signed body
//! is empty and s3s' signature check covers all of a request.

use hyper::{Method, Uri};
use s3s::{Body, S3Response, S3Result};

use super::required_param;
use super::route::{AdminApi, json};
use crate::s3::IntoS3;

impl AdminApi {
    /// The `policies` routes: named identity policies.
    pub(super) async fn policies_call(
        &self,
        method: &Method,
        uri: &Uri,
    ) -> S3Result<S3Response<Body>> {
        let users = &self.users;
        let name = || required_param(uri, "name");
        match *method {
            Method::GET => {
                json(&serde_json::json!({ "policies": users.list_policies().await.s3()? }))
            }
            Method::POST => {
                users
                    .put_policy(&name()?, &required_param(uri, "document")?)
                    .await
                    .s3()?;
                done()
            }
            Method::DELETE => {
                users.remove_policy(&name()?).await.s3()?;
                done()
            }
            _ => Err(unknown(method, "policies")),
        }
    }

    /// `op` is the path after `groups`: "", "/members" or "/policies".
    pub(super) async fn groups_call(
        &self,
        method: &Method,
        op: &str,
        uri: &Uri,
    ) -> S3Result<S3Response<Body>> {
        let users = &self.users;
        let name = || required_param(uri, "name");
        let add = *method == Method::POST;
        match (method, op) {
            (&Method::GET, "") => {
                return json(&serde_json::json!({ "groups": users.list_groups().await.s3()? }));
            }
            (&Method::POST, "") => users.add_group(&name()?).await.s3()?,
            (&Method::DELETE, "") => users.remove_group(&name()?).await.s3()?,
            (&Method::POST | &Method::DELETE, "/members") => users
                .group_member(&name()?, &required_param(uri, "user")?, add)
                .await
                .s3()?,
            (&Method::POST | &Method::DELETE, "/policies") => users
                .group_policy(&name()?, &required_param(uri, "policy")?, add)
                .await
                .s3()?,
            _ => return Err(unknown(method, &format!("groups{op}"))),
        }
        done()
    }

    /// `op` is the path after `users`: "", "/disable", "/enable" or "/keys".
    pub(super) async fn users_call(
        &self,
        method: &Method,
        op: &str,
        uri: &Uri,
    ) -> S3Result<S3Response<Body>> {
        let users = &self.users;
        let name = || required_param(uri, "name");
        match (method, op) {
            (&Method::GET, "") => json(&serde_json::json!({ "users": users.list().await.s3()? })),
            (&Method::POST, "") => {
                let policy = crate::http::query_param(uri.query(), "policy")
                    .unwrap_or_else(|| "readwrite".into());
                let buckets = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .filter(|(k, _)| k == "bucket")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                json(&users.add(&name()?, &policy, buckets).await.s3()?)
            }
            (&Method::DELETE, "") => {
                users.remove(&name()?).await.s3()?;
                done()
            }
            (&Method::POST, "/disable" | "/enable") => {
                users.set_enabled(&name()?, op == "/enable").await.s3()?;
                done()
            }
            (&Method::POST, "/keys") => json(&users.add_key(&name()?).await.s3()?),
            (&Method::POST | &Method::DELETE, "/policies") => {
                let attach = method == Method::POST;
                users
                    .attach_user_policy(&name()?, &required_param(uri, "policy")?, attach)
                    .await
                    .s3()?;
                done()
            }
            (&Method::DELETE, "/keys") => {
                users
                    .remove_key(&name()?, &required_param(uri, "access_key")?)
                    .await
                    .s3()?;
                done()
            }
            _ => Err(unknown(method, &format!("users{op}"))),
        }
    }
}

/// The answer of a change that has nothing to report.
fn done() -> S3Result<S3Response<Body>> {
    json(&serde_json::json!({ "ok": true }))
}

fn unknown(method: &Method, what: &str) -> s3s::S3Error {
    s3s::S3Error::with_message(
        s3s::S3ErrorCode::InvalidArgument,
        format!("unknown admin request {method} {what}"),
    )
}
