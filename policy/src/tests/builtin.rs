//! The built-in identity policies, unscoped and scoped to buckets and prefixes.

use super::*;
use crate::Decision::{Allow, NotApplicable};
use crate::{Builtin, Decision, Principal, identity_policy};

const ME: Principal<'static> = Principal::User("alice");

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|&s| s.to_owned()).collect()
}

/// The decision `kind` scoped to `scope_list` gives for `action` on `resource`.
fn decide(kind: Builtin, scope_list: &[&str], action: &str, resource: &str) -> Decision {
    identity_policy(kind, &scopes(scope_list)).evaluate(ME, &request(action, resource))
}

fn list_decision(kind: Builtin, scope_list: &[&str], prefix: Option<&str>) -> Decision {
    let req = Request {
        prefix,
        ..request("s3:ListBucket", "arn:aws:s3:::b")
    };
    identity_policy(kind, &scopes(scope_list)).evaluate(ME, &req)
}

#[test]
fn names_round_trip() {
    for kind in [Builtin::ReadWrite, Builtin::ReadOnly, Builtin::WriteOnly] {
        assert_eq!(Builtin::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(Builtin::ReadWrite.as_str(), "readwrite");
    assert_eq!(Builtin::ReadOnly.as_str(), "readonly");
    assert_eq!(Builtin::WriteOnly.as_str(), "writeonly");
    assert_eq!(Builtin::parse("admin"), None);
    assert_eq!(Builtin::parse("ReadWrite"), None);
    assert_eq!(Builtin::parse(""), None);
}

#[test]
fn readwrite_unscoped() {
    let k = Builtin::ReadWrite;
    assert_eq!(decide(k, &[], "s3:ListAllMyBuckets", "*"), Allow);
    assert_eq!(decide(k, &[], "s3:CreateBucket", "arn:aws:s3:::new"), Allow);
    assert_eq!(decide(k, &[], "s3:DeleteBucket", "arn:aws:s3:::x"), Allow);
    assert_eq!(decide(k, &[], "s3:PutObject", "arn:aws:s3:::x/k"), Allow);
    assert_eq!(
        decide(k, &[], "s3:DeleteObjectVersion", "arn:aws:s3:::x/k"),
        Allow
    );
    // Identity policies apply to whoever holds them; the caller never uses them for anonymous.
    let p = identity_policy(k, &[]);
    assert_eq!(
        p.evaluate(
            Principal::User("bob"),
            &request("s3:GetObject", "arn:aws:s3:::x/k")
        ),
        Allow
    );
}

#[test]
fn readonly_unscoped() {
    let k = Builtin::ReadOnly;
    assert_eq!(decide(k, &[], "s3:ListAllMyBuckets", "*"), Allow);
    assert_eq!(decide(k, &[], "s3:GetObject", "arn:aws:s3:::x/k"), Allow);
    assert_eq!(decide(k, &[], "s3:ListBucket", "arn:aws:s3:::x"), Allow);
    assert_eq!(
        decide(k, &[], "s3:GetBucketLocation", "arn:aws:s3:::x"),
        Allow
    );
    assert_eq!(
        decide(k, &[], "s3:PutObject", "arn:aws:s3:::x/k"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &[], "s3:DeleteObject", "arn:aws:s3:::x/k"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &[], "s3:CreateBucket", "arn:aws:s3:::x"),
        NotApplicable
    );
}

#[test]
fn writeonly_unscoped() {
    let k = Builtin::WriteOnly;
    assert_eq!(decide(k, &[], "s3:PutObject", "arn:aws:s3:::x/k"), Allow);
    assert_eq!(
        decide(k, &[], "s3:AbortMultipartUpload", "arn:aws:s3:::x/k"),
        Allow
    );
    assert_eq!(
        decide(k, &[], "s3:ListMultipartUploadParts", "arn:aws:s3:::x/k"),
        Allow
    );
    assert_eq!(
        decide(k, &[], "s3:GetObject", "arn:aws:s3:::x/k"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &[], "s3:DeleteObject", "arn:aws:s3:::x/k"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &[], "s3:ListBucket", "arn:aws:s3:::x"),
        NotApplicable
    );
    assert_eq!(decide(k, &[], "s3:ListAllMyBuckets", "*"), NotApplicable);
}

#[test]
fn readonly_scoped_to_a_bucket() {
    let k = Builtin::ReadOnly;
    assert_eq!(decide(k, &["b"], "s3:GetObject", "arn:aws:s3:::b/x"), Allow);
    assert_eq!(
        decide(k, &["b"], "s3:GetObject", "arn:aws:s3:::b/deep/x"),
        Allow
    );
    assert_eq!(decide(k, &["b"], "s3:ListBucket", "arn:aws:s3:::b"), Allow);
    assert_eq!(list_decision(k, &["b"], None), Allow);
    assert_eq!(list_decision(k, &["b"], Some("anything")), Allow);
    assert_eq!(
        decide(k, &["b"], "s3:GetObject", "arn:aws:s3:::c/x"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &["b"], "s3:GetObject", "arn:aws:s3:::bb/x"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &["b"], "s3:ListBucket", "arn:aws:s3:::c"),
        NotApplicable
    );
    assert_eq!(
        decide(k, &["b"], "s3:PutObject", "arn:aws:s3:::b/x"),
        NotApplicable
    );
    assert_eq!(decide(k, &["b"], "s3:ListAllMyBuckets", "*"), NotApplicable);
}

#[test]
fn readwrite_and_writeonly_scoped_to_a_bucket() {
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            &["b"],
            "s3:DeleteObject",
            "arn:aws:s3:::b/x"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            &["b"],
            "s3:DeleteBucket",
            "arn:aws:s3:::b"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            &["b"],
            "s3:DeleteObject",
            "arn:aws:s3:::c/x"
        ),
        NotApplicable
    );
    assert_eq!(
        decide(Builtin::ReadWrite, &["b"], "s3:ListAllMyBuckets", "*"),
        NotApplicable
    );
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            &["b"],
            "s3:CreateBucket",
            "arn:aws:s3:::c"
        ),
        NotApplicable
    );
    assert_eq!(
        decide(
            Builtin::WriteOnly,
            &["b"],
            "s3:PutObject",
            "arn:aws:s3:::b/x"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::WriteOnly,
            &["b"],
            "s3:GetObject",
            "arn:aws:s3:::b/x"
        ),
        NotApplicable
    );
    assert_eq!(
        decide(
            Builtin::WriteOnly,
            &["b"],
            "s3:PutObject",
            "arn:aws:s3:::c/x"
        ),
        NotApplicable
    );
}

#[test]
fn readonly_scoped_to_a_prefix() {
    let k = Builtin::ReadOnly;
    let scope: &[&str] = &["b/p/"];
    assert_eq!(
        decide(k, scope, "s3:GetObject", "arn:aws:s3:::b/p/x"),
        Allow
    );
    assert_eq!(
        decide(k, scope, "s3:GetObject", "arn:aws:s3:::b/p/deep/x"),
        Allow
    );
    assert_eq!(
        decide(k, scope, "s3:GetObject", "arn:aws:s3:::b/px"),
        NotApplicable
    );
    assert_eq!(
        decide(k, scope, "s3:GetObject", "arn:aws:s3:::b/q/x"),
        NotApplicable
    );
    assert_eq!(
        decide(k, scope, "s3:GetObject", "arn:aws:s3:::c/p/x"),
        NotApplicable
    );
    assert_eq!(list_decision(k, scope, Some("p/x")), Allow);
    assert_eq!(list_decision(k, scope, Some("p/")), Allow);
    assert_eq!(list_decision(k, scope, Some("q")), NotApplicable);
    assert_eq!(list_decision(k, scope, Some("")), NotApplicable);
    assert_eq!(list_decision(k, scope, None), NotApplicable);
    // Bucket-level actions carry no s3:prefix, so they stay out of reach.
    assert_eq!(
        decide(k, scope, "s3:GetBucketLocation", "arn:aws:s3:::b"),
        NotApplicable
    );
    assert_eq!(decide(k, scope, "s3:ListAllMyBuckets", "*"), NotApplicable);
}

#[test]
fn readwrite_and_writeonly_scoped_to_a_prefix() {
    let scope: &[&str] = &["b/p/"];
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            scope,
            "s3:PutObject",
            "arn:aws:s3:::b/p/x"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            scope,
            "s3:DeleteObject",
            "arn:aws:s3:::b/p/x"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            scope,
            "s3:PutObject",
            "arn:aws:s3:::b/q"
        ),
        NotApplicable
    );
    assert_eq!(
        decide(
            Builtin::ReadWrite,
            scope,
            "s3:DeleteBucket",
            "arn:aws:s3:::b"
        ),
        NotApplicable
    );
    assert_eq!(list_decision(Builtin::ReadWrite, scope, Some("p/x")), Allow);
    assert_eq!(
        list_decision(Builtin::ReadWrite, scope, Some("q")),
        NotApplicable
    );
    assert_eq!(
        list_decision(Builtin::ReadWrite, scope, None),
        NotApplicable
    );
    assert_eq!(
        decide(
            Builtin::WriteOnly,
            scope,
            "s3:PutObject",
            "arn:aws:s3:::b/p/x"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::WriteOnly,
            scope,
            "s3:PutObject",
            "arn:aws:s3:::b/x"
        ),
        NotApplicable
    );
    assert_eq!(
        list_decision(Builtin::WriteOnly, scope, Some("p/x")),
        NotApplicable
    );
}

#[test]
fn prefix_without_trailing_slash_is_taken_as_given() {
    let scope: &[&str] = &["b/logs"];
    assert_eq!(
        decide(
            Builtin::ReadOnly,
            scope,
            "s3:GetObject",
            "arn:aws:s3:::b/logs/x"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::ReadOnly,
            scope,
            "s3:GetObject",
            "arn:aws:s3:::b/logs-old"
        ),
        Allow
    );
    assert_eq!(
        decide(
            Builtin::ReadOnly,
            scope,
            "s3:GetObject",
            "arn:aws:s3:::b/log"
        ),
        NotApplicable
    );
    assert_eq!(list_decision(Builtin::ReadOnly, scope, Some("logs")), Allow);
}

#[test]
fn several_scopes_add_up() {
    let scope: &[&str] = &["b/p/", "c"];
    assert_eq!(
        decide(
            Builtin::ReadOnly,
            scope,
            "s3:GetObject",
            "arn:aws:s3:::b/p/x"
        ),
        Allow
    );
    assert_eq!(
        decide(Builtin::ReadOnly, scope, "s3:GetObject", "arn:aws:s3:::c/x"),
        Allow
    );
    assert_eq!(
        decide(Builtin::ReadOnly, scope, "s3:GetObject", "arn:aws:s3:::b/x"),
        NotApplicable
    );
    assert_eq!(
        decide(Builtin::ReadOnly, scope, "s3:GetObject", "arn:aws:s3:::d/x"),
        NotApplicable
    );
}

#[test]
fn grants_something_on_bucket_for_identity_policies() {
    let unscoped = identity_policy(Builtin::WriteOnly, &[]);
    assert!(unscoped.grants_something_on_bucket(ME, "b"));
    assert!(unscoped.grants_something_on_bucket(ME, "anything"));

    let bucket = identity_policy(Builtin::ReadOnly, &scopes(&["b"]));
    assert!(bucket.grants_something_on_bucket(ME, "b"));
    assert!(!bucket.grants_something_on_bucket(ME, "c"));
    assert!(!bucket.grants_something_on_bucket(ME, "bb"));

    let prefix = identity_policy(Builtin::WriteOnly, &scopes(&["b/p/"]));
    assert!(prefix.grants_something_on_bucket(ME, "b"));
    assert!(!prefix.grants_something_on_bucket(ME, "c"));
    assert!(!prefix.grants_something_on_bucket(ME, "b2"));
}
