//! The requests the console makes as the user logged in: its S3 and admin requests,
//! rewritten and signed, and the bucket usage it may see.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::auth::S3Auth;
use serde_json::json;

use super::{
    CSRF_HEADER, Console, Refused, Routed, Session, authority, cookie_token, error, json_response,
    no_session,
};
use crate::client::ClientAddr;
use crate::http::Frontend;

impl Console {
    /// Objects and bytes of the buckets the session's ListBuckets shows, from the cached
    /// usage scan `/metrics` also uses.
    pub(super) async fn usage(
        &self,
        front: &Frontend,
        req: Request<Incoming>,
    ) -> Response<s3s::Body> {
        let Some((_, session)) = self.session(&req) else {
            return no_session();
        };
        let visible = match self.bucket_names_as(front, &req, &session).await {
            Ok(names) => names,
            Err(resp) => return *resp,
        };
        let usage = match front.metrics.usage(&front.service).await {
            Ok((usage, _)) => usage,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e),
        };
        let buckets: serde_json::Map<String, serde_json::Value> = usage
            .by_bucket
            .into_iter()
            .filter(|(name, _)| visible.contains(name))
            .map(|(name, b)| {
                let counts = json!({
                    "objects": b.objects,
                    "bytes": b.bytes,
                    "versions": b.versions,
                    "versionBytes": b.version_bytes,
                });
                (name, counts)
            })
            .collect();
        json_response(StatusCode::OK, &serde_json::Value::Object(buckets))
    }

    /// The buckets a ListBuckets signed as the session lists: what it may see.
    async fn bucket_names_as(
        &self,
        front: &Frontend,
        req: &Request<Incoming>,
        session: &Session,
    ) -> Result<std::collections::HashSet<String>, Refused> {
        let secret = self
            .secrets
            .get_secret_key(&session.access_key)
            .await
            .map_err(|e| {
                error(
                    StatusCode::FORBIDDEN,
                    "InvalidAccessKeyId",
                    e.message().unwrap_or(""),
                )
            })?;
        let host = authority(req);
        let mut list = Request::new(s3s::Body::empty());
        *list.uri_mut() = http::Uri::from_static("/");
        if let Ok(h) = HeaderValue::from_str(&host) {
            list.headers_mut().insert(header::HOST, h);
        }
        if let Some(client) = req.extensions().get::<ClientAddr>() {
            list.extensions_mut().insert(*client);
        }
        cluster::signing::sign_streaming(
            &mut list,
            "/",
            &host,
            &session.access_key,
            secret.expose(),
        )
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e))?;
        let resp = front.s3.call(list).await.map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "ListBuckets failed",
            )
        })?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if !parts.status.is_success() {
            // The server's own refusal, as it wrote it.
            return Err(Box::new(Response::from_parts(parts, s3s::Body::from(body))));
        }
        let text = String::from_utf8_lossy(&body);
        // Bucket names are letters, digits, `.` and `-`: nothing XML escapes.
        Ok(text
            .split("<Name>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Name>").map(|(name, _)| name.to_owned()))
            .collect())
    }

    /// Rewrites `/console/api/{s3|admin}{rest}` to `{target}{rest}` and signs it as the
    /// session's identity.
    pub(super) async fn forward(&self, req: Request<Incoming>, rest: &str, target: &str) -> Routed {
        let session = if req.method() == Method::GET || req.method() == Method::HEAD {
            self.session(&req)
                .map(|(_, s)| s)
                .ok_or_else(|| Box::new(no_session()))
        } else {
            self.session_with_csrf(&req)
        };
        let session = match session {
            Ok(s) => s,
            Err(resp) => return Routed::Answer(*resp),
        };
        let secret = match self.secrets.get_secret_key(&session.access_key).await {
            Ok(s) => s,
            Err(e) => {
                // The key was removed or its user disabled: the session is over.
                if let Some(token) = cookie_token(req.headers()) {
                    self.sessions.remove(token);
                }
                return Routed::Answer(error(
                    StatusCode::FORBIDDEN,
                    "InvalidAccessKeyId",
                    e.message().unwrap_or("The access key no longer works."),
                ));
            }
        };
        let Ok(decoded) = percent_encoding::percent_decode_str(rest).decode_utf8() else {
            return Routed::Answer(error(
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "The path is not valid UTF-8 once decoded.",
            ));
        };
        let mut path_and_query =
            format!("{target}{}", cluster::signing::uri_encode(&decoded, false));
        if path_and_query.is_empty() {
            path_and_query.push('/');
        }
        if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
            let pairs: Vec<String> = form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        cluster::signing::uri_encode(&k, true),
                        cluster::signing::uri_encode(&v, true)
                    )
                })
                .collect();
            path_and_query.push('?');
            path_and_query.push_str(&pairs.join("&"));
        }
        let host = authority(&req);
        let (mut parts, body) = req.into_parts();
        let Ok(uri) = path_and_query.parse::<http::Uri>() else {
            return Routed::Answer(error(
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "The path could not be parsed.",
            ));
        };
        parts.uri = uri;
        for name in [
            header::AUTHORIZATION.as_str(),
            header::COOKIE.as_str(),
            "x-amz-date",
            "x-amz-content-sha256",
            "x-amz-security-token",
            CSRF_HEADER,
        ] {
            parts.headers.remove(name);
        }
        if let Ok(h) = HeaderValue::from_str(&host) {
            parts.headers.insert(header::HOST, h);
        }
        let mut req = Request::from_parts(parts, body);
        if let Err(e) = cluster::signing::sign_streaming(
            &mut req,
            &path_and_query,
            &host,
            &session.access_key,
            secret.expose(),
        ) {
            return Routed::Answer(error(StatusCode::BAD_REQUEST, "InvalidRequest", &e));
        }
        Routed::Forward(req)
    }
}
