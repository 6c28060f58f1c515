//! Statement `Condition` blocks: parsing the operators and keys tessera supports, and checking
//! them against a request.
//!
//! Supported operators (case-sensitive, each also with the `IfExists` suffix): `StringEquals`,
//! `StringNotEquals`, `StringLike`, `StringNotLike`, `IpAddress`, `NotIpAddress`, `Bool`.
//! Supported keys (case-insensitive): `aws:SourceIp`, `aws:SecureTransport`, `s3:prefix`.
//! Anything else is refused when the policy is stored, rather than silently never matching.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::{MalformedPolicy, Request, glob};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
    IpAddress,
    NotIpAddress,
    Bool,
}

impl Operator {
    /// The operator and whether it carries the `IfExists` suffix.
    fn parse(name: &str) -> Option<(Operator, bool)> {
        let (base, if_exists) = match name.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (name, false),
        };
        let op = match base {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "IpAddress" => Operator::IpAddress,
            "NotIpAddress" => Operator::NotIpAddress,
            "Bool" => Operator::Bool,
            _ => return None,
        };
        Some((op, if_exists))
    }

    /// Negated operators hold when the request value matches none of the policy's values.
    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals | Operator::StringNotLike | Operator::NotIpAddress
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    SourceIp,
    SecureTransport,
    Prefix,
}

impl Key {
    fn parse(name: &str) -> Option<Key> {
        [
            ("aws:SourceIp", Key::SourceIp),
            ("aws:SecureTransport", Key::SecureTransport),
            ("s3:prefix", Key::Prefix),
        ]
        .into_iter()
        .find_map(|(known, key)| known.eq_ignore_ascii_case(name).then_some(key))
    }

    /// Whether `op` makes sense for this key's type; a mismatch (say `StringEquals` on an IP)
    /// is almost certainly a mistake, so it is refused rather than left never matching.
    fn accepts(self, op: Operator) -> bool {
        match self {
            Key::SourceIp => matches!(op, Operator::IpAddress | Operator::NotIpAddress),
            Key::SecureTransport => op == Operator::Bool,
            Key::Prefix => matches!(
                op,
                Operator::StringEquals
                    | Operator::StringNotEquals
                    | Operator::StringLike
                    | Operator::StringNotLike
            ),
        }
    }
}

/// The values listed for one key, already in the form the operator compares with.
#[derive(Debug, Clone)]
enum Values {
    Strings(Vec<String>),
    Nets(Vec<IpNet>),
}

/// One `Operator: {Key: values}` test.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    op: Operator,
    if_exists: bool,
    key: Key,
    values: Values,
}

impl Condition {
    /// `StringLike {"s3:prefix": pattern}`, used to confine listings to a prefix.
    pub(crate) fn prefix_like(pattern: String) -> Condition {
        Condition {
            op: Operator::StringLike,
            if_exists: false,
            key: Key::Prefix,
            values: Values::Strings(vec![pattern]),
        }
    }

    /// Whether the condition holds for `req`.
    pub(crate) fn holds(&self, req: &Request<'_>) -> bool {
        // Some(any): the key is present and `any` says whether one of the values matched it.
        let secure = if req.secure_transport {
            "true"
        } else {
            "false"
        };
        let matched = match self.key {
            // An IPv4 client seen through a dual-stack socket must still match IPv4 CIDRs.
            Key::SourceIp => req.source_ip.map(|ip| self.matches_ip(ip.to_canonical())),
            Key::SecureTransport => Some(self.matches_str(secure)),
            Key::Prefix => req.prefix.map(|prefix| self.matches_str(prefix)),
        };
        match matched {
            None => self.if_exists || self.op.negated(),
            Some(any) => any != self.op.negated(),
        }
    }

    /// Whether the condition limits a statement to some clients, so that a wildcard principal
    /// does not make the policy public: an `IpAddress` test on `aws:SourceIp` that doesn't
    /// include a whole address family.
    pub(crate) fn restricts_public(&self) -> bool {
        match (&self.values, self.op) {
            (Values::Nets(nets), Operator::IpAddress) => {
                !nets.iter().any(|net| net.prefix_len() == 0)
            }
            _ => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match &self.values {
            Values::Nets(nets) => nets.iter().any(|net| net.contains(&ip)),
            Values::Strings(_) => false,
        }
    }

    fn matches_str(&self, actual: &str) -> bool {
        let Values::Strings(values) = &self.values else {
            return false;
        };
        match self.op {
            Operator::StringLike | Operator::StringNotLike => values
                .iter()
                .any(|pattern| glob::matches(pattern, actual, false)),
            Operator::Bool => values
                .iter()
                .any(|value| value.eq_ignore_ascii_case(actual)),
            _ => values.iter().any(|value| value == actual),
        }
    }
}

/// Parses a statement's `Condition` value.
pub(crate) fn parse(block: &Value) -> Result<Vec<Condition>, MalformedPolicy> {
    let Value::Object(operators) = block else {
        return Err(MalformedPolicy(
            "Policy has an invalid condition block".to_owned(),
        ));
    };
    let mut conditions = Vec::new();
    for (op_name, tests) in operators {
        let (op, if_exists) = Operator::parse(op_name).ok_or_else(|| {
            MalformedPolicy(format!(
                "Policy has an invalid condition operator: {op_name}"
            ))
        })?;
        let Value::Object(tests) = tests else {
            return Err(MalformedPolicy(format!(
                "Policy has an invalid condition block for operator: {op_name}"
            )));
        };
        for (key_name, raw) in tests {
            let key = Key::parse(key_name).ok_or_else(|| {
                MalformedPolicy(format!("Policy has an invalid condition key: {key_name}"))
            })?;
            if !key.accepts(op) {
                return Err(MalformedPolicy(format!(
                    "Condition operator {op_name} cannot be used with key {key_name}"
                )));
            }
            let strings = values(raw).ok_or_else(|| {
                MalformedPolicy(format!(
                    "Policy has an invalid condition value for key: {key_name}"
                ))
            })?;
            let values = if matches!(op, Operator::IpAddress | Operator::NotIpAddress) {
                Values::Nets(
                    strings
                        .iter()
                        .map(|s| parse_net(s))
                        .collect::<Result<_, _>>()?,
                )
            } else {
                Values::Strings(strings)
            };
            conditions.push(Condition {
                op,
                if_exists,
                key,
                values,
            });
        }
    }
    Ok(conditions)
}

/// A condition value: one scalar or a non-empty list of them; AWS compares them as strings.
fn values(raw: &Value) -> Option<Vec<String>> {
    match raw {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A CIDR, or a bare address meaning just that host (/32 or /128).
fn parse_net(s: &str) -> Result<IpNet, MalformedPolicy> {
    let net = if s.contains('/') {
        s.parse::<IpNet>().ok()
    } else {
        s.parse::<IpAddr>().ok().map(IpNet::from)
    };
    // Client addresses are compared as IPv4 when IPv4-mapped, so networks must be too.
    match net {
        Some(IpNet::V6(v6)) if v6.prefix_len() >= 96 && v6.addr().to_ipv4_mapped().is_some() => {
            let v4 = v6.addr().to_ipv4_mapped().expect("checked above");
            ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(|n| IpNet::V4(n.trunc()))
                .map_err(|_| MalformedPolicy("Invalid IP address in condition".to_owned()))
        }
        Some(net) => Ok(net),
        None => Err(MalformedPolicy(
            "Invalid IP address in condition".to_owned(),
        )),
    }
}
