//! `tessera admin ...`: SigV4-signed (aws-sigv4) calls to a running server's admin API, printed
//! as tables or JSON.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioExecutor;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::tables::{check_left_problems, pass_line, print_check, print_info, print_locate};
use crate::config::Credentials;
use gateway::admin::ADMIN_PREFIX;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Disks and their state, erasure layout, usage, dedup ratio, shard counters, heal state.
    Info,
    /// Starts a full heal pass (verify every shard, rebuild what is missing or corrupt) and
    /// shows its progress until it ends.
    Heal {
        /// Start the pass and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Verifies manifests, reference counts and shards against each other and repairs what
    /// it can. Exits 0 when nothing is left wrong, 2 otherwise.
    Check {
        /// Report only; change nothing.
        #[arg(long)]
        no_repair: bool,
    },
    /// Shows which disk holds each shard of each chunk of an object, reading and verifying
    /// every shard (missing and corrupt ones are marked).
    Locate {
        /// The object, as BUCKET/KEY.
        #[arg(value_name = "BUCKET/KEY")]
        object: String,
        /// A version other than the current one.
        #[arg(long)]
        version_id: Option<String>,
    },
    /// Users and their access keys.
    #[command(subcommand)]
    User(super::users::UserCommand),
    /// Named identity policies (AWS IAM JSON) to attach to users and groups.
    #[command(subcommand)]
    Policy(super::groups::PolicyCommand),
    /// The key store of SSE-KMS, and master-key rotation.
    #[command(subcommand)]
    Kms(super::kms::KmsCommand),
    /// Groups of users: members get the union of their own and the group's policies.
    #[command(subcommand)]
    Group(super::groups::GroupCommand),
    /// Pools of disks: list them, or add one to the running deployment.
    #[command(subcommand)]
    Pool(super::pools::PoolCommand),
    /// Moves chunks between pools until every pool is about as full as the others.
    #[command(subcommand)]
    Rebalance(super::pools::RebalanceCommand),
    /// Drains a pool, then retires it: `decommission POOL`, `decommission status`,
    /// `decommission cancel` (returns the pool to service).
    Decommission {
        #[arg(value_name = "POOL|status|cancel")]
        target: String,
        /// At most this many MiB of chunks moved per second (default: unthrottled).
        #[arg(long)]
        bandwidth_mib: Option<u64>,
    },
}

/// Query-string encoding for SigV4: everything but the unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(super) fn query_value(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, QUERY_VALUE).to_string()
}

/// `ADMIN_PREFIX` + `route` + the query.
pub(super) fn admin_path(route: &str, query: &[(&str, &str)]) -> String {
    let mut p = format!("{ADMIN_PREFIX}{route}");
    for (i, (k, v)) in query.iter().enumerate() {
        p.push(if i == 0 { '?' } else { '&' });
        p.push_str(&format!("{k}={}", query_value(v)));
    }
    p
}

/// Prints an admin answer: raw JSON with `--json`, else as `table` lays it out.
pub(super) fn show(json: bool, v: &Value, table: impl Fn(&Value)) {
    if json {
        out!("{v:#}");
    } else {
        table(v);
    }
}

/// Sends `request` (its URI the path and query) to `endpoint` (`http://` or `https://`,
/// trusting [`cluster::tls::client_config`]'s CAs); answers the status and body.
pub(crate) async fn exchange(
    endpoint: &http::Uri,
    mut request: http::Request<Empty<bytes::Bytes>>,
) -> Result<(http::StatusCode, bytes::Bytes), String> {
    let authority = endpoint
        .authority()
        .ok_or_else(|| format!("endpoint {endpoint} has no host"))?;
    let scheme = endpoint.scheme_str().unwrap_or("http");
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| format!("invalid endpoint {endpoint}: {e}"))?;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(cluster::tls::connector(Duration::from_secs(5)));
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("request to {authority} failed: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// An error with its causes (hyper's own message is only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) struct Client {
    endpoint: http::Uri,
    credentials: Credentials,
}

impl Client {
    pub(super) async fn call(&self, method: &str, path_and_query: &str) -> Result<Value, String> {
        let authority = self
            .endpoint
            .authority()
            .ok_or_else(|| format!("endpoint {} has no host", self.endpoint))?
            .clone();
        let url = format!(
            "{}://{authority}{path_and_query}",
            self.endpoint.scheme_str().unwrap_or("http")
        );
        let mut request = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(http::header::HOST, authority.as_str())
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;

        cluster::signing::sign_request(
            &mut request,
            &url,
            authority.as_str(),
            &self.credentials.access_key,
            self.credentials.secret_key.expose_secret(),
            cluster::signing::Payload::Sha256(&[]),
        )?;

        let (status, body) = exchange(&self.endpoint, request).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            // S3 errors: say the code and message rather than dumping the XML.
            let element = |name: &str| {
                let open = format!("<{name}>");
                let start = text.find(&open)? + open.len();
                let end = start + text[start..].find(&format!("</{name}>"))?;
                Some(text[start..end].to_string())
            };
            return Err(match (element("Code"), element("Message")) {
                (Some(code), Some(message)) => {
                    format!("server answered {status}: {code}: {message}")
                }
                _ => format!("server answered {status}: {}", text.trim()),
            });
        }
        serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))
    }
}

/// Runs one admin command against `endpoint`. Returns the process exit code.
pub fn run_admin(
    endpoint: &str,
    credentials: Credentials,
    json: bool,
    command: AdminCommand,
) -> Result<i32, String> {
    let endpoint: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?;
    if !matches!(endpoint.scheme_str(), Some("http" | "https")) {
        return Err(format!(
            "endpoint {endpoint} must be an http:// or https:// URL"
        ));
    }
    let client = Client {
        endpoint,
        credentials,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let path = |op: &str| format!("{ADMIN_PREFIX}{op}");
        match command {
            AdminCommand::Info => {
                let info = client.call("GET", &path("info")).await?;
                if json {
                    out!("{info:#}");
                } else {
                    print_info(&info);
                }
                Ok(0)
            }
            AdminCommand::Heal { no_wait } => {
                let started = client.call("POST", &path("heal")).await?;
                let target = started["wait_for_passes"].as_u64().unwrap_or(1);
                if no_wait {
                    if json {
                        out!("{started:#}");
                    } else {
                        out!("heal pass requested");
                    }
                    return Ok(0);
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let p = client.call("GET", &path("heal")).await?;
                    let done = p["passes_finished"].as_u64().unwrap_or(0) >= target
                        && !p["running"].as_bool().unwrap_or(false);
                    if done {
                        if json {
                            out!("{p:#}");
                        } else {
                            out!("heal pass finished: {}", pass_line(&p));
                        }
                        let bad = p["chunks_unrecoverable"].as_array().map_or(0, Vec::len);
                        return Ok(if bad == 0 { 0 } else { 2 });
                    }
                    if !json && p["running"].as_bool().unwrap_or(false) {
                        eprintln!("healing: {}", pass_line(&p));
                    }
                }
            }
            AdminCommand::Check { no_repair } => {
                let report = client
                    .call("POST", &format!("{}?repair={}", path("check"), !no_repair))
                    .await?;
                if json {
                    out!("{report:#}");
                } else {
                    print_check(&report);
                }
                Ok(if check_left_problems(&report) { 2 } else { 0 })
            }
            AdminCommand::Locate { object, version_id } => {
                let Some((bucket, key)) = object
                    .split_once('/')
                    .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                else {
                    return Err(format!("{object:?} is not BUCKET/KEY"));
                };
                let mut query = format!(
                    "{}?bucket={}&key={}",
                    path("locate"),
                    query_value(bucket),
                    query_value(key)
                );
                if let Some(v) = version_id {
                    query.push_str(&format!("&versionId={}", query_value(&v)));
                }
                let located = client.call("GET", &query).await?;
                if json {
                    out!("{located:#}");
                } else {
                    print_locate(&located);
                }
                Ok(0)
            }
            AdminCommand::User(command) => super::users::run_user(&client, json, command).await,
            AdminCommand::Policy(command) => {
                super::groups::run_policy(&client, json, command).await
            }
            AdminCommand::Group(command) => super::groups::run_group(&client, json, command).await,
            AdminCommand::Kms(command) => super::kms::run_kms(&client, json, command).await,
            AdminCommand::Pool(command) => super::pools::run_pool(&client, json, command).await,
            AdminCommand::Rebalance(command) => {
                super::pools::run_rebalance(&client, json, command).await
            }
            AdminCommand::Decommission {
                target,
                bandwidth_mib,
            } => super::pools::run_decommission(&client, json, &target, bandwidth_mib).await,
        }
    })
}
