//! The HTTP layer around the s3s service: health probes and metrics, request ids, the access
//! log and request metrics (see [`crate::access`]), and the parts of S3's error format that
//! s3s leaves out.
//!
//! Every response carries `x-amz-request-id`; every S3 error body also names it in
//! `<RequestId>` and names the request path in `<Resource>` (s3s writes neither), so a user's
//! error report can be matched to the server's log line.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::service::S3Service;

use crate::access::{OperationSlot, RequestRecord};
use crate::client::{ClientAddr, TrustedProxies};
use crate::metrics::Metrics;

/// Error bodies larger than this are passed through untouched (S3 errors are a few hundred
/// bytes; this only guards against buffering something unexpected).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The request body, noting whether it was read to the end. A response sent before the body
/// was read (an early error) must close the connection: the unread bytes would otherwise be
/// parsed as the next request on it.
struct TrackedBody {
    inner: Incoming,
    progress: Arc<BodyProgress>,
}

#[derive(Default)]
struct BodyProgress {
    finished: AtomicBool,
    /// Body bytes read so far.
    received: AtomicU64,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.progress
                .received
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.progress.finished.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The document order of a ListObjectVersions page: `true` where a `<DeleteMarker>` stands,
/// `false` for a `<Version>`.
#[derive(Debug, Clone)]
pub struct EntryOrder(pub Vec<bool>);

/// Rewrites a ListVersionsResult so `<Version>` and `<DeleteMarker>` entries interleave in
/// `order` (each kind keeps its own relative order). `None` when the body does not match.
pub fn interleave_versions(body: &str, order: &[bool]) -> Option<String> {
    fn segments(body: &str, open: &str, close: &str) -> Option<Vec<(usize, usize)>> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(s) = body[from..].find(open) {
            let start = from + s;
            let end = start + body[start..].find(close)? + close.len();
            out.push((start, end));
            from = end;
        }
        Some(out)
    }
    let versions = segments(body, "<Version>", "</Version>")?;
    let markers = segments(body, "<DeleteMarker>", "</DeleteMarker>")?;
    if versions.len() + markers.len() != order.len()
        || order.iter().filter(|m| **m).count() != markers.len()
    {
        return None;
    }
    let Some(first) = versions.iter().chain(&markers).map(|(s, _)| *s).min() else {
        return Some(body.to_owned());
    };
    let (mut v, mut m) = (versions.iter(), markers.iter());
    let mut merged = String::new();
    for is_marker in order {
        let (s, e) = if *is_marker { m.next()? } else { v.next()? };
        merged.push_str(&body[*s..*e]);
    }
    let mut removed: Vec<(usize, usize)> = versions.into_iter().chain(markers).collect();
    removed.sort_unstable();
    let mut out = String::with_capacity(body.len());
    let mut at = 0;
    for (s, e) in removed {
        out.push_str(&body[at..s]);
        if s == first {
            out.push_str(&merged);
        }
        at = e;
    }
    out.push_str(&body[at..]);
    Some(out)
}

pub fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    id[..16].to_owned()
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The message S3 sends for codes that s3s leaves without one.
fn default_message(code: &str) -> &'static str {
    match code {
        "InvalidBucketName" => "The specified bucket is not valid.",
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method."
        }
        "MalformedXML" => {
            "The XML you provided was not well-formed or did not validate against our published schema."
        }
        "AccessDenied" => "Access Denied",
        "NoSuchBucket" => "The specified bucket does not exist",
        "NoSuchKey" => "The specified key does not exist.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        "InvalidRequest" => "Invalid Request",
        "InvalidArgument" => "Invalid Argument",
        _ => "The request could not be completed.",
    }
}

fn element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(&body[start..end])
}

/// Adds `<Message>`, `<Resource>` and `<RequestId>` to an S3 `<Error>` document that lacks
/// them.
pub fn complete_error_body(body: &str, resource: &str, request_id: &str) -> Option<String> {
    let end = body.rfind("</Error>")?;
    let mut extra = String::new();
    if !body.contains("<Message>") {
        let code = element(body, "Code").unwrap_or_default();
        extra.push_str(&format!(
            "<Message>{}</Message>",
            xml_escape(default_message(code))
        ));
    }
    if !body.contains("<Resource>") {
        extra.push_str(&format!("<Resource>{}</Resource>", xml_escape(resource)));
    }
    if !body.contains("<RequestId>") {
        extra.push_str(&format!(
            "<RequestId>{}</RequestId>",
            xml_escape(request_id)
        ));
    }
    Some(format!("{}{extra}{}", &body[..end], &body[end..]))
}

/// S3 caps presigned URLs at seven days; s3s does not check the upper bound.
const MAX_PRESIGNED_EXPIRY_SECS: u64 = 604_800;

fn check_presigned_expiry(query: Option<&str>) -> Result<(), s3s::S3Error> {
    let Some(q) = query else { return Ok(()) };
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        if k == "X-Amz-Expires" {
            return match v.parse::<u64>() {
                Ok(n) if (1..=MAX_PRESIGNED_EXPIRY_SECS).contains(&n) => Ok(()),
                _ => Err(s3s::S3Error::with_message(
                    s3s::S3ErrorCode::AuthorizationQueryParametersError,
                    "X-Amz-Expires must be a number of seconds from 1 to 604800 (seven days)",
                )),
            };
        }
    }
    Ok(())
}

/// The first value of a query parameter, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// How far a SigV2 header-signed request's date may be from now (S3's limit).
const SIGV2_MAX_SKEW_SECS: i64 = 900;

/// s3s checks neither a SigV2 request's date nor how far ahead a SigV2 presigned URL's
/// `Expires` lies, so a captured request would replay for ever: refuse what S3 refuses.
fn check_sigv2_freshness(
    headers: &http::HeaderMap,
    query: Option<&str>,
) -> Result<(), s3s::S3Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header(http::header::AUTHORIZATION.as_str()).is_some_and(|a| a.starts_with("AWS ")) {
        let date = header("x-amz-date")
            .and_then(crate::s3::convert::parse_http_date)
            .or_else(|| {
                header(http::header::DATE.as_str()).and_then(crate::s3::convert::parse_http_date)
            })
            .map(|ts| time::OffsetDateTime::from(ts).unix_timestamp());
        if date.is_none_or(|d| (d - now).abs() > SIGV2_MAX_SKEW_SECS) {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::RequestTimeTooSkewed,
                "The difference between the request time and the current time is too large.",
            ));
        }
    }
    let params: Vec<_> = form_urlencoded::parse(query.unwrap_or("").as_bytes()).collect();
    let has = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    };
    if has("AWSAccessKeyId").is_some()
        && let Some(expires) = has("Expires")
        && !expires
            .parse::<i64>()
            .is_ok_and(|e| e <= now + MAX_PRESIGNED_EXPIRY_SECS as i64)
    {
        return Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::AuthorizationQueryParametersError,
            "Expires must be a time no more than seven days from now",
        ));
    }
    Ok(())
}

/// s3s reports a POST policy condition that the form breaks as InvalidPolicyDocument (400);
/// S3 answers 403 AccessDenied ("Invalid according to Policy").
fn policy_violation_is_access_denied(status: &mut StatusCode, body: String) -> String {
    let violated = element(&body, "Code") == Some("InvalidPolicyDocument")
        && element(&body, "Message").is_some_and(|m| m.starts_with("Policy condition"));
    if !violated {
        return body;
    }
    *status = StatusCode::FORBIDDEN;
    body.replacen(
        "<Code>InvalidPolicyDocument</Code><Message>",
        "<Code>AccessDenied</Code><Message>Invalid according to Policy: ",
        1,
    )
}

/// What every connection's service needs.
pub struct Frontend {
    pub s3: S3Service,
    pub disks: Arc<cluster::Disks>,
    pub service: Arc<objects::ObjectService>,
    pub metrics: Arc<Metrics>,
    /// The cluster on etcd this gateway is one of, if any.
    pub cluster: Option<Arc<dyn crate::cluster_view::ClusterView>>,
    /// Domains for virtual-host-style addressing (CORS finds the bucket with them).
    pub domains: Vec<String>,
    /// Peers whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// Present when the port serves HTTPS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Holds back addresses that fail authentication too often.
    pub auth_limit: crate::auth_limit::AuthFailureLimiter,
    /// Webhook targets of bucket notifications, and their delivery counts.
    pub notifier: Arc<crate::notify::Notifier>,
    /// The web console at `/console/`, unless it is off.
    pub console: Option<crate::console::Console>,
}

impl Frontend {
    /// Ready: every erasure set has its write quorum, and etcd answers (on etcd).
    fn readiness(&self) -> Result<(), String> {
        self.disks.readiness()?;
        match &self.cluster {
            Some(cluster) => cluster.etcd_reachable(),
            None => Ok(()),
        }
    }
}

pub async fn handle(
    front: Arc<Frontend>,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    if let Some(console) = &front.console
        && (crate::console::is_console_path(req.uri().path())
            || crate::console::opens_console(&req))
        && !is_signed(&req)
    {
        match console.route(&front, req).await {
            crate::console::Routed::Answer(resp) => return Ok(resp),
            crate::console::Routed::Forward(req) => {
                return handle_s3(front.clone(), req)
                    .await
                    .map(crate::console::sandbox);
            }
        }
    }
    handle_s3(front, req).await
}

/// Everything but the console: health, metrics, the admin relay, and the S3 service.
async fn handle_s3(
    front: Arc<Frontend>,
    req: Request<Incoming>,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    if let Some(resp) = crate::health::answer(&req, || front.readiness()) {
        return Ok(resp);
    }
    if let Some(resp) = front
        .metrics
        .answer(
            &req,
            &front.service,
            &front.disks,
            (
                front.cluster.as_ref().map(|c| c.etcd_reachable().is_ok()),
                &front.notifier,
            ),
        )
        .await
    {
        return Ok(resp);
    }
    // The admin API is the leader's: it runs the jobs the admin commands start and watch.
    if req.uri().path().starts_with(crate::admin::ADMIN_PREFIX)
        && let Some(leader) = front.cluster.as_ref().and_then(|c| c.admin_elsewhere())
    {
        return Ok(crate::starting::relay(req, leader.as_ref()).await);
    }
    let request_id = new_request_id();
    let client = req.extensions().get::<ClientAddr>().copied();
    let signed = is_signed(&req);
    // An address that failed authentication too often gets no signed request served.
    let throttled = signed && client.is_some_and(|c| front.auth_limit.blocked(c.ip));
    let record = RequestRecord {
        in_flight: front.metrics.start(client.as_ref()),
        client,
        span: tracing::info_span!("request", id = %request_id),
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        started: std::time::Instant::now(),
    };
    let decoded_length = req
        .headers()
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let operation = OperationSlot::default();
    let body = Arc::new(BodyProgress::default());
    let responding = respond(
        front.clone(),
        req,
        request_id,
        operation.clone(),
        body.clone(),
        throttled,
    );
    let result = tracing::Instrument::instrument(responding, record.span.clone()).await;
    // A signed request refused before the access check ran failed its authentication (the
    // check records the operation only for accepted signatures).
    if signed
        && !operation.resolved()
        && let Ok(resp) = &result
        && resp.status() == StatusCode::FORBIDDEN
        && let Some(c) = client
    {
        front.metrics.auth_failed();
        front.auth_limit.failed(c.ip);
    }
    let op = operation.name(&record.path);
    // Payload bytes: for aws-chunked uploads read to the end, the decoded length rather than
    // the framing on the wire.
    let bytes_in = match decoded_length {
        Some(n) if body.finished.load(Ordering::Relaxed) => n,
        _ => body.received.load(Ordering::Relaxed),
    };
    match result {
        Ok(resp) => Ok(record.respond(&front.metrics, op, bytes_in, resp)),
        Err(e) => {
            let _entered = record.span.enter();
            tracing::info!(target: "access", method = %record.method, path = %record.path, operation = %op, error = ?e, "request failed");
            Err(e)
        }
    }
}

/// Whether a request carries a signature (header, or presigned query of SigV4 or SigV2).
fn is_signed<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(http::header::AUTHORIZATION)
        || req.uri().query().is_some_and(|q| {
            q.split('&').any(|p| {
                let name = p.split('=').next().unwrap_or("");
                name.eq_ignore_ascii_case("X-Amz-Signature") || name == "Signature"
            })
        })
}

async fn respond(
    front: Arc<Frontend>,
    req: Request<Incoming>,
    request_id: String,
    operation: OperationSlot,
    body: Arc<BodyProgress>,
    throttled: bool,
) -> Result<Response<s3s::Body>, s3s::HttpError> {
    let resource = req.uri().path().to_owned();
    let preflight = req.method() == http::Method::OPTIONS;
    if preflight {
        operation.set("PreflightCORS");
    }
    let cors = crate::cors::Actual::of(&front, &req).filter(|_| !preflight);
    let s3 = front.s3.clone();
    let is_head = req.method() == http::Method::HEAD;
    let is_post = req.method() == http::Method::POST;
    if http_body::Body::is_end_stream(req.body()) {
        body.finished.store(true, Ordering::Relaxed);
    }
    let mut req = req.map(|inner| {
        s3s::Body::http_body_unsync(TrackedBody {
            inner,
            progress: body.clone(),
        })
    });
    req.extensions_mut().insert(operation);
    let answered = if throttled {
        front.metrics.auth_throttled();
        Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::SlowDown,
            "Too many failed authentication attempts from your address; please retry later.",
        ))
    } else if preflight {
        // Answered here, unauthenticated as on S3; its errors go through the same completion
        // as s3s's below.
        crate::cors::preflight(&front, &req).await
    } else {
        let checked = check_presigned_expiry(req.uri().query())
            .and_then(|()| check_sigv2_freshness(req.headers(), req.uri().query()));
        let checked = match checked {
            Ok(()) if crate::spool::needed(&req) => crate::spool::spool(req).await,
            Ok(()) => Ok(req),
            Err(e) => Err(e),
        };
        match checked {
            Ok(req) => Ok(s3.call(req).await?),
            Err(e) => Err(e),
        }
    };
    let mut resp = match answered {
        Ok(resp) => resp,
        Err(e) => e
            .to_http_response()
            .map_err(|e| s3s::HttpError::new(Box::new(e)))?,
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    if let Some(cors) = cors {
        cors.decorate(&front, &mut resp).await;
    }
    if !body.finished.load(Ordering::Relaxed) {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    // s3s always answers HeadObject with 200; a HEAD for a range or part is 206 in S3.
    if is_head
        && resp.status() == StatusCode::OK
        && resp.headers().contains_key(http::header::CONTENT_RANGE)
    {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    if let Some(EntryOrder(order)) = resp.extensions_mut().remove::<EntryOrder>() {
        return Ok(reorder_versions(resp, &order).await);
    }
    if resp.extensions_mut().remove::<UnquotedETag>().is_some() {
        return Ok(rewrite_body(resp, unquote_etag).await);
    }
    // POST Object with success_action_status 201: s3s writes the PostResponse's ETag without
    // the quotes S3 puts there.
    if is_post && resp.status() == StatusCode::CREATED {
        return Ok(rewrite_body(resp, quote_post_etag).await);
    }
    let is_xml_error = resp.status() >= StatusCode::BAD_REQUEST
        && resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
    if !is_xml_error {
        return Ok(resp);
    }
    tracing::debug!(%request_id, status = %resp.status(), %resource, "S3 error response");
    let (mut parts, body) = resp.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(Response::from_parts(parts, s3s::Body::empty())),
    };
    let completed = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| complete_error_body(text, &resource, &request_id))
        .map(|text| policy_violation_is_access_denied(&mut parts.status, text));
    let body = match completed {
        Some(text) => {
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Bytes::from(text)
        }
        None => bytes,
    };
    Ok(Response::from_parts(parts, s3s::Body::from(body)))
}

async fn reorder_versions(resp: Response<s3s::Body>, order: &[bool]) -> Response<s3s::Body> {
    rewrite_body(resp, |b| interleave_versions(b, order)).await
}

/// Marks a response whose XML `<ETag>` S3 writes without quotes (GetObjectAttributes).
#[derive(Clone, Copy)]
pub struct UnquotedETag;

fn unquote_etag(body: &str) -> Option<String> {
    Some(
        body.replace("<ETag>&quot;", "<ETag>")
            .replace("&quot;</ETag>", "</ETag>")
            .replace("<ETag>\"", "<ETag>")
            .replace("\"</ETag>", "</ETag>"),
    )
}

fn quote_post_etag(body: &str) -> Option<String> {
    if !body.contains("<PostResponse") {
        return None;
    }
    let start = body.find("<ETag>")? + "<ETag>".len();
    let end = start + body[start..].find("</ETag>")?;
    let value = &body[start..end];
    if value.starts_with('"') || value.starts_with("&quot;") {
        return None;
    }
    Some(format!(
        "{}&quot;{value}&quot;{}",
        &body[..start],
        &body[end..]
    ))
}

/// A small XML answer rewritten by `edit` (left as it is when `edit` declines).
async fn rewrite_body(
    resp: Response<s3s::Body>,
    edit: impl FnOnce(&str) -> Option<String>,
) -> Response<s3s::Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return Response::from_parts(parts, s3s::Body::empty()),
    };
    match std::str::from_utf8(&bytes).ok().and_then(edit) {
        Some(text) => {
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Response::from_parts(parts, s3s::Body::from(text))
        }
        None => Response::from_parts(parts, s3s::Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_gets_resource_and_request_id() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>"#;
        let out = complete_error_body(body, "/b/k&<x>", "ABC").unwrap();
        assert!(
            out.ends_with(
                "<Resource>/b/k&amp;&lt;x&gt;</Resource><RequestId>ABC</RequestId></Error>"
            ),
            "{out}"
        );
        assert_eq!(complete_error_body("<Other/>", "/", "A"), None);
        let already = complete_error_body(&out, "/other", "XYZ").unwrap();
        assert_eq!(already, out);
    }

    #[test]
    fn versions_and_markers_interleave() {
        let body = "<R><Name>b</Name><Version><VersionId>1</VersionId></Version><Version><VersionId>3</VersionId></Version><DeleteMarker><VersionId>2</VersionId></DeleteMarker><Prefix></Prefix></R>";
        let out = interleave_versions(body, &[false, true, false]).unwrap();
        assert_eq!(
            out,
            "<R><Name>b</Name><Version><VersionId>1</VersionId></Version><DeleteMarker><VersionId>2</VersionId></DeleteMarker><Version><VersionId>3</VersionId></Version><Prefix></Prefix></R>"
        );
        assert_eq!(interleave_versions(body, &[true]), None);
        assert_eq!(interleave_versions("<R></R>", &[]).unwrap(), "<R></R>");
    }

    #[test]
    fn post_response_etag_gets_its_quotes() {
        let body = "<PostResponse><Bucket>b</Bucket><ETag>abc</ETag></PostResponse>";
        assert_eq!(
            quote_post_etag(body).as_deref(),
            Some("<PostResponse><Bucket>b</Bucket><ETag>&quot;abc&quot;</ETag></PostResponse>")
        );
        assert_eq!(
            quote_post_etag("<PostResponse><ETag>&quot;x&quot;</ETag></PostResponse>"),
            None
        );
        assert_eq!(quote_post_etag("<Other><ETag>x</ETag></Other>"), None);
        assert_eq!(
            unquote_etag("<R><ETag>&quot;x&quot;</ETag></R>").as_deref(),
            Some("<R><ETag>x</ETag></R>")
        );
    }

    #[test]
    fn presigned_expiry_bounds() {
        assert!(check_presigned_expiry(None).is_ok());
        assert!(check_presigned_expiry(Some("X-Amz-Expires=3600&a=b")).is_ok());
        assert!(check_presigned_expiry(Some("X-Amz-Expires=604801")).is_err());
        assert!(check_presigned_expiry(Some("X-Amz-Expires=abc")).is_err());
        assert!(check_presigned_expiry(Some("X-Amz-Expires=0")).is_err());
    }

    #[test]
    fn policy_violations_become_access_denied() {
        let mut status = StatusCode::BAD_REQUEST;
        let out = policy_violation_is_access_denied(
            &mut status,
            "<Error><Code>InvalidPolicyDocument</Code><Message>Policy condition failed</Message></Error>".into(),
        );
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(out.contains("<Code>AccessDenied</Code>"), "{out}");
        let mut status = StatusCode::BAD_REQUEST;
        policy_violation_is_access_denied(
            &mut status,
            "<Error><Code>InvalidPolicyDocument</Code><Message>bad base64</Message></Error>".into(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn request_ids_look_like_s3s() {
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(id, new_request_id());
    }
}
