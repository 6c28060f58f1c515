//! The start-up banner of `tessera serve`: endpoint, disks, erasure layout, metadata and
//! where the credentials came from, printed once the server is about to serve.

use crate::config::{CredentialSource, ServeConfig};
use crate::server::Opened;

/// `leads`: on etcd, whether this gateway runs the background jobs.
pub fn print(cfg: &ServeConfig, opened: &Opened, bound: std::net::SocketAddr, leads: bool) {
    let d = &opened.disks.deployment;
    println!(
        "tessera {} - S3-compatible object storage",
        env!("CARGO_PKG_VERSION")
    );
    match &cfg.tls {
        None => println!("  endpoint:    http://{bound}"),
        Some(certs) => {
            println!("  endpoint:    https://{bound}");
            let names = certs.names();
            println!(
                "  tls:         certificates from {}{} (reloaded when they change)",
                certs.dir().display(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(", by SNI also {}", names.join(", "))
                }
            );
        }
    }
    if cfg.console {
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        println!(
            "  console:     {scheme}://{bound}/console/ (log in with an access key and secret)"
        );
        if let Some(address) = cfg.console_address {
            println!("               and {scheme}://{address}/ (--console-address)");
        }
    }
    println!("  region:      {}", cfg.region);
    if !cfg.domains.is_empty() {
        println!(
            "  domains:     {} (virtual-host style: BUCKET.DOMAIN)",
            cfg.domains.join(", ")
        );
    }
    match &cfg.master_key {
        Some(key) => println!(
            "  encryption:  SSE-S3, SSE-KMS and SSE-C; master key {:?} (keep it: encrypted objects need it)",
            key.id()
        ),
        None => println!(
            "  encryption:  SSE-C only (no --kms-secret-key: SSE-S3 and SSE-KMS requests are refused)"
        ),
    }
    if let Some(key) = &cfg.previous_master_key {
        println!(
            "  rotation:    previous master key {:?} still opens what is sealed under it (run `tessera admin kms rotate-master`)",
            key.id()
        );
    }
    println!(
        "  compression: {}",
        if cfg.compression {
            "zstd where it pays (--compression off to store new data as it is)"
        } else {
            "off (what was stored compressed still reads)"
        }
    );
    for target in &cfg.notify_webhooks {
        // The URL without its token (never printed).
        println!(
            "  notify:      webhook {:?} -> {} (arn:tessera:sqs::{}:webhook)",
            target.name, target.url, target.name
        );
    }
    if cfg.lifecycle_day != objects::lifecycle::DAY {
        println!(
            "  WARNING: lifecycle days last {:?} (--lifecycle-day-secs, for tests only)",
            cfg.lifecycle_day
        );
    }
    if cfg.allow_insecure_sse_c {
        println!(
            "  WARNING: --allow-insecure-sse-c: SSE-C customer keys are accepted over plain HTTP, in clear on the network"
        );
    }
    if !cfg.trusted_proxies.is_empty() {
        println!(
            "  proxies:     client address and scheme from forwarding headers of {}",
            cfg.trusted_proxies
        );
    }
    let disks = &opened.disks;
    println!(
        "  disks:       {}{}{}",
        disks.slots.len(),
        if cfg.nodes.is_empty() {
            String::new()
        } else {
            format!(
                " ({} local, {} on {} node(s))",
                disks.local.len(),
                disks.slots.len() - disks.local.len(),
                cfg.nodes.len()
            )
        },
        if d.freshly_formatted {
            " (formatted now)"
        } else {
            ""
        }
    );
    for i in 0..disks.slots.len() {
        println!("    {:>3}. {}", i + 1, disks.location(i));
    }
    println!("  erasure:     {}", d.layout);
    for (_, why) in &d.offline {
        println!("  WARNING: disk offline, running degraded: {why}");
    }
    for &i in &d.adopted {
        println!(
            "  NOTICE:  adopted empty replacement disk {}; heal is refilling it",
            disks.location(i)
        );
    }
    println!("  deployment:  {}", opened.deployment_id);
    if cfg.etcd.is_empty() {
        println!(
            "  metadata:    {} mirrored replica(s): {}",
            opened.meta_replicas.len(),
            opened
                .meta_replicas
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        println!(
            "  metadata:    etcd {} (prefix {}); {}",
            cfg.etcd.join(","),
            cfg.etcd_prefix,
            if leads {
                "this gateway leads the background jobs"
            } else {
                "another gateway leads the background jobs"
            }
        );
    }
    match cfg.credentials.source {
        CredentialSource::Environment => {
            println!(
                "  credentials: access key {:?} from TESSERA_ROOT_USER / TESSERA_ROOT_PASSWORD",
                cfg.credentials.access_key
            )
        }
        CredentialSource::ConfigFile => {
            println!(
                "  credentials: access key {:?} from the config file (root_user / root_password)",
                cfg.credentials.access_key
            )
        }
        CredentialSource::Development => {
            println!(
                "  credentials: DEVELOPMENT DEFAULTS access key {:?} secret key {:?}",
                cfg.credentials.access_key, cfg.credentials.secret_key
            );
            println!("  WARNING: anyone who knows these defaults can read and write every bucket.");
            println!(
                "  WARNING: set TESSERA_ROOT_USER and TESSERA_ROOT_PASSWORD before exposing this server."
            );
        }
    }
}
