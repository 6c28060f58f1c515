//! What is recorded about every S3 request: one access-log line (target `access`) and the
//! request metrics.
//!
//! The status, latency to the response headers and bytes received are recorded when the
//! response starts. The access line is written once the response body has been sent (or the
//! client went away), so its `bytes_out` and `duration_ms` are what really happened, as in a
//! web server's access log.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Response};

use crate::client::ClientAddr;
use crate::metrics::Metrics;

/// Where the S3 access check leaves the name of the operation s3s resolved.
#[derive(Clone, Default)]
pub struct OperationSlot(Arc<OnceLock<String>>);

impl OperationSlot {
    pub fn set(&self, name: &str) {
        let _ = self.0.set(name.to_owned());
    }

    /// Whether the access check ran (so the signature, if any, was accepted).
    pub fn resolved(&self) -> bool {
        self.0.get().is_some()
    }

    /// The operation's name; requests that never reached one are named by `path`.
    pub fn name(&self, path: &str) -> String {
        match self.0.get() {
            Some(name) => name.clone(),
            None if path.starts_with(crate::admin::ADMIN_PREFIX) => "Admin".to_owned(),
            None => crate::metrics::UNKNOWN_OPERATION.to_owned(),
        }
    }
}

/// One request, from its arrival until its response body is gone.
pub struct RequestRecord {
    /// Keeps the request counted as in flight until its body is gone.
    pub in_flight: crate::metrics::InFlight,
    pub span: tracing::Span,
    pub method: Method,
    pub path: String,
    pub started: Instant,
    /// The client, when the request came over a connection (not in unit tests).
    pub client: Option<ClientAddr>,
}

impl RequestRecord {
    /// Records the response in the metrics and arranges for the access line to be written
    /// when its body has been sent.
    pub fn respond(
        self,
        metrics: &Metrics,
        operation: String,
        bytes_in: u64,
        resp: Response<s3s::Body>,
    ) -> Response<s3s::Body> {
        metrics.record(&operation, resp.status(), bytes_in, self.started.elapsed());
        let done = Finished {
            record: self,
            sent: metrics.sent_counter(&operation),
            operation,
            status: resp.status().as_u16(),
            bytes_in,
            bytes_out: 0,
        };
        if http_body::Body::is_end_stream(resp.body()) {
            return resp; // `done` drops here: the line is written now
        }
        resp.map(|inner| s3s::Body::http_body_unsync(CountedBody { inner, done }))
    }
}

/// Writes the access line when dropped.
struct Finished {
    record: RequestRecord,
    operation: String,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    sent: prometheus::IntCounter,
}

impl Drop for Finished {
    fn drop(&mut self) {
        let r = &self.record;
        let _entered = r.span.enter();
        let decoded = percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy();
        let mut parts = decoded.trim_start_matches('/').splitn(2, '/');
        let bucket = parts.next().unwrap_or("");
        let key = parts.next().unwrap_or("");
        let client = r.client.map(|c| c.ip.to_string()).unwrap_or_default();
        let scheme = r.client.map_or("", |c| c.scheme());
        tracing::info!(
            target: "access",
            client,
            scheme,
            method = %r.method,
            operation = %self.operation,
            bucket,
            key,
            status = self.status,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            duration_ms = r.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}

/// A response body that counts the bytes it hands to the connection.
struct CountedBody {
    inner: s3s::Body,
    done: Finished,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, s3s::StdError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.done.bytes_out += n;
            self.done.sent.inc_by(n);
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
