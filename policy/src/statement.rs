//! One policy statement in parsed form, and whether it applies to a principal and a request.

use crate::condition::Condition;
use crate::{Principal, Request, glob};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// A bucket-policy statement's `Principal`.
#[derive(Debug, Clone)]
pub(crate) enum Principals {
    /// `"*"` or `{"AWS": "*"}`: every user and anonymous requests.
    Everyone,
    /// `{"AWS": [user ARNs]}`, by user name.
    Users(Vec<String>),
}

/// `Action`/`NotAction` or `Resource`/`NotResource`.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    /// The `Not…` form: the statement covers everything the patterns don't match.
    pub(crate) negated: bool,
    pub(crate) list: Vec<String>,
}

impl Patterns {
    pub(crate) fn new(negated: bool, list: &[&str]) -> Patterns {
        Patterns {
            negated,
            list: list.iter().map(|&s| s.to_owned()).collect(),
        }
    }

    fn covers(&self, text: &str, ignore_case: bool) -> bool {
        self.list
            .iter()
            .any(|pattern| glob::matches(pattern, text, ignore_case))
            != self.negated
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    /// `None` in identity policies, whose statements apply to whoever holds the policy.
    pub(crate) principals: Option<Principals>,
    pub(crate) actions: Patterns,
    pub(crate) resources: Patterns,
    /// All must hold.
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    pub(crate) fn applies_to(&self, who: Principal<'_>) -> bool {
        match (&self.principals, who) {
            (None | Some(Principals::Everyone), _) => true,
            (Some(Principals::Users(names)), Principal::User(name)) => {
                names.iter().any(|n| n == name)
            }
            (Some(Principals::Users(_)), Principal::Anonymous) => false,
        }
    }

    /// Action, resource and conditions match `req` (the principal is checked separately).
    pub(crate) fn matches(&self, req: &Request<'_>) -> bool {
        // IAM action names are case-insensitive, resource ARNs (object keys) are not.
        self.actions.covers(req.action, true)
            && self.resources.covers(req.resource, false)
            && self.conditions.iter().all(|condition| condition.holds(req))
    }
}
