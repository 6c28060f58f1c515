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
    let i = &req.input;
    let max = match i.max_buckets {
        None => usize::MAX,
        Some(n @ 1..=MAX_BUCKETS_PER_PAGE) => n as usize,
        Some(_) => {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::InvalidArgument,
                format!("max-buckets must be between 1 and {MAX_BUCKETS_PER_PAGE}"),
            ));
        }
    };
    // The continuation token is the last name of the previous page (names sort as listed).
    let after = i.continuation_token.clone().unwrap_or_default();
    let prefix = i.prefix.clone().unwrap_or_default();
    let other_region = i.bucket_region.as_ref().is_some_and(|r| *r != s.region);
    let mut buckets: Vec<Bucket> = s
        .service
        .list_buckets()
        .await
        .s3()?
        .into_iter()
        .filter(|(name, _)| !other_region && name.starts_with(&prefix) && *name > after)
        .filter(|(name, r)| s.authz.lists_bucket(&caller, all, name, r))
        .take(max.saturating_add(1))
        .map(|(name, r)| Bucket {
            name: Some(name),
            creation_date: Some(timestamp(r.created_ms)),
            bucket_region: Some(s.region.clone()),
        })
        .collect();
    let continuation_token = if buckets.len() > max {
        buckets.truncate(max);
        buckets.last().and_then(|b| b.name.clone())
    } else {
        None
    };
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(s.authz.caller_owner(&caller)),
        continuation_token,
        prefix: i.prefix.clone(),
    }))
}

/// ListBuckets' largest page (`max-buckets`), as on AWS.
const MAX_BUCKETS_PER_PAGE: i32 = 10_000;

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
    let asked = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|c| c.as_str().to_string());
    if asked.as_deref() == Some("us-east-1") && s.region == "us-east-1" {
        // As on AWS: us-east-1 is the default and is not given as a constraint.
        return Err(super::errors::custom(
            "InvalidLocationConstraint",
            "The specified location-constraint is not valid",
            http::StatusCode::BAD_REQUEST,
        ));
    }
    if let Some(asked) = &asked
        && *asked != s.region
    {
        return Err(super::errors::custom(
            "IllegalLocationConstraintException",
            format!(
                "The {asked} location constraint is incompatible for the region specific endpoint this request was sent to."
            ),
            http::StatusCode::BAD_REQUEST,
        ));
    }
    let created = s
        .service
        .create_bucket(
            &req.input.bucket,
            (owner.clone(), acl),
            s.region.clone(),
            req.input.object_lock_enabled_for_bucket == Some(true),
        )
        .await;
    if let Err(objects::Error::Meta(metastore::Error::BucketExists)) = &created
        && let Ok(existing) = s.service.bucket(&req.input.bucket).await
        && existing.owner != owner
    {
        // Taken by someone else (another tenant, or root): not "yours", as on S3.
        return Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::BucketAlreadyExists,
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
        ));
    }
    created.s3()?;
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
    let bucket = s.service.bucket(&req.input.bucket).await.s3()?;
    let region = bucket.region.unwrap_or_else(|| s.region.clone());
    // S3 reports us-east-1 as an empty location constraint.
    let location_constraint =
        (region != "us-east-1").then(|| BucketLocationConstraint::from(region));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint,
    }))
}
