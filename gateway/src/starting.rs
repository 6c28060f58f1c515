//! A gateway's port while it cannot serve yet (connecting to etcd, waiting for the cluster's
//! first gateway to create the deployment, or waiting for etcd to come back): it listens
//! already and passes S3 requests on to the leader (whose URL etcd's leader key carries), if
//! one is known. Probes are its own: liveness answers 200 and readiness 503.
//!
//! [`relay`] is also how a gateway passes admin requests on to the leader. Without a known
//! leader, or when it cannot be reached, a request gets 503 `ServiceUnavailable` with
//! `Retry-After` (S3 clients retry). A request another gateway already passed on is never
//! passed on again, so two gateways with stale views cannot bounce it between them.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const WHY: &str = "this gateway is starting or waiting for etcd";
/// Marks a request a gateway passed on.
pub const FORWARDED: &str = "x-tessera-forwarded-by-gateway";

/// Where the leader is, as far as this gateway knows (etcd's leader key).
pub type LeaderUrl = Arc<RwLock<Option<Uri>>>;

fn unavailable(req_path: &str, why: &str) -> Response<s3s::Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
         <Message>This gateway cannot serve this request: {why}. Please retry.</Message>\
         <Resource>{}</Resource></Error>",
        crate::http::xml_escape(req_path)
    );
    let mut resp = Response::new(s3s::Body::from(body));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    resp.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    resp
}

/// The request aimed at `active`: same method, path, query, headers (the Host header
/// included, which the signature covers) and streamed body.
fn aimed_at(mut req: Request<Incoming>, active: &Uri) -> Option<Request<Incoming>> {
    let path = req.uri().path_and_query().cloned();
    let mut parts = active.clone().into_parts();
    parts.path_and_query = path.or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
    *req.uri_mut() = Uri::from_parts(parts).ok()?;
    req.headers_mut()
        .insert(FORWARDED, http::HeaderValue::from_static("1"));
    Some(req)
}

async fn answer(
    req: Request<Incoming>,
    active: LeaderUrl,
    client: Client<HttpsConnector<HttpConnector>, Incoming>,
) -> Response<s3s::Body> {
    if let Some(probe) = crate::health::answer(&req, || Err(WHY.to_owned())) {
        return probe;
    }
    let target = active.read().ok().and_then(|a| a.clone());
    pass_on(req, target.as_ref(), &client).await
}

async fn pass_on(
    req: Request<Incoming>,
    target: Option<&Uri>,
    client: &Client<HttpsConnector<HttpConnector>, Incoming>,
) -> Response<s3s::Body> {
    let path = req.uri().path().to_owned();
    if req.headers().contains_key(FORWARDED) {
        return unavailable(
            &path,
            "it was passed on by another gateway, which cannot serve it either",
        );
    }
    let Some(target) = target else {
        return unavailable(&path, "no leader is known yet");
    };
    let Some(forward) = aimed_at(req, target) else {
        return unavailable(&path, "the leader's address is not usable");
    };
    match client.request(forward).await {
        Ok(resp) => resp.map(s3s::Body::from),
        Err(e) => {
            tracing::debug!(leader = %target, error = %e, "passing a request on to the leader failed");
            unavailable(&path, "the leader cannot be reached")
        }
    }
}

fn client() -> Client<HttpsConnector<HttpConnector>, Incoming> {
    Client::builder(TokioExecutor::new()).build(cluster::tls::connector(Duration::from_secs(3)))
}

/// Passes a request on to the leader at `target` (`None`: none is known), streamed, with its
/// headers (the signature covers Host), and returns its answer.
pub async fn relay(req: Request<Incoming>, target: Option<&Uri>) -> Response<s3s::Body> {
    static CLIENT: std::sync::OnceLock<Client<HttpsConnector<HttpConnector>, Incoming>> =
        std::sync::OnceLock::new();
    pass_on(req, target, CLIENT.get_or_init(client)).await
}

/// Answers as a starting gateway on `listener` until `until` is cancelled, then closes its
/// connections (so no client keeps one to a gateway that changes role) and gives the listener
/// back.
pub async fn serve(
    listener: TcpListener,
    until: CancellationToken,
    active: LeaderUrl,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> TcpListener {
    let http = Arc::new(hyper_util::server::conn::auto::Builder::new(
        TokioExecutor::new(),
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let client = client();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let (active, client) = (active.clone(), client.clone());
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (active, client) = (active.clone(), client.clone());
                    async move { Ok::<_, Infallible>(answer(req, active, client).await) }
                });
                let (http, tls, watcher) = (http.clone(), tls.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let Some(io) = crate::tls::accept(socket, tls.as_ref()).await else {
                        return;
                    };
                    let _ = watcher.watch(http.serve_connection(TokioIo::new(io), svc).into_owned()).await;
                });
            }
            () = until.cancelled() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
    listener
}
