//! Access control sub-resources. Tessera has one owner (the root credentials; users and
//! policies are a later issue), so ACLs report that owner with FULL_CONTROL, a `private` ACL is
//! accepted as a no-op, and bucket policy, CORS and lifecycle report "none configured" the way
//! S3 does for a bucket without them (clients such as s3cmd ask for all of these).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::convert::check_key;
use super::versions::version_param;
use super::{TesseraS3, owner};

fn owner_full_control() -> Grants {
    vec![Grant {
        grantee: Some(Grantee {
            display_name: Some("tessera".into()),
            email_address: None,
            id: Some("tessera".into()),
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }]
}

/// Only the owner-only ACL can be set: anything granting others access is refused rather than
/// silently ignored.
fn only_private(
    canned: Option<&str>,
    policy: Option<&AccessControlPolicy>,
    grants: bool,
) -> S3Result<()> {
    let canned_ok = canned.is_none_or(|c| c == "private" || c == "bucket-owner-full-control");
    let policy_ok = policy.is_none_or(|p| p.grants.as_ref().is_none_or(|g| g.len() <= 1));
    if canned_ok && policy_ok && !grants {
        Ok(())
    } else {
        Err(s3_error!(
            NotImplemented,
            "Only the owner's FULL_CONTROL ACL is supported; grant access with credentials instead"
        ))
    }
}

pub async fn get_bucket_acl(
    s: &TesseraS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    s.service.bucket(&req.input.bucket).await?;
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(owner_full_control()),
        owner: Some(owner()),
    }))
}

pub async fn put_bucket_acl(
    s: &TesseraS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let i = req.input;
    s.service.bucket(&i.bucket).await?;
    let grants =
        i.grant_full_control.is_some() || i.grant_read.is_some() || i.grant_write.is_some();
    only_private(
        i.acl.as_ref().map(|a| a.as_str()),
        i.access_control_policy.as_ref(),
        grants,
    )?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub async fn get_object_acl(
    s: &TesseraS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    s.service
        .head_object_version(&i.bucket, &i.key, version_param(i.version_id.as_deref())?)
        .await?;
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(owner_full_control()),
        owner: Some(owner()),
        ..Default::default()
    }))
}

pub async fn put_object_acl(
    s: &TesseraS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    s.service
        .head_object_version(&i.bucket, &i.key, version_param(i.version_id.as_deref())?)
        .await?;
    let grants =
        i.grant_full_control.is_some() || i.grant_read.is_some() || i.grant_write.is_some();
    only_private(
        i.acl.as_ref().map(|a| a.as_str()),
        i.access_control_policy.as_ref(),
        grants,
    )?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

pub async fn get_bucket_policy(
    s: &TesseraS3,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    s.service.bucket(&req.input.bucket).await?;
    Err(s3_error!(
        NoSuchBucketPolicy,
        "The bucket policy does not exist"
    ))
}

pub async fn get_bucket_cors(
    s: &TesseraS3,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    s.service.bucket(&req.input.bucket).await?;
    Err(s3_error!(
        NoSuchCORSConfiguration,
        "The CORS configuration does not exist"
    ))
}

pub async fn get_bucket_lifecycle(
    s: &TesseraS3,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    s.service.bucket(&req.input.bucket).await?;
    Err(s3_error!(
        NoSuchLifecycleConfiguration,
        "The lifecycle configuration does not exist"
    ))
}
