//! Garage as a peer: a single-node Garage (replication factor 1, LMDB) started from its
//! binary on loopback, with `data_fsync` and `metadata_fsync` on (`garage`) or off
//! (`garage-nosync`; Garage's own default), its layout applied and a key made that may
//! create buckets. As `../shared/peers/garage.sh` does, in the bench itself so that one run
//! can start, measure and stop it like the other servers.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started Garage: its process and the key the benchmark uses.
pub struct Started {
    pub child: Child,
    pub access_key: String,
    pub secret_key: String,
}

/// The configuration of a single-node Garage under `dir`, serving S3 on `port`.
fn config(dir: &Path, port: u16, (rpc, admin): (u16, u16), fsync: bool) -> String {
    let secret: String = (0..32)
        .map(|i| format!("{:02x}", (port as usize * 31 + i * 17) % 256))
        .collect();
    format!(
        r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
metadata_fsync = {fsync}
data_fsync = {fsync}
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{port}"
[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "tessera-bench-garage-admin"
"#,
        meta = dir.join("meta").display(),
        data = dir.join("data").display(),
    )
}

/// Runs `garage -c CONFIG ARGS` and returns its standard output.
fn cli(bin: &Path, conf: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(conf)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "garage {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first word of `text` that starts with `prefix` and has `len` characters, all of
/// `prefix` or hex digits after it (Garage prints key ids as `GK` + 24 hex, secrets as 64 hex).
fn find_token(text: &str, prefix: &str, len: usize) -> Option<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| {
            w.len() == len
                && w.starts_with(prefix)
                && w[prefix.len()..].chars().all(|c| c.is_ascii_hexdigit())
        })
        .map(str::to_owned)
}

/// Starts Garage under `dir` (made empty by the caller) with S3 on `port`; `log` receives
/// its output. Returns once its layout is applied and the key exists.
pub fn start(
    bin: &Path,
    dir: &Path,
    (port, rpc, admin): (u16, u16, u16),
    fsync: bool,
    log: &Path,
) -> Result<Started, String> {
    for sub in ["meta", "data"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let conf = dir.join("garage.toml");
    std::fs::write(&conf, config(dir, port, (rpc, admin), fsync)).map_err(|e| e.to_string())?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .arg("server")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    match set_up(bin, &conf, &mut child, log) {
        Ok((access_key, secret_key)) => Ok(Started {
            child,
            access_key,
            secret_key,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Waits for the started Garage, applies a one-node layout, and makes the key: (id, secret).
fn set_up(
    bin: &Path,
    conf: &Path,
    child: &mut Child,
    log: &Path,
) -> Result<(String, String), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while cli(bin, conf, &["status"]).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "garage exited with {status}; see {}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err("garage did not answer `status` within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let id = cli(bin, conf, &["node", "id", "-q"])?;
    let node = id.trim().split('@').next().unwrap_or_default().to_owned();
    cli(
        bin,
        conf,
        &["layout", "assign", "-z", "dc1", "-c", "100G", &node],
    )?;
    cli(bin, conf, &["layout", "apply", "--version", "1"])?;
    let created = cli(bin, conf, &["key", "create", "tessera-bench"])?;
    let access_key = find_token(&created, "GK", 26)
        .ok_or_else(|| format!("no key id in garage's answer: {created}"))?;
    let secret_key = find_token(&created, "", 64)
        .ok_or_else(|| "no secret key in garage's answer".to_owned())?;
    cli(bin, conf, &["key", "allow", "--create-bucket", &access_key])?;
    Ok((access_key, secret_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_garages_answer() {
        let answer = "Key name: tessera-bench\nKey ID: GK31c2f218a2e44f485b94239e\nSecret key: b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835\n";
        assert_eq!(
            find_token(answer, "GK", 26).as_deref(),
            Some("GK31c2f218a2e44f485b94239e")
        );
        assert_eq!(
            find_token(answer, "", 64).as_deref(),
            Some("b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835")
        );
        assert_eq!(find_token("nothing here", "GK", 26), None);
    }

    #[test]
    fn the_configuration_syncs_when_asked() {
        let c = config(Path::new("/w"), 3900, (3901, 3903), true);
        assert!(c.contains("data_fsync = true") && c.contains("metadata_fsync = true"));
        assert!(c.contains("api_bind_addr = \"127.0.0.1:3900\""));
        assert!(c.contains("replication_factor = 1") && c.contains("db_engine = \"lmdb\""));
        let c = config(Path::new("/w"), 3900, (3901, 3903), false);
        assert!(c.contains("data_fsync = false"));
    }
}
