//! Evaluating bucket policies: effects, Not… forms, wildcards, principals, conditions, public
//! status and the ListBuckets filter.

use super::*;
use crate::condition::Condition;
use crate::statement::{Effect, Patterns, Statement};
use crate::{Decision, IpAddr, Principal};

const ALICE: Principal<'static> = Principal::User("alice");
const BOB: Principal<'static> = Principal::User("bob");
const ANON: Principal<'static> = Principal::Anonymous;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("test IP"))
}

/// A policy allowing everyone `action` on `resource` under `condition`.
fn allow_if(action: &str, resource: &str, condition: Value) -> Policy {
    policy(
        json!({"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource, "Condition": condition}),
    )
}

/// ListBucket on `b` with the given `s3:prefix`.
fn list(prefix: Option<&str>) -> Request<'_> {
    Request {
        prefix,
        ..request("s3:ListBucket", "arn:aws:s3:::b")
    }
}

fn get_from(source_ip: Option<IpAddr>) -> Request<'static> {
    Request {
        source_ip,
        ..request("s3:GetObject", "arn:aws:s3:::b/k")
    }
}

#[test]
fn explicit_deny_beats_allow() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert_eq!(
        p.evaluate(ALICE, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:DeleteObject", "arn:aws:s3:::b/k")),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:ListBucket", "arn:aws:s3:::b")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:ListAllMyBuckets", "*")),
        Decision::NotApplicable
    );

    // Statement order doesn't matter.
    let reversed = policy(json!([
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert_eq!(
        reversed.evaluate(ALICE, &request("s3:DeleteObject", "arn:aws:s3:::b/k")),
        Decision::Deny
    );
}

#[test]
fn deny_alone_is_deny_and_not_applicable_elsewhere() {
    let p = policy(
        json!({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/secret/*"}),
    );
    assert_eq!(
        p.evaluate(BOB, &request("s3:GetObject", "arn:aws:s3:::b/secret/x")),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(BOB, &request("s3:GetObject", "arn:aws:s3:::b/public/x")),
        Decision::NotApplicable
    );
}

#[test]
fn not_action_with_allow_grants_everything_else() {
    let p = policy(json!({
        "Effect": "Allow", "Principal": "*", "NotAction": ["s3:Delete*", "s3:*Policy"],
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    }));
    assert_eq!(
        p.evaluate(ALICE, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:PutObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:ListBucket", "arn:aws:s3:::b")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:DeleteObject", "arn:aws:s3:::b/k")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:PutBucketPolicy", "arn:aws:s3:::b")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(
            ALICE,
            &request("s3:GetBucketPolicyStatus", "arn:aws:s3:::b")
        ),
        Decision::Allow
    );
}

#[test]
fn not_action_with_deny_denies_everything_else() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "NotAction": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:PutObject", "arn:aws:s3:::b/k")),
        Decision::Deny
    );
    // Outside the statement's resources the Deny doesn't apply either.
    assert_eq!(
        p.evaluate(ANON, &request("s3:ListBucket", "arn:aws:s3:::b")),
        Decision::NotApplicable
    );
}

#[test]
fn not_resource() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
         "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/public/*"}
    ]));
    assert_eq!(
        p.evaluate(ALICE, &request("s3:GetObject", "arn:aws:s3:::b/public/x")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ALICE, &request("s3:GetObject", "arn:aws:s3:::b/private/x")),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(BOB, &request("s3:GetObject", "arn:aws:s3:::b/private/x")),
        Decision::Allow
    );

    let allow_outside = policy(
        json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/private/*"}),
    );
    assert_eq!(
        allow_outside.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/x")),
        Decision::Allow
    );
    assert_eq!(
        allow_outside.evaluate(ANON, &request("s3:ListBucket", "arn:aws:s3:::b")),
        Decision::Allow
    );
    assert_eq!(
        allow_outside.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/private/x")),
        Decision::NotApplicable
    );
}

#[test]
fn action_wildcards_are_case_insensitive() {
    let p = allow_if("S3:get?BJECT", "arn:aws:s3:::b/*", json!({}));
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObjectAcl", "arn:aws:s3:::b/k")),
        Decision::NotApplicable
    );

    let p = allow_if("s3:Get*Tagging", "arn:aws:s3:::b/*", json!({}));
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObjectTagging", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(
            ANON,
            &request("s3:GetObjectVersionTagging", "arn:aws:s3:::b/k")
        ),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:PutObjectTagging", "arn:aws:s3:::b/k")),
        Decision::NotApplicable
    );

    let p = allow_if("s3:GetObjec?", "arn:aws:s3:::b/*", json!({}));
    assert_eq!(
        p.evaluate(ANON, &request("s3:GETOBJECT", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObjec", "arn:aws:s3:::b/k")),
        Decision::NotApplicable
    );
}

#[test]
fn resource_wildcards_are_case_sensitive_and_span_slashes() {
    let p = allow_if("s3:GetObject", "arn:aws:s3:::b/Docs/*", json!({}));
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/Docs/a/b/c")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/docs/a")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/Docs")),
        Decision::NotApplicable
    );

    let p = allow_if("s3:GetObject", "arn:aws:s3:::b/file?.txt", json!({}));
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/file1.txt")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/fileé.txt")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/file10.txt")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ANON, &request("s3:GetObject", "arn:aws:s3:::b/file.txt")),
        Decision::NotApplicable
    );
}

#[test]
fn principals() {
    let everyone = policy(
        json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}),
    );
    let aws_star = policy(
        json!({"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}),
    );
    let alice_only = policy(json!({
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"
    }));
    let both = policy(json!({
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::*:user/alice", "arn:aws:iam::123456789012:user/bob"]},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"
    }));
    let get = request("s3:GetObject", "arn:aws:s3:::b/k");
    for who in [ANON, ALICE, BOB] {
        assert_eq!(everyone.evaluate(who, &get), Decision::Allow, "{who:?}");
        assert_eq!(aws_star.evaluate(who, &get), Decision::Allow, "{who:?}");
    }
    assert_eq!(alice_only.evaluate(ALICE, &get), Decision::Allow);
    assert_eq!(alice_only.evaluate(BOB, &get), Decision::NotApplicable);
    assert_eq!(alice_only.evaluate(ANON, &get), Decision::NotApplicable);
    assert_eq!(
        alice_only.evaluate(Principal::User("carol"), &get),
        Decision::NotApplicable
    );
    assert_eq!(both.evaluate(ALICE, &get), Decision::Allow);
    assert_eq!(both.evaluate(BOB, &get), Decision::Allow);
    assert_eq!(both.evaluate(ANON, &get), Decision::NotApplicable);
}

#[test]
fn string_equals_and_not_equals() {
    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringEquals": {"s3:prefix": ["pub/", "docs/"]}}),
    );
    assert_eq!(p.evaluate(ANON, &list(Some("pub/"))), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("docs/"))), Decision::Allow);
    assert_eq!(
        p.evaluate(ANON, &list(Some("pub/x"))),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ANON, &list(Some("PUB/"))),
        Decision::NotApplicable
    );
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::NotApplicable);

    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringNotEquals": {"s3:prefix": ["a", "b"]}}),
    );
    assert_eq!(p.evaluate(ANON, &list(Some("c"))), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("a"))), Decision::NotApplicable);
    assert_eq!(p.evaluate(ANON, &list(Some("b"))), Decision::NotApplicable);
    // Negated operators hold when the key is absent.
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::Allow);
}

#[test]
fn string_like_and_not_like() {
    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringLike": {"s3:prefix": "pub/*"}}),
    );
    assert_eq!(p.evaluate(ANON, &list(Some("pub/"))), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("pub/a/b"))), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("pu"))), Decision::NotApplicable);
    assert_eq!(p.evaluate(ANON, &list(Some(""))), Decision::NotApplicable);
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::NotApplicable);

    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringNotLike": {"s3:prefix": ["priv/*", "?"]}}),
    );
    assert_eq!(p.evaluate(ANON, &list(Some("pub/"))), Decision::Allow);
    assert_eq!(
        p.evaluate(ANON, &list(Some("priv/a"))),
        Decision::NotApplicable
    );
    assert_eq!(p.evaluate(ANON, &list(Some("x"))), Decision::NotApplicable);
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::Allow);
}

#[test]
fn if_exists_variants_hold_when_the_key_is_missing() {
    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringLikeIfExists": {"s3:prefix": "pub/*"}}),
    );
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("pub/1"))), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("x"))), Decision::NotApplicable);

    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringEqualsIfExists": {"s3:prefix": "a"}}),
    );
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("a"))), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("b"))), Decision::NotApplicable);

    let p = allow_if(
        "s3:GetObject",
        "arn:aws:s3:::b/*",
        json!({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}),
    );
    assert_eq!(p.evaluate(ANON, &get_from(None)), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &get_from(ip("10.9.9.9"))), Decision::Allow);
    assert_eq!(
        p.evaluate(ANON, &get_from(ip("11.0.0.1"))),
        Decision::NotApplicable
    );

    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringNotEqualsIfExists": {"s3:prefix": "a"}}),
    );
    assert_eq!(p.evaluate(ANON, &list(None)), Decision::Allow);
    assert_eq!(p.evaluate(ANON, &list(Some("a"))), Decision::NotApplicable);
}

#[test]
fn ip_address_v4_and_v6() {
    let p = allow_if(
        "s3:GetObject",
        "arn:aws:s3:::b/*",
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]}}),
    );
    assert_eq!(p.evaluate(ANON, &get_from(ip("10.1.2.3"))), Decision::Allow);
    assert_eq!(
        p.evaluate(ANON, &get_from(ip("192.0.2.1"))),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &get_from(ip("192.0.2.2"))),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(ANON, &get_from(ip("2001:db8::1"))),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(ANON, &get_from(ip("2001:db9::1"))),
        Decision::NotApplicable
    );
    // An IPv4 client seen as IPv4-mapped IPv6 still matches the IPv4 range.
    assert_eq!(
        p.evaluate(ANON, &get_from(ip("::ffff:10.1.1.1"))),
        Decision::Allow
    );
    assert_eq!(p.evaluate(ANON, &get_from(None)), Decision::NotApplicable);

    let host6 = allow_if(
        "s3:GetObject",
        "arn:aws:s3:::b/*",
        json!({"IpAddress": {"aws:SourceIp": "::1"}}),
    );
    assert_eq!(host6.evaluate(ANON, &get_from(ip("::1"))), Decision::Allow);
    assert_eq!(
        host6.evaluate(ANON, &get_from(ip("::2"))),
        Decision::NotApplicable
    );
    assert_eq!(
        host6.evaluate(ANON, &get_from(ip("127.0.0.1"))),
        Decision::NotApplicable
    );

    // A network written as IPv4-mapped IPv6 is the IPv4 network (clients are compared so).
    let mapped = allow_if(
        "s3:GetObject",
        "arn:aws:s3:::b/*",
        json!({"IpAddress": {"aws:SourceIp": "::ffff:203.0.113.0/120"}}),
    );
    assert_eq!(
        mapped.evaluate(ANON, &get_from(ip("203.0.113.9"))),
        Decision::Allow
    );
    assert_eq!(
        mapped.evaluate(ANON, &get_from(ip("::ffff:203.0.113.9"))),
        Decision::Allow
    );
    assert_eq!(
        mapped.evaluate(ANON, &get_from(ip("203.0.114.9"))),
        Decision::NotApplicable
    );
}

#[test]
fn names_user_finds_user_principals_only() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert!(p.names_user("alice"));
    assert!(!p.names_user("bob"));
}

#[test]
fn not_ip_address() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "fd00::/8"]}}}
    ]));
    assert_eq!(
        p.evaluate(ALICE, &get_from(ip("10.0.0.1"))),
        Decision::Allow
    );
    assert_eq!(p.evaluate(ALICE, &get_from(ip("fd12::1"))), Decision::Allow);
    assert_eq!(
        p.evaluate(ALICE, &get_from(ip("192.168.1.1"))),
        Decision::Deny
    );
    assert_eq!(p.evaluate(ALICE, &get_from(ip("fe80::1"))), Decision::Deny);
    assert_eq!(p.evaluate(ALICE, &get_from(None)), Decision::Deny);
}

#[test]
fn bool_secure_transport() {
    let deny_plain = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"Bool": {"aws:SecureTransport": "FALSE"}}}
    ]));
    let plain = request("s3:GetObject", "arn:aws:s3:::b/k");
    let tls = Request {
        secure_transport: true,
        ..plain
    };
    assert_eq!(deny_plain.evaluate(ALICE, &plain), Decision::Deny);
    assert_eq!(deny_plain.evaluate(ALICE, &tls), Decision::Allow);

    let only_tls = allow_if(
        "s3:GetObject",
        "arn:aws:s3:::b/*",
        json!({"Bool": {"aws:SecureTransport": true}}),
    );
    assert_eq!(only_tls.evaluate(ANON, &plain), Decision::NotApplicable);
    assert_eq!(only_tls.evaluate(ANON, &tls), Decision::Allow);
}

#[test]
fn conditions_and_across_keys_and_operators() {
    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringLike": {"s3:prefix": "pub/*"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    );
    let inside = Request {
        source_ip: ip("10.0.0.1"),
        ..list(Some("pub/x"))
    };
    assert_eq!(p.evaluate(ANON, &inside), Decision::Allow);
    assert_eq!(
        p.evaluate(
            ANON,
            &Request {
                prefix: Some("x"),
                ..inside
            }
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(
            ANON,
            &Request {
                source_ip: ip("11.0.0.1"),
                ..inside
            }
        ),
        Decision::NotApplicable
    );
}

#[test]
fn numeric_condition_values_compare_as_strings() {
    let p = allow_if(
        "s3:ListBucket",
        "arn:aws:s3:::b",
        json!({"StringEquals": {"s3:prefix": 42}}),
    );
    assert_eq!(p.evaluate(ANON, &list(Some("42"))), Decision::Allow);
    assert_eq!(
        p.evaluate(ANON, &list(Some("42.0"))),
        Decision::NotApplicable
    );
}

#[test]
fn is_public() {
    let public = |statement: Value| policy(statement).is_public();
    let base = |condition: Value| json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": condition});
    assert!(public(base(json!({}))));
    assert!(public(
        json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
    ));
    assert!(!public(json!({
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"
    })));
    assert!(!public(
        json!({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
    ));
    assert!(!public(base(
        json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    )));
    assert!(!public(base(
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}})
    )));
    assert!(public(base(
        json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})
    )));
    assert!(public(base(
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::/0"]}})
    )));
    assert!(public(base(
        json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    )));
    assert!(public(base(json!({"StringLike": {"s3:prefix": "pub/*"}}))));
    assert!(public(base(
        json!({"Bool": {"aws:SecureTransport": "true"}})
    )));
    // One public statement is enough.
    assert!(public(json!([
        base(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
    ])));
    // Identity policies have no principal, so they are never public.
    assert!(!crate::identity_policy(crate::Builtin::ReadWrite, &[]).is_public());
}

/// A policy allowing everything on `resource` (which bucket-policy validation would refuse).
fn raw_allow(resource: &str, negated: bool) -> Policy {
    Policy {
        statements: vec![Statement {
            effect: Effect::Allow,
            principals: None,
            actions: Patterns::new(false, &["s3:*"]),
            resources: Patterns::new(negated, &[resource]),
            conditions: vec![Condition::prefix_like("x*".to_owned())],
        }],
    }
}

#[test]
fn grants_something_on_bucket_from_patterns() {
    let b_star = raw_allow("arn:aws:s3:::b*", false);
    assert!(b_star.grants_something_on_bucket(ALICE, "b"));
    assert!(b_star.grants_something_on_bucket(ALICE, "bx"));
    assert!(!b_star.grants_something_on_bucket(ALICE, "a"));

    let other = raw_allow("arn:aws:s3:::other/*", false);
    assert!(!other.grants_something_on_bucket(ALICE, "b"));
    assert!(other.grants_something_on_bucket(ALICE, "other"));
    assert!(!other.grants_something_on_bucket(ALICE, "other2"));

    assert!(raw_allow("arn:aws:s3:::*/logs/*", false).grants_something_on_bucket(ALICE, "b"));
    assert!(raw_allow("arn:aws:s3:::?", false).grants_something_on_bucket(ALICE, "b"));
    assert!(!raw_allow("arn:aws:s3:::?", false).grants_something_on_bucket(ALICE, "bx"));
    assert!(raw_allow("*", false).grants_something_on_bucket(ANON, "anything"));
    // Conditions are ignored, and NotResource is assumed to leave something.
    assert!(raw_allow("arn:aws:s3:::b/*", true).grants_something_on_bucket(ALICE, "b"));
}

#[test]
fn grants_something_on_bucket_from_bucket_policy() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/uploads/*"},
        {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"},
         "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert!(p.grants_something_on_bucket(ALICE, "b"));
    assert!(!p.grants_something_on_bucket(ALICE, "bx"));
    // Bob is only named in a Deny; anonymous isn't named at all.
    assert!(!p.grants_something_on_bucket(BOB, "b"));
    assert!(!p.grants_something_on_bucket(ANON, "b"));

    let public = policy(
        json!({"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}),
    );
    assert!(public.grants_something_on_bucket(ANON, "b"));
    assert!(public.grants_something_on_bucket(BOB, "b"));
}
