//! `tessera admin user ...`: the commands that call the admin API's `users` routes
//! (`gateway/src/admin/users.rs`). Parameters travel in the query string, so every signed body
//! is empty.

use serde_json::Value;

use super::client::Client;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum UserCommand {
    /// Creates a user and prints its first access key and secret (shown only this once).
    Add {
        name: String,
        /// What the user may do: readwrite (everything), readonly (get and list),
        /// writeonly (upload), owner (a tenant: creates buckets and does anything to its own,
        /// nothing to others' unless their bucket policies grant it).
        #[arg(long, default_value = "readwrite")]
        policy: String,
        /// Limits the user to this bucket, or to BUCKET/PREFIX (repeatable). Without it the
        /// policy covers every bucket.
        #[arg(long = "bucket", value_name = "BUCKET[/PREFIX]")]
        buckets: Vec<String>,
    },
    /// Lists users, their policies and access keys (never secrets).
    List,
    /// Refuses the user's keys from the next request on, until `enable`.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Deletes the user and its keys; its buckets pass to the root user.
    Remove {
        name: String,
    },
    /// Access keys of a user: several may be active at once, for rotation.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Gives the user what a named policy (`tessera admin policy add`) allows and denies, on
    /// top of its built-in policy.
    AttachPolicy {
        name: String,
        policy: String,
    },
    DetachPolicy {
        name: String,
        policy: String,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeyCommand {
    /// Adds an access key to the user and prints it with its secret.
    Add { name: String },
    /// Removes one of the user's access keys, refused from the next request on.
    Remove { name: String, access_key: String },
}

fn print_new_key(v: &Value) {
    for field in ["name", "access_key", "secret_key", "policy"] {
        out!("{field}: {}", v[field].as_str().unwrap_or(""));
    }
    let buckets: Vec<&str> = v["buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out!(
        "buckets: {}",
        if buckets.is_empty() {
            "(all)".to_owned()
        } else {
            buckets.join(", ")
        }
    );
    eprintln!("The secret key is shown only now: store it safely.");
}

fn print_users(v: &Value) {
    out!(
        "{:<24} {:<9} {:<8} {:<24} {:<20} {:<20} ACCESS KEYS",
        "NAME",
        "POLICY",
        "ENABLED",
        "BUCKETS",
        "POLICIES",
        "GROUPS"
    );
    for u in v["users"].as_array().into_iter().flatten() {
        let list = |field: &str| {
            u[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        };
        let buckets = list("buckets");
        let or_dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
        out!(
            "{:<24} {:<9} {:<8} {:<24} {:<20} {:<20} {}",
            u["name"].as_str().unwrap_or(""),
            u["policy"].as_str().unwrap_or(""),
            if u["enabled"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            if buckets.is_empty() {
                "(all)".to_owned()
            } else {
                buckets
            },
            or_dash(list("policies")),
            or_dash(list("groups")),
            list("access_keys"),
        );
    }
}

pub(super) async fn run_user(
    client: &Client,
    json: bool,
    command: UserCommand,
) -> Result<i32, String> {
    let path =
        |op: &str, query: &[(&str, &str)]| super::client::admin_path(&format!("users{op}"), query);
    let (answer, new_key) = match &command {
        UserCommand::Add {
            name,
            policy,
            buckets,
        } => {
            let mut query = vec![("name", name.as_str()), ("policy", policy.as_str())];
            query.extend(buckets.iter().map(|b| ("bucket", b.as_str())));
            (client.call("POST", &path("", &query)).await?, true)
        }
        UserCommand::List => (client.call("GET", &path("", &[])).await?, false),
        UserCommand::Disable { name } => (
            client
                .call("POST", &path("/disable", &[("name", name)]))
                .await?,
            false,
        ),
        UserCommand::Enable { name } => (
            client
                .call("POST", &path("/enable", &[("name", name)]))
                .await?,
            false,
        ),
        UserCommand::Remove { name } => (
            client.call("DELETE", &path("", &[("name", name)])).await?,
            false,
        ),
        UserCommand::Key(KeyCommand::Add { name }) => (
            client
                .call("POST", &path("/keys", &[("name", name)]))
                .await?,
            true,
        ),
        UserCommand::AttachPolicy { name, policy } | UserCommand::DetachPolicy { name, policy } => {
            (
                client
                    .call(
                        if matches!(command, UserCommand::AttachPolicy { .. }) {
                            "POST"
                        } else {
                            "DELETE"
                        },
                        &path("/policies", &[("name", name), ("policy", policy)]),
                    )
                    .await?,
                false,
            )
        }
        UserCommand::Key(KeyCommand::Remove { name, access_key }) => (
            client
                .call(
                    "DELETE",
                    &path("/keys", &[("name", name), ("access_key", access_key)]),
                )
                .await?,
            false,
        ),
    };
    if json {
        out!("{answer:#}");
    } else if new_key {
        print_new_key(&answer);
    } else if matches!(command, UserCommand::List) {
        print_users(&answer);
    } else {
        out!("done");
    }
    Ok(0)
}
