//! Bucket configuration kept with the bucket record: tagging, ownership controls, the public
//! access block (enforced here for ACLs, in `bucket_policy` for policies and in `auth` for
//! what public ACLs and policies grant), and the logging status (tessera delivers no server
//! access logs: a request to enable them is refused with AWS's error, never 501).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::tagging;
use crate::s3::IntoS3;

use super::errors::custom;

/// Changes a bucket's record in one metadata transaction (NoSuchBucket if it is gone).
pub(super) async fn change_bucket(
    s: &TesseraS3,
    bucket: &str,
    change: impl Fn(&mut metastore::BucketRecord) + Send + 'static,
) -> S3Result<()> {
    s.service
        .meta()
        .update_bucket(bucket, change)
        .await
        .map(drop)
        .s3()
}

pub async fn put_tagging(
    s: &TesseraS3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let i = req.input;
    let tags = tagging::from_tag_set(i.tagging.tag_set);
    tagging::validate(&tags, tagging::MAX_BUCKET_TAGS).s3()?;
    change_bucket(s, &i.bucket, move |r| r.tags = tags.clone()).await?;
    Ok(S3Response::new(PutBucketTaggingOutput {}))
}

pub async fn get_tagging(
    s: &TesseraS3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    if record.tags.is_empty() {
        return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
    }
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: tagging::tag_set(&record.tags),
    }))
}

pub async fn delete_tagging(
    s: &TesseraS3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    change_bucket(s, &req.input.bucket, |r| r.tags.clear()).await?;
    Ok(S3Response::new(DeleteBucketTaggingOutput {}))
}

pub async fn put_ownership(
    s: &TesseraS3,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let i = req.input;
    let [rule] = i.ownership_controls.rules.as_slice() else {
        return Err(s3_error!(
            MalformedXML,
            "Ownership controls take exactly one rule"
        ));
    };
    let ownership = rule.object_ownership.as_str().to_owned();
    if ![
        ObjectOwnership::BUCKET_OWNER_ENFORCED,
        ObjectOwnership::BUCKET_OWNER_PREFERRED,
        ObjectOwnership::OBJECT_WRITER,
    ]
    .contains(&ownership.as_str())
    {
        return Err(s3_error!(
            MalformedXML,
            "Unknown ObjectOwnership {}",
            ownership
        ));
    }
    let record = s.service.bucket(&i.bucket).await.s3()?;
    if ownership == ObjectOwnership::BUCKET_OWNER_ENFORCED && record.acl.is_some() {
        // As on AWS: ACLs cannot be disabled while the bucket's ACL grants access.
        return Err(custom(
            "InvalidBucketAclWithObjectOwnership",
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            http::StatusCode::BAD_REQUEST,
        ));
    }
    change_bucket(s, &i.bucket, move |r| r.ownership = Some(ownership.clone())).await?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
}

pub async fn get_ownership(
    s: &TesseraS3,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    let Some(ownership) = record.ownership else {
        return Err(custom(
            "OwnershipControlsNotFoundError",
            "The bucket ownership controls were not found",
            http::StatusCode::NOT_FOUND,
        ));
    };
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(ownership),
            }],
        }),
    }))
}

pub async fn delete_ownership(
    s: &TesseraS3,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    change_bucket(s, &req.input.bucket, |r| r.ownership = None).await?;
    Ok(S3Response::new(DeleteBucketOwnershipControlsOutput {}))
}

/// Refuses an ACL that grants access (`acl`: the canned ACL kept, `None` for private) on a
/// bucket whose ownership controls disable ACLs (BucketOwnerEnforced), or whose public access
/// block blocks public ACLs, as AWS does.
pub async fn acls_allowed(s: &TesseraS3, bucket: &str, acl: Option<&String>) -> S3Result<()> {
    if acl.is_none() {
        return Ok(());
    }
    let record = s.service.bucket(bucket).await.s3()?;
    acls_allowed_on(&record, acl, false)
}

/// [`acls_allowed`] for a bucket record at hand, `user_grants` when the ACL also grants to
/// named users (refused where ACLs are disabled, not by BlockPublicAcls).
pub fn acls_allowed_on(
    record: &metastore::BucketRecord,
    acl: Option<&String>,
    user_grants: bool,
) -> S3Result<()> {
    if acl.is_none() && !user_grants {
        return Ok(());
    }
    if record.ownership.as_deref() == Some(ObjectOwnership::BUCKET_OWNER_ENFORCED) {
        return Err(custom(
            "AccessControlListNotSupported",
            "The bucket does not allow ACLs",
            http::StatusCode::BAD_REQUEST,
        ));
    }
    if acl.is_some()
        && record
            .public_access_block
            .is_some_and(|b| b.block_public_acls)
    {
        return Err(s3_error!(
            AccessDenied,
            "Access Denied: the bucket's public access block blocks public ACLs"
        ));
    }
    Ok(())
}

pub async fn put_public_access_block(
    s: &TesseraS3,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let i = req.input;
    let c = i.public_access_block_configuration;
    let block = metastore::PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    change_bucket(s, &i.bucket, move |r| r.public_access_block = Some(block)).await?;
    Ok(S3Response::new(PutPublicAccessBlockOutput {}))
}

pub async fn get_public_access_block(
    s: &TesseraS3,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    let Some(b) = record.public_access_block else {
        return Err(custom(
            "NoSuchPublicAccessBlockConfiguration",
            "The public access block configuration was not found",
            http::StatusCode::NOT_FOUND,
        ));
    };
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(b.block_public_acls),
            ignore_public_acls: Some(b.ignore_public_acls),
            block_public_policy: Some(b.block_public_policy),
            restrict_public_buckets: Some(b.restrict_public_buckets),
        }),
    }))
}

pub async fn delete_public_access_block(
    s: &TesseraS3,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    change_bucket(s, &req.input.bucket, |r| r.public_access_block = None).await?;
    Ok(S3Response::new(DeletePublicAccessBlockOutput {}))
}

pub async fn get_logging(
    s: &TesseraS3,
    req: S3Request<GetBucketLoggingInput>,
) -> S3Result<S3Response<GetBucketLoggingOutput>> {
    s.service.bucket(&req.input.bucket).await.s3()?;
    Ok(S3Response::new(GetBucketLoggingOutput {
        logging_enabled: None,
    }))
}

pub async fn put_logging(
    s: &TesseraS3,
    req: S3Request<PutBucketLoggingInput>,
) -> S3Result<S3Response<PutBucketLoggingOutput>> {
    let i = req.input;
    s.service.bucket(&i.bucket).await.s3()?;
    match i.bucket_logging_status.logging_enabled {
        // Disabling what is not enabled.
        None => Ok(S3Response::new(PutBucketLoggingOutput {})),
        Some(_) => Err(custom(
            "InvalidTargetBucketForLogging",
            "tessera does not deliver server access logs to a bucket: use its access log \
             (the `access` log target) instead",
            http::StatusCode::BAD_REQUEST,
        )),
    }
}

pub async fn put_cors(
    s: &TesseraS3,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let i = req.input;
    let given = i.cors_configuration.cors_rules;
    if given.is_empty() || given.len() > crate::cors::MAX_RULES {
        return Err(s3_error!(
            MalformedXML,
            "A CORS configuration has 1 to {} rules",
            crate::cors::MAX_RULES
        ));
    }
    let mut rules = Vec::with_capacity(given.len());
    for r in given {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "Every CORS rule needs an AllowedOrigin and an AllowedMethod"
            ));
        }
        for m in &r.allowed_methods {
            if !crate::cors::METHODS.contains(&m.as_str()) {
                return Err(s3_error!(
                    InvalidRequest,
                    "Found unsupported HTTP method in CORS config. Unsupported method is {}",
                    m
                ));
            }
        }
        for o in &r.allowed_origins {
            if o.matches('*').count() > 1 {
                return Err(s3_error!(
                    InvalidRequest,
                    "AllowedOrigin \"{}\" can not have more than one wildcard.",
                    o
                ));
            }
        }
        for h in r.allowed_headers.iter().flatten() {
            if h.matches('*').count() > 1 {
                return Err(s3_error!(
                    InvalidRequest,
                    "AllowedHeader \"{}\" can not have more than one wildcard.",
                    h
                ));
            }
        }
        rules.push(metastore::CorsRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers.unwrap_or_default(),
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_seconds: r.max_age_seconds,
        });
    }
    change_bucket(s, &i.bucket, move |b| b.cors = rules.clone()).await?;
    Ok(S3Response::new(PutBucketCorsOutput {}))
}

pub async fn get_cors(
    s: &TesseraS3,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    if record.cors.is_empty() {
        return Err(s3_error!(
            NoSuchCORSConfiguration,
            "The CORS configuration does not exist"
        ));
    }
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(
            record
                .cors
                .iter()
                .map(|r| CORSRule {
                    id: r.id.clone(),
                    allowed_origins: r.allowed_origins.clone(),
                    allowed_methods: r.allowed_methods.clone(),
                    allowed_headers: some(&r.allowed_headers),
                    expose_headers: some(&r.expose_headers),
                    max_age_seconds: r.max_age_seconds,
                })
                .collect(),
        ),
    }))
}

pub async fn delete_cors(
    s: &TesseraS3,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    change_bucket(s, &req.input.bucket, |b| b.cors.clear()).await?;
    Ok(S3Response::new(DeleteBucketCorsOutput {}))
}
