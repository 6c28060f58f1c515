//! Who is asking, and may they: the secret lookup s3s verifies signatures with, and the access
//! check it runs after. Root may do everything; a user what its identity policy or the
//! bucket's policy allows (an explicit Deny in either wins); anonymous callers what a bucket
//! policy or a public ACL grants. Everything else is AccessDenied before any data is touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use iam::{KeyRefusal, UserEntry, Users};
use metastore::{BucketRecord, MetaStore};
use policy::{Decision, Policy, Principal};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::Owner;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use sha2::Digest;

use super::acl::Readers;
use super::actions::{Need, Needs, RequestShape, needs, prefix_condition};
use crate::client::ClientAddr;
use crate::s3::IntoS3;

/// Which keys of a DeleteObjects request (by position) the caller may not delete, put into
/// its extensions by the access check.
#[derive(Debug, Clone)]
pub struct DeniedKeys(pub Vec<bool>);

/// The authenticated caller, put into the request's extensions by the access check.
#[derive(Debug, Clone)]
pub enum Caller {
    Root,
    User(Arc<UserEntry>),
    Anonymous,
}

pub struct Authz {
    users: Arc<Users>,
    root_access_key: String,
    root_secret: SecretKey,
    meta: MetaStore,
    /// Parsed bucket policies, by bucket, with the text they were parsed from.
    policies: Mutex<HashMap<String, (String, Arc<Policy>)>>,
    /// Take SSE-C headers over plain HTTP (`--allow-insecure-sse-c`).
    allow_insecure_sse_c: bool,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz").finish_non_exhaustive()
    }
}

fn denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

/// Whether a stored canned ACL lets `caller` read.
fn acl_grants_read(acl: Option<&str>, caller: &Caller) -> bool {
    match super::acl::readers(acl) {
        Some(Readers::Everyone) => true,
        Some(Readers::SignedUsers) => matches!(caller, Caller::User(_)),
        None => false,
    }
}

impl Authz {
    pub fn new(
        users: Arc<Users>,
        root_access_key: String,
        root_secret: &str,
        meta: MetaStore,
    ) -> Self {
        Authz {
            users,
            root_access_key,
            root_secret: SecretKey::from(root_secret),
            meta,
            policies: Mutex::default(),
            allow_insecure_sse_c: false,
        }
    }

    /// Takes SSE-C keys over plain HTTP too (loopback tests; never across a network).
    pub fn allow_insecure_sse_c(mut self, allow: bool) -> Self {
        self.allow_insecure_sse_c = allow;
        self
    }

    pub fn users(&self) -> &Arc<Users> {
        &self.users
    }

    pub fn root_owner() -> Owner {
        Owner {
            display_name: Some("tessera".into()),
            id: Some("tessera".into()),
        }
    }

    /// The owner of a bucket (stored by user id): a canonical id that no later user of the
    /// same name shares, and the user's name.
    pub fn owner(&self, owner_id: Option<&str>) -> Owner {
        match owner_id.and_then(|id| Some((id, self.users.name_of(id)?))) {
            Some((id, name)) => Owner {
                display_name: Some(name),
                id: Some(canonical_id(id)),
            },
            None => Self::root_owner(),
        }
    }

    /// The user (id) a canonical id names, if any.
    pub fn user_of_canonical(&self, canonical: &str) -> Option<String> {
        self.users
            .ids()
            .into_iter()
            .find(|id| canonical_id(id) == canonical)
    }

    pub fn caller_owner(&self, caller: &Caller) -> Owner {
        match caller {
            Caller::User(u) => self.owner(Some(&u.id)),
            _ => Self::root_owner(),
        }
    }

    /// A stored bucket policy, parsed (once per text).
    pub fn bucket_policy(&self, bucket: &str, text: &str) -> Option<Arc<Policy>> {
        let mut cache = self.policies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, policy)) = cache.get(bucket)
            && cached == text
        {
            return Some(policy.clone());
        }
        // Validated when it was stored; users it names may have gone since, which only
        // means those statements match nobody.
        match Policy::parse_bucket_policy(text, bucket, &|_| true) {
            Ok(p) => {
                let p = Arc::new(p);
                cache.insert(bucket.to_owned(), (text.to_owned(), p.clone()));
                Some(p)
            }
            Err(e) => {
                tracing::error!(bucket, error = %e, "stored bucket policy no longer parses; ignoring it");
                None
            }
        }
    }

    /// Whether `caller` has `need`. `prefix` is the `s3:prefix` condition key's value.
    pub async fn allows(
        &self,
        caller: &Caller,
        need: &Need,
        client: Option<ClientAddr>,
        prefix: Option<&str>,
    ) -> S3Result<bool> {
        let who = match caller {
            Caller::Root => return Ok(true),
            Caller::User(u) => Principal::User(&u.name),
            Caller::Anonymous => Principal::Anonymous,
        };
        let resource = need.resource();
        let request = policy::Request {
            action: &need.action,
            resource: &resource,
            source_ip: client.map(|c| c.ip),
            secure_transport: client.is_some_and(|c| c.secure),
            prefix,
        };
        let mut allowed = false;
        if let Caller::User(u) = caller {
            match u.policy.evaluate(who, &request) {
                Decision::Deny => return Ok(false),
                Decision::Allow => allowed = true,
                Decision::NotApplicable => {}
            }
        }
        let Some(bucket) = need.bucket.as_deref() else {
            return Ok(allowed);
        };
        let record = self.meta.get_bucket(bucket).await.s3()?;
        let Some(record) = record else {
            return Ok(allowed);
        };
        // A tenant (`owner` policy) does anything to its own buckets; a bucket policy's
        // explicit denial below still wins.
        if let Caller::User(u) = caller
            && u.owns_buckets
            && record.owner.as_deref() == Some(u.id.as_str())
        {
            allowed = true;
        }
        let block = record.public_access_block.unwrap_or_default();
        if let Some(text) = &record.policy
            && let Some(p) = self.bucket_policy(bucket, text)
        {
            // RestrictPublicBuckets: a public policy grants nothing to callers outside the
            // bucket owner's account: anonymous ones and other tenants (denials still count).
            let restricted = block.restrict_public_buckets
                && p.is_public()
                && match caller {
                    Caller::Anonymous => true,
                    // Another tenant is another account.
                    Caller::User(u) => {
                        u.owns_buckets && record.owner.as_deref() != Some(u.id.as_str())
                    }
                    Caller::Root => false,
                };
            match p.evaluate(who, &request) {
                Decision::Allow if restricted => {}
                Decision::Deny => return Ok(false),
                Decision::Allow => allowed = true,
                Decision::NotApplicable => {}
            }
        }
        if allowed {
            return Ok(true);
        }
        // IgnorePublicAcls: canned ACLs (public-read and the like) grant nothing; grants to
        // named users still count.
        self.acl_allows(caller, need, &record, block.ignore_public_acls)
            .await
    }

    /// What ACLs grant: canned ones reading (a bucket's lets callers list it, an object's lets
    /// them read that object), unless `ignore_public` (IgnorePublicAcls); grants to users what
    /// their permission covers. Nothing when the bucket's ownership controls disable ACLs.
    async fn acl_allows(
        &self,
        caller: &Caller,
        need: &Need,
        bucket: &BucketRecord,
        ignore_public: bool,
    ) -> S3Result<bool> {
        if bucket.ownership.as_deref() == Some("BucketOwnerEnforced") {
            return Ok(false);
        }
        let granted = |grants: &[metastore::AclGrant], permission: &str| match caller {
            Caller::User(u) => grants.iter().any(|g| {
                g.user == u.id && (g.permission == permission || g.permission == "FULL_CONTROL")
            }),
            _ => false,
        };
        let action = need.action.as_str();
        match (&need.bucket, &need.key) {
            (_, None) => Ok(match action {
                "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => {
                    (!ignore_public && acl_grants_read(bucket.acl.as_deref(), caller))
                        || granted(&bucket.grants, "READ")
                }
                "s3:GetBucketAcl" => granted(&bucket.grants, "READ_ACP"),
                "s3:PutBucketAcl" => granted(&bucket.grants, "WRITE_ACP"),
                _ => false,
            }),
            (Some(b), Some(k)) => {
                if matches!(
                    action,
                    "s3:PutObject"
                        | "s3:DeleteObject"
                        | "s3:DeleteObjectVersion"
                        | "s3:AbortMultipartUpload"
                ) {
                    return Ok(granted(&bucket.grants, "WRITE"));
                }
                // The latest version's ACL: requests naming a version (…Version actions)
                // get nothing from ACLs, since that version's ACL is not the one read here.
                let permission = match action {
                    "s3:GetObject" => "READ",
                    "s3:GetObjectAcl" => "READ_ACP",
                    "s3:PutObjectAcl" => "WRITE_ACP",
                    _ => return Ok(false),
                };
                let Some(object) = self.meta.get_object(b, k).await.s3()? else {
                    return Ok(false);
                };
                Ok((permission == "READ"
                    && !ignore_public
                    && acl_grants_read(object.acl.as_deref(), caller))
                    || granted(&object.grants, permission))
            }
            (None, Some(_)) => Ok(false),
        }
    }

    /// All of `needs`, or AccessDenied.
    pub async fn require(
        &self,
        caller: &Caller,
        needs: &[Need],
        client: Option<ClientAddr>,
        prefix: Option<&str>,
    ) -> S3Result<()> {
        for need in needs {
            if !self.allows(caller, need, client, prefix).await? {
                tracing::debug!(action = %need.action, resource = %need.resource(), "access denied");
                return Err(denied());
            }
        }
        Ok(())
    }

    /// Whether ListBuckets shows `bucket` to `caller`: everything to root and to users allowed
    /// ListAllMyBuckets; otherwise buckets the user owns or is granted something on.
    pub fn lists_bucket(
        &self,
        caller: &Caller,
        all: bool,
        name: &str,
        record: &BucketRecord,
    ) -> bool {
        let u = match caller {
            Caller::Root => return true,
            Caller::User(u) => u,
            Caller::Anonymous => return false,
        };
        if all || record.owner.as_deref() == Some(u.id.as_str()) {
            return true;
        }
        let who = Principal::User(&u.name);
        // A tenant's own policy only lets it create buckets: that shows it no one else's.
        (!u.owns_buckets && u.policy.grants_something_on_bucket(who, name))
            || record
                .policy
                .as_deref()
                .and_then(|text| self.bucket_policy(name, text))
                .is_some_and(|p| p.grants_something_on_bucket(who, name))
    }

    /// Whether `caller` may list every bucket.
    pub fn lists_all_buckets(&self, caller: &Caller, client: Option<ClientAddr>) -> bool {
        match caller {
            Caller::Root => true,
            Caller::Anonymous => false,
            Caller::User(u) => {
                let request = policy::Request {
                    action: "s3:ListAllMyBuckets",
                    resource: "*",
                    source_ip: client.map(|c| c.ip),
                    secure_transport: client.is_some_and(|c| c.secure),
                    prefix: None,
                };
                u.policy.evaluate(Principal::User(&u.name), &request) == Decision::Allow
            }
        }
    }
}

/// A user's canonical id, as ACLs and owners show it: derived from its id, so it names no
/// other user after the name is reused.
pub fn canonical_id(user_id: &str) -> String {
    hex::encode(sha2::Sha256::digest(
        format!("tessera-user:{user_id}").as_bytes(),
    ))
}

/// The caller and address a request's extensions carry (set by the access check).
pub fn caller_of<T>(req: &S3Request<T>) -> (Caller, Option<ClientAddr>) {
    (
        req.extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Anonymous),
        req.extensions.get::<ClientAddr>().copied(),
    )
}

/// s3s' secret lookup: root's key, or an enabled user's.
pub struct SecretLookup(pub Arc<Authz>);

#[async_trait::async_trait]
impl S3Auth for SecretLookup {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let a = &self.0;
        if access_key == a.root_access_key {
            return Ok(a.root_secret.clone());
        }
        match a.users.secret(access_key) {
            Ok((_, secret)) => Ok(SecretKey::from(secret.expose().to_owned())),
            // What AWS answers for an unknown key (s3s' SimpleAuth says NotSignedUp).
            Err(KeyRefusal::Unknown) => Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            )),
            // MinIO's answer for a disabled account.
            Err(KeyRefusal::Disabled) => Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "Your account is disabled; please contact your administrator.",
            )),
        }
    }
}

/// The access check s3s runs after a request's signature is verified and its operation
/// resolved, before its body is read. It also names the operation for the metrics.
pub struct AccessCheck(pub Arc<Authz>);

impl AccessCheck {
    fn caller(&self, credentials: Option<&s3s::auth::Credentials>) -> S3Result<Caller> {
        let a = &self.0;
        Ok(match credentials {
            None => Caller::Anonymous,
            Some(c) if c.access_key == a.root_access_key => Caller::Root,
            // The signature was checked moments ago; the key may have gone since.
            Some(c) => Caller::User(a.users.secret(&c.access_key).map_err(|_| denied())?.0),
        })
    }
}

#[async_trait::async_trait]
impl s3s::access::S3Access for AccessCheck {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        let op = op.as_str();
        if let Some(slot) = cx.extensions_mut().get::<crate::access::OperationSlot>() {
            slot.set(op);
        }
        let caller = self.caller(cx.credentials())?;
        super::acl::refuse_email_grants(cx.headers())?;
        let client = cx.extensions_mut().get::<ClientAddr>().copied();
        super::sse::refuse_unsupported(
            cx.headers(),
            client.is_some_and(|c| c.secure),
            self.0.allow_insecure_sse_c,
        )?;
        cx.extensions_mut().insert(caller.clone());
        if matches!(caller, Caller::Root) {
            return Ok(());
        }
        let needs = needs(&RequestShape {
            op,
            path: cx.s3_path(),
            query: cx.uri().query(),
            headers: cx.headers(),
        });
        match needs {
            Needs::All(all) => {
                let prefix = prefix_condition(op, cx.uri().query());
                self.0
                    .require(&caller, &all, client, prefix.as_deref())
                    .await
            }
            Needs::Deferred => Ok(()),
            Needs::Filtered if matches!(caller, Caller::Anonymous) => Err(denied()),
            Needs::Filtered => Ok(()),
        }
    }

    async fn delete_objects(
        &self,
        req: &mut S3Request<s3s::dto::DeleteObjectsInput>,
    ) -> S3Result<()> {
        let (caller, client) = caller_of(req);
        let bucket = req.input.bucket.as_str();
        // As on AWS, a denied key is reported in the answer's <Error> list and the others are
        // deleted: the request as a whole is not refused.
        let mut denied = Vec::with_capacity(req.input.delete.objects.len());
        for o in &req.input.delete.objects {
            let action = if o.version_id.is_some() {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            };
            let need = Need::new(action, Some(bucket), Some(&o.key));
            let mut allowed = self.0.allows(&caller, &need, client, None).await?;
            if req.input.bypass_governance_retention == Some(true) {
                let bypass = Need::new("s3:BypassGovernanceRetention", Some(bucket), Some(&o.key));
                allowed = allowed && self.0.allows(&caller, &bypass, client, None).await?;
            }
            if !allowed {
                tracing::debug!(action, resource = %need.resource(), "access denied");
            }
            denied.push(!allowed);
        }
        req.extensions.insert(DeniedKeys(denied));
        Ok(())
    }

    async fn post_object(&self, req: &mut S3Request<s3s::dto::PostObjectInput>) -> S3Result<()> {
        let (caller, client) = caller_of(req);
        let i = &req.input;
        // The form's fields are not headers: the access check above did not see them.
        super::sse::refuse_insecure_customer_key(
            i.sse_customer_algorithm.is_some()
                || i.sse_customer_key.is_some()
                || i.sse_customer_key_md5.is_some(),
            client.is_some_and(|c| c.secure),
            self.0.allow_insecure_sse_c,
        )?;
        let mut all = vec![Need::new("s3:PutObject", Some(&i.bucket), Some(&i.key))];
        if i.acl.as_ref().is_some_and(|a| a.as_str() != "private") {
            all.push(Need::new("s3:PutObjectAcl", Some(&i.bucket), Some(&i.key)));
        }
        self.0.require(&caller, &all, client, None).await
    }
}
