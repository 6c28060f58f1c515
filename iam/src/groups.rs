//! Named identity policies and groups: `tessera admin policy ...`, `group ...` and
//! `user attach-policy|detach-policy`.
//!
//! A user's effective identity policy is the union of its built-in policy, the named policies
//! attached to it and those of every group it belongs to: an explicit Deny in any of them wins,
//! else an Allow in any of them allows (as AWS combines a user's policies).
//!
//! Groups name their members by user id, not name: a user removed and re-created under the
//! same name is a new user and inherits no membership (as bucket policies, which name users by
//! name, are checked for when a name is reused).

use std::collections::BTreeMap;

use metastore::{GroupRecord, IamRecord, UserRecord};
use policy::Policy;
use serde::Serialize;

use crate::{Error, UserResult, Users, check_name, now_ms};

/// A named policy as `policy list` shows it.
#[derive(Debug, Serialize)]
pub struct PolicySummary {
    pub name: String,
    pub document: serde_json::Value,
    /// Users it is attached to directly.
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// A group as `group list` shows it.
#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub name: String,
    /// Member names (members removed since are left out).
    pub members: Vec<String>,
    pub policies: Vec<String>,
}

/// The stored named policies, parsed. One that no longer parses (written by a later version)
/// is left out and logged: it grants nothing, and its Deny statements cannot apply either, so
/// an operator must look at it.
pub(crate) fn parse_named(iam: &IamRecord) -> BTreeMap<String, Policy> {
    let mut out = BTreeMap::new();
    for (name, text) in &iam.policies {
        match Policy::parse_identity_policy(text) {
            Ok(p) => {
                out.insert(name.clone(), p);
            }
            Err(e) => tracing::error!(policy = %name, "stored policy does not parse: {}", e.0),
        }
    }
    out
}

/// `builtin` joined by the user's own named policies and its groups' ones.
pub(crate) fn effective_policy(
    builtin: Policy,
    user: &UserRecord,
    iam: &IamRecord,
    named: &BTreeMap<String, Policy>,
) -> Policy {
    let mut names: Vec<&String> = user.policies.iter().collect();
    for group in iam.groups.values() {
        if group.members.contains(&user.id) {
            names.extend(group.policies.iter());
        }
    }
    if names.is_empty() {
        return builtin;
    }
    let extra: Vec<&Policy> = names.into_iter().filter_map(|n| named.get(n)).collect();
    Policy::union(std::iter::once(&builtin).chain(extra))
}

/// The names of the groups the user with id `user_id` belongs to.
pub(crate) fn groups_of(iam: &IamRecord, user_id: &str) -> Vec<String> {
    iam.groups
        .iter()
        .filter(|(_, g)| g.members.iter().any(|m| m == user_id))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Puts `item` in `list` (`present`) or takes it out; adding twice is a no-op, removing what is
/// not there is `Err(())` (the caller says what was missing).
fn set_member(list: &mut Vec<String>, item: &str, present: bool) -> Result<(), ()> {
    let has = list.iter().any(|x| x == item);
    match (present, has) {
        (true, false) => list.push(item.to_owned()),
        (false, true) => list.retain(|x| x != item),
        (false, false) => return Err(()),
        (true, true) => {}
    }
    Ok(())
}

/// Why a change made inside a metadata transaction was refused: the closure records its own
/// error here and aborts the transaction with [`metastore::Error::Refused`].
#[derive(Clone, Default)]
struct Refusal(std::sync::Arc<std::sync::Mutex<Option<Error>>>);

impl Refusal {
    fn refuse(&self, e: Error) -> metastore::Error {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        metastore::Error::Refused
    }

    /// The error to report for `e`, the transaction's outcome.
    fn explain(&self, e: metastore::Error) -> Error {
        match (e, self.0.lock().unwrap_or_else(|p| p.into_inner()).take()) {
            (metastore::Error::Refused, Some(why)) => why,
            (e, _) => e.into(),
        }
    }
}

fn no_policy(name: &str) -> Error {
    Error::NoSuchEntity(format!("no policy named {name:?}"))
}

fn no_group(name: &str) -> Error {
    Error::NoSuchEntity(format!("no group named {name:?}"))
}

fn user_id(users: &[(String, UserRecord)], name: &str) -> Result<String, Error> {
    users
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, u)| u.id.clone())
        .ok_or_else(|| Error::NoSuchUser(name.to_owned()))
}

impl Users {
    /// Applies `change` to the policies and groups (nothing when it refuses) and rebuilds the
    /// directory.
    async fn change_iam(
        &self,
        change: impl Fn(&mut IamRecord, &[(String, UserRecord)]) -> Result<(), Error>
        + Send
        + Sync
        + 'static,
    ) -> UserResult<IamRecord> {
        let mut loaded = self.changes.lock().await;
        let refusal = Refusal::default();
        let inside = refusal.clone();
        let record = self
            .meta
            .update_iam(move |iam, users| change(iam, users).map_err(|e| inside.refuse(e)))
            .await
            .map_err(|e| refusal.explain(e))?;
        self.reload_into(&mut loaded).await?;
        Ok(record)
    }

    /// Stores (or replaces) the named identity policy `name`, validated first.
    pub async fn put_policy(&self, name: &str, document: &str) -> UserResult<()> {
        check_name(name).map_err(|_| {
            Error::InvalidArgument(format!(
                "invalid policy name {name:?}: 1-64 characters of A-Z a-z 0-9 + = , . @ _ -"
            ))
        })?;
        if policy::Builtin::parse(name).is_some() {
            return Err(Error::InvalidArgument(format!(
                "{name:?} is a built-in policy; give yours another name"
            )));
        }
        Policy::parse_identity_policy(document).map_err(|e| Error::MalformedPolicy(e.0))?;
        let (name_owned, text) = (name.to_owned(), document.to_owned());
        self.change_iam(move |iam, _| {
            iam.policies.insert(name_owned.clone(), text.clone());
            Ok(())
        })
        .await?;
        tracing::info!(policy = %name, "identity policy stored");
        Ok(())
    }

    /// Removes a named policy; refused while a user or group has it attached.
    pub async fn remove_policy(&self, name: &str) -> UserResult<()> {
        let name_owned = name.to_owned();
        self.change_iam(move |iam, users| {
            let name = &name_owned;
            if !iam.policies.contains_key(name) {
                return Err(no_policy(name));
            }
            let mut holders: Vec<String> = users
                .iter()
                .filter(|(_, u)| u.policies.contains(name))
                .map(|(n, _)| format!("user {n}"))
                .collect();
            holders.extend(
                iam.groups
                    .iter()
                    .filter(|(_, g)| g.policies.contains(name))
                    .map(|(n, _)| format!("group {n}")),
            );
            if !holders.is_empty() {
                return Err(Error::InUse(format!(
                    "policy {name:?} is attached to {}; detach it first",
                    holders.join(", ")
                )));
            }
            iam.policies.remove(name);
            Ok(())
        })
        .await?;
        tracing::info!(policy = %name, "identity policy removed");
        Ok(())
    }

    pub async fn list_policies(&self) -> UserResult<Vec<PolicySummary>> {
        let users = self.meta.list_users().await?;
        let iam = self.meta.iam_record().await?;
        Ok(iam
            .policies
            .iter()
            .map(|(name, text)| PolicySummary {
                name: name.clone(),
                document: serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
                users: users
                    .iter()
                    .filter(|(_, u)| u.policies.contains(name))
                    .map(|(n, _)| n.clone())
                    .collect(),
                groups: iam
                    .groups
                    .iter()
                    .filter(|(_, g)| g.policies.contains(name))
                    .map(|(n, _)| n.clone())
                    .collect(),
            })
            .collect())
    }

    /// Attaches (or with `attach` false, detaches) the named policy `policy` to user `user`.
    pub async fn attach_user_policy(
        &self,
        user: &str,
        policy: &str,
        attach: bool,
    ) -> UserResult<()> {
        let known = self.meta.iam_record().await?.policies.contains_key(policy);
        if attach && !known {
            return Err(Error::NoSuchEntity(format!("no policy named {policy:?}")));
        }
        let p = policy.to_owned();
        let refusal = Refusal::default();
        let inside = refusal.clone();
        let who = user.to_owned();
        self.update(user, move |u| {
            set_member(&mut u.policies, &p, attach).map_err(|()| {
                inside.refuse(Error::NoSuchEntity(format!(
                    "policy {p:?} is not attached to user {who:?}"
                )))
            })
        })
        .await
        .map_err(|e| match e {
            Error::Meta(m) => refusal.explain(m),
            e => e,
        })?;
        // The policy may have been removed between the check and the update: the user then
        // names a policy that grants nothing, and `policy list` no longer shows it.
        tracing::info!(user = %user, policy = %policy, attach, "user policy changed");
        Ok(())
    }

    pub async fn add_group(&self, name: &str) -> UserResult<()> {
        check_name(name).map_err(|_| {
            Error::InvalidArgument(format!(
                "invalid group name {name:?}: 1-64 characters of A-Z a-z 0-9 + = , . @ _ -"
            ))
        })?;
        let n = name.to_owned();
        self.change_iam(move |iam, _| {
            if iam.groups.contains_key(&n) {
                return Err(Error::EntityExists(format!(
                    "a group named {n:?} exists already"
                )));
            }
            iam.groups.insert(
                n.clone(),
                GroupRecord {
                    created_ms: now_ms(),
                    ..GroupRecord::default()
                },
            );
            Ok(())
        })
        .await?;
        tracing::info!(group = %name, "group added");
        Ok(())
    }

    /// Removes a group; its members lose what its policies gave them.
    pub async fn remove_group(&self, name: &str) -> UserResult<()> {
        let n = name.to_owned();
        self.change_iam(move |iam, _| {
            iam.groups
                .remove(&n)
                .map(|_| ())
                .ok_or_else(|| no_group(&n))
        })
        .await?;
        tracing::info!(group = %name, "group removed");
        Ok(())
    }

    /// Adds (`add`) or removes user `user` to or from group `group`.
    pub async fn group_member(&self, group: &str, user: &str, add: bool) -> UserResult<()> {
        let (g, u) = (group.to_owned(), user.to_owned());
        self.change_iam(move |iam, users| {
            let id = user_id(users, &u)?;
            let record = iam.groups.get_mut(&g).ok_or_else(|| no_group(&g))?;
            set_member(&mut record.members, &id, add).map_err(|()| {
                Error::NoSuchEntity(format!("user {u:?} is not a member of group {g:?}"))
            })
        })
        .await?;
        tracing::info!(group = %group, user = %user, add, "group membership changed");
        Ok(())
    }

    /// Attaches (`attach`) or detaches the named policy `policy` to or from group `group`.
    pub async fn group_policy(&self, group: &str, policy: &str, attach: bool) -> UserResult<()> {
        let (g, p) = (group.to_owned(), policy.to_owned());
        self.change_iam(move |iam, _| {
            if attach && !iam.policies.contains_key(&p) {
                return Err(no_policy(&p));
            }
            let record = iam.groups.get_mut(&g).ok_or_else(|| no_group(&g))?;
            set_member(&mut record.policies, &p, attach).map_err(|()| {
                Error::NoSuchEntity(format!("policy {p:?} is not attached to group {g:?}"))
            })
        })
        .await?;
        tracing::info!(group = %group, policy = %policy, attach, "group policy changed");
        Ok(())
    }

    pub async fn list_groups(&self) -> UserResult<Vec<GroupSummary>> {
        let users = self.meta.list_users().await?;
        let iam = self.meta.iam_record().await?;
        let name_of = |id: &String| {
            users
                .iter()
                .find(|(_, u)| &u.id == id)
                .map(|(n, _)| n.clone())
        };
        Ok(iam
            .groups
            .iter()
            .map(|(name, g)| GroupSummary {
                name: name.clone(),
                members: g.members.iter().filter_map(name_of).collect(),
                policies: g.policies.clone(),
            })
            .collect())
    }
}
