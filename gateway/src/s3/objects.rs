//! Object operations: GET, HEAD, GetObjectAttributes, DELETE, multi-delete and copy.

use std::ops::Range;

use metastore::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::checksums;
use super::conditions::{self, Conditions};
use super::convert::{self, ContentInput, check_key, etag, object_meta, timestamp, user_metadata};
use super::notifications;
use super::tagging;
use super::versions::{reported, version_param};
use crate::s3::IntoS3;

type Body = s3s::dto::StreamingBlob;

/// The byte range to serve and, for partial responses, its Content-Range header.
fn resolve_range(range: Option<Range<u64>>, size: u64) -> (Range<u64>, Option<String>) {
    match range {
        Some(r) => {
            let header = format!("bytes {}-{}/{}", r.start, r.end - 1, size);
            (r, Some(header))
        }
        None => (0..size, None),
    }
}

/// The byte range of part `n` of an object (`partNumber`): for an object that was not
/// uploaded in parts, part 1 is the whole object.
fn part_range(record: &ObjectRecord, n: i32) -> S3Result<Range<u64>> {
    let invalid = || {
        super::errors::custom(
            "InvalidPartNumber",
            "The requested partnumber is not satisfiable",
            http::StatusCode::BAD_REQUEST,
        )
    };
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(invalid)?;
    if record.parts.is_empty() {
        return if n == 1 {
            Ok(0..record.size)
        } else {
            Err(invalid())
        };
    }
    let part = record.parts.get(n - 1).ok_or_else(invalid)?;
    let start: u64 = record.parts[..n - 1].iter().map(|p| p.size).sum();
    Ok(start..start + part.size)
}

/// The range a GET or HEAD asks for: a `partNumber`, a `Range` header, or everything.
fn requested_range(
    record: &ObjectRecord,
    part_number: Option<i32>,
    range: Option<s3s::dto::Range>,
) -> S3Result<(Range<u64>, Option<String>)> {
    match part_number {
        Some(n) => {
            let r = part_range(record, n)?;
            if r.is_empty() {
                Ok((r, None))
            } else {
                Ok(resolve_range(Some(r), record.size))
            }
        }
        None => Ok(resolve_range(check_range(range, record.size)?, record.size)),
    }
}

fn check_range(range: Option<s3s::dto::Range>, size: u64) -> S3Result<Option<Range<u64>>> {
    range
        .map(|r| {
            r.check(size).map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidRange,
                    "The requested range is not satisfiable",
                )
            })
        })
        .transpose()
}

fn checksum_mode(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

/// Checksums are returned for whole-object reads when asked for (S3 does not return them for
/// ranges).
fn checksums_for(record: &ObjectRecord, enabled: bool, ranged: bool) -> Checksum {
    if enabled && !ranged {
        checksums::stored(record)
    } else {
        Checksum::default()
    }
}

/// What GET and HEAD share: the version to serve, the validated preconditions, the byte range
/// and the checksums to report.
struct ReadPlan {
    record: ObjectRecord,
    /// The SSE-C key the request sent (checked against the record).
    customer: Option<objects::sse::CustomerKey>,
    customer_key_md5: Option<String>,
    range: Range<u64>,
    content_range: Option<String>,
    sums: Checksum,
}

/// The request fields GET and HEAD have in common (s3s gives them no shared type).
struct ReadRequest<'a> {
    bucket: &'a str,
    key: &'a str,
    version_id: Option<&'a str>,
    conditions: Conditions<'a>,
    part_number: Option<i32>,
    range: Option<s3s::dto::Range>,
    checksum_mode: Option<&'a ChecksumMode>,
    customer: S3Result<Option<objects::sse::CustomerKey>>,
    customer_key_md5: Option<String>,
}

async fn plan_read(s: &TesseraS3, r: ReadRequest<'_>) -> S3Result<ReadPlan> {
    check_key(r.key)?;
    let record = s
        .service
        .head_object_version(r.bucket, r.key, version_param(r.version_id)?)
        .await
        .s3()?;
    let customer = r.customer?;
    // Without the right key nothing about the object is told, its preconditions included.
    s.service
        .sealer(record.encryption.as_ref(), customer.as_ref())
        .await
        .s3()?;
    conditions::check_read(&r.conditions, &record)?;
    let (range, content_range) = requested_range(&record, r.part_number, r.range)?;
    let sums = checksums_for(
        &record,
        checksum_mode(r.checksum_mode),
        content_range.is_some(),
    );
    Ok(ReadPlan {
        record,
        customer,
        customer_key_md5: r.customer_key_md5,
        range,
        content_range,
        sums,
    })
}

macro_rules! read_request {
    ($i:expr) => {
        ReadRequest {
            bucket: &$i.bucket,
            key: &$i.key,
            version_id: $i.version_id.as_deref(),
            conditions: Conditions {
                if_match: $i.if_match.as_ref(),
                if_none_match: $i.if_none_match.as_ref(),
                if_modified_since: $i.if_modified_since.as_ref(),
                if_unmodified_since: $i.if_unmodified_since.as_ref(),
            },
            part_number: $i.part_number,
            range: $i.range,
            checksum_mode: $i.checksum_mode.as_ref(),
            customer: super::sse::sse_customer_key!($i),
            customer_key_md5: $i.sse_customer_key_md5.clone(),
        }
    };
}

/// The response headers GET and HEAD share, as fields of either output type.
macro_rules! object_output {
    ($out:ident, $plan:expr, { $($extra:tt)* }) => {{
        let p = $plan;
        let c = &p.record.content;
        let (sse_customer_algorithm, sse_customer_key_md5) = super::sse::customer_answer(
            p.record.encryption.as_ref(),
            p.customer_key_md5.as_deref(),
        );
        let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
            super::object_lock::answer(p.record.lock.as_ref());
        $out {
            content_length: Some((p.range.end - p.range.start) as i64),
            content_range: p.content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&p.record.etag)),
            last_modified: Some(timestamp(p.record.modified_ms)),
            content_type: c.content_type.clone(),
            content_encoding: c.content_encoding.clone(),
            content_disposition: c.content_disposition.clone(),
            content_language: c.content_language.clone(),
            cache_control: c.cache_control.clone(),
            expires: c.expires.as_deref().and_then(convert::parse_http_date),
            metadata: user_metadata(&p.record),
            storage_class: p.record.storage_class.clone().map(StorageClass::from),
            parts_count: (!p.record.parts.is_empty()).then_some(p.record.parts.len() as i32),
            version_id: p.record.version_id.clone(),
            checksum_crc32: p.sums.checksum_crc32,
            checksum_crc32c: p.sums.checksum_crc32c,
            checksum_crc64nvme: p.sums.checksum_crc64nvme,
            checksum_sha1: p.sums.checksum_sha1,
            checksum_sha256: p.sums.checksum_sha256,
            checksum_type: p.sums.checksum_type,
            server_side_encryption: super::sse::answer(p.record.encryption.as_ref()),
            ssekms_key_id: super::sse::kms_key_answer(p.record.encryption.as_ref()),
            bucket_key_enabled: super::sse::bucket_key_answer(p.record.encryption.as_ref()),
            object_lock_mode,
            object_lock_retain_until_date,
            object_lock_legal_hold_status,
            sse_customer_algorithm,
            sse_customer_key_md5,
            $($extra)*
            ..Default::default()
        }
    }};
}

/// `x-amz-expiration` for a GET or HEAD: answered for the current version (a request that
/// names no version), as S3 does.
async fn current_expiration(
    s: &TesseraS3,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    plan: &ReadPlan,
) -> Option<String> {
    match version_id {
        None => super::lifecycle::expiration(s, bucket, key, &plan.record).await,
        Some(_) => None,
    }
}

pub async fn get_object(
    s: &TesseraS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let i = req.input;
    let plan = plan_read(s, read_request!(i)).await?;
    let body = s
        .service
        .read_object(&plan.record, plan.range.clone(), plan.customer.as_ref())
        .await
        .s3()?;
    let tag_count = (!plan.record.tags.is_empty()).then_some(plan.record.tags.len() as i32);
    let expiration = current_expiration(s, &i.bucket, &i.key, i.version_id.as_deref(), &plan).await;
    Ok(S3Response::new(object_output!(GetObjectOutput, plan, {
        body: Some(Body::wrap(body)),
        tag_count,
        expiration,
    })))
}

/// (A ranged or part HEAD answers 206: the HTTP layer sets it, s3s always writes 200.)
pub async fn head_object(
    s: &TesseraS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let i = req.input;
    let plan = plan_read(s, read_request!(i)).await?;
    let expiration = current_expiration(s, &i.bucket, &i.key, i.version_id.as_deref(), &plan).await;
    Ok(S3Response::new(
        object_output!(HeadObjectOutput, plan, { expiration, }),
    ))
}

pub async fn get_object_attributes(
    s: &TesseraS3,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let version = version_param(i.version_id.as_deref())?;
    let record = s
        .service
        .head_object_version(&i.bucket, &i.key, version)
        .await
        .s3()?;
    s.service
        .sealer(
            record.encryption.as_ref(),
            super::sse::sse_customer_key!(i)?.as_ref(),
        )
        .await
        .s3()?;
    // The header is one comma-separated list; s3s may hand it over as a single element.
    let wants = |name: &str| {
        i.object_attributes
            .iter()
            .flat_map(|a| a.as_str().split(','))
            .any(|a| a.trim() == name)
    };
    let parts = if wants(ObjectAttributes::OBJECT_PARTS) && !record.parts.is_empty() {
        Some(object_parts(&record, i.max_parts, i.part_number_marker)?)
    } else {
        None
    };
    let mut resp = S3Response::new(GetObjectAttributesOutput {
        e_tag: wants(ObjectAttributes::ETAG).then(|| etag(&record.etag)),
        object_size: wants(ObjectAttributes::OBJECT_SIZE).then_some(record.size as i64),
        storage_class: wants(ObjectAttributes::STORAGE_CLASS).then(|| {
            StorageClass::from(
                record
                    .storage_class
                    .clone()
                    .unwrap_or_else(|| "STANDARD".into()),
            )
        }),
        checksum: (wants(ObjectAttributes::CHECKSUM) && !record.checksums.is_empty())
            .then(|| checksums::stored(&record)),
        object_parts: parts,
        last_modified: Some(timestamp(record.modified_ms)),
        version_id: record.version_id.clone(),
        ..Default::default()
    });
    // S3 returns this ETag without quotes; s3s always quotes one.
    resp.extensions.insert(crate::http::UnquotedETag);
    Ok(resp)
}

/// GetObjectAttributes' parts, a page of at most `max_parts` after `marker`.
fn object_parts(
    record: &ObjectRecord,
    max_parts: Option<i32>,
    marker: Option<i32>,
) -> S3Result<GetObjectAttributesParts> {
    let max = match max_parts {
        None => MAX_ATTRIBUTE_PARTS,
        Some(n) if n >= 0 => (n as usize).min(MAX_ATTRIBUTE_PARTS),
        Some(_) => return Err(s3_error!(InvalidArgument, "max-parts must be at least 0")),
    };
    let marker = marker.unwrap_or(0);
    let after: Vec<_> = record
        .parts
        .iter()
        .filter(|p| i64::from(p.number) > i64::from(marker))
        .collect();
    let page = &after[..after.len().min(max)];
    let truncated = after.len() > page.len();
    Ok(GetObjectAttributesParts {
        total_parts_count: Some(record.parts.len() as i32),
        max_parts: Some(max as i32),
        part_number_marker: Some(marker),
        next_part_number_marker: page.last().map(|p| p.number as i32),
        is_truncated: Some(truncated),
        parts: Some(
            page.iter()
                .map(|p| {
                    let sum = |a: checksums::Algorithm| p.checksums.get(a.name()).cloned();
                    ObjectPart {
                        part_number: Some(p.number as i32),
                        size: Some(p.size as i64),
                        checksum_crc32: sum(checksums::Algorithm::Crc32),
                        checksum_crc32c: sum(checksums::Algorithm::Crc32c),
                        checksum_crc64nvme: sum(checksums::Algorithm::Crc64Nvme),
                        checksum_sha1: sum(checksums::Algorithm::Sha1),
                        checksum_sha256: sum(checksums::Algorithm::Sha256),
                    }
                })
                .collect(),
        ),
    })
}

/// GetObjectAttributes lists at most this many parts per page (its default max-parts).
const MAX_ATTRIBUTE_PARTS: usize = 1000;

pub async fn delete_object(
    s: &TesseraS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let version = version_param(i.version_id.as_deref())?;
    let outcome = s
        .service
        .delete_object_locked(
            &i.bucket,
            &i.key,
            version,
            i.bypass_governance_retention == Some(true),
        )
        .await
        .s3()?;
    let event = notifications::event_of(&req.extensions, "", &i.bucket, &i.key);
    s.service
        .notify(notifications::removed(event, version, &outcome))
        .await;
    // Unversioned buckets report nothing; otherwise the version removed or marker created.
    let versioned = outcome.delete_marker || outcome.version_id.is_some() || version.is_some();
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: outcome.delete_marker.then_some(true),
        version_id: versioned.then(|| reported(&outcome.version_id)),
        ..Default::default()
    }))
}

/// S3 accepts at most this many keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_objects(
    s: &TesseraS3,
    mut req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let denied = req
        .extensions
        .remove::<super::auth::DeniedKeys>()
        .map(|d| d.0)
        .unwrap_or_default();
    let input = req.input;
    if input.delete.objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "You may delete at most 1000 objects per request"
        ));
    }
    s.service.bucket(&input.bucket).await.s3()?;
    let quiet = input.delete.quiet.unwrap_or(false);
    let bypass = input.bypass_governance_retention == Some(true);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (i, obj) in input.delete.objects.into_iter().enumerate() {
        let refused = denied.get(i).copied().unwrap_or(false);
        let result = async {
            if refused {
                return Err(s3_error!(AccessDenied, "Access Denied"));
            }
            check_key(&obj.key)?;
            let version = version_param(obj.version_id.as_deref())?;
            s.service
                .delete_object_locked(&input.bucket, &obj.key, version, bypass)
                .await
                .s3()
        }
        .await;
        match result {
            Ok(outcome) => {
                let event = notifications::event_of(&req.extensions, "", &input.bucket, &obj.key);
                let version = obj.version_id.as_deref();
                s.service
                    .notify(notifications::removed(event, version, &outcome))
                    .await;
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(obj.key),
                        version_id: obj.version_id.clone(),
                        delete_marker: outcome.delete_marker.then_some(true),
                        delete_marker_version_id: outcome
                            .delete_marker
                            .then(|| reported(&outcome.version_id)),
                    });
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(obj.key),
                message: e.message().map(str::to_owned),
                version_id: obj.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

pub async fn copy_object(
    s: &TesseraS3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    check_key(&input.key)?;
    let CopySource::Bucket {
        bucket: src_bucket,
        key: src_key,
        version_id,
    } = &input.copy_source
    else {
        return Err(s3_error!(
            NotImplemented,
            "Only bucket copy sources are supported"
        ));
    };
    let src_version = version_param(version_id.as_deref())?;
    check_key(src_key)?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let class = convert::storage_class(input.storage_class.as_ref().map(|c| c.as_str()))?;
    super::acl::refuse_grant_headers(super::acl::grant_headers_present(&req.headers))?;
    // A copy gets the ACL the request names, not the source's (as in S3).
    let acl = super::acl::canned_acl(input.acl.as_ref().map(|a| a.as_str()))?;
    super::bucket_config::acls_allowed(s, &input.bucket, acl.as_ref()).await?;
    let source_key = super::sse::copy_source_customer_key!(input)?;
    let key_md5 = input.sse_customer_key_md5.clone();
    let encrypt = super::sse::requested_encryption!(input)?;
    // Copying an older version onto its own key (a restore) is allowed.
    if !replace
        && class.is_none()
        && matches!(encrypt, objects::Encrypt::AsBucketSays)
        && src_version.is_none()
        && **src_bucket == *input.bucket
        && **src_key == *input.key
    {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without \
             changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let source = s
        .service
        .head_object_version(src_bucket, src_key, src_version)
        .await
        .s3()?;
    conditions::check_copy_source(
        &Conditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        },
        &source,
    )?;
    let replace_tags = input
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
    let tags = if replace_tags {
        Some(tagging::parse_header(input.tagging.as_deref()).s3()?)
    } else {
        None
    };
    let meta = replace.then(|| {
        object_meta(ContentInput {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
            metadata: input.metadata,
            storage_class: None,
        })
    });
    let lock = super::object_lock::asked_lock!(input)?;
    let edit = move |r: &mut ObjectRecord| {
        if let Some(m) = meta {
            r.content = m.content;
            r.user_metadata = m.user_metadata;
        }
        // The destination gets the class asked for, else STANDARD (as S3 does).
        r.storage_class = class.filter(|c| c != "STANDARD");
        if let Some(t) = tags {
            r.tags = t;
        }
        r.acl = acl;
    };
    let record: ObjectRecord = s
        .service
        .copy_object(
            (src_bucket, src_key, src_version),
            (&input.bucket, &input.key),
            (source_key.as_ref(), &encrypt, lock),
            edit,
        )
        .await
        .s3()?;
    let (sse_customer_algorithm, sse_customer_key_md5) =
        super::sse::customer_answer(record.encryption.as_ref(), key_md5.as_deref());
    let expiration = super::lifecycle::expiration(s, &input.bucket, &input.key, &record).await;
    let event = notifications::event_of(
        &req.extensions,
        "ObjectCreated:Copy",
        &input.bucket,
        &input.key,
    );
    s.service
        .notify(notifications::created(event, &record))
        .await;
    Ok(S3Response::new(CopyObjectOutput {
        expiration,
        server_side_encryption: super::sse::answer(record.encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(record.encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(record.encryption.as_ref()),
        ssekms_encryption_context: super::sse::kms_context_answer(record.encryption.as_ref()),
        sse_customer_algorithm,
        sse_customer_key_md5,
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&record.etag)),
            last_modified: Some(timestamp(record.modified_ms)),
            ..Default::default()
        }),
        version_id: record.version_id.clone(),
        copy_source_version_id: src_version
            .map(str::to_owned)
            .or_else(|| source.version_id.clone()),
        ..Default::default()
    }))
}
