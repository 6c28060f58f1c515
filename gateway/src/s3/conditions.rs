//! Conditional requests: If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since on
//! reads, the `x-amz-copy-source-if-*` family on copies, and conditional writes.
//!
//! Precedence follows RFC 9110 as S3 applies it: If-Match, else If-Unmodified-Since; then
//! If-None-Match, else If-Modified-Since. A satisfied If-Match makes a failing
//! If-Unmodified-Since irrelevant, and a satisfied If-None-Match does the same for
//! If-Modified-Since.

use metastore::{Expect, ObjectRecord};
use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

pub struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn seconds(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

fn failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// Evaluates the conditions against an object. `not_modified` is the error for a failed
/// If-None-Match / If-Modified-Since: 304 on GET and HEAD, 412 on copy sources.
fn evaluate(
    c: &Conditions<'_>,
    record: &ObjectRecord,
    not_modified: fn(&ObjectRecord) -> S3Error,
) -> S3Result<()> {
    // Last-Modified is sent with second precision, so compare whole seconds.
    let modified = record.modified_ms.div_euclid(1000);
    match (c.if_match, c.if_unmodified_since) {
        (Some(m), _) if !matches(m, &record.etag) => return Err(failed()),
        (None, Some(t)) if modified > seconds(t) => return Err(failed()),
        _ => {}
    }
    match (c.if_none_match, c.if_modified_since) {
        (Some(m), _) if matches(m, &record.etag) => Err(not_modified(record)),
        (None, Some(t)) if modified <= seconds(t) => Err(not_modified(record)),
        _ => Ok(()),
    }
}

/// 304 carries the validators the client compares against (RFC 9110 15.4.5).
fn not_modified(record: &ObjectRecord) -> S3Error {
    let mut e = S3Error::new(S3ErrorCode::NotModified);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", record.etag)) {
        headers.insert(http::header::ETAG, v);
    }
    if let Some(v) = super::convert::http_date(&super::convert::timestamp(record.modified_ms))
        .and_then(|d| http::HeaderValue::from_str(&d).ok())
    {
        headers.insert(http::header::LAST_MODIFIED, v);
    }
    e.set_headers(headers);
    e
}

pub fn check_read(c: &Conditions<'_>, record: &ObjectRecord) -> S3Result<()> {
    evaluate(c, record, not_modified)
}

pub fn check_copy_source(c: &Conditions<'_>, record: &ObjectRecord) -> S3Result<()> {
    evaluate(c, record, |_| failed())
}

/// The write condition of a PutObject or CompleteMultipartUpload.
pub fn write_expect(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<Expect>> {
    match (if_match, if_none_match) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(s3_error!(
            NotImplemented,
            "If-Match and If-None-Match cannot be combined on a write"
        )),
        (None, Some(ETagCondition::Any)) => Ok(Some(Expect::Absent)),
        (None, Some(ETagCondition::ETag(_))) => Err(s3_error!(
            NotImplemented,
            "If-None-Match on a write supports only '*'"
        )),
        (Some(ETagCondition::ETag(e)), None) => Ok(Some(Expect::ETag(e.value().to_owned()))),
        (Some(ETagCondition::Any), None) => Err(s3_error!(
            NotImplemented,
            "If-Match on a write needs an ETag, not '*'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metastore::{ContentHeaders, ObjectData};
    use s3s::dto::ETag;

    fn record() -> ObjectRecord {
        ObjectRecord {
            version_id: None,
            size: 0,
            etag: "abc".into(),
            modified_ms: 1_000_500,
            content: ContentHeaders::default(),
            user_metadata: Default::default(),
            checksums: Default::default(),
            tags: vec![],
            storage_class: None,
            delete_marker: false,
            data: ObjectData::Inline(vec![]),
            parts: vec![],
            acl: None,
            upload_id: None,
            grants: Vec::new(),
            encryption: None,
            lock: None,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    fn tag(s: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(s.into()))
    }

    fn code(r: S3Result<()>) -> Option<S3ErrorCode> {
        r.err().map(|e| e.code().clone())
    }

    #[test]
    fn precedence_follows_s3() {
        let r = record(); // modified at second 1000
        let none = Conditions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
        };
        assert_eq!(code(check_read(&none, &r)), None);
        let (yes, no, any) = (tag("abc"), tag("zzz"), ETagCondition::Any);
        let c = |m, n, ims, ius| Conditions {
            if_match: m,
            if_none_match: n,
            if_modified_since: ims,
            if_unmodified_since: ius,
        };
        let (t999, t1000) = (at(999), at(1000));
        assert_eq!(
            code(check_read(&c(Some(&no), None, None, None), &r)),
            Some(S3ErrorCode::PreconditionFailed)
        );
        assert_eq!(code(check_read(&c(Some(&any), None, None, None), &r)), None);
        // If-Match true wins over a failing If-Unmodified-Since.
        assert_eq!(
            code(check_read(&c(Some(&yes), None, None, Some(&t999)), &r)),
            None
        );
        assert_eq!(
            code(check_read(&c(None, None, None, Some(&t999)), &r)),
            Some(S3ErrorCode::PreconditionFailed)
        );
        assert_eq!(
            code(check_read(&c(None, None, None, Some(&t1000)), &r)),
            None
        );
        assert_eq!(
            code(check_read(&c(None, Some(&yes), None, None), &r)),
            Some(S3ErrorCode::NotModified)
        );
        // If-None-Match false (etag differs) wins over If-Modified-Since that says "not modified".
        assert_eq!(
            code(check_read(&c(None, Some(&no), Some(&t1000), None), &r)),
            None
        );
        assert_eq!(
            code(check_read(&c(None, None, Some(&t1000), None), &r)),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(
            code(check_read(&c(None, None, Some(&t999), None), &r)),
            None
        );
        assert_eq!(
            code(check_copy_source(&c(None, Some(&yes), None, None), &r)),
            Some(S3ErrorCode::PreconditionFailed)
        );
    }

    #[test]
    fn write_conditions() {
        assert_eq!(
            write_expect(None, Some(&ETagCondition::Any)).unwrap(),
            Some(Expect::Absent)
        );
        assert_eq!(
            write_expect(Some(&tag("e")), None).unwrap(),
            Some(Expect::ETag("e".into()))
        );
        assert!(write_expect(None, Some(&tag("e"))).is_err());
        assert_eq!(write_expect(None, None).unwrap(), None);
    }
}
