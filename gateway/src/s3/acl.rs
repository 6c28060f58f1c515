//! Access control lists at the level MinIO offers: the owner always has FULL_CONTROL, and a
//! canned ACL (`public-read`, `authenticated-read`, ...) may add read access for everyone or
//! for every signed user. Grants to anyone else are refused, not silently ignored. CORS and
//! lifecycle report "none configured" the way S3 does (clients such as s3cmd ask for them).

use metastore::AclGrant;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::TesseraS3;
use super::convert::check_key;
use super::versions::version_param;
use crate::s3::IntoS3;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// Validates a canned ACL and returns what is stored: `None` for the owner-only ACLs
/// (objects belong to their bucket's owner, so `bucket-owner-*` add nothing).
pub fn canned_acl(acl: Option<&str>) -> S3Result<Option<String>> {
    match acl {
        None | Some("private" | "bucket-owner-read" | "bucket-owner-full-control") => Ok(None),
        Some(a @ ("public-read" | "public-read-write" | "authenticated-read")) => {
            Ok(Some(a.to_owned()))
        }
        Some(other) => Err(s3_error!(InvalidArgument, "Unknown canned ACL: {other}")),
    }
}

/// The headers that grant ACL permissions to named accounts or groups.
pub const GRANT_HEADERS: [&str; 5] = [
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

pub fn grant_headers_present(headers: &http::HeaderMap) -> bool {
    GRANT_HEADERS.iter().any(|h| headers.contains_key(*h))
}

/// Refuses explicit grants (`present`: the request names some).
/// Who besides the owner may read under a stored canned ACL. `public-read-write` grants reads
/// only: tessera takes no anonymous writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    Everyone,
    SignedUsers,
}

pub fn readers(acl: Option<&str>) -> Option<Readers> {
    match acl {
        Some("public-read" | "public-read-write") => Some(Readers::Everyone),
        Some("authenticated-read") => Some(Readers::SignedUsers),
        _ => None,
    }
}

/// Grants to an email address: no tessera user carries one, so the address resolves to no one
/// (S3's 400 UnresolvableGrantByEmailAddress).
fn unresolvable_email() -> s3s::S3Error {
    super::errors::custom(
        "UnresolvableGrantByEmailAddress",
        "The email address you provided does not match any account on record.",
        http::StatusCode::BAD_REQUEST,
    )
}

/// Refuses `x-amz-grant-*` headers naming an email address (before the other grant checks,
/// which answer NotImplemented for grants tessera cannot keep).
pub fn refuse_email_grants(headers: &http::HeaderMap) -> S3Result<()> {
    let names_email = GRANT_HEADERS.iter().any(|h| {
        headers.get_all(*h).iter().any(|v| {
            v.as_bytes()
                .to_ascii_lowercase()
                .windows(12)
                .any(|w| w == b"emailaddress")
        })
    });
    if names_email {
        return Err(unresolvable_email());
    }
    Ok(())
}

pub fn refuse_grant_headers(present: bool) -> S3Result<()> {
    if present {
        return Err(s3_error!(
            NotImplemented,
            "Grants to other accounts are not supported; use a canned ACL or a bucket policy"
        ));
    }
    Ok(())
}

fn group_read(uri: &str) -> Grant {
    Grant {
        grantee: Some(Grantee {
            display_name: None,
            email_address: None,
            id: None,
            type_: Type::from_static(Type::GROUP),
            uri: Some(uri.to_owned()),
        }),
        permission: Some(Permission::from_static(Permission::READ)),
    }
}

/// The grants a stored canned ACL stands for.
fn grants(owner: &Owner, acl: Option<&str>) -> Grants {
    let mut grants = vec![Grant {
        grantee: Some(Grantee {
            display_name: owner.display_name.clone(),
            email_address: None,
            id: owner.id.clone(),
            type_: Type::from_static(Type::CANONICAL_USER),
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }];
    match readers(acl) {
        Some(Readers::Everyone) => grants.push(group_read(ALL_USERS)),
        Some(Readers::SignedUsers) => grants.push(group_read(AUTHENTICATED_USERS)),
        None => {}
    }
    grants
}

/// What a Put*Acl request sets: a canned ACL (public reads), and grants to named users.
struct RequestedAcl {
    canned: Option<String>,
    grants: Vec<AclGrant>,
}

const PERMISSIONS: [&str; 5] = ["READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"];

impl RequestedAcl {
    /// Adds a grant to the user a canonical id names (the owner's own grants add nothing:
    /// it has FULL_CONTROL anyway).
    fn grant_to(
        &mut self,
        s: &TesseraS3,
        owner: &Owner,
        canonical: &str,
        permission: &str,
    ) -> S3Result<()> {
        if !PERMISSIONS.contains(&permission) {
            return Err(s3_error!(
                MalformedACLError,
                "Unknown permission {}",
                permission
            ));
        }
        if owner.id.as_deref() == Some(canonical) {
            return Ok(());
        }
        let user = s
            .authz
            .user_of_canonical(canonical)
            .ok_or_else(|| s3_error!(InvalidArgument, "Invalid id"))?;
        if !self
            .grants
            .iter()
            .any(|g| g.user == user && g.permission == permission)
        {
            self.grants.push(AclGrant {
                user,
                permission: permission.to_owned(),
            });
        }
        Ok(())
    }

    /// A group's READ is a canned ACL; other group grants are not supported.
    fn group(&mut self, uri: &str, permission: &str) -> S3Result<()> {
        match (uri, permission) {
            (ALL_USERS, Permission::READ) => self.canned = Some("public-read".to_owned()),
            (AUTHENTICATED_USERS, Permission::READ) if self.canned.is_none() => {
                self.canned = Some("authenticated-read".to_owned())
            }
            (AUTHENTICATED_USERS, Permission::READ) => {}
            _ => refuse_grant_headers(true)?,
        }
        Ok(())
    }
}

/// The ACL a Put*Acl request sets: a canned ACL header, `x-amz-grant-*` headers, or an ACL
/// document, one of them.
/// Refused where the bucket's ownership controls or public access block forbid it.
async fn requested_acl(
    s: &TesseraS3,
    bucket: &str,
    canned: Option<&str>,
    policy: Option<&AccessControlPolicy>,
    headers: &http::HeaderMap,
) -> S3Result<RequestedAcl> {
    let record = s.service.bucket(bucket).await.s3()?;
    let acl = parsed_acl(s, &record, canned, policy, headers)?;
    super::bucket_config::acls_allowed_on(&record, acl.canned.as_ref(), !acl.grants.is_empty())?;
    Ok(acl)
}

fn parsed_acl(
    s: &TesseraS3,
    record: &metastore::BucketRecord,
    canned: Option<&str>,
    policy: Option<&AccessControlPolicy>,
    headers: &http::HeaderMap,
) -> S3Result<RequestedAcl> {
    // Objects belong to their bucket's owner, so both ACLs name the bucket's.
    let owner = &s.authz.owner(record.owner.as_deref());
    let mut out = RequestedAcl {
        canned: canned_acl(canned)?,
        grants: Vec::new(),
    };
    let grant_headers = grant_headers_present(headers);
    if [canned.is_some(), policy.is_some(), grant_headers]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        return Err(s3_error!(
            InvalidRequest,
            "Specify one of a canned ACL, grant headers or an access control policy"
        ));
    }
    if let Some(p) = policy {
        for g in p.grants.iter().flatten() {
            let grantee = g.grantee.as_ref();
            let kind = grantee.map(|g| g.type_.as_str());
            let permission = g.permission.as_ref().map_or("", |p| p.as_str());
            match (kind, grantee) {
                (Some(Type::AMAZON_CUSTOMER_BY_EMAIL), _) => return Err(unresolvable_email()),
                (Some(Type::CANONICAL_USER), Some(g)) => {
                    let id =
                        g.id.as_deref()
                            .ok_or_else(|| s3_error!(MalformedACLError, "A grantee has no ID"))?;
                    out.grant_to(s, owner, id, permission)?;
                }
                (Some(Type::GROUP), Some(g)) => {
                    out.group(g.uri.as_deref().unwrap_or(""), permission)?
                }
                _ => refuse_grant_headers(true)?,
            }
        }
    }
    for (header, permission) in
        GRANT_HEADERS
            .iter()
            .zip(["READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"])
    {
        for value in headers.get_all(*header) {
            let value = value
                .to_str()
                .map_err(|_| s3_error!(InvalidArgument, "{} is not text", header))?;
            for grantee in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                let (kind, who) = grantee.split_once('=').ok_or_else(|| {
                    s3_error!(InvalidArgument, "Invalid grantee {} in {}", grantee, header)
                })?;
                let who = who.trim().trim_matches('"');
                match kind.trim() {
                    "id" => out.grant_to(s, owner, who, permission)?,
                    "uri" => out.group(who, permission)?,
                    _ => return Err(unresolvable_email()),
                }
            }
        }
    }
    Ok(out)
}

/// The grants to users in an ACL answer.
fn user_grants(s: &TesseraS3, stored: &[AclGrant]) -> Vec<Grant> {
    stored
        .iter()
        .map(|g| Grant {
            grantee: Some(Grantee {
                display_name: s.authz.users().name_of(&g.user),
                email_address: None,
                id: Some(super::auth::canonical_id(&g.user)),
                type_: Type::from_static(Type::CANONICAL_USER),
                uri: None,
            }),
            permission: Some(Permission::from(g.permission.clone())),
        })
        .collect()
}

pub async fn get_bucket_acl(
    s: &TesseraS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let record = s.service.bucket(&req.input.bucket).await.s3()?;
    let owner = s.authz.owner(record.owner.as_deref());
    let mut all = grants(&owner, record.acl.as_deref());
    all.extend(user_grants(s, &record.grants));
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(all),
        owner: Some(owner),
    }))
}

pub async fn put_bucket_acl(
    s: &TesseraS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let i = &req.input;
    let acl = requested_acl(
        s,
        &i.bucket,
        i.acl.as_ref().map(|a| a.as_str()),
        i.access_control_policy.as_ref(),
        &req.headers,
    )
    .await?;
    let RequestedAcl { canned, grants } = acl;
    s.service
        .meta()
        .update_bucket(&i.bucket, move |r| {
            r.acl = canned.clone();
            r.grants = grants.clone();
        })
        .await
        .s3()?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub async fn get_object_acl(
    s: &TesseraS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let bucket = s.service.bucket(&i.bucket).await.s3()?;
    let object = s
        .service
        .head_object_version(&i.bucket, &i.key, version_param(i.version_id.as_deref())?)
        .await
        .s3()?;
    // Objects belong to their bucket's owner (S3's "bucket owner enforced").
    let owner = s.authz.owner(bucket.owner.as_deref());
    let mut all = grants(&owner, object.acl.as_deref());
    all.extend(user_grants(s, &object.grants));
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(all),
        owner: Some(owner),
        ..Default::default()
    }))
}

pub async fn put_object_acl(
    s: &TesseraS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let i = &req.input;
    check_key(&i.key)?;
    let acl = requested_acl(
        s,
        &i.bucket,
        i.acl.as_ref().map(|a| a.as_str()),
        i.access_control_policy.as_ref(),
        &req.headers,
    )
    .await?;
    let RequestedAcl { canned, grants } = acl;
    s.service
        .meta()
        .update_object(
            &i.bucket,
            &i.key,
            version_param(i.version_id.as_deref())?,
            move |r| {
                r.acl = canned.clone();
                r.grants = grants.clone();
            },
        )
        .await
        .s3()?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
