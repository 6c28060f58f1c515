//! Parsing and validating bucket-policy documents: JSON in, statements out, refusing what AWS
//! refuses with the `MalformedPolicy` messages AWS uses, so S3 clients see familiar errors.
//!
//! Validation is strict on purpose: a statement tessera would misread (an unsupported
//! principal type, an unknown condition key) is refused instead of being silently ignored,
//! since ignoring part of an access policy changes who gets in.

use serde_json::{Map, Value};

use crate::statement::{Effect, Patterns, Principals, Statement};
use crate::{MalformedPolicy, actions, condition};

/// AWS's bucket-policy size limit.
const MAX_POLICY_BYTES: usize = 20 * 1024;

const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn malformed(message: impl Into<String>) -> MalformedPolicy {
    MalformedPolicy(message.into())
}

fn missing(field: &str) -> MalformedPolicy {
    malformed(format!("Missing required field {field}"))
}

fn not_json() -> MalformedPolicy {
    malformed("Policies must be valid JSON and the first byte must be '{'")
}

fn invalid_principal() -> MalformedPolicy {
    malformed("Invalid principal in policy")
}

fn invalid_action() -> MalformedPolicy {
    malformed("Policy has invalid action")
}

fn invalid_resource() -> MalformedPolicy {
    malformed("Policy has invalid resource")
}

/// A JSON value for an error message: strings without their quotes.
fn describe(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// AWS's limit for a managed identity policy.
const MAX_IDENTITY_POLICY_BYTES: usize = 6144;

/// What kind of document is parsed: a bucket's policy (principals required, resources in the
/// bucket) or an identity policy (no principal: it applies to whoever it is attached to; any
/// S3 resource).
enum Kind<'a> {
    Bucket {
        bucket_arn: String,
        user_exists: &'a dyn Fn(&str) -> bool,
    },
    Identity,
}

/// Parses the policy document `json` for `bucket`; see [`crate::Policy::parse_bucket_policy`].
pub(crate) fn parse_bucket_policy(
    json: &str,
    bucket: &str,
    user_exists: &dyn Fn(&str) -> bool,
) -> Result<Vec<Statement>, MalformedPolicy> {
    if json.len() > MAX_POLICY_BYTES {
        return Err(malformed("Policies must be less than 20 KB"));
    }
    let kind = Kind::Bucket {
        bucket_arn: format!("arn:aws:s3:::{bucket}"),
        user_exists,
    };
    parse_document(json, &kind)
}

/// Parses an identity policy; see [`crate::Policy::parse_identity_policy`].
pub(crate) fn parse_identity_policy(json: &str) -> Result<Vec<Statement>, MalformedPolicy> {
    if json.len() > MAX_IDENTITY_POLICY_BYTES {
        return Err(malformed(
            "Identity policies must be at most 6144 characters",
        ));
    }
    parse_document(json, &Kind::Identity)
}

fn parse_document(json: &str, kind: &Kind<'_>) -> Result<Vec<Statement>, MalformedPolicy> {
    // AWS looks at the first byte before parsing: `[…]` or a bare string is "not JSON" too.
    if !json
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with('{')
    {
        return Err(not_json());
    }
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(json) else {
        return Err(not_json());
    };
    if let Some(field) = top
        .keys()
        .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
    {
        return Err(malformed(format!("Unknown field {field}")));
    }
    if let Some(version) = top.get("Version")
        && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(malformed(format!(
            "Invalid policy version: {}",
            describe(version)
        )));
    }
    if top.get("Id").is_some_and(|id| !id.is_string()) {
        return Err(malformed("Policy Id must be a string"));
    }
    let statements: Vec<&Value> = match top.get("Statement") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single) => vec![single],
    };
    if statements.is_empty() {
        return Err(missing("Statement"));
    }
    statements
        .into_iter()
        .map(|statement| parse_statement(statement, kind))
        .collect()
}

fn parse_statement(value: &Value, kind: &Kind<'_>) -> Result<Statement, MalformedPolicy> {
    let Value::Object(fields) = value else {
        return Err(malformed("Policy statement must be a JSON object"));
    };
    if let Some(field) = fields
        .keys()
        .find(|k| !STATEMENT_FIELDS.contains(&k.as_str()))
    {
        return Err(malformed(format!("Unknown field {field}")));
    }
    if fields.get("Sid").is_some_and(|sid| !sid.is_string()) {
        return Err(malformed("Statement Sid must be a string"));
    }

    let effect = match fields.get("Effect") {
        None => return Err(missing("Effect")),
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(other) => return Err(malformed(format!("Invalid effect: {}", describe(other)))),
    };

    let principals = match kind {
        Kind::Bucket { user_exists, .. } => {
            // NotPrincipal would need "everyone except", which tessera doesn't model;
            // refusing it is safer than reading it as Principal.
            if fields.contains_key("NotPrincipal") {
                return Err(invalid_principal());
            }
            Some(parse_principal(
                fields
                    .get("Principal")
                    .ok_or_else(|| missing("Principal"))?,
                *user_exists,
            )?)
        }
        // IAM's rule: the principal of an identity policy is whoever it is attached to.
        Kind::Identity
            if fields.contains_key("Principal") || fields.contains_key("NotPrincipal") =>
        {
            return Err(malformed("Policy document should not specify a principal."));
        }
        Kind::Identity => None,
    };

    let (not_action, action_value) = one_of(fields, "Action", "NotAction")?;
    let action_list = string_list(action_value).ok_or_else(invalid_action)?;
    if !action_list.iter().all(|action| actions::is_valid(action)) {
        return Err(invalid_action());
    }

    let (not_resource, resource_value) = one_of(fields, "Resource", "NotResource")?;
    let resource_list = string_list(resource_value).ok_or_else(invalid_resource)?;
    let resources_ok = match kind {
        Kind::Bucket { bucket_arn, .. } => resource_list
            .iter()
            .all(|resource| in_bucket(resource, bucket_arn)),
        Kind::Identity => resource_list.iter().all(|r| {
            *r == "*"
                || r.strip_prefix("arn:aws:s3:::")
                    .is_some_and(|rest| !rest.is_empty())
        }),
    };
    if !resources_ok {
        return Err(invalid_resource());
    }

    let conditions = match fields.get("Condition") {
        Some(block) => condition::parse(block)?,
        None => Vec::new(),
    };

    if let Kind::Bucket { bucket_arn, .. } = kind
        && !not_action
        && !not_resource
        && !actions_fit_resources(&action_list, &resource_list, bucket_arn)
    {
        return Err(malformed(
            "Action does not apply to any resource(s) in statement",
        ));
    }

    Ok(Statement {
        effect,
        principals,
        actions: Patterns::new(not_action, &action_list),
        resources: Patterns::new(not_resource, &resource_list),
        conditions,
    })
}

/// `"*"`, or `{"AWS": "*" | user ARN | [those]}`. AWS accepts only `"*"` as a bare string, and
/// tessera only has IAM-style users, so `CanonicalUser`, `Service` and the like are refused.
fn parse_principal(
    value: &Value,
    user_exists: &dyn Fn(&str) -> bool,
) -> Result<Principals, MalformedPolicy> {
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Everyone),
        Value::Object(kinds) if kinds.len() == 1 => {
            let entries = kinds
                .get("AWS")
                .and_then(string_list)
                .ok_or_else(invalid_principal)?;
            let mut everyone = false;
            let mut users: Vec<String> = Vec::new();
            for entry in entries {
                if entry == "*" {
                    everyone = true;
                    continue;
                }
                // AWS checks that principals exist; a typo would otherwise grant nothing silently.
                let name = user_name_from_arn(entry).ok_or_else(invalid_principal)?;
                if !user_exists(name) {
                    return Err(invalid_principal());
                }
                if !users.iter().any(|user| user == name) {
                    users.push(name.to_owned());
                }
            }
            Ok(if everyone {
                Principals::Everyone
            } else {
                Principals::Users(users)
            })
        }
        _ => Err(invalid_principal()),
    }
}

/// NAME from `arn:aws:iam::ACCOUNT:user/NAME`. Tessera is single-tenant, so any 12-digit
/// account (or `*`) stands for it.
fn user_name_from_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let account_ok =
        account == "*" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()));
    let name = resource.strip_prefix("user/")?;
    (account_ok && !name.is_empty()).then_some(name)
}

/// The value of whichever of `positive` / `negative` the statement has; exactly one must be
/// present. The flag says it was the negative (`Not…`) one.
fn one_of<'v>(
    fields: &'v Map<String, Value>,
    positive: &str,
    negative: &str,
) -> Result<(bool, &'v Value), MalformedPolicy> {
    match (fields.get(positive), fields.get(negative)) {
        (Some(value), None) => Ok((false, value)),
        (None, Some(value)) => Ok((true, value)),
        (None, None) => Err(missing(positive)),
        (Some(_), Some(_)) => Err(malformed(format!(
            "Statement must contain only one of {positive} or {negative}"
        ))),
    }
}

/// A string or a non-empty list of strings.
fn string_list(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// A bucket policy may only name its own bucket, literally: the bucket ARN itself or
/// something under `BUCKET/`.
fn in_bucket(resource: &str, bucket_arn: &str) -> bool {
    resource
        .strip_prefix(bucket_arn)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// AWS refuses a statement none of whose actions can act on any of its resources (for
/// example `s3:GetObject` on the bucket ARN alone), since it could never match anything.
/// Wildcards that match no known action are given the benefit of the doubt.
fn actions_fit_resources(action_list: &[&str], resource_list: &[&str], bucket_arn: &str) -> bool {
    let has_bucket = resource_list.contains(&bucket_arn);
    let has_object = resource_list.iter().any(|&resource| resource != bucket_arn);
    action_list
        .iter()
        .any(|action| match actions::targets(action) {
            None => true,
            Some((bucket, object)) => (bucket && has_bucket) || (object && has_object),
        })
}
