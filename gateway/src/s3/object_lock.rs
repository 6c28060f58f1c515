//! Object lock: Put/GetObjectLockConfiguration, Put/GetObjectRetention,
//! Put/GetObjectLegalHold, and the `x-amz-object-lock-*` headers of writes. The object
//! service enforces the locks (`objects/src/lock.rs`); this module validates as S3 does.

use metastore::{DefaultRetention, ObjectLock};
use objects::lock::{COMPLIANCE, GOVERNANCE};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::convert::timestamp;
use super::errors::custom;
use super::versions::version_param;
use crate::s3::IntoS3;

pub(super) fn millis(t: &Timestamp) -> i64 {
    (time::OffsetDateTime::from(t.clone()).unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A legal hold's status: `ON` or `OFF`.
fn hold_on(status: &str) -> Option<bool> {
    match status {
        "ON" => Some(true),
        "OFF" => Some(false),
        _ => None,
    }
}

fn hold_status(on: bool) -> ObjectLockLegalHoldStatus {
    ObjectLockLegalHoldStatus::from(if on { "ON" } else { "OFF" }.to_owned())
}

/// The version a Get/PutObject* lock call names.
async fn version_of(
    s: &TesseraS3,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> S3Result<metastore::ObjectRecord> {
    s.service
        .head_object_version(bucket, key, version_param(version_id)?)
        .await
        .s3()
}

fn mode_of(mode: &str) -> S3Result<String> {
    match mode {
        GOVERNANCE | COMPLIANCE => Ok(mode.to_owned()),
        other => Err(s3_error!(
            InvalidArgument,
            "Unknown wormMode directive {other:?}: GOVERNANCE or COMPLIANCE"
        )),
    }
}

/// A retention as a request gives it: both or neither of mode and date; the date ahead.
fn retention_of(mode: Option<&str>, until: Option<&Timestamp>) -> S3Result<Option<(String, i64)>> {
    match (mode, until) {
        (None, None) => Ok(None),
        (Some(mode), Some(until)) => {
            let until = millis(until);
            if until <= now_ms() {
                return Err(s3_error!(
                    InvalidArgument,
                    "The retain until date must be in the future!"
                ));
            }
            Ok(Some((mode_of(mode)?, until)))
        }
        _ => Err(s3_error!(
            InvalidArgument,
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
        )),
    }
}

/// The lock a write's `x-amz-object-lock-*` headers ask for (PutObject, CopyObject,
/// CreateMultipartUpload).
pub fn asked(
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<Option<ObjectLock>> {
    let retention = retention_of(mode.map(|m| m.as_str()), until)?;
    let legal_hold = match hold.map(|h| h.as_str()) {
        None => false,
        Some(status) => hold_on(status).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "Legal Hold must be either of 'ON' or 'OFF', not {status:?}"
            )
        })?,
    };
    if retention.is_none() && !legal_hold && hold.is_none() {
        return Ok(None);
    }
    Ok(Some(ObjectLock {
        mode: retention.as_ref().map(|(m, _)| m.clone()),
        retain_until_ms: retention.map(|(_, u)| u),
        legal_hold,
    }))
}

/// [`asked`] of an input type's `object_lock_*` fields.
macro_rules! asked_lock {
    ($i:expr) => {
        $crate::s3::object_lock::asked(
            $i.object_lock_mode.as_ref(),
            $i.object_lock_retain_until_date.as_ref(),
            $i.object_lock_legal_hold_status.as_ref(),
        )
    };
}
pub(crate) use asked_lock;

/// The `x-amz-object-lock-*` answers of GET and HEAD.
pub fn answer(
    lock: Option<&ObjectLock>,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    let Some(l) = lock else {
        return (None, None, None);
    };
    (
        l.mode.clone().map(ObjectLockMode::from),
        l.retain_until_ms.map(timestamp),
        Some(hold_status(l.legal_hold)),
    )
}

pub async fn put_config(
    s: &TesseraS3,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let i = req.input;
    let config = i
        .object_lock_configuration
        .ok_or_else(|| s3_error!(MalformedXML, "The configuration is missing"))?;
    if config.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some("Enabled") {
        return Err(s3_error!(MalformedXML, "ObjectLockEnabled must be Enabled"));
    }
    let default = match config.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => {
            let mode = mode_of(d.mode.as_ref().map(|m| m.as_str()).unwrap_or(""))?;
            let (days, years) = match (d.days, d.years) {
                (Some(n), None) if n > 0 => (Some(n as u32), None),
                (None, Some(n)) if n > 0 => (None, Some(n as u32)),
                _ => {
                    return Err(s3_error!(
                        MalformedXML,
                        "The default retention takes Days or Years (exactly one), above 0"
                    ));
                }
            };
            Some(DefaultRetention { mode, days, years })
        }
    };
    let bucket = s.service.bucket(&i.bucket).await.s3()?;
    if bucket.object_lock.is_none() && bucket.versioning != metastore::Versioning::Enabled {
        return Err(s3_error!(
            InvalidBucketState,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
        ));
    }
    super::bucket_config::change_bucket(s, &i.bucket, move |r| {
        r.object_lock = Some(metastore::ObjectLockConfig {
            default_retention: default.clone(),
        });
        r.versioning = metastore::Versioning::Enabled;
    })
    .await?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub async fn get_config(
    s: &TesseraS3,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let bucket = s.service.bucket(&req.input.bucket).await.s3()?;
    let Some(config) = bucket.object_lock else {
        return Err(custom(
            "ObjectLockConfigurationNotFoundError",
            "Object Lock configuration does not exist for this bucket",
            http::StatusCode::NOT_FOUND,
        ));
    };
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from("Enabled".to_owned())),
            rule: config.default_retention.map(|d| ObjectLockRule {
                default_retention: Some(s3s::dto::DefaultRetention {
                    mode: Some(ObjectLockRetentionMode::from(d.mode)),
                    days: d.days.map(|n| n as i32),
                    years: d.years.map(|n| n as i32),
                }),
            }),
        }),
    }))
}

pub async fn put_retention(
    s: &TesseraS3,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let i = req.input;
    let version = version_param(i.version_id.as_deref())?;
    let retention = i.retention.unwrap_or_default();
    let (mode, until) = (
        retention.mode.as_ref(),
        retention.retain_until_date.as_ref(),
    );
    // An empty Retention removes it (GOVERNANCE with the bypass only); one half is malformed.
    if mode.is_some() != until.is_some() {
        return Err(s3_error!(
            MalformedXML,
            "Retention takes both Mode and RetainUntilDate"
        ));
    }
    let wanted = retention_of(mode.map(|m| m.as_str()), until)?;
    s.service
        .set_retention(
            (&i.bucket, &i.key, version),
            wanted,
            i.bypass_governance_retention == Some(true),
        )
        .await
        .s3()?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub async fn get_retention(
    s: &TesseraS3,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let i = req.input;
    let record = version_of(s, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let Some((mode, until)) = record
        .lock
        .as_ref()
        .and_then(|l| Some((l.mode.clone()?, l.retain_until_ms?)))
    else {
        return Err(custom(
            "NoSuchObjectLockConfiguration",
            "The specified object does not have a ObjectLock configuration",
            http::StatusCode::NOT_FOUND,
        ));
    };
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(mode)),
            retain_until_date: Some(timestamp(until)),
        }),
    }))
}

pub async fn put_legal_hold(
    s: &TesseraS3,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let i = req.input;
    let on = i
        .legal_hold
        .and_then(|h| h.status)
        .and_then(|s| hold_on(s.as_str()))
        .ok_or_else(|| s3_error!(MalformedXML, "LegalHold takes a Status of ON or OFF"))?;
    s.service
        .set_legal_hold(
            (&i.bucket, &i.key, version_param(i.version_id.as_deref())?),
            on,
        )
        .await
        .s3()?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub async fn get_legal_hold(
    s: &TesseraS3,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let i = req.input;
    let record = version_of(s, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let on = record.lock.as_ref().is_some_and(|l| l.legal_hold);
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(hold_status(on)),
        }),
    }))
}
