//! Bucket default encryption (Put/Get/DeleteBucketEncryption): with a rule of `AES256`, new
//! objects are encrypted with SSE-S3 whether or not their request asks, with `aws:kms` with
//! SSE-KMS under the rule's KMSMasterKeyID (or the key store's `default` key); the object
//! service applies it. Rules that every write would fail with (no master key, a missing or
//! disabled key) are refused when they are put.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::bucket_config::change_bucket;
use super::errors::custom;
use crate::s3::IntoS3;

pub async fn put(
    s: &TesseraS3,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let i = req.input;
    let [rule] = i.server_side_encryption_configuration.rules.as_slice() else {
        return Err(s3_error!(
            MalformedXML,
            "The encryption configuration takes exactly one rule"
        ));
    };
    let Some(default) = &rule.apply_server_side_encryption_by_default else {
        return Err(s3_error!(
            MalformedXML,
            "The rule lacks ApplyServerSideEncryptionByDefault"
        ));
    };
    let (encrypt, kms_key) = match default.sse_algorithm.as_str() {
        ServerSideEncryption::AES256 if default.kms_master_key_id.is_none() => {
            (objects::Encrypt::ServerKey, None)
        }
        ServerSideEncryption::AES256 => {
            return Err(s3_error!(
                InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse"
            ));
        }
        "aws:kms" => {
            let key = default
                .kms_master_key_id
                .as_deref()
                .map(|k| objects::kms::key_name_of(k).to_owned())
                .unwrap_or_else(|| objects::kms::DEFAULT_KEY.to_owned());
            let encrypt = objects::Encrypt::Kms {
                key: Some(key.clone()),
                context: None,
                bucket_key: false,
            };
            (encrypt, Some(key))
        }
        a if a.starts_with("aws:kms") => {
            return Err(s3_error!(
                NotImplemented,
                "Dual-layer encryption with KMS keys ({a}) is not supported"
            ));
        }
        a => {
            return Err(s3_error!(
                MalformedXML,
                "Unknown SSEAlgorithm {a:?}: AES256, aws:kms or aws:kms:dsse"
            ));
        }
    };
    // Refused now rather than failing every write later.
    let bucket = s.service.bucket(&i.bucket).await.s3()?;
    s.service.encryption_for(&encrypt, &bucket).await.s3()?;
    // S3 Bucket Keys apply to SSE-KMS only.
    let bucket_key = kms_key.is_some() && rule.bucket_key_enabled == Some(true);
    change_bucket(s, &i.bucket, move |r| {
        r.encrypt_by_default = true;
        r.default_kms_key = kms_key.clone();
        r.default_bucket_key = bucket_key;
    })
    .await?;
    Ok(S3Response::new(PutBucketEncryptionOutput {}))
}

pub async fn get(
    s: &TesseraS3,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    if !record.encrypt_by_default {
        return Err(custom(
            "ServerSideEncryptionConfigurationNotFoundError",
            "The server side encryption configuration was not found",
            http::StatusCode::NOT_FOUND,
        ));
    }
    let rule = ServerSideEncryptionRule {
        apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
            sse_algorithm: ServerSideEncryption::from(
                if record.default_kms_key.is_some() {
                    ServerSideEncryption::AWS_KMS
                } else {
                    ServerSideEncryption::AES256
                }
                .to_owned(),
            ),
            kms_master_key_id: record.default_kms_key.clone(),
        }),
        bucket_key_enabled: Some(record.default_bucket_key),
    };
    Ok(S3Response::new(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
            rules: vec![rule],
        }),
    }))
}

pub async fn delete(
    s: &TesseraS3,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    change_bucket(s, &req.input.bucket, |r| {
        r.encrypt_by_default = false;
        r.default_kms_key = None;
        r.default_bucket_key = false;
    })
    .await?;
    Ok(S3Response::new(DeleteBucketEncryptionOutput {}))
}
