//! `tessera admin policy ...` and `tessera admin group ...`: named identity policies and
//! groups, through the admin API's `policies` and `groups` routes
//! (`gateway/src/admin/users.rs`). Parameters, the policy document included, travel in the
//! query string, so every signed body is empty.

use serde_json::Value;

use super::client::{Client, admin_path, show};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum PolicyCommand {
    /// Stores an AWS IAM policy document (JSON) under NAME, or replaces the one stored there.
    /// No Principal; resources are S3 ARNs or "*". Users and groups it is attached to get
    /// the change on their next request.
    Add {
        name: String,
        #[arg(value_name = "FILE.json")]
        file: std::path::PathBuf,
    },
    /// Lists the stored policies and who has them.
    List,
    /// Removes a policy; refused while a user or group has it attached.
    Remove { name: String },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum GroupCommand {
    /// Creates an empty group.
    Add {
        name: String,
    },
    /// Removes a group; its members lose what its policies gave them.
    Remove {
        name: String,
    },
    /// Lists the groups, their members and policies.
    List,
    AddUser {
        group: String,
        user: String,
    },
    RemoveUser {
        group: String,
        user: String,
    },
    /// Gives every member of the group what the named policy allows (and denies).
    AttachPolicy {
        group: String,
        policy: String,
    },
    DetachPolicy {
        group: String,
        policy: String,
    },
}

/// The strings of array `field` of `v`, comma-separated ("-" for none).
pub(super) fn joined(v: &Value, field: &str) -> String {
    let items: Vec<&str> = v[field]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

pub(super) async fn run_policy(
    client: &Client,
    json: bool,
    command: PolicyCommand,
) -> Result<i32, String> {
    let answer = match &command {
        PolicyCommand::Add { name, file } => {
            let document = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            client
                .call(
                    "POST",
                    &admin_path("policies", &[("name", name), ("document", &document)]),
                )
                .await?
        }
        PolicyCommand::List => client.call("GET", &admin_path("policies", &[])).await?,
        PolicyCommand::Remove { name } => {
            client
                .call("DELETE", &admin_path("policies", &[("name", name)]))
                .await?
        }
    };
    let listed = matches!(command, PolicyCommand::List);
    show(json, &answer, |answer| {
        if !listed {
            return out!("done");
        }
        out!("{:<24} {:<24} GROUPS", "NAME", "USERS");
        for p in answer["policies"].as_array().into_iter().flatten() {
            out!(
                "{:<24} {:<24} {}",
                p["name"].as_str().unwrap_or(""),
                joined(p, "users"),
                joined(p, "groups")
            );
        }
    });
    Ok(0)
}

pub(super) async fn run_group(
    client: &Client,
    json: bool,
    command: GroupCommand,
) -> Result<i32, String> {
    let (method, route, query): (&str, &str, Vec<(&str, &str)>) = match &command {
        GroupCommand::Add { name } => ("POST", "groups", vec![("name", name)]),
        GroupCommand::Remove { name } => ("DELETE", "groups", vec![("name", name)]),
        GroupCommand::List => ("GET", "groups", vec![]),
        GroupCommand::AddUser { group, user } => (
            "POST",
            "groups/members",
            vec![("name", group), ("user", user)],
        ),
        GroupCommand::RemoveUser { group, user } => (
            "DELETE",
            "groups/members",
            vec![("name", group), ("user", user)],
        ),
        GroupCommand::AttachPolicy { group, policy } => (
            "POST",
            "groups/policies",
            vec![("name", group), ("policy", policy)],
        ),
        GroupCommand::DetachPolicy { group, policy } => (
            "DELETE",
            "groups/policies",
            vec![("name", group), ("policy", policy)],
        ),
    };
    let answer = client.call(method, &admin_path(route, &query)).await?;
    let listed = matches!(command, GroupCommand::List);
    show(json, &answer, |answer| {
        if !listed {
            return out!("done");
        }
        out!("{:<24} {:<32} POLICIES", "NAME", "MEMBERS");
        for g in answer["groups"].as_array().into_iter().flatten() {
            out!(
                "{:<24} {:<32} {}",
                g["name"].as_str().unwrap_or(""),
                joined(g, "members"),
                joined(g, "policies")
            );
        }
    });
    Ok(0)
}
