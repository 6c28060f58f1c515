//! The server's configuration: flags, environment variables and an optional TOML file, merged
//! once at start into one typed [`ServeConfig`]. Ranges in disk and node arguments
//! (`/data{1...4}`) expand in [`crate::ellipsis`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use crate::ellipsis::expand_ellipsis;

/// Development credentials used when `TESSERA_ROOT_USER` / `TESSERA_ROOT_PASSWORD` are unset.
pub const DEV_ACCESS_KEY: &str = "tesseraadmin";
pub const DEV_SECRET_KEY: &str = "tesseraadmin";
pub const CHUNK_SIZE: usize = 1 << 20;
/// Objects up to this size are stored in the metadata, not as chunks.
pub const INLINE_MAX: usize = 128 * 1024;
/// The same on etcd, whose few GiB are the cluster's object count: there a 4 KiB inline object
/// costs ~12 KB of etcd, a chunked one ~1 KB (BENCHMARKS.md, "Metadata in etcd").
pub const INLINE_MAX_ETCD: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Environment,
    ConfigFile,
    Development,
}

/// The root credentials. The secret is redacted in `Debug` output and zeroized on drop.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: SecretString,
    pub source: CredentialSource,
}

impl Credentials {
    /// Root credentials from the environment, or the development pair when both are unset.
    pub fn from_env_values(
        user: Option<String>,
        password: Option<SecretString>,
    ) -> Result<Self, String> {
        match (user, password) {
            (Some(u), Some(p)) => {
                if u.len() < 3 {
                    return Err("the root user (TESSERA_ROOT_USER, root_user) must be at least 3 characters".into());
                }
                if p.expose_secret().len() < 8 {
                    return Err("the root password (TESSERA_ROOT_PASSWORD, root_password) must be at least 8 characters".into());
                }
                Ok(Credentials {
                    access_key: u,
                    secret_key: p,
                    source: CredentialSource::Environment,
                })
            }
            (None, None) => Ok(Credentials {
                access_key: DEV_ACCESS_KEY.into(),
                secret_key: SecretString::from(DEV_SECRET_KEY),
                source: CredentialSource::Development,
            }),
            _ => Err("set both the root user and password (TESSERA_ROOT_USER and TESSERA_ROOT_PASSWORD, or root_user and root_password in the config file), or neither".into()),
        }
    }
}

/// The running server's configuration: one typed struct, read once at start from the flags,
/// the environment and the `--config` file (in that order of precedence), then the defaults.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub address: SocketAddr,
    pub disks: Vec<PathBuf>,
    pub parity: Option<usize>,
    pub credentials: Credentials,
    /// How long an unreferenced chunk is kept before its shards are deleted.
    pub gc_grace: Duration,
    /// Multipart uploads older than this are aborted.
    pub multipart_expiry: Duration,
    /// The length of a lifecycle day (a real day; tests shorten it).
    pub lifecycle_day: Duration,
    pub region: String,
    /// Domains under which `bucket.<domain>` addresses a bucket (virtual-host style).
    pub domains: Vec<String>,
    /// The background scanner's schedule and bandwidth.
    pub scan: objects::ScanSchedule,
    /// How often the disk monitor probes every disk.
    pub disk_check_interval: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    pub log_format: LogFormat,
    /// Storage nodes (`http://host:port`, ranges expanded) whose disks follow the local ones.
    pub nodes: Vec<String>,
    /// The metadata directory of a gateway without local disks.
    pub meta_dir: Option<PathBuf>,
    /// etcd endpoints: the metadata lives there instead of on the disks, and the gateways
    /// given the same ones and prefix form one cluster (all serve; one leads the background jobs).
    pub etcd: Vec<String>,
    /// The cluster's key prefix in etcd.
    pub etcd_prefix: String,
    /// How the other gateways reach this one's S3 port (they pass admin requests on to the
    /// leader there); None: derived from the bound address.
    pub advertise_url: Option<String>,
    /// Signs the traffic with the nodes; set when there are nodes.
    pub cluster_secret: Option<SecretString>,
    /// TESSERA_PREVIOUS_ROOT_PASSWORD: after a root password change, opens the users' data
    /// key once so it is re-sealed under the new one.
    pub previous_root_password: Option<SecretString>,
    /// Networks of load balancers whose forwarding headers name the client.
    pub trusted_proxies: gateway::client::TrustedProxies,
    /// Serve HTTPS with the certificates of `--certs-dir` (read at start: a bad file is a
    /// start-up error naming it).
    pub tls: Option<Arc<gateway::tls::CertsDir>>,
    /// The CAs trusted for https nodes and gateways, instead of the system's.
    pub node_ca: Option<PathBuf>,
    /// Take SSE-C keys over plain HTTP.
    pub allow_insecure_sse_c: bool,
    /// Compress chunks where it pays.
    pub compression: bool,
    /// Serve the web console at `/console/`.
    pub console: bool,
    /// A second port for the console (serving S3 as well), if any.
    pub console_address: Option<SocketAddr>,
    /// Failed authentications an address may have a minute (0: no limit).
    pub auth_failure_limit: u32,
    /// Serve the newest metadata replicas present even when the data disks record newer ones.
    pub accept_stale_metadata: bool,
    /// Webhook targets of bucket notifications.
    pub notify_webhooks: Vec<gateway::notify::WebhookTarget>,
    /// The most event notifications the queue keeps.
    pub notify_queue_limit: u64,
    /// The master key of SSE-S3 and the key store (none: encryption requests are refused).
    pub master_key: Option<std::sync::Arc<objects::sse::ChunkCipher>>,
    /// The master key before a rotation: still opens what is sealed under it.
    pub previous_master_key: Option<std::sync::Arc<objects::sse::ChunkCipher>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `tessera serve`'s flags. Every setting is optional here so that a value given neither as a
/// flag nor in the environment can come from the config file; the defaults are applied last,
/// in [`ServeArgs::resolve`].
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with `_` for `-`, and
    /// `disks`, `root_user`, `root_password`); flags and environment variables override it.
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:9000].
    #[arg(long, env = "TESSERA_ADDRESS")]
    pub address: Option<SocketAddr>,
    /// Parity shards per erasure set [default by set size: 1 disk 0, 2-3 1, 4-5 2, 6-7 3, 8+ 4].
    #[arg(long, env = "TESSERA_PARITY")]
    pub parity: Option<usize>,
    /// Seconds an unreferenced chunk is kept before its shards are deleted [default: 600].
    #[arg(long, env = "TESSERA_GC_GRACE_SECS")]
    pub gc_grace_secs: Option<u64>,
    /// Seconds after which an unfinished multipart upload is aborted [default: 604800, 7 days].
    #[arg(long, env = "TESSERA_MULTIPART_EXPIRY_SECS")]
    pub multipart_expiry_secs: Option<u64>,
    /// Seconds in a lifecycle day, for tests of lifecycle rules: a rule's Days count in these,
    /// and rules are applied every 1/24 of one (at least every second) [default: 86400].
    #[arg(long, env = "TESSERA_LIFECYCLE_DAY_SECS")]
    pub lifecycle_day_secs: Option<u64>,
    /// Region reported to clients [default: us-east-1].
    #[arg(long, env = "TESSERA_REGION")]
    pub region: Option<String>,
    /// Serve virtual-host-style requests for `BUCKET.DOMAIN` (repeatable, or comma-separated in
    /// TESSERA_DOMAINS); path-style requests keep working.
    #[arg(
        long = "domain",
        value_name = "DOMAIN",
        env = "TESSERA_DOMAINS",
        value_delimiter = ','
    )]
    pub domains: Option<Vec<String>>,
    /// Seconds the scanner rests between scheduled passes over every shard (0: only on
    /// demand); each pass paces itself to finish within 6 days [default: 3600].
    #[arg(long, env = "TESSERA_SCAN_INTERVAL_SECS")]
    pub scan_interval_secs: Option<u64>,
    /// Shard bytes per second a scheduled scanner pass may read, in MiB (0: unlimited)
    /// [default: 64].
    #[arg(long, env = "TESSERA_SCAN_BANDWIDTH_MIB")]
    pub scan_bandwidth_mib: Option<u64>,
    /// Seconds between probes of every disk (missing, returned, replaced, faulty) [default: 5].
    #[arg(long, env = "TESSERA_DISK_CHECK_SECS")]
    pub disk_check_secs: Option<u64>,
    /// Seconds a shutdown (SIGTERM, SIGINT) waits for requests in flight [default: 30].
    #[arg(long, env = "TESSERA_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Require `Authorization: Bearer TOKEN` on `/metrics` [default: open].
    #[arg(long, env = "TESSERA_METRICS_TOKEN", hide_env_values = true, value_parser = secret_arg)]
    pub metrics_token: Option<SecretString>,
    /// A storage node (`tessera node`) whose disks join the deployment after the local ones
    /// (repeatable, or comma-separated in TESSERA_NODES). Ranges: http://10.0.0.{1...6}:9100.
    #[arg(
        long = "node",
        value_name = "URL",
        env = "TESSERA_NODES",
        value_delimiter = ','
    )]
    pub nodes: Option<Vec<String>>,
    /// Where a gateway without local disks keeps its metadata (RocksDB); with local disks the
    /// metadata is mirrored on them instead.
    #[arg(long, env = "TESSERA_META_DIR", value_name = "DIR")]
    pub meta_dir: Option<PathBuf>,
    /// Keep the metadata in etcd (repeatable, or comma-separated in TESSERA_ETCD):
    /// http://10.0.0.1:2379. Gateways given the same etcd and prefix share one deployment;
    /// all of them serve, and one leads the background jobs (another takes over when it stops).
    #[arg(
        long = "etcd",
        value_name = "URL",
        env = "TESSERA_ETCD",
        value_delimiter = ','
    )]
    pub etcd: Option<Vec<String>>,
    /// The key prefix of this cluster in etcd [default: /tessera/default/].
    #[arg(long, env = "TESSERA_ETCD_PREFIX", value_name = "PREFIX")]
    pub etcd_prefix: Option<String>,
    /// With --etcd: the URL at which the other gateways reach this one (they pass admin
    /// requests on to the leader, and starting gateways S3 requests) [default: http://ADDRESS, with the address that
    /// reaches etcd when listening on all interfaces].
    #[arg(long, env = "TESSERA_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// A load balancer's network or address (repeatable, or comma-separated in
    /// TESSERA_TRUSTED_PROXIES): for requests from it, the client's address and scheme come
    /// from `Forwarded` or `X-Forwarded-For` and `X-Forwarded-Proto` [default: none].
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "TESSERA_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// A webhook target of bucket notifications, NAME=URL[,auth_token=TOKEN], addressed in
    /// notification configurations as arn:tessera:sqs::NAME:webhook (repeatable, or
    /// ;-separated in TESSERA_NOTIFY_WEBHOOKS) [default: none].
    #[arg(
        long = "notify-webhook",
        value_name = "NAME=URL",
        env = "TESSERA_NOTIFY_WEBHOOKS",
        hide_env_values = true,
        value_delimiter = ';'
    )]
    pub notify_webhooks: Option<Vec<String>>,
    /// The most event notifications kept waiting for delivery; past it the oldest are
    /// dropped (and counted) [default: 10000].
    #[arg(long, env = "TESSERA_NOTIFY_QUEUE_LIMIT")]
    pub notify_queue_limit: Option<u64>,
    /// Serve HTTPS with `public.crt` and `private.key` of DIR (plus one subdirectory per
    /// further domain, chosen by SNI), reloaded when they change [default: plain HTTP].
    #[arg(long, env = "TESSERA_CERTS_DIR", value_name = "DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Trust the CA certificates of FILE (PEM) for https:// nodes and gateways, instead of
    /// the system's.
    #[arg(long, env = "TESSERA_NODE_CA", value_name = "FILE")]
    pub node_ca: Option<PathBuf>,
    /// Accept SSE-C customer keys over plain HTTP (AWS refuses them with 400): for loopback
    /// tests only, since the keys then cross the network in clear.
    #[arg(long, env = "TESSERA_ALLOW_INSECURE_SSE_C")]
    pub allow_insecure_sse_c: bool,
    /// Compress new chunks with zstd where it pays (data compressed already is skipped by
    /// name, content type and a quick trial). What was stored compressed is read either way
    /// [default: on].
    #[arg(long, env = "TESSERA_COMPRESSION", value_enum)]
    pub compression: Option<OnOff>,
    /// Serve the web console at /console/ on the S3 port [default: on].
    #[arg(long, env = "TESSERA_CONSOLE", value_enum)]
    pub console: Option<OnOff>,
    /// Also serve the console on this address, at / (the port serves S3 too, so share links
    /// made there work) [default: the S3 port only].
    #[arg(long, env = "TESSERA_CONSOLE_ADDRESS", value_name = "HOST:PORT")]
    pub console_address: Option<SocketAddr>,
    /// Failed authentications (bad signature or access key) a client address may have a
    /// minute; past that its signed requests get 503 SlowDown until the budget refills
    /// (0: no limit) [default: 60].
    #[arg(long, env = "TESSERA_AUTH_FAILURE_LIMIT", value_name = "N")]
    pub auth_failure_limit: Option<u32>,
    /// Start even though the data disks record newer metadata than the replicas present
    /// (their disks are lost): serve the older state, losing the writes after it. For one
    /// start after a disaster; without it such a start is refused, naming the missing disks.
    #[arg(long, env = "TESSERA_ACCEPT_STALE_METADATA")]
    pub accept_stale_metadata: bool,
    /// The master key of server-side encryption (SSE-S3), as NAME:BASE64 of 32 random bytes
    /// (`openssl rand -base64 32`). Never stored: keep it safe, objects encrypted under it
    /// cannot be read without it [default: none, encryption requests are refused].
    #[arg(long, env = "TESSERA_KMS_SECRET_KEY", hide_env_values = true, value_parser = secret_arg)]
    pub kms_secret_key: Option<SecretString>,
    /// A file holding the master key (NAME:BASE64), instead of --kms-secret-key.
    #[arg(long, env = "TESSERA_KMS_SECRET_KEY_FILE", value_name = "FILE")]
    pub kms_secret_key_file: Option<PathBuf>,
    /// The master key being rotated away from (NAME:BASE64): still opens what is sealed under
    /// it, until `tessera admin kms rotate-master` has re-sealed the key store [default: none].
    #[arg(long, env = "TESSERA_KMS_PREVIOUS_SECRET_KEY", hide_env_values = true, value_parser = secret_arg)]
    pub kms_previous_secret_key: Option<SecretString>,
    /// A file holding the previous master key, instead of --kms-previous-secret-key.
    #[arg(
        long,
        env = "TESSERA_KMS_PREVIOUS_SECRET_KEY_FILE",
        value_name = "FILE"
    )]
    pub kms_previous_secret_key_file: Option<PathBuf>,
    /// Data directories, one per disk (or `disks` in the config file). Ranges: /data{1...4}.
    #[arg(value_name = "DIR")]
    pub dirs: Vec<String>,
}

/// The `--config` file. The keys mirror the flags; a key this struct does not know is an
/// error naming it, so a typo never silently falls back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub address: Option<SocketAddr>,
    pub disks: Option<Vec<String>>,
    pub parity: Option<usize>,
    pub gc_grace_secs: Option<u64>,
    pub multipart_expiry_secs: Option<u64>,
    pub lifecycle_day_secs: Option<u64>,
    pub region: Option<String>,
    pub domains: Option<Vec<String>>,
    pub scan_interval_secs: Option<u64>,
    pub scan_bandwidth_mib: Option<u64>,
    pub disk_check_secs: Option<u64>,
    pub shutdown_timeout_secs: Option<u64>,
    pub metrics_token: Option<SecretString>,
    pub root_user: Option<String>,
    pub root_password: Option<SecretString>,
    pub log_format: Option<LogFormat>,
    pub nodes: Option<Vec<String>>,
    pub meta_dir: Option<PathBuf>,
    pub cluster_secret: Option<SecretString>,
    pub etcd: Option<Vec<String>>,
    pub etcd_prefix: Option<String>,
    pub advertise_url: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub notify_webhooks: Option<Vec<String>>,
    pub notify_queue_limit: Option<u64>,
    pub certs_dir: Option<PathBuf>,
    pub node_ca: Option<PathBuf>,
    pub allow_insecure_sse_c: Option<bool>,
    pub compression: Option<OnOff>,
    pub console: Option<OnOff>,
    pub console_address: Option<SocketAddr>,
    pub auth_failure_limit: Option<u32>,
    pub accept_stale_metadata: Option<bool>,
    pub kms_secret_key: Option<SecretString>,
    pub kms_secret_key_file: Option<PathBuf>,
    pub kms_previous_secret_key: Option<SecretString>,
    pub kms_previous_secret_key_file: Option<PathBuf>,
}

impl FileConfig {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }
}

/// Values that come from the process environment outside clap: the root credentials (never
/// flags, so they do not show in `ps`) and the log format given to the global flag.
#[derive(Debug, Default)]
pub struct EnvSettings {
    pub root_user: Option<String>,
    pub root_password: Option<SecretString>,
    /// `--log-format` or TESSERA_LOG_FORMAT, when either was given.
    pub log_format: Option<LogFormat>,
    /// TESSERA_CLUSTER_SECRET: signs gateway-node traffic.
    pub cluster_secret: Option<SecretString>,
    pub previous_root_password: Option<SecretString>,
}

/// A secret flag's value, kept as a [`SecretString`] from the moment it is parsed.
fn secret_arg(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value))
}

/// A secret that is empty or blank counts as not given.
fn given_secret(v: Option<SecretString>) -> Option<SecretString> {
    v.filter(|s| !s.expose_secret().trim().is_empty())
}

impl ServeArgs {
    /// Merges flags and environment (already in `self` and `env`) over the config file over
    /// the defaults, and checks the result.
    pub fn resolve(mut self, file: FileConfig, env: EnvSettings) -> Result<ServeConfig, String> {
        // An empty flag or variable (`TESSERA_METRICS_TOKEN=`) counts as not given, so it
        // cannot silently replace the file's value (and, for the token, open the metrics).
        let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        self.region = given(self.region);
        self.metrics_token = given_secret(self.metrics_token);
        let given_list = |v: Option<Vec<String>>| {
            v.map(|l| {
                l.into_iter()
                    .filter(|s| !s.trim().is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|l| !l.is_empty())
        };
        self.domains = given_list(self.domains);
        let dir_args = if self.dirs.is_empty() {
            file.disks.unwrap_or_default()
        } else {
            self.dirs
        };
        let node_args = given_list(self.nodes).or(file.nodes).unwrap_or_default();
        let mut nodes = Vec::new();
        for n in &node_args {
            for url in expand_ellipsis(n.trim())? {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(format!(
                        "node {url:?}: expected http://HOST:PORT or https://HOST:PORT"
                    ));
                }
                let url = url.trim_end_matches('/').to_owned();
                if nodes.contains(&url) {
                    return Err(format!("node {url} is given more than once"));
                }
                nodes.push(url);
            }
        }
        let mut etcd = Vec::new();
        for url in given_list(self.etcd).or(file.etcd).unwrap_or_default() {
            let url = url.trim().trim_end_matches('/').to_owned();
            if !url.starts_with("http://") {
                return Err(format!("etcd endpoint {url:?}: expected http://HOST:PORT"));
            }
            etcd.push(url);
        }
        let etcd_prefix = given(self.etcd_prefix)
            .or(file.etcd_prefix)
            .unwrap_or_else(|| "/tessera/default/".into());
        if !etcd_prefix.starts_with('/') || !etcd_prefix.ends_with('/') || etcd_prefix.len() < 3 {
            return Err(format!(
                "etcd prefix {etcd_prefix:?}: give a path that starts and ends with /, like /tessera/prod/"
            ));
        }
        // With etcd, the storage nodes may come from there (the first gateway records them).
        if dir_args.is_empty() && nodes.is_empty() && etcd.is_empty() {
            return Err(
                "no data directories: give DIR arguments or `disks` in the config file, or --node"
                    .into(),
            );
        }
        let advertise_url = given(self.advertise_url)
            .or(file.advertise_url)
            .map(|u| u.trim().trim_end_matches('/').to_owned());
        if let Some(url) = &advertise_url {
            let ok = url.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.authority().is_some()
                    && u.path() == "/"
            });
            if !ok {
                return Err(format!(
                    "advertise URL {url:?}: expected http://HOST:PORT or https://HOST:PORT"
                ));
            }
        }
        let trusted_proxies = gateway::client::TrustedProxies::parse(
            &given_list(self.trusted_proxies)
                .or(file.trusted_proxies)
                .unwrap_or_default(),
        )?;
        let notify_webhooks = given_list(self.notify_webhooks)
            .or(file.notify_webhooks)
            .unwrap_or_default()
            .iter()
            .map(|spec| gateway::notify::WebhookTarget::parse(spec))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match self.certs_dir.or(file.certs_dir) {
            Some(dir) => Some(gateway::tls::CertsDir::open(&dir)?),
            None => None,
        };
        let node_ca = self.node_ca.or(file.node_ca);
        let meta_dir = self.meta_dir.or(file.meta_dir);
        match (&meta_dir, dir_args.is_empty(), etcd.is_empty()) {
            (Some(_), _, false) => {
                return Err(
                    "--meta-dir and --etcd exclude each other: with --etcd the metadata is in etcd"
                        .into(),
                );
            }
            (None, true, true) => {
                return Err(
                    "a gateway without local disks needs --meta-dir DIR (or --etcd) for its metadata"
                        .into(),
                );
            }
            (Some(_), false, true) => {
                return Err("--meta-dir is for gateways without local disks; with local disks the metadata is mirrored on them".into());
            }
            _ => {}
        }
        let cluster_secret = given_secret(env.cluster_secret).or(file.cluster_secret);
        if !nodes.is_empty()
            && cluster_secret
                .as_ref()
                .is_none_or(|s| s.expose_secret().len() < 16)
        {
            return Err("storage nodes need TESSERA_CLUSTER_SECRET (or cluster_secret in the config file), at least 16 characters, the same on every node".into());
        }
        let mut disks = Vec::new();
        for d in &dir_args {
            disks.extend(expand_ellipsis(d)?.into_iter().map(PathBuf::from));
        }
        let mut seen = std::collections::HashSet::new();
        for d in &disks {
            if !seen.insert(d) {
                return Err(format!("{} is given more than once", d.display()));
            }
        }
        // Each credential is taken whole from one place, so a user from the environment is
        // never paired with a password from the file.
        let from_env = env.root_user.is_some() || env.root_password.is_some();
        let mut credentials = if from_env {
            Credentials::from_env_values(env.root_user, env.root_password)?
        } else {
            Credentials::from_env_values(file.root_user, file.root_password)?
        };
        if !from_env && credentials.source == CredentialSource::Environment {
            credentials.source = CredentialSource::ConfigFile;
        }
        let secs = |flag: Option<u64>, file: Option<u64>, default: u64| {
            Duration::from_secs(flag.or(file).unwrap_or(default))
        };
        let scan_interval = self
            .scan_interval_secs
            .or(file.scan_interval_secs)
            .unwrap_or(3600);
        let metrics_token = given_secret(self.metrics_token.or(file.metrics_token));
        let master_key = parse_master_key(
            "--kms-secret-key",
            given_secret(self.kms_secret_key).or_else(|| given_secret(file.kms_secret_key)),
            self.kms_secret_key_file.or(file.kms_secret_key_file),
        )?;
        let previous_master_key = parse_master_key(
            "--kms-previous-secret-key",
            given_secret(self.kms_previous_secret_key)
                .or_else(|| given_secret(file.kms_previous_secret_key)),
            self.kms_previous_secret_key_file
                .or(file.kms_previous_secret_key_file),
        )?;
        match (&master_key, &previous_master_key) {
            (None, Some(_)) => {
                return Err(
                    "--kms-previous-secret-key needs --kms-secret-key: the key rotated to".into(),
                );
            }
            (Some(k), Some(p)) if k.id() == p.id() => {
                return Err(format!(
                    "the previous master key has the current one's name {:?}: give the new key another name",
                    k.id()
                ));
            }
            _ => {}
        }
        let console = self.console.or(file.console) != Some(OnOff::Off);
        let console_address = self.console_address.or(file.console_address);
        if !console && console_address.is_some() {
            return Err("--console-address needs the console on (not --console off)".into());
        }
        Ok(ServeConfig {
            address: self
                .address
                .or(file.address)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 9000))),
            disks,
            parity: self.parity.or(file.parity),
            credentials,
            gc_grace: secs(self.gc_grace_secs, file.gc_grace_secs, 600),
            multipart_expiry: secs(
                self.multipart_expiry_secs,
                file.multipart_expiry_secs,
                7 * 24 * 3600,
            ),
            lifecycle_day: secs(self.lifecycle_day_secs, file.lifecycle_day_secs, 24 * 3600)
                .max(Duration::from_secs(1)),
            region: self
                .region
                .or(file.region)
                .unwrap_or_else(|| "us-east-1".into()),
            domains: self.domains.or(file.domains).unwrap_or_default(),
            scan: objects::ScanSchedule {
                interval: (scan_interval > 0).then(|| Duration::from_secs(scan_interval)),
                bytes_per_sec: self
                    .scan_bandwidth_mib
                    .or(file.scan_bandwidth_mib)
                    .unwrap_or(64)
                    << 20,
            },
            disk_check_interval: secs(self.disk_check_secs, file.disk_check_secs, 5)
                .max(Duration::from_secs(1)),
            shutdown_timeout: secs(self.shutdown_timeout_secs, file.shutdown_timeout_secs, 30),
            metrics_token,
            log_format: env.log_format.or(file.log_format).unwrap_or_default(),
            nodes,
            meta_dir,
            etcd,
            etcd_prefix,
            advertise_url,
            cluster_secret,
            previous_root_password: given_secret(env.previous_root_password),
            trusted_proxies,
            tls,
            node_ca,
            allow_insecure_sse_c: self.allow_insecure_sse_c
                || file.allow_insecure_sse_c.unwrap_or(false),
            compression: self.compression.or(file.compression) != Some(OnOff::Off),
            console,
            console_address,
            auth_failure_limit: self
                .auth_failure_limit
                .or(file.auth_failure_limit)
                .unwrap_or(60),
            accept_stale_metadata: self.accept_stale_metadata
                || file.accept_stale_metadata.unwrap_or(false),
            master_key,
            previous_master_key,
            notify_webhooks,
            notify_queue_limit: self
                .notify_queue_limit
                .or(file.notify_queue_limit)
                .unwrap_or(10_000)
                .max(1),
        })
    }
}

/// A master key, given inline (`flag`) or in a file (not both).
fn parse_master_key(
    flag: &str,
    inline: Option<SecretString>,
    file: Option<PathBuf>,
) -> Result<Option<std::sync::Arc<objects::sse::ChunkCipher>>, String> {
    let spec = match (inline, file) {
        (Some(_), Some(f)) => {
            return Err(format!(
                "the master key is given twice: inline ({flag}) and in {}",
                f.display()
            ));
        }
        (Some(k), None) => k,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map(SecretString::from)
            .map_err(|e| format!("cannot read the master key file {}: {e}", f.display()))?,
        (None, None) => return Ok(None),
    };
    objects::sse::ChunkCipher::parse(spec.expose_secret())
        .map(|k| Some(std::sync::Arc::new(k)))
        .map_err(|e| format!("{flag}: {e}"))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
