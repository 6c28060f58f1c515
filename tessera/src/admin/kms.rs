//! `tessera admin kms ...`: the built-in key store of SSE-KMS, through the admin API's `kms`
//! routes (`gateway/src/admin/kms.rs`).

use serde_json::Value;

use super::client::{Client, admin_path, show};
use super::groups::joined;

fn state(key: &Value) -> &'static str {
    if key["enabled"].as_bool() == Some(true) {
        "enabled"
    } else {
        "disabled"
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum KmsCommand {
    /// The key store's keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Re-seals every key sealed under the previous master key (--kms-previous-secret-key)
    /// under the current one. No object data is rewritten. Afterwards the server no longer
    /// needs the previous key for anything sealed through the key store.
    RotateMaster,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeyCommand {
    /// Makes a key (32 random bytes, stored sealed under the master key). Clients name it in
    /// `x-amz-server-side-encryption-aws-kms-key-id`.
    Create {
        name: String,
    },
    /// Lists the keys: name, state, and the master key each is sealed under.
    List,
    /// Stops a key: objects under it can be neither written nor read until it is enabled.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
}

pub(super) async fn run_kms(
    client: &Client,
    json: bool,
    command: KmsCommand,
) -> Result<i32, String> {
    let answer = match &command {
        KmsCommand::Key(KeyCommand::Create { name }) => {
            client
                .call("POST", &admin_path("kms/keys", &[("name", name)]))
                .await?
        }
        KmsCommand::Key(KeyCommand::List) => {
            client.call("GET", &admin_path("kms/keys", &[])).await?
        }
        KmsCommand::Key(KeyCommand::Disable { name }) => {
            client
                .call("POST", &admin_path("kms/keys/disable", &[("name", name)]))
                .await?
        }
        KmsCommand::Key(KeyCommand::Enable { name }) => {
            client
                .call("POST", &admin_path("kms/keys/enable", &[("name", name)]))
                .await?
        }
        KmsCommand::RotateMaster => {
            client
                .call("POST", &admin_path("kms/rotate-master", &[]))
                .await?
        }
    };
    let mut code = 0;
    if let KmsCommand::RotateMaster = command
        && answer["unopenable"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    {
        // Some keys stay sealed under a master key this server lacks.
        code = 2;
    }
    show(json, &answer, |answer| match &command {
        KmsCommand::Key(KeyCommand::List) => {
            out!("{:<32} {:<9} MASTER KEY", "NAME", "STATE");
            for k in answer["keys"].as_array().into_iter().flatten() {
                out!(
                    "{:<32} {:<9} {}",
                    k["name"].as_str().unwrap_or(""),
                    state(k),
                    k["master_key_id"].as_str().unwrap_or("")
                );
            }
        }
        KmsCommand::RotateMaster => {
            let names = |field: &str| joined(answer, field);
            out!(
                "master key: {}",
                answer["master_key_id"].as_str().unwrap_or("")
            );
            out!("re-sealed:  {}", names("resealed"));
            out!("unchanged:  {}", names("unchanged"));
            out!(
                "unopenable: {} (sealed under a master key this server does not have)",
                names("unopenable")
            );
        }
        _ => out!(
            "{} {}",
            answer["name"].as_str().unwrap_or(""),
            state(answer)
        ),
    });
    Ok(code)
}
