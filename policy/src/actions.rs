//! The S3 IAM action names a policy may mention, and which kind of resource each acts on.
//!
//! AWS refuses policies naming actions that don't exist, and statements whose actions cannot
//! apply to any of their resources (say `s3:GetObject` on a bucket ARN); this table lets us
//! give the same answers. It lists AWS's S3 actions, not only those tessera implements, so
//! that policies written for AWS are accepted.

use crate::glob;

/// The resource an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `arn:aws:s3:::bucket`
    Bucket,
    /// `arn:aws:s3:::bucket/key`
    Object,
    /// Account-level resources (`*`, access points, jobs): never a bucket-policy resource.
    Account,
}

const B: Target = Target::Bucket;
const O: Target = Target::Object;
const A: Target = Target::Account;

/// Action names without the `s3:` prefix, in AWS's spelling.
const S3_ACTIONS: &[(&str, Target)] = &[
    // Objects.
    ("GetObject", O),
    ("GetObjectVersion", O),
    ("PutObject", O),
    ("DeleteObject", O),
    ("DeleteObjectVersion", O),
    ("ListMultipartUploadParts", O),
    ("AbortMultipartUpload", O),
    ("GetObjectAcl", O),
    ("PutObjectAcl", O),
    ("GetObjectVersionAcl", O),
    ("PutObjectVersionAcl", O),
    ("GetObjectTagging", O),
    ("PutObjectTagging", O),
    ("DeleteObjectTagging", O),
    ("GetObjectVersionTagging", O),
    ("PutObjectVersionTagging", O),
    ("DeleteObjectVersionTagging", O),
    ("GetObjectAttributes", O),
    ("GetObjectVersionAttributes", O),
    ("GetObjectRetention", O),
    ("PutObjectRetention", O),
    ("GetObjectLegalHold", O),
    ("PutObjectLegalHold", O),
    ("BypassGovernanceRetention", O),
    ("ReplicateObject", O),
    ("ReplicateDelete", O),
    ("ReplicateTags", O),
    ("RestoreObject", O),
    ("GetObjectTorrent", O),
    ("GetObjectVersionTorrent", O),
    ("GetObjectVersionForReplication", O),
    ("InitiateReplication", O),
    ("ObjectOwnerOverrideToBucketOwner", O),
    // Buckets.
    ("ListBucket", B),
    ("ListBucketVersions", B),
    ("ListBucketMultipartUploads", B),
    ("GetBucketLocation", B),
    ("CreateBucket", B),
    ("DeleteBucket", B),
    ("GetBucketPolicy", B),
    ("PutBucketPolicy", B),
    ("DeleteBucketPolicy", B),
    ("GetBucketPolicyStatus", B),
    ("GetBucketAcl", B),
    ("PutBucketAcl", B),
    ("GetBucketVersioning", B),
    ("PutBucketVersioning", B),
    ("GetBucketCORS", B),
    ("PutBucketCORS", B),
    ("GetLifecycleConfiguration", B),
    ("PutLifecycleConfiguration", B),
    ("GetBucketTagging", B),
    ("PutBucketTagging", B),
    ("GetEncryptionConfiguration", B),
    ("PutEncryptionConfiguration", B),
    ("GetBucketObjectLockConfiguration", B),
    ("PutBucketObjectLockConfiguration", B),
    ("GetBucketNotification", B),
    ("PutBucketNotification", B),
    ("GetReplicationConfiguration", B),
    ("PutReplicationConfiguration", B),
    ("GetBucketWebsite", B),
    ("PutBucketWebsite", B),
    ("DeleteBucketWebsite", B),
    ("GetBucketLogging", B),
    ("PutBucketLogging", B),
    ("GetAccelerateConfiguration", B),
    ("PutAccelerateConfiguration", B),
    ("GetBucketRequestPayment", B),
    ("PutBucketRequestPayment", B),
    ("GetBucketOwnershipControls", B),
    ("PutBucketOwnershipControls", B),
    ("GetBucketPublicAccessBlock", B),
    ("PutBucketPublicAccessBlock", B),
    ("GetInventoryConfiguration", B),
    ("PutInventoryConfiguration", B),
    ("GetAnalyticsConfiguration", B),
    ("PutAnalyticsConfiguration", B),
    ("GetMetricsConfiguration", B),
    ("PutMetricsConfiguration", B),
    ("GetIntelligentTieringConfiguration", B),
    ("PutIntelligentTieringConfiguration", B),
    // Account level.
    ("ListAllMyBuckets", A),
    ("ListAccessPoints", A),
    ("GetAccessPoint", A),
    ("CreateAccessPoint", A),
    ("DeleteAccessPoint", A),
    ("GetAccessPointPolicy", A),
    ("PutAccessPointPolicy", A),
    ("DeleteAccessPointPolicy", A),
    ("GetAccountPublicAccessBlock", A),
    ("PutAccountPublicAccessBlock", A),
    ("CreateJob", A),
    ("DescribeJob", A),
    ("ListJobs", A),
    ("UpdateJobPriority", A),
    ("UpdateJobStatus", A),
    ("ListStorageLensConfigurations", A),
    ("GetStorageLensConfiguration", A),
    ("PutStorageLensConfiguration", A),
    ("DeleteStorageLensConfiguration", A),
];

/// The part after a case-insensitive `s3:`, if `pattern` has that service prefix.
fn s3_name(pattern: &str) -> Option<&str> {
    let (service, name) = pattern.split_at_checked(3)?;
    service.eq_ignore_ascii_case("s3:").then_some(name)
}

/// Whether a policy may name `pattern` in Action/NotAction: `*`, or `s3:` followed by either
/// a wildcard pattern or a known action name.
pub(crate) fn is_valid(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    s3_name(pattern).is_some_and(|name| {
        name.contains(['*', '?'])
            || S3_ACTIONS
                .iter()
                .any(|(known, _)| known.eq_ignore_ascii_case(name))
    })
}

/// Which resources the actions `pattern` matches apply to: `(bucket, object)`. `None` when
/// the pattern matches no known action, so nothing can be said against it.
pub(crate) fn targets(pattern: &str) -> Option<(bool, bool)> {
    let name = if pattern == "*" {
        "*"
    } else {
        s3_name(pattern)?
    };
    let (mut any, mut bucket, mut object) = (false, false, false);
    for (_, target) in S3_ACTIONS
        .iter()
        .filter(|(known, _)| glob::matches(name, known, true))
    {
        any = true;
        match target {
            Target::Bucket => bucket = true,
            Target::Object => object = true,
            Target::Account => {}
        }
    }
    any.then_some((bucket, object))
}
