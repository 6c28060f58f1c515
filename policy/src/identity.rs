//! Tessera's built-in identity policies (`readwrite`, `readonly`, `writeonly`, `owner`) and
//! their scoping to buckets or bucket prefixes.
//!
//! They follow AWS's managed policies rather than MinIO's built-ins, so that each does what
//! its name says: MinIO's `readonly` cannot list a bucket and its `writeonly` cannot abort a
//! failed multipart upload.

use crate::Policy;
use crate::condition::Condition;
use crate::statement::{Effect, Patterns, Statement};

/// A built-in identity policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `s3:*`, as AWS's AmazonS3FullAccess.
    ReadWrite,
    /// `s3:Get*` and `s3:List*`, as AWS's AmazonS3ReadOnlyAccess.
    ReadOnly,
    /// Uploads only: `s3:PutObject` plus what a client needs to manage a multipart upload.
    WriteOnly,
    /// A tenant: may create buckets, and does anything to the buckets it owns (granted by the
    /// access check from the bucket's owner, not by this policy); reaches other buckets only
    /// through their bucket policies and ACLs.
    Owner,
}

impl Builtin {
    /// `"readwrite"`, `"readonly"` or `"writeonly"`.
    pub fn parse(s: &str) -> Option<Builtin> {
        match s {
            "readwrite" => Some(Builtin::ReadWrite),
            "readonly" => Some(Builtin::ReadOnly),
            "writeonly" => Some(Builtin::WriteOnly),
            "owner" => Some(Builtin::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::ReadWrite => "readwrite",
            Builtin::ReadOnly => "readonly",
            Builtin::WriteOnly => "writeonly",
            Builtin::Owner => "owner",
        }
    }

    fn actions(self) -> &'static [&'static str] {
        match self {
            Builtin::ReadWrite => &["s3:*"],
            Builtin::ReadOnly => &["s3:Get*", "s3:List*"],
            Builtin::WriteOnly => &[
                "s3:PutObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            Builtin::Owner => &["s3:CreateBucket"],
        }
    }
}

/// A user's identity policy: the builtin's actions, scoped to `scopes` (each "BUCKET" or
/// "BUCKET/prefix"; empty = all buckets).
///
/// A prefix scope grants the actions on objects whose key starts with the prefix, and on the
/// bucket itself only when the request carries an `s3:prefix` starting with it. Only listings
/// carry that key, so bucket-level actions other than listing within the prefix stay denied
/// (HeadBucket included), and no scoped user gets ListAllMyBuckets (resource `*`).
pub fn identity_policy(kind: Builtin, scopes: &[String]) -> Policy {
    let statements = if scopes.is_empty() {
        vec![allow(kind, &["*"], Vec::new())]
    } else {
        let mut statements = Vec::new();
        for scope in scopes {
            match scope.split_once('/') {
                None => {
                    let bucket_arn = format!("arn:aws:s3:::{scope}");
                    let objects = format!("{bucket_arn}/*");
                    statements.push(allow(
                        kind,
                        &[bucket_arn.as_str(), objects.as_str()],
                        Vec::new(),
                    ));
                }
                Some((bucket, prefix)) => {
                    // The prefix is used as given: "logs" also covers "logs-old/…", as it would
                    // for an S3 listing with that prefix.
                    let objects = format!("arn:aws:s3:::{bucket}/{prefix}*");
                    statements.push(allow(kind, &[objects.as_str()], Vec::new()));
                    let bucket_arn = format!("arn:aws:s3:::{bucket}");
                    let listing = Condition::prefix_like(format!("{prefix}*"));
                    statements.push(allow(kind, &[bucket_arn.as_str()], vec![listing]));
                }
            }
        }
        statements
    };
    Policy { statements }
}

fn allow(kind: Builtin, resources: &[&str], conditions: Vec<Condition>) -> Statement {
    Statement {
        effect: Effect::Allow,
        principals: None,
        actions: Patterns::new(false, kind.actions()),
        resources: Patterns::new(false, resources),
        conditions,
    }
}
