//! Bucket operations.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::TesseraS3;
use super::acl::{canned_acl, grant_headers_present, refuse_grant_headers};
use super::auth::{Caller, caller_of};
use super::convert::timestamp;
use crate::s3::IntoS3;

pub async fn list_buckets(
    s: &TesseraS3,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let (caller, client) = caller_of(&req);
    let all = s.authz.lists_all_buckets(&caller, client);
    let buckets = s
        .service
        .list_buckets()
        .await
        .s3()?
        .into_iter()
        .filter(|(name, r)| s.authz.lists_bucket(&caller, all, name, r))
        .map(|(name, r)| Bucket {
            name: Some(name),
            creation_date: Some(timestamp(r.created_ms)),
            bucket_region: Some(s.region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(s.authz.caller_owner(&caller)),
        ..Default::default()
    }))
}

pub async fn create_bucket(
    s: &TesseraS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    // The admin API lives under this path; a bucket of that name could not be addressed.
    if format!("/{}/", req.input.bucket) == crate::admin::ADMIN_PREFIX.trim_end_matches("v1/") {
        return Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::InvalidBucketName,
            "The bucket name is reserved for tessera's admin API.",
        ));
    }
    refuse_grant_headers(grant_headers_present(&req.headers))?;
    let acl = canned_acl(req.input.acl.as_ref().map(|a| a.as_str()))?;
    let owner = match caller_of(&req).0 {
        Caller::User(u) => Some(u.id.clone()),
        Caller::Root | Caller::Anonymous => None,
    };
    s.service
        .create_bucket(&req.input.bucket, owner, acl)
        .await
        .s3()?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", req.input.bucket)),
    }))
}

pub async fn head_bucket(
    s: &TesseraS3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    s.service.bucket(&req.input.bucket).await.s3()?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(s.region.clone()),
        ..Default::default()
    }))
}

pub async fn delete_bucket(
    s: &TesseraS3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    s.service.delete_bucket(&req.input.bucket).await.s3()?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub async fn get_bucket_location(
    s: &TesseraS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    s.service.bucket(&req.input.bucket).await.s3()?;
    // S3 reports us-east-1 as an empty location constraint.
    let location_constraint =
        (s.region != "us-east-1").then(|| BucketLocationConstraint::from(s.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint,
    }))
}
