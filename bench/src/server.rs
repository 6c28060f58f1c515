//! The servers under test: a `tessera` (on local disks, or a gateway over `tessera node`
//! processes), a single-node Garage or `s3s-fs` the benchmark starts itself (on fresh
//! directories under the work dir, so it can read their peak RSS and bytes on disk), or any
//! running S3 endpoint.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "benchadmin";
pub const SECRET_KEY: &str = "benchadmin-secret";

#[derive(Debug, Clone)]
pub enum Target {
    Tessera {
        bin: PathBuf,
        disks: usize,
    },
    /// A gateway over `nodes` storage nodes of one disk each, all on loopback.
    TesseraNodes {
        bin: PathBuf,
        nodes: usize,
    },
    S3sFs {
        bin: PathBuf,
    },
    /// A single-node Garage (RF 1, LMDB), with data and metadata fsync on or off.
    Garage {
        bin: PathBuf,
        fsync: bool,
    },
    Endpoint {
        url: String,
    },
}

impl Target {
    /// `tessera`, `tessera:N` (N disks), `tessera-nodes:N` (N nodes), `s3s-fs`, `garage`
    /// (fsync on), `garage-nosync`, or an `http://` or `https://` URL. `bins`: the binaries
    /// of tessera, s3s-fs and Garage.
    pub fn parse(spec: &str, bins: (&Path, &Path, &Path)) -> Result<Self, String> {
        let (tessera_bin, s3s_fs_bin, garage_bin) = bins;
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Ok(Target::Endpoint { url: spec.into() });
        }
        match spec.split_once(':') {
            None if spec == "tessera" => Ok(Target::Tessera {
                bin: tessera_bin.into(),
                disks: 4,
            }),
            Some(("tessera", n)) => Ok(Target::Tessera {
                bin: tessera_bin.into(),
                disks: n
                    .parse()
                    .map_err(|_| format!("bad disk count in {spec:?}"))?,
            }),
            Some(("tessera-nodes", n)) => Ok(Target::TesseraNodes {
                bin: tessera_bin.into(),
                nodes: n
                    .parse()
                    .map_err(|_| format!("bad node count in {spec:?}"))?,
            }),
            None if spec == "s3s-fs" => Ok(Target::S3sFs {
                bin: s3s_fs_bin.into(),
            }),
            None if spec == "garage" || spec == "garage-nosync" => Ok(Target::Garage {
                bin: garage_bin.into(),
                fsync: spec == "garage",
            }),
            _ => Err(format!(
                "unknown target {spec:?}: use tessera, tessera:DISKS, tessera-nodes:NODES, s3s-fs, garage, garage-nosync or http(s)://HOST:PORT"
            )),
        }
    }
}

pub struct Server {
    pub name: String,
    pub url: String,
    target: Target,
    child: Option<Child>,
    /// Storage node processes (`tessera-nodes`), with their ports.
    nodes: Vec<(Option<Child>, u16)>,
    port: u16,
    pub dirs: Vec<PathBuf>,
    log: PathBuf,
    /// Variables given to a tessera server besides the bench's own (`TESSERA_COMPRESSION`).
    env: Vec<(String, String)>,
    /// The key the benchmark signs with (Garage makes its own).
    pub access_key: String,
    pub secret_key: String,
}

/// `tessera admin` for one server (blocking: call it off the async workers while load runs).
#[derive(Debug, Clone)]
pub struct Admin {
    bin: PathBuf,
    url: String,
}

impl Admin {
    /// `tessera admin --json ARGS`, as root: its JSON answer.
    pub fn run(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let out = Command::new(&self.bin)
            .arg("admin")
            .args(["--endpoint", &self.url, "--json"])
            .args(args)
            .env("TESSERA_ROOT_USER", ACCESS_KEY)
            .env("TESSERA_ROOT_PASSWORD", SECRET_KEY)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run tessera admin: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tessera admin {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("tessera admin {}: unreadable answer: {e}", args.join(" ")))
    }

    /// [`Admin::run`] on the blocking pool, for use while load runs on the async workers.
    pub async fn call(&self, args: &'static [&'static str]) -> Result<serde_json::Value, String> {
        let admin = self.clone();
        tokio::task::spawn_blocking(move || admin.run(args))
            .await
            .map_err(|e| e.to_string())?
    }
}

const CLUSTER_SECRET: &str = "tessera-bench-cluster-secret";
/// The SSE-S3 master key of every tessera started here (used only where encryption is asked
/// for: `--encrypt-target`).
const MASTER_KEY: &str = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Waits until `port` accepts connections, failing when `child` exits first.
fn wait_listening(
    child: &mut Option<Child>,
    port: u16,
    name: &str,
    log: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(format!(
                "{name} exited with {status} at start; see {}",
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("{name} did not start listening within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Server {
    pub fn start(
        target: Target,
        name: &str,
        work: &Path,
        env: Vec<(String, String)>,
    ) -> Result<Self, String> {
        let base = work.join(name);
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        let dirs = match &target {
            Target::Tessera { disks: n, .. } | Target::TesseraNodes { nodes: n, .. } => {
                (1..=*n).map(|i| base.join(format!("disk{i}"))).collect()
            }
            Target::S3sFs { .. } => vec![base.join("root")],
            Target::Garage { .. } => vec![base.join("garage")],
            Target::Endpoint { .. } => vec![],
        };
        for d in &dirs {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let mut server = Server {
            name: name.into(),
            url: String::new(),
            target,
            child: None,
            nodes: Vec::new(),
            port: 0,
            dirs,
            log: base.join("server.log"),
            env,
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
        };
        if let Target::Endpoint { url } = &server.target {
            server.url = url.clone();
            return Ok(server);
        }
        server.port = free_port()?;
        server.url = format!("http://127.0.0.1:{}", server.port);
        if let Target::TesseraNodes { nodes, .. } = &server.target {
            for _ in 0..*nodes {
                server.nodes.push((None, free_port()?));
            }
        }
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        self.spawn_nodes()?;
        let mut cmd = match &self.target {
            Target::Tessera { bin, .. } => {
                let mut c = Command::new(bin);
                c.arg("serve")
                    .arg("--address")
                    .arg(format!("127.0.0.1:{}", self.port))
                    // No scheduled scan during a benchmark.
                    .args(["--scan-interval-secs", "0"])
                    .args(&self.dirs)
                    .env("TESSERA_ROOT_USER", ACCESS_KEY)
                    .env("TESSERA_ROOT_PASSWORD", SECRET_KEY)
                    .env("TESSERA_KMS_SECRET_KEY", MASTER_KEY)
                    .env("RUST_LOG", "warn")
                    .envs(self.env.iter().map(|(k, v)| (k, v)));
                c
            }
            Target::TesseraNodes { bin, .. } => {
                let urls: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|(_, port)| format!("http://127.0.0.1:{port}"))
                    .collect();
                let mut c = Command::new(bin);
                c.arg("serve")
                    .arg("--address")
                    .arg(format!("127.0.0.1:{}", self.port))
                    .args(["--scan-interval-secs", "0"])
                    .arg("--node")
                    .arg(urls.join(","))
                    .arg("--meta-dir")
                    .arg(self.log.with_file_name("meta"))
                    .env("TESSERA_ROOT_USER", ACCESS_KEY)
                    .env("TESSERA_ROOT_PASSWORD", SECRET_KEY)
                    .env("TESSERA_CLUSTER_SECRET", CLUSTER_SECRET)
                    .env("TESSERA_KMS_SECRET_KEY", MASTER_KEY)
                    .env("RUST_LOG", "warn")
                    .envs(self.env.iter().map(|(k, v)| (k, v)));
                c
            }
            Target::S3sFs { bin } => {
                let mut c = Command::new(bin);
                c.args(["--host", "127.0.0.1", "--port"])
                    .arg(self.port.to_string())
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(&self.dirs[0])
                    .env("RUST_LOG", "warn");
                c
            }
            Target::Garage { bin, fsync } => {
                let ports = (self.port, free_port()?, free_port()?);
                let started = crate::garage::start(bin, &self.dirs[0], ports, *fsync, &self.log)?;
                self.child = Some(started.child);
                self.access_key = started.access_key;
                self.secret_key = started.secret_key;
                return wait_listening(&mut self.child, self.port, &self.name, &self.log);
            }
            Target::Endpoint { .. } => return Ok(()),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.name))?;
        self.child = Some(child);
        wait_listening(&mut self.child, self.port, &self.name, &self.log)
    }

    /// Starts the storage nodes that are not running (`tessera-nodes`), except those marked
    /// lost by [`Server::restart_without_disks`].
    fn spawn_nodes(&mut self) -> Result<(), String> {
        let Target::TesseraNodes { bin, .. } = &self.target else {
            return Ok(());
        };
        for (i, (child, port)) in self.nodes.iter_mut().enumerate() {
            if child.is_some() || !self.dirs[i].exists() {
                continue;
            }
            let log = self.log.with_file_name(format!("node{}.log", i + 1));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| e.to_string())?;
            *child = Some(
                Command::new(bin)
                    .arg("node")
                    .arg("--address")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg(&self.dirs[i])
                    .env("TESSERA_CLUSTER_SECRET", CLUSTER_SECRET)
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .stdout(file.try_clone().map_err(|e| e.to_string())?)
                    .stderr(file)
                    .spawn()
                    .map_err(|e| format!("cannot start node {}: {e}", i + 1))?,
            );
            wait_listening(child, *port, &format!("node {}", i + 1), &log)?;
        }
        Ok(())
    }

    /// True for an endpoint the benchmark did not start.
    pub fn is_external(&self) -> bool {
        matches!(self.target, Target::Endpoint { .. })
    }

    /// The server process's peak resident set (VmHWM), when the benchmark started it.
    pub fn peak_rss(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Resets the peak RSS the kernel tracks (`clear_refs` 5), so the next reading is the
    /// peak of what follows.
    pub fn reset_peak_rss(&self) {
        if let Some(c) = &self.child {
            let _ = std::fs::write(format!("/proc/{}/clear_refs", c.id()), "5");
        }
    }

    /// Bytes allocated on disk under the server's directories, when the benchmark made them.
    pub fn disk_bytes(&self) -> Option<u64> {
        fn walk(p: &Path) -> u64 {
            use std::os::unix::fs::MetadataExt;
            let Ok(entries) = std::fs::read_dir(p) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.blocks() * 512,
                    Err(_) => 0,
                })
                .sum()
        }
        if self.dirs.is_empty() {
            return None;
        }
        Some(self.dirs.iter().map(|d| walk(d)).sum())
    }

    /// Runs `tessera admin` against a tessera started here.
    pub fn admin(&self) -> Result<Admin, String> {
        match &self.target {
            Target::Tessera { bin, .. } | Target::TesseraNodes { bin, .. } => Ok(Admin {
                bin: bin.clone(),
                url: self.url.clone(),
            }),
            _ => Err(format!("{} is not a tessera started here", self.name)),
        }
    }

    /// True for a tessera on local disks started here.
    pub fn is_local_tessera(&self) -> bool {
        matches!(self.target, Target::Tessera { .. })
    }

    /// Adds a pool of as many fresh directories as the first pool has to a tessera on local
    /// disks started here.
    pub fn add_local_pool(&self) -> Result<(), String> {
        let disks = self.dirs.len();
        let Target::Tessera { .. } = self.target else {
            return Err(format!(
                "{}: pools of local disks need a `tessera` target",
                self.name
            ));
        };
        let base = self.log.with_file_name("pool1");
        let new: Vec<PathBuf> = (1..=disks).map(|i| base.join(format!("disk{i}"))).collect();
        for d in &new {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let specs: Vec<String> = new.iter().map(|d| d.display().to_string()).collect();
        let mut args = vec!["pool", "add"];
        args.extend(specs.iter().map(String::as_str));
        self.admin()?.run(&args).map(drop)
    }

    /// Parity shards of a tessera started here (the default for its disk count).
    pub fn tessera_parity(&self) -> Option<usize> {
        match self.target {
            Target::Tessera { disks, .. } | Target::TesseraNodes { nodes: disks, .. } => {
                Some(match disks {
                    1 => 0,
                    2..=3 => 1,
                    4..=5 => 2,
                    6..=7 => 3,
                    _ => 4,
                })
            }
            _ => None,
        }
    }

    /// Restarts a tessera started here with its first `missing` disks moved away (their nodes
    /// stay down).
    pub fn restart_without_disks(&mut self, missing: usize) -> Result<(), String> {
        self.stop();
        self.stop_nodes();
        for d in self.dirs.iter().take(missing) {
            let away = d.with_extension("away");
            std::fs::rename(d, &away).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        self.spawn()
    }

    /// Stops the gateway (or the single server); nodes keep running.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c);
        }
    }

    fn stop_nodes(&mut self) {
        for (child, _) in &mut self.nodes {
            if let Some(c) = child.take() {
                terminate(c);
            }
        }
    }
}

/// SIGTERM (through `kill`, which keeps this crate free of unsafe/libc), SIGKILL after 30 s.
fn terminate(mut c: Child) {
    let _ = Command::new("kill").arg(c.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        self.stop_nodes();
    }
}
