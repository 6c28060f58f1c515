//! What an S3 request asks to do, in the policy language's terms: the IAM action(s) of each
//! operation and the resource each applies to (see docs/notes/users-and-policies.md §3).

use s3s::dto::CopySource;
use s3s::path::S3Path;

use crate::http::query_param;

/// One permission a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

impl Need {
    pub fn new(action: &str, bucket: Option<&str>, key: Option<&str>) -> Need {
        Need {
            action: action.to_owned(),
            bucket: bucket.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    /// The resource ARN policies match against.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (None, _) => "*".to_owned(),
            (Some(b), None) => format!("arn:aws:s3:::{b}"),
            (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
        }
    }
}

/// The part of a request its needs depend on.
pub struct RequestShape<'a> {
    pub op: &'a str,
    pub path: &'a S3Path,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
}

/// How the operation is authorized.
#[derive(Debug, PartialEq, Eq)]
pub enum Needs {
    /// All of these, checked before the request body is read.
    All(Vec<Need>),
    /// Checked by the per-operation hook once the input is parsed (DeleteObjects' keys,
    /// PostObject's form key).
    Deferred,
    /// ListBuckets: any signed caller, the answer is filtered to what it may see.
    Filtered,
}

/// Operations whose action name is not `s3:` + the operation's name.
fn action_of(op: &str, versioned: bool) -> String {
    let plain = match op {
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        "ListParts" => "ListMultipartUploadParts",
        "HeadObject" | "GetObject" => "GetObject",
        "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "CopyObject"
        | "UploadPartCopy" => "PutObject",
        "GetBucketCors" => "GetBucketCORS",
        "PutBucketCors" | "DeleteBucketCors" => "PutBucketCORS",
        "GetBucketLifecycleConfiguration" | "GetBucketLifecycle" => "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => "PutLifecycleConfiguration",
        "DeleteBucketTagging" => "PutBucketTagging",
        "DeleteBucketOwnershipControls" => "PutBucketOwnershipControls",
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "PutBucketPublicAccessBlock",
        "GetPublicAccessBlock" => "GetBucketPublicAccessBlock",
        "GetBucketEncryption" => "GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "PutEncryptionConfiguration",
        "PutObjectLockConfiguration" => "PutBucketObjectLockConfiguration",
        "GetObjectLockConfiguration" => "GetBucketObjectLockConfiguration",
        other => other,
    };
    // Operations on a specific version need the ...Version action.
    let versioned_form = match plain {
        "GetObject" => Some("GetObjectVersion"),
        "DeleteObject" => Some("DeleteObjectVersion"),
        "GetObjectAcl" => Some("GetObjectVersionAcl"),
        "PutObjectAcl" => Some("PutObjectVersionAcl"),
        "GetObjectTagging" => Some("GetObjectVersionTagging"),
        "PutObjectTagging" => Some("PutObjectVersionTagging"),
        "DeleteObjectTagging" => Some("DeleteObjectVersionTagging"),
        "GetObjectAttributes" => Some("GetObjectVersionAttributes"),
        _ => None,
    };
    match versioned_form {
        Some(v) if versioned => format!("s3:{v}"),
        _ => format!("s3:{plain}"),
    }
}

/// A canned ACL other than `private` or explicit grants ask for the ACL permission as well,
/// as on AWS.
fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn sets_acl(headers: &http::HeaderMap) -> bool {
    let canned = header(headers, "x-amz-acl").is_some_and(|a| a != "private");
    canned || super::acl::grant_headers_present(headers)
}

pub fn needs(r: &RequestShape<'_>) -> Needs {
    let (bucket, key) = match r.path {
        S3Path::Root => (None, None),
        S3Path::Bucket { bucket } => (Some(&**bucket), None),
        S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
    };
    match r.op {
        "ListBuckets" => return Needs::Filtered,
        "DeleteObjects" | "PostObject" => return Needs::Deferred,
        _ => {}
    }
    let versioned = query_param(r.query, "versionId").is_some();
    let mut all = vec![Need::new(&action_of(r.op, versioned), bucket, key)];
    match r.op {
        "CreateBucket" if sets_acl(r.headers) => {
            all.push(Need::new("s3:PutBucketAcl", bucket, None))
        }
        "PutObject" | "CopyObject" | "CreateMultipartUpload" if sets_acl(r.headers) => {
            all.push(Need::new("s3:PutObjectAcl", bucket, key))
        }
        _ => {}
    }
    // Object lock: setting a retention or hold on a write needs those permissions, and
    // bypassing a GOVERNANCE retention its own.
    if matches!(r.op, "PutObject" | "CopyObject" | "CreateMultipartUpload") {
        if header(r.headers, "x-amz-object-lock-mode").is_some() {
            all.push(Need::new("s3:PutObjectRetention", bucket, key));
        }
        if header(r.headers, "x-amz-object-lock-legal-hold").is_some() {
            all.push(Need::new("s3:PutObjectLegalHold", bucket, key));
        }
    }
    if matches!(r.op, "DeleteObject" | "PutObjectRetention")
        && header(r.headers, "x-amz-bypass-governance-retention")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        all.push(Need::new("s3:BypassGovernanceRetention", bucket, key));
    }
    if matches!(r.op, "CopyObject" | "UploadPartCopy")
        && let Some(source) = header(r.headers, "x-amz-copy-source")
        && let Ok(CopySource::Bucket {
            bucket,
            key,
            version_id,
        }) = CopySource::parse(source)
    {
        let action = if version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        all.push(Need::new(action, Some(&bucket), Some(&key)));
    }
    Needs::All(all)
}

/// The `s3:prefix` condition key: listings carry it ("" without a prefix, as MinIO does);
/// other operations do not.
pub fn prefix_condition(op: &str, query: Option<&str>) -> Option<String> {
    matches!(op, "ListObjects" | "ListObjectsV2" | "ListObjectVersions")
        .then(|| query_param(query, "prefix").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs_of(op: &str, path: S3Path, query: Option<&str>, headers: &[(&str, &str)]) -> Needs {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        needs(&RequestShape {
            op,
            path: &path,
            query,
            headers: &map,
        })
    }

    fn object(b: &str, k: &str) -> S3Path {
        S3Path::Object {
            bucket: b.into(),
            key: k.into(),
        }
    }

    fn bucket(b: &str) -> S3Path {
        S3Path::Bucket { bucket: b.into() }
    }

    #[test]
    fn operations_map_to_actions_and_resources() {
        let one = |op, path, query| match needs_of(op, path, query, &[]) {
            Needs::All(v) if v.len() == 1 => (v[0].action.clone(), v[0].resource()),
            other => panic!("{op}: {other:?}"),
        };
        assert_eq!(
            one("GetObject", object("b", "k/x"), None),
            ("s3:GetObject".into(), "arn:aws:s3:::b/k/x".into())
        );
        assert_eq!(
            one("HeadObject", object("b", "k"), Some("versionId=v1")).0,
            "s3:GetObjectVersion"
        );
        assert_eq!(
            one("DeleteObject", object("b", "k"), Some("versionId=v1")).0,
            "s3:DeleteObjectVersion"
        );
        assert_eq!(
            one("HeadBucket", bucket("b"), None),
            ("s3:ListBucket".into(), "arn:aws:s3:::b".into())
        );
        assert_eq!(one("ListObjectsV2", bucket("b"), None).0, "s3:ListBucket");
        assert_eq!(one("UploadPart", object("b", "k"), None).0, "s3:PutObject");
        assert_eq!(
            one("ListParts", object("b", "k"), None).0,
            "s3:ListMultipartUploadParts"
        );
        assert_eq!(
            one("PutBucketPolicy", bucket("b"), None).0,
            "s3:PutBucketPolicy"
        );
        assert_eq!(
            needs_of("ListBuckets", S3Path::Root, None, &[]),
            Needs::Filtered
        );
        assert_eq!(
            needs_of("DeleteObjects", bucket("b"), None, &[]),
            Needs::Deferred
        );
    }

    #[test]
    fn copies_need_the_source_and_acls_need_their_permission() {
        let Needs::All(v) = needs_of(
            "CopyObject",
            object("dst", "k"),
            None,
            &[
                ("x-amz-copy-source", "/src/a%20b?versionId=v9"),
                ("x-amz-acl", "public-read"),
            ],
        ) else {
            panic!("not All")
        };
        let got: Vec<_> = v
            .iter()
            .map(|n| (n.action.as_str(), n.resource()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("s3:PutObject", "arn:aws:s3:::dst/k".to_owned()),
                ("s3:PutObjectAcl", "arn:aws:s3:::dst/k".to_owned()),
                ("s3:GetObjectVersion", "arn:aws:s3:::src/a b".to_owned()),
            ]
        );
        let Needs::All(v) = needs_of(
            "PutObject",
            object("b", "k"),
            None,
            &[("x-amz-acl", "private")],
        ) else {
            panic!("not All")
        };
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn listings_carry_the_prefix_condition() {
        assert_eq!(
            prefix_condition("ListObjectsV2", Some("list-type=2&prefix=a%2Fb")),
            Some("a/b".into())
        );
        assert_eq!(prefix_condition("ListObjects", None), Some(String::new()));
        assert_eq!(prefix_condition("GetObject", Some("prefix=a")), None);
    }
}
