//! Identity policies (stored by name, attached to users and groups) and their union.

use serde_json::json;

use super::{doc, request};
use crate::{Builtin, Decision, Policy, Principal, identity_policy};

fn identity(statements: serde_json::Value) -> Result<Policy, String> {
    Policy::parse_identity_policy(&doc(statements)).map_err(|e| e.0)
}

#[test]
fn identity_policies_take_any_s3_resource_and_no_principal() {
    let p = identity(json!([
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::logs-*", "arn:aws:s3:::logs-*/*"]},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::logs-secret/*"}
    ]))
    .unwrap();
    let alice = Principal::User("alice");
    let get = |r| p.evaluate(alice, &request("s3:GetObject", r));
    assert_eq!(get("arn:aws:s3:::logs-2026/a.txt"), Decision::Allow);
    assert_eq!(get("arn:aws:s3:::logs-secret/a.txt"), Decision::Deny);
    assert_eq!(get("arn:aws:s3:::photos/a.jpg"), Decision::NotApplicable);
    assert_eq!(
        p.evaluate(alice, &request("s3:PutObject", "arn:aws:s3:::logs-1/x")),
        Decision::NotApplicable
    );
    let star =
        identity(json!({"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}))
            .unwrap();
    assert_eq!(
        star.evaluate(alice, &request("s3:ListAllMyBuckets", "*")),
        Decision::Allow
    );
}

#[test]
fn identity_policies_refuse_principals_and_foreign_resources() {
    let e = identity(
        json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::b/*"}),
    )
    .unwrap_err();
    assert_eq!(e, "Policy document should not specify a principal.");
    let e = identity(json!({"Effect": "Allow", "Action": "s3:GetObject",
                            "Resource": "arn:aws:sqs:::queue"}))
    .unwrap_err();
    assert_eq!(e, "Policy has invalid resource");
    let e = identity(json!({"Effect": "Allow", "Action": "s3:Frobnicate", "Resource": "*"}))
        .unwrap_err();
    assert_eq!(e, "Policy has invalid action");
    let long = format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}",
        vec![r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#; 200].join(",")
    );
    assert!(
        Policy::parse_identity_policy(&long)
            .unwrap_err()
            .0
            .contains("6144")
    );
}

#[test]
fn union_lets_any_deny_win_and_any_allow_grant() {
    let builtin = identity_policy(Builtin::ReadWrite, &[]);
    let deny =
        identity(json!({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})).unwrap();
    let allow =
        identity(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})).unwrap();
    let bob = Principal::User("bob");
    let both = Policy::union([&builtin, &deny]);
    assert_eq!(
        both.evaluate(bob, &request("s3:DeleteObject", "arn:aws:s3:::b/k")),
        Decision::Deny
    );
    assert_eq!(
        both.evaluate(bob, &request("s3:PutObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    let readonly = identity_policy(Builtin::WriteOnly, &[]);
    let more = Policy::union([&readonly, &allow]);
    assert_eq!(
        more.evaluate(bob, &request("s3:GetObject", "arn:aws:s3:::b/k")),
        Decision::Allow
    );
    assert_eq!(
        Policy::union([]).evaluate(bob, &request("s3:GetObject", "*")),
        Decision::NotApplicable
    );
}
