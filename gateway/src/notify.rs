//! Event notification targets (`--notify-webhook NAME=URL[,auth_token=TOKEN]`) and delivery
//! from the persistent queue (the object service queues, `objects/src/notify.rs`).
//!
//! Delivery runs on the leader only, one task per target, so a target that hangs or refuses
//! holds up only its own events. A task takes its target's events oldest first and POSTs each
//! as S3's event JSON; a 2xx answer removes the event from the queue, anything else (or no
//! answer within [`POST_TIMEOUT`]) keeps it and backs the target off, doubling from one
//! second to a minute, recorded in the event, so the backoff outlives a restart. Events reach
//! a target in order, at least once. A housekeeping task keeps the queue under its limit,
//! dropping the oldest events (counted), and drops events of targets no longer configured.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metastore::EventRecord;
use objects::ObjectService;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

/// How long a target has to answer one event.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Backoff of a failing target: doubles from the first to the last.
const FIRST_BACKOFF_MS: i64 = 1000;
const MAX_BACKOFF_MS: i64 = 60_000;
/// Queued events read per look.
const PAGE: usize = 256;
/// How often a delivery task looks at the queue without being woken (events queued through
/// another gateway), and how often the queue is trimmed.
const POLL: Duration = Duration::from_secs(1);

/// One webhook target.
#[derive(Clone)]
pub struct WebhookTarget {
    pub name: String,
    pub url: http::Uri,
    auth_token: Option<SecretString>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl WebhookTarget {
    /// Parses `NAME=URL[,auth_token=TOKEN]`.
    pub fn parse(spec: &str) -> Result<WebhookTarget, String> {
        let bad = |why: &str| {
            format!("webhook target {spec:?}: {why} (expected NAME=URL[,auth_token=TOKEN])")
        };
        let (name, rest) = spec.split_once('=').ok_or_else(|| bad("no NAME="))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("the name takes letters, digits, - and _"));
        }
        let (url, options) = match rest.split_once(",auth_token=") {
            Some((url, token)) => (url, Some(token)),
            None => (rest, None),
        };
        let url: http::Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(bad("the URL must be http:// or https:// with a host"));
        }
        Ok(WebhookTarget {
            name: name.to_owned(),
            url,
            auth_token: options
                .filter(|t| !t.is_empty())
                .map(|t| SecretString::from(t.to_owned())),
        })
    }
}

/// The ARN a bucket's notification configuration names target `name` with.
pub fn target_arn(name: &str) -> String {
    format!("arn:tessera:sqs::{name}:webhook")
}

/// What the delivery did since start, per target.
#[derive(Debug, Default, Clone, Copy)]
pub struct TargetCounts {
    pub delivered: u64,
    pub failed: u64,
}

/// The configured targets, and what was delivered to them.
#[derive(Debug)]
pub struct Notifier {
    targets: HashMap<String, Arc<WebhookTarget>>,
    region: String,
    /// The most events the queue keeps.
    queue_limit: u64,
    counts: Mutex<HashMap<String, TargetCounts>>,
    dropped: AtomicU64,
}

impl Notifier {
    pub fn new(
        targets: Vec<WebhookTarget>,
        region: String,
        queue_limit: u64,
    ) -> Result<Notifier, String> {
        let mut map = HashMap::new();
        for t in targets {
            let name = t.name.clone();
            if map.insert(name.clone(), Arc::new(t)).is_some() {
                return Err(format!("webhook target {name:?} is named twice"));
            }
        }
        Ok(Notifier {
            targets: map,
            region,
            queue_limit: queue_limit.max(1),
            counts: Mutex::default(),
            dropped: AtomicU64::new(0),
        })
    }

    /// The target a configuration's queue ARN names, if it is one of ours.
    pub fn target_of_arn(&self, arn: &str) -> Option<&str> {
        let name = arn
            .strip_prefix("arn:tessera:sqs:")?
            .split_once(':')?
            .1
            .strip_suffix(":webhook")?;
        self.targets.get_key_value(name).map(|(k, _)| k.as_str())
    }

    /// Target names, sorted (for the banner).
    pub fn target_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.targets.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn counts(&self) -> HashMap<String, TargetCounts> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn count(&self, target: &str, delivered: bool) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let c = counts.entry(target.to_owned()).or_default();
        if delivered {
            c.delivered += 1;
        } else {
            c.failed += 1;
        }
    }

    /// Starts delivery (one task per target) and the queue's housekeeping, until `stop`.
    pub fn spawn_delivery(
        self: &Arc<Self>,
        service: Arc<ObjectService>,
        stop: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let client: Client<HttpsConnector<HttpConnector>, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(cluster::tls::connector(POST_TIMEOUT));
        let mut tasks = vec![tokio::spawn(
            self.clone().housekeeping(service.clone(), stop.clone()),
        )];
        for target in self.targets.values() {
            tasks.push(tokio::spawn(self.clone().deliver_to(
                target.clone(),
                service.clone(),
                client.clone(),
                stop.clone(),
            )));
        }
        tasks
    }

    async fn housekeeping(self: Arc<Self>, service: Arc<ObjectService>, stop: CancellationToken) {
        loop {
            match service.meta().trim_events(self.queue_limit).await {
                Ok(0) => {}
                Ok(n) => {
                    self.dropped.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(
                        events = n,
                        limit = self.queue_limit,
                        "the event queue was full: its oldest events were dropped"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "trimming the event queue failed"),
            }
            if let Err(e) = self.drop_unknown_targets(&service).await {
                tracing::warn!(error = %e, "clearing the event queue of removed targets failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Events for a target no longer configured would wait for ever: they are dropped.
    async fn drop_unknown_targets(&self, service: &ObjectService) -> metastore::Result<()> {
        let meta = service.meta();
        let mut after = None;
        loop {
            let page = meta.queued_events(after.clone(), PAGE).await?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (key, event) in page {
                if !self.targets.contains_key(&event.target) {
                    meta.event_delivered(key).await?;
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn deliver_to(
        self: Arc<Self>,
        target: Arc<WebhookTarget>,
        service: Arc<ObjectService>,
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
        stop: CancellationToken,
    ) {
        loop {
            // Registered before the look, so an event queued meanwhile still wakes this task.
            let woken = service.events_queued();
            let wait = match self.deliver_due(&target, &service, &client).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(target = %target.name, error = %e, "reading the event queue failed");
                    POLL
                }
            };
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Delivers `target`'s queued events in order until one fails or is not due yet; returns
    /// how long to wait before looking again.
    async fn deliver_due(
        &self,
        target: &WebhookTarget,
        service: &ObjectService,
        client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    ) -> metastore::Result<Duration> {
        let meta = service.meta();
        let mut after = None;
        loop {
            let page = meta.queued_events(after.clone(), PAGE).await?;
            let Some((last, _)) = page.last() else {
                return Ok(POLL);
            };
            after = Some(last.clone());
            for (key, mut event) in page.into_iter().filter(|(_, e)| e.target == target.name) {
                let now = objects::now_ms();
                if event.next_attempt_ms > now {
                    let wait = (event.next_attempt_ms - now) as u64;
                    return Ok(Duration::from_millis(wait).min(POLL));
                }
                let body = event_body(&event, &key, &self.region);
                match post(client, target, body).await {
                    Ok(()) => {
                        meta.event_delivered(key).await?;
                        self.count(&target.name, true);
                    }
                    Err(why) => {
                        self.count(&target.name, false);
                        event.attempts += 1;
                        let backoff = (FIRST_BACKOFF_MS
                            << event.attempts.min(16).saturating_sub(1))
                        .min(MAX_BACKOFF_MS);
                        event.next_attempt_ms = now + backoff;
                        tracing::debug!(target = %target.name, attempts = event.attempts, error = %why, "event delivery failed; retried later");
                        meta.event_failed(key, event).await?;
                        return Ok(Duration::from_millis(backoff as u64).min(POLL));
                    }
                }
            }
        }
    }
}

async fn post(
    client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    target: &WebhookTarget,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut req = http::Request::post(target.url.clone())
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = &target.auth_token {
        req = req.header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret()),
        );
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let sent = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        // Read to the end, so the connection can be reused.
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the target answered {status}"))
        }
    };
    tokio::time::timeout(POST_TIMEOUT, sent)
        .await
        .map_err(|_| format!("no answer within {POST_TIMEOUT:?}"))?
}

/// The body POSTed for `event`: S3's event message (`Records`), with MinIO's `EventName` and
/// `Key` beside it for receivers written for MinIO.
fn event_body(event: &EventRecord, queue_key: &[u8], region: &str) -> Vec<u8> {
    let name = format!("s3:{}", event.name);
    let key: String = form_urlencoded::byte_serialize(event.key.as_bytes()).collect();
    let mut object = serde_json::json!({
        "key": key,
        "sequencer": hex::encode_upper(queue_key),
    });
    if event.name.starts_with("ObjectCreated:") {
        object["size"] = event.size.into();
        object["eTag"] = event.etag.clone().into();
    }
    if let Some(v) = &event.version_id {
        object["versionId"] = v.clone().into();
    }
    let principal = event.principal.clone().unwrap_or_default();
    let record = serde_json::json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time(event.time_ms),
        "eventName": event.name,
        "userIdentity": { "principalId": principal },
        "requestParameters": { "sourceIPAddress": event.source_ip.clone().unwrap_or_default() },
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": event.rule_id,
            "bucket": {
                "name": event.bucket,
                "ownerIdentity": { "principalId": principal },
                "arn": format!("arn:aws:s3:::{}", event.bucket),
            },
            "object": object,
        },
    });
    let message = serde_json::json!({
        "EventName": name,
        "Key": format!("{}/{}", event.bucket, event.key),
        "Records": [record],
    });
    serde_json::to_vec(&message).unwrap_or_default()
}

/// `2026-12-07T01:42:00.123Z`, as S3 writes its timestamps.
fn event_time(ms: i64) -> String {
    let mut out = Vec::new();
    let _ = crate::s3::convert::timestamp(ms).format(s3s::dto::TimestampFormat::DateTime, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_and_without_a_token() {
        let t =
            WebhookTarget::parse("hook=http://127.0.0.1:8080/events,auth_token=s3cret").unwrap();
        assert_eq!(t.name, "hook");
        assert_eq!(t.url.to_string(), "http://127.0.0.1:8080/events");
        assert_eq!(
            t.auth_token.as_ref().map(|s| s.expose_secret()),
            Some("s3cret")
        );
        assert!(!format!("{t:?}").contains("s3cret"));
        let t = WebhookTarget::parse("b_2=https://example.test/x?a=1").unwrap();
        assert!(t.auth_token.is_none());
        for bad in [
            "nourl",
            "=http://x/",
            "a b=http://x/",
            "n=ftp://x/",
            "n=not a url",
        ] {
            assert!(WebhookTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arns_name_configured_targets_only() {
        let n = Notifier::new(
            vec![WebhookTarget::parse("hook=http://127.0.0.1:1/").unwrap()],
            "us-east-1".into(),
            10,
        )
        .unwrap();
        assert_eq!(n.target_of_arn(&target_arn("hook")), Some("hook"));
        assert_eq!(
            n.target_of_arn("arn:tessera:sqs:us-east-1:hook:webhook"),
            Some("hook")
        );
        assert_eq!(n.target_of_arn(&target_arn("other")), None);
        assert_eq!(n.target_of_arn("arn:aws:sqs:us-east-1:123:queue"), None);
        let twice = vec![
            WebhookTarget::parse("a=http://x/").unwrap(),
            WebhookTarget::parse("a=http://y/").unwrap(),
        ];
        assert!(Notifier::new(twice, "r".into(), 1).is_err());
    }

    #[test]
    fn event_bodies_are_s3_event_messages() {
        let event = EventRecord {
            name: "ObjectCreated:Put".into(),
            bucket: "b".into(),
            key: "dir/a file.txt".into(),
            size: 5,
            etag: "abc".into(),
            version_id: Some("v1".into()),
            time_ms: 1_000_123,
            rule_id: "rule".into(),
            target: "hook".into(),
            principal: Some("root".into()),
            ..Default::default()
        };
        let body: serde_json::Value =
            serde_json::from_slice(&event_body(&event, &[0, 1], "eu-west-1")).unwrap();
        assert_eq!(body["EventName"], "s3:ObjectCreated:Put");
        let r = &body["Records"][0];
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["eventTime"], "1970-01-01T00:16:40.123Z");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["s3"]["configurationId"], "rule");
        assert_eq!(r["s3"]["object"]["key"], "dir%2Fa+file.txt");
        assert_eq!(r["s3"]["object"]["size"], 5);
        assert_eq!(r["s3"]["object"]["sequencer"], "0001");
        let removed = EventRecord {
            name: "ObjectRemoved:Delete".into(),
            ..event
        };
        let body: serde_json::Value =
            serde_json::from_slice(&event_body(&removed, &[0], "r")).unwrap();
        assert!(body["Records"][0]["s3"]["object"].get("size").is_none());
    }
}
