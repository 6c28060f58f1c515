//! Bucket event notifications: Put/GetBucketNotificationConfiguration (queue configurations
//! naming the operator's webhook targets, `arn:tessera:sqs::NAME:webhook`), and the events
//! the S3 operations raise. Queueing and delivery: `objects/src/notify.rs`,
//! `crate::notify`.

use metastore::{EventRecord, NotifyRule};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::auth::Caller;
use super::bucket_config::change_bucket;
use crate::notify::target_arn;
use crate::s3::IntoS3;

/// The event types a configuration may name. ObjectRestore events are accepted for
/// configurations written for S3, but never raised: tessera has no archive tier to restore
/// from.
const EVENT_TYPES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
];

fn rule_of(s: &TesseraS3, q: &QueueConfiguration) -> S3Result<NotifyRule> {
    let Some(target) = s.notifier.target_of_arn(&q.queue_arn) else {
        return Err(s3_error!(
            InvalidArgument,
            "Unable to validate the following destination configurations: {} is not a configured webhook target (tessera serve --notify-webhook NAME=URL; ARN arn:tessera:sqs::NAME:webhook)",
            q.queue_arn
        ));
    };
    if q.events.is_empty() {
        return Err(s3_error!(
            InvalidArgument,
            "A notification configuration needs at least one event"
        ));
    }
    let mut events = Vec::with_capacity(q.events.len());
    for e in &q.events {
        let e: &str = e.as_ref();
        if !EVENT_TYPES.contains(&e) {
            return Err(s3_error!(
                InvalidArgument,
                "The event {e:?} is not supported for notifications"
            ));
        }
        events.push(e.to_owned());
    }
    let mut rule = NotifyRule {
        id: q
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
        target: target.to_owned(),
        events,
        ..Default::default()
    };
    let rules = q
        .filter
        .as_ref()
        .and_then(|f| f.key.as_ref())
        .and_then(|k| k.filter_rules.as_deref())
        .unwrap_or_default();
    for r in rules {
        let name = r.name.as_ref().map(|n| n.as_str().to_ascii_lowercase());
        let slot = match name.as_deref() {
            Some(FilterRuleName::PREFIX) => &mut rule.prefix,
            Some(FilterRuleName::SUFFIX) => &mut rule.suffix,
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "filter rule name must be either prefix or suffix"
                ));
            }
        };
        if slot.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Cannot specify more than one {} rule in a filter.",
                name.unwrap_or_default()
            ));
        }
        *slot = Some(r.value.clone().unwrap_or_default());
    }
    Ok(rule)
}

pub async fn put(
    s: &TesseraS3,
    req: S3Request<PutBucketNotificationConfigurationInput>,
) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
    let i = req.input;
    let c = &i.notification_configuration;
    if c.topic_configurations
        .as_ref()
        .is_some_and(|t| !t.is_empty())
        || c.lambda_function_configurations
            .as_ref()
            .is_some_and(|l| !l.is_empty())
        || c.event_bridge_configuration.is_some()
    {
        return Err(s3_error!(
            InvalidArgument,
            "Only QueueConfigurations naming webhook targets (arn:tessera:sqs::NAME:webhook) are supported"
        ));
    }
    let rules = c
        .queue_configurations
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|q| rule_of(s, q))
        .collect::<S3Result<Vec<_>>>()?;
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(s3_error!(
            InvalidArgument,
            "Configuration IDs must be unique within the notification configuration"
        ));
    }
    change_bucket(s, &i.bucket, move |r| r.notifications = rules.clone()).await?;
    s.service.bucket_changed(&i.bucket);
    Ok(S3Response::new(PutBucketNotificationConfigurationOutput {}))
}

pub async fn get(
    s: &TesseraS3,
    req: S3Request<GetBucketNotificationConfigurationInput>,
) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    let queues: Vec<QueueConfiguration> = record
        .notifications
        .iter()
        .map(|r| {
            let mut filter_rules = Vec::new();
            // Named as S3 answers them, whatever case they were given in.
            for (name, value) in [("Prefix", &r.prefix), ("Suffix", &r.suffix)] {
                if let Some(v) = value {
                    filter_rules.push(FilterRule {
                        name: Some(FilterRuleName::from(name.to_owned())),
                        value: Some(v.clone()),
                    });
                }
            }
            QueueConfiguration {
                id: Some(r.id.clone()),
                queue_arn: target_arn(&r.target),
                events: r.events.iter().cloned().map(Event::from).collect(),
                filter: (!filter_rules.is_empty()).then_some(NotificationConfigurationFilter {
                    key: Some(S3KeyFilter {
                        filter_rules: Some(filter_rules),
                    }),
                }),
            }
        })
        .collect();
    Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
        queue_configurations: (!queues.is_empty()).then_some(queues),
        ..Default::default()
    }))
}

/// The event a request (its `extensions`) raised on `key` of `bucket` (name without `s3:`),
/// filled with who made it; the object fields are the caller's to add.
pub fn event_of(ext: &http::Extensions, name: &str, bucket: &str, key: &str) -> EventRecord {
    let caller = ext.get::<Caller>().cloned().unwrap_or(Caller::Anonymous);
    let client = ext.get::<crate::client::ClientAddr>();
    EventRecord {
        name: name.to_owned(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        principal: Some(match caller {
            Caller::Root => "root".to_owned(),
            Caller::User(u) => u.name.clone(),
            Caller::Anonymous => "anonymous".to_owned(),
        }),
        source_ip: client.map(|c| c.ip.to_string()),
        ..Default::default()
    }
}

/// The event of a DeleteObject that named `version` (or none) and did `outcome`.
pub fn removed(
    mut event: EventRecord,
    version: Option<&str>,
    outcome: &metastore::DeleteOutcome,
) -> EventRecord {
    event.name = if version.is_none() && outcome.delete_marker {
        "ObjectRemoved:DeleteMarkerCreated"
    } else {
        "ObjectRemoved:Delete"
    }
    .to_owned();
    event.version_id = outcome.version_id.clone();
    event
}

/// The event of a version written: its size, ETag and version id.
pub fn created(mut event: EventRecord, record: &metastore::ObjectRecord) -> EventRecord {
    event.size = record.size;
    event.etag = record.etag.clone();
    event.version_id = record.version_id.clone();
    event
}
