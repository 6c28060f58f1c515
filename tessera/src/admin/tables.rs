//! How `tessera admin` prints the admin API's JSON answers as tables and summaries.

use serde_json::Value;

pub(super) fn n(v: &Value) -> u64 {
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

pub(super) fn pass_line(p: &Value) -> String {
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

/// The storage nodes, with their disks' space summed from the disk rows.
fn print_nodes(info: &Value) {
    let Some(nodes) = info["nodes"].as_array().filter(|n| !n.is_empty()) else {
        return;
    };
    let disks = info["disks"].as_array().cloned().unwrap_or_default();
    out!();
    out!(
        "{:<30} {:<8} {:>9} {:<8} {:>22}  NODE ID",
        "NODE",
        "STATE",
        "LATENCY",
        "DISKS",
        "FREE / TOTAL"
    );
    for node in nodes {
        let positions: Vec<usize> = node["positions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_u64().map(|p| p as usize))
            .collect();
        let (mut free, mut total) = (0, 0);
        for &p in &positions {
            if let Some(d) = disks.get(p) {
                free += n(&d["space"]["free"]);
                total += n(&d["space"]["total"]);
            }
        }
        let list: Vec<String> = positions.iter().map(|p| (p + 1).to_string()).collect();
        out!(
            "{:<30} {:<8} {:>9} {:<8} {:>22}  {}{}",
            node["url"].as_str().unwrap_or("?"),
            node["state"].as_str().unwrap_or("?"),
            node["latency_ms"]
                .as_f64()
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or_else(|| "-".into()),
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(",")
            },
            if total > 0 {
                format!("{} / {}", bytes(free), bytes(total))
            } else {
                "-".into()
            },
            node["node_id"].as_str().unwrap_or("-"),
            node["error"]
                .as_str()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        );
    }
}

pub(super) fn print_info(info: &Value) {
    let l = &info["layout"];
    out!(
        "tessera {} up {} s, deployment {}",
        info["version"].as_str().unwrap_or("?"),
        n(&info["uptime_secs"]),
        info["deployment_id"].as_str().unwrap_or("?")
    );
    out!(
        "erasure: {} disks in {} set(s) of {}, EC {}+{}",
        n(&l["disks"]),
        n(&l["sets"]),
        n(&l["set_size"]),
        n(&l["data"]),
        n(&l["parity"])
    );
    out!();
    out!(
        "{:<5} {:<4} {:<8} {:>22}  PATH",
        "DISK",
        "SET",
        "STATE",
        "FREE / TOTAL"
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
        out!(
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
    print_nodes(info);
    out!();
    let u = &info["usage"];
    out!(
        "objects: {} ({} versions) in {} buckets, {} logical",
        n(&u["objects"]),
        n(&u["versions"]),
        n(&u["buckets"]),
        bytes(n(&u["logical_bytes"]))
    );
    out!(
        "chunks:  {} holding {} of data, {} stored before erasure coding, {} inline; dedup ratio {:.2}, compression ratio {:.2}",
        n(&u["chunks"]),
        bytes(n(&u["chunk_data_bytes"])),
        bytes(n(&u["chunk_bytes"])),
        bytes(n(&u["inline_bytes"])),
        info["dedup_ratio"].as_f64().unwrap_or(1.0),
        info["compression_ratio"].as_f64().unwrap_or(1.0)
    );
    let c = &info["counters"];
    out!(
        "shards:  {} corrupt found, {} missing found, {} healed, {} heal failures, {} read errors, {} write errors",
        n(&c["corrupt_found"]),
        n(&c["missing_found"]),
        n(&c["shards_healed"]),
        n(&c["heal_failures"]),
        n(&c["shard_read_errors"]),
        n(&c["shard_write_errors"])
    );
    let h = &info["heal"];
    out!(
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
        out!("         last pass: {}", pass_line(&h["pass"]));
    }
    if info["pools"].as_array().is_some_and(|p| p.len() > 1) {
        out!("pools:");
        super::pools::print_pools(&info["pools"]);
    }
    if !info["rebalance"].is_null() {
        out!("moves:   {}", super::pools::job_line(&info["rebalance"]));
    }
    out!(
        "metadata replicas: {}",
        info["metadata_replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(gateways) = info["gateways"].as_array() {
        out!("gateways (etcd):");
        for g in gateways {
            let jobs: Vec<&str> = g["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out!(
                "  {:<8} {:<7} {:<28} {}{}{}",
                g["role"].as_str().unwrap_or("?"),
                if g["alive"].as_bool().unwrap_or(false) {
                    "alive"
                } else {
                    "gone"
                },
                g["url"].as_str().unwrap_or("-"),
                g["who"].as_str().unwrap_or("?"),
                if jobs.is_empty() {
                    String::new()
                } else {
                    format!("; runs {}", jobs.join(", "))
                },
                if g["this"].as_bool().unwrap_or(false) {
                    " (this one)"
                } else {
                    ""
                },
            );
        }
    }
    if let Some(e) = info["gateways_error"].as_str() {
        out!("gateways (etcd): cannot list them: {e}");
    }
}

pub(super) fn check_left_problems(r: &Value) -> bool {
    let s = &r["shards"];
    let repaired = r["repair"].as_bool().unwrap_or(false);
    let unrecoverable = s["chunks_unrecoverable"].as_array().map_or(0, Vec::len);
    let unreadable = r["encryption"]["unreadable"]
        .as_object()
        .is_some_and(|m| !m.is_empty());
    if repaired {
        unrecoverable > 0 || n(&s["chunks_incomplete"]) > 0 || unreadable
    } else {
        !r["clean"].as_bool().unwrap_or(false)
    }
}

pub(super) fn print_check(r: &Value) {
    let refs = &r["refcounts"];
    let repair = r["repair"].as_bool().unwrap_or(false);
    let mismatched = refs["mismatched"].as_array().map_or(0, Vec::len);
    out!(
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
        out!(
            "  chunk {}: recorded {}, counted {}",
            m["chunk"].as_str().unwrap_or("?"),
            m["recorded"]
                .as_u64()
                .map_or("none".to_string(), |v| v.to_string()),
            n(&m["counted"])
        );
    }
    out!("shards:    {}", pass_line(&r["shards"]));
    for c in r["shards"]["chunks_unrecoverable"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out!("  UNRECOVERABLE chunk {}", c.as_str().unwrap_or("?"));
    }
    out!("heal queue: {} chunk(s) waiting", n(&r["heal_queue"]));
    for (key, v) in r["refcounts"]["encrypted"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let unreadable = r["encryption"]["unreadable"].get(key).is_some();
        out!(
            "encrypted: {} version(s) under master key {key:?}{}",
            n(&v["versions"]),
            if unreadable {
                ": UNREADABLE, this server does not have that key"
            } else {
                ""
            }
        );
        if unreadable {
            for e in v["examples"].as_array().into_iter().flatten() {
                out!("  {}", e.as_str().unwrap_or("?"));
            }
        }
    }
    if r["clean"].as_bool().unwrap_or(false) {
        out!("result: clean");
    } else if check_left_problems(r) {
        out!("result: PROBLEMS REMAIN");
    } else if repair {
        out!("result: problems found and repaired");
    } else {
        out!("result: problems found (run without --no-repair to repair)");
    }
}

pub(super) fn print_locate(l: &Value) {
    out!(
        "{}/{}  version {}  {}  etag {}",
        l["bucket"].as_str().unwrap_or("?"),
        l["key"].as_str().unwrap_or("?"),
        l["version_id"].as_str().unwrap_or("null"),
        bytes(n(&l["size"])),
        l["etag"].as_str().unwrap_or("?")
    );
    let chunks = l["chunks"].as_array().map_or(&[][..], Vec::as_slice);
    if l["inline"].as_bool().unwrap_or(false) {
        out!("stored inline in the metadata (mirrored on the metadata replicas), no shards");
        return;
    }
    out!(
        "{} chunk(s), each in {}+{} shards",
        chunks.len(),
        n(&l["data_shards"]),
        n(&l["parity_shards"])
    );
    out!();
    out!(
        "{:<6} {:>12} {:>9}  {:<16} {:<6} {:<6} {:<5} {:<10} {:<8} PATH",
        "CHUNK",
        "OFFSET",
        "LENGTH",
        "SHA256",
        "SHARD",
        "KIND",
        "DISK",
        "DISK-STATE",
        "STATUS"
    );
    let mut damaged = 0;
    for (i, c) in chunks.iter().enumerate() {
        let hash = c["sha256"].as_str().unwrap_or("?");
        for (j, s) in c["shards"].as_array().into_iter().flatten().enumerate() {
            let status = s["status"].as_str().unwrap_or("?");
            if status != "ok" {
                damaged += 1;
            }
            let (chunk, offset, length, hash) = if j == 0 {
                (
                    (i + 1).to_string(),
                    n(&c["offset"]).to_string(),
                    n(&c["length"]).to_string(),
                    hash.get(..16).unwrap_or(hash),
                )
            } else {
                (String::new(), String::new(), String::new(), "")
            };
            out!(
                "{:<6} {:>12} {:>9}  {:<16} {:<6} {:<6} {:<5} {:<10} {:<8} {}",
                chunk,
                offset,
                length,
                hash,
                n(&s["index"]),
                if s["parity"].as_bool().unwrap_or(false) {
                    "parity"
                } else {
                    "data"
                },
                n(&s["disk"]) + 1,
                s["disk_state"].as_str().unwrap_or("?"),
                status,
                s["path"].as_str().unwrap_or("?")
            );
        }
    }
    out!();
    if damaged == 0 {
        out!("every shard present and verified");
    } else {
        out!("{damaged} shard(s) not ok; `tessera admin heal` rebuilds them from the others");
    }
}
