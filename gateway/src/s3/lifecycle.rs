//! Bucket lifecycle configuration (Put/Get/DeleteBucketLifecycleConfiguration), validated as
//! S3 does, and the `x-amz-expiration` answer. The object service applies the rules
//! (`objects/src/lifecycle.rs`).

use metastore::{LifecycleFilter, LifecycleRule as Rule};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::bucket_config::change_bucket;
use super::convert::timestamp;
use super::object_lock::millis;
use super::tagging;
use crate::s3::IntoS3;

/// S3's limit on rules per configuration.
const MAX_RULES: usize = 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

fn positive_days(days: Option<i32>, what: &str) -> S3Result<Option<u32>> {
    match days {
        None => Ok(None),
        Some(d) if d > 0 => Ok(Some(d as u32)),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "{what} action must be a positive integer"
        )),
    }
}

fn size(n: Option<i64>) -> S3Result<Option<u64>> {
    n.map(|n| {
        u64::try_from(n)
            .map_err(|_| s3_error!(InvalidArgument, "Object size filters must be non-negative"))
    })
    .transpose()
}

/// The rule's filter: a `<Filter>` with at most one condition (more go inside `<And>`), or
/// the old rule-level `<Prefix>`.
fn filter_of(rule: &LifecycleRule) -> S3Result<LifecycleFilter> {
    match (&rule.filter, &rule.prefix) {
        (Some(_), Some(_)) => Err(s3_error!(
            MalformedXML,
            "A rule takes a Filter or a Prefix, not both"
        )),
        (None, None) => Err(s3_error!(
            MalformedXML,
            "A rule needs a Filter (or the older Prefix)"
        )),
        (None, Some(prefix)) => Ok(LifecycleFilter {
            legacy_prefix: true,
            prefix: Some(prefix.clone()),
            ..Default::default()
        }),
        (Some(f), None) => {
            let conditions = [
                f.prefix.is_some(),
                f.tag.is_some(),
                f.object_size_greater_than.is_some(),
                f.object_size_less_than.is_some(),
                f.and.is_some(),
            ];
            if conditions.iter().filter(|c| **c).count() > 1 {
                return Err(s3_error!(
                    MalformedXML,
                    "A Filter takes one condition; combine several inside And"
                ));
            }
            let mut out = LifecycleFilter {
                prefix: f.prefix.clone(),
                size_greater_than: size(f.object_size_greater_than)?,
                size_less_than: size(f.object_size_less_than)?,
                ..Default::default()
            };
            if let Some(tag) = &f.tag {
                out.tags = tagging::from_tag_set(vec![tag.clone()]);
            }
            if let Some(and) = &f.and {
                out.and = true;
                out.prefix = and.prefix.clone();
                out.tags = tagging::from_tag_set(and.tags.clone().unwrap_or_default());
                out.size_greater_than = size(and.object_size_greater_than)?;
                out.size_less_than = size(and.object_size_less_than)?;
            }
            let mut keys: Vec<&str> = out.tags.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(s3_error!(
                    InvalidRequest,
                    "Duplicate Tag Keys are not allowed."
                ));
            }
            if let (Some(gt), Some(lt)) = (out.size_greater_than, out.size_less_than)
                && gt >= lt
            {
                return Err(s3_error!(
                    InvalidArgument,
                    "ObjectSizeGreaterThan must be less than ObjectSizeLessThan"
                ));
            }
            Ok(out)
        }
    }
}

/// One rule as stored, validated.
fn rule_of(rule: &LifecycleRule) -> S3Result<Rule> {
    let enabled = match rule.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        other => {
            return Err(s3_error!(
                MalformedXML,
                "Status must be Enabled or Disabled, not {other:?}"
            ));
        }
    };
    if rule.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || rule
            .noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty())
    {
        return Err(s3_error!(
            NotImplemented,
            "Transition actions are not supported: tessera has one storage class"
        ));
    }
    let id = match rule.id.as_deref() {
        Some(id) if id.len() > 255 => {
            return Err(s3_error!(
                InvalidArgument,
                "ID length should not exceed allowed limit of 255"
            ));
        }
        Some(id) if !id.is_empty() => id.to_owned(),
        // S3 names a rule given without an id.
        _ => uuid::Uuid::new_v4().simple().to_string(),
    };
    let filter = filter_of(rule)?;
    let mut out = Rule {
        id,
        enabled,
        filter,
        ..Default::default()
    };
    if let Some(e) = &rule.expiration {
        let marker = e.expired_object_delete_marker.unwrap_or(false);
        let given = [e.days.is_some(), e.date.is_some(), marker];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(s3_error!(
                MalformedXML,
                "Expiration takes exactly one of Days, Date and ExpiredObjectDeleteMarker"
            ));
        }
        out.expiration_days = positive_days(e.days, "'Days' for Expiration")?;
        if let Some(date) = &e.date {
            let ms = millis(date);
            if ms.rem_euclid(DAY_MS) != 0 {
                return Err(s3_error!(InvalidArgument, "'Date' must be at midnight GMT"));
            }
            out.expiration_date_ms = Some(ms);
        }
        out.expired_object_delete_marker = marker;
        if marker && !out.filter.tags.is_empty() {
            return Err(s3_error!(
                InvalidRequest,
                "ExpiredObjectDeleteMarker cannot be specified with tags"
            ));
        }
    }
    if let Some(n) = &rule.noncurrent_version_expiration {
        out.noncurrent_days = positive_days(
            n.noncurrent_days,
            "'NoncurrentDays' for NoncurrentVersionExpiration",
        )?;
        if out.noncurrent_days.is_none() {
            return Err(s3_error!(
                MalformedXML,
                "NoncurrentVersionExpiration needs NoncurrentDays"
            ));
        }
        out.newer_noncurrent_versions = match n.newer_noncurrent_versions {
            None => None,
            Some(v @ 1..=100) => Some(v as u32),
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer up to 100"
                ));
            }
        };
    }
    if let Some(a) = &rule.abort_incomplete_multipart_upload {
        out.abort_incomplete_days = positive_days(
            a.days_after_initiation,
            "'DaysAfterInitiation' for AbortIncompleteMultipartUpload",
        )?;
        if out.abort_incomplete_days.is_none() {
            return Err(s3_error!(
                MalformedXML,
                "AbortIncompleteMultipartUpload needs DaysAfterInitiation"
            ));
        }
        let f = &out.filter;
        if !f.tags.is_empty() || f.size_greater_than.is_some() || f.size_less_than.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "AbortIncompleteMultipartUpload cannot be specified with Tags or object size filters."
            ));
        }
    }
    let acts = out.expiration_days.is_some()
        || out.expiration_date_ms.is_some()
        || out.expired_object_delete_marker
        || out.noncurrent_days.is_some()
        || out.abort_incomplete_days.is_some();
    if !acts {
        return Err(s3_error!(
            InvalidRequest,
            "At least one action needs to be specified in a rule"
        ));
    }
    Ok(out)
}

pub async fn put(
    s: &TesseraS3,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let i = req.input;
    let rules = i
        .lifecycle_configuration
        .map(|c| c.rules)
        .unwrap_or_default();
    if rules.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The lifecycle configuration needs at least one rule"
        ));
    }
    if rules.len() > MAX_RULES {
        return Err(s3_error!(
            InvalidRequest,
            "A lifecycle configuration takes at most {MAX_RULES} rules"
        ));
    }
    let rules = rules.iter().map(rule_of).collect::<S3Result<Vec<_>>>()?;
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(s3_error!(
            InvalidArgument,
            "Rule ID must be unique. Found same ID for more than one rule"
        ));
    }
    change_bucket(s, &i.bucket, move |r| r.lifecycle = rules.clone()).await?;
    s.service.bucket_changed(&i.bucket);
    Ok(S3Response::new(
        PutBucketLifecycleConfigurationOutput::default(),
    ))
}

fn filter_answer(f: &LifecycleFilter) -> LifecycleRuleFilter {
    let tags = tagging::tag_set(&f.tags);
    if f.and {
        return LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: f.prefix.clone(),
                tags: (!tags.is_empty()).then_some(tags),
                object_size_greater_than: f.size_greater_than.map(|n| n as i64),
                object_size_less_than: f.size_less_than.map(|n| n as i64),
            }),
            ..Default::default()
        };
    }
    LifecycleRuleFilter {
        prefix: f.prefix.clone(),
        tag: tags.into_iter().next(),
        object_size_greater_than: f.size_greater_than.map(|n| n as i64),
        object_size_less_than: f.size_less_than.map(|n| n as i64),
        ..Default::default()
    }
}

fn rule_answer(r: &Rule) -> LifecycleRule {
    let expiration = (r.expiration_days.is_some()
        || r.expiration_date_ms.is_some()
        || r.expired_object_delete_marker)
        .then(|| LifecycleExpiration {
            days: r.expiration_days.map(|d| d as i32),
            date: r.expiration_date_ms.map(timestamp),
            expired_object_delete_marker: r.expired_object_delete_marker.then_some(true),
        });
    LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from(
            if r.enabled {
                ExpirationStatus::ENABLED
            } else {
                ExpirationStatus::DISABLED
            }
            .to_owned(),
        ),
        prefix: r
            .filter
            .legacy_prefix
            .then(|| r.filter.prefix.clone().unwrap_or_default()),
        filter: (!r.filter.legacy_prefix).then(|| filter_answer(&r.filter)),
        expiration,
        noncurrent_version_expiration: r.noncurrent_days.map(|d| NoncurrentVersionExpiration {
            noncurrent_days: Some(d as i32),
            newer_noncurrent_versions: r.newer_noncurrent_versions.map(|n| n as i32),
        }),
        abort_incomplete_multipart_upload: r.abort_incomplete_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(d as i32),
            }
        }),
        transitions: None,
        noncurrent_version_transitions: None,
    }
}

pub async fn get(
    s: &TesseraS3,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    if record.lifecycle.is_empty() {
        return Err(s3_error!(
            NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist"
        ));
    }
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(record.lifecycle.iter().map(rule_answer).collect()),
        ..Default::default()
    }))
}

pub async fn delete(
    s: &TesseraS3,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    change_bucket(s, &req.input.bucket, |r| r.lifecycle.clear()).await?;
    s.service.bucket_changed(&req.input.bucket);
    Ok(S3Response::new(DeleteBucketLifecycleOutput {}))
}

/// `x-amz-expiration` for the current version `record` of `key` in `bucket`: when a
/// lifecycle rule expires it, and which (`None`: no rule does).
pub async fn expiration(
    s: &TesseraS3,
    bucket: &str,
    key: &str,
    record: &metastore::ObjectRecord,
) -> Option<String> {
    let (at, rule) = s.service.expiration_of(bucket, key, record).await?;
    let mut date = Vec::new();
    timestamp(at)
        .format(TimestampFormat::HttpDate, &mut date)
        .ok()?;
    let date = String::from_utf8(date).ok()?;
    let rule = rule.replace('"', "%22");
    Some(format!("expiry-date=\"{date}\", rule-id=\"{rule}\""))
}
