//! Object operations: PUT, GET, HEAD, DELETE, multi-delete and copy.

use std::ops::Range;

use futures::stream;
use metastore::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::convert::{self, ContentInput, check_key, etag, object_meta, timestamp, user_metadata};
use crate::storage::UploadBody;

type Body = s3s::dto::StreamingBlob;

fn empty_body() -> Body {
    Body::wrap(stream::empty::<Result<bytes::Bytes, std::io::Error>>())
}

pub async fn put_object(
    s: &TesseraS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let input = req.input;
    check_key(&input.key)?;
    let md5 = convert::content_md5(input.content_md5.as_deref())?;
    let meta = object_meta(ContentInput {
        content_type: input.content_type,
        content_encoding: input.content_encoding,
        content_disposition: input.content_disposition,
        content_language: input.content_language,
        cache_control: input.cache_control,
        expires: input.expires,
        metadata: input.metadata,
        storage_class: input.storage_class.map(|c| c.as_str().to_owned()),
    });
    let expected = input.content_length.and_then(|l| u64::try_from(l).ok());
    let body = input.body.unwrap_or_else(empty_body);
    let body = UploadBody {
        stream: body,
        expected_len: expected,
        content_md5: md5,
    };
    let record = s
        .service
        .put_object(&input.bucket, &input.key, body, meta)
        .await?;
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(etag(&record.etag)),
        ..Default::default()
    }))
}

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

pub async fn get_object(
    s: &TesseraS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    check_key(&input.key)?;
    let record = s.service.head_object(&input.bucket, &input.key).await?;
    let (range, content_range) = resolve_range(check_range(input.range, record.size)?, record.size);
    let body = s.service.read_object(&record, range.clone()).await?;
    let c = &record.content;
    Ok(S3Response::new(GetObjectOutput {
        body: Some(Body::wrap(body)),
        content_length: Some((range.end - range.start) as i64),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&record.etag)),
        last_modified: Some(timestamp(record.modified_ms)),
        content_type: c.content_type.clone(),
        content_encoding: c.content_encoding.clone(),
        content_disposition: c.content_disposition.clone(),
        content_language: c.content_language.clone(),
        cache_control: c.cache_control.clone(),
        expires: c.expires.as_deref().and_then(convert::parse_http_date),
        metadata: user_metadata(&record),
        storage_class: record.storage_class.clone().map(StorageClass::from),
        parts_count: (!record.parts.is_empty()).then_some(record.parts.len() as i32),
        ..Default::default()
    }))
}

pub async fn head_object(
    s: &TesseraS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    check_key(&input.key)?;
    let record = s.service.head_object(&input.bucket, &input.key).await?;
    let (range, content_range) = resolve_range(check_range(input.range, record.size)?, record.size);
    let c = &record.content;
    let mut resp = S3Response::new(HeadObjectOutput {
        content_length: Some((range.end - range.start) as i64),
        content_range: content_range.clone(),
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&record.etag)),
        last_modified: Some(timestamp(record.modified_ms)),
        content_type: c.content_type.clone(),
        content_encoding: c.content_encoding.clone(),
        content_disposition: c.content_disposition.clone(),
        content_language: c.content_language.clone(),
        cache_control: c.cache_control.clone(),
        expires: c.expires.as_deref().and_then(convert::parse_http_date),
        metadata: user_metadata(&record),
        storage_class: record.storage_class.clone().map(StorageClass::from),
        parts_count: (!record.parts.is_empty()).then_some(record.parts.len() as i32),
        ..Default::default()
    });
    if content_range.is_some() {
        resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(resp)
}

pub async fn delete_object(
    s: &TesseraS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    check_key(&req.input.key)?;
    s.service
        .delete_object(&req.input.bucket, &req.input.key)
        .await?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

/// S3 accepts at most this many keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_objects(
    s: &TesseraS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = req.input;
    if input.delete.objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "You may delete at most 1000 objects per request"
        ));
    }
    s.service.bucket(&input.bucket).await?;
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for obj in input.delete.objects {
        let result = match check_key(&obj.key) {
            Ok(()) => s
                .service
                .delete_object(&input.bucket, &obj.key)
                .await
                .map_err(S3Error::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(obj.key),
                        ..Default::default()
                    });
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(obj.key),
                message: e.message().map(str::to_owned),
                version_id: None,
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
    if version_id.as_deref().is_some_and(|v| v != "null") {
        return Err(s3_error!(
            NoSuchVersion,
            "The specified version does not exist"
        ));
    }
    check_key(src_key)?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if !replace && **src_bucket == *input.bucket && **src_key == *input.key {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without \
             changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let meta = replace.then(|| {
        object_meta(ContentInput {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
            metadata: input.metadata,
            storage_class: input.storage_class.map(|c| c.as_str().to_owned()),
        })
    });
    let record: ObjectRecord = s
        .service
        .copy_object(src_bucket, src_key, &input.bucket, &input.key, meta)
        .await?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&record.etag)),
            last_modified: Some(timestamp(record.modified_ms)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
