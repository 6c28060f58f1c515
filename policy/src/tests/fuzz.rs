//! Property tests: the policy parsers take any input without panicking, and refuse what they
//! refuse with a message.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::Policy;

/// Strings that policy documents are made of, so generated documents get past the first
/// checks and reach the deeper ones, plus arbitrary ones.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Version".to_owned()),
        Just("2012-10-17".to_owned()),
        Just("Statement".to_owned()),
        Just("Effect".to_owned()),
        Just("Allow".to_owned()),
        Just("Deny".to_owned()),
        Just("Principal".to_owned()),
        Just("NotPrincipal".to_owned()),
        Just("AWS".to_owned()),
        Just("*".to_owned()),
        Just("Action".to_owned()),
        Just("NotAction".to_owned()),
        Just("s3:GetObject".to_owned()),
        Just("s3:*".to_owned()),
        Just("s3:List*".to_owned()),
        Just("Resource".to_owned()),
        Just("NotResource".to_owned()),
        Just("arn:aws:s3:::b/*".to_owned()),
        Just("arn:aws:s3:::b".to_owned()),
        Just("arn:aws:iam::123456789012:user/alice".to_owned()),
        Just("Condition".to_owned()),
        Just("IpAddress".to_owned()),
        Just("NotIpAddress".to_owned()),
        Just("aws:SourceIp".to_owned()),
        Just("10.0.0.0/8".to_owned()),
        Just("::1/200".to_owned()),
        Just("Bool".to_owned()),
        Just("BoolIfExists".to_owned()),
        Just("aws:SecureTransport".to_owned()),
        Just("StringLike".to_owned()),
        Just("s3:prefix".to_owned()),
        Just("ForAnyValue:StringEquals".to_owned()),
        ".{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Both parsers on `text`: either a policy or a refusal with a message, never a panic.
fn parse_both(text: &str) {
    if let Err(e) = Policy::parse_bucket_policy(text, "b", &|n| n == "alice") {
        assert!(!e.0.is_empty());
    }
    if let Err(e) = Policy::parse_identity_policy(text) {
        assert!(!e.0.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_json_documents(value in json_value()) {
        parse_both(&value.to_string());
    }

    #[test]
    fn arbitrary_statements(statement in prop::collection::vec((word(), json_value()), 0..8)) {
        let statement: Map<String, Value> = statement.into_iter().collect();
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [statement]});
        parse_both(&doc.to_string());
    }

    #[test]
    fn arbitrary_text(text in ".{0,200}") {
        parse_both(&text);
    }
}
