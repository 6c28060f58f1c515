//! Tests of the public API: refused documents and their messages, evaluation, public status,
//! bucket listing filters and the built-in identity policies.

mod builtin;
mod evaluation;
mod fuzz;
mod identity;
mod malformed;

use serde_json::{Value, json};

use crate::{MalformedPolicy, Policy, Request};

/// The users that exist for these tests.
fn user_exists(name: &str) -> bool {
    matches!(name, "alice" | "bob")
}

/// Parses `json` as the policy of bucket `b`.
fn parse(json: &str) -> Result<Policy, MalformedPolicy> {
    Policy::parse_bucket_policy(json, "b", &user_exists)
}

/// The message a refused policy gets.
fn err(json: &str) -> String {
    parse(json).expect_err("the policy should be refused").0
}

/// A policy document holding `statements` (one object or a list).
fn doc(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn policy(statements: Value) -> Policy {
    parse(&doc(statements)).expect("the policy should be valid")
}

/// A valid one-statement document (anyone may GetObject in `b`), with `changes` applied to the
/// statement: a `null` value removes the field, anything else replaces or adds it.
fn statement_with(changes: Value) -> String {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/*"
    });
    let (Value::Object(fields), Value::Object(changes)) = (&mut statement, changes) else {
        panic!("statement_with takes a JSON object");
    };
    for (field, value) in changes {
        if value.is_null() {
            fields.remove(&field);
        } else {
            fields.insert(field, value);
        }
    }
    doc(json!([statement]))
}

/// A request with no condition keys beyond `aws:SecureTransport = false`.
fn request<'a>(action: &'a str, resource: &'a str) -> Request<'a> {
    Request {
        action,
        resource,
        source_ip: None,
        secure_transport: false,
        prefix: None,
    }
}
