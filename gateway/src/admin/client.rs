//! `tessera admin ...`: SigV4-signed (aws-sigv4) calls to a running server's admin API, printed
//! as tables or JSON.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::ADMIN_PREFIX;
use crate::config::Credentials;

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
}

struct Client {
    endpoint: http::Uri,
    credentials: Credentials,
}

impl Client {
    async fn call(&self, method: &str, path_and_query: &str) -> Result<Value, String> {
        let authority = self
            .endpoint
            .authority()
            .ok_or_else(|| format!("endpoint {} has no host", self.endpoint))?
            .clone();
        let url = format!("http://{authority}{path_and_query}");
        let mut request = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(http::header::HOST, authority.as_str())
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;

        let identity: Identity = aws_credential_types::Credentials::new(
            &self.credentials.access_key,
            &self.credentials.secret_key,
            None,
            None,
            "tessera-admin",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            method,
            &url,
            [("host", authority.as_str())].into_iter(),
            SignableBody::Bytes(&[]),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);

        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((authority.host(), port))
            .await
            .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("admin request failed: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "server answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
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
    if endpoint.scheme_str() != Some("http") {
        return Err(format!(
            "endpoint {endpoint} must be an http:// URL (the admin client speaks plain HTTP)"
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
                    println!("{info:#}");
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
                        println!("{started:#}");
                    } else {
                        println!("heal pass requested");
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
                            println!("{p:#}");
                        } else {
                            println!("heal pass finished: {}", pass_line(&p));
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
                    println!("{report:#}");
                } else {
                    print_check(&report);
                }
                Ok(if check_left_problems(&report) { 2 } else { 0 })
            }
        }
    })
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn pass_line(p: &Value) -> String {
    format!(
        "{}/{} chunks checked, {} shards missing, {} corrupt, {} rewritten, {} chunks incomplete, {} unrecoverable, {} orphan shards removed",
        n(&p["chunks_checked"]),
        n(&p["chunks_total"]),
        n(&p["shards_missing"]),
        n(&p["shards_corrupt"]),
        n(&p["shards_rewritten"]),
        n(&p["chunks_incomplete"]),
        p["chunks_unrecoverable"].as_array().map_or(0, Vec::len),
        n(&p["orphan_shards_removed"]),
    )
}

fn print_info(info: &Value) {
    let l = &info["layout"];
    println!(
        "tessera {} up {} s, deployment {}",
        info["version"].as_str().unwrap_or("?"),
        n(&info["uptime_secs"]),
        info["deployment_id"].as_str().unwrap_or("?")
    );
    println!(
        "erasure: {} disks in {} set(s) of {}, EC {}+{}",
        n(&l["disks"]),
        n(&l["sets"]),
        n(&l["set_size"]),
        n(&l["data"]),
        n(&l["parity"])
    );
    println!();
    println!(
        "{:<5} {:<4} {:<8} {:>22}  PATH",
        "DISK", "SET", "STATE", "FREE / TOTAL"
    );
    for d in info["disks"].as_array().into_iter().flatten() {
        let space = match (&d["space"]["free"], &d["space"]["total"]) {
            (Value::Number(f), Value::Number(t)) => format!(
                "{} / {}",
                bytes(f.as_u64().unwrap_or(0)),
                bytes(t.as_u64().unwrap_or(0))
            ),
            _ => "-".into(),
        };
        println!(
            "{:<5} {:<4} {:<8} {:>22}  {}{}",
            n(&d["index"]) + 1,
            n(&d["set"]) + 1,
            d["state"].as_str().unwrap_or("?"),
            space,
            d["path"].as_str().unwrap_or("?"),
            d["reason"]
                .as_str()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        );
    }
    println!();
    let u = &info["usage"];
    println!(
        "objects: {} ({} versions) in {} buckets, {} logical",
        n(&u["objects"]),
        n(&u["versions"]),
        n(&u["buckets"]),
        bytes(n(&u["logical_bytes"]))
    );
    println!(
        "chunks:  {} holding {} before erasure coding, {} inline; dedup ratio {:.2}",
        n(&u["chunks"]),
        bytes(n(&u["chunk_bytes"])),
        bytes(n(&u["inline_bytes"])),
        info["dedup_ratio"].as_f64().unwrap_or(1.0)
    );
    let c = &info["counters"];
    println!(
        "shards:  {} corrupt found, {} missing found, {} healed, {} heal failures, {} read errors, {} write errors",
        n(&c["corrupt_found"]),
        n(&c["missing_found"]),
        n(&c["shards_healed"]),
        n(&c["heal_failures"]),
        n(&c["shard_read_errors"]),
        n(&c["shard_write_errors"])
    );
    let h = &info["heal"];
    println!(
        "heal:    {} chunks queued, {} healed from the queue; {} pass(es) finished{}",
        n(&h["queue"]),
        n(&h["queue_healed"]),
        n(&h["pass"]["passes_finished"]),
        if h["pass"]["running"].as_bool().unwrap_or(false) {
            ", one running"
        } else {
            ""
        }
    );
    if n(&h["pass"]["passes_finished"]) > 0 || h["pass"]["running"].as_bool().unwrap_or(false) {
        println!("         last pass: {}", pass_line(&h["pass"]));
    }
    println!(
        "metadata replicas: {}",
        info["metadata_replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn check_left_problems(r: &Value) -> bool {
    let s = &r["shards"];
    let repaired = r["repair"].as_bool().unwrap_or(false);
    let unrecoverable = s["chunks_unrecoverable"].as_array().map_or(0, Vec::len);
    if repaired {
        unrecoverable > 0 || n(&s["chunks_incomplete"]) > 0
    } else {
        !r["clean"].as_bool().unwrap_or(false)
    }
}

fn print_check(r: &Value) {
    let refs = &r["refcounts"];
    let repair = r["repair"].as_bool().unwrap_or(false);
    let mismatched = refs["mismatched"].as_array().map_or(0, Vec::len);
    println!(
        "refcounts: {} chunks referenced, {} recorded, {} mismatched{}",
        n(&refs["chunks_referenced"]),
        n(&refs["chunks_recorded"]),
        mismatched,
        if mismatched > 0 && refs["repaired"].as_bool().unwrap_or(false) {
            " (corrected)"
        } else {
            ""
        }
    );
    for m in refs["mismatched"].as_array().into_iter().flatten().take(20) {
        println!(
            "  chunk {}: recorded {}, counted {}",
            m["chunk"].as_str().unwrap_or("?"),
            m["recorded"]
                .as_u64()
                .map_or("none".to_string(), |v| v.to_string()),
            n(&m["counted"])
        );
    }
    println!("shards:    {}", pass_line(&r["shards"]));
    for c in r["shards"]["chunks_unrecoverable"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!("  UNRECOVERABLE chunk {}", c.as_str().unwrap_or("?"));
    }
    println!("heal queue: {} chunk(s) waiting", n(&r["heal_queue"]));
    if r["clean"].as_bool().unwrap_or(false) {
        println!("result: clean");
    } else if check_left_problems(r) {
        println!("result: PROBLEMS REMAIN");
    } else if repair {
        println!("result: problems found and repaired");
    } else {
        println!("result: problems found (run without --no-repair to repair)");
    }
}
