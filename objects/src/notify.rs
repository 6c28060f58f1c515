//! Event notifications: which of a bucket's rules an event matches, and queueing it for each
//! (the metastore's persistent queue). Delivery is the gateway's (it speaks HTTP); the
//! service only records what happened.
//!
//! An event is queued before the request that caused it is answered, so every write a client
//! saw succeed has its event in the queue: delivery is at least once. Queueing is a local
//! metadata commit, whatever the state of the targets, so a dead target never slows or fails
//! a request; a failure to queue is logged and counted, never turned into a failed write
//! (the object is stored by then).

use std::sync::atomic::Ordering;

use metastore::{EventRecord, NotifyRule};

use crate::{ObjectService, now_ms};

/// Whether an S3 event type (`s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`) covers the
/// event `name` (`ObjectCreated:Put`).
pub fn event_matches(pattern: &str, name: &str) -> bool {
    let Some(pattern) = pattern.strip_prefix("s3:") else {
        return false;
    };
    match pattern.strip_suffix('*') {
        Some(family) => name.starts_with(family),
        None => pattern == name,
    }
}

/// Whether `rule` asks for event `name` on `key`.
fn rule_matches(rule: &NotifyRule, name: &str, key: &str) -> bool {
    rule.events.iter().any(|p| event_matches(p, name))
        && key.starts_with(rule.prefix.as_deref().unwrap_or(""))
        && key.ends_with(rule.suffix.as_deref().unwrap_or(""))
}

impl ObjectService {
    /// Queues `event` (name, bucket, key and object fields set) once for every notification
    /// rule of its bucket that matches it. Cheap when the bucket has none.
    pub async fn notify(&self, event: EventRecord) {
        let Some(bucket) = self.bucket_cache.get(&event.bucket, &self.meta).await else {
            return;
        };
        let time_ms = now_ms();
        let queued: Vec<EventRecord> = bucket
            .notifications
            .iter()
            .filter(|r| rule_matches(r, &event.name, &event.key))
            .map(|r| EventRecord {
                rule_id: r.id.clone(),
                target: r.target.clone(),
                time_ms,
                next_attempt_ms: time_ms,
                ..event.clone()
            })
            .collect();
        if queued.is_empty() {
            return;
        }
        let n = queued.len() as u64;
        match self.meta.enqueue_events(queued).await {
            Ok(()) => self.events_queued.notify_waiters(),
            Err(e) => {
                self.events_lost.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, bucket = %event.bucket, key = %event.key, "an event notification could not be queued");
            }
        }
    }

    /// Resolves when events are queued next (for the delivery tasks: created before a task
    /// looks at the queue, it also catches events queued while the task looks).
    pub fn events_queued(&self) -> tokio::sync::futures::Notified<'_> {
        self.events_queued.notified()
    }

    /// Events that could not be queued since start.
    pub fn events_lost(&self) -> u64 {
        self.events_lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_cover_their_events() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(event_matches("s3:ObjectCreated:Copy", "ObjectCreated:Copy"));
        assert!(!event_matches("s3:ObjectCreated:Copy", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectRemoved:*", "ObjectCreated:Put"));
        assert!(event_matches(
            "s3:LifecycleExpiration:*",
            "LifecycleExpiration:Delete"
        ));
        assert!(!event_matches("ObjectCreated:*", "ObjectCreated:Put"));
    }

    #[test]
    fn rules_filter_by_prefix_and_suffix() {
        let rule = NotifyRule {
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: Some("images/".into()),
            suffix: Some(".jpg".into()),
            ..Default::default()
        };
        assert!(rule_matches(&rule, "ObjectCreated:Put", "images/a.jpg"));
        assert!(!rule_matches(&rule, "ObjectCreated:Put", "images/a.png"));
        assert!(!rule_matches(&rule, "ObjectCreated:Put", "docs/a.jpg"));
        assert!(!rule_matches(&rule, "ObjectRemoved:Delete", "images/a.jpg"));
    }
}
