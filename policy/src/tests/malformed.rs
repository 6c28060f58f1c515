//! Documents PutBucketPolicy must refuse, each with the exact message the client will see.

use super::*;

const NOT_JSON: &str = "Policies must be valid JSON and the first byte must be '{'";
const INVALID_PRINCIPAL: &str = "Invalid principal in policy";
const INVALID_ACTION: &str = "Policy has invalid action";
const INVALID_RESOURCE: &str = "Policy has invalid resource";

#[test]
fn the_base_statement_is_valid() {
    assert!(parse(&statement_with(json!({}))).is_ok());
}

#[test]
fn not_json_or_not_an_object() {
    for text in [
        "this is not json",
        "[]",
        "",
        "   ",
        "\"{}\"",
        "{",
        "{\"Statement\": [}",
        "  {,}",
    ] {
        assert_eq!(err(text), NOT_JSON, "{text:?}");
    }
}

#[test]
fn leading_whitespace_is_fine() {
    let text = format!("\n  \t{}", statement_with(json!({})));
    assert!(parse(&text).is_ok());
}

#[test]
fn size_limit_is_20_kib() {
    let base = statement_with(json!({}));
    let at_limit = format!("{base:<20480}");
    assert_eq!(at_limit.len(), 20480);
    assert!(parse(&at_limit).is_ok());
    let over = format!("{base:<20481}");
    assert_eq!(err(&over), "Policies must be less than 20 KB");
}

#[test]
fn statement_missing_or_empty() {
    assert_eq!(
        err(r#"{"Version": "2012-10-17"}"#),
        "Missing required field Statement"
    );
    assert_eq!(
        err(r#"{"Version": "2012-10-17", "Statement": []}"#),
        "Missing required field Statement"
    );
    assert_eq!(
        err(r#"{"Statement": null}"#),
        "Missing required field Statement"
    );
    assert_eq!(err("{}"), "Missing required field Statement");
}

#[test]
fn single_statement_object_is_accepted() {
    let text = json!({"Statement": {
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"
    }})
    .to_string();
    assert!(parse(&text).is_ok());
}

#[test]
fn top_level_fields() {
    let statement = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
    let with_top = |mut top: Value| {
        top["Statement"] = json!([statement.clone()]);
        top.to_string()
    };
    assert!(parse(&with_top(json!({"Version": "2008-10-17", "Id": "mine"}))).is_ok());
    assert_eq!(
        err(&with_top(json!({"Version": "2020-01-01"}))),
        "Invalid policy version: 2020-01-01"
    );
    assert_eq!(
        err(&with_top(json!({"Id": 3}))),
        "Policy Id must be a string"
    );
    assert_eq!(
        err(&with_top(json!({"Statements": []}))),
        "Unknown field Statements"
    );
}

#[test]
fn statement_shape() {
    assert_eq!(
        err(&doc(json!(["x"]))),
        "Policy statement must be a JSON object"
    );
    assert_eq!(
        err(&statement_with(json!({"Principals": "*"}))),
        "Unknown field Principals"
    );
    assert_eq!(
        err(&statement_with(json!({"Sid": 1}))),
        "Statement Sid must be a string"
    );
    assert!(parse(&statement_with(json!({"Sid": "PublicRead"}))).is_ok());
}

#[test]
fn effect() {
    assert_eq!(
        err(&statement_with(json!({"Effect": null}))),
        "Missing required field Effect"
    );
    assert_eq!(
        err(&statement_with(json!({"Effect": "hello"}))),
        "Invalid effect: hello"
    );
    assert_eq!(
        err(&statement_with(json!({"Effect": "allow"}))),
        "Invalid effect: allow"
    );
    assert_eq!(
        err(&statement_with(json!({"Effect": true}))),
        "Invalid effect: true"
    );
    assert!(parse(&statement_with(json!({"Effect": "Deny"}))).is_ok());
}

#[test]
fn principal_missing() {
    assert_eq!(
        err(&statement_with(json!({"Principal": null}))),
        "Missing required field Principal"
    );
}

#[test]
fn principal_forms_accepted() {
    for principal in [
        json!("*"),
        json!({"AWS": "*"}),
        json!({"AWS": ["*"]}),
        json!({"AWS": "arn:aws:iam::123456789012:user/alice"}),
        json!({"AWS": "arn:aws:iam::*:user/alice"}),
        json!({"AWS": ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::000000000000:user/bob"]}),
    ] {
        assert!(
            parse(&statement_with(json!({"Principal": principal}))).is_ok(),
            "{principal}"
        );
    }
}

#[test]
fn principal_forms_refused() {
    for principal in [
        json!("somebody"),
        json!("arn:aws:iam::123456789012:user/alice"),
        json!({}),
        json!({"AWS": []}),
        json!({"AWS": 7}),
        json!({"AWS": "alice"}),
        json!({"AWS": "arn:aws:iam::123456789012:user/mallory"}),
        json!({"AWS": ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/mallory"]}),
        json!({"AWS": "arn:aws:iam::12345:user/alice"}),
        json!({"AWS": "arn:aws:iam::123456789012:role/alice"}),
        json!({"AWS": "arn:aws:iam::123456789012:user/"}),
        json!({"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}),
        json!({"Service": "s3.amazonaws.com"}),
        json!({"AWS": "*", "Service": "s3.amazonaws.com"}),
        json!(["*"]),
    ] {
        assert_eq!(
            err(&statement_with(json!({"Principal": principal}))),
            INVALID_PRINCIPAL,
            "{principal}"
        );
    }
}

#[test]
fn not_principal_is_refused() {
    let text = statement_with(
        json!({"Principal": null, "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:user/alice"}}),
    );
    assert_eq!(err(&text), INVALID_PRINCIPAL);
}

#[test]
fn actions_accepted() {
    for action in [
        json!("*"),
        json!("s3:*"),
        json!("S3:getobject"),
        json!("s3:Get*"),
        json!("s3:Get?bject"),
        json!("s3:Foo*"),
        json!(["s3:GetObject", "s3:GetObjectVersion"]),
    ] {
        assert!(
            parse(&statement_with(json!({"Action": action}))).is_ok(),
            "{action}"
        );
    }
}

#[test]
fn actions_refused() {
    for action in [
        json!("invalid_action"),
        json!("s3:NoSuchAction"),
        json!("s3:"),
        json!("iam:*"),
        json!("ec2:GetObject"),
        json!(""),
        json!([]),
        json!(["s3:GetObject", "s3:Nope"]),
        json!(["s3:GetObject", 3]),
        json!({"s3": "GetObject"}),
    ] {
        assert_eq!(
            err(&statement_with(json!({"Action": action}))),
            INVALID_ACTION,
            "{action}"
        );
    }
    assert_eq!(
        err(&statement_with(
            json!({"Action": null, "NotAction": "s3:Bogus"})
        )),
        INVALID_ACTION
    );
}

#[test]
fn action_and_not_action() {
    assert_eq!(
        err(&statement_with(json!({"Action": null}))),
        "Missing required field Action"
    );
    assert_eq!(
        err(&statement_with(json!({"NotAction": "s3:PutObject"}))),
        "Statement must contain only one of Action or NotAction"
    );
}

#[test]
fn resources_refused() {
    for resource in [
        json!("arn:aws:s3:::b-other/*"),
        json!("arn:aws:s3:::other/*"),
        json!("*"),
        json!("arn:aws:s3:::*"),
        json!("arn:aws:s3:::b*"),
        json!("arn:aws:s3:::?/*"),
        json!("arn:aws:s3:::B/*"),
        json!("b/*"),
        json!(""),
        json!([]),
        json!(["arn:aws:s3:::b/*", "arn:aws:s3:::c/*"]),
    ] {
        assert_eq!(
            err(&statement_with(json!({"Resource": resource}))),
            INVALID_RESOURCE,
            "{resource}"
        );
    }
    assert_eq!(
        err(&statement_with(
            json!({"Resource": null, "NotResource": "*"})
        )),
        INVALID_RESOURCE
    );
}

#[test]
fn resource_and_not_resource() {
    assert_eq!(
        err(&statement_with(json!({"Resource": null}))),
        "Missing required field Resource"
    );
    assert_eq!(
        err(&statement_with(json!({"NotResource": "arn:aws:s3:::b/x"}))),
        "Statement must contain only one of Resource or NotResource"
    );
    assert!(
        parse(&statement_with(
            json!({"Resource": "arn:aws:s3:::b/some/*/deep?key"})
        ))
        .is_ok()
    );
}

#[test]
fn actions_must_fit_some_resource() {
    const NO_FIT: &str = "Action does not apply to any resource(s) in statement";
    assert_eq!(
        err(&statement_with(json!({"Resource": "arn:aws:s3:::b"}))),
        NO_FIT
    );
    assert_eq!(
        err(&statement_with(json!({"Action": "s3:ListBucket"}))),
        NO_FIT
    );
    assert_eq!(
        err(&statement_with(json!({"Action": "s3:ListAllMyBuckets"}))),
        NO_FIT
    );
    assert_eq!(
        err(&statement_with(
            json!({"Action": ["s3:PutObject", "s3:GetObject*"], "Resource": "arn:aws:s3:::b"})
        )),
        NO_FIT
    );
    // One fitting pair is enough.
    let fits = [
        json!({"Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "arn:aws:s3:::b"}),
        json!({"Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}),
        json!({"Action": "s3:*", "Resource": "arn:aws:s3:::b"}),
        json!({"Action": "*", "Resource": "arn:aws:s3:::b"}),
        json!({"Action": "s3:Get*", "Resource": "arn:aws:s3:::b"}),
        json!({"Action": "s3:NoSuch*", "Resource": "arn:aws:s3:::b"}),
        // The Not… forms are not checked: they cover most actions or resources.
        json!({"Action": null, "NotAction": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}),
        json!({"Resource": null, "NotResource": "arn:aws:s3:::b/*"}),
    ];
    for changes in fits {
        assert!(parse(&statement_with(changes.clone())).is_ok(), "{changes}");
    }
}

fn with_condition(condition: Value) -> String {
    statement_with(json!({"Condition": condition}))
}

#[test]
fn conditions_accepted() {
    for condition in [
        json!({}),
        json!({"StringEquals": {"s3:prefix": "a/"}}),
        json!({"StringNotEqualsIfExists": {"S3:Prefix": ["a/", "b/"]}}),
        json!({"StringLike": {"s3:prefix": 7}}),
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1"]}}),
        json!({"NotIpAddressIfExists": {"AWS:SOURCEIP": "0.0.0.0/0"}}),
        json!({"Bool": {"aws:SecureTransport": false}}),
        json!({"BoolIfExists": {"aws:SecureTransport": "TRUE"}}),
    ] {
        assert!(
            parse(&with_condition(condition.clone())).is_ok(),
            "{condition}"
        );
    }
}

#[test]
fn condition_operator_unknown() {
    assert_eq!(
        err(&with_condition(
            json!({"NoSuchOperator": {"aws:SourceIp": "10.0.0.0/8"}})
        )),
        "Policy has an invalid condition operator: NoSuchOperator"
    );
    // Operators are case-sensitive, as on AWS.
    assert_eq!(
        err(&with_condition(json!({"stringequals": {"s3:prefix": "a"}}))),
        "Policy has an invalid condition operator: stringequals"
    );
    assert_eq!(
        err(&with_condition(
            json!({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})
        )),
        "Policy has an invalid condition operator: DateGreaterThan"
    );
}

#[test]
fn condition_key_unknown() {
    assert_eq!(
        err(&with_condition(
            json!({"StringEquals": {"aws:UserAgent": "curl"}})
        )),
        "Policy has an invalid condition key: aws:UserAgent"
    );
}

#[test]
fn condition_key_operator_mismatch() {
    assert_eq!(
        err(&with_condition(
            json!({"StringEquals": {"aws:SourceIp": "10.0.0.1"}})
        )),
        "Condition operator StringEquals cannot be used with key aws:SourceIp"
    );
    assert_eq!(
        err(&with_condition(
            json!({"StringEquals": {"aws:SecureTransport": "true"}})
        )),
        "Condition operator StringEquals cannot be used with key aws:SecureTransport"
    );
    assert_eq!(
        err(&with_condition(
            json!({"IpAddress": {"s3:prefix": "10.0.0.0/8"}})
        )),
        "Condition operator IpAddress cannot be used with key s3:prefix"
    );
}

#[test]
fn condition_bad_ip() {
    for ip in [
        json!("10.0.0.300/8"),
        json!("not-an-ip"),
        json!("10.0.0.0/33"),
        json!(["10.0.0.0/8", "::g"]),
        json!(10),
    ] {
        assert_eq!(
            err(&with_condition(json!({"IpAddress": {"aws:SourceIp": ip}}))),
            "Invalid IP address in condition",
            "{ip}"
        );
    }
}

#[test]
fn condition_block_shapes() {
    assert_eq!(
        err(&with_condition(json!("x"))),
        "Policy has an invalid condition block"
    );
    assert_eq!(
        err(&with_condition(json!({"StringEquals": "x"}))),
        "Policy has an invalid condition block for operator: StringEquals"
    );
    for value in [json!([]), json!(null), json!({"a": 1}), json!([["a"]])] {
        assert_eq!(
            err(&with_condition(
                json!({"StringEquals": {"s3:prefix": value}})
            )),
            "Policy has an invalid condition value for key: s3:prefix",
            "{value}"
        );
    }
}
