//! ListMultipartUploads and UploadPartCopy.

use metastore::{UploadEntry, UploadQuery};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::conditions::{self, Conditions};
use super::convert::{check_key, etag, listing_max, maybe_url_encode, timestamp, wants_url};
use crate::s3::IntoS3;

pub async fn list(
    s: &TesseraS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let i = req.input;
    let url = wants_url(&i.encoding_type)?;
    let max = listing_max(i.max_uploads, "max-uploads")?;
    let key_marker = i.key_marker.clone().filter(|k| !k.is_empty());
    let query = UploadQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone(),
        upload_id_marker: key_marker
            .as_ref()
            .and(i.upload_id_marker.clone())
            .filter(|u| !u.is_empty()),
        key_marker,
        max: max as usize,
    };
    let page = if max == 0 {
        s.service.bucket(&i.bucket).await.s3()?;
        Default::default()
    } else {
        s.service.list_uploads(&i.bucket, query).await.s3()?
    };
    let owner = s.bucket_owner(&i.bucket).await?;
    let mut uploads = Vec::new();
    let mut prefixes = Vec::new();
    let (mut next_key, mut next_id) = (None, None);
    for e in &page.entries {
        match e {
            UploadEntry::Upload {
                key,
                upload_id,
                record,
            } => {
                next_key = Some(key.clone());
                next_id = Some(upload_id.clone());
                uploads.push(MultipartUpload {
                    key: Some(maybe_url_encode(key.clone(), url)),
                    upload_id: Some(upload_id.clone()),
                    initiated: Some(timestamp(record.initiated_ms)),
                    initiator: Some(Initiator {
                        display_name: owner.display_name.clone(),
                        id: owner.id.clone(),
                    }),
                    owner: Some(owner.clone()),
                    storage_class: Some(StorageClass::from(
                        record
                            .template
                            .storage_class
                            .clone()
                            .unwrap_or_else(|| "STANDARD".into()),
                    )),
                    checksum_algorithm: record
                        .checksum_algorithm
                        .clone()
                        .map(ChecksumAlgorithm::from),
                    ..Default::default()
                });
            }
            UploadEntry::CommonPrefix(p) => {
                next_key = Some(p.clone());
                next_id = None;
                prefixes.push(CommonPrefix {
                    prefix: Some(maybe_url_encode(p.clone(), url)),
                });
            }
        }
    }
    let enc = |v: Option<String>| v.map(|v| maybe_url_encode(v, url));
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: enc(i.prefix),
        delimiter: enc(i.delimiter),
        key_marker: enc(i.key_marker),
        upload_id_marker: i.upload_id_marker,
        max_uploads: Some(max),
        is_truncated: Some(page.truncated),
        next_key_marker: if page.truncated { enc(next_key) } else { None },
        next_upload_id_marker: if page.truncated { next_id } else { None },
        uploads: Some(uploads),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

/// `bytes=first-last` (both required, inclusive) as UploadPartCopy takes it.
fn copy_range(header: Option<&str>, size: u64) -> S3Result<std::ops::Range<u64>> {
    let Some(h) = header else { return Ok(0..size) };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let (a, b) = h
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let (first, last): (u64, u64) = (
        a.parse().map_err(|_| invalid())?,
        b.parse().map_err(|_| invalid())?,
    );
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    Ok(first..last + 1)
}

pub async fn upload_part_copy(
    s: &TesseraS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let CopySource::Bucket {
        bucket: src_bucket,
        key: src_key,
        version_id,
    } = &i.copy_source
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
    let number = u32::try_from(i.part_number)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            )
        })?;
    let source_key = super::sse::copy_source_customer_key!(i)?;
    let customer = super::sse::sse_customer_key!(i)?;
    let source = s.service.head_object(src_bucket, src_key).await.s3()?;
    conditions::check_copy_source(
        &Conditions {
            if_match: i.copy_source_if_match.as_ref(),
            if_none_match: i.copy_source_if_none_match.as_ref(),
            if_modified_since: i.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
        },
        &source,
    )?;
    let range = copy_range(i.copy_source_range.as_deref(), source.size)?;
    let stored = s
        .service
        .upload_part_copy(
            (&i.bucket, &i.key, &i.upload_id),
            number,
            (&source, range),
            (source_key.as_ref(), customer.as_ref()),
        )
        .await
        .s3()?;
    let (sse_customer_algorithm, sse_customer_key_md5) = super::sse::customer_answer(
        stored.encryption.as_ref(),
        i.sse_customer_key_md5.as_deref(),
    );
    let part = stored.part;
    Ok(S3Response::new(UploadPartCopyOutput {
        server_side_encryption: super::sse::answer(stored.encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(stored.encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(stored.encryption.as_ref()),
        sse_customer_algorithm,
        sse_customer_key_md5,
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&part.etag)),
            last_modified: Some(timestamp(part.modified_ms)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges() {
        assert_eq!(copy_range(None, 10).unwrap(), 0..10);
        assert_eq!(copy_range(Some("bytes=2-5"), 10).unwrap(), 2..6);
        assert_eq!(copy_range(Some("bytes=0-9"), 10).unwrap(), 0..10);
        assert_eq!(
            copy_range(Some("bytes=0-10"), 10).unwrap_err().code(),
            &S3ErrorCode::InvalidRange
        );
        assert!(copy_range(Some("bytes=5-2"), 10).is_err());
        assert!(copy_range(Some("bytes=-5"), 10).is_err());
        assert!(copy_range(Some("items=0-1"), 10).is_err());
    }
}
