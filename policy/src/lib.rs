//! AWS-style access policies for tessera, independent of any S3 protocol types.
//!
//! The gateway turns each S3 request into a [`Request`] (IAM action, resource ARN and the
//! condition keys we support) and asks the applicable [`Policy`]s for a [`Decision`]:
//! - bucket policies come from PutBucketPolicy JSON via [`Policy::parse_bucket_policy`], which
//!   validates them and reports problems with AWS's `MalformedPolicy` wording;
//! - identity policies are tessera's built-ins ([`Builtin`]), optionally scoped to buckets or
//!   prefixes, built by [`identity_policy`].
//!
//! Combining the two (root bypass, identity ∪ bucket policy, ACL fallback) is the caller's job;
//! this crate only answers per policy. See `docs/notes/users-and-policies.md` §3-5.

mod actions;
mod condition;
mod glob;
mod identity;
mod parse;
mod statement;
#[cfg(test)]
mod tests;

pub use identity::{Builtin, identity_policy};
pub use std::net::IpAddr;

use condition::Condition;
use statement::{Effect, Principals, Statement};

/// A policy document was refused; the message is what AWS would say (`MalformedPolicy`, 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(pub String);

/// Who is asking. Root never gets here: it bypasses policies entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    /// An unsigned request.
    Anonymous,
    /// A tessera user, by name.
    User(&'a str),
}

/// What one request asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// IAM action, e.g. `s3:GetObject` (canonical case).
    pub action: &'a str,
    /// `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`, or `*` for ListAllMyBuckets.
    pub resource: &'a str,
    /// `aws:SourceIp`; `None` leaves the key absent.
    pub source_ip: Option<IpAddr>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
    /// `s3:prefix` condition key value; `None` = key absent.
    pub prefix: Option<&'a str>,
}

/// The outcome of evaluating one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Some applicable Allow statement matched and no Deny did.
    Allow,
    /// An explicit Deny statement matched.
    Deny,
    /// No statement matched; the caller falls back to other policies or implicit deny.
    NotApplicable,
}

/// A parsed, validated policy: a list of statements.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates a bucket policy for `bucket`. `user_exists(name)` says whether a
    /// principal `arn:aws:iam::<account>:user/NAME` names a real user.
    pub fn parse_bucket_policy(
        json: &str,
        bucket: &str,
        user_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Policy, MalformedPolicy> {
        let statements = parse::parse_bucket_policy(json, bucket, user_exists)?;
        Ok(Policy { statements })
    }

    /// Parses and validates an identity policy (one stored with `tessera admin policy add` and
    /// attached to users or groups): as a bucket policy, but without `Principal` and with any
    /// S3 resource (`*`, `arn:aws:s3:::BUCKET`, `arn:aws:s3:::BUCKET/KEY`, wildcards allowed).
    pub fn parse_identity_policy(json: &str) -> Result<Policy, MalformedPolicy> {
        let statements = parse::parse_identity_policy(json)?;
        Ok(Policy { statements })
    }

    /// One policy holding the statements of all of `policies`: an explicit Deny in any of
    /// them wins, else an Allow in any of them allows, as AWS combines a user's policies.
    pub fn union<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Policy {
        Policy {
            statements: policies
                .into_iter()
                .flat_map(|p| p.statements.iter().cloned())
                .collect(),
        }
    }

    /// Whether a statement names the user `name` as a principal (a user re-created under
    /// that name would be granted what the statement grants).
    pub fn names_user(&self, name: &str) -> bool {
        self.statements.iter().any(|s| {
            matches!(&s.principals, Some(Principals::Users(names)) if names.iter().any(|n| n == name))
        })
    }

    /// Combined decision of the statements that apply to `who` (bucket policies: statements
    /// whose Principal matches; identity policies: every statement).
    pub fn evaluate(&self, who: Principal<'_>, req: &Request<'_>) -> Decision {
        let mut allowed = false;
        for statement in self
            .statements
            .iter()
            .filter(|s| s.applies_to(who) && s.matches(req))
        {
            match statement.effect {
                // An explicit deny wins whatever else matched, so there is no need to look further.
                Effect::Deny => return Decision::Deny,
                Effect::Allow => allowed = true,
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }

    /// GetBucketPolicyStatus' IsPublic: some Allow statement names everyone as principal and
    /// has no condition that narrows it to specific source addresses.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && matches!(s.principals, Some(Principals::Everyone))
                && !s.conditions.iter().any(Condition::restricts_public)
        })
    }

    /// Whether some Allow statement that applies to `who` could grant any action on
    /// `arn:aws:s3:::bucket` or any resource under `arn:aws:s3:::bucket/` (conditions
    /// ignored). Used to filter ListBuckets.
    pub fn grants_something_on_bucket(&self, who: Principal<'_>, bucket: &str) -> bool {
        let bucket_arn = format!("arn:aws:s3:::{bucket}");
        let under = format!("{bucket_arn}/");
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && s.applies_to(who))
            .any(|s| {
                // A NotResource statement excludes some resources; working out whether its
                // exclusions cover the whole bucket isn't worth it for a listing filter.
                s.resources.negated
                    || s.resources.list.iter().any(|pattern| {
                        glob::matches(pattern, &bucket_arn, false)
                            || glob::can_match_with_prefix(pattern, &under)
                    })
            })
    }
}
