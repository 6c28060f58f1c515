//! Prometheus metrics at `/metrics` (and `/.tessera/metrics`), in the text exposition format.
//!
//! Two kinds of figures:
//! - **request metrics** (requests by S3 operation and status, latency, bytes in and out) are
//!   counted as requests finish, in [`Metrics`]' long-lived registry;
//! - **state metrics** (disks, shard counters, heal, usage) already live elsewhere (disk slots,
//!   [`erasure::ChunkCounters`], the metastore). They are read at scrape time into a registry
//!   built for that one scrape, so there is no second copy to keep in step.
//!
//! Usage figures come from a scan of the metadata. A scrape reuses the last scan while it is
//! younger than ten times what that scan took, which bounds the scans to about a tenth of one
//! core however large the store and however often it is scraped.
//!
//! Like the health probes, only requests that are not SigV4-signed are taken, so a signed
//! request for a bucket named `metrics` still reaches S3. With a token configured, the request
//! must carry `Authorization: Bearer <token>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sha2::{Digest, Sha256};

use cluster::Disks;
use objects::ObjectService;

use crate::client::ClientAddr;

const PATHS: [&str; 2] = ["/metrics", "/.tessera/metrics"];

/// Latency buckets in seconds: from a cached HEAD to a large upload.
const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The operation label of requests that never reached an S3 operation (failed signature,
/// unroutable path).
pub const UNKNOWN_OPERATION: &str = "Unknown";

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    received: IntCounterVec,
    sent: IntCounterVec,
    transport: IntCounterVec,
    auth_failures: IntCounter,
    auth_throttled: IntCounter,
    in_flight: IntGauge,
    token_digest: Option<[u8; 32]>,
    usage: tokio::sync::Mutex<Option<UsageScan>>,
    deployment_id: String,
}

/// Cumulative request counters at one moment (see [`Metrics::totals`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub received: u64,
    pub sent: u64,
    pub latency_count: u64,
    pub latency_sum_secs: f64,
    /// Requests answered within each of [`LATENCY_BOUNDS`], cumulative.
    pub latency_buckets: Vec<u64>,
}

/// The upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BOUNDS: &[f64] = &LATENCY_BUCKETS;

struct UsageScan {
    at: Instant,
    took: Duration,
    usage: metastore::Usage,
    heal_queue: u64,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails for invalid names or duplicate registrations, i.e. a bug in this file.
    r.expect("metric definition")
}

impl Metrics {
    pub fn new(token: Option<&str>, deployment_id: String) -> Arc<Self> {
        let registry = Registry::new();
        let requests = must(IntCounterVec::new(
            Opts::new(
                "tessera_s3_requests_total",
                "S3 requests answered, by operation and HTTP status.",
            ),
            &["operation", "status"],
        ));
        let duration = must(HistogramVec::new(
            HistogramOpts::new(
                "tessera_s3_request_duration_seconds",
                "Time from a request's arrival to its response headers, by operation.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        ));
        let received = must(IntCounterVec::new(
            Opts::new(
                "tessera_s3_received_bytes_total",
                "Request body bytes read, by operation.",
            ),
            &["operation"],
        ));
        let sent = must(IntCounterVec::new(
            Opts::new(
                "tessera_s3_sent_bytes_total",
                "Response body bytes sent, by operation.",
            ),
            &["operation"],
        ));
        let transport = must(IntCounterVec::new(
            Opts::new(
                "tessera_s3_requests_by_transport_total",
                "S3 requests by the client's transport (http, https), as a trusted proxy reports it or as the connection is.",
            ),
            &["transport"],
        ));
        let auth_failures = must(IntCounter::new(
            "tessera_auth_failures_total",
            "Signed requests refused for their signature or access key (InvalidAccessKeyId, SignatureDoesNotMatch, a disabled user).",
        ));
        let auth_throttled = must(IntCounter::new(
            "tessera_auth_throttled_total",
            "Signed requests refused with 503 SlowDown because their address failed authentication too often (--auth-failure-limit).",
        ));
        let in_flight = must(IntGauge::new(
            "tessera_s3_requests_in_flight",
            "S3 requests being handled now (until their response body is sent).",
        ));
        for c in [
            Box::new(requests.clone()) as Box<dyn Collector>,
            Box::new(duration.clone()),
            Box::new(received.clone()),
            Box::new(sent.clone()),
            Box::new(transport.clone()),
            Box::new(auth_failures.clone()),
            Box::new(auth_throttled.clone()),
            Box::new(in_flight.clone()),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            must(registry.register(c));
        }
        Arc::new(Metrics {
            registry,
            requests,
            duration,
            received,
            sent,
            transport,
            auth_failures,
            auth_throttled,
            in_flight,
            token_digest: token.map(|t| Sha256::digest(t.as_bytes()).into()),
            usage: tokio::sync::Mutex::new(None),
            deployment_id,
        })
    }

    /// Counts a request as started; the guard counts it as finished.
    pub fn start(self: &Arc<Self>, client: Option<&ClientAddr>) -> InFlight {
        if let Some(c) = client {
            self.transport.with_label_values(&[c.scheme()]).inc();
        }
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// Records a request whose response headers are going out.
    pub fn record(&self, operation: &str, status: StatusCode, received: u64, elapsed: Duration) {
        self.requests
            .with_label_values(&[operation, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
        self.received
            .with_label_values(&[operation])
            .inc_by(received);
    }

    /// Counts a signed request refused for its credentials.
    pub fn auth_failed(&self) {
        self.auth_failures.inc();
    }

    /// Counts a signed request refused because its address failed too often.
    pub fn auth_throttled(&self) {
        self.auth_throttled.inc();
    }

    /// Every S3 request's counters summed over operations and statuses, for the console's
    /// charts.
    pub fn totals(&self) -> Totals {
        let sum_counters = |c: &IntCounterVec| -> u64 {
            c.collect()
                .iter()
                .flat_map(|f| f.get_metric())
                .map(|m| m.get_counter().get_value() as u64)
                .sum()
        };
        let mut t = Totals {
            requests: sum_counters(&self.requests),
            received: sum_counters(&self.received),
            sent: sum_counters(&self.sent),
            latency_buckets: vec![0; LATENCY_BUCKETS.len()],
            ..Totals::default()
        };
        for family in self.duration.collect() {
            for m in family.get_metric() {
                let h = m.get_histogram();
                t.latency_count += h.get_sample_count();
                t.latency_sum_secs += h.get_sample_sum();
                for (i, b) in h
                    .get_bucket()
                    .iter()
                    .enumerate()
                    .take(LATENCY_BUCKETS.len())
                {
                    t.latency_buckets[i] += b.cumulative_count();
                }
            }
        }
        t
    }

    /// The counter a response body adds its bytes to as it is sent.
    pub fn sent_counter(&self, operation: &str) -> IntCounter {
        self.sent.with_label_values(&[operation])
    }

    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let Some(expected) = self.token_digest else {
            return true;
        };
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| <[u8; 32]>::from(Sha256::digest(t.trim().as_bytes())));
        // Comparing digests keeps the comparison's timing independent of the token.
        given == Some(expected)
    }

    /// The metrics answer for `req`, or `None` when it is not a metrics request.
    pub async fn answer<B>(
        &self,
        req: &Request<B>,
        service: &ObjectService,
        disks: &Disks,
        (etcd_reachable, notifier): (Option<bool>, &crate::notify::Notifier),
    ) -> Option<Response<s3s::Body>> {
        if !PATHS.contains(&req.uri().path())
            || !matches!(*req.method(), Method::GET | Method::HEAD)
            || crate::health::is_s3_signed(req)
        {
            return None;
        }
        let text_format = TextEncoder::new().format_type().to_owned();
        let (status, content_type, text) = if !self.authorized(req) {
            (
                StatusCode::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "metrics need Authorization: Bearer <token>\n".to_string(),
            )
        } else {
            match self
                .render(service, disks, (etcd_reachable, notifier))
                .await
            {
                Ok(text) => (StatusCode::OK, text_format.as_str(), text),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("cannot collect metrics: {e}\n"),
                ),
            }
        };
        let mut resp = Response::new(if req.method() == Method::HEAD {
            s3s::Body::empty()
        } else {
            s3s::Body::from(text)
        });
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"tessera metrics\""),
            );
        }
        Some(resp)
    }

    /// Every metric in the text format.
    pub async fn render(
        &self,
        service: &ObjectService,
        disks: &Disks,
        (etcd_reachable, notifier): (Option<bool>, &crate::notify::Notifier),
    ) -> Result<String, String> {
        let (usage, queue) = self.usage(service).await?;
        let state = StateMetrics::collect(
            service,
            disks,
            &self.deployment_id,
            &usage,
            queue,
            (etcd_reachable, notifier),
        )
        .await?;
        let mut families = self.registry.gather();
        families.extend(state.gather());
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }

    /// Usage and the heal queue's length (both scans of the metadata), reused as described
    /// in the module docs.
    pub(crate) async fn usage(
        &self,
        service: &ObjectService,
    ) -> Result<(metastore::Usage, u64), String> {
        // Held across the scan, so concurrent scrapes share one.
        let mut cached = self.usage.lock().await;
        if let Some(c) = cached.as_ref()
            && c.at.elapsed() < c.took * 10
        {
            return Ok((c.usage.clone(), c.heal_queue));
        }
        let started = Instant::now();
        let usage = service.meta().usage().await.map_err(|e| e.to_string())?;
        let heal_queue = service
            .meta()
            .heal_queue_len()
            .await
            .map_err(|e| e.to_string())?;
        *cached = Some(UsageScan {
            at: Instant::now(),
            took: started.elapsed(),
            usage: usage.clone(),
            heal_queue,
        });
        Ok((usage, heal_queue))
    }
}

/// Decrements the in-flight gauge when the request is done.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// The registry of one scrape's state metrics.
pub(crate) struct StateMetrics(Registry);

impl StateMetrics {
    async fn collect(
        service: &ObjectService,
        disks: &Disks,
        deployment_id: &str,
        usage: &metastore::Usage,
        heal_queue: u64,
        (etcd_reachable, notifier): (Option<bool>, &crate::notify::Notifier),
    ) -> Result<Self, String> {
        let m = StateMetrics(Registry::new());
        let layout = disks.deployment.layout;
        let labels = &["version", "deployment"];
        let info = m.gauge_vec("tessera_info", "Server version and deployment id.", labels)?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), deployment_id])
            .set(1);
        m.gauge(
            "tessera_erasure_data_shards",
            "Data shards (k) per chunk.",
            layout.data() as i64,
        )?;
        m.gauge(
            "tessera_erasure_parity_shards",
            "Parity shards (m) per chunk.",
            layout.parity as i64,
        )?;

        let disk_labels = &["disk", "path", "set"];
        let state = m.gauge_vec(
            "tessera_disk_state",
            "1 for the state each disk is in (online, faulty: failing its write probe, offline).",
            &["disk", "path", "set", "state"],
        )?;
        let total = m.gauge_vec(
            "tessera_disk_total_bytes",
            "Size of the filesystem holding each disk.",
            disk_labels,
        )?;
        let free = m.gauge_vec(
            "tessera_disk_free_bytes",
            "Free bytes on the filesystem holding each disk.",
            disk_labels,
        )?;
        for d in disks.info().await {
            let (index, set) = (d.index.to_string(), d.set.to_string());
            let current = match d.state {
                erasure::DiskState::Online => "online",
                erasure::DiskState::Faulty(_) => "faulty",
                erasure::DiskState::Offline(_) => "offline",
            };
            for s in ["online", "faulty", "offline"] {
                state
                    .with_label_values(&[&index, &d.path, &set, s])
                    .set(i64::from(s == current));
            }
            if let Some(space) = d.space {
                let l = [index.as_str(), d.path.as_str(), set.as_str()];
                total.with_label_values(&l).set(clamp(space.total));
                free.with_label_values(&l).set(clamp(space.free));
            }
        }

        let nodes = disks.node_status();
        if !nodes.is_empty() {
            let up = m.gauge_vec(
                "tessera_node_online",
                "1 while the storage node answers the gateway's health checks.",
                &["node"],
            )?;
            let latency = m.float_gauge_vec(
                "tessera_node_latency_seconds",
                "Round trip of the last health check to each storage node.",
                &["node"],
            )?;
            for n in nodes {
                up.with_label_values(&[&n.url])
                    .set(i64::from(n.state == "online"));
                if let Some(ms) = n.latency_ms {
                    latency.with_label_values(&[&n.url]).set(ms / 1000.0);
                }
            }
        }

        let c = service.pools().counters();
        for (name, help, value) in [
            (
                "tessera_shard_read_errors_total",
                "Shard reads that failed (I/O error, offline disk); missing and corrupt shards are counted apart.",
                c.shard_read_errors,
            ),
            (
                "tessera_shard_write_errors_total",
                "Shard writes that failed.",
                c.shard_write_errors,
            ),
            (
                "tessera_shards_corrupt_found_total",
                "Shards that failed their checksum when read (bit rot, torn or foreign files).",
                c.corrupt_found,
            ),
            (
                "tessera_shards_missing_found_total",
                "Shards found absent from an online disk when read.",
                c.missing_found,
            ),
            (
                "tessera_shards_healed_total",
                "Shards rebuilt from the others and written back.",
                c.shards_healed,
            ),
            (
                "tessera_shard_heal_failures_total",
                "Rebuilt shards that could not be written back.",
                c.heal_failures,
            ),
            (
                "tessera_heal_queue_healed_total",
                "Chunks the heal queue brought back to full redundancy.",
                service.heal_queue_healed(),
            ),
            (
                "tessera_scanner_passes_total",
                "Full scanner passes finished.",
                service.heal_progress().passes_finished,
            ),
            (
                "tessera_scanner_read_bytes_total",
                "Shard bytes the scanner read to verify chunks (its throughput).",
                service.scanned_bytes(),
            ),
        ] {
            m.counter(name, help, value)?;
        }
        let pass = service.heal_progress();
        m.gauge(
            "tessera_scanner_running",
            "1 while a full scanner pass runs.",
            i64::from(pass.running),
        )?;
        if let Some(job) = service.move_job().await.map_err(|e| e.to_string())? {
            m.gauge(
                "tessera_rebalance_running",
                "1 while a rebalance or decommission moves chunks between pools.",
                i64::from(job.state == objects::JobState::Running),
            )?;
            m.counter(
                "tessera_rebalance_moved_chunks_total",
                "Chunks the current or last rebalance or decommission moved.",
                job.chunks_moved,
            )?;
            m.counter(
                "tessera_rebalance_moved_bytes_total",
                "Bytes of chunks the current or last rebalance or decommission moved.",
                job.bytes_moved,
            )?;
            m.gauge(
                "tessera_rebalance_remaining_bytes",
                "Bytes the current pass of the rebalance or decommission still has to move.",
                clamp(job.bytes_to_move),
            )?;
        }
        let pool_bytes = m.gauge_vec(
            "tessera_pool_chunk_bytes",
            "Bytes of the chunks each pool holds, before erasure coding.",
            &["pool"],
        )?;
        for pool in service.pools().list() {
            pool_bytes
                .with_label_values(&[&pool.id.to_string()])
                .set(clamp(usage.pools.get(&pool.id).map_or(0, |h| h.bytes)));
        }
        m.gauge(
            "tessera_heal_queue_chunks",
            "Chunks waiting in the heal queue for a shard they lack.",
            clamp(heal_queue),
        )?;

        for (name, help, value) in [
            ("tessera_buckets", "Buckets.", usage.buckets),
            (
                "tessera_objects",
                "Current objects (latest versions that are not delete markers).",
                usage.objects,
            ),
            (
                "tessera_object_versions",
                "Stored versions, delete markers included.",
                usage.versions,
            ),
            (
                "tessera_logical_bytes",
                "Bytes of every stored version as clients see them.",
                usage.logical_bytes,
            ),
            (
                "tessera_inline_bytes",
                "Bytes of small objects kept in the metadata store.",
                usage.inline_bytes,
            ),
            ("tessera_chunks", "Distinct chunks stored.", usage.chunks),
            (
                "tessera_chunk_data_bytes",
                "Bytes of data in the distinct chunks, before compression (logical bytes after dedup).",
                usage.chunk_data_bytes,
            ),
            (
                "tessera_chunk_bytes",
                "Bytes of the distinct chunks as stored, before erasure coding (after dedup and compression).",
                usage.chunk_bytes,
            ),
            (
                "tessera_erasure_bytes",
                "Bytes of erasure-coded shards for the distinct chunks: chunk bytes x (k+m)/k, \
                 without shard headers.",
                usage.chunk_bytes * layout.set_size as u64 / layout.data().max(1) as u64,
            ),
        ] {
            m.gauge(name, help, clamp(value))?;
        }
        let chunked = usage.logical_bytes.saturating_sub(usage.inline_bytes);
        let ratio = |over: u64, under: u64| {
            if under == 0 {
                1.0
            } else {
                over as f64 / under as f64
            }
        };
        for (name, help, value) in [
            (
                "tessera_dedup_ratio",
                "Logical bytes in chunks per byte of distinct chunk data; above 1 means dedup saves space.",
                ratio(chunked, usage.chunk_data_bytes),
            ),
            (
                "tessera_compression_ratio",
                "Distinct chunk data per stored chunk byte; above 1 means compression saves space.",
                ratio(usage.chunk_data_bytes, usage.chunk_bytes),
            ),
        ] {
            let g = Gauge::new(name, help).map_err(|e| e.to_string())?;
            g.set(value);
            m.register(g)?;
        }

        let commits = service.meta().commit_counts();
        let outcomes = IntCounterVec::new(
            Opts::new(
                "tessera_metadata_commits_total",
                "Metadata commits of this gateway by outcome (done; conflict: something read had changed, the transaction runs again; unavailable: the backend, etcd, did not answer; failed).",
            ),
            &["outcome"],
        )
        .map_err(|e| e.to_string())?;
        for (outcome, n) in [
            ("done", commits.done),
            ("conflict", commits.conflicts),
            ("unavailable", commits.unavailable),
            ("failed", commits.failed),
        ] {
            outcomes.with_label_values(&[outcome]).inc_by(n);
        }
        m.register(outcomes)?;
        let seconds = prometheus::Counter::new(
            "tessera_metadata_commit_seconds_total",
            "Time spent in metadata commits (divide by tessera_metadata_commits_total for the mean latency).",
        )
        .map_err(|e| e.to_string())?;
        seconds.inc_by(commits.seconds);
        m.register(seconds)?;
        m.counter(
            "tessera_metadata_transaction_reruns_total",
            "Metadata transactions run again after a conflict.",
            commits.reruns,
        )?;
        crate::governance_metrics::collect(&m, service, notifier).await?;
        if let Some(reachable) = etcd_reachable {
            m.gauge(
                "tessera_etcd_reachable",
                "1 while this gateway's etcd lease renewals get through, else 0.",
                i64::from(reachable),
            )?;
        }
        Ok(m)
    }

    pub(crate) fn register(&self, c: impl Collector + 'static) -> Result<(), String> {
        self.0.register(Box::new(c)).map_err(|e| e.to_string())
    }

    pub(crate) fn gauge(&self, name: &str, help: &str, value: i64) -> Result<(), String> {
        let g = IntGauge::new(name, help).map_err(|e| e.to_string())?;
        g.set(value);
        self.register(g)
    }

    pub(crate) fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, String> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(|e| e.to_string())?;
        self.register(g.clone())?;
        Ok(g)
    }

    pub(crate) fn float_gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<GaugeVec, String> {
        let g = GaugeVec::new(Opts::new(name, help), labels).map_err(|e| e.to_string())?;
        self.register(g.clone())?;
        Ok(g)
    }

    pub(crate) fn counter(&self, name: &str, help: &str, value: u64) -> Result<(), String> {
        let c = IntCounter::new(name, help).map_err(|e| e.to_string())?;
        c.inc_by(value);
        self.register(c)
    }

    fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.gather()
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_is_checked() {
        let open = Metrics::new(None, "dep".into());
        let req = |auth: Option<&str>| {
            let mut b = Request::builder().uri("/metrics");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(()).unwrap()
        };
        assert!(open.authorized(&req(None)));
        let locked = Metrics::new(Some("s3cret"), "dep".into());
        assert!(!locked.authorized(&req(None)));
        assert!(!locked.authorized(&req(Some("Bearer wrong"))));
        assert!(!locked.authorized(&req(Some("Basic s3cret"))));
        assert!(locked.authorized(&req(Some("Bearer s3cret"))));
    }

    #[test]
    fn request_metrics_are_exposed() {
        let m = Metrics::new(None, "dep".into());
        m.record("PutObject", StatusCode::OK, 10, Duration::from_millis(3));
        m.record("PutObject", StatusCode::OK, 5, Duration::from_millis(3));
        m.sent_counter("GetObject").inc_by(7);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"tessera_s3_requests_total{operation="PutObject",status="200"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"tessera_s3_received_bytes_total{operation="PutObject"} 15"#));
        assert!(text.contains(r#"tessera_s3_sent_bytes_total{operation="GetObject"} 7"#));
        assert!(text.contains(
            r#"tessera_s3_request_duration_seconds_bucket{operation="PutObject",le="0.005"} 2"#
        ));
    }
}
