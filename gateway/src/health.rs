//! Health endpoints for probes and load balancers, answered before the S3 layer.
//!
//! | path | answers |
//! |---|---|
//! | `/health/live`, `/minio/health/live`, `/.tessera/health/live` | 200 while the process serves |
//! | `/health/ready`, `/minio/health/ready`, `/.tessera/health/ready` | 200 when every erasure set has its write quorum (k+1 online disks, which also gives the read quorum), else 503 naming what is missing |
//!
//! Only unsigned GET/HEAD requests are taken: a signed request for a bucket that happens to be
//! named `health` or `minio` still reaches S3.

use http::{Method, Request, Response, StatusCode};

const LIVE: [&str; 3] = [
    "/health/live",
    "/minio/health/live",
    "/.tessera/health/live",
];
const READY: [&str; 3] = [
    "/health/ready",
    "/minio/health/ready",
    "/.tessera/health/ready",
];

/// True for requests that carry an S3 signature (V4 or V2, header or query); other
/// `Authorization` schemes (a bearer token) are not one.
pub fn is_s3_signed<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(b"AWS4-") || v.starts_with(b"AWS ")
        })
        || req.uri().query().is_some_and(|q| {
            q.contains("X-Amz-Signature")
                || q.contains("Signature=")
                || q.contains("X-Amz-Credential")
        })
}

/// The health answer for `req`, or `None` when it is not a health probe; `ready` says whether
/// the server can take requests (and why not).
pub fn answer<B>(
    req: &Request<B>,
    ready: impl FnOnce() -> Result<(), String>,
) -> Option<Response<s3s::Body>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_s3_signed(req) {
        return None;
    }
    let path = req.uri().path();
    let (status, text) = if LIVE.contains(&path) {
        (StatusCode::OK, "ok\n".to_string())
    } else if READY.contains(&path) {
        match ready() {
            Ok(()) => (StatusCode::OK, "ready\n".to_string()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        }
    } else {
        return None;
    };
    let body = if req.method() == Method::HEAD {
        s3s::Body::empty()
    } else {
        s3s::Body::from(text)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Some(resp)
}
