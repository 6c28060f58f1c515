//! The S3 port: assembling the front end (s3s service with tessera's auth, access check, admin
//! route and virtual hosts, plus health and metrics) and serving it on a listener until the
//! shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use cluster::Disks;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use objects::ObjectService;
use s3s::service::S3ServiceBuilder;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::AdminApi;
use crate::client::TrustedProxies;
use crate::http::Frontend;
use crate::metrics::Metrics;
use crate::s3::{AccessCheck, Authz, Domains, SecretLookup, TesseraS3};

/// The largest file a POST Object (browser form) upload may carry: s3s holds it in memory
/// before the access check can run, and its 5 GiB default would let anonymous forms exhaust
/// memory.
pub const POST_OBJECT_MAX_BYTES: u64 = 128 << 20;

/// What the front end serves and how.
pub struct FrontendParts {
    pub service: Arc<ObjectService>,
    pub disks: Arc<Disks>,
    pub users: Arc<iam::Users>,
    pub region: String,
    pub root_access_key: String,
    pub root_secret_key: secrecy::SecretString,
    /// Domains for virtual-host-style addressing (BUCKET.DOMAIN); empty: path style only.
    pub domains: Vec<String>,
    /// Bearer token `/metrics` requires, if any.
    pub metrics_token: Option<secrecy::SecretString>,
    /// The deployment's id (pool 0's format id, kept when pool 0 is decommissioned).
    pub deployment_id: String,
    /// Where the metadata replicas are, for `admin info`.
    pub meta_replicas: Vec<String>,
    /// The cluster on etcd this gateway is one of, if any: its gateways (`admin
    /// info`) and etcd's reachability (readiness, metrics).
    pub cluster: Option<Arc<dyn crate::cluster_view::ClusterView>>,
    /// Adds pools of disks (`admin pool add`).
    pub pool_manager: Option<Arc<dyn crate::pool_manager::PoolManager>>,
    /// Peers whose `Forwarded`/`X-Forwarded-*` headers name the client (`--trusted-proxy`).
    pub trusted_proxies: TrustedProxies,
    /// Serve HTTPS with these certificates (`--certs-dir`); None: plain HTTP.
    pub tls: Option<Arc<crate::tls::CertsDir>>,
    /// Take SSE-C headers over plain HTTP (`--allow-insecure-sse-c`).
    pub allow_insecure_sse_c: bool,
    /// Failed authentications an address may have a minute before its signed requests get
    /// 503 SlowDown (`--auth-failure-limit`); 0: no limit.
    pub auth_failures_per_minute: u32,
    /// Webhook targets of bucket notifications (`--notify-webhook`) and their delivery.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Serve the web console at `/console/` (`--console`).
    pub console: bool,
}

impl Frontend {
    pub fn new(parts: FrontendParts) -> Result<Arc<Frontend>, String> {
        let meta = parts.service.meta().clone();
        let authz = Arc::new(
            Authz::new(
                parts.users.clone(),
                parts.root_access_key.clone(),
                parts.root_secret_key.expose_secret(),
                meta,
            )
            .allow_insecure_sse_c(parts.allow_insecure_sse_c),
        );
        let mut builder = S3ServiceBuilder::new(TesseraS3::new(
            parts.service.clone(),
            parts.region,
            authz.clone(),
            parts.notifier.clone(),
        ));
        let mut s3_config = s3s::config::S3Config::default();
        s3_config.post_object_max_file_size = POST_OBJECT_MAX_BYTES;
        builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            s3_config,
        ))));
        builder.set_auth(SecretLookup(authz.clone()));
        let metrics = Metrics::new(
            parts.metrics_token.as_ref().map(|t| t.expose_secret()),
            parts.deployment_id.clone(),
        );
        let console = parts.console.then(|| {
            crate::console::Console::new(
                authz.clone(),
                parts.root_access_key.clone(),
                metrics.clone(),
            )
        });
        builder.set_access(AccessCheck(authz));
        builder.set_route(AdminApi {
            users: parts.users,
            service: parts.service.clone(),
            disks: parts.disks.clone(),
            root_access_key: parts.root_access_key,
            meta_replicas: parts.meta_replicas,
            deployment_id: parts.deployment_id.clone(),
            started: std::time::Instant::now(),
            cluster: parts.cluster.clone(),
            pool_manager: parts.pool_manager,
        });
        if !parts.domains.is_empty() {
            let host =
                Domains::new(&parts.domains).map_err(|e| format!("invalid --domain: {e}"))?;
            builder.set_host(host);
        }
        Ok(Arc::new(Frontend {
            s3: builder.build(),
            disks: parts.disks,
            service: parts.service,
            metrics,
            notifier: parts.notifier,
            console,
            cluster: parts.cluster,
            domains: parts.domains,
            trusted_proxies: parts.trusted_proxies,
            tls: parts.tls.map(|certs| certs.acceptor(false)),
            auth_limit: crate::auth_limit::AuthFailureLimiter::new(parts.auth_failures_per_minute),
        }))
    }
}

/// Serves `front` on `listener` until `shutdown` is cancelled, then stops taking connections
/// and lets requests in flight finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    front: Arc<Frontend>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    serve_on(listener, front, shutdown, grace, false, false).await;
}

/// As [`serve`], for the console's own port (`--console-address`): the same service, and
/// an unsigned `GET /` there opens the console.
pub async fn serve_console(
    listener: TcpListener,
    front: Arc<Frontend>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    serve_on(listener, front, shutdown, grace, false, true).await;
}

/// As [`serve`], but the listener stays open and is given back: the process serves again on
/// it (a gateway that changes role), and connections meanwhile wait in its backlog.
pub async fn serve_and_keep(
    listener: TcpListener,
    front: Arc<Frontend>,
    shutdown: CancellationToken,
    grace: Duration,
) -> TcpListener {
    serve_on(listener, front, shutdown, grace, true, false)
        .await
        .expect("kept")
}

async fn serve_on(
    listener: TcpListener,
    front: Arc<Frontend>,
    shutdown: CancellationToken,
    grace: Duration,
    keep: bool,
    console_port: bool,
) -> Option<TcpListener> {
    let http = Arc::new(hyper_util::server::conn::auto::Builder::new(
        TokioExecutor::new(),
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small responses go out at once: no Nagle delay on GETs of small objects.
                let _ = socket.set_nodelay(true);
                let front = front.clone();
                let peer = peer.ip();
                let http = http.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = front.tls.clone();
                    let secure = tls.is_some();
                    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        let client = front.trusted_proxies.client(peer, secure, req.headers());
                        req.extensions_mut().insert(client);
                        if console_port {
                            req.extensions_mut().insert(crate::console::ConsolePort);
                        }
                        crate::http::handle(front.clone(), req)
                    });
                    let Some(io) = crate::tls::accept(socket, tls.as_ref()).await else {
                        return;
                    };
                    let conn = http.serve_connection_with_upgrades(TokioIo::new(io), svc).into_owned();
                    let ended = watcher.watch(conn).await;
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = shutdown.cancelled() => break,
        }
    }
    // The listener closes first, so new connections are refused while requests in flight
    // finish; idle keep-alive connections are closed at once.
    let kept = keep.then_some(listener);
    info!(
        "shutting down: no new connections, waiting up to {} s for requests in flight",
        grace.as_secs()
    );
    tokio::select! {
        () = graceful.shutdown() => info!("requests in flight finished"),
        () = tokio::time::sleep(grace) => warn!("requests still in flight after {} s; stopping anyway", grace.as_secs()),
    }
    kept
}
