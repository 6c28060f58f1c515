//! A standby gateway's port: while another gateway of the cluster is the active one, this one
//! listens already, so that probes and load balancers see it, but takes no S3 request:
//! liveness answers 200, readiness 503, and everything else 503 `ServiceUnavailable` (S3 clients
//! retry, and a load balancer sends them to the active gateway).

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const WHY: &str = "standby: another gateway of this cluster is the active one";

fn answer(req: &Request<Incoming>) -> Response<s3s::Body> {
    if let Some(probe) = crate::health::answer(req, || Err(WHY.to_owned())) {
        return probe;
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
         <Message>This gateway is on standby: another gateway of this cluster is active. \
         Please retry.</Message><Resource>{}</Resource></Error>",
        crate::http::xml_escape(req.uri().path())
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

/// Answers as a standby on `listener` until `until` is cancelled, then closes the standby
/// connections (so no client keeps one that only ever says 503) and gives the listener back.
pub async fn serve(listener: TcpListener, until: CancellationToken) -> TcpListener {
    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(answer(&req))
                });
                let conn = graceful.watch(http.serve_connection(TokioIo::new(socket), svc).into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = until.cancelled() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
    listener
}
