//! Multipart upload operations.

use objects::Error;
use objects::{CompletedPart, PartsCheck, UploadBody};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use std::collections::BTreeMap;

use super::TesseraS3;
use super::checksums::{self, Algorithm, composite, verify_body};
use super::conditions::write_expect;
use super::convert::{self, check_key, etag, new_object_meta, timestamp};
use super::put::empty_body;
use crate::s3::IntoS3;

pub async fn create(
    s: &TesseraS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let meta = new_object_meta!(i)?;
    super::bucket_config::acls_allowed(s, &i.bucket, meta.acl.as_ref()).await?;
    let algorithm = match &i.checksum_algorithm {
        Some(a) => Some(
            Algorithm::from_name(a.as_str())
                .ok_or_else(|| {
                    s3_error!(
                        InvalidRequest,
                        "Checksum algorithm {} is not supported",
                        a.as_str()
                    )
                })?
                .name()
                .to_owned(),
        ),
        None => None,
    };
    let full_object = upload_checksum_type(
        algorithm.as_deref().and_then(Algorithm::from_name),
        i.checksum_type.as_ref().map(|t| t.as_str()),
    )?;
    let checksum_type = algorithm.as_ref().map(|_| {
        ChecksumType::from_static(if full_object {
            ChecksumType::FULL_OBJECT
        } else {
            ChecksumType::COMPOSITE
        })
    });
    let key_md5 = i.sse_customer_key_md5.clone();
    let (upload_id, encryption) = s
        .service
        .create_upload(
            &i.bucket,
            &i.key,
            meta,
            algorithm,
            checksum_type.as_ref().map(|t| t.as_str().to_owned()),
        )
        .await
        .s3()?;
    let (sse_customer_algorithm, sse_customer_key_md5) =
        super::sse::customer_answer(encryption.as_ref(), key_md5.as_deref());
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(upload_id),
        checksum_type,
        checksum_algorithm: i.checksum_algorithm,
        server_side_encryption: super::sse::answer(encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(encryption.as_ref()),
        ssekms_encryption_context: super::sse::kms_context_answer(encryption.as_ref()),
        sse_customer_algorithm,
        sse_customer_key_md5,
        ..Default::default()
    }))
}

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            )
        })
}

pub async fn upload_part(
    s: &TesseraS3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let number = part_number(i.part_number)?;
    let customer = super::sse::sse_customer_key!(i)?;
    let md5 = convert::content_md5(i.content_md5.as_deref())?;
    let expected = i.content_length.and_then(|l| u64::try_from(l).ok());
    let (stream, check) = verify_body(
        i.body.unwrap_or_else(empty_body),
        &req.headers,
        req.trailing_headers,
    )?;
    let body = UploadBody {
        stream,
        expected_len: expected,
        content_md5: md5,
        check: Some(check),
    };
    let stored = s
        .service
        .upload_part(
            (&i.bucket, &i.key, &i.upload_id),
            number,
            body,
            customer.as_ref(),
        )
        .await
        .s3()?;
    let (sse_customer_algorithm, sse_customer_key_md5) = super::sse::customer_answer(
        stored.encryption.as_ref(),
        i.sse_customer_key_md5.as_deref(),
    );
    let part = stored.part;
    let get = |a: Algorithm| part.checksums.get(a.name()).cloned();
    Ok(S3Response::new(UploadPartOutput {
        server_side_encryption: super::sse::answer(stored.encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(stored.encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(stored.encryption.as_ref()),
        sse_customer_algorithm,
        sse_customer_key_md5,
        e_tag: Some(etag(&part.etag)),
        checksum_crc32: get(Algorithm::Crc32),
        checksum_crc32c: get(Algorithm::Crc32c),
        checksum_crc64nvme: get(Algorithm::Crc64Nvme),
        checksum_sha1: get(Algorithm::Sha1),
        checksum_sha256: get(Algorithm::Sha256),
        ..Default::default()
    }))
}

/// Whether an upload's checksum is of the whole object (`FULL_OBJECT`) rather than of its
/// parts' checksums (`COMPOSITE`), with AWS's defaults and refusals: CRC64NVME is always
/// full-object, SHA-1 and SHA-256 always composite, CRC32 and CRC32C either (composite unless
/// asked).
fn upload_checksum_type(algorithm: Option<Algorithm>, asked: Option<&str>) -> S3Result<bool> {
    let refuse = |t: &str, a: Algorithm| {
        Err(s3_error!(
            InvalidRequest,
            "The {} checksum type cannot be used with the {} checksum algorithm.",
            t,
            a.name().to_lowercase()
        ))
    };
    match (algorithm, asked) {
        (None, None) => Ok(false),
        (None, Some(_)) => Err(s3_error!(
            InvalidRequest,
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
        )),
        (Some(a), Some(t)) if t != ChecksumType::FULL_OBJECT && t != ChecksumType::COMPOSITE => {
            Err(s3_error!(
                InvalidRequest,
                "Value for x-amz-checksum-type header is invalid: {} (checksum {})",
                t,
                a.name()
            ))
        }
        (Some(a @ Algorithm::Crc64Nvme), Some(ChecksumType::COMPOSITE)) => {
            refuse(ChecksumType::COMPOSITE, a)
        }
        (Some(Algorithm::Crc64Nvme), _) => Ok(true),
        (Some(a @ (Algorithm::Sha1 | Algorithm::Sha256)), Some(ChecksumType::FULL_OBJECT)) => {
            refuse(ChecksumType::FULL_OBJECT, a)
        }
        (Some(_), t) => Ok(t == Some(ChecksumType::FULL_OBJECT)),
    }
}

pub async fn complete(
    s: &TesseraS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let listed = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    if listed.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema."
        ));
    }
    let mut parts = Vec::with_capacity(listed.len());
    // Checksums the client lists per part must match what the parts were stored with.
    let mut claimed: Vec<Vec<(Algorithm, String)>> = Vec::with_capacity(listed.len());
    for p in listed {
        let number = part_number(
            p.part_number
                .ok_or_else(|| s3_error!(MalformedXML, "A part has no PartNumber"))?,
        )?;
        let tag = p
            .e_tag
            .ok_or_else(|| s3_error!(MalformedXML, "A part has no ETag"))?;
        parts.push(CompletedPart {
            number,
            etag: tag.value().to_owned(),
        });
        claimed.push(
            [
                (Algorithm::Crc32, p.checksum_crc32),
                (Algorithm::Crc32c, p.checksum_crc32c),
                (Algorithm::Crc64Nvme, p.checksum_crc64nvme),
                (Algorithm::Sha1, p.checksum_sha1),
                (Algorithm::Sha256, p.checksum_sha256),
            ]
            .into_iter()
            .filter_map(|(a, v)| v.map(|v| (a, v)))
            .collect(),
        );
    }
    let expect = write_expect(i.if_match.as_ref(), i.if_none_match.as_ref())?;
    // A whole-object checksum the client computed itself, checked against the combined one.
    let declared: Vec<(Algorithm, String)> = [
        (Algorithm::Crc32, i.checksum_crc32),
        (Algorithm::Crc32c, i.checksum_crc32c),
        (Algorithm::Crc64Nvme, i.checksum_crc64nvme),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v)))
    .collect();
    let check: PartsCheck = Box::new(move |algorithm, checksum_type, stored| {
        for (n, (claims, part)) in claimed.iter().zip(stored).enumerate() {
            for (a, v) in claims {
                if part.checksums.get(a.name()) != Some(v) {
                    return Err(Error::InvalidPart(format!(
                        "the {} of part {} does not match the uploaded part",
                        a.name(),
                        n + 1
                    )));
                }
            }
        }
        let mut out = BTreeMap::new();
        if let Some(a) = algorithm.and_then(Algorithm::from_name) {
            let sums: Vec<Option<&String>> =
                stored.iter().map(|p| p.checksums.get(a.name())).collect();
            let missing = || {
                Error::InvalidPart(format!(
                    "every part of this upload needs a {} checksum",
                    a.name()
                ))
            };
            let value = if checksum_type == Some(ChecksumType::FULL_OBJECT) {
                let sized: Vec<_> = sums.iter().zip(stored).map(|(c, p)| (*c, p.size)).collect();
                let value = checksums::full_object(a, &sized).ok_or_else(missing)?;
                if let Some((_, want)) = declared.iter().find(|(d, _)| *d == a)
                    && *want != value
                {
                    return Err(Error::BadChecksum(format!(
                        "The {} you specified did not match the calculated checksum.",
                        a.name()
                    )));
                }
                value
            } else {
                composite(a, &sums).ok_or_else(missing)?
            };
            out.insert(a.name().to_owned(), value);
        } else {
            // No algorithm named: as S3 does, the object gets a full-object CRC64NVME, from
            // the CRC64NVME every part got by default (none if a part lacks it).
            let a = Algorithm::Crc64Nvme;
            let sized: Vec<_> = stored
                .iter()
                .map(|p| (p.checksums.get(a.name()), p.size))
                .collect();
            if let Some(value) = checksums::full_object(a, &sized) {
                out.insert(a.name().to_owned(), value);
            }
        }
        Ok(out)
    });
    let record = s
        .service
        .complete_upload(&i.bucket, &i.key, &i.upload_id, &parts, expect, check)
        .await
        .s3()?;
    let sums = checksums::stored(&record);
    let expiration = super::lifecycle::expiration(s, &i.bucket, &i.key, &record).await;
    let event = super::notifications::event_of(
        &req.extensions,
        "ObjectCreated:CompleteMultipartUpload",
        &i.bucket,
        &i.key,
    );
    s.service
        .notify(super::notifications::created(event, &record))
        .await;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        expiration,
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&record.etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        version_id: record.version_id.clone(),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        checksum_type: sums.checksum_type,
        server_side_encryption: super::sse::answer(record.encryption.as_ref()),
        ssekms_key_id: super::sse::kms_key_answer(record.encryption.as_ref()),
        bucket_key_enabled: super::sse::bucket_key_answer(record.encryption.as_ref()),
        ..Default::default()
    }))
}

pub async fn abort(
    s: &TesseraS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let i = req.input;
    s.service
        .abort_upload(&i.bucket, &i.key, &i.upload_id)
        .await
        .s3()?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(
    s: &TesseraS3,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let i = req.input;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000);
    let marker = i.part_number_marker.unwrap_or(0);
    let all = s
        .service
        .list_parts(&i.bucket, &i.key, &i.upload_id)
        .await
        .s3()?;
    let mut after: Vec<_> = all
        .into_iter()
        .filter(|(n, _)| *n as i64 > marker as i64)
        .collect();
    let truncated = after.len() > max as usize;
    after.truncate(max as usize);
    let next = after.last().map(|(n, _)| *n as i32);
    let parts = after
        .into_iter()
        .map(|(n, p)| Part {
            part_number: Some(n as i32),
            e_tag: Some(etag(&p.etag)),
            size: Some(p.size as i64),
            last_modified: Some(timestamp(p.modified_ms)),
            checksum_crc32: p.checksums.get(Algorithm::Crc32.name()).cloned(),
            checksum_crc32c: p.checksums.get(Algorithm::Crc32c.name()).cloned(),
            checksum_crc64nvme: p.checksums.get(Algorithm::Crc64Nvme.name()).cloned(),
            checksum_sha1: p.checksums.get(Algorithm::Sha1.name()).cloned(),
            checksum_sha256: p.checksums.get(Algorithm::Sha256.name()).cloned(),
        })
        .collect();
    let owner = s.bucket_owner(&i.bucket).await?;
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: next,
        is_truncated: Some(truncated),
        parts: Some(parts),
        owner: Some(owner),
        storage_class: Some(StorageClass::from("STANDARD".to_owned())),
        ..Default::default()
    }))
}
