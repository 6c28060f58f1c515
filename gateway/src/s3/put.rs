//! PutObject and browser-style POST Object uploads (s3s has checked the POST policy).

use http::HeaderMap;
use metastore::{Expect, ObjectRecord};
use objects::{ObjectMeta, UploadBody};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, TrailingHeaders};

use super::TesseraS3;
use super::checksums::{self, verify_body};
use super::conditions::write_expect;
use super::convert::{self, check_key, etag, new_object_meta};
use super::notifications;
use crate::s3::IntoS3;

pub fn empty_body() -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
}

/// What both upload forms hand over.
pub struct Upload<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub body: Option<StreamingBlob>,
    pub content_length: Option<i64>,
    pub content_md5: Option<&'a str>,
    pub meta: ObjectMeta,
    pub expect: Option<Expect>,
}

/// Streams an upload into the object service, verifying Content-MD5 and flexible checksums.
pub async fn store(
    s: &TesseraS3,
    headers: &HeaderMap,
    trailing: Option<TrailingHeaders>,
    u: Upload<'_>,
) -> S3Result<ObjectRecord> {
    check_key(u.key)?;
    let md5 = convert::content_md5(u.content_md5)?;
    let (stream, check) = verify_body(u.body.unwrap_or_else(empty_body), headers, trailing)?;
    let body = UploadBody {
        stream,
        expected_len: u.content_length.and_then(|l| u64::try_from(l).ok()),
        content_md5: md5,
        check: Some(check),
    };
    s.service
        .put_object(u.bucket, u.key, body, u.meta, u.expect)
        .await
        .s3()
}

pub async fn put_object(
    s: &TesseraS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let i = req.input;
    let key_md5 = i.sse_customer_key_md5.clone();
    let mut meta = new_object_meta!(i)?;
    meta.integrity_declared = checksums::integrity_declared(&req.headers, i.content_md5.is_some());
    super::bucket_config::acls_allowed(s, &i.bucket, meta.acl.as_ref()).await?;
    let upload = Upload {
        bucket: &i.bucket,
        key: &i.key,
        body: i.body,
        content_length: i.content_length,
        content_md5: i.content_md5.as_deref(),
        meta,
        expect: write_expect(i.if_match.as_ref(), i.if_none_match.as_ref())?,
    };
    let record = store(s, &req.headers, req.trailing_headers, upload).await?;
    let sums = checksums::stored(&record);
    let (sse_customer_algorithm, sse_customer_key_md5) =
        super::sse::customer_answer(record.encryption.as_ref(), key_md5.as_deref());
    let expiration = super::lifecycle::expiration(s, &i.bucket, &i.key, &record).await;
    let event = notifications::event_of(&req.extensions, "ObjectCreated:Put", &i.bucket, &i.key);
    s.service
        .notify(notifications::created(event, &record))
        .await;
    Ok(S3Response::new(PutObjectOutput {
        expiration,
        e_tag: Some(etag(&record.etag)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        checksum_type: sums.checksum_type,
        size: Some(record.size as i64),
        version_id: record.version_id.clone(),
        server_side_encryption: super::sse::answer(record.encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(record.encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(record.encryption.as_ref()),
        ssekms_encryption_context: super::sse::kms_context_answer(record.encryption.as_ref()),
        sse_customer_algorithm,
        sse_customer_key_md5,
        ..Default::default()
    }))
}

pub async fn post_object(
    s: &TesseraS3,
    req: S3Request<PostObjectInput>,
) -> S3Result<S3Response<PostObjectOutput>> {
    let i = req.input;
    let mut meta = new_object_meta!(i)?;
    // A browser form cannot send a checksum: its policy signs what it may upload.
    meta.integrity_declared = true;
    super::bucket_config::acls_allowed(s, &i.bucket, meta.acl.as_ref()).await?;
    let upload = Upload {
        bucket: &i.bucket,
        key: &i.key,
        body: i.body,
        content_length: i.content_length,
        content_md5: i.content_md5.as_deref(),
        meta,
        expect: write_expect(i.if_match.as_ref(), i.if_none_match.as_ref())?,
    };
    // The form's fields are not HTTP headers: checksums named in it are not verified here.
    let record = store(s, &HeaderMap::new(), None, upload).await?;
    let event = notifications::event_of(&req.extensions, "ObjectCreated:Post", &i.bucket, &i.key);
    s.service
        .notify(notifications::created(event, &record))
        .await;
    Ok(S3Response::new(PostObjectOutput {
        server_side_encryption: super::sse::answer(record.encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(record.encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(record.encryption.as_ref()),
        e_tag: Some(etag(&record.etag)),
        size: Some(record.size as i64),
        ..Default::default()
    }))
}
