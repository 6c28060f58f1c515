//! Bucket policies: stored as the client sent them once they parse and validate; evaluated by
//! the access check (`auth`).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use sha2::Digest;

use super::TesseraS3;
use crate::s3::IntoS3;

fn stored_policy(record: &metastore::BucketRecord) -> S3Result<String> {
    record
        .policy
        .clone()
        .ok_or_else(|| s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"))
}

pub async fn put(
    s: &TesseraS3,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    // The signature covers the declared body hash, not the body: check the body against it.
    if let Some(declared) = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        && !declared.eq_ignore_ascii_case(&hex::encode(sha2::Sha256::digest(
            req.input.policy.as_bytes(),
        )))
    {
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        return Err(e);
    }
    let i = req.input;
    let record = s.service.bucket(&i.bucket).await.s3()?;
    let users = s.authz.users().clone();
    let parsed =
        policy::Policy::parse_bucket_policy(&i.policy, &i.bucket, &|name| users.exists(name))
            .map_err(|e| s3s::S3Error::with_message(s3s::S3ErrorCode::MalformedPolicy, e.0))?;
    if parsed.is_public()
        && record
            .public_access_block
            .is_some_and(|b| b.block_public_policy)
    {
        return Err(s3_error!(
            AccessDenied,
            "Access Denied: the bucket's public access block blocks public policies"
        ));
    }
    let text = i.policy;
    s.service
        .meta()
        .update_bucket(&i.bucket, move |r| r.policy = Some(text.clone()))
        .await
        .s3()?;
    Ok(S3Response::new(PutBucketPolicyOutput {}))
}

pub async fn get(
    s: &TesseraS3,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    let mut resp = S3Response::new(GetBucketPolicyOutput {
        policy: Some(stored_policy(&record)?),
    });
    resp.headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Deleting a policy that does not exist succeeds, as on AWS.
pub async fn delete(
    s: &TesseraS3,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    s.service
        .meta()
        .update_bucket(&req.input.bucket, |r| r.policy = None)
        .await
        .s3()?;
    Ok(S3Response::new(DeleteBucketPolicyOutput {}))
}

pub async fn status(
    s: &TesseraS3,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    let text = stored_policy(&record)?;
    let is_public = s
        .authz
        .bucket_policy(&req.input.bucket, &text)
        .is_some_and(|p| p.is_public());
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(is_public),
        }),
    }))
}
